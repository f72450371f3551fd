#!/usr/bin/env bash
# Process start to the first BERT-base embedding (issue 20): `bert embed` of one sentence on
# a `.bert` file with packed kernels (run from the memory map) and on a plain one (packed at
# load), against ONNX Runtime's session creation + first run of the same weights; all warm
# (the files in the page cache, as for a second process), alternated, RUNS times each.
#   scripts/bench_startup.sh          # MODEL=bert-base-random RUNS=7 THREADS=1
# Needs the peer models (scripts/bench_encoder.sh builds them into $PEERS_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS_DIR:-/tmp/peers}
VENV=${VENV_DIR:-/tmp/venv-peers}
MODEL=${MODEL:-bert-base-random}
RUNS=${RUNS:-7}
THREADS=${THREADS:-1}
WORK=${WORK:-/tmp/bench_startup}
mkdir -p "$WORK"
cargo build --release -q -p bert --bin bert
BERT=target/release/bert
[ -f "$WORK/$MODEL-packed.bert" ] || "$BERT" convert --model "$PEERS/models/$MODEL" --output "$WORK/$MODEL-packed.bert" 2>/dev/null
[ -f "$WORK/$MODEL-plain.bert" ] || "$BERT" convert --model "$PEERS/models/$MODEL" --output "$WORK/$MODEL-plain.bert" --pack=false 2>/dev/null
cat "$WORK/$MODEL-packed.bert" "$WORK/$MODEL-plain.bert" "$PEERS/models/$MODEL.onnx" >/dev/null
python3 - "$BERT" "$WORK/$MODEL" "$VENV/bin/python" "$PEERS/models/$MODEL.onnx" "$RUNS" "$THREADS" <<'PY'
import json, os, resource, statistics, subprocess, sys, time
bert, stem, py, onnx, runs, threads = sys.argv[1:7]
runs = int(runs)
def ours(variant):
    t = time.perf_counter()
    p = subprocess.run([bert, "embed", "--model", f"{stem}-{variant}.bert", "--threads", threads],
                       input=b"hello world\n", capture_output=True, check=True)
    ms = (time.perf_counter() - t) * 1e3
    assert p.stdout.count(b",") >= 767, p.stdout[:200]
    return ms
def peer():
    t = time.perf_counter()
    p = subprocess.run([py, "scripts/bench_startup_peer.py", "--onnx", onnx, "--threads", threads],
                       capture_output=True, check=True)
    d = json.loads(p.stdout)
    d["process_ms"] = (time.perf_counter() - t) * 1e3
    return d
res = {"packed": [], "plain": [], "ort": []}
for _ in range(runs):
    res["packed"].append(ours("packed")); res["plain"].append(ours("plain")); res["ort"].append(peer())
med = statistics.median
ort_in = med(d["session_and_first_run_ms"] for d in res["ort"])
ort_proc = med(d["process_ms"] for d in res["ort"])
print(f"| what | median ms (of {runs}) |")
print("|---|---|")
print(f"| libbert, packed .bert: process start to first vector | {med(res['packed']):.1f} |")
print(f"| libbert, plain .bert (packed at load): process start to first vector | {med(res['plain']):.1f} |")
print(f"| ONNX Runtime: session creation + first run (in process) | {ort_in:.1f} |")
print(f"| ONNX Runtime: whole Python process (interpreter, import, session, run) | {ort_proc:.1f} |")
print(f"ratio ORT session+first run / libbert packed process: {ort_in / med(res['packed']):.1f}x")
PY
for v in packed plain; do
  /usr/bin/time -f "RSS after the first vector, $v: %M KB" "$BERT" embed --model "$WORK/$MODEL-$v.bert" --threads "$THREADS" <<<"hello world" >/dev/null
done
ls -l "$WORK/$MODEL-packed.bert" "$WORK/$MODEL-plain.bert" | awk '{print "file size: " $5 " bytes  " $9}'
