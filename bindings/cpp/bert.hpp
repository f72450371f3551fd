// libbert C++ bindings: header-only RAII wrappers over the C ABI (include/bert.h).
//
// Handles are move-only and free themselves; every failed call throws bert::Error, which
// carries the bert_status and the library's message. C++17.
//
//   bert::Model model("all-MiniLM-L6-v2");
//   bert::Context ctx(model);
//   std::vector<float> v = ctx.embed({"The quick brown fox."});
//
//   bert::Trainer trainer("all-MiniLM-L6-v2", params);     // params.n_labels = 2, ...
//   trainer.add_example("a fine film", 1);
//   trainer.train(0, [](const bert_progress &p) { return true; });  // false: stop
//   trainer.save("sst2.bert");
//   bert::Classifier clf("sst2.bert");
//   bert::Context cctx(clf);
//   bert::Classification c = cctx.classify(clf, {"a fine film"});
//   bert::QuestionAnswerer qa("squad.bert");
//   bert::Context qctx(qa);
//   std::vector<bert::Answer> a = qctx.answer(qa, "Who won?", "Denver beat Carolina.");
#ifndef BERT_HPP
#define BERT_HPP

#include <cstddef>
#include <cstdint>
#include <functional>
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
struct ClassifierFree {
    void operator()(bert_classifier *c) const noexcept { bert_classifier_free(c); }
};
struct QaFree {
    void operator()(bert_qa *q) const noexcept { bert_qa_free(q); }
};
struct TrainerFree {
    void operator()(bert_trainer *t) const noexcept { bert_trainer_free(t); }
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
        detail::check(bert_tokenizer_new_from_file(vocab_path.c_str(), do_lower_case ? 1 : 0, &t));
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

// A fine-tuned classifier (immutable; share it between threads). Make its contexts with
// Context(classifier). Must outlive them. `params`: back end, dtype, verify_checksums.
class Classifier {
public:
    explicit Classifier(const std::string &path, const bert_model_params &params = bert_model_default_params()) {
        bert_classifier *c = nullptr;
        detail::check(bert_classifier_load_file(path.c_str(), &params, &c));
        handle_.reset(c);
    }
    size_t num_labels() const noexcept { return bert_classifier_num_labels(get()); }
    std::vector<std::string> labels() const {
        std::vector<std::string> out;
        for (size_t i = 0; i < num_labels(); i++) out.emplace_back(bert_classifier_label(get(), i));
        return out;
    }
    // The encoder and tokenizer, borrowed (valid as long as the classifier).
    const bert_model *model() const noexcept { return bert_classifier_model(get()); }
    const bert_classifier *get() const noexcept { return handle_.get(); }

private:
    std::unique_ptr<bert_classifier, detail::ClassifierFree> handle_;
};

// A SQuAD-fine-tuned model (immutable; share it between threads). Make its contexts with
// Context(qa). Must outlive them. `params`: back end, dtype, verify_checksums, vocab_path,
// do_lower_case.
class QuestionAnswerer {
public:
    explicit QuestionAnswerer(const std::string &path,
                              const bert_model_params &params = bert_model_default_params()) {
        bert_qa *q = nullptr;
        detail::check(bert_qa_load_file(path.c_str(), &params, &q));
        handle_.reset(q);
    }
    // The encoder and tokenizer, borrowed (valid as long as the answerer).
    const bert_model *model() const noexcept { return bert_qa_model(get()); }
    const bert_qa *get() const noexcept { return handle_.get(); }

private:
    std::unique_ptr<bert_qa, detail::QaFree> handle_;
};

// One answer: bytes [start_byte, end_byte) of the context, and their text.
struct Answer {
    std::string text;
    size_t start_byte, end_byte;
    float score;  // softmax over the question's best candidates
};

// Logits and probabilities, [n * num_labels] row-major.
struct Classification {
    size_t num_labels;
    std::vector<float> logits, probabilities;
};

// Per-thread state. Use from one thread at a time.
class Context {
public:
    explicit Context(const Model &model, const bert_context_params &params = bert_context_default_params())
        : Context(model.get(), params) {}
    // A context for classify() with `classifier` (it also embeds with its encoder).
    explicit Context(const Classifier &classifier,
                     const bert_context_params &params = bert_context_default_params())
        : Context(classifier.model(), params) {}
    // A context for answer() with `qa`.
    explicit Context(const QuestionAnswerer &qa, const bert_context_params &params = bert_context_default_params())
        : Context(qa.model(), params) {}
    explicit Context(const bert_model *model, const bert_context_params &params)
        : hidden_(bert_model_hidden_size(model)) {
        bert_context *c = nullptr;
        detail::check(bert_context_new(model, &params, &c));
        handle_.reset(c);
    }
    // Classifies texts (or pairs, when texts_b is not empty: one B per A) with a classifier
    // whose model this context was made from.
    Classification classify(const Classifier &classifier, const std::vector<std::string_view> &texts_a,
                            const std::vector<std::string_view> &texts_b = {}) {
        if (!texts_b.empty() && texts_b.size() != texts_a.size())
            throw Error(BERT_ERROR_INVALID_ARGUMENT, "texts_b must be empty or as long as texts_a");
        std::vector<const char *> pa, pb;
        std::vector<size_t> la, lb;
        for (auto t : texts_a) {
            pa.push_back(t.data());
            la.push_back(t.size());
        }
        for (auto t : texts_b) {
            pb.push_back(t.data());
            lb.push_back(t.size());
        }
        Classification out{classifier.num_labels(), {}, {}};
        size_t n = texts_a.size() * out.num_labels;
        out.logits.resize(n);
        out.probabilities.resize(n);
        detail::check(bert_classify(get(), classifier.get(), pa.data(), la.data(), pb.empty() ? nullptr : pb.data(),
                                    lb.empty() ? nullptr : lb.data(), texts_a.size(), out.logits.data(),
                                    out.probabilities.data(), n, &n));
        return out;
    }
    // The params.n_best best answers to `question` in `context`, best first, with an answerer
    // whose model this context was made from.
    std::vector<Answer> answer(const QuestionAnswerer &qa, std::string_view question, std::string_view context,
                               const bert_qa_params &params = bert_qa_default_params()) {
        std::vector<bert_qa_span> spans(params.n_best);
        size_t n = 0;
        detail::check(bert_qa_answer(get(), qa.get(), question.data(), question.size(), context.data(),
                                     context.size(), &params, spans.data(), spans.size(), &n));
        return answers(context, spans.data(), n);
    }
    // answer() for (question, context) pairs, their windows batched together; one list per pair.
    std::vector<std::vector<Answer>> answer_batch(
        const QuestionAnswerer &qa, const std::vector<std::pair<std::string_view, std::string_view>> &pairs,
        const bert_qa_params &params = bert_qa_default_params()) {
        std::vector<const char *> pq, pc;
        std::vector<size_t> lq, lc, counts(pairs.size());
        for (auto &p : pairs) {
            pq.push_back(p.first.data());
            lq.push_back(p.first.size());
            pc.push_back(p.second.data());
            lc.push_back(p.second.size());
        }
        std::vector<bert_qa_span> spans(pairs.size() * params.n_best);
        size_t n = 0;
        detail::check(bert_qa_answer_batch(get(), qa.get(), pq.data(), lq.data(), pc.data(), lc.data(), pairs.size(),
                                           &params, spans.data(), spans.size(), counts.data(), &n));
        std::vector<std::vector<Answer>> out;
        for (size_t i = 0; i < pairs.size(); i++)
            out.push_back(answers(pairs[i].second, spans.data() + i * params.n_best, counts[i]));
        return out;
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
                                 static_cast<bert_pooling>(pooling), normalize ? 1 : 0, out.data(), out.size(), &n));
        out.resize(n);
        return out;
    }
    Encoding encode(std::string_view a, const std::string_view *b = nullptr,
                    const bert_encode_params &params = bert_encode_default_params()) {
        bert_encoding_view v{};
        v.size = sizeof v;
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
        v.size = sizeof v;
        detail::check(bert_hidden_states(get(), text.data(), text.size(), &v));
        return HiddenStates{v.n_layers, v.n_tokens, v.hidden_size,
                            std::vector<float>(v.data, v.data + v.n_layers * v.n_tokens * v.hidden_size)};
    }
    bert_context *get() const noexcept { return handle_.get(); }

private:
    static std::vector<Answer> answers(std::string_view context, const bert_qa_span *spans, size_t n) {
        std::vector<Answer> out;
        for (size_t i = 0; i < n; i++) {
            size_t a = static_cast<size_t>(spans[i].start_byte), b = static_cast<size_t>(spans[i].end_byte);
            out.push_back(Answer{std::string(context.substr(a, b - a)), a, b, spans[i].score});
        }
        return out;
    }
    size_t hidden_;
    std::unique_ptr<bert_context, detail::ContextFree> handle_;
};

enum class Split : bert_split { Train = BERT_SPLIT_TRAIN, Eval = BERT_SPLIT_EVAL };

// Fine-tunes a classifier. Use from one thread at a time.
class Trainer {
public:
    // Return true to go on, false to stop training after this update.
    using Progress = std::function<bool(const bert_progress &)>;

    explicit Trainer(const std::string &model_path,
                     const bert_trainer_params &params = bert_trainer_default_params()) {
        bert_trainer *t = nullptr;
        detail::check(bert_trainer_new(model_path.c_str(), &params, &t));
        handle_.reset(t);
    }
    void add_example(std::string_view a, int32_t label_id, Split split = Split::Train,
                     const std::string_view *b = nullptr) {
        detail::check(bert_trainer_add_example(get(), static_cast<bert_split>(split), a.data(), a.size(),
                                               b ? b->data() : nullptr, b ? b->size() : 0, label_id));
    }
    void add_example(std::string_view a, std::string_view label, Split split = Split::Train,
                     const std::string_view *b = nullptr) {
        detail::check(bert_trainer_add_example_label(get(), static_cast<bert_split>(split), a.data(), a.size(),
                                                     b ? b->data() : nullptr, b ? b->size() : 0, label.data(),
                                                     label.size()));
    }
    void add_tsv(const std::string &path, Split split = Split::Train,
                 const bert_tsv_params &params = bert_tsv_default_params()) {
        detail::check(bert_trainer_add_tsv(get(), static_cast<bert_split>(split), path.c_str(), &params));
    }
    // Runs up to max_steps updates (0: to the end). Returns false when `progress` stopped it
    // (BERT_ERROR_CANCELLED), true otherwise; other failures throw.
    bool train(uint64_t max_steps = 0, Progress progress = {}) {
        bert_status s = bert_trainer_train(get(), max_steps, progress ? &trampoline : nullptr,
                                           progress ? &progress : nullptr);
        if (s == BERT_ERROR_CANCELLED) return false;
        detail::check(s);
        return true;
    }
    bert_eval_result evaluate() const {
        bert_eval_result r{};
        r.size = sizeof r;
        detail::check(bert_trainer_evaluate(get(), &r));
        return r;
    }
    void save(const std::string &path) const { detail::check(bert_trainer_save(get(), path.c_str())); }
    void save_checkpoint(const std::string &path) { detail::check(bert_trainer_save_checkpoint(get(), path.c_str())); }
    void resume(const std::string &path) { detail::check(bert_trainer_resume(get(), path.c_str())); }
    uint64_t global_step() const noexcept { return bert_trainer_global_step(get()); }
    uint64_t num_train_steps() const noexcept { return bert_trainer_num_train_steps(get()); }
    size_t num_examples(Split split = Split::Train) const noexcept {
        return bert_trainer_num_examples(get(), static_cast<bert_split>(split));
    }
    bert_trainer *get() const noexcept { return handle_.get(); }

private:
    // No exception crosses the C boundary: one thrown by the callback stops training.
    static int32_t trampoline(const bert_progress *p, void *user) noexcept {
        try {
            return (*static_cast<Progress *>(user))(*p) ? 0 : 1;
        } catch (...) {
            return 1;
        }
    }
    std::unique_ptr<bert_trainer, detail::TrainerFree> handle_;
};

// Sends libbert's log lines to `callback` (nullptr: silence). The function must outlive its
// use; plain functions and captureless lambdas fit.
inline void log_set(bert_log_callback callback, void *user_data = nullptr) { bert_log_set(callback, user_data); }

}  // namespace bert

#endif  // BERT_HPP
