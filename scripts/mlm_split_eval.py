#!/usr/bin/env python3
"""Split a pre-training evaluation file by what the model sees at each masked slot.

Google's masking replaces 80% of the chosen tokens by [MASK], keeps 10% as they are and puts a
random token in 10%. `bert pretrain --do_eval`'s masked_lm_accuracy averages the three, and
the kept slots are easy (the answer is the input token), so a model that learned no context
at all still scores ~0.09 from them plus the unigram guess on the rest. This script writes
copies of the file whose `masked_lm_weights` keep one kind of slot each, so that `--do_eval`
on each copy says what the model learned:

    python3 scripts/mlm_split_eval.py HELDOUT.tfrecord OUT_DIR [--mask_id 103]
    bert pretrain --input_file=OUT_DIR/mask.tfrecord --bert_config_file=... --output_dir=RUN --do_eval

writes OUT_DIR/{mask,kept,random,all}.tfrecord and prints the slot counts. [MASK] is id 103
in Google's uncased (and MiniLM's) vocab.txt; pass --mask_id for another vocabulary.

Standard library only (the TFRecord framing and the Example protobuf by hand, as in
mlm_baselines.py).
"""

import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlm_baselines import features  # noqa: E402

KINDS = ("mask", "kept", "random", "all")


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def masked_crc(data):
    """TFRecord's masked CRC32C."""
    c = 0xFFFFFFFF
    for x in data:
        c = _TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint_bytes(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field."""
    return _varint_bytes((number << 3) | 2) + _varint_bytes(len(payload)) + payload


def serialize(feats):
    entries = b""
    for name in sorted(feats):
        kind, vals = feats[name]
        if kind == 3:
            packed = b"".join(_varint_bytes(v) for v in vals)
        else:
            packed = struct.pack(f"<{len(vals)}f", *vals)
        feature = _field(kind, _field(1, packed))
        entries += _field(1, _field(1, name.encode()) + _field(2, feature))
    return _field(1, entries)


def raw_records(path):
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return
            (n,) = struct.unpack("<Q", header[:8])
            data = f.read(n)
            f.read(4)
            yield data


def write_record(out, data):
    length = struct.pack("<Q", len(data))
    out.write(length + struct.pack("<I", masked_crc(length)))
    out.write(data + struct.pack("<I", masked_crc(data)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("eval_file")
    ap.add_argument("out_dir")
    ap.add_argument("--mask_id", type=int, default=103)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    outs = {k: open(os.path.join(args.out_dir, f"{k}.tfrecord"), "wb") for k in KINDS}
    counts = dict.fromkeys(KINDS, 0)
    for data in raw_records(args.eval_file):
        feats = features(data)
        ids = feats["input_ids"][1]
        slots = zip(
            feats["masked_lm_positions"][1],
            feats["masked_lm_ids"][1],
            feats["masked_lm_weights"][1],
        )
        slots = list(slots)
        for kind, out in outs.items():
            weights = []
            for pos, label, weight in slots:
                seen = ids[pos]
                slot = "mask" if seen == args.mask_id else ("kept" if seen == label else "random")
                keep = weight > 0 and kind in ("all", slot)
                weights.append(1.0 if keep else 0.0)
                counts[kind] += keep
            copy = dict(feats)
            copy["masked_lm_weights"] = (2, weights)
            write_record(out, serialize(copy))
    for out in outs.values():
        out.close()
    print(" ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
