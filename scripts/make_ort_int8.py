#!/usr/bin/env python3
"""Quantizes f32 ONNX BERT exports with ONNX Runtime's own int8 recipe,
`onnxruntime.quantization.quantize_dynamic` (weight_type QInt8: int8 weights, zero point 0,
scale max|w|/127; activations quantized at run time by DynamicQuantizeLinear, MatMul became
MatMulInteger + Cast + Mul by the scales; embedding tables become uint8 + DequantizeLinear).

Each model is written twice, beside its source unless OUT_DIR is given:
  <name>-int8.onnx      per_channel=False (one scale per weight tensor: ORT's default)
  <name>-int8-pc.onnx   per_channel=True  (one scale per output column)

These files are what libbert imports onto its int8 kernels (src/weights/onnx/int8.rs) and what
scripts/bench_encoder.sh runs ONNX Runtime on for the int8 peer numbers.

Usage:
  /tmp/venv-peers/bin/python scripts/make_ort_int8.py [--force] [--out-dir DIR] MODEL.onnx...
  /tmp/venv-peers/bin/python scripts/make_ort_int8.py --defaults [--force]
    --defaults: $PEERS_DIR/models/{minilm-l6,bert-base-random}.onnx (default PEERS_DIR /tmp/peers)
    and $LIBBERT_CACHE/paraphrase-MiniLM-L3-v2-onnx/paraphrase-MiniLM-L3-v2.onnx, the last one
    into $LIBBERT_CACHE/paraphrase-MiniLM-L3-v2-onnx-int8/ (with its vocab.txt).
Existing outputs are kept unless --force (idempotent). Needs onnx and onnxruntime.
"""
import argparse
import logging
import os
import shutil
import sys

VARIANTS = [("-int8", False), ("-int8-pc", True)]


def quantize(src, out_dir=None, force=False, variants=VARIANTS, weight_type="QInt8", extra=None):
    """Writes the quantized variants of `src`; returns their paths."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    base = os.path.splitext(os.path.basename(src))[0]
    out_dir = out_dir or os.path.dirname(os.path.abspath(src))
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for suffix, per_channel in variants:
        dst = os.path.join(out_dir, base + suffix + ".onnx")
        written.append(dst)
        if os.path.exists(dst) and not force:
            print(f"kept {dst}", file=sys.stderr)
            continue
        tmp = dst + ".part.onnx"
        quantize_dynamic(src, tmp, per_channel=per_channel,
                         weight_type=getattr(QuantType, weight_type), extra_options=extra or {})
        os.replace(tmp, dst)
        print(f"wrote {dst} ({os.path.getsize(dst) / 1e6:.1f} MB, per_channel={per_channel}, "
              f"{weight_type})", file=sys.stderr)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--defaults", action="store_true")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--out-dir")
    args = ap.parse_args()
    # quantize_dynamic warns that pre-processing is recommended; the graphs are quantized as
    # exported on purpose (that is the file a user of quantize_dynamic gets).
    logging.getLogger().setLevel(logging.ERROR)

    for m in args.models:
        quantize(m, args.out_dir, args.force)
    if args.defaults:
        peers = os.environ.get("PEERS_DIR", "/tmp/peers")
        for name in ["minilm-l6", "bert-base-random"]:
            src = os.path.join(peers, "models", name + ".onnx")
            if os.path.exists(src):
                quantize(src, None, args.force)
            else:
                print(f"missing {src} (scripts/bench_encoder.sh builds it)", file=sys.stderr)
        cache = os.environ.get("LIBBERT_CACHE", os.path.expanduser("~/.cache/libbert"))
        l3 = os.path.join(cache, "paraphrase-MiniLM-L3-v2-onnx")
        out = os.path.join(cache, "paraphrase-MiniLM-L3-v2-onnx-int8")
        src = os.path.join(l3, "paraphrase-MiniLM-L3-v2.onnx")
        if os.path.exists(src):
            quantize(src, out, args.force)
            vocab = os.path.join(l3, "vocab.txt")
            if os.path.exists(vocab) and not os.path.exists(os.path.join(out, "vocab.txt")):
                shutil.copy(vocab, os.path.join(out, "vocab.txt"))
        else:
            print(f"missing {src} (scripts/setup.sh fetches it)", file=sys.stderr)


if __name__ == "__main__":
    main()
