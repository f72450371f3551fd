//! run_squad.py's training: `create_model` + `compute_loss` on shuffled training features
//! with Google's optimizer ([`crate::train`]).
//!
//! `num_train_steps = int(len(train_examples) / train_batch_size * num_train_epochs)` —
//! counted in examples, as Google counts, although a long context gives several features;
//! warm-up `int(num_train_steps * warmup_proportion)`. Each update takes the next
//! `train_batch_size` features of a full per-epoch shuffle (Google: a 100-feature shuffle
//! buffer over the repeated file), padded to `max_seq_length` as Google feeds them: the
//! loss's soft-max runs over every position, padding included, so trimming would change it.
//! A missing head is initialised as `create_model` does (truncated normal, stddev 0.02;
//! zero bias).
//!
//! The run trains on the CPU unless [`SquadFineTuner::on`] moves it, before its first
//! update, to another back end (the Vulkan device): the trainer (model, head, gradients and
//! AdamW slots) is built where the run will train when it starts, never built on the CPU to
//! be thrown away.

use std::collections::BTreeMap;
use std::path::Path;

use super::features::InputFeatures;
use super::model::{self, SquadModel};
use super::FeatureBatch;
use crate::backend::{Backend, Cpu};
use crate::config::BertConfig;
use crate::heads::SquadHead;
use crate::model::BertModel;
use crate::tokenizer::Tokenizer;
use crate::train::run_state::{self, Order};
use crate::train::{checkpoint, AdamWConfig, Rng, Schedule, StepReport, Trainer};
use crate::weights::{Tensor, Weights};
use crate::{Error, Result};

/// run_squad.py's training flags, and libbert's own (accumulation, threads, checkpointing).
#[derive(Debug, Clone, PartialEq)]
pub struct SquadTrainParams {
    pub learning_rate: f32,
    pub num_train_epochs: f64,
    pub train_batch_size: usize,
    pub warmup_proportion: f64,
    /// Micro-batches per update (`train_batch_size` must be a multiple): same update, less
    /// memory.
    pub gradient_accumulation_steps: usize,
    /// Seeds the head's initialisation, the dropout masks and the feature order.
    pub seed: u64,
    /// 0: all cores.
    pub threads: usize,
    /// Recompute each layer in the backward pass (same numbers, less memory).
    pub gradient_checkpointing: bool,
}

impl Default for SquadTrainParams {
    /// run_squad.py's defaults: lr 5e-5, 3 epochs, batch 32, 10% warm-up.
    fn default() -> Self {
        SquadTrainParams {
            learning_rate: 5e-5,
            num_train_epochs: 3.0,
            train_batch_size: 32,
            warmup_proportion: 0.1,
            gradient_accumulation_steps: 1,
            seed: 12345,
            threads: 0,
            gradient_checkpointing: false,
        }
    }
}

/// `create_model`'s initialisation of the span head where `w` lacks it.
pub fn init_head(w: &mut Weights, hidden: usize, seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed);
    if !w.contains("cls/squad/output_weights") {
        let values = (0..2 * hidden)
            .map(|_| rng.truncated_normal(0.02))
            .collect();
        w.insert(
            "cls/squad/output_weights",
            Tensor::new(vec![2, hidden], values)?,
        );
    }
    if !w.contains("cls/squad/output_bias") {
        w.insert("cls/squad/output_bias", Tensor::new(vec![2], vec![0.0; 2])?);
    }
    Ok(())
}

/// The engine for `weights` (with a span head) on `backend`: Google's AdamW and schedule.
fn build_trainer<B: Backend>(
    backend: &B,
    config: &BertConfig,
    weights: &Weights,
    num_train_steps: u64,
    params: &SquadTrainParams,
) -> Result<Trainer<SquadHead<B>, B>> {
    let schedule = Schedule {
        init_lr: params.learning_rate,
        num_train_steps,
        num_warmup_steps: warmup_steps(num_train_steps, params),
    };
    let model = BertModel::build(backend.clone(), config.clone(), weights, true)?;
    let head = SquadHead::load(backend, weights, config.hidden_size, true)?;
    let mut trainer = Trainer::new(
        model,
        head,
        schedule,
        AdamWConfig::default(),
        params.seed,
        params.threads,
    )?;
    trainer.set_checkpointing(params.gradient_checkpointing);
    Ok(trainer)
}

/// `int(num_train_steps * warmup_proportion)`.
fn warmup_steps(num_train_steps: u64, params: &SquadTrainParams) -> u64 {
    (num_train_steps as f64 * params.warmup_proportion) as u64
}

/// A SQuAD fine-tuning run: the parameters it starts from, then the trainer once it has
/// started; the training features and their order.
#[derive(Debug)]
pub struct SquadFineTuner<B: Backend = Cpu> {
    /// Where the trainer is built when the run starts.
    backend: B,
    config: BertConfig,
    tokenizer: Tokenizer,
    /// The parameters (span head included) until the run starts.
    initial: Option<Weights>,
    trainer: Option<Trainer<SquadHead<B>, B>>,
    features: Vec<InputFeatures>,
    order: Order,
    params: SquadTrainParams,
    num_train_steps: u64,
}

impl SquadFineTuner {
    /// A run from `weights` (with or without a span head) on training-mode `features`
    /// converted from `num_examples` examples.
    pub fn new(
        config: BertConfig,
        mut weights: Weights,
        tokenizer: Tokenizer,
        features: Vec<InputFeatures>,
        num_examples: usize,
        params: SquadTrainParams,
    ) -> Result<SquadFineTuner> {
        let (batch, k) = (params.train_batch_size, params.gradient_accumulation_steps);
        if batch == 0 || k == 0 || batch % k != 0 {
            return Err(Error::InvalidArgument(format!(
                "train_batch_size {batch} must be a positive multiple of \
                 gradient_accumulation_steps {k}"
            )));
        }
        if let Some(f) = features.iter().find(|f| f.start_position.is_none()) {
            return Err(Error::InvalidArgument(format!(
                "feature {} has no answer positions (convert the examples in training mode)",
                f.unique_id
            )));
        }
        let num_train_steps = (num_examples as f64 / batch as f64 * params.num_train_epochs) as u64;
        if features.is_empty() || num_train_steps == 0 {
            return Err(Error::EmptyData(format!(
                "{num_examples} training examples ({} features), batch {batch} and {} epochs \
                 make no training step",
                features.len(),
                params.num_train_epochs
            )));
        }
        init_head(&mut weights, config.hidden_size, params.seed)?;
        Ok(SquadFineTuner {
            backend: Cpu,
            config,
            tokenizer,
            initial: Some(weights),
            trainer: None,
            order: Order::new(features.len(), params.seed),
            features,
            params,
            num_train_steps,
        })
    }

    /// The same run on another back end (e.g. `backend::Vulkan` with the `vulkan` feature):
    /// the model, head, gradients and AdamW slots are built there when the run starts, and
    /// only losses and norms come back per update. A run that has started (an update, a
    /// checkpoint written or resumed) stays where its state lives: that is an error.
    pub fn on<B2: Backend>(self, backend: B2) -> Result<SquadFineTuner<B2>> {
        if self.trainer.is_some() {
            return Err(Error::InvalidArgument(
                "the run has started: it cannot move to another back end".into(),
            ));
        }
        Ok(SquadFineTuner {
            backend,
            config: self.config,
            tokenizer: self.tokenizer,
            initial: self.initial,
            trainer: None,
            features: self.features,
            order: self.order,
            params: self.params,
            num_train_steps: self.num_train_steps,
        })
    }
}

impl<B: Backend> SquadFineTuner<B> {
    /// The trainer, built from the initial parameters on the first call.
    fn started(&mut self) -> Result<&mut Trainer<SquadHead<B>, B>> {
        if self.trainer.is_none() {
            let weights = self
                .initial
                .take()
                .ok_or_else(|| Error::InvalidArgument("no parameters".into()))?;
            let (c, n, p) = (&self.config, self.num_train_steps, &self.params);
            match build_trainer(&self.backend, c, &weights, n, p) {
                Ok(t) => self.trainer = Some(t),
                Err(e) => {
                    self.initial = Some(weights);
                    return Err(e);
                }
            }
        }
        self.trainer
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument("the run did not start".into()))
    }

    /// Updates of the whole run.
    pub fn num_train_steps(&self) -> u64 {
        self.num_train_steps
    }

    pub fn num_warmup_steps(&self) -> u64 {
        warmup_steps(self.num_train_steps, &self.params)
    }

    pub fn num_features(&self) -> usize {
        self.features.len()
    }

    /// Updates done so far.
    pub fn global_step(&self) -> u64 {
        self.trainer.as_ref().map_or(0, |t| t.global_step())
    }

    pub fn finished(&self) -> bool {
        self.global_step() >= self.num_train_steps
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// One update on the next `train_batch_size` features. A loss or gradient that is not
    /// finite is [`Error::Diverged`].
    pub fn step(&mut self) -> Result<StepReport> {
        self.started()?;
        let k = self.params.gradient_accumulation_steps;
        let micro = self.params.train_batch_size / k;
        let Some(trainer) = self.trainer.as_mut() else {
            return Err(Error::InvalidArgument("the run did not start".into()));
        };
        for _ in 0..k {
            let refs: Vec<&InputFeatures> = (0..micro)
                .map(|_| &self.features[self.order.next()])
                .collect();
            let batch = FeatureBatch::new(&refs)?;
            let spans: Vec<[u32; 2]> = batch
                .start_positions
                .iter()
                .zip(&batch.end_positions)
                .map(|(&s, &e)| [s, e])
                .collect();
            trainer.accumulate(&batch.inputs(), &spans)?;
        }
        let r = trainer.apply()?;
        if !(r.loss.is_finite() && r.grad_norm.is_finite()) {
            return Err(Error::Diverged(format!(
                "step {}: loss {}, gradient norm {} (learning rate {} too high?)",
                r.global_step, r.loss, r.grad_norm, self.params.learning_rate
            )));
        }
        Ok(r)
    }

    /// The current parameters under Google's names (the head included).
    pub fn weights(&self) -> Result<Weights> {
        match (&self.trainer, &self.initial) {
            (Some(t), _) => t.weights(),
            (None, Some(w)) => Ok(w.clone()),
            (None, None) => Err(Error::InvalidArgument("no parameters".into())),
        }
    }

    /// Writes the fine-tuned model (a `.bert` file) atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        model::save(path, &self.config, &self.weights()?, &self.tokenizer)
    }

    /// What a checkpoint must agree on to be resumed by this run: hyper-parameters and a
    /// fingerprint of the training features.
    fn settings(&self) -> BTreeMap<String, String> {
        let mut crc = 0u32;
        let mut b = Vec::new();
        for f in &self.features {
            b.clear();
            b.extend((f.input_ids.len() as u32).to_le_bytes());
            for v in [&f.input_ids, &f.input_mask, &f.segment_ids] {
                b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
            }
            for p in [f.start_position, f.end_position] {
                b.extend(p.map_or(u32::MAX, |p| p as u32).to_le_bytes());
            }
            crc = crate::weights::crc32c::crc32c_extend(crc, &b);
        }
        let p = &self.params;
        [
            ("task", "squad".to_string()),
            ("learning_rate", p.learning_rate.to_string()),
            ("num_train_epochs", p.num_train_epochs.to_string()),
            ("train_batch_size", p.train_batch_size.to_string()),
            (
                "gradient_accumulation_steps",
                p.gradient_accumulation_steps.to_string(),
            ),
            ("warmup_proportion", p.warmup_proportion.to_string()),
            ("seed", p.seed.to_string()),
            ("num_train_steps", self.num_train_steps.to_string()),
            ("num_features", self.features.len().to_string()),
            ("features_crc32c", crc.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Writes the whole training state atomically ([`crate::train::checkpoint`]'s format:
    /// variables, AdamW slots, global step, generator states, feature order and position).
    /// It starts the run if it has not started.
    pub fn save_checkpoint(&mut self, path: &Path) -> Result<()> {
        self.started()?;
        let settings = self.settings();
        let Some(trainer) = &self.trainer else {
            return Err(Error::InvalidArgument("the run did not start".into()));
        };
        let state = run_state::capture(trainer, &self.config, &self.order, settings, Vec::new())?;
        checkpoint::save(path, &state)
    }

    /// Continues the run saved at `path` by [`SquadFineTuner::save_checkpoint`]: same model
    /// shape, hyper-parameters and training features (anything else is refused with an error
    /// naming what differs). The following updates are those the uninterrupted run would
    /// have made, bit for bit (same thread count).
    pub fn resume(&mut self, path: &Path) -> Result<()> {
        let (settings, n) = (self.settings(), self.features.len());
        let (state, weights) = run_state::load(path, &self.config, &[], &settings, n)?;
        let (c, n, p) = (&self.config, self.num_train_steps, &self.params);
        let mut trainer = build_trainer(&self.backend, c, &weights, n, p)
            .map_err(|e| run_state::refuse(path, e))?;
        self.order = run_state::restore(path, &mut trainer, state)?;
        self.trainer = Some(trainer);
        self.initial = None;
        Ok(())
    }

    /// The model of the current parameters, for prediction.
    pub fn model(&self) -> Result<SquadModel> {
        SquadModel::from_weights(
            self.config.clone(),
            &self.weights()?,
            self.tokenizer.clone(),
        )
    }
}
