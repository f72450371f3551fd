#!/usr/bin/env bash
# Encoder forward pass, ours vs ONNX Runtime (f32, CPU EP), same models, same ids, same run.
#   scripts/bench_encoder.sh            # all-MiniLM-L6-v2 and BERT-base shape, 1 and 2 threads
# Env: PEERS_DIR (default /tmp/peers), VENV_DIR (default /tmp/venv-peers), MODELS="minilm-l6
# bert-base-random", THREADS="1 2", SHAPES=1x16,1x128,8x128,32x128,1x384, BUDGET_S=3, MIN_RUNS=5.
# If the peer models are missing it rebuilds them from shared/bench (copied to a writable place):
# pip install -r requirements.txt into the venv, fetch_models.sh, make_onnx.py minilm / bert-base.
# For every (model, threads, shape) it runs ORT and then ours back to back (one process each), so
# both see the same load, and prints a markdown table. One thread: process CPU ms per run (time
# the scheduler gives other processes does not count); two threads: wall ms. Ratio = ORT / ours
# (>= 1.0: we are faster). Raw JSON lines go to $PEERS_DIR/bench_encoder.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${LIBBERT_SHARED:-$ROOT/../shared}
PEERS=${PEERS_DIR:-/tmp/peers}
VENV=${VENV_DIR:-/tmp/venv-peers}
MODELS=${MODELS:-"minilm-l6 bert-base-random"}
THREADS=${THREADS:-"1 2"}
SHAPES=${SHAPES:-1x16,1x128,8x128,32x128,1x384}
BUDGET_S=${BUDGET_S:-3}
MIN_RUNS=${MIN_RUNS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [ ! -f "$PEERS/models/minilm-l6.onnx" ] || [ ! -f "$PEERS/models/bert-base-random.onnx" ] \
   || [ ! -f "$PEERS/models/minilm-l6/model.safetensors" ] \
   || [ ! -f "$PEERS/models/bert-base-random/model.safetensors" ]; then
  echo "building peer models in $PEERS" >&2
  TMP=$(mktemp -d)
  cp -r "$SHARED/bench/." "$TMP/" && chmod -R u+w "$TMP"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$TMP/requirements.txt"
  (cd "$TMP" && PATH="$VENV/bin:$PATH" SKIP_EXTRA=1 bash fetch_models.sh \
     && "$VENV/bin/python" make_onnx.py minilm && "$VENV/bin/python" make_onnx.py bert-base) >&2
  mkdir -p "$PEERS" && cp -r "$TMP/." "$PEERS/" && rm -rf "$TMP"
fi
"$VENV/bin/python" -c "import onnxruntime" 2>/dev/null \
  || "$VENV/bin/pip" install -q -r "$PEERS/requirements.txt"

cargo bench --bench encoder --no-run -q 2>/dev/null
OURS=$(cargo bench --bench encoder --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$OURS" ] || { echo "could not find the encoder bench binary" >&2; exit 1; }

OUT=$PEERS/bench_encoder.jsonl
: > "$OUT"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load1 at start: $(cut -d' ' -f1 /proc/loadavg)" >&2
for model in $MODELS; do
  for t in $THREADS; do
    for shape in ${SHAPES//,/ }; do
      common=(--label "$model" --threads "$t" --shapes "$shape" --budget-s "$BUDGET_S" --min-runs "$MIN_RUNS")
      "$VENV/bin/python" "$PEERS/bench_ort.py" --onnx "$PEERS/models/$model.onnx" "${common[@]}" | tee -a "$OUT" | cut -c1-160 >&2
      "$OURS" --model "$PEERS/models/$model" "${common[@]}" | tee -a "$OUT" | cut -c1-160 >&2
    done
  done
done
echo "load1 at end: $(cut -d' ' -f1 /proc/loadavg)" >&2

"$VENV/bin/python" - "$OUT" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["model"], r["threads"], r["batch"], r["seq"])
    rows.setdefault(key, {})[r["peer"]] = r
print("| model | (batch, seq) | threads | ORT ms | ours ms | ratio ORT/ours | load1 |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for (model, t, b, s), v in rows.items():
    if "onnxruntime" not in v or "libbert" not in v:
        continue
    field = "median_cpu_ms" if t == 1 else "median_ms"
    o, u = v["onnxruntime"][field], v["libbert"][field]
    ratio = o / u
    flag = "" if ratio >= 1.0 else " (below 1.0)"
    load = v["onnxruntime"]["load1"] + v["libbert"]["load1"]
    print(f"| {model} | ({b},{s}) | {t} | {o:.2f} | {u:.2f} | {ratio:.2f}{flag} | {min(load):.1f}-{max(load):.1f} |")
PY
