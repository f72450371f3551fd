#!/usr/bin/env python3
"""ONNX Runtime's start-up on one model (issue 20, "models that load instantly"): session
creation and the first run of one short sentence, timed inside the process (the interpreter's
start and `import onnxruntime` are reported apart). Prints one JSON line.
    bench_startup_peer.py --onnx MODEL.onnx [--threads 1]
"""
import argparse, json, time

t_process = time.perf_counter()
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

t_import = time.perf_counter()
ap = argparse.ArgumentParser()
ap.add_argument("--onnx", required=True)
ap.add_argument("--threads", type=int, default=1)
a = ap.parse_args()
so = ort.SessionOptions()
so.intra_op_num_threads = a.threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
t0 = time.perf_counter()
sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
t1 = time.perf_counter()
ids = np.array([[101, 7592, 2088, 102]], dtype=np.int64)  # [CLS] hello world [SEP]
feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
out = sess.run(None, feeds)[0]
t2 = time.perf_counter()
print(json.dumps({"peer": "onnxruntime", "import_ms": round((t_import - t_process) * 1e3, 1),
                  "session_ms": round((t1 - t0) * 1e3, 1), "first_run_ms": round((t2 - t1) * 1e3, 1),
                  "session_and_first_run_ms": round((t2 - t0) * 1e3, 1), "shape": list(out.shape)}))
