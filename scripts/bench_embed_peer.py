#!/usr/bin/env python3
"""Peer of the end-to-end embedding benchmark (issue 20): sentence-transformers' `encode` done
as it does it, on ONNX Runtime + Hugging Face `tokenizers`.

  RAYON_NUM_THREADS=1 python3 scripts/bench_embed_peer.py --onnx M.onnx --tokenizer tokenizer.json \
      --texts mixed.txt --threads 1 [--batch 32] [--max-seq 256] [--repeats 3] [--out vectors.f32]

Per repeat, from the texts in memory to the vectors: sort by text length, longest first (as
`SentenceTransformer.encode` sorts), cut into batches of `--batch`, tokenize each batch
(truncation to `--max-seq`, padding to the batch's longest), run the ONNX graph, mean-pool over
the attention mask, L2-normalise, put the vectors back in input order. Prints one JSON line:
median wall seconds, texts/s, tokens/s (real tokens, [CLS]/[SEP] included).
"""
import argparse
import json
import os
import statistics
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-seq", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    import onnxruntime as ort
    from tokenizers import Tokenizer

    with open(args.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    tok = Tokenizer.from_file(args.tokenizer)
    tok.enable_truncation(args.max_seq)
    tok.enable_padding()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}

    def encode():
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), 0), np.float32)
        vecs = [None] * len(texts)
        tokens = 0
        for b in range(0, len(texts), args.batch):
            idx = order[b:b + args.batch]
            enc = tok.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in enc], np.int64)
            mask = np.array([e.attention_mask for e in enc], np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask,
                     "token_type_ids": np.zeros_like(ids)}
            hidden = sess.run(None, {k: v for k, v in feeds.items() if k in names})[0]
            m = mask[:, :, None].astype(np.float32)
            mean = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            mean /= np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)
            for j, i in enumerate(idx):
                vecs[i] = mean[j]
            tokens += int(mask.sum())
        del out
        return np.stack(vecs).astype(np.float32), tokens

    encode()  # warm-up
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        vecs, tokens = encode()
        times.append(time.perf_counter() - t)
    if args.out:
        vecs.astype("<f4").tofile(args.out)
    s = statistics.median(times)
    print(json.dumps({"peer": "onnxruntime+tokenizers", "threads": args.threads,
                      "texts": len(texts), "tokens": tokens, "median_s": s, "min_s": min(times),
                      "texts_per_s": len(texts) / s, "tokens_per_s": tokens / s,
                      "load1": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
