#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the sharded sweep: starts munged, slurmctld
# and slurmd (Debian's packages, configured here on localhost with this machine's CPU count and
# memory, every file in a scratch directory, ports 16817/16818), runs a quick sweep through
# `spattn sweep --slurm --submit`, waits for the merge job, and checks the merged run against a
# single-process run of the same experiment (same keys in the same order, status ok, same layout
# counts). Then it kills one array task mid-run, resubmits that shard (which resumes it) and the
# merge, and checks again. Everything is torn down on exit, failure included; the whole script is
# bounded by a hard timeout.
#
#   tests/slurm/run_slurm_test.sh SPATTN_BINARY
#
# Exit codes: 0 passed, 1 failed, 77 skipped (not root, or the Slurm/munge daemons are not
# installed: scripts/setup.sh installs them).
set -uo pipefail
SPATTN=${1:?usage: run_slurm_test.sh SPATTN_BINARY}
SPATTN=$(readlink -f "$SPATTN")
HARD_TIMEOUT=${SPATTN_SLURM_TEST_TIMEOUT:-240}

if [ "$(id -u)" -ne 0 ]; then
  echo "skip: the local Slurm cluster needs root (slurmd runs jobs as their users)"
  exit 77
fi
export PATH="$PATH:/usr/sbin"
for b in munged mungekey slurmctld slurmd sbatch squeue sinfo scancel; do
  if ! command -v "$b" >/dev/null 2>&1; then
    echo "skip: $b is not installed (scripts/setup.sh installs munge, slurmctld, slurmd, slurm-client)"
    exit 77
  fi
done

# Re-run under a hard timeout: the daemons and every wait below end with it.
if [ -z "${SPATTN_SLURM_TEST_INNER:-}" ]; then
  SPATTN_SLURM_TEST_INNER=1 timeout --kill-after=10 "$HARD_TIMEOUT" bash "$0" "$@"
  rc=$?
  [ $rc -eq 124 ] && echo "FAIL: the Slurm test exceeded its ${HARD_TIMEOUT} s timeout"
  exit $rc
fi

T=$(mktemp -d /tmp/spattn_slurm.XXXXXX)
chmod 711 "$T"
PIDS=()
teardown() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ $rc -ne 0 ]; then
    for f in "$T"/slurmctld.log "$T"/slurmd.log "$T"/munged.log; do
      [ -f "$f" ] && { echo "== $f (tail)"; tail -n 30 "$f"; }
    done
    for f in "$T"/results/*-slurm/*/logs/*; do
      [ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; }
    done
  fi
  rm -rf "$T"
  exit $rc
}
trap teardown EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*"; exit 1; }

# munge: a key of this cluster's own, its socket in the scratch directory.
mungekey --create --keyfile="$T/munge.key" >/dev/null 2>&1 ||
  dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$T/munge.key"
munged --foreground --force --socket="$T/munge.socket" --key-file="$T/munge.key" \
  --log-file="$T/munged.log" --pid-file="$T/munged.pid" --seed-file="$T/munged.seed" \
  >"$T/munged.out" 2>&1 &
PIDS+=($!)

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
mkdir -p "$T/state" "$T/spool"
cat >"$T/slurm.conf" <<CONF
ClusterName=spattntest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge.socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$T/slurm.conf"

for _ in $(seq 50); do [ -S "$T/munge.socket" ] && break; sleep 0.1; done
[ -S "$T/munge.socket" ] || fail "munged did not start"
slurmctld -D -i -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 &
PIDS+=($!)
state=""
for _ in $(seq 60); do
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n 1)
  [ "$state" = "idle" ] && break
  sleep 0.5
done
[ "$state" = "idle" ] || fail "the node did not become idle (state: '${state:-none}')"
echo "slurm: node $HOST idle ($CPUS CPUs, $MEM_MB MiB)"

# A quick experiment: 12 points, well under a second each.
cat >"$T/quick.toml" <<'TOML'
name = "slurmquick"
seq_len = [256, 512]
head_dim = 32
heads = 2
threads = 1
block = 32
patterns = ["dense", "causal", "sliding(64)", {name = "local", spec = "sliding(128)"},
            "bigbird(block=32, window=3, global=1, random=1, seed=0)", "st_strided(16)"]
repeats = 2
warmup = 0
timeout = 60
memory = "1GiB"
check = true
TOML

# Waits until squeue no longer lists the jobs `ids` (comma-separated).
wait_jobs() {
  local ids=$1
  for _ in $(seq 240); do
    [ -z "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  squeue
  fail "jobs $ids did not finish"
}

# The merged run against the single-process run.
compare() {
  python3 - "$1" "$2" <<'PY' || fail "merged run differs from the single-process run"
import json, sys
def points(path):
    out = []
    for line in open(path):
        r = json.loads(line)
        if r.get("kind") == "point":
            l = dict(r["layout"]); l.pop("build_seconds", None)
            out.append((r["key"], r["index"], r["status"], json.dumps(l, sort_keys=True)))
    return out
single, merged = points(sys.argv[1]), points(sys.argv[2])
ok = len(single) == len(merged) == 12 and all(m[2] == "ok" for m in merged)
ok = ok and [(k, i, l) for k, i, _, l in single] == [(k, i, l) for k, i, _, l in merged]
print(f"compare: single {len(single)} points, merged {len(merged)} points, "
      f"statuses {sorted(set(m[2] for m in merged))}: {'equal' if ok else 'DIFFERENT'}")
sys.exit(0 if ok else 1)
PY
}

cd "$T"
"$SPATTN" sweep quick.toml --out single --no-report >/dev/null 2>"$T/single.err" || {
  cat "$T/single.err"
  fail "the single-process sweep failed"
}
SINGLE=$(ls -d single/slurmquick/*/)/results.jsonl

out=$("$SPATTN" sweep quick.toml --out results --slurm --shards 3 --submit) || fail "--slurm --submit: $out"
echo "$out"
JOBDIR=$(ls -d "$T"/results/slurmquick-slurm/*/)
ARRAY=$(echo "$out" | sed -n 's/^array job \([0-9]*\) .*merge job \([0-9]*\)$/\1/p')
MERGE=$(echo "$out" | sed -n 's/^array job \([0-9]*\) .*merge job \([0-9]*\)$/\2/p')
[ -n "$ARRAY" ] && [ -n "$MERGE" ] || fail "no job ids in the output of --submit"
wait_jobs "$ARRAY,$MERGE"
[ -f "$JOBDIR/merged/results.jsonl" ] || fail "the merge job wrote no merged run"
compare "$SINGLE" "$JOBDIR/merged/results.jsonl"

# A killed task: shard 2 again from scratch, cancelled after its first point, resubmitted alone
# (it resumes its run), then merged again.
rm -rf "$JOBDIR/shards/2" "$JOBDIR/merged"
A2=$(sbatch --parsable --array=2 "$JOBDIR/array.sbatch") || fail "resubmitting shard 2"
A2=${A2%%;*}
for _ in $(seq 200); do
  f=$(ls "$JOBDIR"/shards/2/slurmquick/*/results.jsonl 2>/dev/null | head -n 1)
  [ -n "$f" ] && [ "$(wc -l <"$f")" -ge 2 ] && break
  sleep 0.1
done
scancel "$A2" || fail "scancel $A2"
wait_jobs "$A2"
f=$(ls "$JOBDIR"/shards/2/slurmquick/*/results.jsonl)
echo "killed shard 2 after $(($(wc -l <"$f") - 1)) of its points"
A2=$(sbatch --parsable --array=2 "$JOBDIR/array.sbatch") || fail "resubmitting shard 2"
A2=${A2%%;*}
M2=$(sbatch --parsable --dependency=afterany:"$A2" "$JOBDIR/merge.sbatch") || fail "resubmitting the merge"
M2=${M2%%;*}
wait_jobs "$A2,$M2"
[ "$(ls -d "$JOBDIR"/shards/2/slurmquick/*/ | wc -l)" -eq 1 ] ||
  fail "the resubmitted shard started a new run instead of resuming"
grep -q '"resumed"' "$(ls -d "$JOBDIR"/shards/2/slurmquick/*/)meta.json" || fail "shard 2 was not resumed"
compare "$SINGLE" "$JOBDIR/merged/results.jsonl"
echo "PASS: sharded Slurm sweep equals the single-process sweep, and a killed shard recovers"
