#!/usr/bin/env bash
# Fuzzes every parser of untrusted input (issue 21), one target at a time, under `nice -n 19`:
# each target runs until RUNS executions (default 10 million) or MAX_SECONDS (default 1800,
# for the slow loaders), with libFuzzer's RSS cap RSS_MB (default 2048). Not part of CI.
#
#   scripts/fuzz.sh                 # every target
#   scripts/fuzz.sh native vocab    # some
#   RUNS=100000 scripts/fuzz.sh     # a quick pass
#
# Needs the nightly toolchain (rustup) and cargo-fuzz (`cargo install cargo-fuzz`). Seeds are
# made from the real files by `fuzz/src/make_seeds.rs` into fuzz/corpus/ (not committed);
# crashes land in fuzz/artifacts/<target>/; each becomes a regression test in tests/ (the
# loader's own test file) before it is fixed.
# One line per target is appended to fuzz/results.txt: target, executions, seconds, outcome.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

# TFRecord (pre-training data) and SQuAD JSON targets join this list once their parsers exist.
all=(tokenizer vocab config safetensors tf_checkpoint native training_state onnx)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${all[@]}")
runs="${RUNS:-10000000}"
seconds="${MAX_SECONDS:-1800}"
rss="${RSS_MB:-2048}"
# Seconds one input may take before libFuzzer calls it a hang. On a loaded machine a niced
# process can be starved that long: reproduce a reported hang alone before believing it.
unit_timeout="${TIMEOUT:-10}"
# No sanitizer (the crate's few `unsafe` blocks are bounds-checked copies and maps; what we
# look for is panics, aborts, hangs and memory growth), with debug assertions and overflow
# checks on.
flags=(-s none --debug-assertions)

if [ ! -d corpus/native ]; then
  nice -n 19 cargo +nightly run --release --quiet --example make_seeds
fi
mkdir -p logs
for t in "${targets[@]}"; do
  features=()
  [ "$t" = onnx ] && features=(--features onnx)
  nice -n 19 cargo +nightly fuzz build "${flags[@]}" "${features[@]}" "$t"
  mkdir -p "corpus/$t" "artifacts/$t"
  started=$(date +%s)
  status=0
  nice -n 19 cargo +nightly fuzz run "${flags[@]}" "${features[@]}" "$t" "corpus/$t" -- \
    -runs="$runs" -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout="$unit_timeout" \
    -print_final_stats=1 >"logs/$t.log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - started ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  if [ "$status" = 0 ]; then
    outcome="0 crashes, 0 hangs, 0 OOMs"
  else
    outcome="FAILED (exit $status): $(grep -m1 -E 'ERROR: libFuzzer|panicked at|deadly signal|out-of-memory|timeout' "logs/$t.log" || true)"
  fi
  line="$t	${execs:-?} executions	${elapsed} s	$outcome"
  echo "$line" | tee -a results.txt
done
