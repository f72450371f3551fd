//! `bert_qa`: extractive question answering with a SQuAD-fine-tuned model
//! (`bert::QuestionAnswerer` across the boundary), and `bert_qa_answer`.

use std::ffi::c_char;
use std::path::Path;

use bert::heads::SquadHead;
use bert::squad::{self, answerer, AnswerOptions, FeatureOptions};

use crate::args;
use crate::context::{bert_context, Ctx};
use crate::handles::Owner;
use crate::log::{log, BERT_LOG_INFO};
use crate::model::{self, bert_model, bert_model_params, Device, Encoder};
use crate::status::{bert_status, guard, Failure, FfiResult, BERT_ERROR_BUFFER_TOO_SMALL};

/// A SQuAD-fine-tuned model: an encoder with its tokenizer (a `bert_model`, see
/// `bert_qa_model`) and the span head (`cls/squad/*`). Immutable: share it between threads,
/// each with its own `bert_context` made from `bert_qa_model()`.
pub struct bert_qa {
    model: bert_model,
    head: Head,
}

/// The span head, on its encoder's back end (the last layer it reads stays there).
enum Head {
    Cpu(SquadHead),
    #[cfg(feature = "vulkan")]
    Vulkan(SquadHead<bert::backend::Vulkan>),
}

/// Most answers one question may ask for (`bert_qa_params.n_best`). Each is a candidate
/// span Google's `write_predictions` ranks; more than this many are noise, and the bound
/// keeps `n_pairs * n_best` far from overflow.
pub const BERT_QA_MAX_N_BEST: u32 = 1024;

/// Most windows one batch may run (`bert_qa_params.batch_size`), as a context's thread count
/// is bounded: memory grows with it.
pub const BERT_QA_MAX_BATCH: u32 = 1024;

/// Options of `bert_qa_answer` and `bert_qa_answer_batch` (run_squad.py's prediction
/// flags). Get them from `bert_qa_default_params()`; NULL means the defaults. Fields are only
/// ever appended: a struct from an older header is accepted.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_qa_params {
    /// `sizeof(bert_qa_params)`, set by `bert_qa_default_params()`; checked.
    pub size: usize,
    /// Answers per question, best first (`n_best_size`), 1 to `BERT_QA_MAX_N_BEST`; default
    /// 20. The span buffer holds this many per question.
    pub n_best: u32,
    /// Longest answer in WordPieces (`max_answer_length`), at least 1; default 30.
    pub max_answer_length: u32,
    /// Positions of one window, `[CLS] question [SEP] part of the context [SEP]`; a longer
    /// context is read in overlapping windows. 0 (default): 384, or the model's
    /// `max_position_embeddings` if smaller.
    pub max_seq_length: u32,
    /// Tokens between the starts of two windows (`doc_stride`). 0 (default): 128, or half
    /// the context part of a window if smaller.
    pub doc_stride: u32,
    /// Question tokens kept, the first ones (`max_query_length`). 0 (default): 64, or a
    /// quarter of `max_seq_length` if smaller.
    pub max_query_length: u32,
    /// Windows run by the encoder at once (`predict_batch_size`), 1 to
    /// `BERT_QA_MAX_BATCH`; default 8. Answers do not depend on it.
    pub batch_size: u32,
}

// SAFETY: repr(C), starts with its size, plain data; one layout so far (an appended field
// adds this one's size to the list).
unsafe impl args::Versioned for bert_qa_params {
    const NAME: &'static str = "bert_qa_params";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_qa_params>()];
}

/// One answer: bytes `[start_byte, end_byte)` of the caller's context, so its text is
/// `context + start_byte`, `end_byte - start_byte` bytes (whole UTF-8 characters, never
/// empty). The library copies no text. This struct never changes (it is written in arrays, so
/// it has no `size` field); a richer answer would come with new functions.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct bert_qa_span {
    pub start_byte: u64,
    pub end_byte: u64,
    /// Softmax of `start_logit + end_logit` over the question's best candidates (at least
    /// 20): in (0, 1], comparable within one question, not across questions.
    pub score: f32,
}

/// Default QA params: 20 answers of at most 30 WordPieces, run_squad.py's windows scaled to
/// the model (all 0 = automatic), 8 windows per batch.
#[no_mangle]
pub extern "C" fn bert_qa_default_params() -> bert_qa_params {
    bert_qa_params {
        size: std::mem::size_of::<bert_qa_params>(),
        n_best: 20,
        max_answer_length: 30,
        max_seq_length: 0,
        doc_stride: 0,
        max_query_length: 0,
        batch_size: 8,
    }
}

/// Loads a SQuAD-fine-tuned model: what `bert squad --do_predict` loads, a `.bert` file
/// written by `bert squad --do_train` (holding its vocabulary and casing), or a Google TF
/// checkpoint / safetensors model whose weights include `cls/squad/output_weights` and
/// `cls/squad/output_bias` (vocabulary: `vocab.txt` beside it). `params` (may be NULL:
/// defaults) gives the back end, the encoder's `dtype` (the head stays f32),
/// `verify_checksums`, and a `vocab_path` / `do_lower_case` that override the model's (as
/// `--vocab_file` / `--do_lower_case` do); `config_json` and `vocab_text` are ignored. With
/// `BERT_BACKEND_VULKAN` the encoder and the span head run on the device (the same answers
/// as the CPU's, logits within 1e-4); `BERT_ERROR_UNSUPPORTED` where there is none. On
/// failure `*out_qa` is NULL: `BERT_ERROR_IO`, `BERT_ERROR_FORMAT`, `BERT_ERROR_SHAPE`,
/// `BERT_ERROR_NOT_A_CLASSIFIER` (a model not fine-tuned for this task: without the span
/// head, e.g. a pre-trained one or a classifier; the message names the missing tensor).
#[no_mangle]
pub unsafe extern "C" fn bert_qa_load_file(
    path: *const c_char,
    params: *const bert_model_params,
    out_qa: *mut *mut bert_qa,
) -> bert_status {
    guard(|| {
        let out = args::out(out_qa, "out_qa")?;
        *out = std::ptr::null_mut();
        let path = Path::new(args::c_str(path, "path")?);
        let p = model::read_params(params)?;
        let (opts, vocab, lower) = model::qa_options(&p)?;
        let is_native = bert::weights::native::is_native_file(path);
        if opts.verify_checksums && is_native {
            bert::weights::native::NativeModel::open(path)?.verify()?;
        }
        let start = bert::classifier::ModelStart::load(path, vocab.as_deref(), lower)?;
        let weights = match opts.dtype {
            Some(d) => bert::weights::quantize::convert(start.weights, &start.config, d)?,
            None => start.weights,
        };
        let (config, tokenizer) = (start.config, start.tokenizer);
        let named = |e: bert::Error| match e {
            bert::Error::NotAClassifier(m) => {
                bert::Error::NotAClassifier(format!("{}: {m}", path.display()))
            }
            e => e,
        };
        let (encoder, head, tokenizer) = match model::device(&p)? {
            Device::Cpu => {
                let (m, h, t) = squad::SquadModel::from_weights(config, &weights, tokenizer)
                    .map_err(named)?
                    .into_parts();
                (Encoder::Cpu(m), Head::Cpu(h), t)
            }
            #[cfg(feature = "vulkan")]
            Device::Vulkan(vk) => {
                let (m, h, t) = squad::SquadModel::from_weights_on(vk, config, &weights, tokenizer)
                    .map_err(named)?
                    .into_parts();
                (Encoder::Vulkan(m), Head::Vulkan(h), t)
            }
        };
        log(BERT_LOG_INFO, || {
            format!(
                "question answerer {}: {} layers, hidden {}, back end {}",
                path.display(),
                encoder.config().num_hidden_layers,
                encoder.config().hidden_size,
                encoder.backend_name()
            )
        });
        *out = Box::into_raw(Box::new(bert_qa {
            model: bert_model::with_encoder(encoder, tokenizer, Owner::Qa),
            head,
        }));
        Ok(())
    })
}

/// Frees a question answerer. NULL is a no-op. No context made from its model may be used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn bert_qa_free(qa: *mut bert_qa) {
    if !qa.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(Box::from_raw(qa));
        }));
    }
}

/// The answerer's encoder and tokenizer as a model, borrowed: valid as long as the answerer,
/// freed with it (`bert_model_free` on it frees nothing and sets `bert_last_error()`). Make
/// the contexts for `bert_qa_answer` from it. NULL if `qa` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_qa_model(qa: *const bert_qa) -> *const bert_model {
    qa.as_ref()
        .map_or(std::ptr::null(), |q| &q.model as *const bert_model)
}

/// The caller's params as the core's options, checked against the model: a bad value is an
/// error before anything runs or is allocated.
unsafe fn options(
    params: *const bert_qa_params,
    max_positions: usize,
) -> FfiResult<(usize, AnswerOptions)> {
    answer_options(
        &args::params(params, bert_qa_default_params())?,
        max_positions,
    )
}

/// `n_best` and the core's options of params (also the JNI binding's).
pub(crate) fn answer_options(
    p: &bert_qa_params,
    max_positions: usize,
) -> FfiResult<(usize, AnswerOptions)> {
    if p.n_best == 0 || p.n_best > BERT_QA_MAX_N_BEST {
        return Err(Failure::invalid(format!(
            "n_best is {}: use 1 to {BERT_QA_MAX_N_BEST} (BERT_QA_MAX_N_BEST)",
            p.n_best
        )));
    }
    if p.max_answer_length == 0 {
        return Err(Failure::invalid("max_answer_length is 0: use at least 1"));
    }
    if p.batch_size == 0 || p.batch_size > BERT_QA_MAX_BATCH {
        return Err(Failure::invalid(format!(
            "batch_size is {}: use 1 to {BERT_QA_MAX_BATCH} (BERT_QA_MAX_BATCH)",
            p.batch_size
        )));
    }
    // Zeros are the Rust API's defaults (`QuestionAnswerer::new`), each derived from the
    // fields given, so a caller who sets only max_seq_length gets consistent windows.
    let max_seq_length = match p.max_seq_length as usize {
        0 => max_positions.min(384),
        n => n,
    };
    let max_query_length = match p.max_query_length as usize {
        0 => answerer::default_windows(max_seq_length).max_query_length,
        n => n,
    };
    let doc_stride = match p.doc_stride as usize {
        0 => answerer::default_stride(max_seq_length, max_query_length),
        n => n,
    };
    let opts = AnswerOptions {
        windows: FeatureOptions {
            max_seq_length,
            doc_stride,
            max_query_length,
        },
        max_answer_length: p.max_answer_length as usize,
        batch_size: p.batch_size as usize,
    };
    opts.validate(max_positions)?;
    Ok((p.n_best as usize, opts))
}

/// Answers each `(question, context)` pair: the shared body of both entry points, after
/// their buffers are checked.
fn answer_pairs(
    c: &mut bert_context,
    qa: &bert_qa,
    pairs: &[(&str, &str)],
    n_best: usize,
    opts: &AnswerOptions,
) -> FfiResult<Vec<Vec<squad::Answer>>> {
    let tokenizer = &qa.model.tokenizer.tokenizer;
    Ok(match (&qa.model.model, &qa.head, &mut c.ctx) {
        (Encoder::Cpu(m), Head::Cpu(h), Ctx::Cpu(x)) => {
            answer_on(tokenizer, opts, (m, h, x), pairs, n_best)?
        }
        #[cfg(feature = "vulkan")]
        (Encoder::Vulkan(m), Head::Vulkan(h), Ctx::Vulkan(x)) => {
            answer_on(tokenizer, opts, (m, h, x), pairs, n_best)?
        }
        #[cfg(feature = "vulkan")]
        _ => return Err(Failure::invalid("the context was made for another model")),
    })
}

/// [`answer_pairs`] on one back end: its encoder, span head and context.
fn answer_on<B: bert::Backend>(
    tokenizer: &bert::tokenizer::Tokenizer,
    opts: &AnswerOptions,
    (model, head, ctx): (&bert::BertModel<B>, &SquadHead<B>, &mut bert::Context<B>),
    pairs: &[(&str, &str)],
    n_best: usize,
) -> bert::Result<Vec<Vec<squad::Answer>>> {
    squad::answer_batch_with(tokenizer, opts, ctx, pairs, n_best, |ctx, inputs| {
        squad::model::span_logits(model, head, ctx, inputs)
    })
}

/// The context, checked to be made from `bert_qa_model(qa)`.
unsafe fn qa_context<'a>(
    context: *mut bert_context,
    qa: *const bert_qa,
) -> FfiResult<(&'a mut bert_context, &'a bert_qa)> {
    let c = crate::context::context(context)?;
    let qa = args::handle(qa, "qa")?;
    if !std::ptr::eq(c.model, &qa.model) {
        return Err(Failure::invalid(
            "context was not made from bert_qa_model(qa)",
        ));
    }
    Ok((c, qa))
}

fn span(a: &squad::Answer) -> bert_qa_span {
    bert_qa_span {
        start_byte: a.start_byte as u64,
        end_byte: a.end_byte as u64,
        score: a.score,
    }
}

/// Answers `question` (`question_len` bytes of UTF-8) about `context_text` (`context_len`
/// bytes): the `n_best` best spans of the context, best first, written to `spans`
/// (`capacity` entries); `*out_n` receives how many (fewer than `n_best` when the context has
/// fewer distinct candidates; 0 when it has no words). A context longer than one window is
/// read in overlapping windows, each span scored in the window where it has the most context
/// (Google's `write_predictions`). The answers are those of the Rust API's
/// `QuestionAnswerer::answer` with the same options.
///
/// `params` may be NULL (defaults). `context` must have been made from `bert_qa_model(qa)`
/// (`BERT_ERROR_INVALID_ARGUMENT` otherwise); its `max_seq_length` is not used (the windows
/// come from `params`), its thread count and abort callback are
/// (`BERT_ERROR_CANCELLED`). If `capacity` is below `params->n_best`, nothing runs, `*out_n`
/// receives `n_best` and `BERT_ERROR_BUFFER_TOO_SMALL` is returned (`spans` NULL with
/// capacity 0 is a size query). `out_n` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_qa_answer(
    context: *mut bert_context,
    qa: *const bert_qa,
    question: *const c_char,
    question_len: usize,
    context_text: *const c_char,
    context_len: usize,
    params: *const bert_qa_params,
    spans: *mut bert_qa_span,
    capacity: usize,
    out_n: *mut usize,
) -> bert_status {
    guard(|| {
        let out_n = args::out(out_n, "out_n")?;
        *out_n = 0;
        let (c, qa) = qa_context(context, qa)?;
        let (n_best, opts) = options(params, qa.model.model.config().max_position_embeddings)?;
        if capacity < n_best {
            *out_n = n_best;
            return Err(Failure::new(
                BERT_ERROR_BUFFER_TOO_SMALL,
                format!("n_best {n_best} answers need {n_best} spans, capacity is {capacity}"),
            ));
        }
        if spans.is_null() {
            return Err(Failure::null(&format!("spans (with capacity {capacity})")));
        }
        let q = args::text(question, question_len, "question")?;
        let t = args::text(context_text, context_len, "context_text")?;
        let answers = answer_pairs(c, qa, &[(q, t)], n_best, &opts)?;
        let answers = answers.first().map_or(&[][..], Vec::as_slice);
        let out = std::slice::from_raw_parts_mut(spans, capacity);
        for (o, a) in out.iter_mut().zip(answers) {
            *o = span(a);
        }
        *out_n = answers.len();
        Ok(())
    })
}

/// `bert_qa_answer` for `n_pairs` pairs at once, their windows batched together: pair `i` is
/// `questions[i]` (`question_lens[i]` bytes) about `contexts[i]` (`context_lens[i]` bytes); a
/// NULL length array means those texts are NUL-terminated. Pair `i`'s answers are written to
/// `spans[i * n_best ...]`, `counts[i]` of them (`counts` holds `n_pairs` entries and may be
/// NULL only when `n_pairs` is 0). A pair's answers do not depend on the other pairs.
/// `*out_len` (may be NULL) receives `n_pairs * n_best`; if `capacity` is smaller, nothing
/// runs and `BERT_ERROR_BUFFER_TOO_SMALL` is returned (a size query: `spans` NULL, capacity
/// 0). Other rules as `bert_qa_answer`.
#[no_mangle]
pub unsafe extern "C" fn bert_qa_answer_batch(
    context: *mut bert_context,
    qa: *const bert_qa,
    questions: *const *const c_char,
    question_lens: *const usize,
    contexts: *const *const c_char,
    context_lens: *const usize,
    n_pairs: usize,
    params: *const bert_qa_params,
    spans: *mut bert_qa_span,
    capacity: usize,
    counts: *mut usize,
    out_len: *mut usize,
) -> bert_status {
    guard(|| {
        if let Some(l) = out_len.as_mut() {
            *l = 0;
        }
        let (c, qa) = qa_context(context, qa)?;
        let (n_best, opts) = options(params, qa.model.model.config().max_position_embeddings)?;
        // n_best is at most BERT_QA_MAX_N_BEST, but n_pairs is the caller's.
        let needed = n_pairs
            .checked_mul(n_best)
            .ok_or_else(|| Failure::invalid("n_pairs * n_best overflows"))?;
        if let Some(l) = out_len.as_mut() {
            *l = needed;
        }
        if needed > capacity {
            return Err(Failure::new(
                BERT_ERROR_BUFFER_TOO_SMALL,
                format!(
                    "{n_pairs} pairs of {n_best} answers need {needed} spans, capacity is \
                     {capacity}"
                ),
            ));
        }
        if n_pairs == 0 {
            return Ok(());
        }
        if spans.is_null() {
            return Err(Failure::null(&format!("spans (with capacity {capacity})")));
        }
        if counts.is_null() {
            return Err(Failure::null(&format!("counts (with n_pairs {n_pairs})")));
        }
        let q = args::text_array(questions, question_lens, n_pairs, "questions")?;
        let t = args::text_array(contexts, context_lens, n_pairs, "contexts")?;
        let pairs: Vec<(&str, &str)> = q.into_iter().zip(t).collect();
        let answers = answer_pairs(c, qa, &pairs, n_best, &opts)?;
        let out = std::slice::from_raw_parts_mut(spans, needed);
        let counts = std::slice::from_raw_parts_mut(counts, n_pairs);
        for (i, list) in answers.iter().enumerate() {
            for (o, a) in out[i * n_best..(i + 1) * n_best].iter_mut().zip(list) {
                *o = span(a);
            }
            counts[i] = list.len();
        }
        Ok(())
    })
}
