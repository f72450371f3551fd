#!/usr/bin/env bash
# `bert create-pretraining-data` vs Google's create_pretraining_data.py, same input, same flags,
# same run; checks that both wrote the same records (parsed, in order) and prints MB of input
# text per second, wall seconds and peak memory (max RSS) of each.
#   scripts/bench_pretraining_data.sh
#   INPUT=path.txt DUPE_FACTOR=10 REPEAT=3 scripts/bench_pretraining_data.sh
# Env: INPUT (default ../shared/data/pretrain/books_pretrain.txt), VOCAB (vocab-uncased.txt),
# MAX_SEQ_LENGTH=128, MAX_PREDICTIONS=20, DUPE_FACTOR=5, SEED=12345, WWM=False,
# REPEAT=2 (Google-then-ours rounds; ours runs with all cores and with --threads=1),
# VENV_DIR (default /tmp/venv-tf: created with `pip install tensorflow-cpu six` if missing),
# GOOGLE_BERT (a google-research/bert clone or bare git dir; default: cloned from GitHub into
# /tmp/google-bert). Google's script is taken at eedf5716 with its one TF-2 change:
# `import tensorflow as tf` -> `import tensorflow.compat.v1 as tf` (it needs TF only for
# flags, gfile, logging and TFRecordWriter). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${LIBBERT_SHARED:-$ROOT/../shared}
INPUT=${INPUT:-$SHARED/data/pretrain/books_pretrain.txt}
VOCAB=${VOCAB:-$SHARED/data/tokenizer/vocab-uncased.txt}
MAX_SEQ_LENGTH=${MAX_SEQ_LENGTH:-128}
MAX_PREDICTIONS=${MAX_PREDICTIONS:-20}
DUPE_FACTOR=${DUPE_FACTOR:-5}
SEED=${SEED:-12345}
WWM=${WWM:-False}
REPEAT=${REPEAT:-2}
VENV=${VENV_DIR:-/tmp/venv-tf}
COMMIT=eedf5716ce1268e56f0a50264a88cafad334ac61
WORK=$(mktemp -d /tmp/bench-pretraining-data.XXXXXX)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q tensorflow-cpu six
fi
SRC=${GOOGLE_BERT:-/tmp/google-bert}
if [ ! -e "$SRC" ]; then
  git clone -q https://github.com/google-research/bert "$SRC"
fi
GIT_DIR_ARG=(--git-dir="$SRC")
[ -d "$SRC/.git" ] && GIT_DIR_ARG=(--git-dir="$SRC/.git")
for f in create_pretraining_data.py tokenization.py; do
  git "${GIT_DIR_ARG[@]}" show "$COMMIT:$f" |
    sed 's/^import tensorflow as tf$/import tensorflow.compat.v1 as tf/' > "$WORK/$f"
done

cargo build -q --release --bin bert
BERT=$CARGO_TARGET_DIR/release/bert
FLAGS=(--vocab_file="$VOCAB" --do_lower_case=True --do_whole_word_mask="$WWM"
  --max_seq_length="$MAX_SEQ_LENGTH" --max_predictions_per_seq="$MAX_PREDICTIONS"
  --masked_lm_prob=0.15 --random_seed="$SEED" --dupe_factor="$DUPE_FACTOR" --short_seq_prob=0.1)
BYTES=$(stat -c %s "$INPUT")

# One run: prints "<wall seconds> <max RSS KiB> <user + system CPU seconds>".
timed() {
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/time" "$@" > "$WORK/log" 2>&1 || { cat "$WORK/log"; exit 1; }
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$WORK/time"
}

echo "input $INPUT ($BYTES bytes), seq $MAX_SEQ_LENGTH, dupe $DUPE_FACTOR, wwm $WWM"
echo "$(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p'); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| run | round | wall s | MB/s (wall) | CPU s | MB per CPU s | max RSS MiB |\n'
printf '|---|---|---|---|---|---|---|\n'
row() { # name round "wall rss cpu"
  set -- "$1" "$2" $3
  awk -v n="$1" -v r="$2" -v w="$3" -v m="$4" -v c="$5" -v b="$BYTES" \
    'BEGIN { printf "| %s | %d | %.2f | %.3f | %.2f | %.3f | %.0f |\n",
             n, r, w, b / 1e6 / w, c, b / 1e6 / c, m / 1024 }'
}
for r in $(seq 1 "$REPEAT"); do
  row "Google create_pretraining_data.py" "$r" \
    "$(cd "$WORK" && timed "$VENV/bin/python" create_pretraining_data.py \
      --input_file="$INPUT" --output_file="$WORK/google.tfrecord" "${FLAGS[@]}")"
  row "bert create-pretraining-data (all cores)" "$r" \
    "$(timed "$BERT" create-pretraining-data --input_file="$INPUT" \
      --output_file="$WORK/ours.tfrecord" "${FLAGS[@]}")"
  row "bert create-pretraining-data --threads=1" "$r" \
    "$(timed "$BERT" create-pretraining-data --threads=1 --input_file="$INPUT" \
      --output_file="$WORK/ours1.tfrecord" "${FLAGS[@]}")"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
cmp "$WORK/ours.tfrecord" "$WORK/ours1.tfrecord" && echo "ours: same bytes with all cores and one"

# Same records, same order (parsed: Google's map order varies run to run).
"$VENV/bin/python" - "$WORK/google.tfrecord" "$WORK/ours.tfrecord" 2>/dev/null <<'PY'
import sys
import tensorflow as tf
def records(path):
    for r in tf.data.TFRecordDataset(path):
        ex = tf.train.Example.FromString(r.numpy())
        yield {k: (v.WhichOneof("kind"), list(getattr(v, v.WhichOneof("kind")).value))
               for k, v in ex.features.feature.items()}
a, b = list(records(sys.argv[1])), list(records(sys.argv[2]))
diff = sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
print(f"records: Google {len(a)}, ours {len(b)}, differing {diff}")
sys.exit(1 if diff else 0)
PY
rm -rf "$WORK"
