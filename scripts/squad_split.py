#!/usr/bin/env python3
"""Splits a shared SQuAD dev half for the real runs of issue 16: every article but the last 4
for training (first answer per question, as run_squad.py's training requires), the last 4
kept out for evaluation (all answers, as the official script scores them).

  python3 scripts/squad_split.py ../shared/data/squad/dev-v1.1.json train.json eval.json
Prints: training articles, training questions, evaluation articles, evaluation questions.
"""
import copy
import json
import sys


def questions(articles):
    return sum(len(p["qas"]) for a in articles for p in a["paragraphs"])


def main():
    src, out_train, out_eval = sys.argv[1:4]
    d = json.load(open(src))
    train, held = copy.deepcopy(d["data"][:-4]), d["data"][-4:]
    for a in train:
        for p in a["paragraphs"]:
            for q in p["qas"]:
                q["answers"] = q.get("answers", [])[:1]
    json.dump({"version": d["version"], "data": train}, open(out_train, "w"))
    json.dump({"version": d["version"], "data": held}, open(out_eval, "w"))
    print(len(train), questions(train), len(held), questions(held))


if __name__ == "__main__":
    main()
