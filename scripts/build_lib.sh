#!/usr/bin/env bash
# Builds libbert (the bert-ffi crate) in release and lays it out for C users:
#
#   $TARGET/libbert/lib/libbert.so.MAJOR.MINOR.PATCH   soname libbert.so.MAJOR
#   $TARGET/libbert/lib/libbert.so.MAJOR -> libbert.so.MAJOR.MINOR.PATCH
#   $TARGET/libbert/lib/libbert.so -> libbert.so.MAJOR
#   $TARGET/libbert/lib/libbert.a
#   $TARGET/libbert/include/bert.h
#   $TARGET/libbert/lib/pkgconfig/bert.pc
#
# $TARGET is $CARGO_TARGET_DIR (default: target). Prints the prefix on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
prefix="$target/libbert"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
major="${version%%.*}"

# --print native-static-libs reports what libbert.a needs from the system at link time.
log="$(cargo rustc --quiet --release -p bert-ffi --lib -- --print native-static-libs 2>&1)" || {
  echo "$log" >&2
  exit 1
}
native="$(echo "$log" | sed -n 's/.*native-static-libs: //p' | tail -n1)"
# Drop what every C link has anyway (-lc, -lgcc_s) and keep the order otherwise.
private="$(for l in $native; do case "$l" in -lc|-lgcc_s) ;; *) printf '%s ' "$l" ;; esac; done | sed 's/ $//')"
[ -n "$private" ] || private="-lpthread -ldl -lm"

rel="$target/release"
rm -rf "$prefix"
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp "$rel/libbert_ffi.so" "$prefix/lib/libbert.so.$version"
ln -s "libbert.so.$version" "$prefix/lib/libbert.so.$major"
ln -s "libbert.so.$major" "$prefix/lib/libbert.so"
cp "$rel/libbert_ffi.a" "$prefix/lib/libbert.a"
cp include/bert.h "$prefix/include/bert.h"
cat > "$prefix/lib/pkgconfig/bert.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: bert
Description: Google's BERT in Rust behind a stable C ABI
Version: $version
Libs: -L\${libdir} -lbert
Libs.private: $private
Cflags: -I\${includedir}
PC
echo "$prefix"
