/* The C ABI against the real all-MiniLM-L6-v2: happy path and every error path.
 * Run under valgrind by scripts/test_bindings.sh (no leaks, no invalid accesses).
 *
 *   test_bert MODEL_DIR REFERENCE_TXT MODEL_BERT_FILE
 *
 * REFERENCE_TXT is the Rust API's embedding (examples/embed_reference.rs), MODEL_BERT_FILE
 * the same model saved as a .bert file by that example.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "check.h"

static const char SENTENCE[] = "The quick brown fox jumps over the lazy dog.";

static float *read_reference(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 1024, len = 0;
    float *v = malloc(cap * sizeof *v);
    while (v && fscanf(f, "%f", &v[len]) == 1) {
        if (++len == cap) break;
    }
    fclose(f);
    *n = len;
    return v;
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (d > m) m = d;
    }
    return m;
}

/* Embeds SENTENCE with `model` and compares with the reference (max abs diff <= 1e-6). */
static void check_embedding(bert_model *model, const float *ref, size_t n_ref, const char *what) {
    bert_context *ctx = NULL;
    CHECK(bert_context_new(model, NULL, &ctx) == BERT_OK);
    if (!ctx) return;
    size_t h = bert_model_hidden_size(model), len = strlen(SENTENCE), n = 0;
    float *out = calloc(h, sizeof *out);
    const char *text = SENTENCE;
    CHECK(bert_embed(ctx, &text, &len, 1, BERT_POOLING_MEAN, true, out, h, &n) == BERT_OK);
    CHECK(n == h && h == n_ref);
    float d = max_abs_diff(out, ref, h);
    printf("%s: max abs diff vs Rust API %.3g\n", what, d);
    CHECK(d <= 1e-6f);
    free(out);
    bert_context_free(ctx);
}

/* Embeds SENTENCE with a quantized `model`: cosine to the f32 reference >= min_cos. */
static void check_embedding_cosine(bert_model *model, const float *ref, size_t n_ref, const char *what,
                                   double min_cos) {
    bert_context *ctx = NULL;
    CHECK(bert_context_new(model, NULL, &ctx) == BERT_OK);
    if (!ctx) return;
    size_t h = bert_model_hidden_size(model), len = strlen(SENTENCE), n = 0;
    float *out = calloc(h, sizeof *out);
    const char *text = SENTENCE;
    CHECK(bert_embed(ctx, &text, &len, 1, BERT_POOLING_MEAN, true, out, h, &n) == BERT_OK);
    CHECK(n == h && h == n_ref);
    double dot = 0;
    for (size_t i = 0; i < h && i < n_ref; i++) dot += (double)out[i] * ref[i];
    printf("%s: cosine to the f32 reference %.6f\n", what, dot);
    CHECK(dot >= min_cos);
    free(out);
    bert_context_free(ctx);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL_DIR REFERENCE_TXT MODEL_BERT_FILE\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *ref_path = argv[2], *bert_file = argv[3];
    size_t n_ref = 0;
    float *ref = read_reference(ref_path, &n_ref);
    CHECK(ref != NULL && n_ref == 384);

    /* --- plumbing ------------------------------------------------------------------- */
    CHECK(bert_version_number() == BERT_VERSION_NUMBER);
    CHECK(strcmp(bert_status_string(BERT_OK), "ok") == 0);
    CHECK(strcmp(bert_status_string(BERT_ERROR_BUFFER_TOO_SMALL), "buffer too small") == 0);
    CHECK(strcmp(bert_status_string(12345), "unknown status") == 0);
    CHECK(strncmp(bert_system_info(), "libbert ", 8) == 0);
    CHECK(bert_backend_available(BERT_BACKEND_CPU));
    CHECK(!bert_backend_available(1)); /* retired: int8 runs on the CPU back end */
    CHECK(!bert_backend_available(BERT_BACKEND_VULKAN));
    CHECK(!bert_backend_available(-1));
    bert_model_free(NULL);
    bert_context_free(NULL);
    bert_tokenizer_free(NULL);
    CHECK(bert_model_hidden_size(NULL) == 0);
    CHECK(bert_model_tokenizer(NULL) == NULL);

    /* --- load a directory, embed ------------------------------------------------------ */
    bert_model_params mp = bert_model_default_params();
    CHECK(mp.size == sizeof mp);
    bert_model *model = NULL;
    CHECK(bert_model_load_file(dir, &mp, &model) == BERT_OK);
    CHECK(strcmp(bert_last_error(), "") == 0);
    if (!model) {
        fprintf(stderr, "cannot load %s: %s\n", dir, bert_last_error());
        return 1;
    }
    CHECK(bert_model_hidden_size(model) == 384);
    CHECK(bert_model_num_layers(model) == 6);
    CHECK(bert_model_max_seq_length(model) == 512);
    check_embedding(model, ref, n_ref, "load_file(dir)");

    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 2;
    bert_context *ctx = NULL;
    CHECK(bert_context_new(model, &cp, &ctx) == BERT_OK);
    CHECK(bert_context_n_threads(ctx) == 2);
    const size_t H = 384;

    /* batch: the first text's embedding does not depend on the others; size query */
    const char *texts[3] = {SENTENCE, "Hello world", "A much longer second sentence about nothing at all."};
    size_t lens[3] = {strlen(texts[0]), strlen(texts[1]), strlen(texts[2])};
    size_t need = 0;
    CHECK(bert_embed(ctx, texts, lens, 3, BERT_POOLING_MEAN, true, NULL, 0, &need) == BERT_ERROR_BUFFER_TOO_SMALL);
    CHECK(need == 3 * H);
    float *batch = calloc(need, sizeof *batch);
    CHECK_STATUS(bert_embed(ctx, texts, lens, 3, BERT_POOLING_MEAN, true, batch, need - 1, &need), BERT_ERROR_BUFFER_TOO_SMALL);
    CHECK(need == 3 * H);
    CHECK(bert_embed(ctx, texts, lens, 3, BERT_POOLING_MEAN, true, batch, need, &need) == BERT_OK);
    CHECK(max_abs_diff(batch, ref, H) <= 1e-6f);
    /* lens NULL: NUL-terminated texts, same result */
    float *batch2 = calloc(3 * H, sizeof *batch2);
    CHECK(bert_embed(ctx, texts, NULL, 3, BERT_POOLING_MEAN, true, batch2, 3 * H, NULL) == BERT_OK);
    CHECK(memcmp(batch, batch2, 3 * H * sizeof(float)) == 0);
    /* other poolings run; normalized vectors have unit norm */
    for (bert_pooling p = BERT_POOLING_CLS; p <= BERT_POOLING_POOLER; p++) {
        bert_status s = bert_embed(ctx, texts, lens, 1, p, true, batch2, H, NULL);
        CHECK(s == BERT_OK || (p == BERT_POOLING_POOLER && s == BERT_ERROR_UNSUPPORTED));
        if (s == BERT_OK) {
            double norm = 0;
            for (size_t i = 0; i < H; i++) norm += (double)batch2[i] * batch2[i];
            CHECK(fabs(norm - 1.0) < 1e-5);
        }
    }
    CHECK(bert_embed(ctx, texts, lens, 0, BERT_POOLING_MEAN, true, NULL, 0, &need) == BERT_OK);
    CHECK(need == 0);

    /* --- tokenize: call twice ----------------------------------------------------------- */
    const bert_tokenizer *tok = bert_model_tokenizer(model);
    CHECK(tok != NULL);
    size_t n_tok = 0;
    CHECK(bert_tokenize(tok, SENTENCE, strlen(SENTENCE), NULL, NULL, 0, &n_tok) == BERT_ERROR_BUFFER_TOO_SMALL);
    CHECK(n_tok == 10); /* the quick brown fox jumps over the lazy dog . */
    uint32_t *ids = calloc(n_tok, sizeof *ids);
    uint64_t *offs = calloc(2 * n_tok, sizeof *offs);
    CHECK(bert_tokenize(tok, SENTENCE, strlen(SENTENCE), ids, offs, n_tok, &n_tok) == BERT_OK);
    CHECK(ids[0] == 1996); /* "the" in the uncased vocabulary */
    CHECK(offs[2 * 3] == 16 && offs[2 * 3 + 1] == 19); /* "fox" */
    CHECK(memcmp(SENTENCE + offs[2 * 3], "fox", 3) == 0);
    CHECK(bert_tokenize(tok, "", 0, NULL, NULL, 0, &n_tok) == BERT_OK && n_tok == 0);
    CHECK(bert_tokenize(tok, NULL, 0, NULL, NULL, 0, &n_tok) == BERT_OK && n_tok == 0);

    /* standalone tokenizer from a vocabulary file */
    char vocab_path[4096];
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", dir);
    bert_tokenizer *tok2 = (bert_tokenizer *)1;
    CHECK(bert_tokenizer_new_from_file(vocab_path, true, &tok2) == BERT_OK);
    uint32_t ids2[16];
    CHECK(bert_tokenize(tok2, SENTENCE, strlen(SENTENCE), ids2, NULL, 16, &n_tok) == BERT_OK);
    CHECK(n_tok == 10 && memcmp(ids, ids2, 10 * sizeof *ids) == 0);
    bert_tokenizer_free(tok2);

    /* --- encode ------------------------------------------------------------------------- */
    bert_encode_params ep = bert_encode_default_params();
    ep.max_seq_length = 16;
    ep.padding = BERT_PADDING_FIXED;
    bert_encoding_view ev = {.size = sizeof ev};
    CHECK(bert_encode(ctx, "Hello world", 11, "fox", 3, &ep, &ev) == BERT_OK);
    CHECK(ev.n_tokens == 16);
    CHECK(ev.ids[0] == 101 && ev.ids[3] == 102 && ev.ids[5] == 102 && ev.ids[6] == 0); /* [CLS] hello world [SEP] fox [SEP] [PAD] */
    CHECK(ev.type_ids[3] == 0 && ev.type_ids[4] == 1 && ev.type_ids[5] == 1 && ev.type_ids[6] == 0);
    CHECK(ev.attention_mask[5] == 1 && ev.attention_mask[6] == 0);
    CHECK(ev.special_tokens_mask[0] == 1 && ev.special_tokens_mask[1] == 0);
    CHECK(ev.offsets[2 * 2] == 6 && ev.offsets[2 * 2 + 1] == 11); /* "world" in A */
    CHECK(ev.offsets[2 * 4] == 0 && ev.offsets[2 * 4 + 1] == 3);  /* "fox" in B */
    CHECK(bert_encode(ctx, SENTENCE, strlen(SENTENCE), NULL, 0, NULL, &ev) == BERT_OK);
    CHECK(ev.n_tokens == 12);
    ep.max_seq_length = 4;
    ep.padding = BERT_PADDING_NONE;
    CHECK(bert_encode(ctx, SENTENCE, strlen(SENTENCE), NULL, 0, &ep, &ev) == BERT_OK);
    CHECK(ev.n_tokens == 4 && ev.ids[3] == 102);

    /* --- hidden states: the last layer mean-pooled and normalised is the embedding ------- */
    bert_hidden_states_view hv = {.size = sizeof hv};
    CHECK(bert_hidden_states(ctx, SENTENCE, strlen(SENTENCE), &hv) == BERT_OK);
    CHECK(hv.n_layers == 7 && hv.n_tokens == 12 && hv.hidden_size == H);
    {
        float mean[384] = {0};
        const float *last = hv.data + 6 * hv.n_tokens * H;
        for (size_t t = 0; t < hv.n_tokens; t++)
            for (size_t i = 0; i < H; i++) mean[i] += last[t * H + i];
        double norm = 0;
        for (size_t i = 0; i < H; i++) norm += (double)mean[i] * mean[i];
        for (size_t i = 0; i < H; i++) mean[i] = (float)(mean[i] / sqrt(norm));
        float d = max_abs_diff(mean, ref, H);
        printf("hidden_states: pooled last layer vs reference %.3g\n", d);
        CHECK(d <= 1e-5f);
    }

    /* --- other loaders: .bert file, .bert image, safetensors bytes ------------------------ */
    bert_model *m2 = NULL;
    /* params from an older header (before `dtype` was appended) are still accepted */
    bert_model_params old = bert_model_default_params();
    old.size = offsetof(bert_model_params, dtype);
    CHECK(bert_model_load_file(bert_file, &old, &m2) == BERT_OK);
    if (m2) check_embedding(m2, ref, n_ref, "load_file(.bert, old params)");
    bert_model_free(m2);

    /* int8 on load (issue 6: cosine >= 0.99 to f32) */
    bert_model_params q = bert_model_default_params();
    q.dtype = BERT_DTYPE_INT8;
    m2 = NULL;
    CHECK(bert_model_load_file(bert_file, &q, &m2) == BERT_OK);
    if (m2) check_embedding_cosine(m2, ref, n_ref, "load_file(.bert, int8)", 0.99);
    bert_model_free(m2);

    size_t image_len = 0;
    void *image = read_file(bert_file, &image_len);
    CHECK(image != NULL);
    m2 = NULL;
    CHECK(bert_model_load_buffer(image, image_len, NULL, &m2) == BERT_OK);
    free(image); /* the library copied what it needs */
    if (m2) check_embedding(m2, ref, n_ref, "load_buffer(.bert image)");
    bert_model_free(m2);

    char path[4096];
    size_t st_len = 0, cfg_len = 0, vocab_len = 0;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    void *st = read_file(path, &st_len);
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *cfg = read_file(path, &cfg_len);
    char *vocab = read_file(vocab_path, &vocab_len);
    CHECK(st && cfg && vocab);
    bert_model_params bp = bert_model_default_params();
    bp.config_json = cfg;
    bp.config_json_len = cfg_len;
    bp.vocab_text = vocab;
    bp.vocab_text_len = vocab_len;
    m2 = NULL;
    CHECK(bert_model_load_buffer(st, st_len, &bp, &m2) == BERT_OK);
    if (m2) check_embedding(m2, ref, n_ref, "load_buffer(safetensors)");
    bert_model_free(m2);

    /* --- error paths: status, message, NULLed outputs -------------------------------------- */
    bert_model *bad = (bert_model *)1;
    CHECK_STATUS(bert_model_load_file(NULL, NULL, &bad), BERT_ERROR_NULL_ARGUMENT);
    CHECK(bad == NULL);
    CHECK_STATUS(bert_model_load_file(dir, NULL, NULL), BERT_ERROR_NULL_ARGUMENT);
    bad = (bert_model *)1;
    CHECK_STATUS(bert_model_load_file("/nonexistent/model", NULL, &bad), BERT_ERROR_IO);
    CHECK(bad == NULL);
    bad = (bert_model *)1;
    CHECK_STATUS(bert_model_load_file(ref_path, NULL, &bad), BERT_ERROR_FORMAT); /* a text file */
    CHECK(bad == NULL);
    CHECK_STATUS(bert_model_load_file("/etc/hostname.safetensors", NULL, &bad), BERT_ERROR_IO);
    CHECK_STATUS(bert_model_load_file("\xff\xfe", NULL, &bad), BERT_ERROR_INVALID_UTF8);
    bert_model_params wrong = bert_model_default_params();
    wrong.size = 8;
    CHECK_STATUS(bert_model_load_file(dir, &wrong, &bad), BERT_ERROR_INVALID_ARGUMENT);
    wrong = bert_model_default_params();
    wrong.backend = BERT_BACKEND_VULKAN;
    CHECK_STATUS(bert_model_load_file(dir, &wrong, &bad), BERT_ERROR_UNSUPPORTED);
    wrong = bert_model_default_params();
    wrong.dtype = 9;
    CHECK_STATUS(bert_model_load_file(dir, &wrong, &bad), BERT_ERROR_INVALID_ARGUMENT);
    wrong = bert_model_default_params();
    wrong.do_lower_case = 7;
    CHECK_STATUS(bert_model_load_file(dir, &wrong, &bad), BERT_ERROR_INVALID_ARGUMENT);
    wrong = bert_model_default_params();
    wrong.vocab_path = "/nonexistent/vocab.txt";
    CHECK_STATUS(bert_model_load_file(dir, &wrong, &bad), BERT_ERROR_IO);
    CHECK(bad == NULL);

    CHECK_STATUS(bert_model_load_buffer(NULL, 10, NULL, &bad), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_model_load_buffer("garbage bytes, not a model", 26, NULL, &bad), BERT_ERROR_FORMAT);
    CHECK_STATUS(bert_model_load_buffer("", 0, NULL, &bad), BERT_ERROR_FORMAT);
    CHECK_STATUS(bert_model_load_buffer(st, st_len, NULL, &bad), BERT_ERROR_CONFIG); /* no config */
    /* A config that disagrees with the tensors (intermediate_size 1536 -> 1024). */
    char *cfg_bad = malloc(cfg_len);
    CHECK(cfg_bad != NULL);
    if (cfg_bad) {
        memcpy(cfg_bad, cfg, cfg_len);
        char *at = NULL;
        for (size_t i = 0; i + 25 <= cfg_len && !at; i++)
            if (memcmp(cfg_bad + i, "\"intermediate_size\": 1536", 25) == 0) at = cfg_bad + i + 21;
        CHECK(at != NULL);
        if (at) memcpy(at, "1024", 4);
        bp.config_json = cfg_bad;
        CHECK_STATUS(bert_model_load_buffer(st, st_len, &bp, &bad), BERT_ERROR_SHAPE);
        CHECK(bad == NULL);
        bp.config_json = cfg;
        free(cfg_bad);
    }
    bp.vocab_text = NULL;
    bp.vocab_text_len = 0;
    CHECK_STATUS(bert_model_load_buffer(st, st_len, &bp, &bad), BERT_ERROR_VOCAB);
    CHECK_STATUS(bert_model_load_buffer(st, st_len / 2, &bp, &bad), BERT_ERROR_FORMAT); /* truncated */
    CHECK(bad == NULL);
    free(st);
    free(cfg);
    free(vocab);

    bert_tokenizer *bt = (bert_tokenizer *)1;
    CHECK_STATUS(bert_tokenizer_new_from_file("/nonexistent/vocab.txt", true, &bt), BERT_ERROR_IO);
    CHECK(bt == NULL);
    CHECK_STATUS(bert_tokenizer_new_from_file(NULL, true, &bt), BERT_ERROR_NULL_ARGUMENT);

    bert_context *bc = (bert_context *)1;
    CHECK_STATUS(bert_context_new(NULL, NULL, &bc), BERT_ERROR_NULL_ARGUMENT);
    CHECK(bc == NULL);
    bert_context_params bcp = bert_context_default_params();
    bcp.max_seq_length = 100000;
    CHECK_STATUS(bert_context_new(model, &bcp, &bc), BERT_ERROR_INVALID_ARGUMENT);
    bcp = bert_context_default_params();
    bcp.size = 0;
    CHECK_STATUS(bert_context_new(model, &bcp, &bc), BERT_ERROR_INVALID_ARGUMENT);

    const char invalid[] = "caf\xc3"; /* truncated UTF-8 */
    CHECK_STATUS(bert_tokenize(tok, invalid, 4, ids, NULL, n_tok, &n_tok), BERT_ERROR_INVALID_UTF8);
    CHECK_STATUS(bert_tokenize(tok, NULL, 5, ids, NULL, 10, &n_tok), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_tokenize(NULL, "a", 1, ids, NULL, 10, &n_tok), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_tokenize(tok, "a", 1, NULL, NULL, 10, &n_tok), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_tokenize(tok, "a", 1, ids, NULL, 10, NULL), BERT_ERROR_NULL_ARGUMENT);

    const char *bad_texts[2] = {SENTENCE, invalid};
    size_t bad_lens[2] = {strlen(SENTENCE), 4};
    CHECK_STATUS(bert_embed(ctx, bad_texts, bad_lens, 2, BERT_POOLING_MEAN, true, batch, 3 * H, NULL), BERT_ERROR_INVALID_UTF8);
    bad_texts[1] = NULL;
    CHECK_STATUS(bert_embed(ctx, bad_texts, bad_lens, 2, BERT_POOLING_MEAN, true, batch, 3 * H, NULL), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_embed(ctx, NULL, NULL, 1, BERT_POOLING_MEAN, true, batch, 3 * H, NULL), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_embed(ctx, texts, lens, 1, BERT_POOLING_MEAN, true, NULL, 3 * H, NULL), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_embed(NULL, texts, lens, 1, BERT_POOLING_MEAN, true, batch, 3 * H, NULL), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_embed(ctx, texts, lens, 1, 42, true, batch, 3 * H, NULL), BERT_ERROR_INVALID_ARGUMENT);

    memset(&ev, 0xff, sizeof ev);
    ev.size = sizeof ev;
    CHECK_STATUS(bert_encode(ctx, invalid, 4, NULL, 0, NULL, &ev), BERT_ERROR_INVALID_UTF8);
    CHECK(ev.n_tokens == 0 && ev.ids == NULL && ev.offsets == NULL);
    CHECK_STATUS(bert_encode(ctx, "a", 1, invalid, 4, NULL, &ev), BERT_ERROR_INVALID_UTF8);
    ep = bert_encode_default_params();
    ep.padding = 9;
    CHECK_STATUS(bert_encode(ctx, "a", 1, NULL, 0, &ep, &ev), BERT_ERROR_INVALID_ARGUMENT);
    CHECK_STATUS(bert_encode(NULL, "a", 1, NULL, 0, NULL, &ev), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_encode(ctx, "a", 1, NULL, 0, NULL, NULL), BERT_ERROR_NULL_ARGUMENT);

    memset(&hv, 0xff, sizeof hv);
    hv.size = sizeof hv;
    CHECK_STATUS(bert_hidden_states(ctx, invalid, 4, &hv), BERT_ERROR_INVALID_UTF8);
    CHECK(hv.data == NULL && hv.n_layers == 0);
    CHECK_STATUS(bert_hidden_states(NULL, "a", 1, &hv), BERT_ERROR_NULL_ARGUMENT);

    /* a success clears the message */
    CHECK(bert_embed(ctx, texts, lens, 1, BERT_POOLING_MEAN, true, batch, H, NULL) == BERT_OK);
    CHECK(strcmp(bert_last_error(), "") == 0);

    free(ids);
    free(offs);
    free(batch);
    free(batch2);
    free(ref);
    bert_context_free(ctx);
    bert_model_free(model);
    printf("test_bert: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
