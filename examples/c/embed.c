/* Embeds one sentence with libbert and prints the vector.
 *
 *   cc embed.c $(pkg-config --cflags --libs bert) -o embed
 *   ./embed ~/.cache/libbert/all-MiniLM-L6-v2 "The quick brown fox jumps over the lazy dog."
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT\n", argv[0]);
        return 2;
    }
    const char *text = argv[2];
    int rc = 1;
    float *out = NULL;
    bert_model *model = NULL;
    bert_context *ctx = NULL;

    bert_model_params mp = bert_model_default_params();
    if (bert_model_load_file(argv[1], &mp, &model) != BERT_OK) {
        fprintf(stderr, "libbert: %s\n", bert_last_error());
        goto done;
    }
    bert_context_params cp = bert_context_default_params();
    if (bert_context_new(model, &cp, &ctx) != BERT_OK) {
        fprintf(stderr, "libbert: %s\n", bert_last_error());
        goto done;
    }
    size_t hidden = bert_model_hidden_size(model);
    size_t len = strlen(text);
    out = malloc(hidden * sizeof *out);
    if (!out) goto done;
    if (bert_embed(ctx, &text, &len, 1, BERT_POOLING_MEAN, 1, out, hidden, NULL) != BERT_OK) {
        fprintf(stderr, "libbert: %s\n", bert_last_error());
        goto done;
    }
    for (size_t i = 0; i < hidden; i++) printf("%.8f\n", out[i]);
    rc = 0;

done: /* free in reverse order of creation */
    free(out);
    bert_context_free(ctx);
    bert_model_free(model);
    return rc;
}
