/* One model shared by 8 threads, each with its own context, all embedding at once: every
 * thread's result is bit-identical to the single-threaded one.
 *
 *   test_threads MODEL_DIR
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"

#define THREADS 8
#define ROUNDS 3
#define N_TEXTS 4

static const char *TEXTS[N_TEXTS] = {
    "The quick brown fox jumps over the lazy dog.",
    "A stable C ABI over a Rust BERT.",
    "Threads share one immutable model; each brings its own context.",
    "Hello, world!",
};

struct job {
    const bert_model *model;
    float *out;
    bert_status status;
};

static bert_status embed_all(const bert_model *model, float *out, size_t cap) {
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 1;
    bert_context *ctx = NULL;
    bert_status s = bert_context_new(model, &cp, &ctx);
    for (int r = 0; s == BERT_OK && r < ROUNDS; r++)
        s = bert_embed(ctx, TEXTS, NULL, N_TEXTS, BERT_POOLING_MEAN, true, out, cap, NULL);
    bert_context_free(ctx);
    return s;
}

static void *run(void *arg) {
    struct job *j = arg;
    j->status = embed_all(j->model, j->out, N_TEXTS * bert_model_hidden_size(j->model));
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    bert_model *model = NULL;
    if (bert_model_load_file(argv[1], NULL, &model) != BERT_OK) {
        fprintf(stderr, "libbert: %s\n", bert_last_error());
        return 1;
    }
    size_t n = N_TEXTS * bert_model_hidden_size(model);
    float *expected = calloc(n, sizeof(float));
    int failed = embed_all(model, expected, n) != BERT_OK;

    pthread_t tid[THREADS];
    struct job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (struct job){model, calloc(n, sizeof(float)), -1};
        if (pthread_create(&tid[t], NULL, run, &jobs[t]) != 0) failed = 1;
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tid[t], NULL);
        if (jobs[t].status != BERT_OK || memcmp(jobs[t].out, expected, n * sizeof(float)) != 0) {
            fprintf(stderr, "thread %d: status %d, result %s\n", t, jobs[t].status,
                    memcmp(jobs[t].out, expected, n * sizeof(float)) ? "differs" : "same");
            failed = 1;
        }
        free(jobs[t].out);
    }
    free(expected);
    bert_model_free(model);
    printf("test_threads: %d threads x %d rounds x %d texts: %s\n", THREADS, ROUNDS, N_TEXTS,
           failed ? "MISMATCH" : "identical to one thread");
    return failed;
}
