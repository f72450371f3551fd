/*
 * libbert: Google's BERT rebuilt in Rust, behind a stable C ABI.
 *
 *   #include "bert.h"
 *
 *   bert_model *model = NULL;
 *   bert_context *ctx = NULL;
 *   if (bert_model_load_file("all-MiniLM-L6-v2", NULL, &model) != BERT_OK ||
 *       bert_context_new(model, NULL, &ctx) != BERT_OK) {
 *       fprintf(stderr, "libbert: %s\n", bert_last_error());
 *       return 1;
 *   }
 *   const char *text = "The quick brown fox.";
 *   size_t len = strlen(text), hidden = bert_model_hidden_size(model);
 *   float *v = malloc(hidden * sizeof *v);
 *   if (v && bert_embed(ctx, &text, &len, 1, BERT_POOLING_MEAN, 1, v, hidden, NULL) == BERT_OK)
 *       printf("%zu floats, the first %f\n", hidden, v[0]);
 *   free(v);
 *   bert_context_free(ctx);
 *   bert_model_free(model);
 *
 * SECTIONS, in this order: handles; version and capabilities; errors; logging; model;
 * tokenizer; context (encode, embed, hidden states); classify; question answering; train;
 * pre-train.
 *
 * CONVENTIONS
 *   - Every fallible function returns a bert_status: BERT_OK (0) or a BERT_ERROR_* code.
 *     Codes are never renumbered. bert_status_string() gives static text for a code;
 *     bert_last_error() gives the calling thread's message for its last failed call (owned by
 *     the library, valid until that thread's next libbert call; "" after a success).
 *   - Outputs go through trailing out-parameters. On failure a handle out-parameter is set to
 *     NULL and a result struct is zeroed (all but its size).
 *   - Options come from bert_*_default_params(); the struct's first field is its size, which
 *     is checked. A NULL params pointer means the defaults. Result structs
 *     (bert_encoding_view, bert_hidden_states_view, bert_eval_result) also start with a size,
 *     which the caller sets before the call (bert_encoding_view v = {.size = sizeof v};); the
 *     library writes no further. Both kinds only grow at their end, and a struct of an older
 *     header's size is accepted, so a program keeps working with a newer library.
 *   - Booleans are uint8_t, 0 or 1; any other value is BERT_ERROR_INVALID_ARGUMENT.
 *   - Texts are (const char *utf8, size_t len) and are checked: invalid UTF-8 gives
 *     BERT_ERROR_INVALID_UTF8. A NULL pointer is accepted only with len 0 (for an optional
 *     text such as bert_encode's text_b it then means "none"). Paths are NUL-terminated
 *     UTF-8. Inputs are only read during the call.
 *   - Sizes from the caller are checked before anything is allocated for them (thread counts
 *     up to BERT_MAX_THREADS, sequence lengths up to the model's max_position_embeddings):
 *     a bad one is an error, never an abort. Memory grows with a batch (n_texts times its
 *     longest input): pass very many texts in several calls.
 *   - Caller buffers come with a capacity; when it is too small the call returns
 *     BERT_ERROR_BUFFER_TOO_SMALL and reports the needed size (call twice). Views (structs of
 *     const pointers) point into a context and stay valid until the next call on that context.
 *   - Library objects are freed with their own *_free(), never with free(); *_free(NULL) is a
 *     no-op. A NULL handle passed to any other function gives BERT_ERROR_NULL_ARGUMENT.
 *   - No panic or exception ever crosses this boundary (an internal bug gives
 *     BERT_ERROR_INTERNAL).
 *   - Versions: a function's signature never changes once 1.0 is out (a new one is added as
 *     name_v2, the old one deprecated a release before removal); the shared object is
 *     libbert.so.MAJOR. Check bert_version_number() == BERT_VERSION_NUMBER at run time.
 *
 * LIFETIMES
 *   - bert_model: immutable after loading; share one model between any number of threads.
 *     It must outlive every bert_context made from it and every use of the tokenizer
 *     borrowed from it by bert_model_tokenizer() (freed with the model: bert_tokenizer_free
 *     on it frees nothing and sets bert_last_error()).
 *   - bert_context: per-thread state (thread budget, scratch, output views). Use a context
 *     from one thread at a time (it may move between threads). One context per thread runs a
 *     shared model in parallel; results do not depend on the thread count.
 *   - bert_tokenizer: immutable and thread-safe; call it from any number of threads at once.
 *   - bert_classifier: immutable, like bert_model; its encoder is the borrowed model
 *     bert_classifier_model() returns (freed with the classifier), from which the contexts
 *     for bert_classify are made. It must outlive them.
 *   - bert_qa: immutable, like bert_classifier; the contexts for bert_qa_answer are made from
 *     its borrowed bert_qa_model(), freed with it. It must outlive them.
 *   - bert_trainer: one thread at a time (it may move between threads). Its progress
 *     callback runs on the thread of bert_trainer_train and must not call into that trainer.
 *   - bert_pretrainer: as bert_trainer (bert_pretrainer_train's callback likewise).
 *   - Callbacks (abort, progress, log) are plain function pointers with a void *user_data
 *     the library passes back untouched; they run on the thread of the libbert call that
 *     invokes them.
 *   - bert_last_error() is per thread; the log callback set by bert_log_set() is the one
 *     process-wide setting (silent until set); nothing else is global. The library never
 *     reads environment variables.
 *
 * THREADS THE LIBRARY STARTS
 *   - bert_context_new with n_threads = t > 1 (0: one per core) starts t - 1 worker threads
 *     ("bert-pool-N"); with t = 1 it starts none. The workers run the context's kernels
 *     during calls on it; between calls they spin for a few tens of microseconds, then
 *     sleep on a condition variable (an idle context costs no CPU). bert_context_free joins
 *     them.
 *   - A bert_trainer with n_threads = t > 1 starts t - 1 such workers at its first
 *     bert_trainer_train, bert_trainer_save_checkpoint or bert_trainer_resume;
 *     bert_trainer_free joins them.
 *   - A bert_pretrainer with n_threads = t > 1 starts t - 1 such workers when it is made
 *     (bert_pretrainer_new, or bert_pretrainer_resume, which replaces them) or at the
 *     latest when it first runs; bert_pretrainer_free joins them.
 *   - bert_trainer_add_tsv, bert_trainer_evaluate, the adding of examples and
 *     bert_pretraining_data_create may run on several threads, joined before the call
 *     returns.
 *   No other call starts a thread, and none is left behind by a call except those above.
 *
 * FORK
 *   fork() copies only the calling thread. In the child, a context or trainer made before the
 *   fork has no workers: every call on it returns BERT_ERROR_INVALID_ARGUMENT, and its
 *   *_free frees nothing (joining workers that are not there is undefined; the memory goes
 *   with the child) and sets bert_last_error(). Models, tokenizers and classifiers are
 *   immutable memory: the child may use them and make its own contexts from them. Fork while
 *   no other thread is inside a libbert call (a lock held at that moment stays held in the
 *   child), or exec right after.
 */

#ifndef BERT_H
#define BERT_H

/* Generated by cbindgen from ffi/src (ffi/build.rs). Do not edit by hand. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Version of this header; compare with bert_version_number() at run time. */
#define BERT_VERSION_MAJOR 0
#define BERT_VERSION_MINOR 1
#define BERT_VERSION_PATCH 0
#define BERT_VERSION_NUMBER 100

#ifdef __cplusplus
extern "C" {
#endif


/* ==== Handles (opaque; see LIFETIMES AND THREADS) ===================================== */

// A fine-tuned classifier: an encoder with its tokenizer (a `bert_model`, see
// `bert_classifier_model`), a classification head and its labels. Immutable: share it
// between threads, each with its own `bert_context` made from `bert_classifier_model()`.
typedef struct bert_classifier bert_classifier;

// Per-thread state for running a model: thread budget, scratch and output buffers. Use one
// context from one thread at a time (it may move between threads); create one per thread to
// run a shared model in parallel. The model must outlive the context.
typedef struct bert_context bert_context;

// A loaded model and its tokenizer. Immutable: share one between any number of threads (each
// with its own `bert_context`). Free it with `bert_model_free` after every context made from
// it, and every tokenizer borrowed from it with `bert_model_tokenizer`, is no longer used.
typedef struct bert_model bert_model;

// A pre-training run: model with its heads, optimizer state, data order, and the examples.
// Use from one thread at a time (it may move between threads).
typedef struct bert_pretrainer bert_pretrainer;

// A SQuAD-fine-tuned model: an encoder with its tokenizer (a `bert_model`, see
// `bert_qa_model`) and the span head (`cls/squad/*`). Immutable: share it between threads,
// each with its own `bert_context` made from `bert_qa_model()`.
typedef struct bert_qa bert_qa;

// A WordPiece tokenizer (Google's `FullTokenizer`). Immutable and thread-safe: any number of
// threads may call `bert_tokenize` on one tokenizer at the same time.
typedef struct bert_tokenizer bert_tokenizer;

// A fine-tuning run: model, hyper-parameters, labels, training and evaluation examples,
// optimizer state. Use from one thread at a time (it may move between threads).
typedef struct bert_trainer bert_trainer;


/* ==== Version and capabilities ======================================================== */

// Compute back ends. Values are never renumbered (1 is retired: int8 runs on the CPU back
// end, see `bert_model_params.dtype`).
typedef int32_t bert_backend;

// The CPU back end (always available): f32, f16 and int8 weights.
#define BERT_BACKEND_CPU 0

// The Vulkan compute back end (a build with the cargo feature `vulkan`): the encoder's
// forward pass on a Vulkan device (`bert_model_load_file`, `bert_embed`,
// `bert_hidden_states`); classifiers and training stay on the CPU.
#define BERT_BACKEND_VULKAN 2

// Version of the library as `major * 10000 + minor * 100 + patch`.
//
// Callers compare it with `BERT_VERSION_NUMBER` from the header they compiled against.
uint32_t bert_version_number(void);

// Whether `backend` can be used by this build on this machine (for `BERT_BACKEND_VULKAN`:
// a Vulkan device opens; asked once, then remembered). Unknown values: false.
bool bert_backend_available(bert_backend backend);

// One line describing the build and machine: version, back ends, cores, the CPU's vector
// extensions libbert can use and the kernels it chose, e.g. "libbert 0.1.0; backends: cpu;
// cores: 8; simd: sse4.2 avx avx2 fma avx512f avx512vnni avxvnni; f32 kernels:
// avx512; int8 kernels: vnni512". Static, never NULL, safe to call from any thread.
const char *bert_system_info(void);


/* ==== Errors ========================================================================== */

// Result of every fallible function: `BERT_OK` (0) or one of the `BERT_ERROR_*` codes.
// Values are never renumbered; new ones are appended. Codes 1 to 8, 11 and 13 to 16 are the
// Rust crate's `bert::Error::code()`; 9, 10 and 12 exist only at the C boundary.
typedef int32_t bert_status;

// Success.
#define BERT_OK 0

// A file could not be opened or read (the message names it).
#define BERT_ERROR_IO 1

// A text, path or text file is not valid UTF-8 (Google's tokenizer drops such bytes; we refuse).
#define BERT_ERROR_INVALID_UTF8 2

// A vocabulary is missing, empty, has duplicates or lacks a required token.
#define BERT_ERROR_VOCAB 3

// A model configuration is missing a field or is inconsistent.
#define BERT_ERROR_CONFIG 4

// A file or buffer is not a model, or is truncated, corrupt or lies in its header.
#define BERT_ERROR_FORMAT 5

// A tensor is missing or has the wrong shape for the configuration.
#define BERT_ERROR_SHAPE 6

// An argument cannot be honoured (bad enum value, params size, sequence too long, ...).
#define BERT_ERROR_INVALID_ARGUMENT 7

// The feature exists in the API but is not available in this build or on this machine.
#define BERT_ERROR_UNSUPPORTED 8

// A required pointer (handle, out-parameter, or buffer with a non-zero length) is NULL.
#define BERT_ERROR_NULL_ARGUMENT 9

// A caller buffer is too small; the size it needs was written to the size out-parameter.
#define BERT_ERROR_BUFFER_TOO_SMALL 10

// The caller asked to stop: the context's abort callback (checked before each encoder
// layer; the call's outputs are not written) or `bert_trainer_train`'s progress callback
// (after a complete update, which is kept: training can go on with another call).
#define BERT_ERROR_CANCELLED 11

// A bug in libbert (an internal panic was caught at the boundary). Please report it.
#define BERT_ERROR_INTERNAL 12

// A label id is not below the number of labels, a label name is not in the label list, or
// no label list was given.
#define BERT_ERROR_LABEL 13

// Training diverged: the loss or the gradient norm is not finite (learning rate too high?).
// The trainer is unusable afterwards (only `bert_trainer_free`).
#define BERT_ERROR_DIVERGED 14

// The model is not fine-tuned for the task: a classifier without a label list or a
// classification head, or a question answerer without the span head (`cls/squad/*`);
// `bert_last_error()` names what is missing. (The name stays for compatibility.)
#define BERT_ERROR_NOT_A_CLASSIFIER 15

// There is nothing to work on: no training examples to train on, or no evaluation examples
// to evaluate.
#define BERT_ERROR_EMPTY_DATA 16

// Static English text for a status (for unknown values: "unknown status"). Never NULL.
const char *bert_status_string(bert_status status);

// The calling thread's message for the last failed call ("" after a successful one). Owned by
// the library, valid until this thread's next call into libbert. Never NULL.
const char *bert_last_error(void);


/* ==== Logging ========================================================================= */

// Severity of a log line. Values never renumbered.
typedef int32_t bert_log_level;

// Receives one log line: `message` is NUL-terminated UTF-8 without a trailing newline,
// valid only during the call. Called on the thread of the libbert call that logs, possibly
// from several threads at once; it must not call back into libbert.
typedef void (*bert_log_callback)(bert_log_level level, const char *message, void *user_data);

// Details useful when debugging libbert itself.
#define BERT_LOG_DEBUG 0

// What the library decided: model loaded, back end chosen, training started.
#define BERT_LOG_INFO 1

// Something the caller may want to change.
#define BERT_LOG_WARN 2

// A call failed (the same message `bert_last_error()` returns).
#define BERT_LOG_ERROR 3

// Sends the library's log lines to `callback` with `user_data` (NULL: silence, the
// default). Process-wide; may be called at any time from any thread. `user_data` must stay
// valid until the callback is replaced.
void bert_log_set(bert_log_callback callback, void *user_data);


/* ==== Model =========================================================================== */

// Take `do_lower_case` from the model: the `.bert` header, else `tokenizer_config.json`
// beside the model, else true (Google's default).
#define BERT_LOWER_CASE_AUTO -1

// Weight storage a model is loaded with (`bert_model_params.dtype`). Values are never
// renumbered.
typedef int32_t bert_dtype;

// Options of `bert_model_load_file`, `bert_model_load_buffer` and
// `bert_classifier_load_file`. Get them from `bert_model_default_params()`, then change
// fields. Passing NULL means the defaults.
// Fields are only ever appended: a struct from an older header (a smaller `size`) is
// accepted and its missing fields take their defaults.
typedef struct bert_model_params {
  // `sizeof(bert_model_params)`, set by `bert_model_default_params()`; checked.
  size_t size;
  // `BERT_BACKEND_CPU` (default), or `BERT_BACKEND_VULKAN` (`bert_model_load_file`,
  // `bert_classifier_load_file` and `bert_qa_load_file`; not `bert_model_load_buffer`):
  // `BERT_ERROR_UNSUPPORTED` saying why where the build or the machine has no Vulkan
  // device (see `bert_backend_available`).
  bert_backend backend;
  // `BERT_LOWER_CASE_AUTO` (default), 0 (cased) or 1 (uncased: lower-case, strip accents).
  int32_t do_lower_case;
  // NUL-terminated path of `vocab.txt`; NULL (default): the vocabulary stored in a `.bert`
  // file, else `vocab.txt` beside the model. Only read during the call.
  const char *vocab_path;
  // For `bert_model_load_buffer` of safetensors bytes: the Hugging Face `config.json` text
  // (`config_json_len` bytes, UTF-8). Ignored for `.bert` images and by `load_file`.
  const char *config_json;
  size_t config_json_len;
  // For `bert_model_load_buffer` of safetensors bytes: the `vocab.txt` text
  // (`vocab_text_len` bytes, UTF-8). Ignored for `.bert` images and by `load_file`.
  const char *vocab_text;
  size_t vocab_text_len;
  // Weight storage: `BERT_DTYPE_AUTO` (default: as the file stores it), `BERT_DTYPE_F32`,
  // `BERT_DTYPE_F16` or `BERT_DTYPE_INT8` (converted while loading).
  bert_dtype dtype;
  // 1: verify the checksums of a `.bert` file's f16 and int8 blocks while loading
  // (`BERT_ERROR_FORMAT` naming the tensor if one does not match); it reads the whole
  // file. 0 (default): those blocks stay untouched in the memory map until a layer uses
  // them (f32 tensors and the header are always verified).
  uint8_t verify_checksums;
} bert_model_params;

// As the model file stores it: f32 checkpoints stay f32, an f16/int8 `.bert` file (written
// by `bert convert --dtype`) stays f16/int8.
#define BERT_DTYPE_AUTO 0

// f32 weights (the reference). An int8 `.bert` file cannot be loaded as f32
// (`BERT_ERROR_UNSUPPORTED`): load the f32 original.
#define BERT_DTYPE_F32 1

// f16 encoder kernels and word embeddings (converted on load from an f32 model).
#define BERT_DTYPE_F16 2

// int8 encoder kernels (per-output-channel scales, activations quantized per row) and int8
// word embeddings (per-row scales); converted on load from an f32 model. LayerNorm, softmax,
// GELU and the pooler stay f32.
#define BERT_DTYPE_INT8 3

// Default model params: CPU back end, automatic `do_lower_case`, vocabulary beside the model.
bert_model_params bert_model_default_params(void);

// Loads a model from `path` (NUL-terminated UTF-8): a directory (Hugging Face `config.json` +
// `model.safetensors`, or Google `bert_config.json` + `bert_model.ckpt.*`), a `.safetensors`
// file or TF checkpoint (config read from beside it), or a libbert `.bert` file. The
// vocabulary comes from the `.bert` file, else `vocab.txt` beside the model (see params).
// `params` may be NULL (defaults). On success `*out_model` is the new model; on failure it is
// set to NULL and the status says why (`BERT_ERROR_IO`, `BERT_ERROR_FORMAT` for a file that is
// not a model, `BERT_ERROR_CONFIG`, `BERT_ERROR_SHAPE`, `BERT_ERROR_VOCAB`, ...).
bert_status bert_model_load_file(const char *path,
                                 const bert_model_params *params,
                                 bert_model **out_model);

// Loads a model from `len` bytes at `data`: a `.bert` image (config, vocabulary and
// `do_lower_case` inside) or the bytes of a `model.safetensors`, which need
// `params->config_json` and a vocabulary (`params->vocab_text` or `params->vocab_path`).
// The bytes are copied: the caller may free them when the call returns. On failure
// `*out_model` is NULL (`BERT_ERROR_FORMAT` for bytes that are not a model).
bert_status bert_model_load_buffer(const void *data,
                                   size_t len,
                                   const bert_model_params *params,
                                   bert_model **out_model);

// Frees a model. NULL is a no-op. No context made from it may be used afterwards. The model
// borrowed from a classifier (`bert_classifier_model`) or a question answerer
// (`bert_qa_model`) is freed with it: passing it here frees nothing and sets
// `bert_last_error()`.
void bert_model_free(bert_model *model);

// Hidden size H of the model (the length of one embedding); 0 if `model` is NULL.
size_t bert_model_hidden_size(const bert_model *model);

// Number of encoder layers L; 0 if `model` is NULL.
size_t bert_model_num_layers(const bert_model *model);

// Longest input the model accepts, `[CLS]` and `[SEP]` included
// (`max_position_embeddings`); 0 if `model` is NULL.
size_t bert_model_max_seq_length(const bert_model *model);

// The model's tokenizer, borrowed: valid as long as the model, freed with it
// (`bert_tokenizer_free` on it frees nothing and sets `bert_last_error()`). NULL if `model`
// is NULL.
const bert_tokenizer *bert_model_tokenizer(const bert_model *model);


/* ==== Tokenizer ======================================================================= */

// Creates a tokenizer from a `vocab.txt` (one token per line; NUL-terminated UTF-8 path).
// `do_lower_case`: 1 to lower-case and strip accents (uncased models), 0 not to (another
// value is `BERT_ERROR_INVALID_ARGUMENT`). On failure `*out_tokenizer` is NULL
// (`BERT_ERROR_IO`, `BERT_ERROR_VOCAB`, `BERT_ERROR_INVALID_UTF8`).
bert_status bert_tokenizer_new_from_file(const char *vocab_path,
                                         uint8_t do_lower_case,
                                         bert_tokenizer **out_tokenizer);

// Frees a tokenizer made by `bert_tokenizer_new_from_file`. NULL is a no-op. The tokenizer
// borrowed from a model (`bert_model_tokenizer`) is freed with the model: passing it here
// frees nothing and sets `bert_last_error()`.
void bert_tokenizer_free(bert_tokenizer *tokenizer);

// Splits `len` bytes of UTF-8 `text` into WordPiece tokens (no `[CLS]`/`[SEP]`, no
// truncation). Writes up to `capacity` ids to `ids` and, unless `offsets` is NULL, the byte
// span of each token in `text` as `offsets[2*i]` (start) and `offsets[2*i+1]` (end,
// exclusive) — `offsets` holds `2 * capacity` values. `*n_tokens` receives the number of
// tokens. If it exceeds `capacity` nothing is written and `BERT_ERROR_BUFFER_TOO_SMALL` is
// returned: call again with a buffer of `*n_tokens` (`ids` NULL with `capacity` 0 is a pure
// size query). Invalid UTF-8: `BERT_ERROR_INVALID_UTF8`. Thread-safe.
bert_status bert_tokenize(const bert_tokenizer *tokenizer,
                          const char *text,
                          size_t len,
                          uint32_t *ids,
                          uint64_t *offsets,
                          size_t capacity,
                          size_t *n_tokens);


/* ==== Context: encode, embed, hidden states =========================================== */

// Most threads a context or trainer may be given (`n_threads`); more is
// `BERT_ERROR_INVALID_ARGUMENT`.
#define BERT_MAX_THREADS 1024

// See `bert_context_params.abort_callback`: return nonzero to stop, 0 to go on.
typedef int32_t (*bert_abort_callback)(void *user_data);

// Options of `bert_context_new`. Get them from `bert_context_default_params()`. NULL means
// the defaults.
typedef struct bert_context_params {
  // `sizeof(bert_context_params)`, set by `bert_context_default_params()`; checked.
  size_t size;
  // Threads the context's kernels use, the calling thread included; 0 (default): all cores;
  // at most `BERT_MAX_THREADS`.
  uint32_t n_threads;
  // Inputs are truncated to this many positions (`[CLS]`/`[SEP]` included) by
  // `bert_embed` and `bert_hidden_states`, and by `bert_encode` unless its params say
  // otherwise; 0 (default): the model's `max_position_embeddings`.
  uint32_t max_seq_length;
  // Asked before each encoder layer of every call that runs the model (`bert_embed`,
  // `bert_hidden_states`, `bert_classify`) whether to stop; returning nonzero ends the call
  // with `BERT_ERROR_CANCELLED` and writes no output. Called on the thread of the call.
  // NULL (default): never stop.
  bert_abort_callback abort_callback;
  // Passed to `abort_callback`; must stay valid as long as the context.
  void *abort_user_data;
} bert_context_params;

// Padding of `bert_encode`. Values never renumbered.
typedef int32_t bert_padding;

// Options of `bert_encode`. Get them from `bert_encode_default_params()`; NULL means the
// defaults. Fields are only ever appended: a struct from an older header is accepted.
typedef struct bert_encode_params {
  // `sizeof(bert_encode_params)`, set by `bert_encode_default_params()`; checked.
  size_t size;
  // Truncate to this many positions (pairs as Google's `_truncate_seq_pair`), 2 up to the
  // model's `max_position_embeddings`; 0 (default): the context's `max_seq_length`.
  uint32_t max_seq_length;
  // `BERT_PADDING_NONE` (default) or `BERT_PADDING_FIXED`.
  bert_padding padding;
} bert_encode_params;

// The result of `bert_encode`: read-only arrays of `n_tokens` values each, owned by the
// context and valid until the next call on that context or its `bert_context_free`. Set
// `size` before the call: `bert_encoding_view v = {.size = sizeof v};`.
typedef struct bert_encoding_view {
  // `sizeof(bert_encoding_view)`, set by the caller; the library writes no further.
  size_t size;
  // Number of positions, `[CLS]`, `[SEP]` and padding included.
  size_t n_tokens;
  // Token ids (`input_ids`).
  const uint32_t *ids;
  // Segment ids: 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`, 0 for padding.
  const uint32_t *type_ids;
  // 1 for real positions, 0 for padding (`input_mask`).
  const uint32_t *attention_mask;
  // 1 for `[CLS]`, `[SEP]`, `[PAD]`; 0 for tokens of the texts.
  const uint32_t *special_tokens_mask;
  // `2 * n_tokens` byte offsets: start and end (exclusive) of each token in its own text
  // (A or B, see `type_ids`); 0, 0 for special tokens.
  const uint64_t *offsets;
} bert_encoding_view;

// How `bert_embed` reduces the last layer to one vector per text. Values never renumbered.
typedef int32_t bert_pooling;

// The result of `bert_hidden_states`: `data` holds `n_layers * n_tokens * hidden_size`
// floats, `[n_layers][n_tokens][hidden_size]` row-major; layer 0 is the embedding output and
// layer `i` the output of encoder layer `i - 1` (`n_layers` = L + 1). Owned by the context,
// valid until the next call on that context or its `bert_context_free`. Set `size` before
// the call: `bert_hidden_states_view v = {.size = sizeof v};`.
typedef struct bert_hidden_states_view {
  // `sizeof(bert_hidden_states_view)`, set by the caller; the library writes no further.
  size_t size;
  size_t n_layers;
  size_t n_tokens;
  size_t hidden_size;
  const float *data;
} bert_hidden_states_view;

// The last layer at `[CLS]` (position 0).
#define BERT_POOLING_CLS 0

// Mean over real tokens (sentence-transformers; all-MiniLM-L6-v2 uses this).
#define BERT_POOLING_MEAN 1

// Element-wise max over real tokens.
#define BERT_POOLING_MAX 2

// The pooler output `tanh(dense([CLS]))`; `BERT_ERROR_UNSUPPORTED` if the model has none.
#define BERT_POOLING_POOLER 3

// No padding: as many positions as tokens.
#define BERT_PADDING_NONE 0

// Pad with `[PAD]` (attention 0) to exactly `max_seq_length` positions (Google's inputs).
#define BERT_PADDING_FIXED 1

// Default context params: all cores, the model's maximum sequence length.
bert_context_params bert_context_default_params(void);

// Default encode params: the context's `max_seq_length`, no padding.
bert_encode_params bert_encode_default_params(void);

// Creates a context for `model` (which must outlive it). `params` may be NULL. On failure
// `*out_context` is NULL.
bert_status bert_context_new(const bert_model *model,
                             const bert_context_params *params,
                             bert_context **out_context);

// Frees a context, joining its worker threads, and every view it returned. NULL is a
// no-op. In a child process after `fork` a context of the parent frees nothing (its workers
// do not exist there) and sets `bert_last_error()`.
void bert_context_free(bert_context *context);

// Number of threads the context's kernels use; 0 if `context` is NULL.
uint32_t bert_context_n_threads(const bert_context *context);

// Encodes `[CLS] A [SEP]` or, when `text_b` is not NULL, `[CLS] A [SEP] B [SEP]` (`text_b`
// NULL with `len_b` 0: no B; NULL with another length: `BERT_ERROR_NULL_ARGUMENT`) with the
// model's tokenizer: ids, type ids, masks and offsets into a view owned by the context (see
// `bert_encoding_view`; valid until the next call on the context). Texts are `(ptr, len)`
// UTF-8. `params` may be NULL. On failure `*out` is zeroed (all but its `size`). An unknown
// padding or a `max_seq_length` outside 2..=`max_position_embeddings` is
// `BERT_ERROR_INVALID_ARGUMENT` (inputs are truncated before they are padded, so fixed
// padding never meets a longer input).
bert_status bert_encode(bert_context *context,
                        const char *text_a,
                        size_t len_a,
                        const char *text_b,
                        size_t len_b,
                        const bert_encode_params *params,
                        bert_encoding_view *out);

// Sentence embeddings of `n_texts` texts: text `i` is `lens[i]` bytes of UTF-8 at `texts[i]`
// (if `lens` is NULL every text is NUL-terminated). Each text is encoded as `[CLS] text
// [SEP]` (truncated to the context's `max_seq_length`), the batch runs through the model, and
// the last layer is reduced by `pooling` and, if `normalize` is 1 (not 0), scaled to unit L2
// norm. The result, `n_texts * hidden_size` floats (`[n_texts][hidden_size]`), is written to
// `out`, which holds `out_capacity` floats; `*out_len` (may be NULL) receives `n_texts *
// hidden_size`. If `out_capacity` is smaller, nothing runs and `BERT_ERROR_BUFFER_TOO_SMALL`
// is returned (`out` NULL with capacity 0 is a size query). A text's embedding does not
// depend on the others in the batch.
bert_status bert_embed(bert_context *context,
                       const char *const *texts,
                       const size_t *lens,
                       size_t n_texts,
                       bert_pooling pooling,
                       uint8_t normalize,
                       float *out,
                       size_t out_capacity,
                       size_t *out_len);

// Every layer's hidden states for one text (`len` bytes of UTF-8), encoded as
// `[CLS] text [SEP]` and truncated to the context's `max_seq_length`, as a view owned by the
// context (see `bert_hidden_states_view`). On failure `*out` is zeroed (all but its `size`).
bert_status bert_hidden_states(bert_context *context,
                               const char *text,
                               size_t len,
                               bert_hidden_states_view *out);


/* ==== Classify ======================================================================== */

// Loads a classifier fine-tuned by `bert_trainer_save` or `bert classify --do_train`: a
// `.bert` file with a label list and a head (`output_weights`, `output_bias`). `params` (may
// be NULL: defaults) gives the back end, the encoder's `dtype` (the head stays f32) and
// `verify_checksums`; the file brings its vocabulary and casing, so `vocab_path` must be
// NULL and `do_lower_case` `BERT_LOWER_CASE_AUTO` (`BERT_ERROR_INVALID_ARGUMENT`
// otherwise); `config_json` and `vocab_text` are ignored. With `BERT_BACKEND_VULKAN` the
// encoder and the head run on the device (logits within 1e-4 of the CPU's);
// `BERT_ERROR_UNSUPPORTED` where there is none. On failure `*out_classifier` is
// NULL: `BERT_ERROR_IO`, `BERT_ERROR_FORMAT` (not a model, or a checksum that does not
// match), `BERT_ERROR_NOT_A_CLASSIFIER` (a model without labels or head, e.g. a pre-trained
// one).
bert_status bert_classifier_load_file(const char *path,
                                      const bert_model_params *params,
                                      bert_classifier **out_classifier);

// Frees a classifier. NULL is a no-op. No context made from its model may be used afterwards.
void bert_classifier_free(bert_classifier *classifier);

// The classifier's encoder and tokenizer as a model, borrowed: valid as long as the
// classifier, freed with it (`bert_model_free` on it frees nothing and sets
// `bert_last_error()`). Make the contexts for `bert_classify` from it (they
// also embed, tokenize and encode with it). NULL if `classifier` is NULL.
const bert_model *bert_classifier_model(const bert_classifier *classifier);

// Number of labels (classes); 0 if `classifier` is NULL.
size_t bert_classifier_num_labels(const bert_classifier *classifier);

// Name of label `index` (NUL-terminated UTF-8, owned by the classifier, valid as long as
// it); NULL if `classifier` is NULL or `index` is not below `bert_classifier_num_labels`.
const char *bert_classifier_label(const bert_classifier *classifier, size_t index);

// Classifies `n_texts` texts or text pairs: row `i` is `[CLS] A [SEP]` with A = `lens_a[i]`
// bytes of UTF-8 at `texts_a[i]`, or `[CLS] A [SEP] B [SEP]` when `texts_b` is not NULL and
// `texts_b[i]` is not NULL (B = `lens_b[i]` bytes; a NULL `texts_b[i]` needs `lens_b[i]` 0).
// A NULL `lens_a` / `lens_b` means the texts are NUL-terminated. Inputs are truncated to the
// context's `max_seq_length` (set it to the fine-tuning `max_seq_length`, e.g. 128) as
// Google's `_truncate_seq_pair` does.
//
// `context` must have been made from `bert_classifier_model(classifier)`
// (`BERT_ERROR_INVALID_ARGUMENT` otherwise). Writes `n_texts * num_labels` floats,
// `[n_texts][num_labels]`, to `logits` and to `probabilities` (softmax of the logits); either
// may be NULL to skip it. Each holds `capacity` floats; `*out_len` (may be NULL) receives
// `n_texts * num_labels`. If `capacity` is smaller, nothing runs and
// `BERT_ERROR_BUFFER_TOO_SMALL` is returned (both NULL with capacity 0 is a size query). A
// row does not depend on the others in the batch. The abort callback of the context can stop
// the call (`BERT_ERROR_CANCELLED`).
bert_status bert_classify(bert_context *context,
                          const bert_classifier *classifier,
                          const char *const *texts_a,
                          const size_t *lens_a,
                          const char *const *texts_b,
                          const size_t *lens_b,
                          size_t n_texts,
                          float *logits,
                          float *probabilities,
                          size_t capacity,
                          size_t *out_len);


/* ==== Question answering ============================================================== */

// Most answers one question may ask for (`bert_qa_params.n_best`). Each is a candidate
// span Google's `write_predictions` ranks; more than this many are noise, and the bound
// keeps `n_pairs * n_best` far from overflow.
#define BERT_QA_MAX_N_BEST 1024

// Most windows one batch may run (`bert_qa_params.batch_size`), as a context's thread count
// is bounded: memory grows with it.
#define BERT_QA_MAX_BATCH 1024

// Options of `bert_qa_answer` and `bert_qa_answer_batch` (run_squad.py's prediction
// flags). Get them from `bert_qa_default_params()`; NULL means the defaults. Fields are only
// ever appended: a struct from an older header is accepted.
typedef struct bert_qa_params {
  // `sizeof(bert_qa_params)`, set by `bert_qa_default_params()`; checked.
  size_t size;
  // Answers per question, best first (`n_best_size`), 1 to `BERT_QA_MAX_N_BEST`; default
  // 20. The span buffer holds this many per question.
  uint32_t n_best;
  // Longest answer in WordPieces (`max_answer_length`), at least 1; default 30.
  uint32_t max_answer_length;
  // Positions of one window, `[CLS] question [SEP] part of the context [SEP]`; a longer
  // context is read in overlapping windows. 0 (default): 384, or the model's
  // `max_position_embeddings` if smaller.
  uint32_t max_seq_length;
  // Tokens between the starts of two windows (`doc_stride`). 0 (default): 128, or half
  // the context part of a window if smaller.
  uint32_t doc_stride;
  // Question tokens kept, the first ones (`max_query_length`). 0 (default): 64, or a
  // quarter of `max_seq_length` if smaller.
  uint32_t max_query_length;
  // Windows run by the encoder at once (`predict_batch_size`), 1 to
  // `BERT_QA_MAX_BATCH`; default 8. Answers do not depend on it.
  uint32_t batch_size;
} bert_qa_params;

// One answer: bytes `[start_byte, end_byte)` of the caller's context, so its text is
// `context + start_byte`, `end_byte - start_byte` bytes (whole UTF-8 characters, never
// empty). The library copies no text. This struct never changes (it is written in arrays, so
// it has no `size` field); a richer answer would come with new functions.
typedef struct bert_qa_span {
  uint64_t start_byte;
  uint64_t end_byte;
  // Softmax of `start_logit + end_logit` over the question's best candidates (at least
  // 20): in (0, 1], comparable within one question, not across questions.
  float score;
} bert_qa_span;

// Default QA params: 20 answers of at most 30 WordPieces, run_squad.py's windows scaled to
// the model (all 0 = automatic), 8 windows per batch.
bert_qa_params bert_qa_default_params(void);

// Loads a SQuAD-fine-tuned model: what `bert squad --do_predict` loads, a `.bert` file
// written by `bert squad --do_train` (holding its vocabulary and casing), or a Google TF
// checkpoint / safetensors model whose weights include `cls/squad/output_weights` and
// `cls/squad/output_bias` (vocabulary: `vocab.txt` beside it). `params` (may be NULL:
// defaults) gives the back end, the encoder's `dtype` (the head stays f32),
// `verify_checksums`, and a `vocab_path` / `do_lower_case` that override the model's (as
// `--vocab_file` / `--do_lower_case` do); `config_json` and `vocab_text` are ignored. With
// `BERT_BACKEND_VULKAN` the encoder and the span head run on the device (the same answers
// as the CPU's, logits within 1e-4); `BERT_ERROR_UNSUPPORTED` where there is none. On
// failure `*out_qa` is NULL: `BERT_ERROR_IO`, `BERT_ERROR_FORMAT`, `BERT_ERROR_SHAPE`,
// `BERT_ERROR_NOT_A_CLASSIFIER` (a model not fine-tuned for this task: without the span
// head, e.g. a pre-trained one or a classifier; the message names the missing tensor).
bert_status bert_qa_load_file(const char *path,
                              const bert_model_params *params,
                              bert_qa **out_qa);

// Frees a question answerer. NULL is a no-op. No context made from its model may be used
// afterwards.
void bert_qa_free(bert_qa *qa);

// The answerer's encoder and tokenizer as a model, borrowed: valid as long as the answerer,
// freed with it (`bert_model_free` on it frees nothing and sets `bert_last_error()`). Make
// the contexts for `bert_qa_answer` from it. NULL if `qa` is NULL.
const bert_model *bert_qa_model(const bert_qa *qa);

// Answers `question` (`question_len` bytes of UTF-8) about `context_text` (`context_len`
// bytes): the `n_best` best spans of the context, best first, written to `spans`
// (`capacity` entries); `*out_n` receives how many (fewer than `n_best` when the context has
// fewer distinct candidates; 0 when it has no words). A context longer than one window is
// read in overlapping windows, each span scored in the window where it has the most context
// (Google's `write_predictions`). The answers are those of the Rust API's
// `QuestionAnswerer::answer` with the same options.
//
// `params` may be NULL (defaults). `context` must have been made from `bert_qa_model(qa)`
// (`BERT_ERROR_INVALID_ARGUMENT` otherwise); its `max_seq_length` is not used (the windows
// come from `params`), its thread count and abort callback are
// (`BERT_ERROR_CANCELLED`). If `capacity` is below `params->n_best`, nothing runs, `*out_n`
// receives `n_best` and `BERT_ERROR_BUFFER_TOO_SMALL` is returned (`spans` NULL with
// capacity 0 is a size query). `out_n` must not be NULL.
bert_status bert_qa_answer(bert_context *context,
                           const bert_qa *qa,
                           const char *question,
                           size_t question_len,
                           const char *context_text,
                           size_t context_len,
                           const bert_qa_params *params,
                           bert_qa_span *spans,
                           size_t capacity,
                           size_t *out_n);

// `bert_qa_answer` for `n_pairs` pairs at once, their windows batched together: pair `i` is
// `questions[i]` (`question_lens[i]` bytes) about `contexts[i]` (`context_lens[i]` bytes); a
// NULL length array means those texts are NUL-terminated. Pair `i`'s answers are written to
// `spans[i * n_best ...]`, `counts[i]` of them (`counts` holds `n_pairs` entries and may be
// NULL only when `n_pairs` is 0). A pair's answers do not depend on the other pairs.
// `*out_len` (may be NULL) receives `n_pairs * n_best`; if `capacity` is smaller, nothing
// runs and `BERT_ERROR_BUFFER_TOO_SMALL` is returned (a size query: `spans` NULL, capacity
// 0). Other rules as `bert_qa_answer`.
bert_status bert_qa_answer_batch(bert_context *context,
                                 const bert_qa *qa,
                                 const char *const *questions,
                                 const size_t *question_lens,
                                 const char *const *contexts,
                                 const size_t *context_lens,
                                 size_t n_pairs,
                                 const bert_qa_params *params,
                                 bert_qa_span *spans,
                                 size_t capacity,
                                 size_t *counts,
                                 size_t *out_len);


/* ==== Train =========================================================================== */

// Most labels a classifier may have (`bert_trainer_params.n_labels`); more is
// `BERT_ERROR_INVALID_ARGUMENT`.
#define BERT_MAX_LABELS 65536

// Options of `bert_trainer_new`, with `run_classifier.py`'s defaults from
// `bert_trainer_default_params()`. NULL means the defaults (then the model must be a
// fine-tuned `.bert` that brings its labels).
typedef struct bert_trainer_params {
  // `sizeof(bert_trainer_params)`, set by `bert_trainer_default_params()`; checked.
  size_t size;
  // Peak learning rate (default 5e-5), reached after the warm-up, then decayed linearly
  // to 0.
  float learning_rate;
  // Fraction of the updates spent warming up (default 0.1).
  float warmup_proportion;
  // Passes over the training examples (default 3.0); the run makes
  // `int(examples / train_batch_size * num_train_epochs)` updates.
  double num_train_epochs;
  // Examples per update (default 32).
  uint32_t train_batch_size;
  // Micro-batches per update, dividing `train_batch_size` (default 1): same update, less
  // memory.
  uint32_t gradient_accumulation_steps;
  // Examples are truncated to this many positions, `[CLS]` and `[SEP]` included (default
  // 128).
  uint32_t max_seq_length;
  // Threads of the passes, the calling thread included; 0 (default): all cores; at most
  // `BERT_MAX_THREADS`.
  uint32_t n_threads;
  // Seeds the head's initialisation, dropout and shuffling (default 12345). A run is
  // deterministic for a seed and thread count.
  uint64_t seed;
  // `n_labels` label names (NUL-terminated UTF-8, copied during the call); label id `i` is
  // `labels[i]`. NULL with `n_labels > 0`: the names "0", "1", .... NULL with 0 (default):
  // the labels of a fine-tuned `.bert` model (`BERT_ERROR_LABEL` if it has none). At most
  // `BERT_MAX_LABELS`.
  const char *const *labels;
  size_t n_labels;
  // `BERT_LOWER_CASE_AUTO` (default), 0 or 1, as in `bert_model_params`.
  int32_t do_lower_case;
  // 1: recompute each layer's activations in the backward pass instead of keeping them
  // (about 40% less peak memory for about one more forward pass of compute, the same
  // numbers); 0 (default): keep them.
  uint8_t gradient_checkpointing;
  // Global-norm gradient clipping threshold (default 1.0, Google's); 0 disables clipping.
  float max_grad_norm;
} bert_trainer_params;

// How `bert_trainer_add_tsv` reads a tab-separated file. From `bert_tsv_default_params()`;
// NULL means the defaults. Fields are only ever appended: a struct from an older header is
// accepted.
typedef struct bert_tsv_params {
  // `sizeof(bert_tsv_params)`, set by `bert_tsv_default_params()`; checked.
  size_t size;
  // A GLUE task whose file layout to use ("cola", "mnli", "mrpc", "sst-2", "rte"; the
  // train layout for `BERT_SPLIT_TRAIN`, the dev layout for `BERT_SPLIT_EVAL`), or NULL
  // (default) for the columns below.
  const char *task_name;
  // 0-based columns of text A, text B (-1: none) and the label. Defaults 0, -1, 1.
  int32_t text_a_column;
  int32_t text_b_column;
  int32_t label_column;
  // 1 (default): the first line is a header; 0: it is a row.
  uint8_t skip_header;
} bert_tsv_params;

// Which example set an example goes to. Values never renumbered.
typedef int32_t bert_split;

// What `bert_trainer_train`'s progress callback sees after each update.
typedef struct bert_progress {
  // `sizeof(bert_progress)`: fields are only appended.
  size_t size;
  // Updates done, this one included.
  uint64_t step;
  // Updates of the whole run.
  uint64_t total_steps;
  // Mean training loss of this update's examples.
  float loss;
  // Learning rate of this update.
  float learning_rate;
  // Global gradient norm before clipping (at 1.0).
  double grad_norm;
  // Training examples per second since this `bert_trainer_train` call began.
  double examples_per_second;
  // Seconds since this `bert_trainer_train` call began.
  double elapsed_seconds;
} bert_progress;

// Called after each update with its progress (valid during the call) and the `user_data`
// given to `bert_trainer_train`, on the calling thread. Return 0 to go on, nonzero to stop:
// `bert_trainer_train` then returns `BERT_ERROR_CANCELLED` with the update kept. Must not
// call into the same trainer.
typedef int32_t (*bert_progress_callback)(const bert_progress *progress, void *user_data);

// Scores of `bert_trainer_evaluate` (run_classifier.py's eval metrics). Set `size` before
// the call: `bert_eval_result r = {.size = sizeof r};`.
typedef struct bert_eval_result {
  // `sizeof(bert_eval_result)`, set by the caller; the library writes no further.
  size_t size;
  // Evaluation examples scored.
  size_t n_examples;
  // Updates done when evaluated.
  uint64_t global_step;
  // Fraction of examples whose arg-max class is the label.
  double accuracy;
  // Mean cross-entropy per example (`eval_loss`).
  double loss;
  // F1 and Matthews correlation of label 1 (MRPC's and CoLA's metrics); NaN unless there
  // are exactly two labels.
  double f1;
  double mcc;
} bert_eval_result;

// Training examples (added before the first `bert_trainer_train`).
#define BERT_SPLIT_TRAIN 0

// Evaluation examples for `bert_trainer_evaluate` (may be added at any time).
#define BERT_SPLIT_EVAL 1

// Default trainer params: run_classifier.py's (lr 5e-5, 3 epochs, batch 32, warm-up 0.1,
// max_seq_length 128, seed 12345), all cores, labels from the model.
bert_trainer_params bert_trainer_default_params(void);

// Default TSV params: text in column 0, label in column 1, a header line.
bert_tsv_params bert_tsv_default_params(void);

// Creates a trainer from a model (`path` as for `bert_model_load_file`: a directory, a
// `.safetensors`, a TF checkpoint or a `.bert` file, whose head is reused when it has as
// many labels) and `params` (may be NULL). On failure `*out_trainer` is NULL:
// `BERT_ERROR_LABEL` (no or empty label list), `BERT_ERROR_INVALID_ARGUMENT` (bad
// hyper-parameter), and the loading statuses.
bert_status bert_trainer_new(const char *model_path,
                             const bert_trainer_params *params,
                             bert_trainer **out_trainer);

// Frees a trainer, joining its worker threads. NULL is a no-op. In a child process after
// `fork` a trainer of the parent frees nothing (its workers do not exist there) and sets
// `bert_last_error()`.
void bert_trainer_free(bert_trainer *trainer);

// Adds one example: text A (`len_a` bytes of UTF-8), optional text B (NULL with `len_b` 0:
// a single sentence) and its label id (`0 .. n_labels-1`; anything else is `BERT_ERROR_LABEL`), to
// the training (`BERT_SPLIT_TRAIN`) or evaluation (`BERT_SPLIT_EVAL`) set. Training examples
// can only be added before the first `bert_trainer_train` (`BERT_ERROR_INVALID_ARGUMENT`
// after).
bert_status bert_trainer_add_example(bert_trainer *trainer,
                                     bert_split split,
                                     const char *text_a,
                                     size_t len_a,
                                     const char *text_b,
                                     size_t len_b,
                                     int32_t label_id);

// `bert_trainer_add_example` with the label given by name (`label_len` bytes of UTF-8; a
// name not in the label list is `BERT_ERROR_LABEL`).
bert_status bert_trainer_add_example_label(bert_trainer *trainer,
                                           bert_split split,
                                           const char *text_a,
                                           size_t len_a,
                                           const char *text_b,
                                           size_t len_b,
                                           const char *label,
                                           size_t label_len);

// Adds every row of a tab-separated file (NUL-terminated UTF-8 path) to a set, read as
// `params` says (NULL: defaults). All or nothing: a malformed row is `BERT_ERROR_FORMAT`, a
// label not in the list `BERT_ERROR_LABEL`, both naming the file and line; then nothing is
// added.
bert_status bert_trainer_add_tsv(bert_trainer *trainer,
                                 bert_split split,
                                 const char *path,
                                 const bert_tsv_params *params);

// Number of examples in a set; 0 if `trainer` is NULL or `split` unknown.
size_t bert_trainer_num_examples(const bert_trainer *trainer, bert_split split);

// Updates the run makes with the training examples added so far; 0 if `trainer` is NULL.
uint64_t bert_trainer_num_train_steps(const bert_trainer *trainer);

// Updates done so far; 0 if `trainer` is NULL.
uint64_t bert_trainer_global_step(const bert_trainer *trainer);

// Trains: runs updates until the run's `bert_trainer_num_train_steps` are done, or
// `max_steps` updates were made by this call (0: no limit), or `callback` (may be NULL)
// returns nonzero. Returns `BERT_OK` when the run finished or `max_steps` was reached (call
// again to go on), `BERT_ERROR_CANCELLED` when the callback stopped it (the update it saw is
// kept; call again to go on), `BERT_ERROR_EMPTY_DATA` without training examples,
// `BERT_ERROR_DIVERGED` if the loss stops being finite (the trainer is then unusable). The
// first call fixes the training set.
bert_status bert_trainer_train(bert_trainer *trainer,
                               uint64_t max_steps,
                               bert_progress_callback callback,
                               void *user_data);

// Evaluates the current parameters on the evaluation set (dropout off): accuracy, loss, and
// for two labels F1 and MCC of label 1, into `*out` (zeroed on failure, all but its
// `size`).
// `BERT_ERROR_EMPTY_DATA` if the evaluation set is empty.
bert_status bert_trainer_evaluate(const bert_trainer *trainer, bert_eval_result *out);

// Saves the fine-tuned classifier as a `.bert` file (`path`, NUL-terminated UTF-8) for
// `bert_classifier_load_file` and `bert classify --do_predict`: written to a temporary file
// beside it, synced and renamed, so `path` is never half-written.
bert_status bert_trainer_save(const bert_trainer *trainer, const char *path);

// Saves the whole training state (parameters, optimizer slots, step, generators, data
// position: a safetensors file, written atomically) so that `bert_trainer_resume` can
// continue the run later, bit for bit. Fixes the training set like `bert_trainer_train`.
bert_status bert_trainer_save_checkpoint(bert_trainer *trainer, const char *path);

// Continues the run saved by `bert_trainer_save_checkpoint`. The trainer must have been
// created with the same model, params and labels and given the same training examples
// (`BERT_ERROR_INVALID_ARGUMENT` naming what differs); a damaged file is `BERT_ERROR_FORMAT`.
bert_status bert_trainer_resume(bert_trainer *trainer, const char *path);

// Number of labels; 0 if `trainer` is NULL.
size_t bert_trainer_num_labels(const bert_trainer *trainer);


/* ==== Pre-train ======================================================================= */

// Options of `bert_pretraining_data_create`: `create_pretraining_data.py`'s flags, with its
// defaults from `bert_pretraining_data_default_params()`. Fields are only ever appended.
typedef struct bert_pretraining_data_params {
  // `sizeof(bert_pretraining_data_params)`, set by
  // `bert_pretraining_data_default_params()`; checked.
  size_t size;
  // `--input_file`: comma-separated files or glob patterns of plain text (one sentence per
  // line, blank lines between documents). Required (NUL-terminated UTF-8).
  const char *input_file;
  // `--output_file`: comma-separated TFRecord files, written round-robin, each to a
  // temporary file renamed when complete. Required.
  const char *output_file;
  // `--vocab_file`: the WordPiece vocabulary. Required.
  const char *vocab_file;
  // `--max_seq_length` (default 128, at least 5).
  uint32_t max_seq_length;
  // `--max_predictions_per_seq` (default 20).
  uint32_t max_predictions_per_seq;
  // `--random_seed` of Python's `random.Random` (default 12345).
  int64_t random_seed;
  // `--dupe_factor`: passes over the documents (default 10).
  uint32_t dupe_factor;
  // Threads for tokenizing and encoding, 0 (default): all cores. The output does not
  // depend on it.
  uint32_t n_threads;
  // `--masked_lm_prob` (default 0.15).
  double masked_lm_prob;
  // `--short_seq_prob` (default 0.1).
  double short_seq_prob;
  // `--do_lower_case`: 1 (default) or 0.
  uint8_t do_lower_case;
  // `--do_whole_word_mask`: 0 (default) or 1.
  uint8_t do_whole_word_mask;
} bert_pretraining_data_params;

// Stage of `bert_pretraining_data_create` a progress call reports. Values never renumbered.
typedef int32_t bert_data_stage;

// Called now and then by `bert_pretraining_data_create` on the calling thread. Return 0 to
// go on, nonzero to stop: the call returns `BERT_ERROR_CANCELLED` and no output file is
// created or replaced.
typedef int32_t (*bert_data_progress_callback)(bert_data_stage stage,
                                               uint64_t done,
                                               uint64_t total,
                                               void *user_data);

// What `bert_pretraining_data_create` read and wrote. Set `size` before the call:
// `bert_pretraining_data_summary s = {.size = sizeof s};`.
typedef struct bert_pretraining_data_summary {
  // `sizeof(bert_pretraining_data_summary)`, set by the caller; the library writes no
  // further.
  size_t size;
  // Input files read (the patterns expanded).
  size_t n_input_files;
  // Bytes of input text.
  uint64_t input_bytes;
  // Non-empty documents.
  uint64_t n_documents;
  // WordPiece tokens of all documents.
  uint64_t n_tokens;
  // Instances written (all output files).
  uint64_t n_instances;
} bert_pretraining_data_summary;

// Options of `bert_pretrainer_new`: `run_pretraining.py`'s flags, with its defaults from
// `bert_pretrainer_default_params()`. Fields are only ever appended.
typedef struct bert_pretrainer_params {
  // `sizeof(bert_pretrainer_params)`, set by `bert_pretrainer_default_params()`; checked.
  size_t size;
  // `--input_file`: comma-separated TFRecord files or globs of
  // `bert_pretraining_data_create`, every record read and checked by `bert_pretrainer_new`.
  // NULL (default): no training examples (a run that only evaluates).
  const char *input_file;
  // `--eval_input_file` of `bert_pretrainer_evaluate`; NULL (default): `input_file`.
  const char *eval_input_file;
  // `--output_dir` (required): `training_state.safetensors` is written there every
  // `save_checkpoints_steps` and when `bert_pretrainer_train` returns after an update
  // (cancelled included); `bert_pretrainer_new` resumes from it when it exists. Also
  // `eval_results.txt` (`bert_pretrainer_evaluate`).
  const char *output_dir;
  // `--max_seq_length` and `--max_predictions_per_seq` of the records (defaults 128, 20).
  uint32_t max_seq_length;
  uint32_t max_predictions_per_seq;
  // `--train_batch_size` (default 32).
  uint32_t train_batch_size;
  // Micro-batches per update, dividing `train_batch_size` (default 1).
  uint32_t gradient_accumulation_steps;
  // `--learning_rate` (default 5e-5).
  float learning_rate;
  // Threads of the passes, the calling thread included; 0 (default): all cores; at most
  // `BERT_MAX_THREADS`. A run is deterministic for a seed and thread count.
  uint32_t n_threads;
  // `--num_train_steps` (default 100000) and `--num_warmup_steps` (default 10000).
  uint64_t num_train_steps;
  uint64_t num_warmup_steps;
  // Seeds the initialisation of missing variables, the data order and dropout (default
  // 12345).
  uint64_t seed;
  // `--save_checkpoints_steps` (default 1000; 0: only when `bert_pretrainer_train`
  // returns).
  uint64_t save_checkpoints_steps;
  // `--eval_batch_size` (default 8) and `--max_eval_steps` (default 100).
  uint32_t eval_batch_size;
  uint32_t max_eval_steps;
  // 1 (default): dropout as the config says; 0: off.
  uint8_t dropout;
  // 1: recompute activations in the backward pass (less memory, same numbers); 0
  // (default).
  uint8_t gradient_checkpointing;
} bert_pretrainer_params;

// What `bert_pretrainer_train`'s progress callback sees after each update.
typedef struct bert_pretrain_progress {
  // `sizeof(bert_pretrain_progress)`: fields are only appended.
  size_t size;
  // Updates done, this one included, and of the whole run (`num_train_steps`).
  uint64_t step;
  uint64_t total_steps;
  // Total loss of this update (masked LM + next sentence).
  float loss;
  // Learning rate of this update.
  float learning_rate;
  // Global gradient norm before clipping (at 1.0).
  double grad_norm;
  // The heads' metrics on this update's examples (before the update): weighted masked-LM
  // loss and accuracy, next-sentence loss and accuracy.
  double masked_lm_loss;
  double masked_lm_accuracy;
  double next_sentence_loss;
  double next_sentence_accuracy;
  // Seconds since this `bert_pretrainer_train` call began.
  double elapsed_seconds;
} bert_pretrain_progress;

// Called after each update with its progress (valid during the call) and the `user_data`
// given to `bert_pretrainer_train`, on the calling thread. Return 0 to go on, nonzero to
// stop: the update is kept, the state saved, and `BERT_ERROR_CANCELLED` returned. Must not
// call into the same pre-trainer.
typedef int32_t (*bert_pretrain_progress_callback)(const bert_pretrain_progress *progress,
                                                   void *user_data);

// `run_pretraining.py`'s evaluation metrics (`metric_fn`). Set `size` before the call:
// `bert_pretrain_eval_result r = {.size = sizeof r};`.
typedef struct bert_pretrain_eval_result {
  // `sizeof(bert_pretrain_eval_result)`, set by the caller; the library writes no further.
  size_t size;
  // Examples evaluated (whole batches of `eval_batch_size`, at most `max_eval_steps`).
  uint64_t n_examples;
  // Updates done when evaluated.
  uint64_t global_step;
  // `loss`, `masked_lm_loss`, `masked_lm_accuracy`, `next_sentence_loss`,
  // `next_sentence_accuracy` of `eval_results.txt`.
  double loss;
  double masked_lm_loss;
  double masked_lm_accuracy;
  double next_sentence_loss;
  double next_sentence_accuracy;
} bert_pretrain_eval_result;

// Reading and tokenizing the input: `done` of `total` bytes.
#define BERT_DATA_READING 0

// Creating instances: `done` of `total` documents (`dupe_factor` times each).
#define BERT_DATA_CREATING 1

// Writing: `done` of `total` instances.
#define BERT_DATA_WRITING 2

// `create_pretraining_data.py`'s defaults (dupe_factor 10, masks 0.15 up to 20 per
// sequence of 128, seed 12345, lower case), all cores; the three paths NULL.
bert_pretraining_data_params bert_pretraining_data_default_params(void);

// Creates masked-LM / next-sentence pre-training data as `create_pretraining_data.py` (and
// `bert create-pretraining-data`) does: for the same input and params, the same records in
// the same order. `params` is required (it names the files); `callback` may be NULL.
// `out` (may be NULL) receives the counts, and is zeroed on failure. `BERT_ERROR_IO` (a file
// that cannot be read or written), `BERT_ERROR_INVALID_ARGUMENT` (a bad flag, or a pattern
// that matches nothing), `BERT_ERROR_CANCELLED`.
bert_status bert_pretraining_data_create(const bert_pretraining_data_params *params,
                                         bert_data_progress_callback callback,
                                         void *user_data,
                                         bert_pretraining_data_summary *out);

// `run_pretraining.py`'s defaults (batch 32, lr 5e-5, 100000 steps with 10000 of warm-up,
// sequences of 128 with 20 predictions, checkpoints every 1000 steps, evaluation of 100
// batches of 8), all cores, dropout on; the paths NULL.
bert_pretrainer_params bert_pretrainer_default_params(void);

// Creates a pre-training run as `bert pretrain --do_train` starts one. The model:
// `config_file` (`bert_config.json`) with `init_checkpoint` (a TF checkpoint prefix or a
// `.safetensors` file) or NULL (from scratch); or `config_file` NULL and `init_checkpoint`
// any model libbert loads (its config inside or beside it). Variables it lacks (all from
// scratch; the `cls/*` heads of an encoder-only model) start from `modeling.py`'s
// initialisers, drawn from `params->seed`. `params` is required (it names `output_dir`).
// Every training record is read and checked now (errors name file and record). When
// `output_dir` holds `training_state.safetensors`, the run resumes from it (its settings
// and data must match: `BERT_ERROR_INVALID_ARGUMENT` naming what differs); see
// `bert_pretrainer_global_step`. Without training data (`input_file` NULL) the run only
// evaluates: the saved state's variables when `output_dir` holds one, as `bert pretrain
// --do_eval` does. On failure `*out_pretrainer` is NULL.
bert_status bert_pretrainer_new(const char *config_file,
                                const char *init_checkpoint,
                                const bert_pretrainer_params *params,
                                bert_pretrainer **out_pretrainer);

// Frees a pre-trainer, joining its worker threads. NULL is a no-op. In a child process after
// `fork` a pre-trainer of the parent frees nothing and sets `bert_last_error()`.
void bert_pretrainer_free(bert_pretrainer *pretrainer);

// Updates done (after a resume, or for a run without training data that loaded
// `output_dir`'s state: the saved run's); 0 if `pretrainer` is NULL.
uint64_t bert_pretrainer_global_step(const bert_pretrainer *pretrainer);

// Training examples read; 0 if `pretrainer` is NULL.
uint64_t bert_pretrainer_num_examples(const bert_pretrainer *pretrainer);

// Trains: runs updates until `num_train_steps` are done, or `max_steps` updates were made by
// this call (0: no limit), or `callback` (may be NULL) returns nonzero, saving the state to
// `output_dir` every `save_checkpoints_steps` and, after at least one update, before
// returning. Returns `BERT_OK` when the run finished or `max_steps` was reached (call again
// to go on), `BERT_ERROR_CANCELLED` when the callback stopped it (the update it saw is kept
// and saved: call again, or free and make a new pre-trainer on the same `output_dir` to go
// on), `BERT_ERROR_EMPTY_DATA` without training examples, `BERT_ERROR_DIVERGED` if the loss
// stops being finite (the pre-trainer is then unusable). The updates of an interrupted run
// are those of an uninterrupted one, bit for bit (same thread count).
bert_status bert_pretrainer_train(bert_pretrainer *pretrainer,
                                  uint64_t max_steps,
                                  bert_pretrain_progress_callback callback,
                                  void *user_data);

// `run_pretraining.py`'s evaluation of the current parameters (dropout off) on
// `eval_input_file` (read at the first call): whole batches of `eval_batch_size`, at most
// `max_eval_steps`, into `*out` (zeroed on failure, all but its `size`); also written to
// `output_dir/eval_results.txt` as `bert pretrain --do_eval` writes it.
// `BERT_ERROR_EMPTY_DATA` if the examples make no batch.
bert_status bert_pretrainer_evaluate(bert_pretrainer *pretrainer,
                                     bert_pretrain_eval_result *out);

// Saves the whole training state (as `bert_pretrainer_train` does to `output_dir`) to
// `path` (NUL-terminated UTF-8), atomically.
bert_status bert_pretrainer_save_checkpoint(bert_pretrainer *pretrainer, const char *path);

// Continues the run saved at `path` (by `bert_pretrainer_save_checkpoint` or
// `bert_pretrainer_train`): same model shape, params and training examples
// (`BERT_ERROR_INVALID_ARGUMENT` naming what differs); a damaged file is
// `BERT_ERROR_FORMAT`.
bert_status bert_pretrainer_resume(bert_pretrainer *pretrainer, const char *path);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  /* BERT_H */
