#!/usr/bin/env python3
"""How predictable are the masked tokens of a pre-training evaluation file without a model?

Count-based baselines for a held-out masked-LM accuracy (`bert pretrain --do_eval`'s
`masked_lm_accuracy`), so a from-scratch run's figure has a scale:

    python3 scripts/mlm_baselines.py TRAIN.tfrecord HELDOUT.tfrecord

Counts come from the training file's text (each distinct sequence once: `dupe_factor` copies
differ only in their masks), with the masked tokens put back. Each held-out masked token is
then guessed from
- unigram: the most frequent token;
- left bigram: the most frequent follower of the token on its left;
- left x right bigram: argmax_w c(l, w) c(w, r) / c(w), over the top followers/predecessors;
- (l, _, r) trigram: the most frequent filler of the two neighbours, else the bigram guess.
The neighbours are the original tokens, even where they are masked too: an upper bound of
what these counts give a model that sees `[MASK]` there.

Standard library only: TFRecord framing and the `tf.train.Example` protobuf are read by hand
(int64 features, the only kind these files' token features use).
"""

import collections
import struct
import sys


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b):
    """(field number, value) of a protobuf message: ints for varints, bytes otherwise."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
            yield number, v
        elif wire == 2:
            n, i = varint(b, i)
            yield number, b[i : i + n]
            i += n
        elif wire == 5:
            yield number, b[i : i + 4]
            i += 4
        elif wire == 1:
            yield number, b[i : i + 8]
            i += 8
        else:
            raise ValueError(f"wire type {wire}")


def features(example):
    """{name: (kind, values)} of a serialized tf.train.Example: kind 3 int64, 2 float
    (bytes features are skipped)."""
    out = {}
    for _, feats in fields(example):  # Example.features
        for _, entry in fields(feats):  # Features.feature: map entries
            name, value = None, b""
            for number, x in fields(entry):
                if number == 1:
                    name = x.decode()
                else:
                    value = x
            for kind, lst in fields(value):
                vals = []
                for _, x in fields(lst):
                    if kind == 3 and isinstance(x, bytes):  # packed int64
                        j = 0
                        while j < len(x):
                            v, j = varint(x, j)
                            vals.append(v)
                    elif kind == 3:
                        vals.append(x)
                    elif kind == 2:  # packed float
                        vals += list(struct.unpack(f"<{len(x) // 4}f", x))
                if kind in (2, 3):
                    out[name] = (kind, vals)
    return out


def int64_features(example):
    """{name: [ints]} of a serialized tf.train.Example (float features are skipped)."""
    return {name: vals for name, (kind, vals) in features(example).items() if kind == 3}


def records(path):
    with open(path, "rb") as f:
        while True:
            header = f.read(12)  # length, masked CRC of the length
            if len(header) < 12:
                return
            (n,) = struct.unpack("<Q", header[:8])
            data = f.read(n)
            f.read(4)  # masked CRC of the data
            yield int64_features(data)


def instances(path):
    """(original token ids, [(masked position, original id)]) per record."""
    for e in records(path):
        ids = e["input_ids"][: sum(e["input_mask"])]
        n = sum(1 for x in e["masked_lm_ids"] if x)  # padded slots hold id 0
        masks = list(zip(e["masked_lm_positions"][:n], e["masked_lm_ids"][:n]))
        orig = list(ids)
        for p, t in masks:
            orig[p] = t
        yield orig, masks


def main(train_path, heldout_path):
    uni = collections.Counter()
    left = collections.defaultdict(collections.Counter)
    right = collections.defaultdict(collections.Counter)
    tri = collections.defaultdict(collections.Counter)
    seen = set()
    for orig, _ in instances(train_path):
        if tuple(orig) in seen:
            continue
        seen.add(tuple(orig))
        for i, w in enumerate(orig):
            uni[w] += 1
            if i:
                left[orig[i - 1]][w] += 1
            if i + 1 < len(orig):
                right[orig[i + 1]][w] += 1
            if 0 < i < len(orig) - 1:
                tri[(orig[i - 1], orig[i + 1])][w] += 1
    top = uni.most_common(1)[0][0]
    total = sum(uni.values())

    def both(l, r, w):
        prior = 0.1 * uni[w] / total
        return (left[l][w] + prior) * (right[r][w] + prior) / (uni[w] + 1)

    hits = collections.Counter()
    n = 0
    for orig, masks in instances(heldout_path):
        for p, t in masks:
            n += 1
            l = orig[p - 1]
            r = orig[p + 1] if p + 1 < len(orig) else None
            hits["unigram"] += t == top
            hits["left bigram"] += bool(left[l]) and left[l].most_common(1)[0][0] == t
            cands = {w for w, _ in left[l].most_common(200)}
            cands |= {w for w, _ in right[r].most_common(200)}
            guess = max(cands, key=lambda w: both(l, r, w)) if cands else top
            hits["left x right bigram"] += guess == t
            fill = tri.get((l, r))
            hits["(l, _, r) trigram, bigram backoff"] += (
                fill.most_common(1)[0][0] if fill else guess
            ) == t
    print(f"{n} held-out masked tokens; counts from {len(seen)} distinct training sequences")
    for name, k in hits.items():
        print(f"{name}: {k / n:.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
