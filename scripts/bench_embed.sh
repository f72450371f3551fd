#!/usr/bin/env bash
# End-to-end embedding of real mixed-length texts (issue 20): libbert's Pipeline::embed against
# ONNX Runtime + HF tokenizers batched as sentence-transformers does (sorted by length, 32 per
# batch, padded to the batch's longest), same texts, same model (all-MiniLM-L6-v2), mean pooling,
# normalised, max 256 positions; both from texts in memory to vectors, tokenization included.
#   scripts/bench_embed.sh                 # THREADS="1 2" ROUNDS=2 REPEATS=3
# Needs the peer models (scripts/bench_encoder.sh builds them into $PEERS_DIR). For each thread
# count, ROUNDS alternating (peer, ours) pairs; each side's best median counts. Then the vectors
# of the last pair are compared (cosine per text).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${LIBBERT_SHARED:-$PWD/../shared}
PEERS=${PEERS_DIR:-/tmp/peers}
VENV=${VENV_DIR:-/tmp/venv-peers}
THREADS=${THREADS:-"1 2"}
ROUNDS=${ROUNDS:-2}
REPEATS=${REPEATS:-3}
TEXTS=$PEERS/mixed.txt
MODEL=$PEERS/models/minilm-l6
[ -f "$MODEL/model.safetensors" ] || { echo "no peer models in $PEERS (run scripts/bench_encoder.sh once)" >&2; exit 1; }
[ -f "$TEXTS" ] || python3 scripts/make_mixed_texts.py "$SHARED" "$TEXTS"
cargo bench --bench embed --no-run -q 2>/dev/null
OURS=$(cargo bench --bench embed --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
for t in $THREADS; do
  for r in $(seq "$ROUNDS"); do
    RAYON_NUM_THREADS=$t "$VENV/bin/python" scripts/bench_embed_peer.py --onnx "$PEERS/models/minilm-l6.onnx" \
      --tokenizer "$MODEL/tokenizer.json" --texts "$TEXTS" --threads "$t" --repeats "$REPEATS" \
      --out /tmp/embed_peer.f32
    "$OURS" --model "$MODEL" --texts "$TEXTS" --threads "$t" --repeats "$REPEATS" --out /tmp/embed_ours.f32
  done
  python3 - <<'PY'
import array
a, b = array.array("f"), array.array("f")
a.frombytes(open("/tmp/embed_peer.f32", "rb").read()); b.frombytes(open("/tmp/embed_ours.f32", "rb").read())
h = 384
worst = min(sum(a[i + j] * b[i + j] for j in range(h)) for i in range(0, len(a), h))
print(f'{{"min_cosine": {worst:.8f}, "texts": {len(a) // h}}}')
PY
done | tee /tmp/bench_embed.jsonl | python3 -c "
import json, sys
rows = {}
for line in sys.stdin:
    d = json.loads(line)
    if 'peer' in d:
        key = (d['threads'], d['peer'])
        rows[key] = min(rows.get(key, (1e9, d))[0], d['median_s']), d
    else:
        print('min cosine (ours vs peer, last pair):', d['min_cosine'])
print('| threads | peer s | libbert s | peer texts/s | libbert texts/s | libbert tokens/s | ratio |')
print('|---|---|---|---|---|---|---|')
for t in sorted({k[0] for k in rows}):
    p, o = rows[(t, 'onnxruntime+tokenizers')], rows[(t, 'libbert')]
    print(f'| {t} | {p[0]:.2f} | {o[0]:.2f} | {2000/p[0]:.0f} | {2000/o[0]:.0f} | {o[1][\"tokens\"]/o[0]:.0f} | {p[0]/o[0]:.2f} |')
"
