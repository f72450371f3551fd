//! Fine-tuning: backward pass of the classifier (`run_classifier.create_model`) and Google's
//! optimizer (`optimization.py`).
//!
//! - [`Params`] / [`Grads`]: trainable variables by Google name (`bert/*` plus the head's
//!   `output_weights` `[num_labels, hidden]` and `output_bias`).
//! - [`loss_and_grads`] / [`evaluate`]: forward pass (dropout when an [`Rng`] is given) and
//!   backward pass into a gradient set.
//! - [`AdamW`], [`clip_by_global_norm`], [`Schedule`]: `AdamWeightDecayOptimizer` (no bias
//!   correction, decoupled weight decay), global-norm clipping, warm-up + linear decay.
//! - [`Trainer`]: params + optimizer state + global step; [`Trainer::step`] or
//!   [`Trainer::accumulate`] micro-batches then [`Trainer::apply`].
//!
//! The f32 training path is self-contained (it does not reuse `src/model` internals); it calls
//! the [`crate::backend::cpu`] kernels for matmuls and activations, and spreads every other
//! pass over the context's [`Pool`] (`kernels.rs`). A [`Trainer`] keeps its activation
//! buffers between steps; with [`Trainer::set_checkpointing`] it keeps only each layer's
//! input and recomputes the layer in the backward pass (same gradients, less memory).

mod adamw;
mod attention;
mod backward;
mod dropout;
mod forward;
mod kernels;
mod layer;
mod params;
pub mod pretraining_data;
mod rng;
mod schedule;
mod update;
mod workspace;

pub use adamw::{clip_by_global_norm, AdamW, AdamWConfig};
pub use forward::{Batch, Forward, HEAD_DROPOUT, MASK_ADDER};
pub use params::{Grads, Params};
pub use rng::Rng;
pub use schedule::Schedule;

use crate::backend::Pool;
use crate::{Error, Result};
use workspace::Workspace;

/// Loss and logits in evaluation mode (no dropout).
pub fn evaluate(params: &Params, batch: &Batch, pool: &Pool) -> Result<Forward> {
    // Nothing is kept for a backward pass: one layer's activations at a time.
    forward::forward(params, batch, None, &mut Workspace::new(true), pool)
}

/// Forward and backward pass: adds `scale · ∂loss/∂θ` into `grads` (the loss is the batch
/// mean of the cross-entropy) and returns the forward results. `dropout: None` turns dropout
/// off; with an RNG, the config's dropout rates and the head's 0.1 are applied with masks
/// drawn from it.
pub fn loss_and_grads(
    params: &Params,
    batch: &Batch,
    dropout: Option<&mut Rng>,
    grads: &mut Grads,
    scale: f32,
    pool: &Pool,
) -> Result<Forward> {
    let mut ws = Workspace::new(false);
    let out = forward::forward(params, batch, dropout, &mut ws, pool)?;
    backward::backward(params, batch, &mut ws, grads, scale, pool);
    Ok(out)
}

/// What one optimizer update did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Mean loss over the examples of the update (before it).
    pub loss: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub learning_rate: f32,
    /// Number of updates done, this one included.
    pub global_step: u64,
}

/// Parameters, optimizer state and global step of one fine-tuning run.
#[derive(Debug)]
pub struct Trainer {
    params: Params,
    grads: Grads,
    optimizer: AdamW,
    schedule: Schedule,
    global_step: u64,
    rng: Rng,
    dropout: bool,
    examples: usize,
    loss_sum: f64,
    pool: Pool,
    workspace: Workspace,
}

impl Trainer {
    /// A trainer at global step 0 with zero optimizer slots; dropout on, masks drawn from
    /// `Rng::new(seed)`.
    pub fn new(
        params: Params,
        schedule: Schedule,
        adamw: AdamWConfig,
        seed: u64,
        pool: Pool,
    ) -> Trainer {
        Trainer {
            grads: params.zeros_like(),
            optimizer: AdamW::new(&params, adamw),
            params,
            schedule,
            global_step: 0,
            rng: Rng::new(seed),
            dropout: true,
            examples: 0,
            loss_sum: 0.0,
            pool,
            workspace: Workspace::new(false),
        }
    }

    /// A trainer resumed from a checkpoint: `optimizer` holds the saved slots, `global_step`
    /// the updates already done and `rng_state` the dropout generator's [`Rng::state`], so
    /// that the following updates are those the uninterrupted run would have made.
    pub fn resume(
        params: Params,
        schedule: Schedule,
        optimizer: AdamW,
        global_step: u64,
        rng_state: u64,
        pool: Pool,
    ) -> Trainer {
        Trainer {
            grads: params.zeros_like(),
            optimizer,
            params,
            schedule,
            global_step,
            rng: Rng::from_state(rng_state),
            dropout: true,
            examples: 0,
            loss_sum: 0.0,
            pool,
            workspace: Workspace::new(false),
        }
    }

    /// State of the dropout generator (for checkpoints; see [`Trainer::resume`]).
    pub fn rng_state(&self) -> u64 {
        self.rng.state()
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The thread pool the passes run on.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Gradient checkpointing on or off (default off) for the following training passes:
    /// when on, only each layer's input is kept from the forward pass and the layer's
    /// activations are recomputed in the backward pass. Same gradients (the recomputation
    /// repeats the same operations with the same dropout masks); activation memory drops
    /// from every layer's to one layer's, for about one more forward pass of compute.
    pub fn set_checkpointing(&mut self, on: bool) {
        if on != self.workspace.checkpointing {
            self.workspace = Workspace::new(on);
        }
    }

    /// Whether gradient checkpointing is on.
    pub fn checkpointing(&self) -> bool {
        self.workspace.checkpointing
    }

    /// Turns dropout on (default) or off for the following training passes.
    pub fn set_dropout(&mut self, on: bool) {
        self.dropout = on;
    }

    /// Current parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Optimizer state.
    pub fn optimizer(&self) -> &AdamW {
        &self.optimizer
    }

    /// Number of updates done.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Gradients accumulated since the last update (sums over examples, not yet averaged).
    pub fn pending_grads(&self) -> &Grads {
        &self.grads
    }

    /// Loss and logits of the current parameters, dropout off.
    pub fn evaluate(&self, batch: &Batch) -> Result<Forward> {
        evaluate(&self.params, batch, &self.pool)
    }

    /// Forward + backward on a micro-batch, adding its gradients (weighted by its number of
    /// examples) to the pending ones. k micro-batches then [`Trainer::apply`] give the update
    /// of one batch holding all their examples.
    pub fn accumulate(&mut self, batch: &Batch) -> Result<Forward> {
        let rng = if self.dropout {
            Some(&mut self.rng)
        } else {
            None
        };
        let ws = &mut self.workspace;
        let out = forward::forward(&self.params, batch, rng, ws, &self.pool)?;
        let scale = batch.batch as f32;
        backward::backward(&self.params, batch, ws, &mut self.grads, scale, &self.pool);
        self.examples += batch.batch;
        self.loss_sum += out.loss as f64 * batch.batch as f64;
        Ok(out)
    }

    /// One optimizer update from the pending gradients (their mean over all accumulated
    /// examples): clip by global norm, AdamW at the schedule's learning rate for the current
    /// global step, then increment the step.
    pub fn apply(&mut self) -> Result<StepReport> {
        if self.examples == 0 {
            return Err(Error::InvalidArgument(
                "apply: no accumulated gradients".into(),
            ));
        }
        // Mean over the examples, global norm, clipping and AdamW: two parallel passes with
        // the arithmetic of `Grads::scale`, `clip_by_global_norm` and `AdamW::apply`.
        let inv = 1.0 / self.examples as f32;
        let grad_norm = update::scale_and_tf_norm(&mut self.grads, inv, &self.pool);
        let clip = match self.optimizer.config.clip_norm {
            Some(c) if grad_norm > c as f64 => Some((c as f64 / grad_norm) as f32),
            _ => None,
        };
        let learning_rate = self.schedule.learning_rate(self.global_step);
        self.optimizer.apply_and_zero(
            &mut self.params,
            &mut self.grads,
            clip,
            learning_rate,
            &self.pool,
        );
        self.global_step += 1;
        let loss = (self.loss_sum / self.examples as f64) as f32;
        self.examples = 0;
        self.loss_sum = 0.0;
        Ok(StepReport {
            loss,
            grad_norm,
            learning_rate,
            global_step: self.global_step,
        })
    }

    /// [`Trainer::accumulate`] then [`Trainer::apply`].
    pub fn step(&mut self, batch: &Batch) -> Result<StepReport> {
        self.accumulate(batch)?;
        self.apply()
    }
}
