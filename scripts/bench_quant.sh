#!/usr/bin/env bash
# int8 and f16 models against f32 (issue 6): file size, opening/loading time, peak RSS while
# embedding, cosine of the sentence embeddings to f32, and encoder speed.
#   scripts/bench_quant.sh
# Env: MODEL (default ~/.cache/libbert/all-MiniLM-L6-v2), BASE (BERT-base-shaped model dir,
# default /tmp/peers/models/bert-base-random; skipped if missing), OUT (default
# /tmp/bench-quant), SHAPES (default 1x128,8x128), BUDGET_S (default 3), THREADS (default 1),
# SKIP_SPEED=1 to leave out the encoder timings.
# Sentences: tests/data/quant_sentences.txt (61 lines, 1 to 128+ tokens, 13 languages),
# embedded 8 at a time with --max_seq_length 128, mean pooling, normalized.
# Peak RSS is `/usr/bin/time -v`'s maximum resident set of `bert embed` over those sentences
# (file pages of a mapped model count once touched). Speed: `cargo bench --bench encoder`
# with --dtype (1 thread: median process-CPU ms per forward; see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=${MODEL:-$HOME/.cache/libbert/all-MiniLM-L6-v2}
BASE=${BASE:-/tmp/peers/models/bert-base-random}
OUT=${OUT:-/tmp/bench-quant}
SHAPES=${SHAPES:-1x128,8x128}
BUDGET_S=${BUDGET_S:-3}
THREADS=${THREADS:-1}
SENTENCES=$ROOT/tests/data/quant_sentences.txt
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"

cargo build --release -q --bin bert --example open_native
BERT=$CARGO_TARGET_DIR/release/bert
OPEN=$CARGO_TARGET_DIR/release/examples/open_native
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load1 at start: $(cut -d' ' -f1 /proc/loadavg)"

echo "## files (bert convert --dtype D)"
for d in f32 f16 int8; do
  "$BERT" convert --model "$MODEL" --output "$OUT/minilm-$d.bert" --dtype "$d" 2>/dev/null
done
f32_size=$(stat -c %s "$OUT/minilm-f32.bert")
for d in f32 f16 int8; do
  s=$(stat -c %s "$OUT/minilm-$d.bert")
  awk -v d=$d -v s=$s -v f=$f32_size 'BEGIN { printf "%-5s %10d bytes  %.3f of f32\n", d, s, s / f }'
done

echo "## opening (examples/open_native: NativeModel::open best of 5, then BertModel::load)"
for d in f32 f16 int8; do
  echo "$d: $("$OPEN" "$OUT/minilm-$d.bert" | tr '\n' ' ')"
done

echo "## peak RSS and cosine to f32 while embedding $(wc -l < "$SENTENCES") sentences"
embed() { # name, then bert embed arguments
  local name=$1; shift
  /usr/bin/time -f "%M %e" -o "$OUT/time-$name.txt" "$BERT" embed --normalize --max_seq_length 128 \
    --batch_size 8 --threads "$THREADS" "$@" < "$SENTENCES" > "$OUT/emb-$name.jsonl"
  read -r rss wall < "$OUT/time-$name.txt"
  echo "$name $rss $wall"
}
{
  embed f32-dir --model "$MODEL"
  embed f32-file --model "$OUT/minilm-f32.bert"
  embed f16-file --model "$OUT/minilm-f16.bert"
  embed int8-file --model "$OUT/minilm-int8.bert"
  embed int8-onload --model "$MODEL" --dtype int8
} > "$OUT/rss.txt"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
rows = [l.split() for l in open(f"{out}/rss.txt")]
ref = [json.loads(l) for l in open(f"{out}/emb-f32-file.jsonl")]
base = {r[0]: int(r[1]) for r in rows}["f32-file"]
print("| run | peak RSS | of f32 .bert run | wall s | cosine to f32: mean | min |")
print("| --- | --- | --- | --- | --- | --- |")
for name, rss, wall in rows:
    v = [json.loads(l) for l in open(f"{out}/emb-{name}.jsonl")]
    norm = lambda a: sum(x * x for x in a) ** 0.5
    cos = [sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b)) for a, b in zip(ref, v)]
    print(f"| {name} | {int(rss) / 1024:.1f} MiB | {int(rss) / base:.2f} | {wall} | "
          f"{sum(cos) / len(cos):.6f} | {min(cos):.6f} |")
PY

[ "${SKIP_SPEED:-0}" = 1 ] && exit 0
echo "## encoder speed (threads $THREADS, shapes $SHAPES)"
cargo bench --bench encoder --no-run -q 2>/dev/null
OURS=$(cargo bench --bench encoder --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
models=("minilm-l6:$MODEL")
[ -d "$BASE" ] && models+=("bert-base:$BASE")
: > "$OUT/speed.jsonl"
for m in "${models[@]}"; do
  for shape in ${SHAPES//,/ }; do
    for d in f32 int8 f16; do
      "$OURS" --model "${m#*:}" --label "${m%%:*}" --threads "$THREADS" --shapes "$shape" \
        --budget-s "$BUDGET_S" --min-runs 3 --dtype "$d" >> "$OUT/speed.jsonl"
    done
  done
done
echo "load1 at end: $(cut -d' ' -f1 /proc/loadavg)"
python3 - "$OUT/speed.jsonl" "$THREADS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
field = "median_cpu_ms" if sys.argv[2] == "1" else "median_ms"
by = {}
for r in rows:
    by.setdefault((r["model"], r["batch"], r["seq"]), {})[r["variant"] or "f32"] = r
print(f"| model | (batch, seq) | f32 ms | int8 ms | f16 ms | f32/int8 | f32/f16 | load1 |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (m, b, s), v in by.items():
    f, i, h = (v[k][field] for k in ("f32", "int8", "f16"))
    loads = [x for k in v for x in v[k]["load1"]]
    print(f"| {m} | ({b},{s}) | {f:.1f} | {i:.1f} | {h:.1f} | {f / i:.2f} | {f / h:.2f} | "
          f"{min(loads):.1f}-{max(loads):.1f} |")
PY
