/* Fine-tuning and classifying through the C ABI: a tiny fine-tune of the real
 * all-MiniLM-L6-v2 on SST-2 rows (2 updates of 2 examples, seq 32), a cancelled and a resumed
 * run, evaluation, save, the saved classifier reloaded and cross-checked against the
 * trainer's evaluation; checkpoint and resume (on Google's tiny fixture, for a small state
 * file) giving the straight run's result; the abort and log callbacks; and every status the classifier and
 * trainer calls document. Run under valgrind by scripts/test_bindings.sh.
 *
 *   test_trainer MODEL_DIR MODEL_BERT_FILE SST2_DIR TINY_MODEL_DIR WORK_DIR
 *
 * SST2_DIR holds train.tsv (8 rows) and dev.tsv (8 rows) in SST-2's layout; TINY_MODEL_DIR is
 * Google's tf_bert_tiny fixture (fast error paths); MODEL_BERT_FILE is the plain (not
 * fine-tuned) .bert of the model; WORK_DIR is writable.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "bert.h"
#include "check.h"

/* --- log callback: counts lines per level, keeps the last INFO line ------------------ */
struct log_seen {
    int lines[4];
    char last_info[512];
};

static void on_log(bert_log_level level, const char *message, void *user) {
    struct log_seen *seen = user;
    if (level >= 0 && level < 4) seen->lines[level]++;
    if (level == BERT_LOG_INFO) snprintf(seen->last_info, sizeof seen->last_info, "%s", message);
}

/* --- progress callback: records what it saw, stops at `stop_at` ----------------------- */
struct progress_seen {
    int calls;
    uint64_t stop_at, last_step, total;
    float last_loss;
    double last_rate;
};

static int32_t on_progress(const bert_progress *p, void *user) {
    struct progress_seen *seen = user;
    seen->calls++;
    seen->last_step = p->step;
    seen->total = p->total_steps;
    seen->last_loss = p->loss;
    seen->last_rate = p->examples_per_second;
    return p->step == seen->stop_at ? 1 : 0;
}

/* --- abort callback: answers "stop" at the `stop_at`-th question ------------------------ */
struct abort_state {
    int asked, stop_at;
};

static int32_t on_abort(void *user) {
    struct abort_state *a = user;
    return ++a->asked == a->stop_at;
}

/* SST-2 rows of a .tsv: text (before the tab) and label; returns the count (<= max). */
static int read_rows(const char *path, char texts[][512], int *labels, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    if (!fgets(line, sizeof line, f)) n = 0; /* header */
    while (n < max && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        strncpy(texts[n], line, 511);
        texts[n][511] = 0;
        labels[n] = atoi(tab + 1);
        n++;
    }
    fclose(f);
    return n;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL_DIR MODEL_BERT_FILE SST2_DIR TINY_MODEL_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    const char *model_dir = argv[1], *plain_bert = argv[2], *sst2 = argv[3], *tiny = argv[4], *work = argv[5];
    char train_tsv[4096], dev_tsv[4096], state[4096], clf_path[4096], bad_tsv[4096];
    snprintf(train_tsv, sizeof train_tsv, "%s/train.tsv", sst2);
    snprintf(dev_tsv, sizeof dev_tsv, "%s/dev.tsv", sst2);
    snprintf(state, sizeof state, "%s/trainer_state.safetensors", work);
    snprintf(clf_path, sizeof clf_path, "%s/classifier.bert", work);
    snprintf(bad_tsv, sizeof bad_tsv, "%s/bad.tsv", work);

    struct log_seen seen_log;
    memset(&seen_log, 0, sizeof seen_log);
    bert_log_set(on_log, &seen_log);

    /* --- a trainer on the real model ----------------------------------------------------- */
    bert_trainer_params tp = bert_trainer_default_params();
    CHECK(tp.size == sizeof tp && tp.train_batch_size == 32 && fabsf(tp.learning_rate - 5e-5f) < 1e-12f);
    tp.n_labels = 2; /* labels "0" and "1", SST-2's */
    tp.train_batch_size = 2;
    tp.num_train_epochs = 0.5; /* 8 rows / 2 * 0.5 = 2 updates (kept small for valgrind) */
    tp.max_seq_length = 32;
    tp.learning_rate = 1e-4f;
    tp.n_threads = 1; /* one thread: no spinning pool workers under valgrind */
    tp.seed = 1;
    bert_trainer *trainer = NULL;
    CHECK_STATUS(bert_trainer_new(model_dir, &tp, &trainer), BERT_OK);
    if (!trainer) return 1;
    CHECK(strstr(seen_log.last_info, "trainer:") != NULL);
    CHECK(bert_trainer_num_labels(trainer) == 2);

    bert_tsv_params tsv = bert_tsv_default_params();
    tsv.task_name = "sst-2";
    CHECK_STATUS(bert_trainer_add_tsv(trainer, BERT_SPLIT_TRAIN, train_tsv, &tsv), BERT_OK);
    CHECK(bert_trainer_num_examples(trainer, BERT_SPLIT_TRAIN) == 8);
    CHECK(bert_trainer_num_train_steps(trainer) == 2);
    CHECK(bert_trainer_global_step(trainer) == 0);

    /* bad examples: nothing is added */
    const char *t = "a fine film";
    CHECK_STATUS(bert_trainer_add_example(trainer, BERT_SPLIT_TRAIN, t, strlen(t), NULL, 0, 2), BERT_ERROR_LABEL);
    CHECK_STATUS(bert_trainer_add_example(trainer, BERT_SPLIT_TRAIN, t, strlen(t), NULL, 0, -1), BERT_ERROR_LABEL);
    CHECK_STATUS(bert_trainer_add_example_label(trainer, BERT_SPLIT_TRAIN, t, strlen(t), NULL, 0, "neutral", 7), BERT_ERROR_LABEL);
    CHECK_STATUS(bert_trainer_add_example(trainer, 5, t, strlen(t), NULL, 0, 0), BERT_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(bert_trainer_add_example(trainer, BERT_SPLIT_TRAIN, "caf\xc3", 4, NULL, 0, 0), BERT_ERROR_INVALID_UTF8);
    CHECK_STATUS(bert_trainer_add_example(trainer, BERT_SPLIT_TRAIN, NULL, 3, NULL, 0, 0), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_trainer_add_example(NULL, BERT_SPLIT_TRAIN, t, strlen(t), NULL, 0, 0), BERT_ERROR_NULL_ARGUMENT);
    write_file(bad_tsv, "sentence\tlabel\ngood\t1\nonly one column\n");
    CHECK_STATUS(bert_trainer_add_tsv(trainer, BERT_SPLIT_TRAIN, bad_tsv, &tsv), BERT_ERROR_FORMAT);
    CHECK(strstr(bert_last_error(), "line 3") != NULL);
    write_file(bad_tsv, "sentence\tlabel\ngood\t1\nbad\t7\n");
    CHECK_STATUS(bert_trainer_add_tsv(trainer, BERT_SPLIT_TRAIN, bad_tsv, NULL), BERT_ERROR_LABEL);
    CHECK_STATUS(bert_trainer_add_tsv(trainer, BERT_SPLIT_TRAIN, "/nonexistent.tsv", NULL), BERT_ERROR_IO);
    CHECK(bert_trainer_num_examples(trainer, BERT_SPLIT_TRAIN) == 8);

    /* evaluation needs evaluation examples */
    bert_eval_result ev = {.size = sizeof ev};
    CHECK_STATUS(bert_trainer_evaluate(trainer, &ev), BERT_ERROR_EMPTY_DATA);
    CHECK_STATUS(bert_trainer_add_tsv(trainer, BERT_SPLIT_EVAL, dev_tsv, &tsv), BERT_OK);
    CHECK(bert_trainer_num_examples(trainer, BERT_SPLIT_EVAL) == 8);

    /* --- train: the progress callback stops after update 1, then training goes on ---------- */
    struct progress_seen seen;
    memset(&seen, 0, sizeof seen);
    seen.stop_at = 1;
    CHECK_STATUS(bert_trainer_train(trainer, 0, on_progress, &seen), BERT_ERROR_CANCELLED);
    CHECK(seen.calls == 1 && seen.last_step == 1 && seen.total == 2);
    CHECK(isfinite(seen.last_loss) && seen.last_loss > 0 && seen.last_rate > 0);
    CHECK(bert_trainer_global_step(trainer) == 1);
    CHECK_STATUS(bert_trainer_add_example(trainer, BERT_SPLIT_TRAIN, t, strlen(t), NULL, 0, 1), BERT_ERROR_INVALID_ARGUMENT);
    seen.stop_at = 0;
    CHECK_STATUS(bert_trainer_train(trainer, 0, on_progress, &seen), BERT_OK);
    CHECK(seen.calls == 2 && seen.last_step == 2 && bert_trainer_global_step(trainer) == 2);
    CHECK_STATUS(bert_trainer_train(trainer, 0, NULL, NULL), BERT_OK); /* finished: no-op */
    CHECK(bert_trainer_global_step(trainer) == 2);

    CHECK_STATUS(bert_trainer_evaluate(trainer, &ev), BERT_OK);
    CHECK(ev.n_examples == 8 && ev.global_step == 2);
    CHECK(ev.accuracy >= 0 && ev.accuracy <= 1 && isfinite(ev.loss) && ev.loss > 0);
    CHECK(!isnan(ev.f1) && !isnan(ev.mcc));
    printf("trainer: 2 updates, eval accuracy %.3f, loss %.4f\n", ev.accuracy, ev.loss);
    CHECK_STATUS(bert_trainer_save(trainer, clf_path), BERT_OK);
    CHECK_STATUS(bert_trainer_save(trainer, "/nonexistent/dir/x.bert"), BERT_ERROR_IO);

    /* --- checkpoint and resume, on the tiny model (a small state file) --------------------
     * Run 0 makes 2 updates straight. Run 1 makes 1, saves a checkpoint, makes the 2nd, then
     * resumes from the checkpoint (back to update 1) and makes the 2nd again: both times it
     * ends bit-identical to run 0. Run 1 also uses gradient checkpointing, which changes
     * memory, not numbers. */
    const char *names[2] = {"neg", "pos"};
    bert_trainer_params rp = bert_trainer_default_params();
    rp.labels = names;
    rp.n_labels = 2;
    rp.train_batch_size = 2;
    rp.num_train_epochs = 1;
    rp.max_seq_length = 16;
    rp.learning_rate = 1e-3f;
    rp.n_threads = 1;
    bert_trainer *runs[2] = {NULL, NULL};
    CHECK(!rp.gradient_checkpointing && rp.max_grad_norm == 1.0f);
    for (int r = 0; r < 2; r++) {
        rp.gradient_checkpointing = r == 1;
        CHECK_STATUS(bert_trainer_new(tiny, &rp, &runs[r]), BERT_OK);
        if (!runs[r]) return 1;
        for (int i = 0; i < 4; i++)
            CHECK_STATUS(bert_trainer_add_example(runs[r], BERT_SPLIT_TRAIN, t, strlen(t) - (size_t)i, NULL, 0, i % 2), BERT_OK);
        CHECK_STATUS(bert_trainer_add_example(runs[r], BERT_SPLIT_EVAL, "fine", 4, "film", 4, 1), BERT_OK);
    }
    bert_eval_result e0 = {.size = sizeof e0}, e1 = {.size = sizeof e1};
    CHECK_STATUS(bert_trainer_train(runs[0], 0, NULL, NULL), BERT_OK);            /* straight */
    CHECK_STATUS(bert_trainer_evaluate(runs[0], &e0), BERT_OK);
    CHECK_STATUS(bert_trainer_train(runs[1], 1, NULL, NULL), BERT_OK);            /* 1 update */
    CHECK(bert_trainer_global_step(runs[1]) == 1);
    CHECK_STATUS(bert_trainer_save_checkpoint(runs[1], state), BERT_OK);
    CHECK_STATUS(bert_trainer_train(runs[1], 0, NULL, NULL), BERT_OK);
    CHECK_STATUS(bert_trainer_evaluate(runs[1], &e1), BERT_OK);
    CHECK(e0.global_step == 2 && e1.global_step == 2 && e0.loss == e1.loss);
    CHECK_STATUS(bert_trainer_resume(runs[1], dev_tsv), BERT_ERROR_FORMAT);      /* not a state */
    CHECK_STATUS(bert_trainer_resume(runs[1], state), BERT_OK);
    CHECK(bert_trainer_global_step(runs[1]) == 1);
    CHECK_STATUS(bert_trainer_train(runs[1], 0, NULL, NULL), BERT_OK);
    memset(&e1, 0, sizeof e1);
    e1.size = sizeof e1;
    CHECK_STATUS(bert_trainer_evaluate(runs[1], &e1), BERT_OK);
    CHECK(e1.global_step == 2 && e0.loss == e1.loss);
    for (int r = 0; r < 2; r++) bert_trainer_free(runs[r]);

    /* --- the saved classifier, cross-checked against the trainer's evaluation ------------- */
    bert_classifier *clf = NULL;
    CHECK_STATUS(bert_classifier_load_file(clf_path, NULL, &clf), BERT_OK);
    if (!clf) return 1;
    CHECK(bert_classifier_num_labels(clf) == 2);
    CHECK(strcmp(bert_classifier_label(clf, 0), "0") == 0 && strcmp(bert_classifier_label(clf, 1), "1") == 0);
    CHECK(bert_classifier_label(clf, 2) == NULL && bert_classifier_label(NULL, 0) == NULL);
    bert_context_params cp = bert_context_default_params();
    cp.max_seq_length = 32;
    cp.n_threads = 1;
    bert_context *ctx = NULL;
    CHECK_STATUS(bert_context_new(bert_classifier_model(clf), &cp, &ctx), BERT_OK);

    static char texts[8][512];
    int labels[8];
    int n = read_rows(dev_tsv, texts, labels, 8);
    CHECK(n == 8);
    const char *ptrs[8];
    for (int i = 0; i < n; i++) ptrs[i] = texts[i];
    size_t need = 0;
    CHECK_STATUS(bert_classify(ctx, clf, ptrs, NULL, NULL, NULL, 8, NULL, NULL, 0, &need), BERT_ERROR_BUFFER_TOO_SMALL);
    CHECK(need == 16);
    float logits[16], probs[16], one[2];
    CHECK_STATUS(bert_classify(ctx, clf, ptrs, NULL, NULL, NULL, 8, logits, probs, 16, &need), BERT_OK);
    int correct = 0;
    double loss = 0;
    for (int i = 0; i < n; i++) {
        float *p = probs + 2 * i, *l = logits + 2 * i;
        CHECK(fabsf(p[0] + p[1] - 1.0f) < 1e-6f);
        float p1 = 1.0f / (1.0f + expf(l[0] - l[1]));
        CHECK(fabsf(p1 - p[1]) < 1e-6f);
        correct += (p[1] > p[0]) == (labels[i] == 1);
        loss -= log(p[labels[i]]);
    }
    printf("classifier: accuracy %.3f (trainer %.3f), loss %.6f (trainer %.6f)\n", correct / 8.0, ev.accuracy,
           loss / 8, ev.loss);
    CHECK(fabs(correct / 8.0 - ev.accuracy) < 1e-12);
    CHECK(fabs(loss / 8 - ev.loss) < 1e-5);
    /* a row does not depend on the batch */
    CHECK_STATUS(bert_classify(ctx, clf, ptrs + 3, NULL, NULL, NULL, 1, NULL, one, 2, NULL), BERT_OK);
    CHECK(fabsf(one[0] - probs[6]) < 1e-6f && fabsf(one[1] - probs[7]) < 1e-6f);
    /* pairs, with lengths */
    const char *a[2] = {"A man is playing a guitar.", "Hello"};
    const char *b[2] = {"Someone plays music.", NULL};
    size_t la[2] = {strlen(a[0]), strlen(a[1])}, lb[2] = {strlen(b[0]), 0};
    CHECK_STATUS(bert_classify(ctx, clf, a, la, b, lb, 2, NULL, probs, 16, &need), BERT_OK);
    CHECK(need == 4 && fabsf(probs[0] + probs[1] - 1.0f) < 1e-6f);

    /* errors of bert_classify */
    bert_model *other = NULL; /* the tiny model: cheap to load under valgrind */
    CHECK_STATUS(bert_model_load_file(tiny, NULL, &other), BERT_OK);
    bert_context *other_ctx = NULL;
    CHECK_STATUS(bert_context_new(other, NULL, &other_ctx), BERT_OK);
    CHECK_STATUS(bert_classify(other_ctx, clf, ptrs, NULL, NULL, NULL, 1, NULL, probs, 16, NULL), BERT_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(bert_classify(ctx, NULL, ptrs, NULL, NULL, NULL, 1, NULL, probs, 16, NULL), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_classify(ctx, clf, NULL, NULL, NULL, NULL, 1, NULL, probs, 16, NULL), BERT_ERROR_NULL_ARGUMENT);
    const char *bad_text[1] = {"caf\xc3"};
    CHECK_STATUS(bert_classify(ctx, clf, bad_text, NULL, NULL, NULL, 1, NULL, probs, 16, NULL), BERT_ERROR_INVALID_UTF8);

    /* --- the abort callback: checked before each layer; the call writes nothing ----------- */
    struct abort_state ab = {0, 1};
    bert_context_params acp = bert_context_default_params();
    acp.n_threads = 1;
    acp.abort_callback = on_abort;
    acp.abort_user_data = &ab;
    bert_context *actx = NULL;
    CHECK_STATUS(bert_context_new(other, &acp, &actx), BERT_OK);
    float emb[384];
    emb[0] = 42.0f;
    size_t tl = strlen(t);
    CHECK_STATUS(bert_embed(actx, &t, &tl, 1, BERT_POOLING_MEAN, true, emb, 384, NULL), BERT_ERROR_CANCELLED);
    CHECK(ab.asked == 1 && emb[0] == 42.0f);
    ab.asked = 0;
    ab.stop_at = 2; /* stops before layer 1 of 2 */
    CHECK_STATUS(bert_embed(actx, &t, &tl, 1, BERT_POOLING_MEAN, true, emb, 384, NULL), BERT_ERROR_CANCELLED);
    CHECK(ab.asked == 2 && emb[0] == 42.0f);
    ab.asked = 0;
    ab.stop_at = 100; /* never: asked once per layer */
    CHECK_STATUS(bert_embed(actx, &t, &tl, 1, BERT_POOLING_MEAN, true, emb, 384, NULL), BERT_OK);
    CHECK(ab.asked == 2 && emb[0] != 42.0f);
    bert_context_free(actx);
    bert_context_free(other_ctx);
    bert_model_free(other);

    /* --- not a classifier ----------------------------------------------------------------- */
    bert_classifier *nc = (bert_classifier *)1;
    CHECK_STATUS(bert_classifier_load_file(model_dir, NULL, &nc), BERT_ERROR_NOT_A_CLASSIFIER);
    CHECK(nc == NULL);
    CHECK_STATUS(bert_classifier_load_file(plain_bert, NULL, &nc), BERT_ERROR_NOT_A_CLASSIFIER);
    CHECK_STATUS(bert_classifier_load_file("/nonexistent.bert", NULL, &nc), BERT_ERROR_IO);
    CHECK_STATUS(bert_classifier_load_file(NULL, NULL, &nc), BERT_ERROR_NULL_ARGUMENT);
    CHECK(bert_classifier_num_labels(NULL) == 0 && bert_classifier_model(NULL) == NULL);

    /* --- trainer errors on the tiny fixture ---------------------------------------------- */
    bert_trainer *tt = (bert_trainer *)1;
    bert_trainer_params bad = bert_trainer_default_params();
    CHECK_STATUS(bert_trainer_new(tiny, &bad, &tt), BERT_ERROR_LABEL); /* no labels anywhere */
    CHECK(tt == NULL);
    bad.labels = names;
    bad.n_labels = 2;
    bad.train_batch_size = 3;
    bad.gradient_accumulation_steps = 2;
    CHECK_STATUS(bert_trainer_new(tiny, &bad, &tt), BERT_ERROR_INVALID_ARGUMENT);
    bad = bert_trainer_default_params();
    bad.labels = names;
    bad.n_labels = 2;
    bad.max_grad_norm = -1.0f;
    CHECK_STATUS(bert_trainer_new(tiny, &bad, &tt), BERT_ERROR_INVALID_ARGUMENT);
    bad.max_grad_norm = 1.0f;
    /* A struct from the header before gradient_checkpointing was appended (8-byte aligned
     * end of do_lower_case) is accepted; the new fields take their defaults. */
    bad.size = (offsetof(bert_trainer_params, do_lower_case) + sizeof(int32_t) + 7) / 8 * 8;
    CHECK_STATUS(bert_trainer_new(tiny, &bad, &tt), BERT_OK);
    bert_trainer_free(tt);
    tt = NULL;
    bad.size = 3;
    CHECK_STATUS(bert_trainer_new(tiny, &bad, &tt), BERT_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(bert_trainer_new("/nonexistent", NULL, &tt), BERT_ERROR_IO);
    CHECK_STATUS(bert_trainer_new(tiny, NULL, NULL), BERT_ERROR_NULL_ARGUMENT);

    bert_trainer_params dp = bert_trainer_default_params();
    dp.labels = names;
    dp.n_labels = 2;
    dp.learning_rate = 1e30f; /* diverges */
    dp.warmup_proportion = 0;
    dp.train_batch_size = 2;
    dp.max_seq_length = 16;
    dp.n_threads = 1;
    CHECK_STATUS(bert_trainer_new(tiny, &dp, &tt), BERT_OK);
    CHECK_STATUS(bert_trainer_train(tt, 0, NULL, NULL), BERT_ERROR_EMPTY_DATA);
    for (int i = 0; i < 4; i++) {
        const char *lab = names[i % 2];
        CHECK_STATUS(bert_trainer_add_example_label(tt, BERT_SPLIT_TRAIN, t, strlen(t), "b", 1, lab, strlen(lab)), BERT_OK);
    }
    CHECK_STATUS(bert_trainer_train(tt, 0, NULL, NULL), BERT_ERROR_DIVERGED);
    CHECK_STATUS(bert_trainer_train(tt, 0, NULL, NULL), BERT_ERROR_DIVERGED);
    CHECK_STATUS(bert_trainer_save(tt, clf_path), BERT_ERROR_DIVERGED);
    bert_trainer_free(tt);
    bert_trainer_free(NULL);
    bert_classifier_free(NULL);
    CHECK(bert_trainer_global_step(NULL) == 0 && bert_trainer_num_examples(NULL, 0) == 0);

    /* statuses have text */
    CHECK(strcmp(bert_status_string(BERT_ERROR_CANCELLED), "cancelled") == 0);
    CHECK(strcmp(bert_status_string(BERT_ERROR_LABEL), "bad label") == 0);
    CHECK(strcmp(bert_status_string(BERT_ERROR_DIVERGED), "training diverged") == 0);
    CHECK(strcmp(bert_status_string(BERT_ERROR_NOT_A_CLASSIFIER),
                 "not fine-tuned for the task (no classifier head and labels, or no SQuAD span head)") == 0);
    CHECK(strcmp(bert_status_string(BERT_ERROR_EMPTY_DATA), "no data") == 0);

    /* --- the log: loads and back-end choices at INFO, failures at ERROR; then silence ----- */
    CHECK(seen_log.lines[BERT_LOG_INFO] >= 4);
    CHECK(seen_log.lines[BERT_LOG_ERROR] >= 20);
    bert_log_set(NULL, NULL);
    int errors = seen_log.lines[BERT_LOG_ERROR];
    CHECK_STATUS(bert_classifier_load_file(NULL, NULL, &nc), BERT_ERROR_NULL_ARGUMENT);
    CHECK(seen_log.lines[BERT_LOG_ERROR] == errors);

    bert_context_free(ctx);
    bert_classifier_free(clf);
    bert_trainer_free(trainer);
    printf("test_trainer: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
