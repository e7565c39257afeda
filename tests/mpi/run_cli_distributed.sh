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
zigzag=$(run_mpi 2 "$SPATTN" run causal --n 1000 --heads 2 --d 16 --block 16 --repeats 1 --check \
  --json --distributed --zigzag)
python3 - "$single" "$multi" "$dense" "$zigzag" <<'PY'
import json, sys
single, multi, dense, zigzag = (json.loads(a) for a in sys.argv[1:5])
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
        rows = [512 - sum(e - b for b, e in p["rows"]) for p in d["per_rank"]]
        check([p["messages_received"] for p in d["per_rank"]] == [3] * 4, f"{name}: messages")
    check(got == rows, f"{name}: key rows received {got}, expected {rows}")
# Zig-zag over 2 ranks, 63 tiles of 16 (the last cut to 8 rows) in 4 chunks of 15, 16, 16, 16
# tiles: rank 0 holds chunks 0 and 3, rank 1 chunks 1 and 2. Causal: rank 0's last chunk needs all
# of rank 1's rows, rank 1 needs rank 0's first chunk (240 rows).
d = zigzag["distributed"]
check(d["shards"] == "zigzag", "zigzag: shards")
check([p["rows"] for p in d["per_rank"]] == [[[0, 240], [752, 1000]], [[240, 496], [496, 752]]],
      f"zigzag: rows {[p['rows'] for p in d['per_rank']]}")
check(d["max_rel_diff_single_process"] <= 1e-6, f"zigzag: differs by {d['max_rel_diff_single_process']}")
check([p["key_rows_received"] for p in d["per_rank"]] == [512, 240],
      f"zigzag: key rows {[p['key_rows_received'] for p in d['per_rank']]}")
check(d["bytes_sent"] == d["predicted_bytes_sent"], "zigzag: bytes sent != predicted")
print("FAIL: " + "; ".join(fails) if fails else "PASS: spattn run --distributed")
sys.exit(1 if fails else 0)
PY
