//! `bert classify`: Google's `run_classifier.py` with its flags and its output files.
//!
//! Training: the training examples (optionally the first `--max_train_examples`) are
//! shuffled with `--seed` every epoch and cut into full batches (`drop_remainder=True`),
//! for `num_train_steps = int(examples / train_batch_size * num_train_epochs)` updates with
//! Google's AdamW, warm-up + linear decay and global-norm clipping; dropout is on (the
//! config's rates, 0.1 on the pooled output). `--gradient_accumulation_steps k` splits each
//! batch of `train_batch_size` into k micro-batches (same update, less memory);
//! `--gradient_checkpointing` recomputes each layer's activations in the backward pass (same
//! numbers, less memory). Google shuffles with a 100-example buffer; a full shuffle per epoch
//! is the named difference.
//!
//! Outputs in `--output_dir`, each written to a temporary file, synced and renamed, so an
//! error never leaves a half-written file: `model.bert` (the fine-tuned classifier, at the
//! end of training and every `--save_checkpoints_steps`), `training_state.safetensors`
//! (parameters, AdamW slots, global step, generator states and data position, written with
//! `model.bert`: `--do_train` resumes from it as tf.estimator resumes from the last
//! checkpoint in its `model_dir`; a finished run resumes to no further step),
//! `eval_results.txt` (`key = value` lines sorted by key, as Google writes them:
//! `eval_accuracy`, `eval_loss` (mean over examples), `global_step`, `loss` (mean of batch
//! means, tf.estimator's), plus `eval_f1` for MRPC and `eval_mcc` (Matthews correlation) for
//! CoLA; numbers printed as Python prints a float32) and `test_results.tsv` (one line of
//! tab-separated class probabilities per example of `test.tsv`, or of the dev file when the
//! data directory has no `test.tsv`).
//!
//! The training loop itself is the library's [`bert::classifier::FineTuner`]; this file parses
//! flags, reads the task's files, logs progress and writes the model. Training, evaluating
//! and predicting (`classify_predict.rs`) run on the back end `--backend cpu|vulkan|auto`
//! names.

use std::io::IsTerminal;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bert::backend::Backend;
use bert::classifier::{
    checkpoint, FineTuneParams, FineTuner, ModelStart, Outcome, Processor, Progress, Split,
};
use bert::config::{BertConfig, ConfigFlavor};
use bert::tokenizer::Tokenizer;
use bert::weights::{self, safetensors, tf_checkpoint, Weights};
use bert::{Context, DType};

use crate::flags::{Flags, MAX_BATCH};

/// Largest `--text_a_column` / `--text_b_column` / `--label_column`.
const MAX_COLUMN: usize = 1 << 16;

struct Options {
    max_seq_length: usize,
    train_batch_size: usize,
    eval_batch_size: usize,
    predict_batch_size: usize,
    learning_rate: f32,
    num_train_epochs: f64,
    warmup_proportion: f64,
    accumulation: usize,
    seed: u64,
    threads: usize,
    max_train_examples: usize,
    gradient_checkpointing: bool,
    save_checkpoints_steps: u64,
    log_every_n_steps: u64,
}

/// The checkpoint to start from: config, weights, tokenizer and (for a fine-tuned `.bert`)
/// its labels.
pub(crate) struct Start {
    pub config: BertConfig,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    pub labels: Vec<String>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &[
            "do_train",
            "do_eval",
            "do_predict",
            "do_lower_case",
            "skip_header",
            "use_tpu",
            "gradient_checkpointing",
        ],
    )?;
    let task_name = flags.required("task_name")?.to_string();
    let do_train = flags.bool("do_train", false)?;
    let do_eval = flags.bool("do_eval", false)?;
    let do_predict = flags.bool("do_predict", false)?;
    let data_dir = PathBuf::from(flags.required("data_dir")?);
    let output_dir = PathBuf::from(flags.required("output_dir")?);
    let o = Options {
        max_seq_length: flags.parsed("max_seq_length", 128usize)?,
        train_batch_size: flags.size("train_batch_size", 32, MAX_BATCH)?,
        eval_batch_size: flags.size("eval_batch_size", 8, MAX_BATCH)?.max(1),
        predict_batch_size: flags.size("predict_batch_size", 8, MAX_BATCH)?.max(1),
        learning_rate: flags.parsed("learning_rate", 5e-5f32)?,
        num_train_epochs: flags.parsed("num_train_epochs", 3.0f64)?,
        warmup_proportion: flags.parsed("warmup_proportion", 0.1f64)?,
        accumulation: flags.size("gradient_accumulation_steps", 1, MAX_BATCH)?,
        seed: flags.parsed("seed", 12345u64)?,
        threads: flags.threads()?,
        max_train_examples: flags.parsed("max_train_examples", 0usize)?,
        gradient_checkpointing: flags.bool("gradient_checkpointing", false)?,
        save_checkpoints_steps: flags.parsed("save_checkpoints_steps", 0u64)?,
        log_every_n_steps: flags.parsed("log_every_n_steps", 10u64)?.max(1),
    };
    let mut processor = if task_name.eq_ignore_ascii_case("tsv") {
        // A column index is bounded: usize::MAX wrapped to 0 when the row's length was checked.
        let col = |name: &str| -> Result<Option<usize>, String> {
            flags
                .get(name)
                .map(|_| flags.size(name, 0, MAX_COLUMN))
                .transpose()
        };
        let text_a = col("text_a_column")?.ok_or("--task_name=tsv needs --text_a_column")?;
        let label = col("label_column")?.ok_or("--task_name=tsv needs --label_column")?;
        Processor::generic(
            text_a,
            col("text_b_column")?,
            label,
            flags.bool("skip_header", false)?,
        )
    } else {
        Processor::glue(&task_name).map_err(|e| e.to_string())?
    };
    // Accepted so that Google's command lines run unchanged; they only select TPU execution.
    flags.bool("use_tpu", false)?;
    for f in [
        "tpu_name",
        "tpu_zone",
        "gcp_project",
        "master",
        "num_tpu_cores",
        "iterations_per_loop",
    ] {
        flags.get(f);
    }
    let start = load_start(&flags)?;
    // The encoder's dtype and back end for evaluating and predicting (training is always f32,
    // on the CPU).
    let dtype = crate::model_flags::dtype(&flags)?;
    let backend = crate::model_flags::backend_name(&flags)?;
    flags.finish()?;

    if !(do_train || do_eval || do_predict) {
        return Err("at least one of --do_train, --do_eval or --do_predict must be true".into());
    }
    // A read-only output directory is found now, not after hours of training.
    bert::output::check_writable_dir(&output_dir).map_err(|e| e.to_string())?;
    let limit = start.config.max_position_embeddings;
    if !(2..=limit).contains(&o.max_seq_length) {
        return Err(format!(
            "--max_seq_length {} is not within 2..={limit} (max_position_embeddings)",
            o.max_seq_length
        ));
    }
    if o.train_batch_size == 0 || o.accumulation == 0 || o.train_batch_size % o.accumulation != 0 {
        return Err(format!(
            "--train_batch_size {} must be a positive multiple of --gradient_accumulation_steps {}",
            o.train_batch_size, o.accumulation
        ));
    }
    let err = |e: bert::Error| e.to_string();

    // Every input is read and checked before the long part starts.
    let mut train = if do_train {
        let mut ex = processor.examples(&data_dir, Split::Train).map_err(err)?;
        if o.max_train_examples > 0 {
            ex.truncate(o.max_train_examples);
        }
        Some(ex)
    } else {
        None
    };
    if processor.labels.is_empty() {
        match (&train, start.labels.is_empty()) {
            (_, false) => processor.labels = start.labels.clone(),
            (Some(ex), true) => processor.labels_from(ex),
            (None, true) => {
                return Err(
                    "--task_name=tsv without --do_train needs a fine-tuned model with \
                            labels (--model model.bert)"
                        .into(),
                )
            }
        }
    } else if !start.labels.is_empty() && start.labels != processor.labels {
        return Err(format!(
            "the model was fine-tuned for labels {:?}, task {task_name} has {:?}",
            start.labels, processor.labels
        ));
    }
    if let Some(ex) = &mut train {
        // Recheck the labels of a generic task's training file against the final list.
        if let Some(bad) = ex.iter().find(|e| {
            e.label
                .as_ref()
                .is_some_and(|l| !processor.labels.contains(l))
        }) {
            return Err(format!(
                "{}: line {}: label {:?} is not one of the model's labels {:?}",
                processor.path(&data_dir, Split::Train).display(),
                bad.line,
                bad.label,
                processor.labels
            ));
        }
    }
    let labels = processor.labels.clone();
    let dev = if do_eval {
        Some(processor.examples(&data_dir, Split::Dev).map_err(err)?)
    } else {
        None
    };
    let test = if do_predict {
        let path = processor.path(&data_dir, Split::Test);
        Some(if path.is_file() {
            processor.read(&path, Split::Test).map_err(err)?
        } else {
            let dev_path = processor.path(&data_dir, Split::Dev);
            crate::note!(
                "bert classify: no {} in {}: predicting on {} instead",
                processor.layout(Split::Test).file_name,
                data_dir.display(),
                dev_path.display()
            );
            processor.read(&dev_path, Split::Dev).map_err(err)?
        })
    } else {
        None
    };
    std::fs::create_dir_all(&output_dir).map_err(|e| format!("{}: {e}", output_dir.display()))?;

    let hp = FineTuneParams {
        learning_rate: o.learning_rate,
        num_train_epochs: o.num_train_epochs,
        train_batch_size: o.train_batch_size,
        warmup_proportion: o.warmup_proportion,
        gradient_accumulation_steps: o.accumulation,
        seed: o.seed,
        max_seq_length: o.max_seq_length,
        threads: o.threads,
        gradient_checkpointing: o.gradient_checkpointing,
        ..FineTuneParams::default()
    };
    let (config, weights, tokenizer, global_step) = match train {
        Some(examples) => {
            let start = ModelStart {
                config: start.config,
                weights: start.weights,
                tokenizer: start.tokenizer,
                labels: start.labels,
            };
            let mut ft = FineTuner::from_start(start, labels.clone(), hp).map_err(err)?;
            ft.add_examples(&examples).map_err(err)?;
            drop(examples);
            // Training runs on the back end --backend names too: the model, gradients and
            // optimizer slots live there; the weights come back to save and to predict.
            let mut trained = None;
            let job = Train {
                ft,
                o: &o,
                output_dir: &output_dir,
                trained: &mut trained,
            };
            crate::model_flags::on_backend(backend, job)?;
            trained.ok_or("the training run returned no weights")?
        }
        None => (start.config, start.weights, start.tokenizer, 0),
    };
    if dev.is_none() && test.is_none() {
        return Ok(());
    }
    // Evaluating and predicting run on the back end --backend names.
    let job = crate::classify_predict::Predict {
        weights: convert(weights, &config, dtype).map_err(err)?,
        config,
        tokenizer,
        labels,
        trained: do_train,
        global_step,
        dev,
        test,
        task_name: &task_name,
        max_seq_length: o.max_seq_length,
        eval_batch_size: o.eval_batch_size,
        predict_batch_size: o.predict_batch_size,
        threads: o.threads,
        output_dir: &output_dir,
    };
    crate::model_flags::on_backend(backend, job)
}

/// The weights in `dtype` (`None`: unchanged).
fn convert(w: Weights, config: &BertConfig, dtype: Option<DType>) -> bert::Result<Weights> {
    match dtype {
        Some(d) => weights::quantize::convert(w, config, d),
        None => Ok(w),
    }
}

/// `--model PATH` or Google's `--bert_config_file`, `--init_checkpoint`, `--vocab_file`
/// (`bert squad` reads its model the same way).
pub(crate) fn load_start(flags: &Flags) -> Result<Start, String> {
    let err = |e: bert::Error| e.to_string();
    let lower = match flags.get("do_lower_case") {
        Some(_) => Some(flags.bool("do_lower_case", true)?),
        None => None,
    };
    let vocab_file = flags.get("vocab_file");
    let model = flags.get("model");
    let config_file = flags.get("bert_config_file");
    let checkpoint = flags.get("init_checkpoint");
    let explicit_tokenizer = |default_lower: bool| -> Result<Option<Tokenizer>, String> {
        vocab_file
            .map(|v| Tokenizer::from_vocab_file(v, lower.unwrap_or(default_lower)).map_err(err))
            .transpose()
    };
    match (model, config_file, checkpoint) {
        (Some(path), None, None) => {
            let s =
                ModelStart::load(Path::new(path), vocab_file.map(Path::new), lower).map_err(err)?;
            Ok(Start {
                config: s.config,
                weights: s.weights,
                tokenizer: s.tokenizer,
                labels: s.labels,
            })
        }
        (None, Some(config), Some(ckpt)) => {
            let tokenizer = explicit_tokenizer(true)?
                .ok_or("--vocab_file is required with --init_checkpoint")?;
            let config = BertConfig::from_file_flavor(config, ConfigFlavor::Google).map_err(err)?;
            let weights = if ckpt.ends_with(".safetensors") {
                safetensors::load(ckpt).map_err(err)?
            } else {
                tf_checkpoint::load(ckpt).map_err(err)?
            };
            weights::check_layers(&config, &weights).map_err(err)?;
            Ok(Start {
                config,
                weights,
                tokenizer,
                labels: Vec::new(),
            })
        }
        (Some(_), _, _) => {
            Err("give either --model or --bert_config_file with --init_checkpoint".into())
        }
        _ => Err(
            "no model: give --model PATH, or --bert_config_file, --init_checkpoint and \
             --vocab_file"
                .into(),
        ),
    }
}

pub(crate) fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The training run, on whichever back end `--backend` opens: what it ends with (config,
/// weights, tokenizer, global step) is left in `trained`.
struct Train<'a> {
    ft: FineTuner,
    o: &'a Options,
    output_dir: &'a Path,
    trained: &'a mut Option<(BertConfig, Weights, Tokenizer, u64)>,
}

impl crate::model_flags::OnDevice for Train<'_> {
    fn run<B: Backend>(self, backend: B) -> Result<(), String> {
        let err = |e: bert::Error| e.to_string();
        crate::note!("bert classify: training on {}", backend.describe());
        let mut ft = self.ft.on(backend).map_err(err)?;
        fine_tune(&mut ft, self.o, self.output_dir)?;
        let w = ft.weights().map_err(err)?;
        *self.trained = Some((
            ft.config().clone(),
            w,
            ft.tokenizer().clone(),
            ft.global_step(),
        ));
        Ok(())
    }
}

/// Trains `ft` to the end of its run, resuming from `training_state.safetensors` in
/// `output_dir` when there is one; writes `model.bert` and the training state every
/// `--save_checkpoints_steps` updates and at the end.
fn fine_tune<B: Backend>(
    ft: &mut FineTuner<B>,
    o: &Options,
    output_dir: &Path,
) -> Result<(), String> {
    let err = |e: bert::Error| e.to_string();
    let model_path = output_dir.join("model.bert");
    let state_path = output_dir.join(checkpoint::FILE_NAME);
    if state_path.is_file() {
        ft.resume(&state_path).map_err(err)?;
        crate::note!(
            "bert classify: resuming from {} at step {}",
            state_path.display(),
            ft.global_step()
        );
    }
    let total = ft.num_train_steps();
    crate::note!(
        "bert classify: {} examples, batch {} ({} micro-batches), {} steps, {} warm-up, \
         lr {}, max_seq_length {}, {} threads",
        ft.num_examples(),
        o.train_batch_size,
        o.accumulation,
        total,
        ft.num_warmup_steps(),
        o.learning_rate,
        o.max_seq_length,
        Context::new(o.threads).threads()
    );
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let first_step = ft.global_step();
    let (mut window_loss, mut window_steps, mut window_start) = (0.0f64, 0u64, Instant::now());
    let mut log = |p: &Progress| {
        window_loss += p.loss as f64;
        window_steps += 1;
        if p.step % o.log_every_n_steps == 0 || p.step == p.total_steps {
            let elapsed = started.elapsed().as_secs_f64();
            let window = window_start.elapsed().as_secs_f64().max(1e-9);
            let rate = (window_steps as usize * o.train_batch_size) as f64 / window;
            let done = (p.step - first_step).max(1);
            let eta = elapsed / done as f64 * (p.total_steps - p.step) as f64;
            let line = format!(
                "step {}/{} loss {:.4} lr {:.3e} {:.1} examples/s elapsed {} ETA {}",
                p.step,
                p.total_steps,
                window_loss / window_steps as f64,
                p.learning_rate,
                rate,
                format_duration(elapsed),
                format_duration(eta)
            );
            let mut err_out = std::io::stderr().lock();
            if tty {
                let _ = write!(err_out, "\r{line}\x1b[K");
                if p.step == p.total_steps {
                    let _ = writeln!(err_out);
                }
            } else {
                let _ = writeln!(err_out, "{line}");
            }
            (window_loss, window_steps, window_start) = (0.0, 0, Instant::now());
        }
        ControlFlow::Continue(())
    };
    let save = |ft: &mut FineTuner<B>| -> Result<(), String> {
        ft.save_checkpoint(&state_path).map_err(err)?;
        ft.save(&model_path).map_err(err)
    };
    let every = (o.save_checkpoints_steps > 0).then_some(o.save_checkpoints_steps);
    loop {
        // Pause at the next multiple of --save_checkpoints_steps to write a checkpoint.
        let limit = every.map(|k| k - ft.global_step() % k);
        match ft.train(limit, &mut log).map_err(err)? {
            Outcome::Finished => break,
            Outcome::Paused | Outcome::Cancelled => {
                save(ft)?;
                if tty {
                    crate::note!();
                }
                crate::note!(
                    "bert classify: step {}: wrote {} and {}",
                    ft.global_step(),
                    model_path.display(),
                    state_path.display()
                );
            }
        }
    }
    save(ft)?;
    let secs = started.elapsed().as_secs_f64();
    let steps = ft.global_step() - first_step;
    crate::note!(
        "bert classify: trained {steps} steps in {} ({:.1} examples/s); wrote {}",
        format_duration(secs),
        (steps as usize * o.train_batch_size) as f64 / secs.max(1e-9),
        model_path.display()
    );
    Ok(())
}
