#!/usr/bin/env python3
"""Writes SQuAD 2.0 questions as a sentence-pair task for `bert classify --task_name=tsv`:
question, paragraph, label (`answerable` / `impossible`), one row per question, to train an
answer verifier (a sequence classifier deciding whether the paragraph answers the question)
beside the span model; scripts/squad_verify.py combines the two.

  python3 scripts/squad_answerability.py v2_train.json v2_eval.json DIR
Writes DIR/train.tsv from the first file, DIR/dev.tsv and DIR/test.tsv (same rows, in the
file's question order) from the second, and DIR/test_ids.txt (the question ids of test.tsv).
Columns: 0 id, 1 question, 2 paragraph, 3 label; no header.
"""
import json
import os
import sys


def rows(path):
    for a in json.load(open(path))["data"]:
        for p in a["paragraphs"]:
            context = " ".join(p["context"].split())
            for q in p["qas"]:
                label = "impossible" if q.get("is_impossible") else "answerable"
                yield q["id"], " ".join(q["question"].split()), context, label


def write(path, rs):
    with open(path, "w") as f:
        for r in rs:
            f.write("\t".join(r) + "\n")


def main():
    train, evaluate, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    tr, ev = list(rows(train)), list(rows(evaluate))
    write(os.path.join(out, "train.tsv"), tr)
    for name in ("dev.tsv", "test.tsv"):
        write(os.path.join(out, name), ev)
    with open(os.path.join(out, "test_ids.txt"), "w") as f:
        f.writelines(r[0] + "\n" for r in ev)
    imp = lambda rs: sum(r[3] == "impossible" for r in rs)
    print(f"train {len(tr)} ({imp(tr)} impossible), eval {len(ev)} ({imp(ev)} impossible)")


if __name__ == "__main__":
    main()
