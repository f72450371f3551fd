/* The checks of the C ABI tests (tests/c/test_*.c, each one translation unit): every check
 * is counted, and a failed one prints where it is and the library's last error, so that one
 * run lists every failure; main prints the counts and fails when `failures` is not 0. */
#ifndef BERT_TESTS_CHECK_H
#define BERT_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

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

/* `call` returns `status`; a failed call also leaves a message in bert_last_error(). */
#define CHECK_STATUS(call, status)                                                   \
    do {                                                                             \
        bert_status s_ = (call);                                                     \
        CHECK(s_ == (status));                                                       \
        if (s_ != (status)) fprintf(stderr, "  got %d (%s)\n", s_, bert_last_error()); \
        if ((status) != BERT_OK) CHECK(strlen(bert_last_error()) > 0);               \
    } while (0)

#endif
