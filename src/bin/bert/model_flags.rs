//! Finding the model from the command line: `--model PATH` (a directory or file in any format
//! libbert reads), or Google's trio `--bert_config_file`, `--init_checkpoint`, `--vocab_file`;
//! `--dtype f32|f16|int8` converts the weights while loading (default: as stored);
//! `--mmap=false` reads a `.bert` file into memory instead of mapping it, so that it may be
//! rewritten in place while the command runs; `--backend cpu|vulkan|auto` picks where the
//! model runs (default cpu; auto: a Vulkan GPU if there is one, else the CPU), for these
//! commands and for the prediction paths of `classify` and `squad` ([`on_backend`]).

use bert::config::BertConfig;
use std::path::Path;

use bert::backend::{Backend, Cpu};
use bert::tokenizer::{Tokenizer, Vocab};
use bert::weights::native::{self, NativeModel};
use bert::weights::quantize;
use bert::weights::{safetensors, tf_checkpoint};
use bert::{BertModel, DType, ModelOptions, Pipeline};

use crate::flags::Flags;

/// What a command does with its pipeline, whichever back end it is on.
pub trait OnBackend {
    fn run<B: Backend>(self, pipeline: Pipeline<B>) -> Result<(), String>;
}

/// What a command does on a back end, whichever it is (it loads its own model there).
pub trait OnDevice {
    fn run<B: Backend>(self, backend: B) -> Result<(), String>;
}

/// `--backend`'s value (default cpu), checked: a command reads it before `Flags::finish`
/// and opens it with [`on_backend`] once its inputs are read.
pub fn backend_name(flags: &Flags) -> Result<&str, String> {
    match flags.get("backend").unwrap_or("cpu") {
        name @ ("cpu" | "vulkan" | "auto") => Ok(name),
        other => Err(format!("--backend {other:?}: expected cpu, vulkan or auto")),
    }
}

/// Runs `job` on the back end `name` ([`backend_name`]) names. `vulkan` fails when there
/// is no Vulkan device (or this build has no Vulkan back end), saying why; `auto` then says
/// so on stderr and uses the CPU.
pub fn on_backend(name: &str, job: impl OnDevice) -> Result<(), String> {
    match name {
        "cpu" => job.run(Cpu),
        "vulkan" => {
            #[cfg(feature = "vulkan")]
            {
                use bert::backend::vulkan::{DeviceChoice, Vulkan};
                let vk = Vulkan::open(DeviceChoice::Any)
                    .map_err(|e| format!("--backend vulkan: {e}"))?;
                job.run(vk)
            }
            #[cfg(not(feature = "vulkan"))]
            Err(
                "--backend vulkan: this build has no Vulkan back end (cargo feature \
                 `vulkan`)"
                    .into(),
            )
        }
        "auto" => {
            #[cfg(feature = "vulkan")]
            {
                use bert::backend::vulkan::{DeviceChoice, Vulkan};
                match Vulkan::open(DeviceChoice::Gpu) {
                    Ok(vk) => return job.run(vk),
                    Err(e) => eprintln!("bert: --backend auto: using the CPU ({e})"),
                }
            }
            job.run(Cpu)
        }
        other => Err(format!("--backend {other:?}: expected cpu, vulkan or auto")),
    }
}

/// Loads the model the flags name on the back end `--backend` names, checks that no flag
/// is left unread, and runs `job` with it (see [`on_backend`]).
pub fn run_on_backend(
    flags: &Flags,
    default_max_seq_length: Option<usize>,
    job: impl OnBackend,
) -> Result<(), String> {
    let name = backend_name(flags)?;
    on_backend(
        name,
        LoadThen {
            flags,
            default_max_seq_length,
            job,
        },
    )
}

/// [`run_on_backend`]'s job: load the pipeline on the back end, then run the command.
struct LoadThen<'f, J> {
    flags: &'f Flags,
    default_max_seq_length: Option<usize>,
    job: J,
}

impl<J: OnBackend> OnDevice for LoadThen<'_, J> {
    fn run<B: Backend>(self, backend: B) -> Result<(), String> {
        let pipeline = load_on(backend, self.flags, self.default_max_seq_length)?;
        self.flags.finish()?;
        self.job.run(pipeline)
    }
}

/// The model and its tokenizer named by the flags, on `backend`; `max_seq_length` from the
/// flag or the model's default.
pub fn load_on<B: Backend>(
    backend: B,
    flags: &Flags,
    default_max_seq_length: Option<usize>,
) -> Result<Pipeline<B>, String> {
    let err = |e: bert::Error| e.to_string();
    let lower = match flags.get("do_lower_case") {
        Some(_) => Some(flags.bool("do_lower_case", true)?),
        None => None,
    };
    let model_path = flags.get("model");
    let config_file = flags.get("bert_config_file");
    let checkpoint = flags.get("init_checkpoint");
    let vocab_file = flags.get("vocab_file");
    let max_len = flags.get("max_seq_length").map(str::to_owned);
    let opts = ModelOptions {
        dtype: dtype(flags)?,
        ..ModelOptions::default()
    };

    let pipeline = match (model_path, config_file, checkpoint) {
        (Some(path), None, None) => {
            let p = if !flags.bool("mmap", true)? && native::is_native_file(Path::new(path)) {
                read_native(backend, Path::new(path), lower, &opts).map_err(err)?
            } else {
                Pipeline::load_on(backend, path, lower, &opts).map_err(err)?
            };
            match vocab_file {
                // An explicit vocabulary overrides the one found beside the model.
                Some(v) => {
                    let lower = lower.unwrap_or(p.tokenizer().do_lower_case());
                    let tok = Tokenizer::from_vocab_file(v, lower).map_err(err)?;
                    p.with_tokenizer(tok).map_err(err)?
                }
                None => p,
            }
        }
        (None, Some(config), Some(ckpt)) => {
            let vocab = vocab_file.ok_or("--vocab_file is required with --init_checkpoint")?;
            let config = BertConfig::from_file(config).map_err(err)?;
            let weights = if ckpt.ends_with(".safetensors") {
                safetensors::load(ckpt).map_err(err)?
            } else {
                tf_checkpoint::load(ckpt).map_err(err)?
            };
            bert::weights::check_layers(&config, &weights).map_err(err)?;
            let weights = match opts.dtype {
                Some(d) => quantize::convert(weights, &config, d).map_err(err)?,
                None => weights,
            };
            let model = BertModel::build(backend, config, &weights, false).map_err(err)?;
            // Google's scripts default to do_lower_case=True.
            let tok = Tokenizer::from_vocab_file(vocab, lower.unwrap_or(true)).map_err(err)?;
            let max = model.config().max_position_embeddings;
            Pipeline::new(model, tok, max).map_err(err)?
        }
        (Some(_), _, _) => {
            return Err("give either --model or --bert_config_file with --init_checkpoint".into())
        }
        _ => {
            return Err(
                "no model: give --model PATH, or --bert_config_file, --init_checkpoint and \
                 --vocab_file"
                    .into(),
            )
        }
    };
    let max = match max_len {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("flag --max_seq_length: cannot parse {v:?}"))?,
        None => default_max_seq_length.unwrap_or(pipeline.max_seq_length()),
    };
    let limit = pipeline.model().config().max_position_embeddings;
    if !(2..=limit).contains(&max) {
        return Err(format!("--max_seq_length {max} is not within 2..={limit}"));
    }
    pipeline.with_max_seq_length(max).map_err(err)
}

/// A `.bert` file read into memory (`--mmap=false`): the file may then be rewritten in place
/// while the command runs (see `NativeModel::read`).
fn read_native<B: Backend>(
    backend: B,
    path: &Path,
    lower: Option<bool>,
    opts: &ModelOptions,
) -> bert::Result<Pipeline<B>> {
    let m = NativeModel::read(path)?;
    let w = bert::model::native_weights(&m, opts)?;
    let model = BertModel::build(backend, m.config().clone(), &w, false)?;
    let vocab = Vocab::from_tokens(m.vocab().iter().map(String::as_str))?;
    let tokenizer = Tokenizer::new(vocab, lower.unwrap_or(m.do_lower_case()))?;
    let max = model.config().max_position_embeddings;
    Pipeline::new(model, tokenizer, max)
}

/// `--dtype f32|f16|int8`, if given.
pub fn dtype(flags: &Flags) -> Result<Option<DType>, String> {
    flags
        .get("dtype")
        .map(|d| d.parse::<DType>().map_err(|e| format!("--dtype: {e}")))
        .transpose()
}
