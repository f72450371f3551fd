#!/usr/bin/env bash
# The Android Kotlin binding (JNI, bindings/kotlin/android) on this machine's JVM: builds
# libbert.so with the ffi crate's `jni` feature for the host, compiles the binding and its
# test with kotlinc, and runs it against the real all-MiniLM-L6-v2 and the Rust API's
# outputs (examples/embed_reference.rs, examples/finetune_reference.rs,
# examples/squad_reference.rs), which it must match
# bit for bit. scripts/test_arm.sh calls it; scripts/setup.sh installs the model and kotlinc.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
cache="${LIBBERT_CACHE:-$HOME/.cache/libbert}"
model="$cache/all-MiniLM-L6-v2"
shared="${LIBBERT_SHARED:-$root/../shared}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/jni-test"
kotlinc="$(command -v kotlinc || echo "$cache/npm/lib/node_modules/kotlin-compiler/bin/kotlinc")"
for tool in java "$kotlinc"; do
  command -v "$tool" >/dev/null || { echo "test_jni: missing $tool: run scripts/setup.sh" >&2; exit 1; }
done
mkdir -p "$work/lib" "$work/sst2"

echo "test_jni: libbert.so with the jni feature" >&2
cargo build -q --release -p bert-ffi --features jni
cp "$target/release/libbert_ffi.so" "$work/lib/libbert.so"

echo "test_jni: the Rust API's outputs" >&2
head -n 9 "$shared/data/glue/SST-2/dev.tsv" >"$work/sst2/dev.tsv"
cargo run -q --release --example embed_reference -- "$model" "$work/embed.txt" >/dev/null
cargo run -q --release --example finetune_reference -- "$model" "$work/sst2" "$work/finetune.txt" >/dev/null
cargo run -q --release --example squad_reference -- "$shared/fixtures/tf_bert_tiny" "$work/squad.bert" "$work/squad_answers.txt" >/dev/null

echo "test_jni: kotlinc" >&2
src=bindings/kotlin/android
jar="$work/test.jar"
if [ ! -f "$jar" ] || [ -n "$(find "$src" -name '*.kt' -newer "$jar")" ]; then
  "$kotlinc" "$src/libbert/src/main/kotlin" "$src/test" -include-runtime -d "$jar" 2>&1 \
    | { grep -v '^warning: unable to find kotlin-stdlib' || true; }
fi
java -Djava.library.path="$work/lib" -cp "$jar" libbert.jni.JniTestKt \
  "$model" "$work/embed.txt" "$work/sst2" "$work/finetune.txt" "$work" "$work/squad.bert" "$work/squad_answers.txt"
