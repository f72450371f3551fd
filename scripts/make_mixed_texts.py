#!/usr/bin/env python3
"""The mixed-length texts of the end-to-end embedding benchmark (issue 20): real GLUE
sentences and SQuAD paragraphs from shared/data, shuffled with a fixed seed, one per line.

  python3 scripts/make_mixed_texts.py SHARED_DIR OUT [N=2000]

Three quarters GLUE sentences (SST-2, CoLA, MRPC and RTE sentences: 5-60 tokens), one quarter
SQuAD paragraphs (100-300+ tokens; truncated to the model's 256 positions by both sides).
"""
import csv
import json
import random
import sys

shared, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
csv.field_size_limit(1 << 24)


def tsv(path, cols, skip_header=True):
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for row in rows[1 if skip_header else 0:]:
        for c in cols:
            if c < len(row) and row[c].strip():
                yield row[c].strip()


sentences = []
sentences += tsv(f"{shared}/data/glue/SST-2/dev.tsv", [0])
sentences += tsv(f"{shared}/data/glue/CoLA/dev.tsv", [3], skip_header=False)
sentences += tsv(f"{shared}/data/glue/MRPC/dev.tsv", [3, 4])
sentences += tsv(f"{shared}/data/glue/RTE/dev.tsv", [1, 2])
paragraphs = []
for name in ["dev-v1.1.json", "dev-v2.0.json"]:
    with open(f"{shared}/data/squad/{name}", encoding="utf-8") as f:
        for article in json.load(f)["data"]:
            paragraphs += [p["context"] for p in article["paragraphs"]]
rng = random.Random(20)
sentences = sorted(set(sentences))
paragraphs = sorted(set(paragraphs))
texts = rng.sample(sentences, n - n // 4) + rng.sample(paragraphs, n // 4)
rng.shuffle(texts)
with open(out, "w", encoding="utf-8") as f:
    for t in texts:
        f.write(" ".join(t.split()) + "\n")
