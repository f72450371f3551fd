#!/usr/bin/env bash
# Builds libbert (scripts/build_lib.sh) and tests the C ABI and every binding against the
# real all-MiniLM-L6-v2 (installed by scripts/setup.sh):
#
#   header   regenerating include/bert.h changes nothing; it compiles as C99 and C++17
#            with -Wall -Wextra -Werror -pedantic
#   C        examples/c/embed.c (shared and static via pkg-config), tests/c/test_bert.c,
#            tests/c/test_trainer.c, tests/c/test_abi.c and tests/c/test_qa.c under valgrind (no leaks, no
#            invalid accesses),
#            tests/c/test_pretrain.c (natively), tests/c/test_threads.c (8 threads), a 20-second soak (scripts/soak.sh: load /
#            embed / classify / free cycles on 2 threads, leak-checked by AddressSanitizer)
#   C++      bindings/cpp test, g++ -std=c++17 -Wall -Werror
#   Go       go vet + go test in bindings/go
#   Kotlin   kotlinc + the test main on the JVM (JNA)
#   Swift    scripts/check_swift.py (no Swift compiler on these machines)
#
# Every binding compares its embedding of one sentence with the Rust API's, written by
# examples/embed_reference.rs (max abs diff <= 1e-6), and fine-tunes the model for 2 updates
# on 4 examples (seq 32) with a progress callback, then classifies with the saved classifier,
# and answers one question with the tiny SQuAD model as the Rust API does
# (examples/squad_reference.rs: same spans, same text, scores within 1e-6).
# The C trainer test also covers every status of the classifier and trainer calls.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
cache="${LIBBERT_CACHE:-$HOME/.cache/libbert}"
model="$cache/all-MiniLM-L6-v2"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/bindings-test"
sentence="The quick brown fox jumps over the lazy dog."
step() { printf '\n== %s\n' "$*"; }

[ -s "$model/model.safetensors" ] || { echo "no model in $model: run scripts/setup.sh" >&2; exit 1; }
kotlinc="$(command -v kotlinc || echo "$cache/npm/lib/node_modules/kotlin-compiler/bin/kotlinc")"
jna=/usr/share/java/jna.jar
for tool in go valgrind gcc g++ java pkg-config "$kotlinc"; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/setup.sh" >&2; exit 1; }
done
[ -f "$jna" ] || { echo "missing $jna: run scripts/setup.sh" >&2; exit 1; }

step "build libbert"
prefix="$(scripts/build_lib.sh)"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$work"
echo "$prefix"

step "header: regenerated include/bert.h is the committed one; C99 and C++17"
git diff --exit-code -- include/bert.h
printf '#include "bert.h"\nint main(void) { return bert_version_number() == BERT_VERSION_NUMBER ? 0 : 1; }\n' > "$work/header.c"
gcc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude "$work/header.c" $(pkg-config --libs bert) -o "$work/header_c"
g++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -x c++ "$work/header.c" $(pkg-config --libs bert) -o "$work/header_cpp"
"$work/header_c" && "$work/header_cpp" && echo "header ok"

step "reference vector from the Rust API (examples/embed_reference.rs)"
cargo run --quiet --release --example embed_reference -- "$model" "$work/reference.txt" "$sentence" "$work/minilm.bert" > /dev/null
echo "$(wc -l < "$work/reference.txt") floats in $work/reference.txt"

step "SST-2 rows for the fine-tuning tests"
shared="${LIBBERT_SHARED:-$root/../shared}"
mkdir -p "$work/sst2"
head -n 9 "$shared/data/glue/SST-2/train.tsv" > "$work/sst2/train.tsv"
head -n 9 "$shared/data/glue/SST-2/dev.tsv" > "$work/sst2/dev.tsv"
tiny="$shared/fixtures/tf_bert_tiny"

step "SQuAD answers from the Rust API (examples/squad_reference.rs, tiny model)"
cargo run --quiet --release --example squad_reference -- "$tiny" "$work/squad.bert" "$work/squad_answers.txt"

step "C"
cflags=(-std=c99 -Wall -Wextra -Werror -pedantic -g $(pkg-config --cflags bert))
gcc "${cflags[@]}" examples/c/embed.c $(pkg-config --libs bert) -o "$work/embed"
gcc "${cflags[@]}" examples/c/embed.c -Wl,-Bstatic $(pkg-config --libs-only-L bert) -lbert -Wl,-Bdynamic $(pkg-config --static --libs-only-l bert | sed 's/-lbert//') -o "$work/embed_static"
"$work/embed" "$model" "$sentence" > "$work/embed.txt"
"$work/embed_static" "$model" "$sentence" | cmp - "$work/embed.txt"
echo "examples/c/embed.c: $(wc -l < "$work/embed.txt") floats (shared and static builds agree)"
gcc "${cflags[@]}" tests/c/test_bert.c $(pkg-config --libs bert) -lm -o "$work/test_bert"
gcc "${cflags[@]}" tests/c/test_threads.c $(pkg-config --libs bert) -lpthread -o "$work/test_threads"
gcc "${cflags[@]}" tests/c/test_trainer.c $(pkg-config --libs bert) -lm -o "$work/test_trainer"
gcc "${cflags[@]}" -D_POSIX_C_SOURCE=200809L tests/c/test_abi.c $(pkg-config --libs bert) -o "$work/test_abi"
gcc "${cflags[@]}" tests/c/test_qa.c $(pkg-config --libs bert) -lm -o "$work/test_qa"
gcc "${cflags[@]}" tests/c/test_pretrain.c $(pkg-config --libs bert) -o "$work/test_pretrain"
vg=(valgrind --quiet --error-exitcode=1 --child-silent-after-fork=yes --suppressions=tests/c/valgrind.supp --leak-check=full --errors-for-leak-kinds=definite,indirect,possible)
"${vg[@]}" "$work/test_bert" "$model" "$work/reference.txt" "$work/minilm.bert"
# About 8 CPU-minutes under valgrind (MiniLM fine-tune, save, reload); ~2 s natively.
"${vg[@]}" "$work/test_trainer" "$model" "$work/minilm.bert" "$work/sst2" "$tiny" "$work"
"${vg[@]}" "$work/test_abi" "$tiny" "$work"
"${vg[@]}" "$work/test_qa" "$work/squad.bert" "$work/squad_answers.txt"
# Natively: its 8 tiny-model updates (a 30522-word masked-LM output) did not finish in 15
# minutes under valgrind on the 2-core machine (~2 s natively); the pre-training entry
# points' error paths are covered by ffi/tests/pretrain.rs.
"$work/test_pretrain" "$shared" "$work"
"$work/test_threads" "$model"

step "soak, short: 2 threads x 20 s under AddressSanitizer's leak check (scripts/soak.sh; 8 x 600 s outside CI)"
scripts/soak.sh 20 2 | tail -n 1

step "C++"
g++ -std=c++17 -Wall -Wextra -Werror -pedantic -Ibindings/cpp $(pkg-config --cflags bert) \
  bindings/cpp/test_bert.cpp $(pkg-config --libs bert) -o "$work/test_cpp"
"$work/test_cpp" "$model" "$work/reference.txt" "$work/sst2" "$work" "$work/squad.bert" "$work/squad_answers.txt"

step "Go"
(cd bindings/go && go vet ./... && LIBBERT_MODEL="$model" LIBBERT_REFERENCE="$work/reference.txt" LIBBERT_SST2="$work/sst2" LIBBERT_SQUAD_MODEL="$work/squad.bert" LIBBERT_SQUAD_ANSWERS="$work/squad_answers.txt" LIBBERT_SHARED="$shared" go test -count=1 -v ./... | grep -E '^(---|ok|FAIL|PASS)|max abs diff')

step "Kotlin (JNA)"
jar="$work/kotlin/test.jar"
if [ ! -f "$jar" ] || [ -n "$(find bindings/kotlin -name '*.kt' -newer "$jar")" ]; then
  mkdir -p "$work/kotlin"
  "$kotlinc" bindings/kotlin/src bindings/kotlin/test -cp "$jna" -include-runtime -d "$jar" 2>&1 \
    | { grep -v '^warning: unable to find kotlin-stdlib' || true; }
fi
java -Djna.library.path="$prefix/lib" -cp "$jar:$jna" libbert.BertTestKt "$model" "$work/reference.txt" "$work/sst2" "$work" "$work/squad.bert" "$work/squad_answers.txt"

step "Swift (static check)"
python3 scripts/check_swift.py

printf '\ntest_bindings: all passed\n'
