#!/usr/bin/env python3
"""Combines a SQuAD 2.0 span model's no-answer score with an answer verifier's and scores
the result with evaluate-v2.0.py's metric (best threshold included).

  python3 scripts/squad_verify.py EVAL.json SPAN_DIR [SPAN_DIR ...] [--verifier VER_DIR ... --ids IDS]

SPAN_DIR: a `bert squad --do_predict --version_2_with_negative` output folder
(nbest_predictions.json, null_odds.json); the answer text is the first SPAN_DIR's best
non-null n-best entry. VER_DIR: a `bert classify --do_predict` folder (test_results.tsv, the
probabilities of [answerable, impossible] per row) over the rows squad_answerability.py
wrote; IDS is its test_ids.txt (each row's question id).
Each score is standardised over the evaluated questions (no labels used) and the no-answer
score is their mean: equal weights, fixed before any result was seen.
Prints one JSON line per score alone and one for the combination.
"""
import argparse
import collections
import json
import math
import re
import string


def normalize_answer(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def compute_f1(gold, pred):
    g, p = normalize_answer(gold).split(), normalize_answer(pred).split()
    if not g or not p:
        return float(g == p)
    same = sum((collections.Counter(g) & collections.Counter(p)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def gold_answers(path):
    gold = {}
    for a in json.load(open(path))["data"]:
        for p in a["paragraphs"]:
            for q in p["qas"]:
                texts = [x["text"] for x in q["answers"] if normalize_answer(x["text"])]
                gold[q["id"]] = texts or [""]
    return gold


def standardise(scores):
    vals = list(scores.values())
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) or 1.0
    return {k: (v - mean) / sd for k, v in scores.items()}


def evaluate(gold, text, na_score):
    """evaluate-v2.0.py with every question answered by `text`: F1 at threshold 0 is not
    meaningful for standardised scores, so the best threshold (find_best_thresh) is reported,
    with HasAns / NoAns F1 there."""
    f1 = {q: max(compute_f1(g, text[q]) for g in gold[q]) for q in gold}
    has = {q for q in gold if gold[q] != [""]}
    order = sorted(gold, key=lambda q: na_score[q])
    # Start with every question abstaining, then answer them in order of no-answer score.
    score = best = len(gold) - len(has)
    best_t, cut = float("inf"), 0
    for i, q in enumerate(order):
        score += f1[q] if q in has else -1
        if score > best:
            best, best_t, cut = score, na_score[q], i + 1
    answered = set(order[:cut])
    has_f1 = sum(f1[q] for q in has if q in answered) / len(has)
    no_f1 = sum(1 for q in gold if q not in has and q not in answered) / (len(gold) - len(has))
    return {
        "best_f1": round(100 * best / len(gold), 2),
        "HasAns_f1": round(100 * has_f1, 2),
        "NoAns_f1": round(100 * no_f1, 2),
        "answered": cut,
        "threshold": round(best_t, 4),
    }


def verifier_scores(folder, ids_file):
    ids = [line.strip() for line in open(ids_file)]
    rows = [line.split("\t") for line in open(f"{folder}/test_results.tsv")]
    # log-odds of `impossible` (labels sorted: answerable, impossible)
    return {q: math.log(float(r[1]) + 1e-12) - math.log(float(r[0]) + 1e-12) for q, r in zip(ids, rows)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("eval_file")
    ap.add_argument("span_dirs", nargs="+")
    ap.add_argument("--verifier", nargs="*", default=[])
    ap.add_argument("--ids", help="squad_answerability.py's test_ids.txt (with --verifier)")
    a = ap.parse_args()
    gold = gold_answers(a.eval_file)
    nbest = json.load(open(f"{a.span_dirs[0]}/nbest_predictions.json"))
    text = {q: next((e["text"] for e in nbest[q] if e["text"]), "") for q in gold}
    scores = {f"span:{d}": json.load(open(f"{d}/null_odds.json")) for d in a.span_dirs}
    scores.update({f"verifier:{d}": verifier_scores(d, a.ids) for d in a.verifier})
    z = {k: standardise({q: s[q] for q in gold}) for k, s in scores.items()}
    for k in z:
        print(json.dumps({"score": k, **evaluate(gold, text, z[k])}))
    mean = {q: sum(z[k][q] for k in z) / len(z) for q in gold}
    print(json.dumps({"score": "mean of " + ", ".join(z), **evaluate(gold, text, mean)}))


if __name__ == "__main__":
    main()
