#!/usr/bin/env bash
# Soak test of the C ABI (issue 21): tests/c/soak.c, built with AddressSanitizer, runs THREADS
# threads for SECONDS, each repeating load / context / tokenize / encode / embed / free and
# load classifier / classify / free on all-MiniLM-L6-v2, every result compared bit for bit
# with the first cycle's; the resident set size is sampled; at exit LeakSanitizer checks that
# nothing allocated (libbert's Rust allocations included: they go through the intercepted
# malloc) was left unfreed.
#
#   scripts/soak.sh [SECONDS [THREADS]]      default 600 s x 8 threads (outside CI: run it
#                                            under nice -n 19 on a shared machine)
#   scripts/test_bindings.sh runs a short variant: 20 s x 2 threads.
#
# Exits non-zero on any failed call, differing result, RSS growth after warm-up (> 10% + 16
# MiB) or leak.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
threads="${2:-8}"
cache="${LIBBERT_CACHE:-$HOME/.cache/libbert}"
model="$cache/all-MiniLM-L6-v2"
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="$target/soak"
[ -s "$model/model.safetensors" ] || { echo "no model in $model: run scripts/setup.sh" >&2; exit 1; }

prefix="$(scripts/build_lib.sh)"
mkdir -p "$work"
gcc -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -pedantic -g -O1 -fsanitize=address \
  -fno-omit-frame-pointer -I"$prefix/include" tests/c/soak.c -L"$prefix/lib" -lbert -lpthread \
  -o "$work/soak"
lscpu | sed -n 's/^Model name: *//p'
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# LeakSanitizer runs at exit; the library's one-time allocations (the std handle of the main
# thread, the system-info string) are still referenced then, so they are not reported.
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23" LD_LIBRARY_PATH="$prefix/lib" \
  "$work/soak" "$model" "$work/classifier.bert" "$seconds" "$threads"
