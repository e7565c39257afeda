#!/usr/bin/env bash
# `mpirun -np P spattn run SPEC --distributed --check --json`: the record's layout and key equal a
# single-process run's, the output equals the single-process executor's within 1e-6 (relative),
# the bytes sent equal the prediction, and each rank receives the key rows hand-counted here
# (a window of 64 keys on 32-token tiles: 2 tiles from the left neighbour; dense: every other
# shard).
#   tests/mpi/run_cli_distributed.sh SPATTN MPIEXEC
set -euo pipefail
SPATTN=$1
MPIEXEC=$2
export OMPI_MCA_btl_vader_single_copy_mechanism=none
run_mpi() { "$MPIEXEC" --allow-run-as-root --oversubscribe -np "$@"; }

single=$("$SPATTN" run 'sliding(64)' --n 2048 --heads 4 --kv-heads 2 --d 32 --block 32 --repeats 1 --json)
multi=$(run_mpi 3 "$SPATTN" run 'sliding(64)' --n 2048 --heads 4 --kv-heads 2 --d 32 --block 32 \
  --repeats 1 --check --json --distributed)
dense=$(run_mpi 4 "$SPATTN" run dense --n 512 --heads 2 --d 16 --block 16 --repeats 1 --check \
  --json --distributed)
python3 - "$single" "$multi" "$dense" <<'PY'
import json, sys
single, multi, dense = (json.loads(a) for a in sys.argv[1:4])
fails = []
def check(ok, what):
    if not ok: fails.append(what)
def layout(r):
    l = dict(r["layout"]); l.pop("build_seconds", None); return l
check(layout(single) == layout(multi), "layout counts differ from the single-process run")
check(single["key"] == multi["key"], "keys differ")
for name, r, rows in (("sliding", multi, [0, 64, 64]), ("dense", dense, None)):
    d = r["distributed"]
    check(d["max_rel_diff_single_process"] <= 1e-6, f"{name}: differs by {d['max_rel_diff_single_process']}")
    check(d["bytes_sent"] == d["predicted_bytes_sent"], f"{name}: bytes sent {d['bytes_sent']} != predicted")
    got = [p["key_rows_received"] for p in d["per_rank"]]
    if rows is None:
        rows = [512 - (p["rows"][1] - p["rows"][0]) for p in d["per_rank"]]
        check([p["messages_received"] for p in d["per_rank"]] == [3] * 4, f"{name}: messages")
    check(got == rows, f"{name}: key rows received {got}, expected {rows}")
print("FAIL: " + "; ".join(fails) if fails else "PASS: spattn run --distributed")
sys.exit(1 if fails else 0)
PY
