#!/bin/sh
# Builds the fuzz targets and runs each for SECONDS over a copy of its corpus in fuzz/corpus/
# (new inputs go to a temporary directory, never into the repository). Prints
# "fuzz <name>: N runs, OK" per target; exits non-zero if any target crashed or broke an
# invariant, naming the saved input and the command that replays it.
# Usage: fuzz/run.sh SECONDS [BUILD_DIR]   (make test runs it for 20 s, make fuzz for longer)
set -eu
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:?usage: fuzz/run.sh SECONDS [BUILD_DIR]}
OUT=${2:-build-fuzz}
fuzz/build.sh "$OUT" >/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/appflowd-fuzz.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p "$OUT/crashes"

# Largest input per target: a JSON body or HTTP request well past the bridge's body cap's
# interesting edge, and a seed file big enough for many flows.
max_len() {
  case $1 in
    seed) echo 1048576 ;;
    *) echo 65536 ;;
  esac
}

# fuzz_one TARGET: runs it; prints its line (and what to replay if it failed); exits 1 if it
# failed.
fuzz_one() {
  t=$1
  mkdir -p "$TMP/$t"
  cp fuzz/corpus/$t/* "$TMP/$t/"
  log="$OUT/fuzz_$t.log"
  # Crash inputs are saved under $OUT/crashes/ (outside the repository's tracked files).
  if "$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len="$(max_len $t)" -timeout=25 \
      -rss_limit_mb=2048 -artifact_prefix="$OUT/crashes/$t-" -print_final_stats=1 \
      "$TMP/$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    echo "fuzz $t: ${runs:-?} runs, OK ($cov)"
    return 0
  fi
  art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  echo "fuzz $t: FAILED; full log $log"
  grep -E 'ERROR: |invariant failed|SUMMARY:|^ *#[0-9]+ .*/(src|fuzz|gen)/' "$log" | head -n 25
  echo "fuzz $t: crash input: ${art:-none saved}; replay: $OUT/fuzz_$t ${art:-<input>}"
  return 1
}

# Each target is one process on one core for SECONDS: JOBS of them (default: the cores) run
# side by side, each printing into its own file, shown in the targets' order.
JOBS=${JOBS:-$(nproc)}
passed=0
failed=0
set -- transcode http seed decode control
while [ $# -gt 0 ]; do
  batch=""
  n=0
  while [ $# -gt 0 ] && [ "$n" -lt "$JOBS" ]; do
    (if fuzz_one "$1" >"$TMP/$1.out" 2>&1; then echo 0; else echo 1; fi >"$TMP/$1.rc") &
    batch="$batch $1"
    n=$((n + 1))
    shift
  done
  wait
  for t in $batch; do
    cat "$TMP/$t.out"
    if [ "$(cat "$TMP/$t.rc")" = 0 ]; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
    fi
  done
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
