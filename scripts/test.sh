#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
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
scripts/test_bindings.sh
scripts/test_arm.sh
