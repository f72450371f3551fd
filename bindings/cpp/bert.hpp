// libbert C++ bindings: header-only RAII wrappers over the C ABI (include/bert.h).
//
// Handles are move-only and free themselves; every failed call throws bert::Error, which
// carries the bert_status and the library's message. C++17.
//
//   bert::Model model("all-MiniLM-L6-v2");
//   bert::Context ctx(model);
//   std::vector<float> v = ctx.embed({"The quick brown fox."});
#ifndef BERT_HPP
#define BERT_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bert.h"

namespace bert {

// A failed libbert call: its status and message.
class Error : public std::runtime_error {
public:
    Error(bert_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    bert_status status() const noexcept { return status_; }

private:
    bert_status status_;
};

namespace detail {
inline void check(bert_status s) {
    if (s != BERT_OK) {
        std::string msg = bert_last_error();
        if (msg.empty()) msg = bert_status_string(s);
        throw Error(s, msg);
    }
}
struct ModelFree {
    void operator()(bert_model *m) const noexcept { bert_model_free(m); }
};
struct ContextFree {
    void operator()(bert_context *c) const noexcept { bert_context_free(c); }
};
struct TokenizerFree {
    void operator()(bert_tokenizer *t) const noexcept { bert_tokenizer_free(t); }
};
}  // namespace detail

enum class Pooling : bert_pooling {
    Cls = BERT_POOLING_CLS,
    Mean = BERT_POOLING_MEAN,
    Max = BERT_POOLING_MAX,
    Pooler = BERT_POOLING_POOLER,
};

// One WordPiece token: id and byte span [start, end) in the text.
struct Token {
    uint32_t id;
    uint64_t start;
    uint64_t end;
};

// Tokenizes with a borrowed or owned C tokenizer.
inline std::vector<Token> tokenize(const bert_tokenizer *t, std::string_view text) {
    size_t n = 0;
    bert_status s = bert_tokenize(t, text.data(), text.size(), nullptr, nullptr, 0, &n);
    if (s != BERT_ERROR_BUFFER_TOO_SMALL) detail::check(s);
    std::vector<uint32_t> ids(n);
    std::vector<uint64_t> offsets(2 * n);
    detail::check(bert_tokenize(t, text.data(), text.size(), ids.data(), offsets.data(), n, &n));
    std::vector<Token> out(n);
    for (size_t i = 0; i < n; i++) out[i] = Token{ids[i], offsets[2 * i], offsets[2 * i + 1]};
    return out;
}

// A tokenizer from a vocab.txt. Thread-safe.
class Tokenizer {
public:
    Tokenizer(const std::string &vocab_path, bool do_lower_case) {
        bert_tokenizer *t = nullptr;
        detail::check(bert_tokenizer_new_from_file(vocab_path.c_str(), do_lower_case, &t));
        handle_.reset(t);
    }
    std::vector<Token> tokenize(std::string_view text) const { return bert::tokenize(get(), text); }
    const bert_tokenizer *get() const noexcept { return handle_.get(); }

private:
    std::unique_ptr<bert_tokenizer, detail::TokenizerFree> handle_;
};

// A loaded model (immutable; share it between threads). Must outlive its contexts.
class Model {
public:
    explicit Model(const std::string &path, const bert_model_params &params = bert_model_default_params()) {
        bert_model *m = nullptr;
        detail::check(bert_model_load_file(path.c_str(), &params, &m));
        handle_.reset(m);
    }
    // From an in-memory .bert image or safetensors bytes (see bert_model_load_buffer).
    static Model from_buffer(const void *data, size_t len,
                             const bert_model_params &params = bert_model_default_params()) {
        bert_model *m = nullptr;
        detail::check(bert_model_load_buffer(data, len, &params, &m));
        return Model(m);
    }
    size_t hidden_size() const noexcept { return bert_model_hidden_size(get()); }
    size_t num_layers() const noexcept { return bert_model_num_layers(get()); }
    std::vector<Token> tokenize(std::string_view text) const {
        return bert::tokenize(bert_model_tokenizer(get()), text);
    }
    const bert_model *get() const noexcept { return handle_.get(); }

private:
    explicit Model(bert_model *m) : handle_(m) {}
    std::unique_ptr<bert_model, detail::ModelFree> handle_;
};

// An encoding, copied out of the context's view.
struct Encoding {
    std::vector<uint32_t> ids, type_ids, attention_mask, special_tokens_mask;
    std::vector<uint64_t> offsets;  // 2 per token
};

// All layers of one input: data[(layer * n_tokens + token) * hidden_size + i].
struct HiddenStates {
    size_t n_layers, n_tokens, hidden_size;
    std::vector<float> data;
};

// Per-thread state. Use from one thread at a time.
class Context {
public:
    explicit Context(const Model &model, const bert_context_params &params = bert_context_default_params())
        : hidden_(model.hidden_size()) {
        bert_context *c = nullptr;
        detail::check(bert_context_new(model.get(), &params, &c));
        handle_.reset(c);
    }
    // Embeddings of texts, [texts.size() * hidden_size] row-major.
    std::vector<float> embed(const std::vector<std::string_view> &texts, Pooling pooling = Pooling::Mean,
                             bool normalize = true) {
        std::vector<const char *> ptrs;
        std::vector<size_t> lens;
        for (auto t : texts) {
            ptrs.push_back(t.data());
            lens.push_back(t.size());
        }
        std::vector<float> out(texts.size() * hidden_);
        size_t n = 0;
        detail::check(bert_embed(get(), ptrs.data(), lens.data(), texts.size(),
                                 static_cast<bert_pooling>(pooling), normalize, out.data(), out.size(), &n));
        out.resize(n);
        return out;
    }
    Encoding encode(std::string_view a, const std::string_view *b = nullptr,
                    const bert_encode_params &params = bert_encode_default_params()) {
        bert_encoding_view v{};
        detail::check(bert_encode(get(), a.data(), a.size(), b ? b->data() : nullptr, b ? b->size() : 0,
                                  &params, &v));
        Encoding e;
        e.ids.assign(v.ids, v.ids + v.n_tokens);
        e.type_ids.assign(v.type_ids, v.type_ids + v.n_tokens);
        e.attention_mask.assign(v.attention_mask, v.attention_mask + v.n_tokens);
        e.special_tokens_mask.assign(v.special_tokens_mask, v.special_tokens_mask + v.n_tokens);
        e.offsets.assign(v.offsets, v.offsets + 2 * v.n_tokens);
        return e;
    }
    HiddenStates hidden_states(std::string_view text) {
        bert_hidden_states_view v{};
        detail::check(bert_hidden_states(get(), text.data(), text.size(), &v));
        return HiddenStates{v.n_layers, v.n_tokens, v.hidden_size,
                            std::vector<float>(v.data, v.data + v.n_layers * v.n_tokens * v.hidden_size)};
    }
    bert_context *get() const noexcept { return handle_.get(); }

private:
    size_t hidden_;
    std::unique_ptr<bert_context, detail::ContextFree> handle_;
};

}  // namespace bert

#endif  // BERT_HPP
