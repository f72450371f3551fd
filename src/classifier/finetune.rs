//! run_classifier.py's training loop as a library: the part of `bert classify --do_train`
//! (and of the C ABI's `bert_trainer`) that turns labelled examples into a fine-tuned
//! classifier.
//!
//! A [`FineTuner`] collects examples, then trains in as many calls as the caller likes
//! ([`FineTuner::train`] with a step limit and a progress callback that can stop it), can
//! save and resume its whole state ([`FineTuner::save_checkpoint`], [`FineTuner::resume`];
//! see [`super::checkpoint`]) and evaluate or save the classifier at any point.
//!
//! The loop is Google's: every epoch the examples are shuffled (a full Fisher–Yates shuffle
//! with its own seeded stream; Google shuffles with a 100-example buffer, the named
//! difference) and cut into full batches (`drop_remainder=True`) for
//! `num_train_steps = int(examples / train_batch_size * num_train_epochs)` updates of
//! AdamW with warm-up + linear decay and global-norm clipping, dropout on. With
//! `gradient_accumulation_steps = k` a batch is k micro-batches (same update, less memory).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use super::evaluate::{evaluate, EvalResults};
use super::features::{convert_examples, labels, pad, InputFeatures};
use super::model::{save, Classifier};
use super::processors::InputExample;
pub use super::start::ModelStart;
use crate::backend::{Backend, Cpu};
use crate::config::BertConfig;
use crate::heads::ClassifierHead;
use crate::model::{BertModel, Context};
use crate::tokenizer::Tokenizer;
use crate::train::checkpoint;
use crate::train::run_state::{self, Order};
use crate::train::{AdamWConfig, Rng, Schedule, Trainer};
use crate::weights::{Tensor, Weights};
use crate::{Error, Result};

/// Hyper-parameters of a fine-tuning run, with `run_classifier.py`'s defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FineTuneParams {
    pub learning_rate: f32,
    pub num_train_epochs: f64,
    /// Examples per update.
    pub train_batch_size: usize,
    /// Fraction of the updates spent warming the learning rate up from 0.
    pub warmup_proportion: f64,
    /// Micro-batches per update (must divide `train_batch_size`).
    pub gradient_accumulation_steps: usize,
    /// Seeds the head's initialisation, dropout and shuffling.
    pub seed: u64,
    /// Examples are truncated to this many positions, `[CLS]` and `[SEP]` included.
    pub max_seq_length: usize,
    /// Threads of the passes, the caller's included; 0: all cores.
    pub threads: usize,
    /// Recompute each layer's activations in the backward pass instead of keeping them
    /// (less memory, about one more forward pass of compute; the same numbers).
    pub gradient_checkpointing: bool,
    /// `tf.clip_by_global_norm` threshold of the gradients (Google's 1.0); 0 disables
    /// clipping.
    pub max_grad_norm: f32,
}

impl Default for FineTuneParams {
    fn default() -> Self {
        FineTuneParams {
            learning_rate: 5e-5,
            num_train_epochs: 3.0,
            train_batch_size: 32,
            warmup_proportion: 0.1,
            gradient_accumulation_steps: 1,
            seed: 12345,
            max_seq_length: 128,
            threads: 0,
            gradient_checkpointing: false,
            max_grad_norm: 1.0,
        }
    }
}

impl FineTuneParams {
    fn check(&self, config: &BertConfig) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        let limit = config.max_position_embeddings;
        if !(2..=limit).contains(&self.max_seq_length) {
            return bad(format!(
                "max_seq_length {} is not within 2..={limit} (max_position_embeddings)",
                self.max_seq_length
            ));
        }
        let (b, k) = (self.train_batch_size, self.gradient_accumulation_steps);
        if b == 0 || k == 0 || b % k != 0 {
            return bad(format!(
                "train_batch_size {b} must be a positive multiple of \
                 gradient_accumulation_steps {k}"
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate >= 0.0) {
            return bad(format!(
                "learning_rate {} is not a finite number >= 0",
                self.learning_rate
            ));
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            return bad(format!(
                "max_grad_norm {} is not a finite number >= 0 (0: no clipping)",
                self.max_grad_norm
            ));
        }
        // More epochs than any run uses: 1e30 saturated the step count and trained forever.
        const MAX_EPOCHS: f64 = 1e6;
        if !(self.num_train_epochs > 0.0 && self.num_train_epochs <= MAX_EPOCHS) {
            return bad(format!(
                "num_train_epochs {} is not a positive number of at most {MAX_EPOCHS}",
                self.num_train_epochs
            ));
        }
        if !(0.0..=1.0).contains(&self.warmup_proportion) {
            return bad(format!(
                "warmup_proportion {} is not within 0..=1",
                self.warmup_proportion
            ));
        }
        Ok(())
    }

    /// Tokenizer threads: the pass threads, all cores for 0.
    fn tokenizer_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// What the progress callback of [`FineTuner::train`] sees after each update.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Updates done, this one included.
    pub step: u64,
    /// Updates of the whole run.
    pub total_steps: u64,
    /// Mean loss of this update's examples (before the update).
    pub loss: f32,
    /// Learning rate of this update.
    pub learning_rate: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Training examples per second since this `train` call began.
    pub examples_per_second: f64,
    /// Seconds since this `train` call began.
    pub elapsed_seconds: f64,
}

/// Why [`FineTuner::train`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every update of the run is done.
    Finished,
    /// The call's step limit was reached; call again to go on.
    Paused,
    /// The progress callback asked to stop (after a complete update); call again to go on.
    Cancelled,
}

/// A run that has started: engine state, data order and schedule length.
#[derive(Debug)]
struct Run<B: Backend> {
    trainer: Trainer<ClassifierHead<B>, B>,
    order: Order,
}

/// `create_model`'s initialisation of a missing head: `output_weights` `[labels, hidden]`
/// from a truncated normal (stddev 0.02) drawn from `Rng::new(seed)`, `output_bias` zeros.
fn init_head(w: &mut Weights, hidden: usize, labels: usize, seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed);
    if !w.contains("output_weights") {
        let values = (0..labels * hidden)
            .map(|_| rng.truncated_normal(0.02))
            .collect();
        w.insert("output_weights", Tensor::new(vec![labels, hidden], values)?);
    }
    if !w.contains("output_bias") {
        w.insert("output_bias", Tensor::new(vec![labels], vec![0.0; labels])?);
    }
    Ok(())
}

/// A fine-tuning run: start parameters, tokenizer, labels, hyper-parameters and training
/// examples; then the engine's state once training has started. It trains on the CPU
/// unless [`FineTuner::on`] moves it to another back end before it starts.
#[derive(Debug)]
pub struct FineTuner<B: Backend = Cpu> {
    /// Where the model, head, gradients and optimizer slots live once the run starts.
    backend: B,
    tokenizer: Tokenizer,
    labels: Vec<String>,
    hp: FineTuneParams,
    features: Vec<InputFeatures>,
    config: BertConfig,
    /// The parameters before training starts (moved into the run when it does).
    initial: Option<Weights>,
    run: Option<Run<B>>,
    /// Set when an update failed half-way or diverged: the state is no longer usable.
    failed: Option<String>,
}

impl FineTuner {
    /// A run from Google-named weights: the encoder's, and the head's when they hold one
    /// (`output_weights` `[labels, hidden]`, `output_bias`); else a fresh head, initialised
    /// as `create_model` does from `hp.seed`.
    pub fn new(
        config: BertConfig,
        mut weights: Weights,
        tokenizer: Tokenizer,
        labels: Vec<String>,
        hp: FineTuneParams,
    ) -> Result<FineTuner> {
        hp.check(&config)?;
        if labels.is_empty() {
            return Err(Error::Label("a classifier needs at least one label".into()));
        }
        init_head(&mut weights, config.hidden_size, labels.len(), hp.seed)?;
        let n = weights.tensor("output_bias").map(|t| t.shape.clone());
        if n != Some(vec![labels.len()]) {
            return Err(Error::Label(format!(
                "{} labels for a head with output_bias {n:?}",
                labels.len()
            )));
        }
        if tokenizer.vocab().len() > config.vocab_size {
            return Err(Error::Vocab(format!(
                "the vocabulary has {} tokens but the model only {} embeddings",
                tokenizer.vocab().len(),
                config.vocab_size
            )));
        }
        Ok(FineTuner {
            backend: Cpu,
            tokenizer,
            labels,
            hp,
            features: Vec::new(),
            config,
            initial: Some(weights),
            run: None,
            failed: None,
        })
    }

    /// A run from a loaded model: its `bert/*` weights, and its head when it has one with
    /// `labels.len()` outputs (else a fresh head, initialised as `create_model` does).
    pub fn from_start(
        start: ModelStart,
        labels: Vec<String>,
        hp: FineTuneParams,
    ) -> Result<FineTuner> {
        if labels.is_empty() {
            return Err(Error::Label("a classifier needs at least one label".into()));
        }
        let mut weights = start.weights;
        let head_fits = weights
            .tensor("output_bias")
            .is_some_and(|t| t.shape == [labels.len()]);
        let has_head = weights.contains("output_weights") || weights.contains("output_bias");
        if has_head && !head_fits {
            // A head for other labels is not a starting point: draw a new one.
            let mut w = Weights::new();
            for (name, t) in weights.iter() {
                if name != "output_weights" && name != "output_bias" {
                    w.insert(name, t.clone());
                }
            }
            weights = w;
        }
        FineTuner::new(start.config, weights, start.tokenizer, labels, hp)
    }

    /// The same run on another back end (e.g. `backend::Vulkan` with the `vulkan` feature):
    /// the model, head, gradients and optimizer slots are built there when the run starts,
    /// and only losses and norms come back per update. A run that has started stays where
    /// it is (its state lives on its device): that is an error.
    pub fn on<B2: Backend>(self, backend: B2) -> Result<FineTuner<B2>> {
        if self.run.is_some() {
            return Err(Error::InvalidArgument(
                "the run has started: it cannot move to another back end".into(),
            ));
        }
        Ok(FineTuner {
            backend,
            tokenizer: self.tokenizer,
            labels: self.labels,
            hp: self.hp,
            features: self.features,
            config: self.config,
            initial: self.initial,
            run: None,
            failed: self.failed,
        })
    }
}

impl<B: Backend> FineTuner<B> {
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn hyper_params(&self) -> &FineTuneParams {
        &self.hp
    }

    /// Number of training examples.
    pub fn num_examples(&self) -> usize {
        self.features.len()
    }

    /// Updates the whole run makes: `int(examples / train_batch_size * num_train_epochs)`.
    pub fn num_train_steps(&self) -> u64 {
        (self.features.len() as f64 / self.hp.train_batch_size as f64 * self.hp.num_train_epochs)
            as u64
    }

    /// Warm-up updates: `int(num_train_steps * warmup_proportion)`.
    pub fn num_warmup_steps(&self) -> u64 {
        (self.num_train_steps() as f64 * self.hp.warmup_proportion) as u64
    }

    /// Updates done so far.
    pub fn global_step(&self) -> u64 {
        self.run.as_ref().map_or(0, |r| r.trainer.global_step())
    }

    /// Whether training has started (examples can no longer be added).
    pub fn started(&self) -> bool {
        self.run.is_some()
    }

    /// The model's shape.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The current parameters (encoder and head) under Google's names.
    pub fn weights(&self) -> Result<Weights> {
        if let Some(msg) = &self.failed {
            return Err(Error::Diverged(msg.clone()));
        }
        match (&self.run, &self.initial) {
            (Some(r), _) => r.trainer.weights(),
            (None, Some(w)) => Ok(w.clone()),
            (None, None) => Err(Error::InvalidArgument("no parameters".into())),
        }
    }

    /// Tokenizes examples with this run's tokenizer, labels and `max_seq_length` (an unknown
    /// label is [`Error::Label`] naming the example and its line).
    pub fn convert(&self, examples: &[InputExample]) -> Result<Vec<InputFeatures>> {
        convert_examples(
            examples,
            &self.labels,
            &self.tokenizer,
            self.hp.max_seq_length,
            self.hp.tokenizer_threads(),
        )
    }

    fn check_open(&self) -> Result<()> {
        if self.run.is_some() {
            return Err(Error::InvalidArgument(
                "examples cannot be added once training has started".into(),
            ));
        }
        Ok(())
    }

    /// Adds training examples (all or none: a bad label adds nothing).
    pub fn add_examples(&mut self, examples: &[InputExample]) -> Result<()> {
        self.check_open()?;
        let features = self.convert(examples)?;
        self.features.extend(features);
        Ok(())
    }

    /// Adds one training example labelled by label id (`0..labels().len()`).
    pub fn add_example_id(
        &mut self,
        text_a: &str,
        text_b: Option<&str>,
        label_id: u32,
    ) -> Result<()> {
        self.check_open()?;
        let label = self.labels.get(label_id as usize).cloned().ok_or_else(|| {
            Error::Label(format!(
                "label id {label_id} is not below the {} labels",
                self.labels.len()
            ))
        })?;
        self.add_example(text_a, text_b, &label)
    }

    /// Adds one training example labelled by name.
    pub fn add_example(&mut self, text_a: &str, text_b: Option<&str>, label: &str) -> Result<()> {
        let n = self.features.len();
        self.add_examples(&[InputExample {
            guid: format!("train-{n}"),
            text_a: text_a.to_string(),
            text_b: text_b.map(str::to_string),
            label: Some(label.to_string()),
            line: n + 1,
        }])
    }

    /// What a checkpoint must agree on to be resumed by this run.
    fn settings(&self) -> BTreeMap<String, String> {
        let mut crc = 0u32;
        for f in &self.features {
            let mut b = Vec::with_capacity(8 * f.input_ids.len() + 8);
            b.extend((f.input_ids.len() as u32).to_le_bytes());
            b.extend(f.input_ids.iter().flat_map(|x| x.to_le_bytes()));
            b.extend(f.segment_ids.iter().flat_map(|x| x.to_le_bytes()));
            b.extend(f.label_id.to_le_bytes());
            crc = crate::weights::crc32c::crc32c_extend(crc, &b);
        }
        let hp = &self.hp;
        [
            ("learning_rate", hp.learning_rate.to_string()),
            ("num_train_epochs", hp.num_train_epochs.to_string()),
            ("train_batch_size", hp.train_batch_size.to_string()),
            (
                "gradient_accumulation_steps",
                hp.gradient_accumulation_steps.to_string(),
            ),
            ("warmup_proportion", hp.warmup_proportion.to_string()),
            ("seed", hp.seed.to_string()),
            ("max_seq_length", hp.max_seq_length.to_string()),
            ("num_examples", self.features.len().to_string()),
            ("num_train_steps", self.num_train_steps().to_string()),
            ("examples_crc32c", crc.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Google's AdamW with this run's clipping threshold.
    fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            clip_norm: (self.hp.max_grad_norm > 0.0).then_some(self.hp.max_grad_norm),
            ..AdamWConfig::default()
        }
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            init_lr: self.hp.learning_rate,
            num_train_steps: self.num_train_steps(),
            num_warmup_steps: self.num_warmup_steps(),
        }
    }

    /// A trainer of this run's model and head from `weights`.
    fn trainer(&self, weights: &Weights) -> Result<Trainer<ClassifierHead<B>, B>> {
        let model = BertModel::build(self.backend.clone(), self.config.clone(), weights, true)?;
        let (h, n) = (self.config.hidden_size, self.labels.len());
        let head = ClassifierHead::load(&self.backend, weights, h, n, true)?;
        let mut trainer = Trainer::new(
            model,
            head,
            self.schedule(),
            self.adamw(),
            self.hp.seed,
            self.hp.threads,
        )?;
        trainer.set_checkpointing(self.hp.gradient_checkpointing);
        Ok(trainer)
    }

    /// Starts the run (no more examples) if it has not started.
    fn start(&mut self) -> Result<()> {
        if let Some(msg) = &self.failed {
            return Err(Error::Diverged(msg.clone()));
        }
        if self.run.is_some() {
            return Ok(());
        }
        if self.features.is_empty() {
            return Err(Error::EmptyData(
                "no training examples: add some before training".into(),
            ));
        }
        if self.num_train_steps() == 0 {
            return Err(Error::InvalidArgument(format!(
                "{} training examples, batch {} and {} epochs make no training step",
                self.features.len(),
                self.hp.train_batch_size,
                self.hp.num_train_epochs
            )));
        }
        let weights = self
            .initial
            .take()
            .ok_or_else(|| Error::InvalidArgument("no parameters".into()))?;
        let trainer = self.trainer(&weights)?;
        self.run = Some(Run {
            trainer,
            order: Order::new(self.features.len(), self.hp.seed),
        });
        Ok(())
    }

    /// Runs updates until the run is finished, `max_steps` updates were made by this call
    /// (`None`: no limit), or `on_step` returns `ControlFlow::Break` after an update. The first
    /// call starts the run: from then on no example can be added. A loss or gradient that is
    /// not finite stops with [`Error::Diverged`] and leaves the run unusable.
    pub fn train(
        &mut self,
        max_steps: Option<u64>,
        mut on_step: impl FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Outcome> {
        self.start()?;
        let total = self.num_train_steps();
        let (batch_size, k) = (
            self.hp.train_batch_size,
            self.hp.gradient_accumulation_steps,
        );
        let micro = batch_size / k;
        let Some(run) = self.run.as_mut() else {
            return Err(Error::InvalidArgument("the run did not start".into()));
        };
        let started = Instant::now();
        let mut done = 0u64;
        while run.trainer.global_step() < total {
            if max_steps.is_some_and(|m| done >= m) {
                return Ok(Outcome::Paused);
            }
            let mut step = || -> Result<_> {
                for _ in 0..k {
                    let batch: Vec<&InputFeatures> = (0..micro)
                        .map(|_| &self.features[run.order.next()])
                        .collect();
                    run.trainer
                        .accumulate(&pad(&batch).inputs(), &labels(&batch))?;
                }
                run.trainer.apply()
            };
            let report = match step() {
                Ok(r) => r,
                Err(e) => {
                    self.failed = Some(format!("an update failed half-way: {e}"));
                    return Err(e);
                }
            };
            if !(report.loss.is_finite() && report.grad_norm.is_finite()) {
                let msg = format!(
                    "step {}: loss {}, gradient norm {} (learning rate {} too high?)",
                    report.global_step, report.loss, report.grad_norm, self.hp.learning_rate
                );
                self.failed = Some(msg.clone());
                return Err(Error::Diverged(msg));
            }
            done += 1;
            let elapsed = started.elapsed().as_secs_f64();
            let progress = Progress {
                step: report.global_step,
                total_steps: total,
                loss: report.loss,
                learning_rate: report.learning_rate,
                grad_norm: report.grad_norm,
                examples_per_second: (done as usize * batch_size) as f64 / elapsed.max(1e-9),
                elapsed_seconds: elapsed,
            };
            if on_step(&progress).is_break() {
                return Ok(if run.trainer.global_step() >= total {
                    Outcome::Finished
                } else {
                    Outcome::Cancelled
                });
            }
        }
        Ok(Outcome::Finished)
    }

    /// The classifier of the current parameters.
    pub fn classifier(&self) -> Result<Classifier> {
        let weights = self.weights()?;
        let (t, l) = (self.tokenizer.clone(), self.labels.clone());
        Classifier::from_weights(self.config.clone(), &weights, t, l)
    }

    /// Evaluates the current parameters on labelled features (see [`super::evaluate()`]).
    pub fn evaluate(&self, features: &[InputFeatures], batch_size: usize) -> Result<EvalResults> {
        if features.is_empty() {
            return Err(Error::EmptyData("no evaluation examples".into()));
        }
        let mut ctx = Context::new(self.hp.threads);
        evaluate(&self.classifier()?, &mut ctx, features, batch_size)
    }

    /// Writes the fine-tuned classifier (a `.bert` file with labels) atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let weights = self.weights()?;
        save(path, &self.config, &weights, &self.tokenizer, &self.labels)
    }

    /// Writes the whole training state atomically (see [`super::checkpoint`]); starts the run
    /// if it has not started.
    pub fn save_checkpoint(&mut self, path: &Path) -> Result<()> {
        self.start()?;
        let (settings, config, labels) = (self.settings(), &self.config, self.labels.clone());
        let Some(run) = &self.run else {
            return Err(Error::InvalidArgument("the run did not start".into()));
        };
        let state = run_state::capture(&run.trainer, config, &run.order, settings, labels)?;
        checkpoint::save(path, &state)
    }

    /// Continues the run saved at `path` by [`FineTuner::save_checkpoint`]: same labels,
    /// model shape, hyper-parameters and training examples (anything else is refused with
    /// an error naming what differs). The following updates are those the uninterrupted run
    /// would have made, bit for bit (same thread count).
    pub fn resume(&mut self, path: &Path) -> Result<()> {
        if let Some(msg) = &self.failed {
            return Err(Error::Diverged(msg.clone()));
        }
        let (settings, n) = (self.settings(), self.features.len());
        let (state, weights) = run_state::load(path, &self.config, &self.labels, &settings, n)?;
        let mut trainer = self
            .trainer(&weights)
            .map_err(|e| run_state::refuse(path, e))?;
        let order = run_state::restore(path, &mut trainer, state)?;
        self.initial = None;
        self.run = Some(Run { trainer, order });
        Ok(())
    }
}
