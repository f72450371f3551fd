/* Soak test of the C ABI (issue 21): THREADS threads, for SECONDS, each repeating the life of
 * an application on one model: load it, make a context (1 or 2 kernel threads, alternately),
 * tokenize, encode, embed a batch, free; load the fine-tuned classifier, make a context from
 * its model, classify a batch of pairs, free. Every result is compared bit for bit with the
 * first cycle's (results depend neither on the thread count nor on other threads). The run is
 * cut in 20 rounds; between two, every thread waits at a barrier with nothing of libbert
 * alive, and the main thread samples the resident set size there: a leak shows as growth of
 * these quiescent samples. Built with -fsanitize=address by scripts/soak.sh, so
 * LeakSanitizer checks at exit that every cycle freed what it allocated, in libbert too.
 *
 *   soak MODEL_DIR CLASSIFIER_BERT SECONDS THREADS
 *
 * CLASSIFIER_BERT is made first when it does not exist: MODEL_DIR fine-tuned for one update
 * on two sentences (bert_trainer), saved there.
 * Prints one line per round and a summary: cycles, errors, the quiescent RSS after the first
 * fifth of the run (warmed up: allocator caches and the sanitizer's quarantine filled) and
 * at the end. Exits 1 on any error or when the quiescent RSS grew by more than 10% (+16 MiB)
 * after the warm-up.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bert.h"

#define N_TEXTS 4
#define MAX_HIDDEN 1024

static const char *TEXTS[N_TEXTS] = {
    "The quick brown fox jumps over the lazy dog.",
    "A stable C ABI over a Rust BERT.",
    "Threads share one immutable model; each brings its own context.",
    "Hello, world!",
};
static const char *PAIRS_B[N_TEXTS] = {"A fox jumps.", NULL, "One model, many threads.", ""};

struct results {
    float embeddings[N_TEXTS * MAX_HIDDEN];
    float probabilities[N_TEXTS * 16];
    uint32_t ids[64];
    size_t n_ids, n_encoded;
};

#define ROUNDS 20

static const char *model_dir, *classifier_path;
static struct results expected;
static double start, seconds;
static pthread_barrier_t round_end, round_start;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

/* One cycle; 0 on success, else the number of the step that failed (and a message). */
static int cycle(int n_threads, struct results *r) {
    int failed = 0;
    bert_model *model = NULL;
    bert_context *ctx = NULL;
    bert_classifier *clf = NULL;
    bert_context *cctx = NULL;
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = (uint32_t)n_threads;
    cp.max_seq_length = 64;
    size_t n = 0;

    if (bert_model_load_file(model_dir, NULL, &model) != BERT_OK) { failed = 1; goto done; }
    if (bert_context_new(model, &cp, &ctx) != BERT_OK) { failed = 2; goto done; }
    if (bert_tokenize(bert_model_tokenizer(model), TEXTS[0], strlen(TEXTS[0]), r->ids, NULL, 64, &r->n_ids) != BERT_OK) {
        failed = 3;
        goto done;
    }
    bert_encoding_view v = {.size = sizeof v};
    if (bert_encode(ctx, TEXTS[0], strlen(TEXTS[0]), PAIRS_B[0], strlen(PAIRS_B[0]), NULL, &v) != BERT_OK ||
        v.ids[0] != v.ids[v.n_tokens - 1] - 1) { /* [CLS] ... [SEP]: 101 ... 102 */
        failed = 4;
        goto done;
    }
    r->n_encoded = v.n_tokens;
    size_t h = bert_model_hidden_size(model);
    if (h > MAX_HIDDEN ||
        bert_embed(ctx, TEXTS, NULL, N_TEXTS, BERT_POOLING_MEAN, 1, r->embeddings, N_TEXTS * MAX_HIDDEN, &n) != BERT_OK ||
        n != N_TEXTS * h) {
        failed = 5;
        goto done;
    }
    bert_context_free(ctx);
    ctx = NULL;
    bert_model_free(model);
    model = NULL;

    if (bert_classifier_load_file(classifier_path, NULL, &clf) != BERT_OK) { failed = 6; goto done; }
    if (bert_context_new(bert_classifier_model(clf), &cp, &cctx) != BERT_OK) { failed = 7; goto done; }
    if (bert_classify(cctx, clf, TEXTS, NULL, PAIRS_B, NULL, N_TEXTS, NULL, r->probabilities, N_TEXTS * 16, &n) !=
        BERT_OK) {
        failed = 8;
        goto done;
    }

done:
    if (failed) fprintf(stderr, "soak: step %d failed: %s\n", failed, bert_last_error());
    bert_context_free(cctx);
    bert_classifier_free(clf);
    bert_context_free(ctx);
    bert_model_free(model);
    return failed;
}

/* CLASSIFIER_BERT: the model fine-tuned for one update on two sentences. */
static int fine_tune(void) {
    const char *labels[2] = {"neg", "pos"};
    bert_trainer_params tp = bert_trainer_default_params();
    tp.labels = labels;
    tp.n_labels = 2;
    tp.train_batch_size = 2;
    tp.num_train_epochs = 1;
    tp.max_seq_length = 32;
    bert_trainer *t = NULL;
    bert_status s = bert_trainer_new(model_dir, &tp, &t);
    if (s == BERT_OK) s = bert_trainer_add_example(t, BERT_SPLIT_TRAIN, "a fine film", 11, NULL, 0, 1);
    if (s == BERT_OK) s = bert_trainer_add_example(t, BERT_SPLIT_TRAIN, "a dull film", 11, NULL, 0, 0);
    if (s == BERT_OK) s = bert_trainer_train(t, 0, NULL, NULL);
    if (s == BERT_OK) s = bert_trainer_save(t, classifier_path);
    if (s != BERT_OK) fprintf(stderr, "soak: fine-tuning: %s\n", bert_last_error());
    bert_trainer_free(t);
    return s != BERT_OK;
}

struct worker {
    int index;
    long cycles, errors;
};

static void *run(void *arg) {
    struct worker *w = arg;
    static struct results mine[64];
    struct results *r = &mine[w->index];
    for (int round = 1; round <= ROUNDS; round++) {
        double end = start + seconds * round / ROUNDS;
        while (now() < end) {
            memset(r, 0, sizeof *r);
            int failed = cycle(1 + (int)((w->index + w->cycles) % 2), r);
            w->cycles++;
            if (failed || memcmp(r, &expected, sizeof *r) != 0) {
                if (!failed) fprintf(stderr, "soak: thread %d cycle %ld: results differ\n", w->index, w->cycles);
                w->errors++;
            }
        }
        pthread_barrier_wait(&round_end); /* nothing alive: the main thread samples */
        pthread_barrier_wait(&round_start);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL_DIR CLASSIFIER_BERT SECONDS THREADS\n", argv[0]);
        return 2;
    }
    model_dir = argv[1];
    classifier_path = argv[2];
    seconds = atof(argv[3]);
    int n = atoi(argv[4]);
    if (seconds <= 0 || n < 1 || n > 64) {
        fprintf(stderr, "soak: SECONDS > 0 and 1 <= THREADS <= 64\n");
        return 2;
    }
    if (access(classifier_path, R_OK) != 0 && fine_tune() != 0) return 1;
    memset(&expected, 0, sizeof expected);
    if (cycle(1, &expected) != 0) return 1;

    struct worker *workers = calloc((size_t)n, sizeof *workers);
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    if (!workers || !tids) return 1;
    if (pthread_barrier_init(&round_end, NULL, (unsigned)n + 1) != 0 ||
        pthread_barrier_init(&round_start, NULL, (unsigned)n + 1) != 0)
        return 1;
    printf("soak: rss %ld KiB after the first cycle\n", rss_kib());
    start = now();
    for (int t = 0; t < n; t++) {
        workers[t].index = t;
        if (pthread_create(&tids[t], NULL, run, &workers[t]) != 0) return 1;
    }
    /* One quiescent sample per round; the one after a fifth of the run is the warmed-up start. */
    long rss_start = -1, rss_end = -1, rss_max = -1;
    for (int round = 1; round <= ROUNDS; round++) {
        pthread_barrier_wait(&round_end);
        long cycles = 0, errors = 0;
        for (int t = 0; t < n; t++) {
            cycles += workers[t].cycles;
            errors += workers[t].errors;
        }
        long rss = rss_kib();
        if (round == ROUNDS / 5) rss_start = rss;
        if (round >= ROUNDS / 5 && rss > rss_max) rss_max = rss;
        rss_end = rss;
        printf("soak: %6.0f s  cycles %ld  errors %ld  quiescent rss %ld KiB\n", now() - start, cycles, errors, rss);
        fflush(stdout);
        pthread_barrier_wait(&round_start);
    }
    long cycles = 0, errors = 0;
    for (int t = 0; t < n; t++) {
        pthread_join(tids[t], NULL);
        cycles += workers[t].cycles;
        errors += workers[t].errors;
    }
    long limit = rss_start + rss_start / 10 + 16 * 1024;
    int grew = rss_max > limit;
    printf("soak: %d threads x %.0f s: %ld cycles, %ld errors; quiescent RSS %ld KiB after warm-up, %ld KiB "
           "at the end, %ld KiB at most (limit %ld): %s\n",
           n, seconds, cycles, errors, rss_start, rss_end, rss_max, limit,
           errors == 0 && !grew ? "ok" : "FAILED");
    pthread_barrier_destroy(&round_end);
    pthread_barrier_destroy(&round_start);
    free(workers);
    free(tids);
    return errors == 0 && !grew ? 0 : 1;
}
