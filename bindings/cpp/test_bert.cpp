// C++ bindings against the real all-MiniLM-L6-v2: embedding equals the Rust API's
// (max abs diff <= 1e-6), RAII/move semantics, errors as exceptions with status + message.
// With SST2_DIR and WORK_DIR: a 2-update fine-tune (4 examples, seq 32) with a progress
// callback that stops it once, then the saved classifier classifies. With SQUAD_BERT and
// ANSWERS_TXT (examples/squad_reference.rs): one question answered as the Rust API answers it.
//   test_bert MODEL_DIR REFERENCE_TXT [SST2_DIR WORK_DIR [SQUAD_BERT ANSWERS_TXT]]
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
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
    if (argc >= 5) {
        bert_trainer_params p = bert_trainer_default_params();
        p.n_labels = 2;
        p.train_batch_size = 2;
        p.num_train_epochs = 1;
        p.max_seq_length = 32;
        p.n_threads = 2;
        bert::Trainer trainer(argv[1], p);
        bert_tsv_params tsv = bert_tsv_default_params();
        tsv.task_name = "sst-2";
        trainer.add_example("a gorgeous , witty , seductive movie .", 1);
        trainer.add_example("the plot is nothing but boilerplate clichés", 0);
        trainer.add_example("an absolute joy from start to finish", "1");
        trainer.add_example("dull and lifeless", "0");
        trainer.add_tsv(std::string(argv[3]) + "/dev.tsv", bert::Split::Eval, tsv);
        CHECK(trainer.num_train_steps() == 2 && trainer.num_examples(bert::Split::Eval) == 8);
        std::vector<uint64_t> steps;
        auto record = [&](const bert_progress &pr) {
            steps.push_back(pr.step);
            return pr.step != 1;  // stop after the first update
        };
        CHECK(!trainer.train(0, record));
        CHECK(trainer.global_step() == 1);
        CHECK(trainer.train(0, record));
        CHECK(trainer.global_step() == 2 && steps == std::vector<uint64_t>({1, 2}));
        bert_eval_result r = trainer.evaluate();
        CHECK(r.n_examples == 8 && r.global_step == 2 && std::isfinite(r.loss));
        std::string path = std::string(argv[4]) + "/cpp_classifier.bert";
        trainer.save(path);
        try {
            trainer.add_example("too late", 7);
            CHECK(false);
        } catch (const bert::Error &err) {
            CHECK(err.status() == BERT_ERROR_LABEL);
        }

        bert::Classifier clf(path);
        CHECK(clf.labels() == std::vector<std::string>({"0", "1"}));
        bert_context_params cp = bert_context_default_params();
        cp.max_seq_length = 32;
        bert::Context cctx(clf, cp);
        bert::Classification c = cctx.classify(clf, {"a fine film", "A man plays."}, {"", "Music."});
        CHECK(c.num_labels == 2 && c.probabilities.size() == 4);
        CHECK(std::fabs(c.probabilities[0] + c.probabilities[1] - 1) < 1e-6f);
        std::cout << "C++: trained 2 updates (eval accuracy " << r.accuracy << "), P(1 | a fine film) = "
                  << c.probabilities[1] << "\n";
        // Its encoder quantized on load (the head stays f32): close to the f32 classifier.
        bert_model_params q = bert_model_default_params();
        q.dtype = BERT_DTYPE_INT8;
        bert::Classifier clf8(path, q);
        bert::Context cctx8(clf8, cp);
        bert::Classification c8 = cctx8.classify(clf8, {"a fine film", "A man plays."}, {"", "Music."});
        CHECK(std::fabs(c8.probabilities[1] - c.probabilities[1]) < 0.05f);
        try {
            bert::Classifier not_one(argv[1]);
            CHECK(false);
        } catch (const bert::Error &err) {
            CHECK(err.status() == BERT_ERROR_NOT_A_CLASSIFIER);
        }
    }
    if (argc > 6) {
        // The reference: "start end score text" per answer, best first.
        std::vector<bert::Answer> want;
        std::ifstream ref_answers(argv[6]);
        for (std::string line; std::getline(ref_answers, line);) {
            std::istringstream l(line);
            bert::Answer a{};
            l >> a.start_byte >> a.end_byte >> a.score;
            std::getline(l >> std::ws, a.text);
            want.push_back(a);
        }
        const std::string question = "Which NFL team won Super Bowl 50?";
        const std::string context =
            "Super Bowl 50 was an American football game to determine the champion of the National Football "
            "League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver Broncos "
            "defeated the National Football Conference (NFC) champion Carolina Panthers 24\u201310 to earn their "
            "third Super Bowl title.";
        bert::QuestionAnswerer qa(argv[5]);
        bert::Context qctx(qa);
        bert_qa_params qp = bert_qa_default_params();
        qp.n_best = 3;
        std::vector<bert::Answer> got = qctx.answer(qa, question, context, qp);
        CHECK(want.size() == 3 && got.size() == want.size());
        for (size_t i = 0; i < got.size() && i < want.size(); i++) {
            CHECK(got[i].start_byte == want[i].start_byte && got[i].end_byte == want[i].end_byte);
            CHECK(got[i].text == want[i].text);
            CHECK(std::fabs(got[i].score - want[i].score) <= 1e-6f);
        }
        auto batch = qctx.answer_batch(qa, {{question, context}, {"Who?", ""}}, qp);
        CHECK(batch.size() == 2 && batch[1].empty() && batch[0].size() == got.size());
        CHECK(!batch[0].empty() && batch[0][0].start_byte == got[0].start_byte);
        try {
            bert::Context wrong(model);
            wrong.answer(qa, question, context);
            CHECK(false);
        } catch (const bert::Error &err) {
            CHECK(err.status() == BERT_ERROR_INVALID_ARGUMENT);
        }
        if (!got.empty()) std::cout << "C++: answer \"" << got[0].text << "\" (" << got[0].score << ")\n";
    }
    std::cout << "C++: " << checks << " checks, " << failures << " failed\n";
    return failures == 0 ? 0 : 1;
}
