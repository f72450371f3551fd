#!/usr/bin/env python3
"""Unanswerable SQuAD questions made from answerable ones: each question of IN (SQuAD 1.1 or
2.0 JSON) asked again on another paragraph of the same article, marked `is_impossible`.

    python3 scripts/squad_negatives.py IN.json OUT.json [--per-question K] [--seed S] [--max N]

A same-article paragraph shares the question's topic, so the model must check that the
paragraph holds the answer rather than that it is about the right thing. A paragraph whose
text contains one of the question's answers is never used. OUT holds only the new questions
(ids `<id>_neg<k>`), in IN's article/paragraph layout, for concatenation with training data.
"""

import argparse
import json
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--per-question", type=int, default=1)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--max", type=int, default=0, help="keep at most N new questions (0: all)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    data = json.load(open(a.inp))["data"]
    made = []  # (article index, paragraph index, qa)
    for ai, art in enumerate(data):
        paras = art["paragraphs"]
        for pi, p in enumerate(paras):
            for qa in p["qas"]:
                if qa.get("is_impossible"):
                    continue
                answers = [x["text"] for x in qa["answers"]]
                others = [
                    j
                    for j in range(len(paras))
                    if j != pi and not any(t in paras[j]["context"] for t in answers)
                ]
                for k, j in enumerate(rng.sample(others, min(a.per_question, len(others)))):
                    made.append(
                        (
                            ai,
                            j,
                            {
                                "id": f"{qa['id']}_neg{k}",
                                "question": qa["question"],
                                "answers": [],
                                "is_impossible": True,
                            },
                        )
                    )
    rng.shuffle(made)
    if a.max:
        made = made[: a.max]
    out = []
    for ai, art in enumerate(data):
        paras = []
        for pi, p in enumerate(art["paragraphs"]):
            qas = [qa for (x, y, qa) in made if (x, y) == (ai, pi)]
            if qas:
                paras.append({"context": p["context"], "qas": qas})
        if paras:
            out.append({"title": art["title"], "paragraphs": paras})
    json.dump({"version": "v2.0", "data": out}, open(a.out, "w"))
    print(f"{len(made)} unanswerable questions in {len(out)} articles -> {a.out}")


if __name__ == "__main__":
    main()
