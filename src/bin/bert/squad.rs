//! `bert squad`: Google's `run_squad.py` with its flags and its output files, then the
//! official evaluation of the predictions.
//!
//! Training (`--do_train`): `read_squad_examples` of `--train_file` (one answer per
//! question, as Google requires), shuffled as Google shuffles them (`random.Random(12345)`),
//! converted to features by `--max_seq_length`, `--doc_stride` and `--max_query_length`, and
//! fine-tuned for `int(examples / train_batch_size * num_train_epochs)` updates
//! ([`bert::squad::SquadFineTuner`]: Google's loss, AdamW, warm-up + linear decay,
//! global-norm clipping, dropout on). The model is written to `output_dir/model.bert` at the
//! end and every `--save_checkpoints_steps` updates; `--do_predict` alone with `--model
//! output_dir/model.bert` predicts with it, as does a Google TF checkpoint holding
//! `cls/squad/*` given by `--init_checkpoint`.
//!
//! Prediction (`--do_predict`): `predictions.json`, `nbest_predictions.json` and, with
//! `--version_2_with_negative`, `null_odds.json` in `--output_dir`, byte for byte as
//! `write_predictions` writes them; then `evaluate-v1.1.py` (or `evaluate-v2.0.py` with
//! `null_odds.json` as the no-answer file, as Google's README runs it) on `--predict_file`,
//! printed and written to `output_dir/eval_results.json` (`squad_predict.rs`). Training and
//! predicting run on the back end `--backend cpu|vulkan|auto` names.
//!
//! A run writes its whole training state (`training_state.safetensors`: variables, AdamW
//! slots, step, generators, feature order) beside `model.bert` every
//! `--save_checkpoints_steps` updates and resumes from it when started again with the same
//! flags and data (as `run_squad.py` resumes from `model.ckpt-N` in `output_dir`).
//!
//! Differences: features are shuffled in full every epoch (Google: a 100-feature buffer); `--verbose_logging` is
//! accepted and changes nothing.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bert::backend::Backend;
use bert::squad::{
    self, Dataset, FeatureOptions, PredictOptions, SquadFineTuner, SquadTrainParams,
};
use bert::tokenizer::Tokenizer;
use bert::train::checkpoint;
use bert::train::pretraining_data::PyRandom;
use bert::weights::Weights;
use bert::{BertConfig, Context};

use crate::classify::{format_duration, load_start};
use crate::flags::{Flags, MAX_BATCH};

/// Flags of the training half.
struct TrainFlags {
    params: SquadTrainParams,
    max_train_examples: usize,
    save_checkpoints_steps: u64,
    log_every_n_steps: u64,
    /// libbert's: stop (with a checkpoint) after this many updates of this invocation.
    stop_after_steps: Option<u64>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &[
            "do_train",
            "do_predict",
            "do_lower_case",
            "version_2_with_negative",
            "verbose_logging",
            "use_tpu",
            "gradient_checkpointing",
        ],
    )?;
    let do_train = flags.bool("do_train", false)?;
    let do_predict = flags.bool("do_predict", false)?;
    let output_dir = PathBuf::from(flags.required("output_dir")?);
    let train_file = flags.get("train_file").map(PathBuf::from);
    let predict_file = flags.get("predict_file").map(PathBuf::from);
    let v2 = flags.bool("version_2_with_negative", false)?;
    let fo = FeatureOptions {
        max_seq_length: flags.size("max_seq_length", 384, MAX_BATCH)?,
        doc_stride: flags.size("doc_stride", 128, MAX_BATCH)?,
        max_query_length: flags.size("max_query_length", 64, MAX_BATCH)?,
    };
    let t = TrainFlags {
        params: SquadTrainParams {
            learning_rate: flags.parsed("learning_rate", 5e-5f32)?,
            num_train_epochs: flags.parsed("num_train_epochs", 3.0f64)?,
            train_batch_size: flags.size("train_batch_size", 32, MAX_BATCH)?,
            warmup_proportion: flags.parsed("warmup_proportion", 0.1f64)?,
            gradient_accumulation_steps: flags.size("gradient_accumulation_steps", 1, MAX_BATCH)?,
            seed: flags.parsed("seed", 12345u64)?,
            threads: flags.threads()?,
            gradient_checkpointing: flags.bool("gradient_checkpointing", false)?,
        },
        max_train_examples: flags.parsed("max_train_examples", 0usize)?,
        save_checkpoints_steps: flags.parsed("save_checkpoints_steps", 0u64)?,
        log_every_n_steps: flags.parsed("log_every_n_steps", 10u64)?.max(1),
        stop_after_steps: flags
            .get("stop_after_steps")
            .map(|_| flags.parsed("stop_after_steps", 0u64))
            .transpose()?,
    };
    let predict_batch_size = flags.size("predict_batch_size", 8, MAX_BATCH)?.max(1);
    let po = PredictOptions {
        n_best_size: flags.size("n_best_size", 20, MAX_BATCH)?,
        max_answer_length: flags.size("max_answer_length", 30, MAX_BATCH)?,
        do_lower_case: true, // the tokenizer's, set below
        version_2_with_negative: v2,
        null_score_diff_threshold: flags.parsed("null_score_diff_threshold", 0.0f64)?,
    };
    flags.bool("verbose_logging", false)?;
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
    // Where training and predicting run.
    let backend = crate::model_flags::backend_name(&flags)?;
    flags.finish()?;

    // validate_flags_or_throw.
    if !(do_train || do_predict) {
        return Err("at least one of --do_train or --do_predict must be true".into());
    }
    if do_train && train_file.is_none() {
        return Err("if --do_train is true, then --train_file must be specified".into());
    }
    if do_predict && predict_file.is_none() {
        return Err("if --do_predict is true, then --predict_file must be specified".into());
    }
    let limit = start.config.max_position_embeddings;
    if fo.max_seq_length > limit {
        return Err(format!(
            "cannot use sequence length {} because the BERT model was only trained up to \
             sequence length {limit}",
            fo.max_seq_length
        ));
    }
    fo.validate().map_err(|e| e.to_string())?;
    if po.n_best_size == 0 {
        return Err("--n_best_size must be at least 1".into());
    }
    bert::output::check_writable_dir(&output_dir).map_err(|e| e.to_string())?;
    let err = |e: bert::Error| e.to_string();

    // Every input is read and checked before the long part starts.
    let train = match (do_train, &train_file) {
        (true, Some(path)) => {
            let read = squad::read_squad_examples(path, true, v2).map_err(err)?;
            if !read.skipped.is_empty() {
                crate::note!(
                    "bert squad: {} training questions skipped (answer text not found in the \
                     context, as Google skips them)",
                    read.skipped.len()
                );
            }
            let mut examples = read.examples;
            // run_squad.py: `rng = random.Random(12345); rng.shuffle(train_examples)`.
            PyRandom::new(12345).shuffle(&mut examples);
            if t.max_train_examples > 0 {
                examples.truncate(t.max_train_examples);
            }
            Some(examples)
        }
        _ => None,
    };
    let predict = match (do_predict, &predict_file) {
        (true, Some(path)) => Some((
            squad::read_squad_examples(path, false, v2).map_err(err)?,
            Dataset::from_file(path).map_err(err)?,
        )),
        _ => None,
    };
    std::fs::create_dir_all(&output_dir).map_err(|e| format!("{}: {e}", output_dir.display()))?;

    let (config, weights, tokenizer) = match train {
        Some(examples) => {
            let features =
                squad::convert_examples_to_features(&examples, &start.tokenizer, &fo, true)
                    .map_err(err)?;
            let ft = SquadFineTuner::new(
                start.config,
                start.weights,
                start.tokenizer,
                features,
                examples.len(),
                t.params.clone(),
            )
            .map_err(err)?;
            crate::note!(
                "bert squad: {} examples, {} features, batch {} ({} micro-batches), {} steps, \
                 {} warm-up, lr {}, max_seq_length {}, {} threads",
                examples.len(),
                ft.num_features(),
                t.params.train_batch_size,
                t.params.gradient_accumulation_steps,
                ft.num_train_steps(),
                ft.num_warmup_steps(),
                t.params.learning_rate,
                fo.max_seq_length,
                Context::new(t.params.threads).threads()
            );
            drop(examples);
            // The trainer (model, gradients, AdamW slots) is built on the back end when the
            // run starts; the weights come back to save and to predict.
            let mut trained = None;
            let job = Train {
                ft,
                t: &t,
                output_dir: &output_dir,
                trained: &mut trained,
            };
            crate::model_flags::on_backend(backend, job)?;
            trained.ok_or("the training run returned no weights")?
        }
        None => (start.config, start.weights, start.tokenizer),
    };
    match predict {
        Some((read, data)) => crate::model_flags::on_backend(
            backend,
            crate::squad_predict::Predict {
                config,
                weights,
                tokenizer,
                run: crate::squad_predict::Run {
                    examples: &read.examples,
                    data: &data,
                    fo: &fo,
                    po: &po,
                    batch_size: predict_batch_size,
                    threads: t.params.threads,
                    output_dir: &output_dir,
                },
            },
        ),
        None => Ok(()),
    }
}

/// The training run, on whichever back end `--backend` opens: what it ends with (config,
/// weights, tokenizer) is left in `trained`.
struct Train<'a> {
    ft: SquadFineTuner,
    t: &'a TrainFlags,
    output_dir: &'a Path,
    trained: &'a mut Option<(BertConfig, Weights, Tokenizer)>,
}

impl crate::model_flags::OnDevice for Train<'_> {
    fn run<B: Backend>(self, backend: B) -> Result<(), String> {
        let err = |e: bert::Error| e.to_string();
        crate::note!("bert squad: training on {}", backend.describe());
        let mut ft = self.ft.on(backend).map_err(err)?;
        fine_tune(&mut ft, self.t, self.output_dir)?;
        let w = ft.weights().map_err(err)?;
        *self.trained = Some((ft.config().clone(), w, ft.tokenizer().clone()));
        Ok(())
    }
}

/// Trains to the end of the run, resuming from `training_state.safetensors` in
/// `output_dir` when there is one (a killed run goes on from its last checkpoint); writes
/// `model.bert` and the training state every `--save_checkpoints_steps` updates, and the
/// model at the end.
fn fine_tune<B: Backend>(
    ft: &mut SquadFineTuner<B>,
    t: &TrainFlags,
    output_dir: &Path,
) -> Result<(), String> {
    let err = |e: bert::Error| e.to_string();
    let model_path = output_dir.join("model.bert");
    let state_path = output_dir.join(checkpoint::FILE_NAME);
    if state_path.is_file() {
        ft.resume(&state_path).map_err(err)?;
        crate::note!(
            "bert squad: resuming from {} at step {}",
            state_path.display(),
            ft.global_step()
        );
    }
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let first_step = ft.global_step();
    let total = ft.num_train_steps();
    let (mut window_loss, mut window_steps, mut window_start) = (0.0f64, 0u64, Instant::now());
    while !ft.finished() {
        if t.stop_after_steps == Some(ft.global_step() - first_step) {
            ft.save_checkpoint(&state_path).map_err(err)?;
            ft.save(&model_path).map_err(err)?;
            crate::note!(
                "bert squad: stopped at step {} (--stop_after_steps); run again to resume",
                ft.global_step()
            );
            return Ok(());
        }
        let r = ft.step().map_err(err)?;
        window_loss += r.loss as f64;
        window_steps += 1;
        if r.global_step % t.log_every_n_steps == 0 || r.global_step == total {
            let elapsed = started.elapsed().as_secs_f64();
            let window = window_start.elapsed().as_secs_f64().max(1e-9);
            let rate = (window_steps as usize * t.params.train_batch_size) as f64 / window;
            let done = (r.global_step - first_step).max(1);
            let eta = elapsed / done as f64 * (total - r.global_step) as f64;
            let line = format!(
                "step {}/{total} loss {:.4} lr {:.3e} {rate:.1} features/s elapsed {} ETA {}",
                r.global_step,
                window_loss / window_steps as f64,
                r.learning_rate,
                format_duration(elapsed),
                format_duration(eta)
            );
            let mut out = std::io::stderr().lock();
            let _ = if tty {
                write!(out, "\r{line}\x1b[K")
            } else {
                writeln!(out, "{line}")
            };
            (window_loss, window_steps, window_start) = (0.0, 0, Instant::now());
        }
        let every = t.save_checkpoints_steps;
        if every > 0 && r.global_step % every == 0 && r.global_step < total {
            ft.save_checkpoint(&state_path).map_err(err)?;
            ft.save(&model_path).map_err(err)?;
        }
    }
    if tty {
        crate::note!();
    }
    ft.save(&model_path).map_err(err)?;
    let secs = started.elapsed().as_secs_f64();
    let steps = total - first_step;
    crate::note!(
        "bert squad: trained {steps} steps in {} ({:.1} features/s); wrote {}",
        format_duration(secs),
        (steps as usize * t.params.train_batch_size) as f64 / secs.max(1e-9),
        model_path.display()
    );
    Ok(())
}
