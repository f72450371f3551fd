//! `bert pretrain`: Google's `run_pretraining.py` with its flags and its output files.
//!
//! Model: `--init_checkpoint` (with `--bert_config_file`: a TF checkpoint, safetensors, or
//! another run's `training_state.safetensors`, whose variables only are taken: a curriculum's
//! next phase) or `--model` (any format libbert loads); variables the checkpoint lacks (all
//! of them with `--bert_config_file` alone: a run from scratch; `cls/*` for an encoder-only export) start from `modeling.py`'s
//! initialisers, drawn from `--seed`. Data: `--input_file` (comma-separated, globs) TFRecords
//! of `bert create-pretraining-data`, every record read and checked (feature names and
//! shapes, id ranges; errors name file and record) before the first step; each epoch is a
//! shuffle of all of them (Google streams them through a 100-example shuffle buffer: the
//! named difference). Training: `--num_train_steps` updates of `--train_batch_size`, Google's
//! AdamW (weight decay 0.01, clip 1.0), warm-up then linear decay, dropout as the config says.
//!
//! Outputs in `--output_dir`, each written to a temporary file, synced and renamed:
//! `training_state.safetensors` every `--save_checkpoints_steps` and at the end (variables,
//! AdamW slots, step, generator states, data position: `--do_train` resumes from it as
//! tf.estimator resumes from its `model_dir`, to the same variables as an uninterrupted
//! run), with `--save_tf_checkpoint` also `model.ckpt-N.{index,data-00000-of-00001}` and
//! `checkpoint` (the last 5, as tf.train.Saver keeps); `eval_results.txt` with `--do_eval`
//! (`global_step`, `loss`, `masked_lm_accuracy`, `masked_lm_loss`, `next_sentence_accuracy`,
//! `next_sentence_loss`, Google's `metric_fn`, on `--eval_input_file`, default
//! `--input_file` as Google evaluates); `train_log.jsonl`, one JSON object per logged
//! interval (means over its steps) and per evaluation, appended (for plotting:
//! `scripts/plot_pretrain.py`). Progress goes to stderr every `--log_every_n_steps`.
//!
//! `--backend cpu|vulkan|auto` picks where the run's model, heads and optimizer state live
//! and its passes run (default cpu; auto: a Vulkan GPU if there is one, else the CPU).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bert::backend::Backend;
use bert::classifier::checkpoint;
use bert::config::BertConfig;
use bert::train::pretrain::{self, EvalTotals, PretrainParams, Pretrainer, StepStats};
use bert::train::pretraining_data::{FeatureShapes, PretrainingFeatures};
use bert::weights::{self, safetensors, tf_checkpoint, Tensor, Weights};

use crate::extract_features::write_atomically;
use crate::flags::{Flags, MAX_BATCH};
use crate::note;

/// TF checkpoints kept in the output directory (`tf.train.Saver`'s `max_to_keep`).
const MAX_TO_KEEP: usize = 5;

struct Options {
    params: PretrainParams,
    eval_batch_size: usize,
    max_eval_steps: usize,
    save_checkpoints_steps: u64,
    log_every_n_steps: u64,
    eval_every_n_steps: u64,
    stop_after_steps: Option<u64>,
    save_tf_checkpoint: bool,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &[
            "do_train",
            "do_eval",
            "use_tpu",
            "gradient_checkpointing",
            "save_tf_checkpoint",
            "dropout",
        ],
    )?;
    let do_train = flags.bool("do_train", false)?;
    let do_eval = flags.bool("do_eval", false)?;
    let output_dir = PathBuf::from(flags.required("output_dir")?);
    let input_file = flags.required("input_file")?.to_string();
    let eval_input_file = flags.get("eval_input_file").map(str::to_string);
    let o = Options {
        params: PretrainParams {
            max_seq_length: flags.parsed("max_seq_length", 128usize)?,
            max_predictions_per_seq: flags.parsed("max_predictions_per_seq", 20usize)?,
            train_batch_size: flags.size("train_batch_size", 32, MAX_BATCH)?,
            learning_rate: flags.parsed("learning_rate", 5e-5f32)?,
            num_train_steps: flags.parsed("num_train_steps", 100_000u64)?,
            num_warmup_steps: flags.parsed("num_warmup_steps", 10_000u64)?,
            gradient_accumulation_steps: flags.size("gradient_accumulation_steps", 1, MAX_BATCH)?,
            seed: flags.parsed("seed", 12345u64)?,
            threads: flags.threads()?,
            gradient_checkpointing: flags.bool("gradient_checkpointing", false)?,
        },
        eval_batch_size: flags.size("eval_batch_size", 8, MAX_BATCH)?.max(1),
        max_eval_steps: flags.parsed("max_eval_steps", 100usize)?,
        save_checkpoints_steps: flags.parsed("save_checkpoints_steps", 1000u64)?,
        log_every_n_steps: flags.parsed("log_every_n_steps", 10u64)?.max(1),
        eval_every_n_steps: flags.parsed("eval_every_n_steps", 0u64)?,
        stop_after_steps: flags
            .get("stop_after_steps")
            .map(|_| flags.parsed("stop_after_steps", 0u64))
            .transpose()?,
        save_tf_checkpoint: flags.bool("save_tf_checkpoint", false)?,
    };
    let dropout = flags.bool("dropout", true)?;
    let backend = flags.get("backend").unwrap_or("cpu").to_string();
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
    let (config, mut weights) = load_start(&flags)?;
    flags.finish()?;

    if !(do_train || do_eval) {
        return Err("at least one of --do_train or --do_eval must be true".into());
    }
    // A read-only output directory is found now, not after hours of training.
    bert::output::check_writable_dir(&output_dir).map_err(|e| e.to_string())?;
    let err = |e: bert::Error| e.to_string();
    let shapes = FeatureShapes {
        max_seq_length: o.params.max_seq_length,
        max_predictions_per_seq: o.params.max_predictions_per_seq,
    };
    // Every input is read and checked before the long part starts.
    let read = |patterns: &str| -> Result<Vec<PretrainingFeatures>, String> {
        let files = pretrain::expand(patterns).map_err(err)?;
        let started = Instant::now();
        let ex = pretrain::read_examples(&files, shapes, &config).map_err(err)?;
        note!(
            "bert pretrain: read {} examples from {} file(s) in {:.1} s",
            ex.len(),
            files.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(ex)
    };
    let train = if do_train {
        read(&input_file)?
    } else {
        Vec::new()
    };
    if do_train && train.is_empty() {
        return Err(format!("--input_file {input_file}: no training examples"));
    }
    let eval = if do_eval {
        read(eval_input_file.as_deref().unwrap_or(&input_file))?
    } else {
        Vec::new()
    };
    std::fs::create_dir_all(&output_dir).map_err(|e| format!("{}: {e}", output_dir.display()))?;
    let state_path = output_dir.join(checkpoint::FILE_NAME);
    if !do_train && state_path.is_file() {
        // Evaluation only: the latest checkpoint of the output directory, as
        // `estimator.evaluate` reads its `model_dir`.
        weights = state_weights(&state_path)?;
    }
    let added = pretrain::init_missing(&mut weights, &config, o.params.seed).map_err(err)?;
    if !added.is_empty() {
        note!(
            "bert pretrain: {} variable(s) initialised as modeling.py does (truncated normal, \
             stddev {}): {}",
            added.len(),
            config.initializer_range,
            summarize(&added)
        );
    }
    let run = Run {
        o,
        do_train,
        do_eval,
        dropout,
        output_dir,
        state_path,
        eval,
    };
    let params = run.o.params.clone();
    match backend.as_str() {
        "cpu" => run.on(
            Pretrainer::new(config, &weights, params, train).map_err(err)?,
            weights,
        ),
        "vulkan" => {
            #[cfg(feature = "vulkan")]
            {
                use bert::backend::vulkan::{DeviceChoice, Vulkan};
                let vk = Vulkan::open(DeviceChoice::Any)
                    .map_err(|e| format!("--backend vulkan: {e}"))?;
                let p = Pretrainer::on(vk, config, &weights, params, train).map_err(err)?;
                run.on(p, weights)
            }
            #[cfg(not(feature = "vulkan"))]
            Err(
                "--backend vulkan: this build has no Vulkan back end (cargo feature `vulkan`)"
                    .into(),
            )
        }
        "auto" => {
            #[cfg(feature = "vulkan")]
            {
                use bert::backend::vulkan::{DeviceChoice, Vulkan};
                match Vulkan::open(DeviceChoice::Gpu) {
                    Ok(vk) => {
                        let p = Pretrainer::on(vk, config, &weights, params, train).map_err(err)?;
                        return run.on(p, weights);
                    }
                    Err(e) => eprintln!("bert: --backend auto: using the CPU ({e})"),
                }
            }
            run.on(
                Pretrainer::new(config, &weights, params, train).map_err(err)?,
                weights,
            )
        }
        other => Err(format!("--backend {other:?}: expected cpu, vulkan or auto")),
    }
}

/// What the run does once its model is on a back end.
struct Run {
    o: Options,
    do_train: bool,
    do_eval: bool,
    dropout: bool,
    output_dir: PathBuf,
    state_path: PathBuf,
    eval: Vec<PretrainingFeatures>,
}

impl Run {
    /// Trains and evaluates `p` (built from `weights`, dropped here: the run holds its own
    /// copy of every variable).
    fn on<B: Backend>(self, mut p: Pretrainer<B>, weights: Weights) -> Result<(), String>
    where
        B::Buf: Clone,
    {
        let Run {
            o,
            do_train,
            do_eval,
            dropout,
            output_dir,
            state_path,
            eval,
        } = self;
        let err = |e: bert::Error| e.to_string();
        drop(weights);
        p.set_dropout(dropout);
        let mut global_step = 0;
        if !do_train && state_path.is_file() {
            global_step = checkpoint::load(&state_path).map_err(err)?.global_step;
        }
        let mut log = TrainLog::open(&output_dir.join("train_log.jsonl"))?;
        if do_train {
            if state_path.is_file() {
                p.resume(&state_path).map_err(err)?;
                note!(
                    "bert pretrain: resuming from {} at step {}",
                    state_path.display(),
                    p.global_step()
                );
            }
            train_loop(&mut p, &o, &output_dir, &eval, &mut log)?;
            global_step = p.global_step();
        }
        if do_eval {
            let r = evaluate(&mut p, &o, &eval, &mut log, global_step)?;
            let text = r.to_eval_results_txt(global_step);
            let _ = write!(std::io::stderr(), "bert pretrain: eval results\n{text}");
            write_atomically(&output_dir.join("eval_results.txt"), text.as_bytes())?;
        }
        Ok(())
    }
}

/// The model the flags name and its config; an empty `Weights` for a run from scratch.
fn load_start(flags: &Flags) -> Result<(BertConfig, Weights), String> {
    let err = |e: bert::Error| e.to_string();
    let config = flags.get("bert_config_file");
    let ckpt = flags.get("init_checkpoint");
    match (flags.get("model"), config, ckpt) {
        (Some(path), None, None) => weights::load_model_files(Path::new(path)).map_err(err),
        (None, Some(config), ckpt) => {
            let config = BertConfig::from_file(config).map_err(err)?;
            let w = match ckpt {
                None => Weights::new(),
                // Another run's state: its variables start this one (a new schedule and
                // fresh AdamW slots, as Google's seq-512 phase starts from the seq-128 one).
                Some(c) if Path::new(c).ends_with(checkpoint::FILE_NAME) => {
                    state_weights(Path::new(c))?
                }
                Some(c) if c.ends_with(".safetensors") => safetensors::load(c).map_err(err)?,
                Some(c) => tf_checkpoint::load(c).map_err(err)?,
            };
            weights::check_layers(&config, &w).map_err(err)?;
            Ok((config, w))
        }
        (Some(_), _, _) => {
            Err("give either --model or --bert_config_file [with --init_checkpoint]".into())
        }
        (None, None, _) => Err(
            "no model: give --model PATH, or --bert_config_file (from scratch) with \
             optionally --init_checkpoint"
                .into(),
        ),
    }
}

/// The variables of a training state, for evaluating it.
fn state_weights(path: &Path) -> Result<Weights, String> {
    let state = checkpoint::load(path).map_err(|e| e.to_string())?;
    let mut w = Weights::new();
    for var in state.variables {
        let t = Tensor::new(var.shape, var.value).map_err(|e| e.to_string())?;
        w.insert(var.name, t);
    }
    Ok(w)
}

/// `a, b, c` or `a, b, ... (n in all)`.
fn summarize(names: &[String]) -> String {
    if names.len() <= 4 {
        names.join(", ")
    } else {
        format!("{}, ... ({} in all)", names[..3].join(", "), names.len())
    }
}

/// Means of the step statistics since the last log line.
#[derive(Default)]
struct Interval {
    steps: u64,
    loss: f64,
    masked_lm_loss: f64,
    masked_lm_accuracy: f64,
    next_sentence_loss: f64,
    next_sentence_accuracy: f64,
    grad_norm: f64,
    started: Option<Instant>,
}

impl Interval {
    fn add(&mut self, s: &StepStats) {
        self.steps += 1;
        self.loss += s.report.loss as f64;
        self.masked_lm_loss += s.masked_lm_loss;
        self.masked_lm_accuracy += s.masked_lm_accuracy;
        self.next_sentence_loss += s.next_sentence_loss;
        self.next_sentence_accuracy += s.next_sentence_accuracy;
        self.grad_norm += s.report.grad_norm;
    }
}

/// `train_log.jsonl`, appended line by line (a resumed run continues it).
struct TrainLog {
    file: std::fs::File,
    path: PathBuf,
}

impl TrainLog {
    fn open(path: &Path) -> Result<TrainLog, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TrainLog {
            file,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, value: serde_json::Value) -> Result<(), String> {
        writeln!(self.file, "{value}").map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

fn train_loop<B: Backend>(
    p: &mut Pretrainer<B>,
    o: &Options,
    output_dir: &Path,
    eval: &[PretrainingFeatures],
    log: &mut TrainLog,
) -> Result<(), String>
where
    B::Buf: Clone,
{
    let err = |e: bert::Error| e.to_string();
    let total = o.params.num_train_steps;
    let batch = o.params.train_batch_size as f64;
    let started = Instant::now();
    let mut done = 0u64;
    let mut iv = Interval::default();
    let mut saved = None;
    note!(
        "bert pretrain: {} examples, batch {}, {} steps ({} warm-up) from step {}, {} thread(s)",
        p.num_examples(),
        o.params.train_batch_size,
        total,
        o.params.num_warmup_steps,
        p.global_step(),
        p.trainer().threads()
    );
    while !p.finished() && o.stop_after_steps.map_or(true, |n| done < n) {
        let t0 = *iv.started.get_or_insert_with(Instant::now);
        let s = p.step().map_err(err)?;
        done += 1;
        iv.add(&s);
        let step = s.report.global_step;
        if step % o.log_every_n_steps == 0 || p.finished() {
            let secs = t0.elapsed().as_secs_f64();
            let n = iv.steps as f64;
            let eps = n * batch / secs.max(1e-9);
            note!(
                "step {step}/{total}: loss {:.4}, mlm acc {:.4} (mlm loss {:.4}, nsp acc {:.3}), \
                 lr {:.3e}, {eps:.1} examples/s",
                iv.loss / n,
                iv.masked_lm_accuracy / n,
                iv.masked_lm_loss / n,
                iv.next_sentence_accuracy / n,
                s.report.learning_rate
            );
            log.write(serde_json::json!({
                "step": step,
                "loss": iv.loss / n,
                "masked_lm_loss": iv.masked_lm_loss / n,
                "masked_lm_accuracy": iv.masked_lm_accuracy / n,
                "next_sentence_loss": iv.next_sentence_loss / n,
                "next_sentence_accuracy": iv.next_sentence_accuracy / n,
                "grad_norm": iv.grad_norm / n,
                "learning_rate": s.report.learning_rate,
                "examples_per_second": eps,
                "seconds_per_step": secs / n,
                "elapsed_seconds": started.elapsed().as_secs_f64(),
            }))?;
            iv = Interval::default();
        }
        if o.save_checkpoints_steps > 0 && step % o.save_checkpoints_steps == 0 {
            save(p, o, output_dir)?;
            saved = Some(step);
        }
        if o.eval_every_n_steps > 0 && step % o.eval_every_n_steps == 0 && !eval.is_empty() {
            evaluate(p, o, eval, log, step)?;
        }
    }
    // The final checkpoint (also when nothing was left to do: it then rewrites the same).
    if saved != Some(p.global_step()) {
        save(p, o, output_dir)?;
    }
    note!(
        "bert pretrain: trained {done} steps in {:.1} s, at step {}",
        started.elapsed().as_secs_f64(),
        p.global_step()
    );
    Ok(())
}

/// Writes the training state and, with `--save_tf_checkpoint`, `model.ckpt-N`.
fn save<B: Backend>(p: &Pretrainer<B>, o: &Options, dir: &Path) -> Result<(), String>
where
    B::Buf: Clone,
{
    let err = |e: bert::Error| e.to_string();
    let step = p.global_step();
    let path = dir.join(checkpoint::FILE_NAME);
    p.save_checkpoint(&path).map_err(err)?;
    let mut wrote = path.display().to_string();
    if o.save_tf_checkpoint {
        let name = format!("model.ckpt-{step}");
        let w = p.weights().map_err(err)?;
        tf_checkpoint::save(dir.join(&name), &w, Some(step as i64)).map_err(err)?;
        let mut kept = tf_checkpoints(dir);
        kept.retain(|(s, _)| *s != step);
        kept.push((step, name.clone()));
        let cut = kept.len().saturating_sub(MAX_TO_KEEP);
        for (_, old) in kept.drain(..cut) {
            for ext in ["index", "data-00000-of-00001"] {
                let _ = std::fs::remove_file(dir.join(format!("{old}.{ext}")));
            }
        }
        let all: Vec<&str> = kept.iter().map(|(_, n)| n.as_str()).collect();
        tf_checkpoint::write_checkpoint_state(dir, &name, &all).map_err(err)?;
        wrote.push_str(&format!(", {}", dir.join(&name).display()));
    }
    note!("bert pretrain: step {step}: wrote {wrote}");
    Ok(())
}

/// The `model.ckpt-N` prefixes in `dir`, by step.
fn tf_checkpoints(dir: &Path) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name
                .strip_prefix("model.ckpt-")?
                .strip_suffix(".index")?
                .parse()
                .ok()?;
            Some((step, format!("model.ckpt-{step}")))
        })
        .collect();
    out.sort();
    out
}

/// Google's evaluation, logged to stderr and `train_log.jsonl` at `step` (the evaluated
/// state's: an evaluation alone reads it from the saved state, not from the engine).
fn evaluate<B: Backend>(
    p: &mut Pretrainer<B>,
    o: &Options,
    eval: &[PretrainingFeatures],
    log: &mut TrainLog,
    step: u64,
) -> Result<EvalTotals, String>
where
    B::Buf: Clone,
{
    let started = Instant::now();
    let r = p
        .evaluate(eval, o.eval_batch_size, o.max_eval_steps)
        .map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let eps = (r.batches * o.eval_batch_size) as f64 / secs.max(1e-9);
    note!(
        "eval at step {step}: loss {:.4}, mlm acc {:.4} (mlm loss {:.4}, nsp acc {:.3}) on {} \
         examples, {eps:.1} examples/s",
        r.loss(),
        r.masked_lm_accuracy(),
        r.masked_lm_mean_loss(),
        r.next_sentence_accuracy(),
        r.examples
    );
    log.write(serde_json::json!({
        "step": step,
        "eval": {
            "loss": r.loss(),
            "masked_lm_loss": r.masked_lm_mean_loss(),
            "masked_lm_accuracy": r.masked_lm_accuracy(),
            "next_sentence_loss": r.next_sentence_mean_loss(),
            "next_sentence_accuracy": r.next_sentence_accuracy(),
            "examples": r.examples,
            "examples_per_second": eps,
        },
    }))?;
    Ok(r)
}
