#!/usr/bin/env bash
# ARM (aarch64) checks, as CI runs them (scripts/test.sh calls this script):
#
# 1. Lint of the aarch64 build (its kernels are compiled only there).
# 2. One release build of the kernel and reference tests and of the `bert` CLI for
#    aarch64-unknown-linux-gnu, run under qemu-aarch64 at three CPU levels, so that every
#    kernel path runs somewhere:
#      cortex-a53  NEON                      f32 NEON, int8 portable
#      cortex-a76  + dot product, fp16       int8 SDOT
#      max         + i8mm                    int8 SMMLA
#    Each level prints the paths it took, runs the kernel tests (every available path
#    forced and checked against f64 and against the portable path) and Google's
#    tf_bert_tiny reference (<= 1e-5), then embeds sentences with the real all-MiniLM-L6-v2
#    and compares them with the x86_64 output: cosine >= 0.99999 in f32 (and f16), >= 0.99
#    for int8 against x86 f32; the int8 output is the same at every level (all paths give
#    the portable path's bits).
# 3. The mobile libraries compile (scripts/build_mobile.sh --check: libbert.a for Android and
#    iOS, the stripped aarch64 libbert.so within its 2.0 MB budget).
# 4. The Android Kotlin binding (JNI) on this machine's JVM (scripts/test_jni.sh).
#
# scripts/setup_arm.sh installs what it needs (aarch64 cross gcc and libc, qemu-user, the
# Rust targets). QEMU's clock means nothing, so nothing here is timed.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
cache="${LIBBERT_CACHE:-$HOME/.cache/libbert}"
model="$cache/all-MiniLM-L6-v2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

scripts/setup_arm.sh

echo "test_arm: clippy ($target)" >&2
cargo clippy -q --target "$target" --workspace --lib --tests --bins -- -D warnings

echo "test_arm: release build for $target (tests and the bert CLI)" >&2
tests=(--lib --test model_tf_reference)
cargo build -q --release --target "$target" -p bert --bin bert
exes=$(cargo test -q --release --target "$target" -p bert "${tests[@]}" --no-run \
  --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"] + " " + m["executable"])
')
exe() { awk -v n="$1" '$1 == n { print $2 }' <<<"$exes"; }
lib_tests="$(exe bert)"
tf_tests="$(exe model_tf_reference)"
bert_arm="target/$target/release/bert"

# The x86_64 reference outputs (the host build; scripts/test.sh has built it already).
echo "test_arm: x86_64 embeddings" >&2
cargo build -q -p bert --bin bert --all-features
head -n 12 tests/data/quant_sentences.txt >"$work/sentences.txt"
# embed COMMAND... [FLAGS]: `bert embed` of the sentences on the real model.
embed() { "$@" --model "$model" --threads 2 <"$work/sentences.txt"; }
embed target/debug/bert embed >"$work/x86-f32.jsonl"
embed target/debug/bert embed --dtype f16 >"$work/x86-f16.jsonl"

compare() { # compare A B MIN_COSINE WHAT
  python3 - "$@" <<'PY'
import json, math, sys
a_path, b_path, floor, what = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
a = [json.loads(l) for l in open(a_path)]
b = [json.loads(l) for l in open(b_path)]
assert len(a) == len(b) > 0, f"{what}: {len(a)} vs {len(b)} embeddings"
worst, diff = 1.0, 0.0
for u, v in zip(a, b):
    assert len(u) == len(v), what
    dot = sum(x * y for x, y in zip(u, v))
    cos = dot / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v))
    worst = min(worst, cos)
    diff = max(diff, max(abs(x - y) for x, y in zip(u, v)))
print(f"test_arm: {what}: {len(a)} sentences, worst cosine {worst:.8f}, max abs diff {diff:.2e}")
if not worst >= floor:
    sys.exit(f"test_arm: {what}: cosine {worst} below {floor}")
PY
}

for cpu in cortex-a53 cortex-a76 max; do
  run=(qemu-aarch64 -L "$sysroot" -cpu "$cpu")
  echo "test_arm: == -cpu $cpu" >&2
  "${run[@]}" "$lib_tests" --exact backend::cpu::tests::detected_paths_are_available_and_reported \
    --nocapture 2>&1 | grep "kernel paths" | sed "s/^/test_arm: $cpu: /"
  "${run[@]}" "$lib_tests" --test-threads 2 backend::
  "${run[@]}" "$tf_tests" --test-threads 2
  embed "${run[@]}" "$bert_arm" embed >"$work/$cpu-f32.jsonl"
  embed "${run[@]}" "$bert_arm" embed --dtype int8 >"$work/$cpu-int8.jsonl"
  compare "$work/$cpu-f32.jsonl" "$work/x86-f32.jsonl" 0.99999 "$cpu f32 vs x86_64 f32"
  compare "$work/$cpu-int8.jsonl" "$work/x86-f32.jsonl" 0.99 "$cpu int8 vs x86_64 f32"
  if [ "$cpu" = cortex-a76 ]; then
    embed "${run[@]}" "$bert_arm" embed --dtype f16 >"$work/$cpu-f16.jsonl"
    compare "$work/$cpu-f16.jsonl" "$work/x86-f16.jsonl" 0.99999 "$cpu f16 vs x86_64 f16"
  fi
done
# Every int8 path (portable, SDOT, SMMLA) gives the portable path's bits.
cmp "$work/cortex-a53-int8.jsonl" "$work/cortex-a76-int8.jsonl"
cmp "$work/cortex-a53-int8.jsonl" "$work/max-int8.jsonl"
echo "test_arm: int8 embeddings identical at every level (portable, SDOT, SMMLA)" >&2

scripts/build_mobile.sh --check
scripts/test_jni.sh
echo "test_arm: ok" >&2
