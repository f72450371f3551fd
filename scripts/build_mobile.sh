#!/usr/bin/env bash
# The mobile libraries: libbert.a (the C ABI, static) for Android and iOS, and libbert.so
# where a linker exists, built with the size-optimised `mobile` profile (Cargo.toml).
#
#   scripts/build_mobile.sh [--check] [OUT_DIR]     (default OUT_DIR: target/mobile)
#
# Writes OUT_DIR/<target>/libbert.a for
#   aarch64-linux-android     Android arm64-v8a
#   armv7-linux-androideabi   Android armeabi-v7a
#   aarch64-apple-ios         iPhone and iPad
#   aarch64-apple-ios-sim     the iOS simulator on Apple silicon
# with `cargo rustc --crate-type staticlib`, which needs no platform linker (no NDK or Xcode).
# libbert.so is linked for
#   aarch64-unknown-linux-gnu (Debian's gcc-aarch64-linux-gnu): stripped, its size is the
#     one BENCHMARKS.md records for ARM;
#   the Android targets when $ANDROID_NDK_HOME points at an NDK (its clang links them; see
#     bindings/kotlin/android/README.md), as jniLibs/<abi>/libbert.so with the `jni` feature.
# OUT_DIR/sizes.txt lists every file with its size in bytes; OUT_DIR/<target>/
# native-static-libs.txt the system libraries to link beside libbert.a.
#
# A target whose Rust standard library the toolchain lacks (`rustup target add` installs
# it; aarch64-apple-ios-sim's is missing from some mirrors) is built with -Zbuild-std from
# rust-src, which needs RUSTC_BOOTSTRAP=1 on a stable compiler.
#
# --check: CI's compile check (scripts/test_arm.sh): every target must build.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi
out="${1:-target/mobile}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
sizes="$out/sizes.txt"
: >"$sizes"

installed="$(rustup target list --installed 2>/dev/null || true)"
record() { # record FILE: its size, in bytes, into sizes.txt
  local bytes
  bytes=$(stat -c %s "$1")
  echo "${1#"$out"/} $bytes" >>"$sizes"
  echo "build_mobile: ${1#"$out"/}: $bytes bytes" >&2
}

staticlib() { # staticlib TARGET
  local target=$1 extra=()
  if ! grep -qx "$target" <<<"$installed"; then
    # No prebuilt standard library for this target: build it from rust-src.
    extra=(-Zbuild-std=std,panic_unwind)
    export RUSTC_BOOTSTRAP=1
  fi
  echo "build_mobile: $target (libbert.a)" >&2
  local log
  log="$(cargo rustc -q -p bert-ffi --profile mobile --target "$target" "${extra[@]}" \
    --crate-type staticlib -- --print native-static-libs 2>&1)" || {
    echo "$log" >&2
    exit 1
  }
  unset RUSTC_BOOTSTRAP
  mkdir -p "$out/$target"
  cp "target/$target/mobile/libbert_ffi.a" "$out/$target/libbert.a"
  # The system libraries an app links beside libbert.a (Xcode: "Other Linker Flags").
  sed -n 's/.*native-static-libs: //p' <<<"$log" | tail -n1 >"$out/$target/native-static-libs.txt"
  record "$out/$target/libbert.a"
}

for target in aarch64-linux-android armv7-linux-androideabi aarch64-apple-ios aarch64-apple-ios-sim; do
  staticlib "$target"
done

# Shared libraries, where a linker exists.
if command -v aarch64-linux-gnu-gcc >/dev/null; then
  target=aarch64-unknown-linux-gnu
  echo "build_mobile: $target (libbert.so)" >&2
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    cargo rustc -q -p bert-ffi --profile mobile --target "$target" --crate-type cdylib
  mkdir -p "$out/$target"
  aarch64-linux-gnu-strip -o "$out/$target/libbert.so" "target/$target/mobile/libbert_ffi.so"
  record "$out/$target/libbert.so"
  if [ "$check" = 1 ]; then
    limit=$((2000 * 1000))
    size=$(stat -c %s "$out/$target/libbert.so")
    if [ "$size" -gt "$limit" ]; then
      echo "build_mobile: stripped aarch64 libbert.so is $size bytes, over the 2.0 MB budget" >&2
      exit 1
    fi
  fi
fi
if [ -n "${ANDROID_NDK_HOME:-}" ]; then
  bin="$ANDROID_NDK_HOME/toolchains/llvm/prebuilt/linux-x86_64/bin"
  for pair in aarch64-linux-android:arm64-v8a:aarch64-linux-android24-clang \
    armv7-linux-androideabi:armeabi-v7a:armv7a-linux-androideabi24-clang; do
    IFS=: read -r target abi clang <<<"$pair"
    var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$target")_LINKER"
    echo "build_mobile: $target (jniLibs/$abi/libbert.so, NDK)" >&2
    env "$var=$bin/$clang" cargo rustc -q -p bert-ffi --features jni --profile mobile \
      --target "$target" --crate-type cdylib
    mkdir -p "$out/jniLibs/$abi"
    "$bin/llvm-strip" -o "$out/jniLibs/$abi/libbert.so" "target/$target/mobile/libbert_ffi.so"
    record "$out/jniLibs/$abi/libbert.so"
  done
fi
echo "build_mobile: sizes in $sizes" >&2
