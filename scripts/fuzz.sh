#!/usr/bin/env bash
# Builds the libFuzzer targets (clang 14, ASan + UBSan), replays the committed seed corpora, then
# fuzzes each target for SECONDS_PER_TARGET seconds (default 30) starting from a scratch copy of
# its corpus (the committed corpus is never modified). Exits non-zero on any crash, leak, timeout,
# out-of-memory or sanitizer report, saying where the offending input was saved.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Build dir: build/fuzz. Logs: build/fuzz/fuzz-logs/<target>.log. Crashing inputs:
# build/fuzz/fuzz-artifacts/<target>/. New inputs found: build/fuzz/fuzz-scratch/<target>/.
# See tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET]  (a positive integer, default 30)" >&2
  exit 2
fi

TARGETS=(fuzz_spec fuzz_npy fuzz_layout_diff fuzz_toml)
root="$PWD"
build="$root/build/fuzz"
corpora="$root/tests/fuzz/corpus"

for tool in clang-14 clang++-14 cmake ninja; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "fuzz: error: '$tool' not found; run scripts/setup.sh (it installs clang-14 and" \
         "libclang-rt-14-dev)" >&2
    exit 1
  fi
done

echo "fuzz: configuring $build (clang 14, SPATTN_FUZZ=ON)"
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPATTN_FUZZ=ON \
  -DSPATTN_BUILD_BENCHMARKS=OFF -DSPATTN_BUILD_TESTS=OFF >/dev/null
echo "fuzz: building ${TARGETS[*]}"
cmake --build "$build" -j "$(nproc)" --target "${TARGETS[@]}"

bin() { echo "$build/tests/fuzz/$1"; }
dict() {  # the libFuzzer dictionary of a target
  case "$1" in
    fuzz_npy) echo "$root/tests/fuzz/npy.dict" ;;
    fuzz_toml) echo "$root/tests/fuzz/toml.dict" ;;
    *) echo "$root/tests/fuzz/spec.dict" ;;
  esac
}
logs="$build/fuzz-logs"
mkdir -p "$logs"

# Sanitizer reports that must fail the run even if the process exited 0.
REPORT_RE='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'

failed=()
summary=()

# 1. Replay every committed input once.
for t in "${TARGETS[@]}"; do
  log="$logs/$t.replay.log"
  if ! "$(bin "$t")" "$corpora/$t" -runs=0 >"$log" 2>&1 || grep -Eq "$REPORT_RE" "$log"; then
    echo "fuzz: FAIL: $t crashed replaying its committed corpus $corpora/$t:" >&2
    tail -n 40 "$log" >&2
    failed+=("$t (replay)")
  else
    echo "fuzz: $t: replayed $(find "$corpora/$t" -type f | wc -l) committed inputs"
  fi
done

# 2. Fuzz each target into a scratch copy of its corpus.
for t in "${TARGETS[@]}"; do
  scratch="$build/fuzz-scratch/$t"
  artifacts="$build/fuzz-artifacts/$t"
  log="$logs/$t.log"
  rm -rf "$scratch"
  mkdir -p "$scratch" "$artifacts"
  cp "$corpora/$t"/* "$scratch"/
  before=$(find "$artifacts" -type f | wc -l)
  echo "fuzz: $t: fuzzing for ${seconds}s (log: $log)"
  rc=0
  "$(bin "$t")" "$scratch" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -dict="$(dict "$t")" -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus_after=$(find "$scratch" -type f | wc -l)
  if [ "$rc" -ne 0 ] || grep -Eq "$REPORT_RE" "$log"; then
    echo "fuzz: FAIL: $t (exit code $rc); the end of its log:" >&2
    tail -n 60 "$log" >&2
    saved=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
    if [ -z "$saved" ] && [ "$(find "$artifacts" -type f | wc -l)" -gt "$before" ]; then
      saved=$(ls -t "$artifacts"/* | head -n 1)
    fi
    echo "fuzz: $t: the offending input was saved to: ${saved:-(none written; see $log)}" >&2
    echo "fuzz: reproduce with: $(bin "$t") ${saved:-<input>}" >&2
    failed+=("$t")
    summary+=("$t: FAILED after ${execs:-?} executions")
  else
    seeds=$(find "$corpora/$t" -type f | wc -l)
    summary+=("$t: ${execs:-?} executions in ${seconds}s, corpus $seeds -> $corpus_after inputs")
  fi
done

echo "fuzz: summary"
for line in "${summary[@]}"; do echo "  $line"; done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: OK: no crash, leak or sanitizer report"
