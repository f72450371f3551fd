// C++ bindings against the real all-MiniLM-L6-v2: embedding equals the Rust API's
// (max abs diff <= 1e-6), RAII/move semantics, errors as exceptions with status + message.
//   test_bert MODEL_DIR REFERENCE_TXT
#include <cmath>
#include <fstream>
#include <iostream>
#include <type_traits>

#include "bert.hpp"

static int failures = 0, checks = 0;
#define CHECK(c)                                                                 \
    do {                                                                         \
        checks++;                                                                \
        if (!(c)) {                                                              \
            failures++;                                                          \
            std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK(" #c ") failed\n"; \
        }                                                                        \
    } while (0)

static_assert(!std::is_copy_constructible_v<bert::Model>, "handles are move-only");
static_assert(std::is_move_constructible_v<bert::Model>, "handles are movable");
static_assert(!std::is_copy_assignable_v<bert::Context>, "handles are move-only");

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " MODEL_DIR REFERENCE_TXT\n";
        return 2;
    }
    std::vector<float> ref;
    std::ifstream in(argv[2]);
    for (float x; in >> x;) ref.push_back(x);

    bert::Model loaded(argv[1]);
    bert::Model model = std::move(loaded);  // move-only handle
    CHECK(loaded.get() == nullptr);
    CHECK(model.hidden_size() == 384 && ref.size() == 384);
    bert::Context ctx(model);
    std::vector<float> v = ctx.embed({"The quick brown fox jumps over the lazy dog."});
    float d = 0;
    for (size_t i = 0; i < v.size() && i < ref.size(); i++) d = std::max(d, std::fabs(v[i] - ref[i]));
    std::cout << "C++: max abs diff vs Rust API " << d << "\n";
    CHECK(v.size() == ref.size() && d <= 1e-6f);

    auto toks = model.tokenize("The quick brown fox");
    CHECK(toks.size() == 4 && toks[3].start == 16 && toks[3].end == 19);
    std::string_view b = "fox";
    auto e = ctx.encode("Hello world", &b);
    CHECK(e.ids.size() == 6 && e.ids[0] == 101 && e.type_ids[4] == 1);
    auto hs = ctx.hidden_states("Hello world");
    CHECK(hs.n_layers == 7 && hs.n_tokens == 4 && hs.data.size() == 7 * 4 * 384);

    try {
        bert::Model bad("/nonexistent/model");
        CHECK(false);
    } catch (const bert::Error &err) {
        CHECK(err.status() == BERT_ERROR_IO);
        CHECK(std::string(err.what()).find("/nonexistent/model") != std::string::npos);
    }
    try {
        ctx.embed({std::string_view("caf\xc3", 4)});
        CHECK(false);
    } catch (const bert::Error &err) {
        CHECK(err.status() == BERT_ERROR_INVALID_UTF8);
    }
    try {
        bert::Tokenizer t("/nonexistent/vocab.txt", true);
        CHECK(false);
    } catch (const bert::Error &err) {
        CHECK(err.status() == BERT_ERROR_IO);
    }
    std::cout << "C++: " << checks << " checks, " << failures << " failed\n";
    return failures == 0 ? 0 : 1;
}
