#!/usr/bin/env python3
"""Writes tests/data/minilm_reference.{json,bin}: an independent reference for
all-MiniLM-L6-v2 that the Rust tests compare against (CI does not run Python).

Reference = the plain NumPy BERT of ../shared/bench/bert_ref.py (erf GELU, LayerNorm eps from
config.json, mask adder -10000), run in float64, each sentence ALONE (no padding), on ids from
Hugging Face `tokenizers` with the model's own tokenizer.json. Stored per sentence: ids,
token type ids, the last hidden state at every real token, the pooler output, and the
sentence-transformers embedding (masked mean, then L2 normalisation: modules.json).

Usage:
  python3 -m venv /tmp/venv-ref && /tmp/venv-ref/bin/pip install numpy safetensors tokenizers
  /tmp/venv-ref/bin/python scripts/make_minilm_reference.py [MODEL_DIR] [SHARED_DIR]

Binary layout (little-endian f32, concatenated): for each sentence i in order,
last_hidden [len_i, 384], then pooled [384], then embedding [384]. Offsets are in the JSON.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/libbert/all-MiniLM-L6-v2")
shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "..", "shared")
sys.path.insert(0, os.path.join(shared, "bench"))
import bert_ref  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

SENTENCES = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street corner.",
    "Machine learning models can be surprisingly brittle.",
    "I love this movie; the acting was superb!",
    "Where is the nearest train station?",
    "unaffable becomes un ##aff ##able",
    "Café au lait, crème brûlée and naïve résumé.",
    "東京は日本の首都です。",
    "Emoji 😀 and symbols ∑ ≠ ∞ are mostly unknown.",
    "tabs\tand\nnewlines   and   spaces",
    "Don't you think it's a bit late?",
    "",
    "A",
    "Numbers: 3.14159, 2,718 and 1e-12 appear here.",
    "THE CAPITALS ARE LOWERED BY THE UNCASED TOKENIZER.",
    "The stock market fell sharply on Tuesday after the announcement of new tariffs, "
    "dragging technology shares down by more than four percent in early trading.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "She sells sea shells by the sea shore.",
    "Is this the real life? Is this just fantasy?",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "The cat sat on the mat. The dog sat on the log. Everyone was happy with the seating "
    "arrangements, which had been planned for weeks by a committee of very serious animals.",
    "Rust is a systems programming language focused on safety and speed.",
    "How do I bake bread without yeast?",
]
# A sentence pair exercises token type ids 1.
PAIRS = [("How old are you?", "I am six years old.")]


def main():
    cfg = bert_ref.load_config(os.path.join(model_dir, "config.json"))
    w = bert_ref.load_weights(os.path.join(model_dir, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    encs = [tok.encode(s) for s in SENTENCES] + [tok.encode(a, b) for a, b in PAIRS]
    texts = [[s] for s in SENTENCES] + [[a, b] for a, b in PAIRS]
    items, blobs, offset = [], [], 0
    for text, e in zip(texts, encs):
        ids = np.array(e.ids, np.int64)[None]
        types = np.array(e.type_ids, np.int64)[None]
        mask = np.ones_like(ids)
        last, pooled = bert_ref.reference_forward(w, cfg, ids, mask, types, dtype=np.float64)
        last, pooled = last[0], pooled[0]
        emb = bert_ref.mean_pool(last[None], mask)[0]
        emb = emb / max(np.linalg.norm(emb), 1e-12)
        n = len(e.ids)
        items.append({
            "text": text,
            "input_ids": e.ids,
            "segment_ids": e.type_ids,
            "last_hidden_offset": offset,
            "pooled_offset": offset + n * 384,
            "embedding_offset": offset + n * 384 + 384,
        })
        for a in (last, pooled, emb):
            blobs.append(np.asarray(a, "<f4").ravel())
        offset += n * 384 + 2 * 384
    out_json = os.path.join(ROOT, "tests", "data", "minilm_reference.json")
    out_bin = os.path.join(ROOT, "tests", "data", "minilm_reference.bin")
    meta = {
        "description": "all-MiniLM-L6-v2 reference: NumPy BERT (bench/bert_ref.py) in float64, "
                       "each sentence alone; ids from HF tokenizers. Made by "
                       "scripts/make_minilm_reference.py.",
        "hidden_size": 384,
        "values_file": "minilm_reference.bin",
        "values": offset,
        "sentences": items,
    }
    with open(out_json, "w") as f:
        json.dump(meta, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    np.concatenate(blobs).astype("<f4").tofile(out_bin)
    print(f"wrote {len(items)} sentences, {offset} values to {out_bin}")


if __name__ == "__main__":
    main()
