#!/usr/bin/env python3
"""The peer of `cargo bench --bench squad`: ONNX Runtime running the same fine-tuned SQuAD
model (encoder + span head) on the same features, batch for batch.

The weights come from `bert convert --model model.bert --output model.safetensors` (Hugging
Face names); the encoder graph is the peer benchmarks' standard BERT graph
(`../shared/bench/make_onnx.py`), with BertForQuestionAnswering's `qa_outputs` MatMul + Add on
top. The features (input_ids, input_mask, segment_ids, u32 [n, seq]) and libbert's logits are
those the Rust bench wrote with `--out DIR`. Prints one JSON line: features/s (median of the
repeats after a warm-up) and the largest logit difference to libbert's at real positions.

  python3 scripts/bench_squad_peer.py --peers /tmp/peers --weights model.safetensors \
      --config bert_config.json --dir /tmp/squad_bench --seq 384 --batch 8 --threads 1
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", required=True, help="directory of ../shared/bench's scripts")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    import bert_ref
    import make_onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    cfg = json.load(open(a.config))
    w = bert_ref.load_weights(a.weights)
    model = make_onnx.build_bert_onnx(w, cfg, name="bert_squad")
    g = model.graph
    g.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(w["qa_outputs.weight"].T, np.float32), "qa_w"),
        numpy_helper.from_array(np.ascontiguousarray(w["qa_outputs.bias"], np.float32), "qa_b"),
    ])
    g.node.extend([
        helper.make_node("MatMul", ["last_hidden_state", "qa_w"], ["qa_mm"], name="qa/MatMul"),
        helper.make_node("Add", ["qa_mm", "qa_b"], ["logits"], name="qa/Add"),
    ])
    g.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", 2]))
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def u32(name):
        return np.fromfile(os.path.join(a.dir, name), dtype="<u4").reshape(-1, a.seq).astype(np.int64)

    ids, mask, seg = u32("input_ids.u32"), u32("input_mask.u32"), u32("segment_ids.u32")
    n = len(ids)

    def run():
        out = []
        for b in range(0, n, a.batch):
            feed = {"input_ids": ids[b:b + a.batch], "attention_mask": mask[b:b + a.batch],
                    "token_type_ids": seg[b:b + a.batch]}
            out.append(sess.run(["logits"], feed)[0])
        return np.concatenate(out)

    logits = run()
    times = []
    for _ in range(max(1, a.repeats)):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    median = sorted(times)[len(times) // 2]
    ours_s = np.fromfile(os.path.join(a.dir, "start_logits.f32"), dtype="<f4").reshape(n, a.seq)
    ours_e = np.fromfile(os.path.join(a.dir, "end_logits.f32"), dtype="<f4").reshape(n, a.seq)
    real = mask == 1
    diff = max(np.abs(logits[..., 0] - ours_s)[real].max(), np.abs(logits[..., 1] - ours_e)[real].max())
    print(json.dumps({"engine": "onnxruntime " + ort.__version__, "seq": a.seq, "batch": a.batch,
                      "threads": a.threads, "features": n, "median_s": round(median, 4),
                      "features_per_s": round(n / median, 2), "max_abs_logit_diff": float(diff)}))


if __name__ == "__main__":
    main()
