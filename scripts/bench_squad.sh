#!/usr/bin/env bash
# SQuAD prediction speed (issue 16): libbert (`cargo bench --bench squad`) against ONNX Runtime
# (scripts/bench_squad_peer.py) running the same fine-tuned model on the same features, side
# by side in one run, at max_seq_length 384 and 256; then the logits are compared.
#   MODEL=run/model.bert PREDICT=dev.json scripts/bench_squad.sh   # SEQS="384 256" THREADS="1 2"
# MODEL is a fine-tuned span model (`bert squad --do_train` writes one); its weights are
# exported once with `bert convert --output model.safetensors` (+ config.json) for the peer. Needs the peer
# venv (scripts/bench_encoder.sh sets it up in $VENV_DIR with ../shared/bench's requirements).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${LIBBERT_SHARED:-$PWD/../shared}
VENV=${VENV_DIR:-/tmp/venv-peers}
SEQS=${SEQS:-"384 256"}
THREADS=${THREADS:-"1 2"}
REPEATS=${REPEATS:-3}
BATCH=${BATCH:-8}
: "${MODEL:?MODEL=path/to/fine-tuned model.bert}"
: "${PREDICT:?PREDICT=path/to/squad.json}"
WORK=${WORK:-/tmp/libbert-bench-squad}
mkdir -p "$WORK"
cargo build --release -q --bin bert
target/release/bert convert --model "$MODEL" --output "$WORK/model.safetensors"
cargo bench --bench squad --no-run -q 2>/dev/null
OURS=$(cargo bench --bench squad --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
for s in $SEQS; do
  for t in $THREADS; do
    "$OURS" --model "$MODEL" --predict-file "$PREDICT" --seq "$s" --batch "$BATCH" --threads "$t" \
      --repeats "$REPEATS" --out "$WORK/s$s"
    "$VENV/bin/python" scripts/bench_squad_peer.py --peers "$SHARED/bench" --weights "$WORK/model.safetensors" \
      --config "$WORK/config.json" --dir "$WORK/s$s" --seq "$s" --batch "$BATCH" --threads "$t" \
      --repeats "$REPEATS"
  done
done
