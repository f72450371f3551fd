#!/usr/bin/env python3
"""Plots a `bert pretrain` run from its `train_log.jsonl`: training loss and masked-LM
accuracy per logged interval, and the evaluations (`"eval"` lines) as points.

    python3 scripts/plot_pretrain.py OUTPUT_DIR/train_log.jsonl [-o curve.png] [--title T]
    python3 scripts/plot_pretrain.py PHASE1/train_log.jsonl PHASE2/train_log.jsonl \
        --labels "seq 32" "seq 128" [--until 3000 4000]

Several logs are phases of one run (Google's seq-128-then-512 recipe, or any curriculum):
each phase's steps continue from where the previous one stopped (`--until`: the step of the
state the next phase started from, when the log goes on past it), a dotted line marks each
phase change and the evaluations carry the phase's label.

matplotlib is imported from the running Python, else from a virtual environment at
$LIBBERT_PLOT_VENV (default /tmp/libbert-plot-venv), created and filled with pip on first
use (the script then re-runs itself with that environment's Python).
"""

import argparse
import json
import os
import subprocess
import sys

VENV = os.environ.get("LIBBERT_PLOT_VENV", "/tmp/libbert-plot-venv")


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401

        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python")
    # The venv's python is a symlink to the system one: sys.prefix tells them apart.
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        sys.exit("matplotlib is missing from %s even after installing it" % VENV)
    if not os.path.exists(python):
        print("plot_pretrain: installing matplotlib into %s" % VENV, file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([python, "-m", "pip", "install", "-q", "matplotlib"])
    os.execv(python, [python] + sys.argv)


def read_log(path):
    """Training intervals and evaluations; a resumed run appends to the same file, so a
    step logged twice keeps its last line."""
    train, evals = {}, {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit("%s:%d: not JSON: %s" % (path, n, e))
            if "eval" in row:
                evals[row["step"]] = row["eval"]
            else:
                train[row["step"]] = row
    return sorted(train.items()), sorted(evals.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="+", help="train_log.jsonl of a bert pretrain run (one per phase)")
    ap.add_argument("--labels", nargs="*", default=None, help="one label per phase")
    ap.add_argument("--until", nargs="*", type=int, default=None, help="last step used, per phase")
    ap.add_argument("-o", "--output", help="PNG to write (default: beside the log)")
    ap.add_argument("--title", default=None)
    args = ap.parse_args()
    ensure_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = args.labels or [""] * len(args.logs)
    until = args.until or [None] * len(args.logs)
    if len(labels) != len(args.logs) or len(until) != len(args.logs):
        sys.exit("--labels and --until need one value per log")
    phases, offset = [], 0
    for path, label, last in zip(args.logs, labels, until):
        train, evals = read_log(path)
        if last is not None:
            train = [(s, r) for s, r in train if s <= last]
            evals = [(s, e) for s, e in evals if s <= last]
        if not train and not evals:
            sys.exit("%s: no logged steps" % path)
        phases.append((offset, label, train, evals))
        offset += last if last is not None else max(s for s, _ in train + evals)
    out = args.output or os.path.join(
        os.path.dirname(os.path.abspath(args.logs[-1])), "train_curve.png"
    )

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (off, label, train, evals) in enumerate(phases):
        tag = " (%s)" % label if label else ""
        first = i == 0
        if i > 0:
            for ax in (ax_loss, ax_acc):
                ax.axvline(off, color="gray", ls=":", lw=1)
        if train:
            steps = [off + s for s, _ in train]
            for ax, key, color, name in (
                (ax_loss, "loss", "C0", "train total loss"),
                (ax_loss, "masked_lm_loss", "C1", "train MLM loss"),
                (ax_acc, "masked_lm_accuracy", "C0", "train MLM acc"),
                (ax_acc, "next_sentence_accuracy", "C1", "train NSP acc"),
            ):
                alpha = 0.6 if key == "next_sentence_accuracy" else 1.0
                ax.plot(steps, [r[key] for _, r in train], color, lw=1, alpha=alpha, label=name if first else None)
        if evals:
            es = [off + s for s, _ in evals]
            for ax, key, style, color, name in (
                (ax_loss, "masked_lm_loss", "o-", 2 + 2 * i, "eval MLM loss"),
                (ax_acc, "masked_lm_accuracy", "o-", 2 + 2 * i, "eval MLM acc"),
                (ax_acc, "next_sentence_accuracy", "s--", 3 + 2 * i, "eval NSP acc"),
            ):
                ax.plot(es, [e[key] for _, e in evals], style, color="C%d" % color, label=name + tag)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(out)


if __name__ == "__main__":
    main()
