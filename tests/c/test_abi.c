/* The C ABI's contract where a careless or hostile caller tests it (issue 21): the header's
 * rules for arguments, sizes that come from the caller, C booleans, result structs that can
 * grow, borrowed handles, threads and fork. On Google's tiny fixture, so it runs quickly under
 * valgrind (scripts/test_bindings.sh).
 *
 *   test_abi TINY_MODEL_DIR WORK_DIR
 *
 * Calls that once aborted or crashed the process run in a forked child (see `survives`), so
 * that a regression is reported as a failed check instead of ending the test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bert.h"

static int failures = 0, checks = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            failures++;                                                              \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__,  \
                    __LINE__, #cond, bert_last_error());                             \
        }                                                                            \
    } while (0)

#define CHECK_STATUS(call, status)                                                   \
    do {                                                                             \
        bert_status s_ = (call);                                                     \
        CHECK(s_ == (status));                                                       \
        if (s_ != (status)) fprintf(stderr, "  got %d (%s)\n", s_, bert_last_error()); \
        if ((status) != BERT_OK) CHECK(strlen(bert_last_error()) > 0);               \
    } while (0)

struct env {
    const char *tiny, *work;
    bert_model *model;
    bert_context *ctx;
    char clf_path[4096];
    bert_classifier *clf;
    bert_context *clf_ctx;
};

/* A classifier fine-tuned from the tiny model for one update, saved to WORK_DIR. */
static int make_classifier(struct env *e) {
    const char *labels[2] = {"neg", "pos"};
    bert_trainer_params tp = bert_trainer_default_params();
    tp.labels = labels;
    tp.n_labels = 2;
    tp.train_batch_size = 2;
    tp.num_train_epochs = 1;
    tp.max_seq_length = 16;
    tp.n_threads = 1;
    bert_trainer *t = NULL;
    bert_status s = bert_trainer_new(e->tiny, &tp, &t);
    for (int i = 0; s == BERT_OK && i < 2; i++)
        s = bert_trainer_add_example(t, BERT_SPLIT_TRAIN, "a fine film", 11 - (size_t)i, NULL, 0, i);
    if (s == BERT_OK) s = bert_trainer_train(t, 0, NULL, NULL);
    snprintf(e->clf_path, sizeof e->clf_path, "%s/abi_classifier.bert", e->work);
    if (s == BERT_OK) s = bert_trainer_save(t, e->clf_path);
    bert_trainer_free(t);
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 1;
    cp.max_seq_length = 16;
    if (s == BERT_OK) s = bert_classifier_load_file(e->clf_path, &e->clf);
    if (s == BERT_OK) s = bert_context_new(bert_classifier_model(e->clf), &cp, &e->clf_ctx);
    if (s != BERT_OK) fprintf(stderr, "classifier: %s\n", bert_last_error());
    return s == BERT_OK;
}

/* --- texts: a NULL pointer is accepted only with length 0 (the header's rule) ------------- */
static void null_texts(struct env *e) {
    bert_encoding_view v;
    /* text_b NULL with a length is not "no second text" */
    CHECK_STATUS(bert_encode(e->ctx, "a", 1, NULL, 7, NULL, &v), BERT_ERROR_NULL_ARGUMENT);
    CHECK(v.n_tokens == 0 && v.ids == NULL);
    CHECK(strstr(bert_last_error(), "text_b") != NULL);
    CHECK_STATUS(bert_encode(e->ctx, NULL, 3, NULL, 0, NULL, &v), BERT_ERROR_NULL_ARGUMENT);
    /* NULL with 0 is none; an empty second text is a pair */
    CHECK_STATUS(bert_encode(e->ctx, "a", 1, NULL, 0, NULL, &v), BERT_OK);
    CHECK(v.n_tokens == 3);
    CHECK_STATUS(bert_encode(e->ctx, "a", 1, "", 0, NULL, &v), BERT_OK);
    CHECK(v.n_tokens == 4); /* [CLS] a [SEP] [SEP] */

    const char *labels[2] = {"neg", "pos"};
    bert_trainer_params tp = bert_trainer_default_params();
    tp.labels = labels;
    tp.n_labels = 2;
    tp.n_threads = 1;
    bert_trainer *t = NULL;
    CHECK_STATUS(bert_trainer_new(e->tiny, &tp, &t), BERT_OK);
    CHECK_STATUS(bert_trainer_add_example(t, BERT_SPLIT_TRAIN, "a", 1, NULL, 7, 0), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_trainer_add_example_label(t, BERT_SPLIT_EVAL, "a", 1, NULL, 7, "pos", 3),
                 BERT_ERROR_NULL_ARGUMENT);
    CHECK(bert_trainer_num_examples(t, BERT_SPLIT_TRAIN) == 0 && bert_trainer_num_examples(t, BERT_SPLIT_EVAL) == 0);
    CHECK_STATUS(bert_trainer_add_example(t, BERT_SPLIT_TRAIN, "a", 1, NULL, 0, 0), BERT_OK);
    bert_trainer_free(t);

    const char *a[1] = {"a"}, *b[1] = {NULL};
    size_t la[1] = {1}, lb[1] = {3};
    float probs[2];
    CHECK_STATUS(bert_classify(e->clf_ctx, e->clf, a, la, b, lb, 1, NULL, probs, 2, NULL), BERT_ERROR_NULL_ARGUMENT);
    CHECK(strstr(bert_last_error(), "texts_b[0]") != NULL);
    lb[0] = 0; /* NULL with 0: a single sentence */
    CHECK_STATUS(bert_classify(e->clf_ctx, e->clf, a, la, b, lb, 1, NULL, probs, 2, NULL), BERT_OK);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TINY_MODEL_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    struct env e;
    memset(&e, 0, sizeof e);
    e.tiny = argv[1];
    e.work = argv[2];
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 1;
    if (bert_model_load_file(e.tiny, NULL, &e.model) != BERT_OK ||
        bert_context_new(e.model, &cp, &e.ctx) != BERT_OK) {
        fprintf(stderr, "libbert: %s\n", bert_last_error());
        return 1;
    }

    if (!make_classifier(&e)) return 1;

    null_texts(&e);

    bert_context_free(e.clf_ctx);
    bert_classifier_free(e.clf);
    bert_context_free(e.ctx);
    bert_model_free(e.model);
    printf("test_abi: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
