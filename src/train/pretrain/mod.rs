//! Pre-training: the training loop of Google's `run_pretraining.py` over [`crate::train`]'s
//! engine and the heads of [`crate::heads::pretraining`]: masked LM + next sentence on the
//! TFRecords of [`crate::train::pretraining_data`], AdamW with warm-up and linear decay,
//! global-norm clipping at 1.0, resumable checkpoints and Google's evaluation metrics.
//!
//! - [`Pretrainer`]: a run (model, heads, optimizer state, data order) on a back end (the
//!   CPU's [`Pretrainer::new`], any [`Pretrainer::on`]); [`Pretrainer::step`]
//!   makes one update, [`Pretrainer::evaluate`] runs `metric_fn` over examples,
//!   [`Pretrainer::save_checkpoint`] / [`Pretrainer::resume`] stop and continue it.
//! - [`init_missing`]: `modeling.py`'s initialisers for a run from scratch (or for the
//!   heads an encoder-only checkpoint lacks).
//! - [`read_examples`], [`Batch`]: the records, checked, and batches of them.
//! - [`EvalTotals`]: `metric_fn` and `eval_results.txt`.
//!
//! `bert pretrain` is a thin layer over this module.

mod data;
mod eval;
mod init;

pub use data::{expand, read_examples, Batch};
pub use eval::EvalTotals;
pub use init::init_missing;

use std::collections::BTreeMap;
use std::path::Path;

use data::fingerprint;

use crate::backend::Backend;
use crate::config::BertConfig;
use crate::heads::PreTrainingHeads;
use crate::train::checkpoint;
use crate::train::pretraining_data::PretrainingFeatures;
use crate::train::run_state::{self, Order};
use crate::train::{AdamWConfig, Schedule, StepReport, Trainer};
use crate::weights::Weights;
use crate::{BertModel, Cpu, Error, Result};

/// `run_pretraining.py`'s hyper-parameters (its flag defaults) plus the engine's.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainParams {
    pub max_seq_length: usize,
    pub max_predictions_per_seq: usize,
    pub train_batch_size: usize,
    pub learning_rate: f32,
    pub num_train_steps: u64,
    pub num_warmup_steps: u64,
    /// Micro-batches per update (`train_batch_size` must be a multiple), for less memory.
    /// The masked-LM loss is normalised by each micro-batch's Σ w (as `run_pretraining.py`
    /// normalises by its batch's), so the update equals one batch of all the examples only
    /// when the micro-batches hold equally many predictions.
    pub gradient_accumulation_steps: usize,
    /// Seeds the data order and the dropout masks.
    pub seed: u64,
    /// Threads of the passes (0: all cores).
    pub threads: usize,
    pub gradient_checkpointing: bool,
}

impl Default for PretrainParams {
    fn default() -> Self {
        PretrainParams {
            max_seq_length: 128,
            max_predictions_per_seq: 20,
            train_batch_size: 32,
            learning_rate: 5e-5,
            num_train_steps: 100_000,
            num_warmup_steps: 10_000,
            gradient_accumulation_steps: 1,
            seed: 12345,
            threads: 0,
            gradient_checkpointing: false,
        }
    }
}

/// What one update did: the optimizer's report and the heads' training metrics on its batch.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    pub report: StepReport,
    /// Weighted masked-LM loss and accuracy, mean next-sentence loss and accuracy, of the
    /// update's examples (before the update).
    pub masked_lm_loss: f64,
    pub masked_lm_accuracy: f64,
    pub next_sentence_loss: f64,
    pub next_sentence_accuracy: f64,
}

/// A pre-training run on back end `B` (the model, heads and optimizer state live there).
pub struct Pretrainer<B: Backend = Cpu>
where
    B::Buf: Clone,
{
    backend: B,
    config: BertConfig,
    params: PretrainParams,
    examples: Vec<PretrainingFeatures>,
    examples_crc: u32,
    trainer: Trainer<PreTrainingHeads<B>, B>,
    order: Order,
    /// Whether dropout is on (kept across a resume, which builds a new engine).
    dropout: bool,
}

impl<B: Backend> std::fmt::Debug for Pretrainer<B>
where
    B::Buf: Clone,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pretrainer")
            .field("params", &self.params)
            .field("examples", &self.examples.len())
            .field("global_step", &self.trainer.global_step())
            .finish_non_exhaustive()
    }
}

impl Pretrainer<Cpu> {
    /// A run at step 0 from `weights` on the CPU (see [`Pretrainer::on`]).
    pub fn new(
        config: BertConfig,
        weights: &Weights,
        params: PretrainParams,
        examples: Vec<PretrainingFeatures>,
    ) -> Result<Pretrainer> {
        Pretrainer::on(Cpu, config, weights, params, examples)
    }
}

impl<B: Backend> Pretrainer<B>
where
    B::Buf: Clone,
{
    /// A run at step 0 from `weights` on `backend`, which must hold the encoder, the pooler
    /// and the pre-training heads (see [`init_missing`]); `examples` may be empty for a run
    /// that only evaluates.
    pub fn on(
        backend: B,
        config: BertConfig,
        weights: &Weights,
        params: PretrainParams,
        examples: Vec<PretrainingFeatures>,
    ) -> Result<Pretrainer<B>> {
        check_params(&params, &config)?;
        if let Some((i, _)) = examples.iter().enumerate().find(|(_, f)| {
            f.input_ids.len() != params.max_seq_length
                || f.masked_lm_ids.len() != params.max_predictions_per_seq
        }) {
            return Err(Error::Shape(format!(
                "example {i} does not have max_seq_length {} and max_predictions_per_seq {}",
                params.max_seq_length, params.max_predictions_per_seq
            )));
        }
        let trainer = build_trainer(&backend, &config, weights, &params)?;
        Ok(Pretrainer {
            backend,
            examples_crc: fingerprint(&examples),
            order: Order::new(examples.len(), params.seed),
            config,
            params,
            examples,
            trainer,
            dropout: true,
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn params(&self) -> &PretrainParams {
        &self.params
    }

    pub fn num_examples(&self) -> usize {
        self.examples.len()
    }

    /// Updates done.
    pub fn global_step(&self) -> u64 {
        self.trainer.global_step()
    }

    /// Whether `num_train_steps` updates are done.
    pub fn finished(&self) -> bool {
        self.global_step() >= self.params.num_train_steps
    }

    /// Dropout on (default: the config's rates) or off.
    pub fn set_dropout(&mut self, on: bool) {
        self.dropout = on;
        self.trainer.set_dropout(on);
    }

    /// The engine (its parameters, optimizer slots, heads).
    pub fn trainer(&self) -> &Trainer<PreTrainingHeads<B>, B> {
        &self.trainer
    }

    /// Every variable under Google's names (encoder, pooler, `cls/*`).
    pub fn weights(&self) -> Result<Weights> {
        self.trainer.weights()
    }

    /// One update on the next `train_batch_size` examples of the data order (as
    /// `gradient_accumulation_steps` micro-batches). A loss or gradient norm that is not
    /// finite is [`Error::Diverged`].
    pub fn step(&mut self) -> Result<StepStats> {
        if self.examples.is_empty() {
            return Err(Error::EmptyData("no training examples".into()));
        }
        if self.finished() {
            return Err(Error::InvalidArgument(format!(
                "the run is finished ({} steps)",
                self.params.num_train_steps
            )));
        }
        let k = self.params.gradient_accumulation_steps;
        let micro = self.params.train_batch_size / k;
        let mut totals = EvalTotals::default();
        for _ in 0..k {
            let idx: Vec<usize> = (0..micro).map(|_| self.order.next()).collect();
            let refs: Vec<&PretrainingFeatures> = idx.iter().map(|&i| &self.examples[i]).collect();
            let batch = Batch::of(&refs);
            let (loss, out) = self.trainer.accumulate(&batch.inputs(), &batch.targets)?;
            totals.add(loss, &out, &batch.targets.weights);
        }
        let report = self.trainer.apply()?;
        if !(report.loss.is_finite() && report.grad_norm.is_finite()) {
            return Err(Error::Diverged(format!(
                "step {}: loss {}, gradient norm {} (learning rate {} too high?)",
                report.global_step, report.loss, report.grad_norm, self.params.learning_rate
            )));
        }
        Ok(StepStats {
            report,
            masked_lm_loss: totals.masked_lm_mean_loss(),
            masked_lm_accuracy: totals.masked_lm_accuracy(),
            next_sentence_loss: totals.next_sentence_mean_loss(),
            next_sentence_accuracy: totals.next_sentence_accuracy(),
        })
    }

    /// `run_pretraining.py`'s evaluation of the current parameters (dropout off): full
    /// batches of `batch_size` examples in order (`drop_remainder=True`), at most
    /// `max_batches` of them.
    pub fn evaluate(
        &mut self,
        examples: &[PretrainingFeatures],
        batch_size: usize,
        max_batches: usize,
    ) -> Result<EvalTotals> {
        let batch_size = batch_size.max(1);
        if examples.len() < batch_size {
            return Err(Error::EmptyData(format!(
                "{} evaluation examples make no batch of {batch_size}",
                examples.len()
            )));
        }
        let mut totals = EvalTotals::default();
        for chunk in examples.chunks_exact(batch_size).take(max_batches) {
            let refs: Vec<&PretrainingFeatures> = chunk.iter().collect();
            let batch = Batch::of(&refs);
            let (loss, out) = self.trainer.evaluate(&batch.inputs(), &batch.targets)?;
            totals.add(loss, &out, &batch.targets.weights);
        }
        Ok(totals)
    }

    /// What a checkpoint must agree on to be resumed by this run.
    fn settings(&self) -> BTreeMap<String, String> {
        let p = &self.params;
        [
            ("task", "pretraining".to_string()),
            ("learning_rate", p.learning_rate.to_string()),
            ("train_batch_size", p.train_batch_size.to_string()),
            (
                "gradient_accumulation_steps",
                p.gradient_accumulation_steps.to_string(),
            ),
            ("num_train_steps", p.num_train_steps.to_string()),
            ("num_warmup_steps", p.num_warmup_steps.to_string()),
            ("seed", p.seed.to_string()),
            ("max_seq_length", p.max_seq_length.to_string()),
            (
                "max_predictions_per_seq",
                p.max_predictions_per_seq.to_string(),
            ),
            ("num_examples", self.examples.len().to_string()),
            ("examples_crc32c", self.examples_crc.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Writes the whole training state atomically ([`crate::train::checkpoint`]'s
    /// format: variables, AdamW slots, global step, generator states, data position).
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let state = run_state::capture(
            &self.trainer,
            &self.config,
            &self.order,
            self.settings(),
            Vec::new(),
        )?;
        checkpoint::save(path, &state)
    }

    /// Continues the run saved at `path` by [`Pretrainer::save_checkpoint`]: same model
    /// shape, hyper-parameters and examples (anything else is refused with an error naming
    /// what differs; `num_train_steps` too, since the schedule depends on it). The following
    /// updates are those the uninterrupted run would have made, bit for bit (same thread
    /// count).
    pub fn resume(&mut self, path: &Path) -> Result<()> {
        let (settings, n) = (self.settings(), self.examples.len());
        let (state, weights) = run_state::load(path, &self.config, &[], &settings, n)?;
        let mut trainer = build_trainer(&self.backend, &self.config, &weights, &self.params)
            .map_err(|e| run_state::refuse(path, e))?;
        let order = run_state::restore(path, &mut trainer, state)?;
        trainer.set_dropout(self.dropout);
        self.trainer = trainer;
        self.order = order;
        Ok(())
    }
}

fn check_params(p: &PretrainParams, c: &BertConfig) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidArgument(m));
    if !(2..=c.max_position_embeddings).contains(&p.max_seq_length) {
        return bad(format!(
            "max_seq_length {} is not within 2..={} (max_position_embeddings)",
            p.max_seq_length, c.max_position_embeddings
        ));
    }
    if p.max_predictions_per_seq == 0 || p.max_predictions_per_seq > p.max_seq_length {
        return bad(format!(
            "max_predictions_per_seq {} is not within 1..={}",
            p.max_predictions_per_seq, p.max_seq_length
        ));
    }
    let k = p.gradient_accumulation_steps;
    if p.train_batch_size == 0 || k == 0 || p.train_batch_size % k != 0 {
        return bad(format!(
            "train_batch_size {} must be a positive multiple of gradient_accumulation_steps {k}",
            p.train_batch_size
        ));
    }
    if !(p.learning_rate.is_finite() && p.learning_rate >= 0.0) {
        return bad(format!("learning_rate {} is not a rate", p.learning_rate));
    }
    Ok(())
}

/// The engine for `weights`: `optimization.create_optimizer`'s AdamW (weight decay 0.01,
/// clip 1.0) and schedule.
fn build_trainer<B: Backend>(
    backend: &B,
    config: &BertConfig,
    weights: &Weights,
    p: &PretrainParams,
) -> Result<Trainer<PreTrainingHeads<B>, B>>
where
    B::Buf: Clone,
{
    let model = BertModel::build(backend.clone(), config.clone(), weights, true)?;
    let heads = PreTrainingHeads::load(backend, weights, config, true)?;
    let schedule = Schedule {
        init_lr: p.learning_rate,
        num_train_steps: p.num_train_steps,
        num_warmup_steps: p.num_warmup_steps,
    };
    let mut trainer = Trainer::new(
        model,
        heads,
        schedule,
        AdamWConfig::default(),
        p.seed,
        p.threads,
    )?;
    trainer.set_checkpointing(p.gradient_checkpointing);
    Ok(trainer)
}
