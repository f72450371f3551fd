//! `bert_context`: per-thread state (thread budget, scratch, output buffers) and the calls
//! that run the model: `bert_encode`, `bert_embed`, `bert_hidden_states`.

use std::ffi::{c_char, c_void};

use bert::tokenizer::{EncodeOptions, Encoding, Padding};
use bert::{Context, Inputs, Outputs, Pooling};

use crate::args;
use crate::handles::MadeIn;
use crate::model::{bert_model, Encoder};
use crate::status::{bert_status, guard, Failure, FfiResult, BERT_ERROR_BUFFER_TOO_SMALL};

/// Options of `bert_context_new`. Get them from `bert_context_default_params()`. NULL means
/// the defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_context_params {
    /// `sizeof(bert_context_params)`, set by `bert_context_default_params()`; checked.
    pub size: usize,
    /// Threads the context's kernels use, the calling thread included; 0 (default): all cores;
    /// at most `BERT_MAX_THREADS`.
    pub n_threads: u32,
    /// Inputs are truncated to this many positions (`[CLS]`/`[SEP]` included) by
    /// `bert_embed` and `bert_hidden_states`, and by `bert_encode` unless its params say
    /// otherwise; 0 (default): the model's `max_position_embeddings`.
    pub max_seq_length: u32,
    /// Asked before each encoder layer of every call that runs the model (`bert_embed`,
    /// `bert_hidden_states`, `bert_classify`) whether to stop; returning nonzero ends the call
    /// with `BERT_ERROR_CANCELLED` and writes no output. Called on the thread of the call.
    /// NULL (default): never stop.
    pub abort_callback: bert_abort_callback,
    /// Passed to `abort_callback`; must stay valid as long as the context.
    pub abort_user_data: *mut c_void,
}

/// Most threads a context or trainer may be given (`n_threads`); more is
/// `BERT_ERROR_INVALID_ARGUMENT`.
pub const BERT_MAX_THREADS: u32 = 1024;

/// `bert_context_params` before the abort callback was appended (its size is still accepted).
#[repr(C)]
#[allow(dead_code)]
struct bert_context_params_v1 {
    size: usize,
    n_threads: u32,
    max_seq_length: u32,
}

// SAFETY: repr(C), starts with its size, plain data (the callback is a nullable function
// pointer); v1 is a prefix of this layout.
unsafe impl args::Versioned for bert_context_params {
    const NAME: &'static str = "bert_context_params";
    const LAYOUTS: &'static [usize] = &[
        std::mem::size_of::<bert_context_params_v1>(),
        std::mem::size_of::<bert_context_params>(),
    ];
}

/// See `bert_context_params.abort_callback`: return nonzero to stop, 0 to go on.
pub type bert_abort_callback = Option<unsafe extern "C" fn(user_data: *mut c_void) -> i32>;

/// The application's abort callback and its data, as the core's abort hook.
struct AbortCallback {
    callback: unsafe extern "C" fn(*mut c_void) -> i32,
    user_data: *mut c_void,
}

// SAFETY: the header makes the application responsible for the callback and its data being
// usable from whichever thread uses the context (one thread at a time).
unsafe impl Send for AbortCallback {}

impl AbortCallback {
    fn ask(&self) -> bool {
        // SAFETY: a function pointer the application gave for this call shape.
        unsafe { (self.callback)(self.user_data) != 0 }
    }
}

/// How `bert_embed` reduces the last layer to one vector per text. Values never renumbered.
pub type bert_pooling = i32;
/// The last layer at `[CLS]` (position 0).
pub const BERT_POOLING_CLS: bert_pooling = 0;
/// Mean over real tokens (sentence-transformers; all-MiniLM-L6-v2 uses this).
pub const BERT_POOLING_MEAN: bert_pooling = 1;
/// Element-wise max over real tokens.
pub const BERT_POOLING_MAX: bert_pooling = 2;
/// The pooler output `tanh(dense([CLS]))`; `BERT_ERROR_UNSUPPORTED` if the model has none.
pub const BERT_POOLING_POOLER: bert_pooling = 3;

/// Padding of `bert_encode`. Values never renumbered.
pub type bert_padding = i32;
/// No padding: as many positions as tokens.
pub const BERT_PADDING_NONE: bert_padding = 0;
/// Pad with `[PAD]` (attention 0) to exactly `max_seq_length` positions (Google's inputs).
pub const BERT_PADDING_FIXED: bert_padding = 1;

/// Options of `bert_encode`. Get them from `bert_encode_default_params()`; NULL means the
/// defaults. Fields are only ever appended: a struct from an older header is accepted.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_encode_params {
    /// `sizeof(bert_encode_params)`, set by `bert_encode_default_params()`; checked.
    pub size: usize,
    /// Truncate to this many positions (pairs as Google's `_truncate_seq_pair`), 2 up to the
    /// model's `max_position_embeddings`; 0 (default): the context's `max_seq_length`.
    pub max_seq_length: u32,
    /// `BERT_PADDING_NONE` (default) or `BERT_PADDING_FIXED`.
    pub padding: bert_padding,
}

// SAFETY: repr(C), starts with its size, plain data; one layout so far (an appended field
// adds this one's size to the list).
unsafe impl args::Versioned for bert_encode_params {
    const NAME: &'static str = "bert_encode_params";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_encode_params>()];
}

/// The result of `bert_encode`: read-only arrays of `n_tokens` values each, owned by the
/// context and valid until the next call on that context or its `bert_context_free`. Set
/// `size` before the call: `bert_encoding_view v = {.size = sizeof v};`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_encoding_view {
    /// `sizeof(bert_encoding_view)`, set by the caller; the library writes no further.
    pub size: usize,
    /// Number of positions, `[CLS]`, `[SEP]` and padding included.
    pub n_tokens: usize,
    /// Token ids (`input_ids`).
    pub ids: *const u32,
    /// Segment ids: 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`, 0 for padding.
    pub type_ids: *const u32,
    /// 1 for real positions, 0 for padding (`input_mask`).
    pub attention_mask: *const u32,
    /// 1 for `[CLS]`, `[SEP]`, `[PAD]`; 0 for tokens of the texts.
    pub special_tokens_mask: *const u32,
    /// `2 * n_tokens` byte offsets: start and end (exclusive) of each token in its own text
    /// (A or B, see `type_ids`); 0, 0 for special tokens.
    pub offsets: *const u64,
}

// SAFETY: repr(C), starts with its size, plain data (pointers); one layout so far.
unsafe impl args::Versioned for bert_encoding_view {
    const NAME: &'static str = "bert_encoding_view";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_encoding_view>()];
}

/// The result of `bert_hidden_states`: `data` holds `n_layers * n_tokens * hidden_size`
/// floats, `[n_layers][n_tokens][hidden_size]` row-major; layer 0 is the embedding output and
/// layer `i` the output of encoder layer `i - 1` (`n_layers` = L + 1). Owned by the context,
/// valid until the next call on that context or its `bert_context_free`. Set `size` before
/// the call: `bert_hidden_states_view v = {.size = sizeof v};`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_hidden_states_view {
    /// `sizeof(bert_hidden_states_view)`, set by the caller; the library writes no further.
    pub size: usize,
    pub n_layers: usize,
    pub n_tokens: usize,
    pub hidden_size: usize,
    pub data: *const f32,
}

// SAFETY: repr(C), starts with its size, plain data; one layout so far.
unsafe impl args::Versioned for bert_hidden_states_view {
    const NAME: &'static str = "bert_hidden_states_view";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_hidden_states_view>()];
}

/// Per-thread state for running a model: thread budget, scratch and output buffers. Use one
/// context from one thread at a time (it may move between threads); create one per thread to
/// run a shared model in parallel. The model must outlive the context.
pub struct bert_context {
    pub(crate) model: *const bert_model,
    /// Its pool's workers exist only in this process (see `bert_context_free`).
    made_in: MadeIn,
    pub(crate) ctx: Ctx,
    pub(crate) max_seq_length: usize,
    pub(crate) ids: Vec<u32>,
    pub(crate) type_ids: Vec<u32>,
    pub(crate) mask: Vec<u32>,
    special: Vec<u32>,
    offsets: Vec<u64>,
    hidden: Vec<f32>,
}

/// A context's executor and buffers, on its model's back end. One per `bert_context`, which
/// is boxed: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Ctx {
    Cpu(Context),
    #[cfg(feature = "vulkan")]
    Vulkan(Context<bert::backend::Vulkan>),
}

impl Ctx {
    fn threads(&self) -> usize {
        match self {
            Ctx::Cpu(c) => c.threads(),
            #[cfg(feature = "vulkan")]
            Ctx::Vulkan(c) => c.threads(),
        }
    }

    fn set_abort(&mut self, hook: Option<bert::model::AbortHook>) {
        match self {
            Ctx::Cpu(c) => c.set_abort(hook),
            #[cfg(feature = "vulkan")]
            Ctx::Vulkan(c) => c.set_abort(hook),
        }
    }
}

impl bert_context {
    /// The model, borrowed independently of `self` (so the context's buffers can be borrowed
    /// mutably next to it).
    pub(crate) fn model<'m>(&self) -> &'m bert_model {
        // SAFETY: `bert_context_new` checked it non-NULL; the caller keeps the model alive
        // for the context's lifetime (documented rule), and it is never mutated.
        unsafe { &*self.model }
    }

    /// Flattens encodings (all of the same length) into the context's input buffers.
    pub(crate) fn set_inputs(&mut self, encodings: &[Encoding]) {
        for v in [
            &mut self.ids,
            &mut self.type_ids,
            &mut self.mask,
            &mut self.special,
        ] {
            v.clear();
        }
        self.offsets.clear();
        for e in encodings {
            self.ids.extend_from_slice(&e.ids);
            self.type_ids.extend_from_slice(&e.type_ids);
            self.mask.extend(e.attention_mask.iter().map(|&m| m as u32));
            self.special
                .extend(e.special_tokens_mask.iter().map(|&m| m as u32));
            for o in &e.offsets {
                let (s, t) = o.unwrap_or((0, 0));
                self.offsets.extend([s as u64, t as u64]);
            }
        }
    }
}

/// Default context params: all cores, the model's maximum sequence length.
#[no_mangle]
pub extern "C" fn bert_context_default_params() -> bert_context_params {
    bert_context_params {
        size: std::mem::size_of::<bert_context_params>(),
        n_threads: 0,
        max_seq_length: 0,
        abort_callback: None,
        abort_user_data: std::ptr::null_mut(),
    }
}

/// Default encode params: the context's `max_seq_length`, no padding.
#[no_mangle]
pub extern "C" fn bert_encode_default_params() -> bert_encode_params {
    bert_encode_params {
        size: std::mem::size_of::<bert_encode_params>(),
        max_seq_length: 0,
        padding: BERT_PADDING_NONE,
    }
}

/// Creates a context for `model` (which must outlive it). `params` may be NULL. On failure
/// `*out_context` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_context_new(
    model: *const bert_model,
    params: *const bert_context_params,
    out_context: *mut *mut bert_context,
) -> bert_status {
    guard(|| {
        let out = args::out(out_context, "out_context")?;
        *out = std::ptr::null_mut();
        let m = args::handle(model, "model")?;
        let p = args::params(params, bert_context_default_params())?;
        let max = m.model.config().max_position_embeddings;
        let max_seq_length = match p.max_seq_length as usize {
            0 => max,
            n if n < 2 || n > max => {
                return Err(Failure::invalid(format!(
                    "max_seq_length {n} is not in 2..={max} (the model's max_position_embeddings)"
                )))
            }
            n => n,
        };
        let mut ctx = m.model.context(args::threads(p.n_threads, "n_threads")?);
        if let Some(callback) = p.abort_callback {
            let a = AbortCallback {
                callback,
                user_data: p.abort_user_data,
            };
            ctx.set_abort(Some(Box::new(move || a.ask())));
        }
        crate::log::log(crate::log::BERT_LOG_INFO, || {
            format!(
                "context: back end {}, {:?} GEMM kernels, {} threads, max_seq_length {}{}",
                m.model.backend_name(),
                bert::backend::cpu::Isa::detect(),
                ctx.threads(),
                max_seq_length,
                if p.abort_callback.is_some() {
                    ", abort callback set"
                } else {
                    ""
                }
            )
        });
        *out = Box::into_raw(Box::new(bert_context {
            model,
            made_in: MadeIn::here(),
            ctx,
            max_seq_length,
            ids: Vec::new(),
            type_ids: Vec::new(),
            mask: Vec::new(),
            special: Vec::new(),
            offsets: Vec::new(),
            hidden: Vec::new(),
        }));
        Ok(())
    })
}

/// The context of a call: not NULL, and made in this process.
pub(crate) unsafe fn context<'a>(p: *mut bert_context) -> FfiResult<&'a mut bert_context> {
    let c = args::handle_mut(p, "context")?;
    c.made_in.check("context")?;
    Ok(c)
}

/// Frees a context, joining its worker threads, and every view it returned. NULL is a
/// no-op. In a child process after `fork` a context of the parent frees nothing (its workers
/// do not exist there) and sets `bert_last_error()`.
#[no_mangle]
pub unsafe extern "C" fn bert_context_free(context: *mut bert_context) {
    let Some(c) = context.as_ref() else {
        return;
    };
    if !c.made_in.may_free("bert_context_free") {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(Box::from_raw(context));
    }));
}

/// Number of threads the context's kernels use; 0 if `context` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_context_n_threads(context: *const bert_context) -> u32 {
    context.as_ref().map_or(0, |c| c.ctx.threads() as u32)
}

/// Encodes `[CLS] A [SEP]` or, when `text_b` is not NULL, `[CLS] A [SEP] B [SEP]` (`text_b`
/// NULL with `len_b` 0: no B; NULL with another length: `BERT_ERROR_NULL_ARGUMENT`) with the
/// model's tokenizer: ids, type ids, masks and offsets into a view owned by the context (see
/// `bert_encoding_view`; valid until the next call on the context). Texts are `(ptr, len)`
/// UTF-8. `params` may be NULL. On failure `*out` is zeroed (all but its `size`). An unknown
/// padding or a `max_seq_length` outside 2..=`max_position_embeddings` is
/// `BERT_ERROR_INVALID_ARGUMENT` (inputs are truncated before they are padded, so fixed
/// padding never meets a longer input).
#[no_mangle]
pub unsafe extern "C" fn bert_encode(
    context: *mut bert_context,
    text_a: *const c_char,
    len_a: usize,
    text_b: *const c_char,
    len_b: usize,
    params: *const bert_encode_params,
    out: *mut bert_encoding_view,
) -> bert_status {
    guard(|| {
        let view = args::output(out, "out")?;
        let c = self::context(context)?;
        let p = args::params(params, bert_encode_default_params())?;
        let a = args::text(text_a, len_a, "text_a")?;
        let b = args::optional_text(text_b, len_b, "text_b")?;
        let limit = c.model().model.config().max_position_embeddings;
        let max = match p.max_seq_length as usize {
            0 => c.max_seq_length,
            n if n < 2 || n > limit => {
                return Err(Failure::invalid(format!(
                    "max_seq_length {n} is not in 2..={limit} (the model's \
                     max_position_embeddings)"
                )))
            }
            n => n,
        };
        let padding = match p.padding {
            BERT_PADDING_NONE => Padding::None,
            BERT_PADDING_FIXED => Padding::Fixed(max),
            v => {
                return Err(Failure::invalid(format!(
                    "padding {v} is not a bert_padding"
                )))
            }
        };
        let opts = EncodeOptions {
            max_seq_length: Some(max),
            padding,
        };
        let e = c.model().tokenizer.tokenizer.encode(a, b, &opts)?;
        c.set_inputs(std::slice::from_ref(&e));
        view.write(&bert_encoding_view {
            size: std::mem::size_of::<bert_encoding_view>(),
            n_tokens: e.len(),
            ids: c.ids.as_ptr(),
            type_ids: c.type_ids.as_ptr(),
            attention_mask: c.mask.as_ptr(),
            special_tokens_mask: c.special.as_ptr(),
            offsets: c.offsets.as_ptr(),
        });
        Ok(())
    })
}

fn pooling_of(p: bert_pooling) -> FfiResult<Pooling> {
    Ok(match p {
        BERT_POOLING_CLS => Pooling::Cls,
        BERT_POOLING_MEAN => Pooling::Mean,
        BERT_POOLING_MAX => Pooling::Max,
        BERT_POOLING_POOLER => Pooling::Pooler,
        v => {
            return Err(Failure::invalid(format!(
                "pooling {v} is not a bert_pooling"
            )))
        }
    })
}

/// Sentence embeddings of `n_texts` texts: text `i` is `lens[i]` bytes of UTF-8 at `texts[i]`
/// (if `lens` is NULL every text is NUL-terminated). Each text is encoded as `[CLS] text
/// [SEP]` (truncated to the context's `max_seq_length`), the batch runs through the model, and
/// the last layer is reduced by `pooling` and, if `normalize` is 1 (not 0), scaled to unit L2
/// norm. The result, `n_texts * hidden_size` floats (`[n_texts][hidden_size]`), is written to
/// `out`, which holds `out_capacity` floats; `*out_len` (may be NULL) receives `n_texts *
/// hidden_size`. If `out_capacity` is smaller, nothing runs and `BERT_ERROR_BUFFER_TOO_SMALL`
/// is returned (`out` NULL with capacity 0 is a size query). A text's embedding does not
/// depend on the others in the batch.
#[no_mangle]
pub unsafe extern "C" fn bert_embed(
    context: *mut bert_context,
    texts: *const *const c_char,
    lens: *const usize,
    n_texts: usize,
    pooling: bert_pooling,
    normalize: u8,
    out: *mut f32,
    out_capacity: usize,
    out_len: *mut usize,
) -> bert_status {
    guard(|| {
        if let Some(l) = out_len.as_mut() {
            *l = 0;
        }
        let c = self::context(context)?;
        let pooling = pooling_of(pooling)?;
        let normalize = args::flag(normalize, "normalize")?;
        let h = c.model().model.config().hidden_size;
        let needed = n_texts
            .checked_mul(h)
            .ok_or_else(|| Failure::invalid("n_texts * hidden_size overflows"))?;
        if let Some(l) = out_len.as_mut() {
            *l = needed;
        }
        if needed > out_capacity {
            return Err(Failure::new(
                BERT_ERROR_BUFFER_TOO_SMALL,
                format!(
                    "{n_texts} embeddings need {needed} floats, out_capacity is {out_capacity}"
                ),
            ));
        }
        if n_texts == 0 {
            return Ok(());
        }
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        if texts.is_null() {
            return Err(Failure::null("texts"));
        }
        let strs: Vec<(&str, Option<&str>)> = args::text_array(texts, lens, n_texts, "texts")?
            .into_iter()
            .map(|s| (s, None))
            .collect();
        let opts = EncodeOptions {
            max_seq_length: Some(c.max_seq_length),
            padding: Padding::Longest,
        };
        let model = c.model();
        let encodings = model.tokenizer.tokenizer.encode_batch(&strs, &opts, 1)?;
        let seq = encodings[0].len();
        c.set_inputs(&encodings);
        let model = c.model();
        let inputs = Inputs {
            input_ids: &c.ids,
            segment_ids: &c.type_ids,
            input_mask: &c.mask,
            batch: n_texts,
            seq,
        };
        let out = std::slice::from_raw_parts_mut(out, needed);
        match (&model.model, &mut c.ctx) {
            (Encoder::Cpu(m), Ctx::Cpu(x)) => {
                out.copy_from_slice(&m.embed(x, &inputs, pooling, normalize)?[..needed])
            }
            #[cfg(feature = "vulkan")]
            (Encoder::Vulkan(m), Ctx::Vulkan(x)) => {
                out.copy_from_slice(&m.embed(x, &inputs, pooling, normalize)?[..needed])
            }
            #[cfg(feature = "vulkan")]
            _ => return Err(Failure::invalid("the context was made for another model")),
        }
        Ok(())
    })
}

/// Every layer's hidden states for one text (`len` bytes of UTF-8), encoded as
/// `[CLS] text [SEP]` and truncated to the context's `max_seq_length`, as a view owned by the
/// context (see `bert_hidden_states_view`). On failure `*out` is zeroed (all but its `size`).
#[no_mangle]
pub unsafe extern "C" fn bert_hidden_states(
    context: *mut bert_context,
    text: *const c_char,
    len: usize,
    out: *mut bert_hidden_states_view,
) -> bert_status {
    guard(|| {
        let view = args::output(out, "out")?;
        let c = self::context(context)?;
        let text = args::text(text, len, "text")?;
        let opts = EncodeOptions {
            max_seq_length: Some(c.max_seq_length),
            padding: Padding::None,
        };
        let e = c.model().tokenizer.tokenizer.encode(text, None, &opts)?;
        c.set_inputs(std::slice::from_ref(&e));
        let model = c.model();
        let inputs = Inputs {
            input_ids: &c.ids,
            segment_ids: &c.type_ids,
            input_mask: &c.mask,
            batch: 1,
            seq: e.len(),
        };
        let layers = model.model.config().num_hidden_layers;
        let h = model.model.config().hidden_size;
        c.hidden.clear();
        match (&model.model, &mut c.ctx) {
            (Encoder::Cpu(m), Ctx::Cpu(x)) => {
                all_layers(&m.forward(x, &inputs, true)?, layers, &mut c.hidden)
            }
            #[cfg(feature = "vulkan")]
            (Encoder::Vulkan(m), Ctx::Vulkan(x)) => {
                all_layers(&m.forward(x, &inputs, true)?, layers, &mut c.hidden)
            }
            #[cfg(feature = "vulkan")]
            _ => return Err(Failure::invalid("the context was made for another model")),
        }
        view.write(&bert_hidden_states_view {
            size: std::mem::size_of::<bert_hidden_states_view>(),
            n_layers: layers + 1,
            n_tokens: e.len(),
            hidden_size: h,
            data: c.hidden.as_ptr(),
        });
        Ok(())
    })
}

/// The embedding output then every layer, end to end, into `hidden`.
fn all_layers<B: bert::Backend>(out: &Outputs<'_, B>, layers: usize, hidden: &mut Vec<f32>) {
    if let Some(emb) = out.read_embedding_output() {
        hidden.extend_from_slice(&emb);
    }
    for l in 0..layers {
        if let Some(x) = out.read_encoder_layer(l) {
            hidden.extend_from_slice(&x);
        }
    }
}
