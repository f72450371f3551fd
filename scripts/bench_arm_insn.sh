#!/usr/bin/env bash
# ARM speed proxy: guest instructions retired by one all-MiniLM-L6-v2 forward pass at
# (batch 1, seq 128) under qemu-aarch64, per kernel path. QEMU's clock means nothing, and no
# ARM machine is reachable here, so these counts are the only ARM speed figure we have: they
# show how much work each path does, not how fast a core retires it (an SDOT or SMMLA counts
# as one instruction like an add).
#
#   scripts/bench_arm_insn.sh [WORD]     (needs scripts/setup_arm.sh's tools; ~10 CPU-minutes)
#
# With WORD, only the paths whose name contains it (e.g. `int8`).
#
# Paths: f32 portable (a build with --cfg bert_portable, which picks the portable kernels
# everywhere), f32 NEON (-cpu cortex-a53), int8 portable (cortex-a53: no dot product), int8
# SDOT (cortex-a76), int8 SMMLA (max). The count of one forward pass is the count of
# `bert embed --threads 1 --batch_size 1` on two copies of a 128-token input minus the count
# on one (the same model load, tokenization and output, one forward pass less), with
# scripts/qemu_insn.c, our instruction-counting QEMU plugin.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
cache="${LIBBERT_CACHE:-$HOME/.cache/libbert}"
model="$cache/all-MiniLM-L6-v2"
work=target/arm-insn
only="${1:-}"
mkdir -p "$work"

gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$work/qemu_insn.so" scripts/qemu_insn.c
cargo build -q --release --target "$target" -p bert --bin bert
[[ "f32 portable" == *"${only}"* ]] && CARGO_TARGET_DIR=target/portable \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="--cfg bert_portable" \
  cargo build -q --release --target "$target" -p bert --bin bert
simd="target/$target/release/bert"
portable="target/portable/$target/release/bert"

# One input of at least 128 WordPiece tokens, truncated to exactly 128 ([CLS] ... [SEP]).
text="BERT is a method of pre-training language representations, meaning that we train a"
text="$text general-purpose language understanding model on a large text corpus (like"
text="$text Wikipedia), and then use that model for downstream NLP tasks that we care about"
text="$text (like question answering). BERT outperforms previous methods because it is the"
text="$text first unsupervised, deeply bidirectional system for pre-training NLP."
text="$text Unsupervised means that BERT was trained using only a plain text corpus, which is"
text="$text important because an enormous amount of plain text data is publicly available on"
text="$text the web in many languages. Pre-trained representations can also either be"
text="$text context-free or contextual."
printf '%s\n' "$text" >"$work/one.txt"
printf '%s\n%s\n' "$text" "$text" >"$work/two.txt"

count() { # count CPU BINARY INPUT [FLAGS]: instructions of `bert embed` on INPUT
  local cpu=$1 bin=$2 input=$3
  shift 3
  qemu-aarch64 -L "$sysroot" -cpu "$cpu" -plugin "$work/qemu_insn.so" -d plugin "$bin" embed \
    --model "$model" --threads 1 --batch_size 1 --max_seq_length 128 "$@" <"$input" \
    2>&1 >/dev/null | sed -n 's/^insns: //p'
}

printf '| path | CPU (qemu -cpu) | instructions per forward pass (1, 128) |\n| --- | --- | --- |\n'
row() { # row NAME CPU BINARY [FLAGS]
  local name=$1 cpu=$2 bin=$3
  shift 3
  [[ "$name" == *"${only}"* ]] || return 0
  local one two
  one=$(count "$cpu" "$bin" "$work/one.txt" "$@")
  two=$(count "$cpu" "$bin" "$work/two.txt" "$@")
  printf '| %s | %s | %s |\n' "$name" "$cpu" "$((two - one))"
}
row "f32 portable (--cfg bert_portable)" max "$portable"
row "f32 NEON" cortex-a53 "$simd"
row "int8 portable" cortex-a53 "$simd" --dtype int8
row "int8 SDOT (dotprod)" cortex-a76 "$simd" --dtype int8
row "int8 SMMLA (i8mm)" max "$simd" --dtype int8
