//! `bert classify`: Google's `run_classifier.py` with its flags and its output files.
//!
//! Training: the training examples (optionally the first `--max_train_examples`) are
//! shuffled with `--seed` every epoch and cut into full batches (`drop_remainder=True`),
//! for `num_train_steps = int(examples / train_batch_size * num_train_epochs)` updates with
//! Google's AdamW, warm-up + linear decay and global-norm clipping; dropout is on (the
//! config's rates, 0.1 on the pooled output). `--gradient_accumulation_steps k` splits each
//! batch of `train_batch_size` into k micro-batches (same update, less memory). Google
//! shuffles with a 100-example buffer; a full shuffle per epoch is the named difference.
//!
//! Outputs in `--output_dir`, each written to a temporary file, synced and renamed, so an
//! error never leaves a half-written file: `model.bert` (the fine-tuned classifier, at the
//! end of training and every `--save_checkpoints_steps`), `eval_results.txt`
//! (`key = value` lines sorted by key, as Google writes them: `eval_accuracy`, `eval_loss`
//! (mean over examples), `global_step`, `loss` (mean of batch means, tf.estimator's), plus
//! `eval_f1` for MRPC and `eval_mcc` (Matthews correlation) for CoLA; numbers printed as
//! Python prints a float32) and `test_results.tsv` (one
//! line of tab-separated class probabilities per example of `test.tsv`, or of the dev
//! file when the data directory has no `test.tsv`).

use std::io::IsTerminal;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bert::backend::Pool;
use bert::classifier::{self, metrics, Classifier, InputFeatures, PaddedBatch, Processor, Split};
use bert::config::{BertConfig, ConfigFlavor};
use bert::tokenizer::{Tokenizer, Vocab};
use bert::train::{AdamWConfig, Params, Rng, Schedule, Trainer};
use bert::weights::{self, native::NativeModel, safetensors, tf_checkpoint, Weights};
use bert::{Context, DType};

use crate::extract_features::write_atomically;
use crate::flags::Flags;

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
    save_checkpoints_steps: u64,
    log_every_n_steps: u64,
}

/// The checkpoint to start from: config, weights, tokenizer and (for a fine-tuned `.bert`)
/// its labels.
struct Start {
    config: BertConfig,
    weights: Weights,
    tokenizer: Tokenizer,
    labels: Vec<String>,
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
        train_batch_size: flags.parsed("train_batch_size", 32usize)?,
        eval_batch_size: flags.parsed("eval_batch_size", 8usize)?.max(1),
        predict_batch_size: flags.parsed("predict_batch_size", 8usize)?.max(1),
        learning_rate: flags.parsed("learning_rate", 5e-5f32)?,
        num_train_epochs: flags.parsed("num_train_epochs", 3.0f64)?,
        warmup_proportion: flags.parsed("warmup_proportion", 0.1f64)?,
        accumulation: flags.parsed("gradient_accumulation_steps", 1usize)?,
        seed: flags.parsed("seed", 12345u64)?,
        threads: flags.parsed("threads", 0usize)?,
        max_train_examples: flags.parsed("max_train_examples", 0usize)?,
        save_checkpoints_steps: flags.parsed("save_checkpoints_steps", 0u64)?,
        log_every_n_steps: flags.parsed("log_every_n_steps", 10u64)?.max(1),
    };
    let mut processor = if task_name.eq_ignore_ascii_case("tsv") {
        let col = |name: &str| -> Result<Option<usize>, String> {
            flags
                .get(name)
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("flag --{name}: cannot parse {v:?}"))
                })
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
    // The encoder's dtype for evaluating and predicting (training is always f32).
    let dtype = crate::model_flags::dtype(&flags)?;
    flags.finish()?;

    if !(do_train || do_eval || do_predict) {
        return Err("at least one of --do_train, --do_eval or --do_predict must be true".into());
    }
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
            eprintln!(
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
    let model_path = output_dir.join("model.bert");

    let Start {
        config,
        weights,
        tokenizer,
        ..
    } = start;
    let (classifier, global_step) = match train {
        Some(examples) => {
            let features = classifier::convert_examples(
                &examples,
                &labels,
                &tokenizer,
                o.max_seq_length,
                o.threads.max(1),
            )
            .map_err(err)?;
            let params = Params::load(&weights, &config, labels.len(), o.seed).map_err(err)?;
            drop(weights);
            let trainer = fine_tune(params, &features, &o, &tokenizer, &labels, &model_path)?;
            classifier::save(&model_path, trainer.params(), &tokenizer, &labels).map_err(err)?;
            eprintln!("bert classify: wrote {}", model_path.display());
            let step = trainer.global_step();
            let w = classifier::params_to_weights(trainer.params()).map_err(err)?;
            let w = convert(w, &config, dtype).map_err(err)?;
            (
                Classifier::from_weights(config, &w, tokenizer, labels.clone()).map_err(err)?,
                step,
            )
        }
        None => {
            let weights = convert(weights, &config, dtype).map_err(err)?;
            (
                Classifier::from_weights(config, &weights, tokenizer, labels.clone()).map_err(
                    |e| {
                        format!(
                            "{e} (evaluating needs a fine-tuned classifier: train with \
                             --do_train)"
                        )
                    },
                )?,
                0,
            )
        }
    };
    let mut ctx = Context::new(o.threads);
    if let Some(examples) = dev {
        let features = classifier::convert_examples(
            &examples,
            &labels,
            classifier.tokenizer(),
            o.max_seq_length,
            ctx.threads(),
        )
        .map_err(err)?;
        let text = evaluate(
            &classifier,
            &mut ctx,
            &features,
            &o,
            &task_name,
            global_step,
        )?;
        eprint!("bert classify: eval results\n{text}");
        write_atomically(&output_dir.join("eval_results.txt"), text.as_bytes())?;
    }
    if let Some(examples) = test {
        let features = classifier::convert_examples(
            &examples,
            &labels,
            classifier.tokenizer(),
            o.max_seq_length,
            ctx.threads(),
        )
        .map_err(err)?;
        let mut text = String::new();
        for chunk in features.chunks(o.predict_batch_size) {
            let refs: Vec<&InputFeatures> = chunk.iter().collect();
            let probs = classifier
                .probabilities(&mut ctx, &PaddedBatch::new(&refs))
                .map_err(err)?;
            for row in probs.chunks_exact(labels.len()) {
                let cols: Vec<String> = row.iter().map(f32::to_string).collect();
                text.push_str(&cols.join("\t"));
                text.push('\n');
            }
        }
        write_atomically(&output_dir.join("test_results.tsv"), text.as_bytes())?;
        eprintln!(
            "bert classify: wrote {} ({} examples)",
            output_dir.join("test_results.tsv").display(),
            features.len()
        );
    }
    Ok(())
}

/// The weights in `dtype` (`None`: unchanged).
fn convert(w: Weights, config: &BertConfig, dtype: Option<DType>) -> bert::Result<Weights> {
    match dtype {
        Some(d) => weights::quantize::convert(w, config, d),
        None => Ok(w),
    }
}

/// `--model PATH` or Google's `--bert_config_file`, `--init_checkpoint`, `--vocab_file`.
fn load_start(flags: &Flags) -> Result<Start, String> {
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
            let path = Path::new(path);
            let (config, weights) = weights::load_model_files(path).map_err(err)?;
            let native = path.is_file() && path.extension().is_some_and(|e| e == "bert");
            let (tokenizer, labels) = if native {
                let m = NativeModel::open(path).map_err(err)?;
                let lower_default = m.do_lower_case();
                let tok = match explicit_tokenizer(lower_default)? {
                    Some(t) => t,
                    None => {
                        let vocab = Vocab::from_tokens(m.vocab().iter().map(String::as_str))
                            .map_err(err)?;
                        Tokenizer::new(vocab, lower.unwrap_or(lower_default)).map_err(err)?
                    }
                };
                (tok, m.labels().to_vec())
            } else {
                let dir = if path.is_dir() {
                    path.to_path_buf()
                } else {
                    path.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                let lower_default = hf_do_lower_case(&dir).unwrap_or(true);
                let tok = match explicit_tokenizer(lower_default)? {
                    Some(t) => t,
                    None => {
                        let vocab = dir.join("vocab.txt");
                        if !vocab.is_file() {
                            return Err(format!(
                                "no vocab.txt beside the model in {} (give --vocab_file)",
                                dir.display()
                            ));
                        }
                        Tokenizer::from_vocab_file(vocab, lower.unwrap_or(lower_default))
                            .map_err(err)?
                    }
                };
                (tok, Vec::new())
            };
            Ok(Start {
                config,
                weights,
                tokenizer,
                labels,
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

/// `do_lower_case` of a Hugging Face `tokenizer_config.json` beside the model.
fn hf_do_lower_case(dir: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .get("do_lower_case")?
        .as_bool()
}

/// Uniform integer in `0..n` (multiply-shift; the bias is below 2⁻³² · n).
fn below(rng: &mut Rng, n: usize) -> usize {
    ((rng.next_u32() as u64 * n as u64) >> 32) as usize
}

/// Example indices epoch after epoch, each epoch a fresh Fisher–Yates shuffle.
struct Order {
    rng: Rng,
    perm: Vec<usize>,
    at: usize,
}

impl Order {
    fn new(n: usize, seed: u64) -> Order {
        Order {
            // A stream of its own, so that shuffling does not shift the dropout masks.
            rng: Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15),
            perm: (0..n).collect(),
            at: n,
        }
    }

    fn next(&mut self) -> usize {
        if self.at == self.perm.len() {
            for i in (1..self.perm.len()).rev() {
                let j = below(&mut self.rng, i + 1);
                self.perm.swap(i, j);
            }
            self.at = 0;
        }
        self.at += 1;
        self.perm[self.at - 1]
    }
}

fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn fine_tune(
    params: Params,
    features: &[InputFeatures],
    o: &Options,
    tokenizer: &Tokenizer,
    labels: &[String],
    model_path: &Path,
) -> Result<Trainer, String> {
    let err = |e: bert::Error| e.to_string();
    let num_train_steps =
        (features.len() as f64 / o.train_batch_size as f64 * o.num_train_epochs) as u64;
    if num_train_steps == 0 {
        return Err(format!(
            "{} training examples, batch {} and {} epochs make no training step",
            features.len(),
            o.train_batch_size,
            o.num_train_epochs
        ));
    }
    let num_warmup_steps = (num_train_steps as f64 * o.warmup_proportion) as u64;
    let schedule = Schedule {
        init_lr: o.learning_rate,
        num_train_steps,
        num_warmup_steps,
    };
    let pool = Pool::new(o.threads);
    eprintln!(
        "bert classify: {} examples, batch {} ({} micro-batches), {} steps, {} warm-up, \
         lr {}, max_seq_length {}, {} threads",
        features.len(),
        o.train_batch_size,
        o.accumulation,
        num_train_steps,
        num_warmup_steps,
        o.learning_rate,
        o.max_seq_length,
        pool.threads()
    );
    let mut trainer = Trainer::new(params, schedule, AdamWConfig::default(), o.seed, pool);
    let mut order = Order::new(features.len(), o.seed);
    let micro = o.train_batch_size / o.accumulation;
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let (mut window_loss, mut window_steps, mut window_start) = (0.0f64, 0u64, Instant::now());
    for step in 1..=num_train_steps {
        for _ in 0..o.accumulation {
            let batch: Vec<&InputFeatures> = (0..micro).map(|_| &features[order.next()]).collect();
            let padded = PaddedBatch::new(&batch);
            trainer.accumulate(&padded.train_batch()).map_err(err)?;
        }
        let report = trainer.apply().map_err(err)?;
        if !report.loss.is_finite() {
            return Err(format!(
                "step {step}: the loss is {} (diverged)",
                report.loss
            ));
        }
        window_loss += report.loss as f64;
        window_steps += 1;
        if step % o.log_every_n_steps == 0 || step == num_train_steps {
            let elapsed = started.elapsed().as_secs_f64();
            let window = window_start.elapsed().as_secs_f64().max(1e-9);
            let rate = (window_steps as usize * o.train_batch_size) as f64 / window;
            let eta = elapsed / step as f64 * (num_train_steps - step) as f64;
            let line = format!(
                "step {step}/{num_train_steps} loss {:.4} lr {:.3e} {:.1} examples/s \
                 elapsed {} ETA {}",
                window_loss / window_steps as f64,
                report.learning_rate,
                rate,
                format_duration(elapsed),
                format_duration(eta)
            );
            let mut err_out = std::io::stderr().lock();
            if tty {
                let _ = write!(err_out, "\r{line}\x1b[K");
                if step == num_train_steps {
                    let _ = writeln!(err_out);
                }
            } else {
                let _ = writeln!(err_out, "{line}");
            }
            (window_loss, window_steps, window_start) = (0.0, 0, Instant::now());
        }
        if o.save_checkpoints_steps > 0
            && step % o.save_checkpoints_steps == 0
            && step != num_train_steps
        {
            classifier::save(model_path, trainer.params(), tokenizer, labels).map_err(err)?;
            if tty {
                eprintln!();
            }
            eprintln!("bert classify: step {step}: wrote {}", model_path.display());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bert classify: trained {num_train_steps} steps in {} ({:.1} examples/s)",
        format_duration(secs),
        (num_train_steps as usize * o.train_batch_size) as f64 / secs.max(1e-9)
    );
    Ok(trainer)
}

/// Runs the dev set and formats `eval_results.txt`: `key = value` lines sorted by key.
fn evaluate(
    classifier: &Classifier,
    ctx: &mut Context,
    features: &[InputFeatures],
    o: &Options,
    task_name: &str,
    global_step: u64,
) -> Result<String, String> {
    let n = classifier.num_labels();
    let (mut predictions, mut gold) = (Vec::new(), Vec::new());
    let (mut loss_sum, mut batch_loss_sum, mut batches) = (0.0f64, 0.0f64, 0usize);
    for chunk in features.chunks(o.eval_batch_size) {
        let refs: Vec<&InputFeatures> = chunk.iter().collect();
        let batch = PaddedBatch::new(&refs);
        let logits = classifier
            .logits(ctx, &batch.inputs())
            .map_err(|e| e.to_string())?;
        let mut batch_loss = 0.0f64;
        for (row, f) in logits.chunks_exact(n).zip(chunk) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max
                + row
                    .iter()
                    .map(|&v| (v as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            batch_loss += lse - row[f.label_id as usize] as f64;
            let arg = (0..n)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            predictions.push(arg as u32);
            gold.push(f.label_id);
        }
        loss_sum += batch_loss;
        batch_loss_sum += batch_loss / chunk.len() as f64;
        batches += 1;
    }
    let mut results: Vec<(&str, String)> = vec![
        (
            "eval_accuracy",
            (metrics::accuracy(&predictions, &gold) as f32).to_string(),
        ),
        (
            "eval_loss",
            ((loss_sum / gold.len() as f64) as f32).to_string(),
        ),
        ("global_step", global_step.to_string()),
        // tf.estimator's `loss`: the mean of the per-batch mean losses.
        (
            "loss",
            ((batch_loss_sum / batches as f64) as f32).to_string(),
        ),
    ];
    match task_name.to_ascii_lowercase().as_str() {
        "mrpc" => results.push((
            "eval_f1",
            (metrics::f1(&predictions, &gold, 1) as f32).to_string(),
        )),
        "cola" => results.push((
            "eval_mcc",
            (metrics::matthews_corrcoef(&predictions, &gold, 1) as f32).to_string(),
        )),
        _ => {}
    }
    results.sort();
    Ok(results
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect())
}
