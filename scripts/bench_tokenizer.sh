#!/usr/bin/env bash
# Tokenizer throughput, ours vs Hugging Face `tokenizers`, on the same corpus in the same run.
#   scripts/bench_tokenizer.sh
# Builds the corpus with shared/bench/make_corpus.sh (copied to a writable place, the shared
# folder is read-only), installs HF tokenizers in a venv, runs shared/bench/bench_tokenizers.py
# (BertWordPieceTokenizer, lowercase, no specials) and `cargo bench --bench tokenizer` with the
# same uncased vocab, and prints the single-thread ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${LIBBERT_SHARED:-$ROOT/../shared}
PEERS=${PEERS_DIR:-/tmp/peers-tok}
VENV=${VENV_DIR:-/tmp/venv-bench}
VOCAB=$SHARED/data/tokenizer/vocab-uncased.txt

if [ ! -f "$PEERS/corpus/corpus.txt" ]; then
  rm -rf "$PEERS" && cp -r "$SHARED/bench" "$PEERS" && chmod -R u+w "$PEERS"
  (cd "$PEERS" && bash make_corpus.sh > make_corpus.log)
fi
CORPUS=$PEERS/corpus/corpus.txt
# bench_tokenizers.py reads <model-dir>/vocab.txt; all-MiniLM-L6-v2 uses this same vocab.
mkdir -p "$PEERS/vocab-uncased" && cp "$VOCAB" "$PEERS/vocab-uncased/vocab.txt"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import tokenizers" 2>/dev/null || "$VENV/bin/pip" install -q tokenizers

hf() { "$VENV/bin/python" "$PEERS/bench_tokenizers.py" --corpus "$CORPUS" \
        --model-dir "$PEERS/vocab-uncased" --tokenizers wordpiece "$@"; }
HF1=$(RAYON_NUM_THREADS=1 hf --mode batch | tail -1)
HF2=$(RAYON_NUM_THREADS=2 hf --mode batch | tail -1)
OURS=$(cargo bench -q --bench tokenizer -- "$CORPUS" "$VOCAB" 2>/dev/null)
echo "$HF1"; echo "$HF2"; echo "$OURS"
python3 - "$HF1" "$HF2" "$OURS" <<'PY'
import json, sys
hf1, hf2 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ours = [json.loads(l) for l in sys.argv[3].splitlines() if l.startswith("{")]
o1 = next(o for o in ours if o["what"] == "lines" and o["threads"] == 1)
o2 = next(o for o in ours if o["what"] == "lines" and o["threads"] == 2)
assert o1["bytes"] == hf1["bytes"], (o1["bytes"], hf1["bytes"])
print(f"1 thread : libbert {o1['MB_per_s']} MB/s, HF {hf1['MB_per_s']} MB/s, ratio {o1['MB_per_s'] / hf1['MB_per_s']:.1f}x")
print(f"2 threads: libbert {o2['MB_per_s']} MB/s, HF {hf2['MB_per_s']} MB/s, ratio {o2['MB_per_s'] / hf2['MB_per_s']:.1f}x")
PY
