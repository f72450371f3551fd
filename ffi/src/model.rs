//! `bert_model`: the encoder weights and the tokenizer that goes with them.

use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};

use bert::config::{BertConfig, ConfigFlavor};
use bert::tokenizer::{Tokenizer, Vocab};
use bert::weights::{native, safetensors};
use bert::{BertModel, DType, ModelOptions};

use crate::args;
use crate::handles::Owner;
use crate::status::{bert_status, guard, Failure, FfiResult, BERT_ERROR_FORMAT};
use crate::tokenizer::bert_tokenizer;
use crate::version::{bert_backend, BERT_BACKEND_CPU, BERT_BACKEND_VULKAN};

/// Take `do_lower_case` from the model: the `.bert` header, else `tokenizer_config.json`
/// beside the model, else true (Google's default).
pub const BERT_LOWER_CASE_AUTO: i32 = -1;

/// Weight storage a model is loaded with (`bert_model_params.dtype`). Values are never
/// renumbered.
pub type bert_dtype = i32;
/// As the model file stores it: f32 checkpoints stay f32, an f16/int8 `.bert` file (written
/// by `bert convert --dtype`) stays f16/int8.
pub const BERT_DTYPE_AUTO: bert_dtype = 0;
/// f32 weights (the reference). An int8 `.bert` file cannot be loaded as f32
/// (`BERT_ERROR_UNSUPPORTED`): load the f32 original.
pub const BERT_DTYPE_F32: bert_dtype = 1;
/// f16 encoder kernels and word embeddings (converted on load from an f32 model).
pub const BERT_DTYPE_F16: bert_dtype = 2;
/// int8 encoder kernels (per-output-channel scales, activations quantized per row) and int8
/// word embeddings (per-row scales); converted on load from an f32 model. LayerNorm, softmax,
/// GELU and the pooler stay f32.
pub const BERT_DTYPE_INT8: bert_dtype = 3;

/// Options of `bert_model_load_file`, `bert_model_load_buffer` and
/// `bert_classifier_load_file`. Get them from `bert_model_default_params()`, then change
/// fields. Passing NULL means the defaults.
/// Fields are only ever appended: a struct from an older header (a smaller `size`) is
/// accepted and its missing fields take their defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_model_params {
    /// `sizeof(bert_model_params)`, set by `bert_model_default_params()`; checked.
    pub size: usize,
    /// `BERT_BACKEND_CPU` (default), or `BERT_BACKEND_VULKAN` (`bert_model_load_file`,
    /// `bert_classifier_load_file` and `bert_qa_load_file`; not `bert_model_load_buffer`):
    /// `BERT_ERROR_UNSUPPORTED` saying why where the build or the machine has no Vulkan
    /// device (see `bert_backend_available`).
    pub backend: bert_backend,
    /// `BERT_LOWER_CASE_AUTO` (default), 0 (cased) or 1 (uncased: lower-case, strip accents).
    pub do_lower_case: i32,
    /// NUL-terminated path of `vocab.txt`; NULL (default): the vocabulary stored in a `.bert`
    /// file, else `vocab.txt` beside the model. Only read during the call.
    pub vocab_path: *const c_char,
    /// For `bert_model_load_buffer` of safetensors bytes: the Hugging Face `config.json` text
    /// (`config_json_len` bytes, UTF-8). Ignored for `.bert` images and by `load_file`.
    pub config_json: *const c_char,
    pub config_json_len: usize,
    /// For `bert_model_load_buffer` of safetensors bytes: the `vocab.txt` text
    /// (`vocab_text_len` bytes, UTF-8). Ignored for `.bert` images and by `load_file`.
    pub vocab_text: *const c_char,
    pub vocab_text_len: usize,
    /// Weight storage: `BERT_DTYPE_AUTO` (default: as the file stores it), `BERT_DTYPE_F32`,
    /// `BERT_DTYPE_F16` or `BERT_DTYPE_INT8` (converted while loading).
    pub dtype: bert_dtype,
    /// 1: verify the checksums of a `.bert` file's f16 and int8 blocks while loading
    /// (`BERT_ERROR_FORMAT` naming the tensor if one does not match); it reads the whole
    /// file. 0 (default): those blocks stay untouched in the memory map until a layer uses
    /// them (f32 tensors and the header are always verified).
    pub verify_checksums: u8,
}

/// `bert_model_params` before `dtype` was appended (its size is still accepted).
#[repr(C)]
#[allow(dead_code)]
struct bert_model_params_v1 {
    size: usize,
    backend: bert_backend,
    do_lower_case: i32,
    vocab_path: *const c_char,
    config_json: *const c_char,
    config_json_len: usize,
    vocab_text: *const c_char,
    vocab_text_len: usize,
}

// SAFETY: repr(C), starts with its size, plain data (no bool); v1 is a prefix of this
// layout. The layout before `verify_checksums` has this size too (the field took its trailing
// padding, which `bert_model_default_params()` returned as 0): it reads as this one.
unsafe impl args::Versioned for bert_model_params {
    const NAME: &'static str = "bert_model_params";
    const LAYOUTS: &'static [usize] = &[
        std::mem::size_of::<bert_model_params_v1>(),
        std::mem::size_of::<bert_model_params>(),
    ];
}

/// A loaded model and its tokenizer. Immutable: share one between any number of threads (each
/// with its own `bert_context`). Free it with `bert_model_free` after every context made from
/// it, and every tokenizer borrowed from it with `bert_model_tokenizer`, is no longer used.
pub struct bert_model {
    pub(crate) model: Encoder,
    pub(crate) tokenizer: bert_tokenizer,
    /// The caller (`bert_model_load_*`) or the classifier it is borrowed from.
    pub(crate) owner: Owner,
}

/// A model's encoder, on the back end its params asked for.
pub(crate) enum Encoder {
    Cpu(BertModel),
    #[cfg(feature = "vulkan")]
    Vulkan(BertModel<bert::backend::Vulkan>),
}

impl Encoder {
    pub(crate) fn config(&self) -> &BertConfig {
        match self {
            Encoder::Cpu(m) => m.config(),
            #[cfg(feature = "vulkan")]
            Encoder::Vulkan(m) => m.config(),
        }
    }

    pub(crate) fn dtype(&self) -> DType {
        match self {
            Encoder::Cpu(m) => m.dtype(),
            #[cfg(feature = "vulkan")]
            Encoder::Vulkan(m) => m.dtype(),
        }
    }

    /// A context's state for this encoder's back end, with `threads` threads on the CPU.
    pub(crate) fn context(&self, threads: usize) -> crate::context::Ctx {
        match self {
            Encoder::Cpu(_) => crate::context::Ctx::Cpu(bert::Context::new(threads)),
            #[cfg(feature = "vulkan")]
            Encoder::Vulkan(m) => crate::context::Ctx::Vulkan(bert::Context::on(m.backend(), 1)),
        }
    }

    /// The back end's name, for logs.
    pub(crate) fn backend_name(&self) -> &'static str {
        match self {
            Encoder::Cpu(_) => "cpu",
            #[cfg(feature = "vulkan")]
            Encoder::Vulkan(_) => "vulkan",
        }
    }
}

impl bert_model {
    /// A CPU model and its tokenizer (borrowed from the model), freed by `owner`.
    pub(crate) fn new(model: BertModel, tokenizer: Tokenizer, owner: Owner) -> bert_model {
        bert_model::with_encoder(Encoder::Cpu(model), tokenizer, owner)
    }

    /// [`bert_model::new`] on any back end.
    pub(crate) fn with_encoder(model: Encoder, tokenizer: Tokenizer, owner: Owner) -> bert_model {
        bert_model {
            model,
            tokenizer: bert_tokenizer {
                tokenizer,
                owner: Owner::Model,
            },
            owner,
        }
    }
}

/// Default model params: CPU back end, automatic `do_lower_case`, vocabulary beside the model.
#[no_mangle]
pub extern "C" fn bert_model_default_params() -> bert_model_params {
    bert_model_params {
        size: std::mem::size_of::<bert_model_params>(),
        backend: BERT_BACKEND_CPU,
        do_lower_case: BERT_LOWER_CASE_AUTO,
        vocab_path: std::ptr::null(),
        config_json: std::ptr::null(),
        config_json_len: 0,
        vocab_text: std::ptr::null(),
        vocab_text_len: 0,
        dtype: BERT_DTYPE_AUTO,
        verify_checksums: 0,
    }
}

/// Reads the caller's params: this layout or an older, shorter one.
pub(crate) unsafe fn read_params(params: *const bert_model_params) -> FfiResult<bert_model_params> {
    args::params(params, bert_model_default_params())
}

fn dtype(p: &bert_model_params) -> FfiResult<Option<DType>> {
    match p.dtype {
        BERT_DTYPE_AUTO => Ok(None),
        BERT_DTYPE_F32 => Ok(Some(DType::F32)),
        BERT_DTYPE_F16 => Ok(Some(DType::F16)),
        BERT_DTYPE_INT8 => Ok(Some(DType::Int8)),
        v => Err(Failure::invalid(format!(
            "dtype is {v}: use BERT_DTYPE_AUTO, BERT_DTYPE_F32, BERT_DTYPE_F16 or \
             BERT_DTYPE_INT8"
        ))),
    }
}

/// The weights' options: dtype and checksums.
fn options(p: &bert_model_params) -> FfiResult<ModelOptions> {
    Ok(ModelOptions {
        dtype: dtype(p)?,
        verify_checksums: args::flag(p.verify_checksums, "verify_checksums")?,
    })
}

/// The options of `bert_classifier_load_file`: the back end, dtype and checksums. The
/// classifier file brings its vocabulary and casing, so options that would change them are
/// refused rather than ignored.
pub(crate) fn classifier_options(p: &bert_model_params) -> FfiResult<ModelOptions> {
    check_backend(p)?;
    if !p.vocab_path.is_null() {
        return Err(Failure::invalid(
            "vocab_path must be NULL for a classifier (its file holds the vocabulary it was \
             fine-tuned with)",
        ));
    }
    if p.do_lower_case != BERT_LOWER_CASE_AUTO {
        return Err(Failure::invalid(format!(
            "do_lower_case is {} but must be BERT_LOWER_CASE_AUTO for a classifier (its file \
             holds the casing it was fine-tuned with)",
            p.do_lower_case
        )));
    }
    options(p)
}

/// The options of `bert_qa_load_file`: the weights' options, and the vocabulary and casing
/// that override the model's (as `bert squad --vocab_file --do_lower_case` do).
pub(crate) unsafe fn qa_options(
    p: &bert_model_params,
) -> FfiResult<(ModelOptions, Option<PathBuf>, Option<bool>)> {
    check_backend(p)?;
    let lower = match p.do_lower_case {
        BERT_LOWER_CASE_AUTO => None,
        _ => Some(lower_case(p, || true)?),
    };
    Ok((options(p)?, vocab_override(p)?, lower))
}

/// Checks `p.backend`: `BERT_BACKEND_CPU`, or `BERT_BACKEND_VULKAN` in a build with it.
fn check_backend(p: &bert_model_params) -> FfiResult<()> {
    match p.backend {
        BERT_BACKEND_CPU => Ok(()),
        BERT_BACKEND_VULKAN if cfg!(feature = "vulkan") => Ok(()),
        BERT_BACKEND_VULKAN => Err(Failure::from(bert::Error::Unsupported(
            "BERT_BACKEND_VULKAN: this build has no Vulkan back end (cargo feature `vulkan`)"
                .into(),
        ))),
        b => Err(Failure::from(bert::Error::Unsupported(format!(
            "back end {b} is not available (see bert_backend_available)"
        )))),
    }
}

/// Where a model is loaded: the CPU, or a Vulkan device opened for it.
pub(crate) enum Device {
    Cpu,
    #[cfg(feature = "vulkan")]
    Vulkan(bert::backend::Vulkan),
}

/// The back end `p.backend` names, its device opened: `BERT_ERROR_UNSUPPORTED` saying why
/// where the build or the machine has none (the loader, the driver, no compute queue).
pub(crate) fn device(p: &bert_model_params) -> FfiResult<Device> {
    check_backend(p)?;
    #[cfg(feature = "vulkan")]
    if p.backend == BERT_BACKEND_VULKAN {
        use bert::backend::vulkan::{DeviceChoice, Vulkan};
        return Ok(Device::Vulkan(Vulkan::open(DeviceChoice::Any)?));
    }
    Ok(Device::Cpu)
}

/// Refuses any back end but the CPU's for `what` (not on the device yet).
fn cpu_only(p: &bert_model_params, what: &str) -> FfiResult<()> {
    check_backend(p)?;
    if p.backend != BERT_BACKEND_CPU {
        return Err(Failure::from(bert::Error::Unsupported(format!(
            "{what} runs on BERT_BACKEND_CPU only for now"
        ))));
    }
    Ok(())
}

fn lower_case(p: &bert_model_params, auto: impl FnOnce() -> bool) -> FfiResult<bool> {
    match p.do_lower_case {
        BERT_LOWER_CASE_AUTO => Ok(auto()),
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Failure::invalid(format!(
            "do_lower_case is {v}: use BERT_LOWER_CASE_AUTO, 0 or 1"
        ))),
    }
}

unsafe fn vocab_override(p: &bert_model_params) -> FfiResult<Option<PathBuf>> {
    if p.vocab_path.is_null() {
        return Ok(None);
    }
    Ok(Some(PathBuf::from(args::c_str(
        p.vocab_path,
        "params.vocab_path",
    )?)))
}

fn tokenizer_from_lines(lines: &[String], lower: bool) -> FfiResult<Tokenizer> {
    let vocab = Vocab::from_tokens(lines.iter().map(String::as_str))?;
    Ok(Tokenizer::new(vocab, lower)?)
}

unsafe fn load_file(path: &str, p: &bert_model_params) -> FfiResult<bert_model> {
    check_backend(p)?;
    let opts = options(p)?;
    let path = Path::new(path);
    if !path.exists() {
        return Err(bert::Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        )
        .into());
    }
    let explicit_lower = match p.do_lower_case {
        BERT_LOWER_CASE_AUTO => None,
        _ => Some(lower_case(p, || true)?),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let known = path.is_dir()
        || native::is_native_file(path)
        || name.ends_with(".safetensors")
        || name.ends_with(".index")
        || name.contains(".ckpt");
    if !known {
        return Err(Failure::new(
            BERT_ERROR_FORMAT,
            format!(
                "{}: not a model (expected a model directory, a .bert file, a .safetensors \
                 file or a TF checkpoint)",
                path.display()
            ),
        ));
    }
    let vocab = vocab_override(p)?;
    let (encoder, tokenizer) = match device(p)? {
        Device::Cpu => {
            let (m, t) = pipeline_parts(bert::Cpu, path, explicit_lower, &opts, vocab)?;
            (Encoder::Cpu(m), t)
        }
        #[cfg(feature = "vulkan")]
        Device::Vulkan(vk) => {
            let (m, t) = pipeline_parts(vk, path, explicit_lower, &opts, vocab)?;
            (Encoder::Vulkan(m), t)
        }
    };
    Ok(bert_model::with_encoder(encoder, tokenizer, Owner::Caller))
}

/// The pipeline finds the vocabulary (stored in a .bert file, else vocab.txt beside the
/// model) and the casing (.bert header, tokenizer_config.json, else true); an explicit
/// vocabulary replaces it.
fn pipeline_parts<B: bert::Backend>(
    backend: B,
    path: &Path,
    explicit_lower: Option<bool>,
    opts: &ModelOptions,
    vocab: Option<PathBuf>,
) -> FfiResult<(BertModel<B>, Tokenizer)> {
    let mut pipeline = bert::Pipeline::load_on(backend, path, explicit_lower, opts)?;
    if let Some(v) = vocab {
        let lower = explicit_lower.unwrap_or(pipeline.tokenizer().do_lower_case());
        pipeline = pipeline.with_tokenizer(Tokenizer::from_vocab_file(v, lower)?)?;
    }
    Ok(pipeline.into_parts())
}

unsafe fn load_buffer(bytes: &[u8], p: &bert_model_params) -> FfiResult<bert_model> {
    cpu_only(p, "bert_model_load_buffer")?;
    let dtype = dtype(p)?;
    let verify = args::flag(p.verify_checksums, "verify_checksums")?;
    let vocab_path = vocab_override(p)?;
    let name = Path::new("<buffer>");
    let config_text = args::text(p.config_json, p.config_json_len, "params.config_json")?;
    let vocab_text = args::text(p.vocab_text, p.vocab_text_len, "params.vocab_text")?;
    let vocab_given = |lower: bool| -> FfiResult<Option<Tokenizer>> {
        if let Some(v) = &vocab_path {
            return Ok(Some(Tokenizer::from_vocab_file(v, lower)?));
        }
        if !vocab_text.is_empty() {
            return Ok(Some(Tokenizer::new(Vocab::from_text(vocab_text)?, lower)?));
        }
        Ok(None)
    };
    if bytes.starts_with(native::MAGIC) {
        let m = native::NativeModel::from_bytes(bytes.to_vec(), name)?;
        if verify {
            m.verify()?;
        }
        let model = BertModel::from_weights_as(m.config().clone(), m.weights()?, dtype)?;
        let lower = lower_case(p, || m.do_lower_case())?;
        let tokenizer = match vocab_given(lower)? {
            Some(t) => t,
            None if !m.vocab().is_empty() => tokenizer_from_lines(m.vocab(), lower)?,
            None => {
                return Err(bert::Error::Vocab(
                    "the .bert image stores no vocabulary: set params.vocab_text or vocab_path"
                        .into(),
                )
                .into())
            }
        };
        return Ok(bert_model::new(model, tokenizer, Owner::Caller));
    }
    let looks_safetensors = bytes.len() > 9
        && u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()) > 1
        && bytes[8] == b'{';
    if !looks_safetensors {
        return Err(Failure::new(
            BERT_ERROR_FORMAT,
            "buffer is not a model (neither a .bert image nor safetensors bytes)",
        ));
    }
    if config_text.is_empty() {
        return Err(bert::Error::Config(
            "safetensors bytes carry no config: set params.config_json to config.json's text"
                .into(),
        )
        .into());
    }
    let config = BertConfig::from_json(config_text, Some(ConfigFlavor::HuggingFace))?;
    let weights = safetensors::parse(bytes, name)?;
    let model = BertModel::from_weights_as(config, weights, dtype)?;
    let lower = lower_case(p, || true)?;
    let tokenizer = vocab_given(lower)?.ok_or_else(|| {
        Failure::from(bert::Error::Vocab(
            "safetensors bytes carry no vocabulary: set params.vocab_text or vocab_path".into(),
        ))
    })?;
    Ok(bert_model::new(model, tokenizer, Owner::Caller))
}

/// Reports a loaded model to the log callback.
fn log_loaded(what: &str, m: &bert_model) {
    crate::log::log(crate::log::BERT_LOG_INFO, || {
        let c = m.model.config();
        format!(
            "model {what}: {} layers, hidden {}, {} heads, vocabulary {}, do_lower_case {}, \
             back end {}, weights {:?}",
            c.num_hidden_layers,
            c.hidden_size,
            c.num_attention_heads,
            m.tokenizer.tokenizer.vocab().len(),
            m.tokenizer.tokenizer.do_lower_case(),
            m.model.backend_name(),
            m.model.dtype()
        )
    });
}

/// Loads a model from `path` (NUL-terminated UTF-8): a directory (Hugging Face `config.json` +
/// `model.safetensors`, or Google `bert_config.json` + `bert_model.ckpt.*`), a `.safetensors`
/// file or TF checkpoint (config read from beside it), or a libbert `.bert` file. The
/// vocabulary comes from the `.bert` file, else `vocab.txt` beside the model (see params).
/// `params` may be NULL (defaults). On success `*out_model` is the new model; on failure it is
/// set to NULL and the status says why (`BERT_ERROR_IO`, `BERT_ERROR_FORMAT` for a file that is
/// not a model, `BERT_ERROR_CONFIG`, `BERT_ERROR_SHAPE`, `BERT_ERROR_VOCAB`, ...).
#[no_mangle]
pub unsafe extern "C" fn bert_model_load_file(
    path: *const c_char,
    params: *const bert_model_params,
    out_model: *mut *mut bert_model,
) -> bert_status {
    guard(|| {
        let out = args::out(out_model, "out_model")?;
        *out = std::ptr::null_mut();
        let path = args::c_str(path, "path")?;
        let p = read_params(params)?;
        let m = load_file(path, &p)?;
        log_loaded(path, &m);
        *out = Box::into_raw(Box::new(m));
        Ok(())
    })
}

/// Loads a model from `len` bytes at `data`: a `.bert` image (config, vocabulary and
/// `do_lower_case` inside) or the bytes of a `model.safetensors`, which need
/// `params->config_json` and a vocabulary (`params->vocab_text` or `params->vocab_path`).
/// The bytes are copied: the caller may free them when the call returns. On failure
/// `*out_model` is NULL (`BERT_ERROR_FORMAT` for bytes that are not a model).
#[no_mangle]
pub unsafe extern "C" fn bert_model_load_buffer(
    data: *const c_void,
    len: usize,
    params: *const bert_model_params,
    out_model: *mut *mut bert_model,
) -> bert_status {
    guard(|| {
        let out = args::out(out_model, "out_model")?;
        *out = std::ptr::null_mut();
        let bytes = args::bytes(data.cast(), len, "data")?;
        let p = read_params(params)?;
        let m = load_buffer(bytes, &p)?;
        log_loaded("<buffer>", &m);
        *out = Box::into_raw(Box::new(m));
        Ok(())
    })
}

/// Frees a model. NULL is a no-op. No context made from it may be used afterwards. The model
/// borrowed from a classifier (`bert_classifier_model`) or a question answerer
/// (`bert_qa_model`) is freed with it: passing it here frees nothing and sets
/// `bert_last_error()`.
#[no_mangle]
pub unsafe extern "C" fn bert_model_free(model: *mut bert_model) {
    let Some(m) = model.as_ref() else {
        return;
    };
    if !m.owner.may_free("bert_model_free") {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(Box::from_raw(model));
    }));
}

/// Hidden size H of the model (the length of one embedding); 0 if `model` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_model_hidden_size(model: *const bert_model) -> usize {
    model.as_ref().map_or(0, |m| m.model.config().hidden_size)
}

/// Number of encoder layers L; 0 if `model` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_model_num_layers(model: *const bert_model) -> usize {
    model
        .as_ref()
        .map_or(0, |m| m.model.config().num_hidden_layers)
}

/// Longest input the model accepts, `[CLS]` and `[SEP]` included
/// (`max_position_embeddings`); 0 if `model` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_model_max_seq_length(model: *const bert_model) -> usize {
    model
        .as_ref()
        .map_or(0, |m| m.model.config().max_position_embeddings)
}

/// The model's tokenizer, borrowed: valid as long as the model, freed with it
/// (`bert_tokenizer_free` on it frees nothing and sets `bert_last_error()`). NULL if `model`
/// is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_model_tokenizer(model: *const bert_model) -> *const bert_tokenizer {
    model
        .as_ref()
        .map_or(std::ptr::null(), |m| &m.tokenizer as *const bert_tokenizer)
}
