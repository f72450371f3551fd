#!/usr/bin/env bash
# Encoder forward pass, ours vs ONNX Runtime (CPU EP), same models, same ids, same run.
#   scripts/bench_encoder.sh            # all-MiniLM-L6-v2 and BERT-base shape, 1 and 2 threads
#   VARIANTS="f32 int8" THREADS=1 SHAPES=1x128,8x128 scripts/bench_encoder.sh   # int8 too
# Env: PEERS_DIR (default /tmp/peers), VENV_DIR (default /tmp/venv-peers), MODELS="minilm-l6
# bert-base-random", THREADS="1 2", SHAPES=1x16,1x128,8x128,32x128,1x384, BUDGET_S=3, MIN_RUNS=5,
# REPEAT=1 (ORT-then-ours pairs per row; each side's fastest counts: the machine's other
# tenants slow single runs by up to 30%), VARIANTS="f32" (and/or int8), ORT_INT8=-int8 (the quantize_dynamic file: -int8 one scale per
# tensor, ONNX Runtime's default; -int8-pc one per column).
# int8: ONNX Runtime runs its own dynamically quantized model ($model$ORT_INT8.onnx, written by
# scripts/make_ort_int8.py from $model.onnx when missing), ours the same f32 weights with
# `--dtype int8` (quantized per output column at load).
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
REPEAT=${REPEAT:-1}
MIN_RUNS=${MIN_RUNS:-5}
VARIANTS=${VARIANTS:-f32}
ORT_INT8=${ORT_INT8:--int8}
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

if [[ " $VARIANTS " == *" int8 "* ]]; then
  for model in $MODELS; do
    [ -f "$PEERS/models/$model$ORT_INT8.onnx" ] \
      || "$VENV/bin/python" scripts/make_ort_int8.py "$PEERS/models/$model.onnx" >&2
  done
fi

cargo bench --bench encoder --no-run -q 2>/dev/null
OURS=$(cargo bench --bench encoder --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$OURS" ] || { echo "could not find the encoder bench binary" >&2; exit 1; }

OUT=$PEERS/bench_encoder.jsonl
: > "$OUT"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load1 at start: $(cut -d' ' -f1 /proc/loadavg)" >&2
for model in $MODELS; do
  for t in $THREADS; do
    for shape in ${SHAPES//,/ }; do
      for variant in $VARIANTS; do
        common=(--label "$model" --threads "$t" --shapes "$shape" --budget-s "$BUDGET_S" --min-runs "$MIN_RUNS")
        case $variant in
          f32) ort_file=$PEERS/models/$model.onnx; ours_flags=() ;;
          int8) ort_file=$PEERS/models/$model$ORT_INT8.onnx; ours_flags=(--dtype int8) ;;
          *) echo "unknown variant $variant (f32, int8)" >&2; exit 1 ;;
        esac
        # Each line is tagged with its variant, whatever the peer itself writes there.
        tag="s/\"variant\": \"[^\"]*\"/\"variant\": \"$variant\"/"
        for _ in $(seq "$REPEAT"); do
          "$VENV/bin/python" "$PEERS/bench_ort.py" --onnx "$ort_file" --variant "$variant" "${common[@]}" | sed "$tag" | tee -a "$OUT" | cut -c1-160 >&2
          "$OURS" --model "$PEERS/models/$model" "${ours_flags[@]}" "${common[@]}" | sed "$tag" | tee -a "$OUT" | cut -c1-160 >&2
        done
      done
    done
  done
done
echo "load1 at end: $(cut -d' ' -f1 /proc/loadavg)" >&2

"$VENV/bin/python" - "$OUT" <<'PY'
import json, sys
rows, runs = {}, {}
ms = lambda r: r["median_cpu_ms"] if r["threads"] == 1 else r["median_ms"]
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["model"], r.get("variant") or "f32", r["threads"], r["batch"], r["seq"])
    runs.setdefault(key, {}).setdefault(r["peer"], []).append(r)
# With REPEAT > 1 each peer's rows hold its fastest repetition (the one the machine's other
# tenants disturbed least), and "median" compares the medians of the repetitions (one lucky
# run of either side moves the best-of ratio, not this one).
for key, peers in runs.items():
    for peer, rs in peers.items():
        best = min(rs, key=ms)
        ordered = sorted(ms(r) for r in rs)
        rows.setdefault(key, {})[peer] = dict(
            best, load1=[x for r in rs for x in r["load1"]], median_of_repeats=ordered[len(ordered) // 2]
        )
repeats = max(len(rs) for peers in runs.values() for rs in peers.values())
print("| model | variant | (batch, seq) | threads | ORT ms | ours ms | ratio ORT/ours | ratio of medians | load1 |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (model, variant, t, b, s), v in rows.items():
    if "onnxruntime" not in v or "libbert" not in v:
        continue
    o, u = ms(v["onnxruntime"]), ms(v["libbert"])
    ratio = o / u
    flag = "" if ratio >= 1.0 else " (below 1.0)"
    med = v["onnxruntime"]["median_of_repeats"] / v["libbert"]["median_of_repeats"]
    medcell = f"{med:.2f}" if repeats > 1 else "-"
    load = v["onnxruntime"]["load1"] + v["libbert"]["load1"]
    print(f"| {model} | {variant} | ({b},{s}) | {t} | {o:.2f} | {u:.2f} | {ratio:.2f}{flag} | {medcell} | {min(load):.1f}-{max(load):.1f} |")
# int8 against f32 (the issue's targets: ours int8 >= 2x ours f32, >= 1.3x ORT int8).
pairs = [(k, v, rows.get((k[0], "f32") + k[2:], {})) for k, v in rows.items() if k[1] == "int8"]
if any("libbert" in v and "libbert" in f for _, v, f in pairs):
    print()
    print("| model | (batch, seq) | threads | ours f32/int8 (>= 2) | ORT f32/int8 | ORT int8 / ours int8 (>= 1.3) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (model, _, t, b, s), v, f in pairs:
        cell = lambda a, x, y: f"{ms(a[x]) / ms(y[x]):.2f}" if x in a and x in y else "-"
        ours = cell(f, "libbert", v)
        ort = cell(f, "onnxruntime", v)
        peer = f"{ms(v['onnxruntime']) / ms(v['libbert']):.2f}" if len(v) == 2 else "-"
        print(f"| {model} | ({b},{s}) | {t} | {ours} | {ort} | {peer} |")
PY
