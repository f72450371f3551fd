//! `bert_trainer`: fine-tune a classifier (the library's `FineTuner`, run_classifier.py's
//! training loop) from C.

use std::ffi::{c_char, c_void};
use std::ops::ControlFlow;
use std::path::Path;

use bert::classifier::{
    FineTuneParams, FineTuner, InputFeatures, ModelStart, Outcome, Processor, Split,
};

use crate::args;
use crate::handles::MadeIn;
use crate::log::{log, BERT_LOG_INFO};
use crate::model::BERT_LOWER_CASE_AUTO;
use crate::status::{bert_status, guard, Failure, FfiResult};

/// Options of `bert_trainer_new`, with `run_classifier.py`'s defaults from
/// `bert_trainer_default_params()`. NULL means the defaults (then the model must be a
/// fine-tuned `.bert` that brings its labels).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_trainer_params {
    /// `sizeof(bert_trainer_params)`, set by `bert_trainer_default_params()`; checked.
    pub size: usize,
    /// Peak learning rate (default 5e-5), reached after the warm-up, then decayed linearly
    /// to 0.
    pub learning_rate: f32,
    /// Fraction of the updates spent warming up (default 0.1).
    pub warmup_proportion: f32,
    /// Passes over the training examples (default 3.0); the run makes
    /// `int(examples / train_batch_size * num_train_epochs)` updates.
    pub num_train_epochs: f64,
    /// Examples per update (default 32).
    pub train_batch_size: u32,
    /// Micro-batches per update, dividing `train_batch_size` (default 1): same update, less
    /// memory.
    pub gradient_accumulation_steps: u32,
    /// Examples are truncated to this many positions, `[CLS]` and `[SEP]` included (default
    /// 128).
    pub max_seq_length: u32,
    /// Threads of the passes, the calling thread included; 0 (default): all cores; at most
    /// `BERT_MAX_THREADS`.
    pub n_threads: u32,
    /// Seeds the head's initialisation, dropout and shuffling (default 12345). A run is
    /// deterministic for a seed and thread count.
    pub seed: u64,
    /// `n_labels` label names (NUL-terminated UTF-8, copied during the call); label id `i` is
    /// `labels[i]`. NULL with `n_labels > 0`: the names "0", "1", .... NULL with 0 (default):
    /// the labels of a fine-tuned `.bert` model (`BERT_ERROR_LABEL` if it has none). At most
    /// `BERT_MAX_LABELS`.
    pub labels: *const *const c_char,
    pub n_labels: usize,
    /// `BERT_LOWER_CASE_AUTO` (default), 0 or 1, as in `bert_model_params`.
    pub do_lower_case: i32,
    /// 1: recompute each layer's activations in the backward pass instead of keeping them
    /// (about 40% less peak memory for about one more forward pass of compute, the same
    /// numbers); 0 (default): keep them.
    pub gradient_checkpointing: u8,
    /// Global-norm gradient clipping threshold (default 1.0, Google's); 0 disables clipping.
    pub max_grad_norm: f32,
}

/// `bert_trainer_params` before `gradient_checkpointing` and `max_grad_norm` were appended
/// (its size is still accepted; the new fields take their defaults).
#[repr(C)]
#[allow(dead_code)]
struct bert_trainer_params_v1 {
    size: usize,
    learning_rate: f32,
    warmup_proportion: f32,
    num_train_epochs: f64,
    train_batch_size: u32,
    gradient_accumulation_steps: u32,
    max_seq_length: u32,
    n_threads: u32,
    seed: u64,
    labels: *const *const c_char,
    n_labels: usize,
    do_lower_case: i32,
}

/// Most labels a classifier may have (`bert_trainer_params.n_labels`); more is
/// `BERT_ERROR_INVALID_ARGUMENT`.
pub const BERT_MAX_LABELS: usize = 65536;

// SAFETY: repr(C), starts with its size, plain data (no bool); v1 is a prefix of this layout.
unsafe impl args::Versioned for bert_trainer_params {
    const NAME: &'static str = "bert_trainer_params";
    const LAYOUTS: &'static [usize] = &[
        std::mem::size_of::<bert_trainer_params_v1>(),
        std::mem::size_of::<bert_trainer_params>(),
    ];
}

/// Which example set an example goes to. Values never renumbered.
pub type bert_split = i32;
/// Training examples (added before the first `bert_trainer_train`).
pub const BERT_SPLIT_TRAIN: bert_split = 0;
/// Evaluation examples for `bert_trainer_evaluate` (may be added at any time).
pub const BERT_SPLIT_EVAL: bert_split = 1;

/// How `bert_trainer_add_tsv` reads a tab-separated file. From `bert_tsv_default_params()`;
/// NULL means the defaults. Fields are only ever appended: a struct from an older header is
/// accepted.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_tsv_params {
    /// `sizeof(bert_tsv_params)`, set by `bert_tsv_default_params()`; checked.
    pub size: usize,
    /// A GLUE task whose file layout to use ("cola", "mnli", "mrpc", "sst-2", "rte"; the
    /// train layout for `BERT_SPLIT_TRAIN`, the dev layout for `BERT_SPLIT_EVAL`), or NULL
    /// (default) for the columns below.
    pub task_name: *const c_char,
    /// 0-based columns of text A, text B (-1: none) and the label. Defaults 0, -1, 1.
    pub text_a_column: i32,
    pub text_b_column: i32,
    pub label_column: i32,
    /// 1 (default): the first line is a header; 0: it is a row.
    pub skip_header: u8,
}

// SAFETY: repr(C), starts with its size, plain data (no bool); one layout so far.
unsafe impl args::Versioned for bert_tsv_params {
    const NAME: &'static str = "bert_tsv_params";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_tsv_params>()];
}

/// What `bert_trainer_train`'s progress callback sees after each update.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_progress {
    /// `sizeof(bert_progress)`: fields are only appended.
    pub size: usize,
    /// Updates done, this one included.
    pub step: u64,
    /// Updates of the whole run.
    pub total_steps: u64,
    /// Mean training loss of this update's examples.
    pub loss: f32,
    /// Learning rate of this update.
    pub learning_rate: f32,
    /// Global gradient norm before clipping (at 1.0).
    pub grad_norm: f64,
    /// Training examples per second since this `bert_trainer_train` call began.
    pub examples_per_second: f64,
    /// Seconds since this `bert_trainer_train` call began.
    pub elapsed_seconds: f64,
}

/// Called after each update with its progress (valid during the call) and the `user_data`
/// given to `bert_trainer_train`, on the calling thread. Return 0 to go on, nonzero to stop:
/// `bert_trainer_train` then returns `BERT_ERROR_CANCELLED` with the update kept. Must not
/// call into the same trainer.
pub type bert_progress_callback =
    Option<unsafe extern "C" fn(progress: *const bert_progress, user_data: *mut c_void) -> i32>;

/// Scores of `bert_trainer_evaluate` (run_classifier.py's eval metrics). Set `size` before
/// the call: `bert_eval_result r = {.size = sizeof r};`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bert_eval_result {
    /// `sizeof(bert_eval_result)`, set by the caller; the library writes no further.
    pub size: usize,
    /// Evaluation examples scored.
    pub n_examples: usize,
    /// Updates done when evaluated.
    pub global_step: u64,
    /// Fraction of examples whose arg-max class is the label.
    pub accuracy: f64,
    /// Mean cross-entropy per example (`eval_loss`).
    pub loss: f64,
    /// F1 and Matthews correlation of label 1 (MRPC's and CoLA's metrics); NaN unless there
    /// are exactly two labels.
    pub f1: f64,
    pub mcc: f64,
}

// SAFETY: repr(C), starts with its size, plain data; one layout so far.
unsafe impl args::Versioned for bert_eval_result {
    const NAME: &'static str = "bert_eval_result";
    const LAYOUTS: &'static [usize] = &[std::mem::size_of::<bert_eval_result>()];
}

/// A fine-tuning run: model, hyper-parameters, labels, training and evaluation examples,
/// optimizer state. Use from one thread at a time (it may move between threads).
pub struct bert_trainer {
    tuner: FineTuner,
    eval: Vec<InputFeatures>,
    /// Its pool's workers (from the first `bert_trainer_train`) exist only in this process.
    made_in: MadeIn,
}

/// The trainer of a call: not NULL, and made in this process.
unsafe fn trainer<'a>(p: *mut bert_trainer) -> FfiResult<&'a mut bert_trainer> {
    let t = args::handle_mut(p, "trainer")?;
    t.made_in.check("trainer")?;
    Ok(t)
}

/// [`trainer`], read-only.
unsafe fn trainer_ref<'a>(p: *const bert_trainer) -> FfiResult<&'a bert_trainer> {
    let t = args::handle(p, "trainer")?;
    t.made_in.check("trainer")?;
    Ok(t)
}

/// Default trainer params: run_classifier.py's (lr 5e-5, 3 epochs, batch 32, warm-up 0.1,
/// max_seq_length 128, seed 12345), all cores, labels from the model.
#[no_mangle]
pub extern "C" fn bert_trainer_default_params() -> bert_trainer_params {
    let d = FineTuneParams::default();
    bert_trainer_params {
        size: std::mem::size_of::<bert_trainer_params>(),
        learning_rate: d.learning_rate,
        warmup_proportion: d.warmup_proportion as f32,
        num_train_epochs: d.num_train_epochs,
        train_batch_size: d.train_batch_size as u32,
        gradient_accumulation_steps: d.gradient_accumulation_steps as u32,
        max_seq_length: d.max_seq_length as u32,
        n_threads: 0,
        seed: d.seed,
        labels: std::ptr::null(),
        n_labels: 0,
        do_lower_case: BERT_LOWER_CASE_AUTO,
        gradient_checkpointing: u8::from(d.gradient_checkpointing),
        max_grad_norm: d.max_grad_norm,
    }
}

/// Default TSV params: text in column 0, label in column 1, a header line.
#[no_mangle]
pub extern "C" fn bert_tsv_default_params() -> bert_tsv_params {
    bert_tsv_params {
        size: std::mem::size_of::<bert_tsv_params>(),
        task_name: std::ptr::null(),
        text_a_column: 0,
        text_b_column: -1,
        label_column: 1,
        skip_header: 1,
    }
}

unsafe fn labels_of(p: &bert_trainer_params, model: &[String]) -> FfiResult<Vec<String>> {
    if p.n_labels > BERT_MAX_LABELS {
        return Err(Failure::invalid(format!(
            "n_labels is {}: at most {BERT_MAX_LABELS} (BERT_MAX_LABELS)",
            p.n_labels
        )));
    }
    if !p.labels.is_null() {
        let ptrs = std::slice::from_raw_parts(p.labels, p.n_labels);
        return ptrs
            .iter()
            .enumerate()
            .map(|(i, &l)| Ok(args::c_str(l, &format!("params.labels[{i}]"))?.to_string()))
            .collect();
    }
    if p.n_labels > 0 {
        return Ok((0..p.n_labels).map(|i| i.to_string()).collect());
    }
    if model.is_empty() {
        return Err(bert::Error::Label(
            "no labels: set params.labels / params.n_labels (the model is not a fine-tuned \
             classifier with labels)"
                .into(),
        )
        .into());
    }
    Ok(model.to_vec())
}

/// Creates a trainer from a model (`path` as for `bert_model_load_file`: a directory, a
/// `.safetensors`, a TF checkpoint or a `.bert` file, whose head is reused when it has as
/// many labels) and `params` (may be NULL). On failure `*out_trainer` is NULL:
/// `BERT_ERROR_LABEL` (no or empty label list), `BERT_ERROR_INVALID_ARGUMENT` (bad
/// hyper-parameter), and the loading statuses.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_new(
    model_path: *const c_char,
    params: *const bert_trainer_params,
    out_trainer: *mut *mut bert_trainer,
) -> bert_status {
    guard(|| {
        let out = args::out(out_trainer, "out_trainer")?;
        *out = std::ptr::null_mut();
        let path = Path::new(args::c_str(model_path, "model_path")?);
        let p = args::params(params, bert_trainer_default_params())?;
        let lower = match p.do_lower_case {
            BERT_LOWER_CASE_AUTO => None,
            0 => Some(false),
            1 => Some(true),
            v => {
                return Err(Failure::invalid(format!(
                    "do_lower_case is {v}: use BERT_LOWER_CASE_AUTO, 0 or 1"
                )))
            }
        };
        let hp = FineTuneParams {
            learning_rate: p.learning_rate,
            num_train_epochs: p.num_train_epochs,
            train_batch_size: p.train_batch_size as usize,
            warmup_proportion: p.warmup_proportion as f64,
            gradient_accumulation_steps: p.gradient_accumulation_steps as usize,
            seed: p.seed,
            max_seq_length: p.max_seq_length as usize,
            threads: args::threads(p.n_threads, "n_threads")?,
            gradient_checkpointing: args::flag(p.gradient_checkpointing, "gradient_checkpointing")?,
            max_grad_norm: p.max_grad_norm,
        };
        if !path.exists() {
            return Err(bert::Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            )
            .into());
        }
        let start = ModelStart::load(path, None, lower)?;
        let labels = labels_of(&p, &start.labels)?;
        log(BERT_LOG_INFO, || {
            format!(
                "trainer: {} ({} layers, hidden {}), labels {labels:?}, {hp:?}",
                path.display(),
                start.config.num_hidden_layers,
                start.config.hidden_size
            )
        });
        let tuner = FineTuner::from_start(start, labels, hp)?;
        *out = Box::into_raw(Box::new(bert_trainer {
            tuner,
            eval: Vec::new(),
            made_in: MadeIn::here(),
        }));
        Ok(())
    })
}

/// Frees a trainer, joining its worker threads. NULL is a no-op. In a child process after
/// `fork` a trainer of the parent frees nothing (its workers do not exist there) and sets
/// `bert_last_error()`.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_free(trainer: *mut bert_trainer) {
    let Some(t) = trainer.as_ref() else {
        return;
    };
    if !t.made_in.may_free("bert_trainer_free") {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(Box::from_raw(trainer));
    }));
}

fn split_of(split: bert_split) -> FfiResult<bool> {
    match split {
        BERT_SPLIT_TRAIN => Ok(true),
        BERT_SPLIT_EVAL => Ok(false),
        v => Err(Failure::invalid(format!("split {v} is not a bert_split"))),
    }
}

unsafe fn add(
    trainer: *mut bert_trainer,
    split: bert_split,
    text_a: *const c_char,
    len_a: usize,
    text_b: *const c_char,
    len_b: usize,
    label: impl FnOnce(&FineTuner) -> FfiResult<String>,
) -> FfiResult<()> {
    let t = self::trainer(trainer)?;
    let train = split_of(split)?;
    let a = args::text(text_a, len_a, "text_a")?;
    let b = args::optional_text(text_b, len_b, "text_b")?;
    let label = label(&t.tuner)?;
    if train {
        t.tuner.add_example(a, b, &label)?;
    } else {
        let n = t.eval.len();
        let f = t.tuner.convert(&[bert::classifier::InputExample {
            guid: format!("dev-{n}"),
            text_a: a.to_string(),
            text_b: b.map(str::to_string),
            label: Some(label),
            line: n + 1,
        }])?;
        t.eval.extend(f);
    }
    Ok(())
}

/// Adds one example: text A (`len_a` bytes of UTF-8), optional text B (NULL with `len_b` 0:
/// a single sentence) and its label id (`0 .. n_labels-1`; anything else is `BERT_ERROR_LABEL`), to
/// the training (`BERT_SPLIT_TRAIN`) or evaluation (`BERT_SPLIT_EVAL`) set. Training examples
/// can only be added before the first `bert_trainer_train` (`BERT_ERROR_INVALID_ARGUMENT`
/// after).
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_add_example(
    trainer: *mut bert_trainer,
    split: bert_split,
    text_a: *const c_char,
    len_a: usize,
    text_b: *const c_char,
    len_b: usize,
    label_id: i32,
) -> bert_status {
    guard(|| {
        add(trainer, split, text_a, len_a, text_b, len_b, |t| {
            usize::try_from(label_id)
                .ok()
                .and_then(|i| t.labels().get(i))
                .cloned()
                .ok_or_else(|| {
                    bert::Error::Label(format!(
                        "label id {label_id} is not in 0..{}",
                        t.labels().len()
                    ))
                    .into()
                })
        })
    })
}

/// `bert_trainer_add_example` with the label given by name (`label_len` bytes of UTF-8; a
/// name not in the label list is `BERT_ERROR_LABEL`).
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_add_example_label(
    trainer: *mut bert_trainer,
    split: bert_split,
    text_a: *const c_char,
    len_a: usize,
    text_b: *const c_char,
    len_b: usize,
    label: *const c_char,
    label_len: usize,
) -> bert_status {
    guard(|| {
        let name = args::text(label, label_len, "label")?.to_string();
        add(trainer, split, text_a, len_a, text_b, len_b, |t| {
            if t.labels().contains(&name) {
                Ok(name)
            } else {
                Err(
                    bert::Error::Label(format!("label {name:?} is not one of {:?}", t.labels()))
                        .into(),
                )
            }
        })
    })
}

/// Adds every row of a tab-separated file (NUL-terminated UTF-8 path) to a set, read as
/// `params` says (NULL: defaults). All or nothing: a malformed row is `BERT_ERROR_FORMAT`, a
/// label not in the list `BERT_ERROR_LABEL`, both naming the file and line; then nothing is
/// added.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_add_tsv(
    trainer: *mut bert_trainer,
    split: bert_split,
    path: *const c_char,
    params: *const bert_tsv_params,
) -> bert_status {
    guard(|| {
        let t = self::trainer(trainer)?;
        let train = split_of(split)?;
        let path = Path::new(args::c_str(path, "path")?);
        let p = args::params(params, bert_tsv_default_params())?;
        let processor = if p.task_name.is_null() {
            let col = |v: i32, what: &str| {
                usize::try_from(v).map_err(|_| Failure::invalid(format!("{what} {v} is negative")))
            };
            let b = match p.text_b_column {
                -1 => None,
                v => Some(col(v, "text_b_column")?),
            };
            Processor::generic(
                col(p.text_a_column, "text_a_column")?,
                b,
                col(p.label_column, "label_column")?,
                args::flag(p.skip_header, "skip_header")?,
            )
        } else {
            Processor::glue(args::c_str(p.task_name, "params.task_name")?)?
        };
        let s = if train { Split::Train } else { Split::Dev };
        let examples = processor.read(path, s)?;
        if train {
            t.tuner.add_examples(&examples)?;
        } else {
            let f = t.tuner.convert(&examples)?;
            t.eval.extend(f);
        }
        Ok(())
    })
}

/// Number of examples in a set; 0 if `trainer` is NULL or `split` unknown.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_num_examples(
    trainer: *const bert_trainer,
    split: bert_split,
) -> usize {
    match (trainer.as_ref(), split) {
        (Some(t), BERT_SPLIT_TRAIN) => t.tuner.num_examples(),
        (Some(t), BERT_SPLIT_EVAL) => t.eval.len(),
        _ => 0,
    }
}

/// Updates the run makes with the training examples added so far; 0 if `trainer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_num_train_steps(trainer: *const bert_trainer) -> u64 {
    trainer.as_ref().map_or(0, |t| t.tuner.num_train_steps())
}

/// Updates done so far; 0 if `trainer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_global_step(trainer: *const bert_trainer) -> u64 {
    trainer.as_ref().map_or(0, |t| t.tuner.global_step())
}

/// Trains: runs updates until the run's `bert_trainer_num_train_steps` are done, or
/// `max_steps` updates were made by this call (0: no limit), or `callback` (may be NULL)
/// returns nonzero. Returns `BERT_OK` when the run finished or `max_steps` was reached (call
/// again to go on), `BERT_ERROR_CANCELLED` when the callback stopped it (the update it saw is
/// kept; call again to go on), `BERT_ERROR_EMPTY_DATA` without training examples,
/// `BERT_ERROR_DIVERGED` if the loss stops being finite (the trainer is then unusable). The
/// first call fixes the training set.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_train(
    trainer: *mut bert_trainer,
    max_steps: u64,
    callback: bert_progress_callback,
    user_data: *mut c_void,
) -> bert_status {
    guard(|| {
        let t = self::trainer(trainer)?;
        if !t.tuner.started() && t.tuner.num_examples() > 0 {
            log(BERT_LOG_INFO, || {
                format!(
                    "training: {} examples, {} steps ({} warm-up), {} done",
                    t.tuner.num_examples(),
                    t.tuner.num_train_steps(),
                    t.tuner.num_warmup_steps(),
                    t.tuner.global_step()
                )
            });
        }
        let limit = (max_steps > 0).then_some(max_steps);
        let outcome = t.tuner.train(limit, |p| {
            let Some(cb) = callback else {
                return ControlFlow::Continue(());
            };
            let progress = bert_progress {
                size: std::mem::size_of::<bert_progress>(),
                step: p.step,
                total_steps: p.total_steps,
                loss: p.loss,
                learning_rate: p.learning_rate,
                grad_norm: p.grad_norm,
                examples_per_second: p.examples_per_second,
                elapsed_seconds: p.elapsed_seconds,
            };
            // SAFETY: the application's callback, called as documented.
            if cb(&progress, user_data) != 0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        match outcome {
            Outcome::Finished | Outcome::Paused => Ok(()),
            Outcome::Cancelled => Err(bert::Error::Cancelled(format!(
                "the progress callback stopped training after step {}",
                t.tuner.global_step()
            ))
            .into()),
        }
    })
}

/// Evaluates the current parameters on the evaluation set (dropout off): accuracy, loss, and
/// for two labels F1 and MCC of label 1, into `*out` (zeroed on failure, all but its
/// `size`).
/// `BERT_ERROR_EMPTY_DATA` if the evaluation set is empty.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_evaluate(
    trainer: *const bert_trainer,
    out: *mut bert_eval_result,
) -> bert_status {
    guard(|| {
        let o = args::output(out, "out")?;
        let t = trainer_ref(trainer)?;
        let r = t.tuner.evaluate(&t.eval, 32)?;
        o.write(&bert_eval_result {
            size: std::mem::size_of::<bert_eval_result>(),
            n_examples: r.num_examples,
            global_step: t.tuner.global_step(),
            accuracy: r.accuracy,
            loss: r.loss,
            f1: r.f1.unwrap_or(f64::NAN),
            mcc: r.mcc.unwrap_or(f64::NAN),
        });
        Ok(())
    })
}

/// Saves the fine-tuned classifier as a `.bert` file (`path`, NUL-terminated UTF-8) for
/// `bert_classifier_load_file` and `bert classify --do_predict`: written to a temporary file
/// beside it, synced and renamed, so `path` is never half-written.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_save(
    trainer: *const bert_trainer,
    path: *const c_char,
) -> bert_status {
    guard(|| {
        let t = trainer_ref(trainer)?;
        let path = args::c_str(path, "path")?;
        t.tuner.save(Path::new(path))?;
        Ok(())
    })
}

/// Saves the whole training state (parameters, optimizer slots, step, generators, data
/// position: a safetensors file, written atomically) so that `bert_trainer_resume` can
/// continue the run later, bit for bit. Fixes the training set like `bert_trainer_train`.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_save_checkpoint(
    trainer: *mut bert_trainer,
    path: *const c_char,
) -> bert_status {
    guard(|| {
        let t = self::trainer(trainer)?;
        let path = args::c_str(path, "path")?;
        t.tuner.save_checkpoint(Path::new(path))?;
        Ok(())
    })
}

/// Continues the run saved by `bert_trainer_save_checkpoint`. The trainer must have been
/// created with the same model, params and labels and given the same training examples
/// (`BERT_ERROR_INVALID_ARGUMENT` naming what differs); a damaged file is `BERT_ERROR_FORMAT`.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_resume(
    trainer: *mut bert_trainer,
    path: *const c_char,
) -> bert_status {
    guard(|| {
        let t = self::trainer(trainer)?;
        let path = args::c_str(path, "path")?;
        t.tuner.resume(Path::new(path))?;
        Ok(())
    })
}

/// Number of labels; 0 if `trainer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_trainer_num_labels(trainer: *const bert_trainer) -> usize {
    trainer.as_ref().map_or(0, |t| t.tuner.labels().len())
}
