/* Question answering through the C ABI (bert_qa_*): one question answered with the tiny SQuAD
 * model exactly as the Rust API answers it (examples/squad_reference.rs wrote the model and
 * its answers), the answer text read from the caller's context by the byte offsets, a batch
 * answering each pair as alone, the size query, and the statuses of misuse. Run under
 * valgrind by scripts/test_bindings.sh.
 *
 *   test_qa SQUAD_BERT ANSWERS_TXT
 *
 * ANSWERS_TXT: "start_byte end_byte score text" per answer, best first (3 answers).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "check.h"

static const char *QUESTION = "Which NFL team won Super Bowl 50?";
static const char *CONTEXT =
    "Super Bowl 50 was an American football game to determine the champion of the National Football "
    "League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver Broncos "
    "defeated the National Football Conference (NFC) champion Carolina Panthers 24\xe2\x80\x93"
    "10 to earn their third Super Bowl title.";

struct reference {
    unsigned long long start, end;
    float score;
    char text[256];
};

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SQUAD_BERT ANSWERS_TXT\n", argv[0]);
        return 2;
    }
    struct reference want[3];
    int n_want = 0;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 2;
    }
    while (n_want < 3 && fscanf(f, "%llu %llu %f %255[^\n]", &want[n_want].start, &want[n_want].end,
                                &want[n_want].score, want[n_want].text) == 4)
        n_want++;
    fclose(f);
    CHECK(n_want == 3);

    bert_qa *qa = (bert_qa *)1;
    CHECK_STATUS(bert_qa_load_file("/nonexistent/squad.bert", NULL, &qa), BERT_ERROR_IO);
    CHECK(qa == NULL);
    CHECK_STATUS(bert_qa_load_file(argv[1], NULL, &qa), BERT_OK);
    if (!qa) return 1;
    bert_context_params cp = bert_context_default_params();
    cp.n_threads = 1; /* no spinning pool workers under valgrind */
    bert_context *ctx = NULL;
    CHECK_STATUS(bert_context_new(bert_qa_model(qa), &cp, &ctx), BERT_OK);
    if (!ctx) return 1;

    /* --- one question: the Rust API's answers ---------------------------------------------- */
    bert_qa_params p = bert_qa_default_params();
    CHECK(p.size == sizeof p && p.n_best == 20 && p.max_answer_length == 30 && p.batch_size == 8);
    p.n_best = 3;
    size_t n = 0;
    size_t qlen = strlen(QUESTION), clen = strlen(CONTEXT);
    CHECK_STATUS(bert_qa_answer(ctx, qa, QUESTION, qlen, CONTEXT, clen, &p, NULL, 0, &n),
                 BERT_ERROR_BUFFER_TOO_SMALL);
    CHECK(n == 3);
    bert_qa_span spans[3];
    CHECK_STATUS(bert_qa_answer(ctx, qa, QUESTION, qlen, CONTEXT, clen, &p, spans, n, &n), BERT_OK);
    CHECK(n == (size_t)n_want);
    for (size_t i = 0; i < n && i < (size_t)n_want; i++) {
        size_t len = (size_t)(spans[i].end_byte - spans[i].start_byte);
        CHECK(spans[i].start_byte == want[i].start && spans[i].end_byte == want[i].end);
        CHECK(len == strlen(want[i].text) && memcmp(CONTEXT + spans[i].start_byte, want[i].text, len) == 0);
        CHECK(fabsf(spans[i].score - want[i].score) <= 1e-6f);
    }
    if (n > 0)
        printf("C: answer \"%.*s\" (%g)\n", (int)(spans[0].end_byte - spans[0].start_byte),
               CONTEXT + spans[0].start_byte, spans[0].score);

    /* --- a batch (NUL-terminated texts): each pair as alone -------------------------------- */
    const char *questions[2] = {"Who?", QUESTION}, *contexts[2] = {" \t", CONTEXT};
    bert_qa_span batch[6];
    size_t counts[2] = {9, 9}, need = 0;
    CHECK_STATUS(bert_qa_answer_batch(ctx, qa, questions, NULL, contexts, NULL, 2, &p, batch, 5, counts, &need),
                 BERT_ERROR_BUFFER_TOO_SMALL);
    CHECK(need == 6);
    CHECK_STATUS(bert_qa_answer_batch(ctx, qa, questions, NULL, contexts, NULL, 2, &p, batch, 6, counts, &need),
                 BERT_OK);
    CHECK(counts[0] == 0 && counts[1] == n);
    for (size_t i = 0; i < n; i++) /* field by field: the struct has padding */
        CHECK(batch[3 + i].start_byte == spans[i].start_byte && batch[3 + i].end_byte == spans[i].end_byte &&
              batch[3 + i].score == spans[i].score);

    /* --- misuse: statuses, never a crash --------------------------------------------------- */
    CHECK_STATUS(bert_qa_answer(NULL, qa, QUESTION, qlen, CONTEXT, clen, &p, spans, 3, &n),
                 BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_qa_answer(ctx, NULL, QUESTION, qlen, CONTEXT, clen, &p, spans, 3, &n),
                 BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_qa_answer(ctx, qa, NULL, qlen, CONTEXT, clen, &p, spans, 3, &n), BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_qa_answer(ctx, qa, QUESTION, qlen, CONTEXT, clen, &p, spans, 3, NULL),
                 BERT_ERROR_NULL_ARGUMENT);
    CHECK_STATUS(bert_qa_answer(ctx, qa, QUESTION, qlen, "caf\xe9", 4, &p, spans, 3, &n), BERT_ERROR_INVALID_UTF8);
    bert_qa_params bad = p;
    bad.n_best = 0;
    CHECK_STATUS(bert_qa_answer(ctx, qa, QUESTION, qlen, CONTEXT, clen, &bad, spans, 3, &n),
                 BERT_ERROR_INVALID_ARGUMENT);
    bad = p;
    bad.size = 4;
    CHECK_STATUS(bert_qa_answer(ctx, qa, QUESTION, qlen, CONTEXT, clen, &bad, spans, 3, &n),
                 BERT_ERROR_INVALID_ARGUMENT);
    bad = p;
    bad.max_seq_length = 100000;
    CHECK_STATUS(bert_qa_answer(ctx, qa, QUESTION, qlen, CONTEXT, clen, &bad, spans, 3, &n),
                 BERT_ERROR_INVALID_ARGUMENT);
    bert_model_free((bert_model *)bert_qa_model(qa)); /* borrowed: frees nothing */
    CHECK(strstr(bert_last_error(), "bert_qa_model") != NULL);
    CHECK(bert_qa_model(NULL) == NULL);

    bert_context_free(ctx);
    bert_qa_free(qa);
    bert_qa_free(NULL);
    printf("test_qa: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
