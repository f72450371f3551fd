//! Pre-training from C: `bert_pretraining_data_create` (Google's
//! `create_pretraining_data.py`, the library's `train::pretraining_data`) and
//! `bert_pretrainer` (`run_pretraining.py`'s loop, the library's `Pretrainer`), driven as
//! `bert create-pretraining-data` and `bert pretrain` drive them, with `bert_trainer`'s
//! conventions.

use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bert::classifier::checkpoint;
use bert::config::BertConfig;
use bert::tokenizer::Tokenizer;
use bert::train::pretrain::{self, PretrainParams, Pretrainer};
use bert::train::pretraining_data::{self, FeatureShapes, PretrainingFeatures, Progress};
use bert::weights::{self, safetensors, tf_checkpoint, Weights};

use crate::args;
use crate::handles::MadeIn;
use crate::log::{log, BERT_LOG_INFO};
use crate::status::{bert_status, guard, Failure, FfiResult};

/// Options of `bert_pretraining_data_create`: `create_pretraining_data.py`'s flags, with its
/// defaults from `bert_pretraining_data_default_params()`. Fields are only ever appended.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_pretraining_data_params {
    /// `sizeof(bert_pretraining_data_params)`, set by
    /// `bert_pretraining_data_default_params()`; checked.
    pub size: usize,
    /// `--input_file`: comma-separated files or glob patterns of plain text (one sentence per
    /// line, blank lines between documents). Required (NUL-terminated UTF-8).
    pub input_file: *const c_char,
    /// `--output_file`: comma-separated TFRecord files, written round-robin, each to a
    /// temporary file renamed when complete. Required.
    pub output_file: *const c_char,
    /// `--vocab_file`: the WordPiece vocabulary. Required.
    pub vocab_file: *const c_char,
    /// `--max_seq_length` (default 128, at least 5).
    pub max_seq_length: u32,
    /// `--max_predictions_per_seq` (default 20).
    pub max_predictions_per_seq: u32,
    /// `--random_seed` of Python's `random.Random` (default 12345).
    pub random_seed: i64,
    /// `--dupe_factor`: passes over the documents (default 10).
    pub dupe_factor: u32,
    /// Threads for tokenizing and encoding, 0 (default): all cores. The output does not
    /// depend on it.
    pub n_threads: u32,
    /// `--masked_lm_prob` (default 0.15).
    pub masked_lm_prob: f64,
    /// `--short_seq_prob` (default 0.1).
    pub short_seq_prob: f64,
    /// `--do_lower_case`: 1 (default) or 0.
    pub do_lower_case: u8,
    /// `--do_whole_word_mask`: 0 (default) or 1.
    pub do_whole_word_mask: u8,
}

// SAFETY: repr(C), starts with its size, plain data (no bool); one layout so far.
unsafe impl args::Versioned for bert_pretraining_data_params {
    const NAME: &'static str = "bert_pretraining_data_params";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_pretraining_data_params>()];
}

/// Stage of `bert_pretraining_data_create` a progress call reports. Values never renumbered.
pub type bert_data_stage = i32;
/// Reading and tokenizing the input: `done` of `total` bytes.
pub const BERT_DATA_READING: bert_data_stage = 0;
/// Creating instances: `done` of `total` documents (`dupe_factor` times each).
pub const BERT_DATA_CREATING: bert_data_stage = 1;
/// Writing: `done` of `total` instances.
pub const BERT_DATA_WRITING: bert_data_stage = 2;

/// Called now and then by `bert_pretraining_data_create` on the calling thread. Return 0 to
/// go on, nonzero to stop: the call returns `BERT_ERROR_CANCELLED` and no output file is
/// created or replaced.
pub type bert_data_progress_callback = Option<
    unsafe extern "C" fn(
        stage: bert_data_stage,
        done: u64,
        total: u64,
        user_data: *mut c_void,
    ) -> i32,
>;

/// What `bert_pretraining_data_create` read and wrote. Set `size` before the call:
/// `bert_pretraining_data_summary s = {.size = sizeof s};`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_pretraining_data_summary {
    /// `sizeof(bert_pretraining_data_summary)`, set by the caller; the library writes no
    /// further.
    pub size: usize,
    /// Input files read (the patterns expanded).
    pub n_input_files: usize,
    /// Bytes of input text.
    pub input_bytes: u64,
    /// Non-empty documents.
    pub n_documents: u64,
    /// WordPiece tokens of all documents.
    pub n_tokens: u64,
    /// Instances written (all output files).
    pub n_instances: u64,
}

// SAFETY: repr(C), starts with its size, plain data; one layout so far.
unsafe impl args::Versioned for bert_pretraining_data_summary {
    const NAME: &'static str = "bert_pretraining_data_summary";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_pretraining_data_summary>()];
}

/// `create_pretraining_data.py`'s defaults (dupe_factor 10, masks 0.15 up to 20 per
/// sequence of 128, seed 12345, lower case), all cores; the three paths NULL.
#[no_mangle]
pub extern "C" fn bert_pretraining_data_default_params() -> bert_pretraining_data_params {
    let d = pretraining_data::Options::default();
    bert_pretraining_data_params {
        size: std::mem::size_of::<bert_pretraining_data_params>(),
        input_file: std::ptr::null(),
        output_file: std::ptr::null(),
        vocab_file: std::ptr::null(),
        max_seq_length: d.max_seq_length as u32,
        max_predictions_per_seq: d.max_predictions_per_seq as u32,
        random_seed: d.random_seed,
        dupe_factor: d.dupe_factor as u32,
        n_threads: 0,
        masked_lm_prob: d.masked_lm_prob,
        short_seq_prob: d.short_seq_prob,
        do_lower_case: 1,
        do_whole_word_mask: u8::from(d.do_whole_word_mask),
    }
}

/// Creates masked-LM / next-sentence pre-training data as `create_pretraining_data.py` (and
/// `bert create-pretraining-data`) does: for the same input and params, the same records in
/// the same order. `params` is required (it names the files); `callback` may be NULL.
/// `out` (may be NULL) receives the counts, and is zeroed on failure. `BERT_ERROR_IO` (a file
/// that cannot be read or written), `BERT_ERROR_INVALID_ARGUMENT` (a bad flag, or a pattern
/// that matches nothing), `BERT_ERROR_CANCELLED`.
#[no_mangle]
pub unsafe extern "C" fn bert_pretraining_data_create(
    params: *const bert_pretraining_data_params,
    callback: bert_data_progress_callback,
    user_data: *mut c_void,
    out: *mut bert_pretraining_data_summary,
) -> bert_status {
    guard(|| {
        let out = match out.is_null() {
            true => None,
            false => Some(args::output(out, "out")?),
        };
        if params.is_null() {
            return Err(Failure::null(
                "params (it names the input, output and vocabulary files)",
            ));
        }
        let p = args::params(params, bert_pretraining_data_default_params())?;
        let input = args::c_str(p.input_file, "params.input_file")?;
        let output = args::c_str(p.output_file, "params.output_file")?;
        let vocab = args::c_str(p.vocab_file, "params.vocab_file")?;
        let options = pretraining_data::Options {
            max_seq_length: p.max_seq_length as usize,
            max_predictions_per_seq: p.max_predictions_per_seq as usize,
            random_seed: p.random_seed,
            dupe_factor: p.dupe_factor as usize,
            masked_lm_prob: p.masked_lm_prob,
            short_seq_prob: p.short_seq_prob,
            do_whole_word_mask: args::flag(p.do_whole_word_mask, "do_whole_word_mask")?,
            threads: args::threads(p.n_threads, "n_threads")?,
        };
        let lower = args::flag(p.do_lower_case, "do_lower_case")?;
        let tokenizer = Tokenizer::from_vocab_file(vocab, lower)?;
        let inputs = pretraining_data::expand_input_files(input)?;
        // As the script's flag: comma-separated names, none of them empty.
        let outputs: Vec<PathBuf> = output.split(',').map(PathBuf::from).collect();
        if outputs.iter().any(|o| o.as_os_str().is_empty()) {
            return Err(Failure::invalid(format!(
                "params.output_file {output:?}: an empty file name"
            )));
        }
        let mut on_progress = |pr: Progress| {
            let Some(cb) = callback else {
                return true;
            };
            let (stage, done, total) = match pr {
                Progress::Reading { bytes, total_bytes } => (BERT_DATA_READING, bytes, total_bytes),
                Progress::Creating {
                    documents,
                    total_documents,
                    ..
                } => (BERT_DATA_CREATING, documents, total_documents),
                Progress::Writing { written, total } => (BERT_DATA_WRITING, written, total),
            };
            // SAFETY: the application's callback, called as documented.
            unsafe { cb(stage, done, total, user_data) == 0 }
        };
        let s = pretraining_data::create_pretraining_data(
            &tokenizer,
            &inputs,
            &outputs,
            &options,
            &mut on_progress,
        )?;
        log(BERT_LOG_INFO, || {
            format!(
                "pre-training data: {} instances from {} documents ({} files) to {output}",
                s.instances,
                s.documents,
                s.input_files.len()
            )
        });
        if let Some(o) = out {
            o.write(&bert_pretraining_data_summary {
                size: std::mem::size_of::<bert_pretraining_data_summary>(),
                n_input_files: s.input_files.len(),
                input_bytes: s.input_bytes,
                n_documents: s.documents as u64,
                n_tokens: s.tokens as u64,
                n_instances: s.instances,
            });
        }
        Ok(())
    })
}

/// Options of `bert_pretrainer_new`: `run_pretraining.py`'s flags, with its defaults from
/// `bert_pretrainer_default_params()`. Fields are only ever appended.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_pretrainer_params {
    /// `sizeof(bert_pretrainer_params)`, set by `bert_pretrainer_default_params()`; checked.
    pub size: usize,
    /// `--input_file`: comma-separated TFRecord files or globs of
    /// `bert_pretraining_data_create`, every record read and checked by `bert_pretrainer_new`.
    /// NULL (default): no training examples (a run that only evaluates).
    pub input_file: *const c_char,
    /// `--eval_input_file` of `bert_pretrainer_evaluate`; NULL (default): `input_file`.
    pub eval_input_file: *const c_char,
    /// `--output_dir` (required): `training_state.safetensors` is written there every
    /// `save_checkpoints_steps` and when `bert_pretrainer_train` returns after an update
    /// (cancelled included); `bert_pretrainer_new` resumes from it when it exists. Also
    /// `eval_results.txt` (`bert_pretrainer_evaluate`).
    pub output_dir: *const c_char,
    /// `--max_seq_length` and `--max_predictions_per_seq` of the records (defaults 128, 20).
    pub max_seq_length: u32,
    pub max_predictions_per_seq: u32,
    /// `--train_batch_size` (default 32).
    pub train_batch_size: u32,
    /// Micro-batches per update, dividing `train_batch_size` (default 1).
    pub gradient_accumulation_steps: u32,
    /// `--learning_rate` (default 5e-5).
    pub learning_rate: f32,
    /// Threads of the passes, the calling thread included; 0 (default): all cores; at most
    /// `BERT_MAX_THREADS`. A run is deterministic for a seed and thread count.
    pub n_threads: u32,
    /// `--num_train_steps` (default 100000) and `--num_warmup_steps` (default 10000).
    pub num_train_steps: u64,
    pub num_warmup_steps: u64,
    /// Seeds the initialisation of missing variables, the data order and dropout (default
    /// 12345).
    pub seed: u64,
    /// `--save_checkpoints_steps` (default 1000; 0: only when `bert_pretrainer_train`
    /// returns).
    pub save_checkpoints_steps: u64,
    /// `--eval_batch_size` (default 8) and `--max_eval_steps` (default 100).
    pub eval_batch_size: u32,
    pub max_eval_steps: u32,
    /// 1 (default): dropout as the config says; 0: off.
    pub dropout: u8,
    /// 1: recompute activations in the backward pass (less memory, same numbers); 0
    /// (default).
    pub gradient_checkpointing: u8,
}

// SAFETY: repr(C), starts with its size, plain data (no bool); one layout so far.
unsafe impl args::Versioned for bert_pretrainer_params {
    const NAME: &'static str = "bert_pretrainer_params";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_pretrainer_params>()];
}

/// What `bert_pretrainer_train`'s progress callback sees after each update.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_pretrain_progress {
    /// `sizeof(bert_pretrain_progress)`: fields are only appended.
    pub size: usize,
    /// Updates done, this one included, and of the whole run (`num_train_steps`).
    pub step: u64,
    pub total_steps: u64,
    /// Total loss of this update (masked LM + next sentence).
    pub loss: f32,
    /// Learning rate of this update.
    pub learning_rate: f32,
    /// Global gradient norm before clipping (at 1.0).
    pub grad_norm: f64,
    /// The heads' metrics on this update's examples (before the update): weighted masked-LM
    /// loss and accuracy, next-sentence loss and accuracy.
    pub masked_lm_loss: f64,
    pub masked_lm_accuracy: f64,
    pub next_sentence_loss: f64,
    pub next_sentence_accuracy: f64,
    /// Seconds since this `bert_pretrainer_train` call began.
    pub elapsed_seconds: f64,
}

/// Called after each update with its progress (valid during the call) and the `user_data`
/// given to `bert_pretrainer_train`, on the calling thread. Return 0 to go on, nonzero to
/// stop: the update is kept, the state saved, and `BERT_ERROR_CANCELLED` returned. Must not
/// call into the same pre-trainer.
pub type bert_pretrain_progress_callback = Option<
    unsafe extern "C" fn(progress: *const bert_pretrain_progress, user_data: *mut c_void) -> i32,
>;

/// `run_pretraining.py`'s evaluation metrics (`metric_fn`). Set `size` before the call:
/// `bert_pretrain_eval_result r = {.size = sizeof r};`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_pretrain_eval_result {
    /// `sizeof(bert_pretrain_eval_result)`, set by the caller; the library writes no further.
    pub size: usize,
    /// Examples evaluated (whole batches of `eval_batch_size`, at most `max_eval_steps`).
    pub n_examples: u64,
    /// Updates done when evaluated.
    pub global_step: u64,
    /// `loss`, `masked_lm_loss`, `masked_lm_accuracy`, `next_sentence_loss`,
    /// `next_sentence_accuracy` of `eval_results.txt`.
    pub loss: f64,
    pub masked_lm_loss: f64,
    pub masked_lm_accuracy: f64,
    pub next_sentence_loss: f64,
    pub next_sentence_accuracy: f64,
}

// SAFETY: repr(C), starts with its size, plain data; one layout so far.
unsafe impl args::Versioned for bert_pretrain_eval_result {
    const NAME: &'static str = "bert_pretrain_eval_result";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_pretrain_eval_result>()];
}

/// A pre-training run: model with its heads, optimizer state, data order, and the examples.
/// Use from one thread at a time (it may move between threads).
pub struct bert_pretrainer {
    run: Pretrainer,
    /// Evaluation examples, read when first evaluated.
    eval: Option<Vec<PretrainingFeatures>>,
    /// The step of the saved state an evaluation-only run (no training data) loaded.
    evaluated_step: Option<u64>,
    eval_input: String,
    output_dir: PathBuf,
    save_checkpoints_steps: u64,
    eval_batch_size: usize,
    max_eval_steps: usize,
    /// Its pool's workers (started by `bert_pretrainer_new`) exist only in this process.
    made_in: MadeIn,
}

/// The pre-trainer of a call: not NULL, and made in this process.
unsafe fn pretrainer<'a>(p: *mut bert_pretrainer) -> FfiResult<&'a mut bert_pretrainer> {
    let t = args::handle_mut(p, "pretrainer")?;
    t.made_in.check("pretrainer")?;
    Ok(t)
}

/// `run_pretraining.py`'s defaults (batch 32, lr 5e-5, 100000 steps with 10000 of warm-up,
/// sequences of 128 with 20 predictions, checkpoints every 1000 steps, evaluation of 100
/// batches of 8), all cores, dropout on; the paths NULL.
#[no_mangle]
pub extern "C" fn bert_pretrainer_default_params() -> bert_pretrainer_params {
    let d = PretrainParams::default();
    bert_pretrainer_params {
        size: std::mem::size_of::<bert_pretrainer_params>(),
        input_file: std::ptr::null(),
        eval_input_file: std::ptr::null(),
        output_dir: std::ptr::null(),
        max_seq_length: d.max_seq_length as u32,
        max_predictions_per_seq: d.max_predictions_per_seq as u32,
        train_batch_size: d.train_batch_size as u32,
        gradient_accumulation_steps: d.gradient_accumulation_steps as u32,
        learning_rate: d.learning_rate,
        n_threads: 0,
        num_train_steps: d.num_train_steps,
        num_warmup_steps: d.num_warmup_steps,
        seed: d.seed,
        save_checkpoints_steps: 1000,
        eval_batch_size: 8,
        max_eval_steps: 100,
        dropout: 1,
        gradient_checkpointing: u8::from(d.gradient_checkpointing),
    }
}

/// The model `bert pretrain` starts from: `--bert_config_file` with an optional
/// `--init_checkpoint` (TF or safetensors; none: from scratch), or without a config any
/// model libbert loads (`--model`).
fn load_start(config: Option<&str>, checkpoint: Option<&str>) -> FfiResult<(BertConfig, Weights)> {
    match (config, checkpoint) {
        (None, Some(model)) => Ok(weights::load_model_files(Path::new(model))?),
        (Some(config), ckpt) => {
            let config = BertConfig::from_file(config)?;
            let w = match ckpt {
                None => Weights::new(),
                Some(c) if c.ends_with(".safetensors") => safetensors::load(c)?,
                Some(c) => tf_checkpoint::load(c)?,
            };
            weights::check_layers(&config, &w)?;
            Ok((config, w))
        }
        (None, None) => Err(Failure::null(
            "config_file and init_checkpoint (give a config, a checkpoint, or both)",
        )),
    }
}

unsafe fn optional_path<'a>(p: *const c_char, what: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        args::c_str(p, what).map(Some)
    }
}

/// Creates a pre-training run as `bert pretrain --do_train` starts one. The model:
/// `config_file` (`bert_config.json`) with `init_checkpoint` (a TF checkpoint prefix or a
/// `.safetensors` file) or NULL (from scratch); or `config_file` NULL and `init_checkpoint`
/// any model libbert loads (its config inside or beside it). Variables it lacks (all from
/// scratch; the `cls/*` heads of an encoder-only model) start from `modeling.py`'s
/// initialisers, drawn from `params->seed`. `params` is required (it names `output_dir`).
/// Every training record is read and checked now (errors name file and record). When
/// `output_dir` holds `training_state.safetensors`, the run resumes from it (its settings
/// and data must match: `BERT_ERROR_INVALID_ARGUMENT` naming what differs); see
/// `bert_pretrainer_global_step`. Without training data (`input_file` NULL) the run only
/// evaluates: the saved state's variables when `output_dir` holds one, as `bert pretrain
/// --do_eval` does. On failure `*out_pretrainer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_pretrainer_new(
    config_file: *const c_char,
    init_checkpoint: *const c_char,
    params: *const bert_pretrainer_params,
    out_pretrainer: *mut *mut bert_pretrainer,
) -> bert_status {
    guard(|| {
        let out = args::out(out_pretrainer, "out_pretrainer")?;
        *out = std::ptr::null_mut();
        if params.is_null() {
            return Err(Failure::null("params (it names output_dir)"));
        }
        let p = args::params(params, bert_pretrainer_default_params())?;
        let config = optional_path(config_file, "config_file")?;
        let ckpt = optional_path(init_checkpoint, "init_checkpoint")?;
        let output_dir = PathBuf::from(args::c_str(p.output_dir, "params.output_dir")?);
        let input = optional_path(p.input_file, "params.input_file")?;
        let eval_input = optional_path(p.eval_input_file, "params.eval_input_file")?
            .or(input)
            .unwrap_or("")
            .to_string();
        let hp = PretrainParams {
            max_seq_length: p.max_seq_length as usize,
            max_predictions_per_seq: p.max_predictions_per_seq as usize,
            train_batch_size: p.train_batch_size as usize,
            learning_rate: p.learning_rate,
            num_train_steps: p.num_train_steps,
            num_warmup_steps: p.num_warmup_steps,
            gradient_accumulation_steps: p.gradient_accumulation_steps as usize,
            seed: p.seed,
            threads: args::threads(p.n_threads, "n_threads")?,
            gradient_checkpointing: args::flag(p.gradient_checkpointing, "gradient_checkpointing")?,
        };
        let dropout = args::flag(p.dropout, "dropout")?;
        let (config, mut weights) = load_start(config, ckpt)?;
        bert::output::check_writable_dir(&output_dir)?;
        let train = match input {
            Some(patterns) => read(patterns, &hp, &config)?,
            None => Vec::new(),
        };
        let state = output_dir.join(checkpoint::FILE_NAME);
        // Without training data the run only evaluates: as `bert pretrain --do_eval` alone,
        // it evaluates the saved state's variables (a resume would refuse the missing data).
        let mut evaluated_step = None;
        if train.is_empty() && state.is_file() {
            let saved = checkpoint::load(&state)?;
            weights = Weights::new();
            for var in saved.variables {
                weights.insert(var.name, bert::weights::Tensor::new(var.shape, var.value)?);
            }
            evaluated_step = Some(saved.global_step);
        }
        pretrain::init_missing(&mut weights, &config, hp.seed)?;
        let mut run = Pretrainer::new(config, &weights, hp, train)?;
        drop(weights);
        run.set_dropout(dropout);
        std::fs::create_dir_all(&output_dir).map_err(|e| bert::Error::io(&output_dir, e))?;
        if evaluated_step.is_none() && state.is_file() {
            run.resume(&state)?;
        }
        log(BERT_LOG_INFO, || {
            format!(
                "pretrainer: {} examples, {:?}, at step {}",
                run.num_examples(),
                run.params(),
                run.global_step()
            )
        });
        *out = Box::into_raw(Box::new(bert_pretrainer {
            run,
            eval: None,
            evaluated_step,
            eval_input,
            output_dir,
            save_checkpoints_steps: p.save_checkpoints_steps,
            eval_batch_size: (p.eval_batch_size as usize).max(1),
            max_eval_steps: p.max_eval_steps as usize,
            made_in: MadeIn::here(),
        }));
        Ok(())
    })
}

/// The records of `patterns`, checked against the run's shapes and the model.
fn read(
    patterns: &str,
    hp: &PretrainParams,
    config: &BertConfig,
) -> FfiResult<Vec<PretrainingFeatures>> {
    let files = pretrain::expand(patterns)?;
    let shapes = FeatureShapes {
        max_seq_length: hp.max_seq_length,
        max_predictions_per_seq: hp.max_predictions_per_seq,
    };
    Ok(pretrain::read_examples(&files, shapes, config)?)
}

/// Frees a pre-trainer, joining its worker threads. NULL is a no-op. In a child process after
/// `fork` a pre-trainer of the parent frees nothing and sets `bert_last_error()`.
#[no_mangle]
pub unsafe extern "C" fn bert_pretrainer_free(pretrainer: *mut bert_pretrainer) {
    let Some(t) = pretrainer.as_ref() else {
        return;
    };
    if !t.made_in.may_free("bert_pretrainer_free") {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(Box::from_raw(pretrainer));
    }));
}

/// Updates done (after a resume, or for a run without training data that loaded
/// `output_dir`'s state: the saved run's); 0 if `pretrainer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_pretrainer_global_step(pretrainer: *const bert_pretrainer) -> u64 {
    pretrainer.as_ref().map_or(0, |t| t.global_step())
}

/// Training examples read; 0 if `pretrainer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_pretrainer_num_examples(pretrainer: *const bert_pretrainer) -> u64 {
    pretrainer
        .as_ref()
        .map_or(0, |t| t.run.num_examples() as u64)
}

/// Trains: runs updates until `num_train_steps` are done, or `max_steps` updates were made by
/// this call (0: no limit), or `callback` (may be NULL) returns nonzero, saving the state to
/// `output_dir` every `save_checkpoints_steps` and, after at least one update, before
/// returning. Returns `BERT_OK` when the run finished or `max_steps` was reached (call again
/// to go on), `BERT_ERROR_CANCELLED` when the callback stopped it (the update it saw is kept
/// and saved: call again, or free and make a new pre-trainer on the same `output_dir` to go
/// on), `BERT_ERROR_EMPTY_DATA` without training examples, `BERT_ERROR_DIVERGED` if the loss
/// stops being finite (the pre-trainer is then unusable). The updates of an interrupted run
/// are those of an uninterrupted one, bit for bit (same thread count).
#[no_mangle]
pub unsafe extern "C" fn bert_pretrainer_train(
    pretrainer: *mut bert_pretrainer,
    max_steps: u64,
    callback: bert_pretrain_progress_callback,
    user_data: *mut c_void,
) -> bert_status {
    guard(|| {
        let t = self::pretrainer(pretrainer)?;
        if t.run.num_examples() == 0 {
            return Err(
                bert::Error::EmptyData("no training examples (params.input_file)".into()).into(),
            );
        }
        let started = Instant::now();
        let mut done = 0u64;
        let mut saved = None;
        let mut cancelled = false;
        while !t.run.finished() && (max_steps == 0 || done < max_steps) {
            let s = t.run.step()?;
            done += 1;
            let step = s.report.global_step;
            if t.save_checkpoints_steps > 0 && step % t.save_checkpoints_steps == 0 {
                t.save()?;
                saved = Some(step);
            }
            if let Some(cb) = callback {
                let progress = bert_pretrain_progress {
                    size: std::mem::size_of::<bert_pretrain_progress>(),
                    step,
                    total_steps: t.run.params().num_train_steps,
                    loss: s.report.loss,
                    learning_rate: s.report.learning_rate,
                    grad_norm: s.report.grad_norm,
                    masked_lm_loss: s.masked_lm_loss,
                    masked_lm_accuracy: s.masked_lm_accuracy,
                    next_sentence_loss: s.next_sentence_loss,
                    next_sentence_accuracy: s.next_sentence_accuracy,
                    elapsed_seconds: started.elapsed().as_secs_f64(),
                };
                // SAFETY: the application's callback, called as documented.
                if cb(&progress, user_data) != 0 {
                    cancelled = true;
                    break;
                }
            }
        }
        // As `bert pretrain` ends: the state of the last update is on disk.
        if done > 0 && saved != Some(t.run.global_step()) {
            t.save()?;
        }
        if cancelled {
            return Err(bert::Error::Cancelled(format!(
                "the progress callback stopped pre-training after step {}",
                t.run.global_step()
            ))
            .into());
        }
        Ok(())
    })
}

impl bert_pretrainer {
    fn global_step(&self) -> u64 {
        self.evaluated_step.unwrap_or(self.run.global_step())
    }

    fn save(&self) -> FfiResult<()> {
        let path = self.output_dir.join(checkpoint::FILE_NAME);
        self.run.save_checkpoint(&path)?;
        log(BERT_LOG_INFO, || {
            format!(
                "pretrainer: step {}: wrote {}",
                self.run.global_step(),
                path.display()
            )
        });
        Ok(())
    }
}

/// `run_pretraining.py`'s evaluation of the current parameters (dropout off) on
/// `eval_input_file` (read at the first call): whole batches of `eval_batch_size`, at most
/// `max_eval_steps`, into `*out` (zeroed on failure, all but its `size`); also written to
/// `output_dir/eval_results.txt` as `bert pretrain --do_eval` writes it.
/// `BERT_ERROR_EMPTY_DATA` if the examples make no batch.
#[no_mangle]
pub unsafe extern "C" fn bert_pretrainer_evaluate(
    pretrainer: *mut bert_pretrainer,
    out: *mut bert_pretrain_eval_result,
) -> bert_status {
    guard(|| {
        let o = args::output(out, "out")?;
        let t = self::pretrainer(pretrainer)?;
        if t.eval.is_none() {
            if t.eval_input.is_empty() {
                return Err(bert::Error::EmptyData(
                    "no evaluation examples (params.eval_input_file or input_file)".into(),
                )
                .into());
            }
            let examples = read(&t.eval_input, t.run.params(), t.run.config())?;
            t.eval = Some(examples);
        }
        let eval = t.eval.as_deref().unwrap_or_default();
        let r = t.run.evaluate(eval, t.eval_batch_size, t.max_eval_steps)?;
        let step = t.global_step();
        let text = r.to_eval_results_txt(step);
        bert::output::write_bytes(&t.output_dir.join("eval_results.txt"), text.as_bytes())?;
        o.write(&bert_pretrain_eval_result {
            size: std::mem::size_of::<bert_pretrain_eval_result>(),
            n_examples: r.examples as u64,
            global_step: step,
            loss: r.loss(),
            masked_lm_loss: r.masked_lm_mean_loss(),
            masked_lm_accuracy: r.masked_lm_accuracy(),
            next_sentence_loss: r.next_sentence_mean_loss(),
            next_sentence_accuracy: r.next_sentence_accuracy(),
        });
        Ok(())
    })
}

/// Saves the whole training state (as `bert_pretrainer_train` does to `output_dir`) to
/// `path` (NUL-terminated UTF-8), atomically.
#[no_mangle]
pub unsafe extern "C" fn bert_pretrainer_save_checkpoint(
    pretrainer: *mut bert_pretrainer,
    path: *const c_char,
) -> bert_status {
    guard(|| {
        let t = self::pretrainer(pretrainer)?;
        let path = args::c_str(path, "path")?;
        Ok(t.run.save_checkpoint(Path::new(path))?)
    })
}

/// Continues the run saved at `path` (by `bert_pretrainer_save_checkpoint` or
/// `bert_pretrainer_train`): same model shape, params and training examples
/// (`BERT_ERROR_INVALID_ARGUMENT` naming what differs); a damaged file is
/// `BERT_ERROR_FORMAT`.
#[no_mangle]
pub unsafe extern "C" fn bert_pretrainer_resume(
    pretrainer: *mut bert_pretrainer,
    path: *const c_char,
) -> bert_status {
    guard(|| {
        let t = self::pretrainer(pretrainer)?;
        let path = args::c_str(path, "path")?;
        Ok(t.run.resume(Path::new(path))?)
    })
}
