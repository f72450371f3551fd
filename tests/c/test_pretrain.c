/* Pre-training through the C ABI on Google's tiny fixture: bert_pretraining_data_create on
 * the sample text, then bert_pretrainer_* on the fixture's records, straight and cancelled by
 * the progress callback after step 2, freed, and resumed from the output directory. The
 * numbers are those `bert create-pretraining-data` and `bert pretrain` give for the same
 * flags (23 instances; eval_results.txt "loss = 13.923891"); the resumed run's losses and
 * evaluation are the straight run's, bit for bit. Run under valgrind by
 * scripts/test_bindings.sh.
 *
 *   test_pretrain SHARED_DIR WORK_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "check.h"

struct watch {
    float loss[8];
    size_t n;
    uint64_t stop_at;
};

static int32_t on_progress(const bert_pretrain_progress *p, void *user) {
    struct watch *w = user;
    if (w->n < 8) w->loss[w->n++] = p->loss;
    return p->step == w->stop_at;
}

static char config[4096], ckpt[4096], records[4096];

static bert_pretrainer *make(const char *out_dir) {
    bert_pretrainer_params p = bert_pretrainer_default_params();
    p.input_file = records;
    p.output_dir = out_dir;
    p.train_batch_size = 8;
    p.num_train_steps = 4;
    p.num_warmup_steps = 1;
    p.learning_rate = 1e-4f;
    p.n_threads = 1; /* deterministic, and no spinning pool workers under valgrind */
    p.save_checkpoints_steps = 0;
    p.eval_batch_size = 8;
    p.max_eval_steps = 3;
    bert_pretrainer *t = NULL;
    CHECK_STATUS(bert_pretrainer_new(config, ckpt, &p, &t), BERT_OK);
    return t;
}

static int contains(const char *path, const char *text) {
    char buf[1024] = {0};
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SHARED_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    const char *shared = argv[1], *work = argv[2];
    char text[4096], vocab[4096], data[4096], straight[2048], resumed[2048], results[4096];
    snprintf(text, sizeof text, "%s/data/pretrain/sample_text.txt", shared);
    snprintf(vocab, sizeof vocab, "%s/fixtures/tf_bert_tiny/vocab.txt", shared);
    snprintf(config, sizeof config, "%s/fixtures/tf_bert_tiny/bert_config.json", shared);
    snprintf(ckpt, sizeof ckpt, "%s/fixtures/tf_bert_tiny/bert_model.ckpt", shared);
    snprintf(records, sizeof records, "%s/fixtures/pretraining_data/sample_text_s128/tf_examples.tfrecord", shared);
    snprintf(data, sizeof data, "%s/c_pretrain.tfrecord", work);
    snprintf(straight, sizeof straight, "%s/c_pretrain_straight", work);
    snprintf(resumed, sizeof resumed, "%s/c_pretrain_resumed", work);
    /* A rerun starts afresh (a state left there would be resumed). */
    char state[4096];
    snprintf(state, sizeof state, "%s/training_state.safetensors", straight);
    remove(state);
    snprintf(state, sizeof state, "%s/training_state.safetensors", resumed);
    remove(state);

    /* --- the data ---------------------------------------------------------------------- */
    bert_pretraining_data_params dp = bert_pretraining_data_default_params();
    CHECK(dp.size == sizeof dp && dp.max_seq_length == 128 && dp.dupe_factor == 10 && dp.do_lower_case == 1);
    CHECK_STATUS(bert_pretraining_data_create(&dp, NULL, NULL, NULL), BERT_ERROR_NULL_ARGUMENT);
    dp.input_file = text;
    dp.output_file = data;
    dp.vocab_file = vocab;
    dp.dupe_factor = 2;
    dp.n_threads = 1;
    bert_pretraining_data_summary s = {.size = sizeof s};
    CHECK_STATUS(bert_pretraining_data_create(&dp, NULL, NULL, &s), BERT_OK);
    CHECK(s.n_input_files == 1 && s.n_documents == 3 && s.n_tokens == 1019 && s.n_instances == 23);

    /* --- straight ---------------------------------------------------------------------- */
    struct watch all = {.stop_at = 0};
    bert_pretrainer *t = make(straight);
    if (!t) return 1;
    CHECK(bert_pretrainer_num_examples(t) == 60 && bert_pretrainer_global_step(t) == 0);
    CHECK_STATUS(bert_pretrainer_train(t, 0, on_progress, &all), BERT_OK);
    CHECK(all.n == 4 && bert_pretrainer_global_step(t) == 4);
    bert_pretrain_eval_result r = {.size = sizeof r};
    CHECK_STATUS(bert_pretrainer_evaluate(t, &r), BERT_OK);
    CHECK(r.global_step == 4 && r.n_examples == 24);
    bert_pretrainer_free(t);
    snprintf(results, sizeof results, "%s/eval_results.txt", straight);
    CHECK(contains(results, "global_step = 4\nloss = 13.923891\n"));

    /* --- cancelled after step 2, freed, resumed ----------------------------------------- */
    struct watch first = {.stop_at = 2}, rest = {.stop_at = 0};
    t = make(resumed);
    if (!t) return 1;
    CHECK_STATUS(bert_pretrainer_train(t, 0, on_progress, &first), BERT_ERROR_CANCELLED);
    CHECK(first.n == 2 && bert_pretrainer_global_step(t) == 2);
    bert_pretrainer_free(t);
    t = make(resumed);
    if (!t) return 1;
    CHECK(bert_pretrainer_global_step(t) == 2);
    CHECK_STATUS(bert_pretrainer_train(t, 0, on_progress, &rest), BERT_OK);
    CHECK(rest.n == 2 && memcmp(first.loss, all.loss, 2 * sizeof(float)) == 0 &&
          memcmp(rest.loss, all.loss + 2, 2 * sizeof(float)) == 0);
    bert_pretrain_eval_result r2 = {.size = sizeof r2};
    CHECK_STATUS(bert_pretrainer_evaluate(t, &r2), BERT_OK);
    CHECK(r2.loss == r.loss && r2.masked_lm_accuracy == r.masked_lm_accuracy);
    CHECK_STATUS(bert_pretrainer_train(NULL, 0, NULL, NULL), BERT_ERROR_NULL_ARGUMENT);
    bert_pretrainer_free(t);
    bert_pretrainer_free(NULL);

    printf("test_pretrain: losses %g %g %g %g, eval loss %g; %d checks, %d failed\n", all.loss[0], all.loss[1],
           all.loss[2], all.loss[3], r.loss, checks, failures);
    return failures == 0 ? 0 : 1;
}
