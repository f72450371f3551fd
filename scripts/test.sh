#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup_tests.sh
# The README's main command keeps stdout for the vectors: setup must print nothing there.
if [ -n "$(scripts/setup.sh 2>/dev/null)" ]; then
  echo "test.sh: scripts/setup.sh wrote to stdout" >&2
  exit 1
fi
cargo fmt --all -- --check
# Lint both the default build (pure Rust) and the one with every optional part (ONNX import).
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --all-features -- -D warnings
# The API documentation builds without broken or private links.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --all-features
# Everything with every feature, then the library's unit tests of the default build (the
# paths that say a feature is missing).
cargo test --workspace --all-features
cargo test -p bert --lib
# The fuzz crate (outside the workspace; its runs are scripts/fuzz.sh's) still compiles
# against the library: the one-model refactor had broken it unnoticed.
(cd fuzz && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../target}/fuzz" cargo check -q --bins --examples)
scripts/test_bindings.sh
scripts/test_arm.sh
