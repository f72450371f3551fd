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
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bert.h"
#include "check.h"

/* Runs `body(arg)` in a child process (which must make its own contexts); true when the child reported 0 ("as expected") within
 * `seconds`, so that a call that aborts, crashes or hangs is reported, not fatal. The result
 * travels through a pipe, not the exit status, which valgrind replaces when it finds the
 * child's copies of the parent's objects unfreed at exit. */
static int survives(int (*body)(void *), void *arg, unsigned seconds, const char *what) {
    int fds[2];
    if (pipe(fds) != 0) return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        close(fds[0]);
        alarm(seconds);
        unsigned char result = (unsigned char)(body(arg) != 0);
        _exit(write(fds[1], &result, 1) == 1 ? 0 : 1);
    }
    close(fds[1]);
    unsigned char result = 1;
    ssize_t got = read(fds[0], &result, 1);
    close(fds[0]);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    if (got == 1) {
        if (result != 0) fprintf(stderr, "  %s: not as expected (%s)\n", what, bert_last_error());
        return result == 0;
    }
    if (WIFSIGNALED(wstatus))
        fprintf(stderr, "  %s: the child died of signal %d%s\n", what, WTERMSIG(wstatus),
                WTERMSIG(wstatus) == SIGALRM ? " (hung)" : "");
    else
        fprintf(stderr, "  %s: the child exited with %d and no result\n", what, WEXITSTATUS(wstatus));
    return 0;
}

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
    if (s == BERT_OK) s = bert_classifier_load_file(e->clf_path, NULL, &e->clf);
    if (s == BERT_OK) s = bert_context_new(bert_classifier_model(e->clf), &cp, &e->clf_ctx);
    if (s != BERT_OK) fprintf(stderr, "classifier: %s\n", bert_last_error());
    return s == BERT_OK;
}

/* --- texts: a NULL pointer is accepted only with length 0 (the header's rule) ------------- */
static void null_texts(struct env *e) {
    bert_encoding_view v = {.size = sizeof v};
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

/* A context of this process (a child cannot use its parent's: see `forks`). */
static bert_context *new_context(const bert_model *model) {
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 1;
    cp.max_seq_length = 16;
    bert_context *c = NULL;
    return bert_context_new(model, &cp, &c) == BERT_OK ? c : NULL;
}

/* --- sizes from the caller are checked: an error, never an abort ------------------------- */
static int huge_threads(void *arg) {
    struct env *e = arg;
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = UINT32_MAX; /* once: 4 billion JoinHandles reserved, abort */
    bert_context *c = (bert_context *)1;
    if (bert_context_new(e->model, &cp, &c) != BERT_ERROR_INVALID_ARGUMENT || c != NULL) return 1;
    if (!strstr(bert_last_error(), "BERT_MAX_THREADS")) return 1;
    cp.n_threads = BERT_MAX_THREADS + 1;
    return bert_context_new(e->model, &cp, &c) != BERT_ERROR_INVALID_ARGUMENT;
}

static int huge_encode(void *arg) {
    struct env *e = arg;
    bert_context *c = new_context(e->model);
    bert_encode_params ep = bert_encode_default_params();
    ep.max_seq_length = UINT32_MAX; /* once: 16 GiB of padding allocated, abort */
    ep.padding = BERT_PADDING_FIXED;
    bert_encoding_view v = {.size = sizeof v};
    if (bert_encode(c, "a", 1, NULL, 0, &ep, &v) != BERT_ERROR_INVALID_ARGUMENT) return 1;
    ep.max_seq_length = 513; /* the tiny model's max_position_embeddings is 512 */
    if (bert_encode(c, "a", 1, NULL, 0, &ep, &v) != BERT_ERROR_INVALID_ARGUMENT) return 1;
    ep.max_seq_length = 1;
    if (bert_encode(c, "a", 1, NULL, 0, &ep, &v) != BERT_ERROR_INVALID_ARGUMENT) return 1;
    ep.max_seq_length = 512;
    return bert_encode(c, "a", 1, NULL, 0, &ep, &v) != BERT_OK || v.n_tokens != 512;
}

static int huge_trainer(void *arg) {
    struct env *e = arg;
    bert_trainer_params tp = bert_trainer_default_params();
    tp.n_labels = SIZE_MAX; /* once: a panic on "0", "1", ... names (BERT_ERROR_INTERNAL) */
    bert_trainer *t = (bert_trainer *)1;
    if (bert_trainer_new(e->tiny, &tp, &t) != BERT_ERROR_INVALID_ARGUMENT || t != NULL) return 1;
    if (!strstr(bert_last_error(), "BERT_MAX_LABELS")) return 1;
    tp.n_labels = 2;
    tp.n_threads = UINT32_MAX; /* once: accepted, then an abort when training started */
    if (bert_trainer_new(e->tiny, &tp, &t) != BERT_ERROR_INVALID_ARGUMENT) return 1;
    /* a batch larger than the data makes no step: an error, nothing allocated for it */
    tp.n_threads = 1;
    tp.train_batch_size = UINT32_MAX;
    tp.max_seq_length = 16;
    if (bert_trainer_new(e->tiny, &tp, &t) != BERT_OK) return 1;
    bert_status s = bert_trainer_add_example(t, BERT_SPLIT_TRAIN, "a", 1, NULL, 0, 1);
    if (s == BERT_OK) s = bert_trainer_train(t, 0, NULL, NULL);
    bert_trainer_free(t);
    return s != BERT_ERROR_INVALID_ARGUMENT;
}

/* Capacities only bound what is written: a huge one allocates nothing. */
static int huge_capacities(void *arg) {
    struct env *e = arg;
    uint32_t ids[8];
    size_t n = 0;
    if (bert_tokenize(bert_model_tokenizer(e->model), "a b", 3, ids, NULL, SIZE_MAX, &n) != BERT_OK || n != 2)
        return 1;
    float out[128], probs[2];
    const char *text = "a";
    if (bert_embed(new_context(e->model), &text, NULL, 1, BERT_POOLING_MEAN, true, out, SIZE_MAX, &n) != BERT_OK ||
        n != 128)
        return 1;
    return bert_classify(new_context(bert_classifier_model(e->clf)), e->clf, &text, NULL, NULL, NULL, 1, NULL, probs,
                         SIZE_MAX, &n) != BERT_OK ||
           n != 2;
}

static void caller_sizes(struct env *e) {
    CHECK(survives(huge_threads, e, 60, "n_threads UINT32_MAX"));
    CHECK(survives(huge_encode, e, 60, "bert_encode max_seq_length UINT32_MAX"));
    CHECK(survives(huge_trainer, e, 60, "trainer n_labels SIZE_MAX, n_threads UINT32_MAX"));
    CHECK(survives(huge_capacities, e, 60, "capacities SIZE_MAX"));
}

/* --- C booleans are bytes, checked: 0 or 1 (any other value in a Rust bool is UB) -------- */
static int32_t stop_with_256(void *user) {
    (void)user;
    return 256; /* nonzero: stop (a bool return read as its low byte would say "go on") */
}

static void booleans(struct env *e) {
    char vocab[4096];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", e->tiny);
    bert_tokenizer *t = (bert_tokenizer *)1;
    CHECK_STATUS(bert_tokenizer_new_from_file(vocab, 2, &t), BERT_ERROR_INVALID_ARGUMENT);
    CHECK(t == NULL && strstr(bert_last_error(), "do_lower_case") != NULL);
    CHECK_STATUS(bert_tokenizer_new_from_file(vocab, 1, &t), BERT_OK);
    bert_tokenizer_free(t);

    float out[128];
    const char *text = "a";
    CHECK_STATUS(bert_embed(e->ctx, &text, NULL, 1, BERT_POOLING_MEAN, 2, out, 128, NULL), BERT_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(bert_last_error(), "normalize") != NULL);
    CHECK_STATUS(bert_embed(e->ctx, &text, NULL, 1, BERT_POOLING_MEAN, 0, out, 128, NULL), BERT_OK);

    const char *labels[2] = {"neg", "pos"};
    bert_trainer_params tp = bert_trainer_default_params();
    tp.labels = labels;
    tp.n_labels = 2;
    tp.n_threads = 1;
    memset(&tp.gradient_checkpointing, 2, 1); /* what a binding writing a byte can do */
    bert_trainer *tr = (bert_trainer *)1;
    CHECK_STATUS(bert_trainer_new(e->tiny, &tp, &tr), BERT_ERROR_INVALID_ARGUMENT);
    CHECK(tr == NULL && strstr(bert_last_error(), "gradient_checkpointing") != NULL);
    tp.gradient_checkpointing = 1;
    CHECK_STATUS(bert_trainer_new(e->tiny, &tp, &tr), BERT_OK);

    char tsv[4096];
    snprintf(tsv, sizeof tsv, "%s/abi.tsv", e->work);
    FILE *f = fopen(tsv, "w");
    if (f) {
        fputs("sentence\tlabel\na fine film\tpos\n", f);
        fclose(f);
    }
    bert_tsv_params tsvp = bert_tsv_default_params();
    memset(&tsvp.skip_header, 0xff, 1);
    CHECK_STATUS(bert_trainer_add_tsv(tr, BERT_SPLIT_TRAIN, tsv, &tsvp), BERT_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(bert_last_error(), "skip_header") != NULL);
    tsvp.skip_header = 1;
    CHECK_STATUS(bert_trainer_add_tsv(tr, BERT_SPLIT_TRAIN, tsv, &tsvp), BERT_OK);
    CHECK(bert_trainer_num_examples(tr, BERT_SPLIT_TRAIN) == 1);
    bert_trainer_free(tr);

    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 1;
    cp.abort_callback = stop_with_256;
    bert_context *c = NULL;
    CHECK_STATUS(bert_context_new(e->model, &cp, &c), BERT_OK);
    CHECK_STATUS(bert_embed(c, &text, NULL, 1, BERT_POOLING_MEAN, 1, out, 128, NULL), BERT_ERROR_CANCELLED);
    bert_context_free(c);
}

/* --- result structs start with a size the caller sets; the library writes no further ----- */
static void results(struct env *e) {
    /* the caller's struct, then bytes that are not its own */
    struct {
        bert_encoding_view v;
        unsigned char beyond[32];
    } g;
    memset(&g, 0xAB, sizeof g);
    g.v.size = sizeof g.v;
    CHECK_STATUS(bert_encode(e->ctx, "a b", 3, NULL, 0, NULL, &g.v), BERT_OK);
    CHECK(g.v.size == sizeof g.v && g.v.n_tokens == 4 && g.v.ids[0] == 101);
    CHECK(g.beyond[0] == 0xAB && g.beyond[31] == 0xAB);
    /* unset (0) or a newer header's size: refused, nothing written */
    memset(&g, 0xAB, sizeof g);
    g.v.size = 0;
    CHECK_STATUS(bert_encode(e->ctx, "a", 1, NULL, 0, NULL, &g.v), BERT_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(bert_last_error(), "sizeof(bert_encoding_view)") != NULL);
    CHECK(g.v.n_tokens == (size_t)0xABABABABABABABABull);
    g.v.size = sizeof g.v + 8;
    CHECK_STATUS(bert_encode(e->ctx, "a", 1, NULL, 0, NULL, &g.v), BERT_ERROR_INVALID_ARGUMENT);
    /* a failed call zeroes the struct, all but its size */
    g.v.size = sizeof g.v;
    CHECK_STATUS(bert_encode(e->ctx, "caf\xc3", 4, NULL, 0, NULL, &g.v), BERT_ERROR_INVALID_UTF8);
    CHECK(g.v.size == sizeof g.v && g.v.n_tokens == 0 && g.v.ids == NULL && g.v.offsets == NULL);

    bert_hidden_states_view h = {.size = sizeof h};
    CHECK_STATUS(bert_hidden_states(e->ctx, "a", 1, &h), BERT_OK);
    CHECK(h.n_layers == 3 && h.n_tokens == 3 && h.hidden_size == 128 && h.data != NULL);
    h.size = 4;
    CHECK_STATUS(bert_hidden_states(e->ctx, "a", 1, &h), BERT_ERROR_INVALID_ARGUMENT);

    const char *labels[2] = {"neg", "pos"};
    bert_trainer_params tp = bert_trainer_default_params();
    tp.labels = labels;
    tp.n_labels = 2;
    tp.n_threads = 1;
    bert_trainer *t = NULL;
    CHECK_STATUS(bert_trainer_new(e->tiny, &tp, &t), BERT_OK);
    CHECK_STATUS(bert_trainer_add_example(t, BERT_SPLIT_EVAL, "a fine film", 11, NULL, 0, 1), BERT_OK);
    bert_eval_result r = {.size = sizeof r};
    CHECK_STATUS(bert_trainer_evaluate(t, &r), BERT_OK);
    CHECK(r.size == sizeof r && r.n_examples == 1 && r.loss > 0);
    r.size = 0;
    CHECK_STATUS(bert_trainer_evaluate(t, &r), BERT_ERROR_INVALID_ARGUMENT);
    bert_tsv_params tsvp = bert_tsv_default_params();
    tsvp.size = 1;
    CHECK_STATUS(bert_trainer_add_tsv(t, BERT_SPLIT_TRAIN, "x.tsv", &tsvp), BERT_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(bert_last_error(), "bert_tsv_params.size is 1") != NULL);
    bert_trainer_free(t);

    /* params of an unknown size are refused too (older sizes are accepted: test_bert.c,
     * test_trainer.c) */
    bert_encode_params ep = bert_encode_default_params();
    ep.size = sizeof ep + 8;
    CHECK_STATUS(bert_encode(e->ctx, "a", 1, NULL, 0, &ep, &g.v), BERT_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(bert_last_error(), "bert_encode_params.size") != NULL);
}

/* --- borrowed handles know their owner: freeing one is a reported no-op, not UB ---------- */
static int free_borrowed_tokenizer(void *arg) {
    struct env *e = arg;
    const bert_tokenizer *tok = bert_model_tokenizer(e->model);
    bert_tokenizer_free((bert_tokenizer *)tok); /* once: free() of memory inside the model */
    if (!strstr(bert_last_error(), "borrowed")) return 1;
    size_t n = 0;
    uint32_t ids[4];
    return bert_tokenize(tok, "a b", 3, ids, NULL, 4, &n) != BERT_OK || n != 2;
}

static int free_borrowed_model(void *arg) {
    struct env *e = arg;
    const bert_model *m = bert_classifier_model(e->clf);
    bert_model_free((bert_model *)m); /* once: free() of memory inside the classifier */
    if (!strstr(bert_last_error(), "bert_classifier")) return 1;
    bert_tokenizer_free((bert_tokenizer *)bert_model_tokenizer(m));
    if (!strstr(bert_last_error(), "bert_model")) return 1;
    float probs[2];
    const char *text = "a";
    return bert_classify(new_context(m), e->clf, &text, NULL, NULL, NULL, 1, NULL, probs, 2, NULL) != BERT_OK;
}

static void borrowed(struct env *e) {
    CHECK(survives(free_borrowed_tokenizer, e, 60, "bert_tokenizer_free(bert_model_tokenizer(model))"));
    CHECK(survives(free_borrowed_model, e, 60, "bert_model_free(bert_classifier_model(classifier))"));
    /* and in this process: nothing freed, the handles go on working */
    bert_model_free((bert_model *)bert_classifier_model(e->clf));
    CHECK(strstr(bert_last_error(), "nothing was freed") != NULL);
    CHECK(bert_model_hidden_size(bert_classifier_model(e->clf)) == 128);
    bert_tokenizer_free((bert_tokenizer *)bert_model_tokenizer(e->model));
    size_t n = 0;
    CHECK_STATUS(bert_tokenize(bert_model_tokenizer(e->model), "a", 1, NULL, NULL, 0, &n), BERT_ERROR_BUFFER_TOO_SMALL);
    CHECK(n == 1);
}

/* --- threads: started only where the header says, living as long as it says -------------- */
static int n_threads_now(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void thread_lifetimes(struct env *e) {
    const int base = n_threads_now();
    CHECK(base >= 1);
    float out[128];
    const char *text = "a fine film";
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 1;
    bert_context *c = NULL;
    CHECK_STATUS(bert_context_new(e->model, &cp, &c), BERT_OK);
    CHECK_STATUS(bert_embed(c, &text, NULL, 1, BERT_POOLING_MEAN, 1, out, 128, NULL), BERT_OK);
    CHECK(n_threads_now() == base); /* one thread: the caller's, no worker */
    bert_context_free(c);

    cp.n_threads = 3; /* two workers, from bert_context_new to bert_context_free */
    CHECK_STATUS(bert_context_new(e->model, &cp, &c), BERT_OK);
    CHECK(bert_context_n_threads(c) == 3);
    CHECK(n_threads_now() == base + 2);
    CHECK_STATUS(bert_embed(c, &text, NULL, 1, BERT_POOLING_MEAN, 1, out, 128, NULL), BERT_OK);
    CHECK(n_threads_now() == base + 2);
    bert_context_free(c);
    CHECK(n_threads_now() == base);

    /* a trainer's workers live from its first bert_trainer_train to bert_trainer_free; the
     * threads of adding examples and of evaluating are joined before those calls return */
    const char *labels[2] = {"neg", "pos"};
    bert_trainer_params tp = bert_trainer_default_params();
    tp.labels = labels;
    tp.n_labels = 2;
    tp.n_threads = 2;
    tp.train_batch_size = 2;
    tp.num_train_epochs = 1;
    tp.max_seq_length = 16;
    bert_trainer *t = NULL;
    CHECK_STATUS(bert_trainer_new(e->tiny, &tp, &t), BERT_OK);
    char tsv[4096];
    snprintf(tsv, sizeof tsv, "%s/abi4.tsv", e->work);
    FILE *f = fopen(tsv, "w");
    if (f) {
        fputs("s\tl\na fine film\tpos\na dull film\tneg\nfine\tpos\ndull\tneg\n", f);
        fclose(f);
    }
    CHECK_STATUS(bert_trainer_add_tsv(t, BERT_SPLIT_TRAIN, tsv, NULL), BERT_OK);
    CHECK_STATUS(bert_trainer_add_tsv(t, BERT_SPLIT_EVAL, tsv, NULL), BERT_OK);
    CHECK(n_threads_now() == base);
    CHECK_STATUS(bert_trainer_train(t, 1, NULL, NULL), BERT_OK);
    CHECK(n_threads_now() == base + 1);
    bert_eval_result r = {.size = sizeof r};
    CHECK_STATUS(bert_trainer_evaluate(t, &r), BERT_OK);
    CHECK(n_threads_now() == base + 1);
    bert_trainer_free(t);
    CHECK(n_threads_now() == base);
}

/* --- fork: a child cannot use or free a parent's context or trainer, only report it ------- */
struct fork_env {
    struct env *e;
    bert_context *ctx; /* 2 threads: one worker, absent in a child */
    bert_trainer *trainer; /* trained: its worker is absent in a child too */
    float expected[128];
};

static int in_child(void *arg) {
    struct fork_env *f = arg;
    float out[128];
    const char *text = "a fine film";
    if (bert_embed(f->ctx, &text, NULL, 1, BERT_POOLING_MEAN, 1, out, 128, NULL) != BERT_ERROR_INVALID_ARGUMENT ||
        !strstr(bert_last_error(), "fork"))
        return 1;
    bert_encoding_view v = {.size = sizeof v};
    if (bert_encode(f->ctx, "a", 1, NULL, 0, NULL, &v) != BERT_ERROR_INVALID_ARGUMENT) return 1;
    bert_context_free(f->ctx); /* once: waited forever to join a worker that is not here */
    if (!strstr(bert_last_error(), "fork")) return 1;
    if (bert_trainer_train(f->trainer, 1, NULL, NULL) != BERT_ERROR_INVALID_ARGUMENT) return 1;
    bert_eval_result r = {.size = sizeof r};
    if (bert_trainer_evaluate(f->trainer, &r) != BERT_ERROR_INVALID_ARGUMENT) return 1;
    bert_trainer_free(f->trainer);
    if (!strstr(bert_last_error(), "fork")) return 1;
    /* the parent's model is plain memory: a context made here runs it, same numbers */
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 2;
    bert_context *mine = NULL;
    if (bert_context_new(f->e->model, &cp, &mine) != BERT_OK) return 1;
    bert_status s = bert_embed(mine, &text, NULL, 1, BERT_POOLING_MEAN, 1, out, 128, NULL);
    bert_context_free(mine);
    return s != BERT_OK || memcmp(out, f->expected, sizeof out) != 0;
}

static void forks(struct env *e) {
    struct fork_env f;
    memset(&f, 0, sizeof f);
    f.e = e;
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 2;
    CHECK_STATUS(bert_context_new(e->model, &cp, &f.ctx), BERT_OK);
    const char *text = "a fine film";
    CHECK_STATUS(bert_embed(f.ctx, &text, NULL, 1, BERT_POOLING_MEAN, 1, f.expected, 128, NULL), BERT_OK);
    const char *labels[2] = {"neg", "pos"};
    bert_trainer_params tp = bert_trainer_default_params();
    tp.labels = labels;
    tp.n_labels = 2;
    tp.n_threads = 2;
    tp.train_batch_size = 1;
    tp.max_seq_length = 16;
    CHECK_STATUS(bert_trainer_new(e->tiny, &tp, &f.trainer), BERT_OK);
    CHECK_STATUS(bert_trainer_add_example(f.trainer, BERT_SPLIT_TRAIN, "fine", 4, NULL, 0, 1), BERT_OK);
    CHECK_STATUS(bert_trainer_add_example(f.trainer, BERT_SPLIT_EVAL, "fine", 4, NULL, 0, 1), BERT_OK);
    CHECK_STATUS(bert_trainer_train(f.trainer, 1, NULL, NULL), BERT_OK);
    CHECK(survives(in_child, &f, 60, "a parent's context and trainer in a child"));
    /* the parent's own are untouched */
    float out[128];
    CHECK_STATUS(bert_embed(f.ctx, &text, NULL, 1, BERT_POOLING_MEAN, 1, out, 128, NULL), BERT_OK);
    CHECK(memcmp(out, f.expected, sizeof out) == 0);
    CHECK_STATUS(bert_trainer_train(f.trainer, 1, NULL, NULL), BERT_OK);
    bert_trainer_free(f.trainer);
    bert_context_free(f.ctx);
}

/* --- bert_system_info names what the kernels use: AVX-512, VNNI ---------------------------- */
/* What this process's CPU offers, as cpuid says (under valgrind: valgrind's CPU, without
 * AVX-512). 1, 0, or -1 where the compiler cannot ask. */
static int cpu_has(const char *feature) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2") != 0;
    if (strcmp(feature, "avx512f") == 0) return __builtin_cpu_supports("avx512f") != 0;
    if (strcmp(feature, "avx512vnni") == 0) return __builtin_cpu_supports("avx512vnni") != 0;
    if (strcmp(feature, "avxvnni") == 0) return __builtin_cpu_supports("avxvnni") != 0;
#endif
    (void)feature;
    return -1;
}

static void system_info(void) {
    const char *info = bert_system_info();
    printf("bert_system_info: %s\n", info);
    CHECK(strncmp(info, "libbert ", 8) == 0 && strstr(info, "f32 kernels: ") && strstr(info, "int8 kernels: "));
    /* the kernels need Rust 1.89 for AVX-512 and VNNI, which CI's compiler is */
    CHECK(cpu_has("avx2") != 1 || strstr(info, " avx2"));
    CHECK(cpu_has("avx512f") != 1 || (strstr(info, " avx512f") && strstr(info, "f32 kernels: avx512")));
    CHECK(cpu_has("avx512f") != 0 || (!strstr(info, " avx512f") && !strstr(info, "kernels: avx512")));
    CHECK(cpu_has("avx512vnni") != 1 || (strstr(info, " avx512vnni") && strstr(info, "int8 kernels: vnni512")));
    CHECK(cpu_has("avxvnni") != 1 || strstr(info, " avxvnni"));
    CHECK(bert_backend_available(BERT_BACKEND_CPU) && !bert_backend_available(1) &&
          !bert_backend_available(BERT_BACKEND_VULKAN));
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

    system_info();
    null_texts(&e);
    caller_sizes(&e);
    booleans(&e);
    results(&e);
    borrowed(&e);
    thread_lifetimes(&e);
    forks(&e);

    bert_context_free(e.clf_ctx);
    bert_classifier_free(e.clf);
    bert_context_free(e.ctx);
    bert_model_free(e.model);
    printf("test_abi: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
