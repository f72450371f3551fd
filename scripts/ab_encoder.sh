#!/usr/bin/env bash
# A/B of encoder builds (and ONNX Runtime) on one row, alternating runs so that every build sees
# the same load. The session-5 A/B figures in BENCHMARKS.md come from it.
#   scripts/ab_encoder.sh MODEL SHAPE ROUNDS THREADS BIN...
#   e.g. scripts/ab_encoder.sh bert-base-random 1x128 4 2 /tmp/enc_before /tmp/enc_after ort
# MODEL: a model directory name under $PEERS_DIR/models (run scripts/bench_encoder.sh once to
# build them). BIN: a copy of an encoder bench binary (`cargo bench --bench encoder --no-run`
# prints its path; copy it away before building the other commit), or `ort` for ONNX
# Runtime on $MODEL.onnx. Each round runs every BIN once (--budget-s 0.7 --min-runs 3); one
# thread counts process CPU ms, two threads wall ms. Prints each BIN's min and median of rounds.
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,11p "$0"; exit 2; }
PEERS=${PEERS_DIR:-/tmp/peers}
VENV=${VENV_DIR:-/tmp/venv-peers}
model=$1 shape=$2 rounds=$3 threads=$4
shift 4
common=(--label ab --threads "$threads" --shapes "$shape" --budget-s 0.7 --min-runs 3)
for _ in $(seq "$rounds"); do
  for bin in "$@"; do
    if [ "$bin" = ort ]; then
      out=$("$VENV/bin/python" "$PEERS/bench_ort.py" --onnx "$PEERS/models/$model.onnx" "${common[@]}")
    else
      out=$("$bin" --model "$PEERS/models/$model" "${common[@]}")
    fi
    printf '%s %s\n' "$bin" "$(printf '%s' "$out" | tail -1 | python3 -c \
      "import json,sys; r=json.loads(sys.stdin.read()); print(r['median_cpu_ms'] if r['threads']==1 else r['median_ms'])")"
  done
done | python3 -c "
import statistics, sys
d = {}
for line in sys.stdin:
    b, v = line.split()
    d.setdefault(b, []).append(float(v))
for b, v in d.items():
    print(f'{b}: min {min(v):.2f} median {statistics.median(v):.2f} ms  n={len(v)}')
"
