#!/usr/bin/env bash
# Installs what the ARM checks (scripts/test_arm.sh, scripts/build_mobile.sh) need on a
# fresh machine; test_arm.sh runs it first. Idempotent: a second run only checks. Not part of
# scripts/setup.sh, which the README's main command runs.
#
# - Debian's aarch64 cross gcc and C library (the linker of aarch64-unknown-linux-gnu and
#   qemu's sysroot, /usr/aarch64-linux-gnu) and qemu-user (qemu-aarch64).
# - The Rust targets: aarch64-unknown-linux-gnu (emulated tests), the Android and iOS
#   targets of the mobile libraries, and rust-src: where rustup has no prebuilt standard
#   library for a target (aarch64-apple-ios-sim on some mirrors), build_mobile.sh builds it
#   from source.
set -euo pipefail

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
[ -f /usr/aarch64-linux-gnu/include/stdio.h ] || missing+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup_arm: apt-get install ${missing[*]}" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

installed="$(rustup target list --installed)"
for target in aarch64-unknown-linux-gnu aarch64-linux-android armv7-linux-androideabi \
  aarch64-apple-ios aarch64-apple-ios-sim; do
  if ! grep -qx "$target" <<<"$installed"; then
    echo "setup_arm: rustup target add $target" >&2
    rustup target add "$target" >&2 ||
      echo "setup_arm: no prebuilt standard library for $target; build_mobile.sh builds it from rust-src" >&2
  fi
done
if ! rustup component list --installed | grep -q '^rust-src'; then
  echo "setup_arm: rustup component add rust-src" >&2
  rustup component add rust-src >&2
fi
echo "setup_arm: aarch64 cross tools, qemu-aarch64 and the Rust targets ready" >&2
