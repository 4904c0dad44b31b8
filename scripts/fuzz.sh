#!/usr/bin/env bash
# Builds the fuzz variant (scripts/build.sh fuzz) and runs libFuzzer targets
# of tests/fuzz: each first over its seed corpus (tests/fuzz/corpus/TARGET,
# every input once), then fuzzing for SECONDS (default 20) from the seeds
# plus what earlier runs found (build/fuzz/corpus/TARGET, kept between runs,
# never committed). A crash, sanitizer report, leak, timeout (10 s per input)
# or RSS over 2560 MiB fails the run; the input is saved in
# build/fuzz/artifacts/TARGET/ and the log in build/fuzz/logs/TARGET.log.
# Prints one line per target with libFuzzer's final figures.
# Usage: scripts/fuzz.sh [TARGET|all] [SECONDS]   (TARGET: proxy_header, ...)
# FUZZ_JOBS=N runs N targets at a time (default 1; the machine is shared).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
which=${1:-all}
seconds=${2:-20}
dir=$("$top/scripts/build.sh" fuzz)
targets=()
for seeds in "$top"/tests/fuzz/corpus/*/; do
  t=$(basename "$seeds")
  [ "$which" = all ] || [ "$which" = "$t" ] && targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no target $which" >&2; exit 2; }
mkdir -p "$dir/logs"

run_one() {
  local t=$1 bin="$dir/tests/fuzz/fuzz_$1" seeds="$top/tests/fuzz/corpus/$1"
  local work="$dir/corpus/$t" artifacts="$dir/artifacts/$t/" log="$dir/logs/$t.log"
  local opts=(-timeout=10 -rss_limit_mb=2560 -artifact_prefix="$artifacts" -print_final_stats=1)
  mkdir -p "$work" "$artifacts"
  # The seeds alone, each once; then fuzzing, new inputs into $work.
  if ! nice -n 19 "$bin" "${opts[@]}" -runs=0 "$seeds" >"$log" 2>&1 ||
    ! nice -n 19 "$bin" "${opts[@]}" -max_total_time="$seconds" "$work" "$seeds" >>"$log" 2>&1; then
    echo "fuzz $t: FAILED (log $log, input in $artifacts)" >&2
    grep -E "^(==[0-9]+==ERROR|SUMMARY|.*runtime error)" "$log" | head -5 >&2
    return 1
  fi
  local done_line runs
  done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1)
  runs=$(grep -Eo "stat::number_of_executed_units: [0-9]+" "$log" | tail -1 | grep -Eo "[0-9]+$")
  echo "fuzz $t: ok, ${seconds}s, $runs runs: ${done_line#*DONE }" >&2
}

jobs=${FUZZ_JOBS:-1}
failed=0
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in ${pids[@]+"${pids[@]}"}; do wait "$p" || failed=1; done
exit $failed
