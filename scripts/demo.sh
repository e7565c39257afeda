#!/usr/bin/env bash
# Installs what is missing, builds, runs the default experiment (experiments/scaling.toml in its
# --quick form: a few minutes on 2 cores), writes its tables and charts, and says where they are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release
spattn=build/release/experiments/cli/spattn
base=results

echo
echo "== spattn sweep experiments/scaling.toml --quick --out $base"
"$spattn" sweep experiments/scaling.toml --quick --out "$base"
dir=$(ls -td "$base"/scaling/*/ | head -n 1)
dir=${dir%/}

echo
echo "== spattn report $dir"
"$spattn" report "$dir" >/dev/null
echo "== scripts/plot_sweep.py $dir"
python3 scripts/plot_sweep.py "$dir"

echo
echo "demo: the sweep's results are in $dir/:"
echo "  table.md        time, speedup vs dense, memory, GFLOP/s, fidelity per N; fitted slopes"
echo "  results.csv     one row per point"
echo "  results.jsonl   the raw record (spattn report regenerates the tables from it)"
echo "  meta.json       git revision, compiler, CPU, library versions, the experiment file"
echo "  charts/         time, memory and useful GFLOP/s against N (PNG and SVG)"
