//! Training: what is training's own around the one model of [`crate::model`] and the heads
//! of [`crate::heads`] — Google's optimizer (`optimization.py`), the schedule, global-norm
//! clipping, gradient accumulation, dropout masks and the trainer loop.
//!
//! - [`Trainer`]: a trainable [`BertModel`] and a [`Head`], the optimizer state and global
//!   step; [`Trainer::step`], or [`Trainer::accumulate`] micro-batches then
//!   [`Trainer::apply`].
//! - [`AdamW`] ([`AdamWConfig`]), [`Schedule`]: `AdamWeightDecayOptimizer` (no bias
//!   correction, decoupled weight decay) and warm-up + linear decay; clipping by the global
//!   norm as `tf.clip_by_global_norm` computes it.
//!
//! The passes run on the model's back end; with [`Trainer::set_checkpointing`] a pass keeps
//! only each layer's input and recomputes the layer in the backward pass (same gradients,
//! less memory).

mod adamw;
pub mod checkpoint;
pub(crate) mod dropout;
pub mod pretrain;
pub mod pretraining_data;
mod rng;
pub(crate) mod run_state;
mod schedule;

pub use adamw::{AdamW, AdamWConfig};
pub use rng::Rng;
pub use schedule::Schedule;

use crate::backend::{Backend, Cpu, Queries, Rows};
use crate::heads::Head;
use crate::model::{BertModel, Context, Inputs, Param, Tape, Visit};
use crate::weights::{Tensor, Weights};
use crate::{Error, Result};

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

/// The buffers between the encoder and the head.
struct Between<B: Backend> {
    rows: Rows,
    queries: Option<Queries>,
    /// Per sequence, its first row among the last layer's rows (the pooler's input).
    first_rows: Vec<u32>,
    first: B::Buf,
    pooled: B::Buf,
    dpooled: B::Buf,
    dfirst: B::Buf,
    dlast: B::Buf,
}

/// A training run's state: a trainable model with its head, the optimizer state and the
/// global step, the dropout generator, and the buffers of its passes.
pub struct Trainer<H: Head<B>, B: Backend = Cpu> {
    model: BertModel<B>,
    head: H,
    optimizer: AdamW<B>,
    schedule: Schedule,
    global_step: u64,
    rng: Rng,
    dropout: bool,
    examples: usize,
    loss_sum: f64,
    ctx: Context<B>,
    tape: Tape<B>,
    between: Between<B>,
}

impl<H: Head<B>, B: Backend> std::fmt::Debug for Trainer<H, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model)
            .field("global_step", &self.global_step)
            .finish_non_exhaustive()
    }
}

/// Calls `f` for every trainable variable of the run, in `tf.trainable_variables()` order:
/// the model's (without the pooler when the head does not read it: it gets no gradient, and
/// TensorFlow's optimizer skips a variable without one), then the head's.
fn each_param<B: Backend, H: Head<B>>(
    model: &mut BertModel<B>,
    head: &mut H,
    f: &mut dyn FnMut(&str, &mut Param<B>),
) {
    let pooler = head.uses_pooler();
    model.visit_mut("", &mut |name, p| {
        if pooler || !name.starts_with("bert/pooler/") {
            f(name, p)
        }
    });
    head.visit_mut("", f);
}

/// [`each_param`] without mutation.
fn each_param_ref<B: Backend, H: Head<B>>(
    model: &BertModel<B>,
    head: &H,
    f: &mut dyn FnMut(&str, &Param<B>),
) {
    let pooler = head.uses_pooler();
    model.visit("", &mut |name, p| {
        if pooler || !name.starts_with("bert/pooler/") {
            f(name, p)
        }
    });
    head.visit("", f);
}

impl<H: Head<B>, B: Backend> Trainer<H, B> {
    /// A trainer at global step 0 with zero optimizer slots; dropout on, masks drawn from
    /// `Rng::new(seed)`; passes on `threads` threads (0: all cores). The model must be
    /// trainable ([`BertModel::build`]).
    pub fn new(
        mut model: BertModel<B>,
        mut head: H,
        schedule: Schedule,
        adamw: AdamWConfig,
        seed: u64,
        threads: usize,
    ) -> Result<Self> {
        if !model.trainable() {
            return Err(Error::InvalidArgument(
                "the model was built for inference: build it trainable".into(),
            ));
        }
        if head.uses_pooler() && !model.has_pooler() {
            return Err(Error::Shape(
                "missing tensor bert/pooler/dense/kernel (the head reads the pooled output)".into(),
            ));
        }
        let mut vars = Vec::new();
        each_param(&mut model, &mut head, &mut |name, p| {
            vars.push((name.to_string(), p.len()))
        });
        let optimizer = AdamW::new(
            model.backend(),
            vars.iter().map(|(n, l)| (n.as_str(), *l)),
            adamw,
        );
        let ctx = Context::on(model.backend(), threads);
        Ok(Trainer {
            model,
            head,
            optimizer,
            schedule,
            global_step: 0,
            rng: Rng::new(seed),
            dropout: true,
            examples: 0,
            loss_sum: 0.0,
            ctx,
            tape: Tape::new(false),
            between: Between {
                rows: Rows::default(),
                queries: None,
                first_rows: Vec::new(),
                first: B::Buf::default(),
                pooled: B::Buf::default(),
                dpooled: B::Buf::default(),
                dfirst: B::Buf::default(),
                dlast: B::Buf::default(),
            },
        })
    }

    /// Continues a run: `slots` holds the saved `(name, adam_m, adam_v)` of every variable,
    /// `global_step` the updates already done and `rng_state` the dropout generator's
    /// [`Rng::state`], so that the following updates are those the uninterrupted run would
    /// have made.
    pub fn resume<'a>(
        &mut self,
        slots: impl IntoIterator<Item = (&'a str, &'a [f32], &'a [f32])>,
        global_step: u64,
        rng_state: u64,
    ) -> Result<()> {
        let mut restored = 0;
        for (name, m, v) in slots {
            self.optimizer.set_slots(&mut self.ctx.exec, name, m, v)?;
            restored += 1;
        }
        let want = self.optimizer.names().count();
        if restored != want {
            return Err(Error::Shape(format!(
                "{restored} optimizer slots for {want} trainable variables"
            )));
        }
        self.global_step = global_step;
        self.rng = Rng::from_state(rng_state);
        Ok(())
    }

    /// State of the dropout generator (for checkpoints; see [`Trainer::resume`]).
    pub fn rng_state(&self) -> u64 {
        self.rng.state()
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn model(&self) -> &BertModel<B> {
        &self.model
    }

    pub fn head(&self) -> &H {
        &self.head
    }

    pub fn optimizer(&self) -> &AdamW<B> {
        &self.optimizer
    }

    /// Number of threads the passes use.
    pub fn threads(&self) -> usize {
        self.ctx.threads()
    }

    /// Number of updates done.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Gradient checkpointing on or off (default off) for the following training passes:
    /// when on, only each layer's input is kept from the forward pass and the layer's
    /// activations are recomputed in the backward pass. Same gradients (the recomputation
    /// repeats the same operations with the same dropout masks); activation memory drops
    /// from every layer's to one layer's, for about one more forward pass of compute.
    pub fn set_checkpointing(&mut self, on: bool) {
        if on != self.tape.checkpointing() {
            self.tape = Tape::new(on);
        }
    }

    /// Whether gradient checkpointing is on.
    pub fn checkpointing(&self) -> bool {
        self.tape.checkpointing()
    }

    /// Turns dropout on (default) or off for the following training passes.
    pub fn set_dropout(&mut self, on: bool) {
        self.dropout = on;
    }

    /// Calls `f(name, param)` for every trainable variable, in order (see `each_param`).
    pub fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<B>)) {
        each_param_ref(&self.model, &self.head, f);
    }

    /// Every variable of the model (the pooler included) and of the head as host tensors
    /// under Google's names: what a checkpoint or a `.bert` file stores.
    pub fn weights(&self) -> Result<Weights> {
        let mut w = Weights::new();
        let mut err = None;
        let ex = &self.ctx.exec;
        let mut add = |name: &str, p: &Param<B>| {
            let values = B::read(ex, &p.value, p.len()).into_owned();
            match Tensor::new(p.shape.clone(), values) {
                Ok(t) => w.insert(name, t),
                Err(e) => err = Some(e),
            }
        };
        self.model.visit("", &mut add);
        self.head.visit("", &mut add);
        match err {
            Some(e) => Err(e),
            None => Ok(w),
        }
    }

    /// `buf[..n]` on the host, read through the run's executor (a copy from a device).
    pub(crate) fn host(&self, buf: &B::Buf, n: usize) -> Vec<f32> {
        B::read(&self.ctx.exec, buf, n).into_owned()
    }

    /// The values of a trainable variable by name (a host copy).
    pub fn param(&self, name: &str) -> Option<Vec<f32>> {
        let ex = &self.ctx.exec;
        let mut found = None;
        each_param_ref(&self.model, &self.head, &mut |n, p| {
            if n == name {
                found = Some(B::read(ex, &p.value, p.len()).into_owned());
            }
        });
        found
    }

    /// Replaces a trainable variable's values; the length must match its shape.
    pub fn set_param(&mut self, name: &str, values: &[f32]) -> Result<()> {
        let ex = &mut self.ctx.exec;
        let mut result = Err(Error::Shape(format!("no trainable variable named {name}")));
        each_param(&mut self.model, &mut self.head, &mut |n, p| {
            if n == name {
                result = if values.len() == p.len() {
                    B::write(ex, &mut p.value, values);
                    Ok(())
                } else {
                    Err(Error::Shape(format!(
                        "{name}: {} values given, {} expected",
                        values.len(),
                        p.len()
                    )))
                };
            }
        });
        result
    }

    /// The gradients accumulated since the last update (sums over examples, not yet
    /// averaged), by name, as host copies.
    pub fn pending_grads(&self) -> Vec<(String, Vec<f32>)> {
        let ex = &self.ctx.exec;
        let mut out = Vec::new();
        each_param_ref(&self.model, &self.head, &mut |n, p| {
            if let Some(g) = &p.grad {
                out.push((n.to_string(), B::read(ex, &g.buf, p.len()).into_owned()));
            }
        });
        out
    }

    /// Forward pass of model and head on a batch: the encoder records into the tape, the
    /// pooler runs when the head reads it. Training (`grad_scale`) draws dropout masks.
    fn forward(
        &mut self,
        inputs: &Inputs,
        targets: &H::Targets,
        grad_scale: Option<f32>,
    ) -> Result<(f64, H::Output)> {
        let c = self.model.config();
        inputs.check(c)?;
        let bt = &mut self.between;
        inputs.rows(self.head.trims(), &mut bt.rows);
        bt.queries = self.head.queries(&bt.rows, targets)?;
        let rng = (grad_scale.is_some() && self.dropout).then_some(&mut self.rng);
        let (drops, head_drop) = dropout::draw_all(rng, c, self.head.dropout_rate());
        self.tape.drops = drops;
        let ex = &mut self.ctx.exec;
        let batch = (&bt.rows, bt.queries.as_ref());
        self.model.forward_train(ex, batch, &mut self.tape);
        let last = self.tape.last();
        let h = c.hidden_size;
        let pooled = match (&self.model.pooler, self.head.uses_pooler()) {
            (Some(p), true) => {
                bt.first_rows = match &bt.queries {
                    Some(q) => q.seqs.iter().map(|s| s.start as u32).collect(),
                    None => bt.rows.seqs.iter().map(|s| s.start as u32).collect(),
                };
                B::gather(ex, last, h, &bt.first_rows, &mut bt.first);
                p.forward(ex, &bt.first, inputs.batch, &mut bt.pooled);
                Some(&bt.pooled)
            }
            _ => None,
        };
        self.head.forward(
            ex,
            &self.model,
            last,
            pooled,
            targets,
            head_drop,
            grad_scale,
        )
    }

    /// Loss and output of the current parameters on a batch, dropout off.
    pub fn evaluate(&mut self, inputs: &Inputs, targets: &H::Targets) -> Result<(f64, H::Output)> {
        let out = self.forward(inputs, targets, None)?;
        // A device's ops report their errors here (an op missing there, out of memory).
        B::status(&self.ctx.exec)?;
        Ok(out)
    }

    /// Forward + backward on a micro-batch, adding its gradients (weighted by its number of
    /// examples) to the pending ones. k micro-batches then [`Trainer::apply`] give the update
    /// of one batch holding all their examples.
    pub fn accumulate(
        &mut self,
        inputs: &Inputs,
        targets: &H::Targets,
    ) -> Result<(f64, H::Output)> {
        let batch = inputs.batch;
        let out = self.forward(inputs, targets, Some(batch as f32))?;
        let h = self.model.config().hidden_size;
        let ex = &mut self.ctx.exec;
        let bt = &mut self.between;
        let last = self.tape.last();
        let rq = B::len(last) / h;
        B::fill(ex, &mut bt.dlast, rq * h, 0.0);
        self.head
            .backward(ex, &mut self.model, last, &mut bt.dlast, &mut bt.dpooled);
        if self.head.uses_pooler() {
            let pooler = self.model.pooler.as_mut().expect("checked in Trainer::new");
            pooler.backward(
                ex,
                (&bt.first, &bt.pooled),
                batch,
                &mut bt.dpooled,
                &mut bt.dfirst,
            );
            B::scatter_add(ex, &bt.dfirst, h, &bt.first_rows, &mut bt.dlast);
        }
        let rows = (&bt.rows, bt.queries.as_ref());
        self.model.backward(ex, rows, &mut self.tape, &bt.dlast);
        B::status(ex)?;
        self.examples += batch;
        self.loss_sum += out.0 * batch as f64;
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
        // Mean over the examples and the global norm `tf.clip_by_global_norm` takes (the word
        // embeddings' gathered rows counted per occurrence, as TF counts `IndexedSlices`).
        let inv = 1.0 / self.examples as f32;
        let ex = &mut self.ctx.exec;
        let mut sq = 0.0f64;
        each_param(&mut self.model, &mut self.head, &mut |_, p| {
            let g = p
                .grad
                .as_mut()
                .expect("a trainable model's parameters have gradients");
            let dense = B::scale_and_square_sum(ex, &mut g.buf, inv);
            sq += match (g.occurrence_sq, g.dense) {
                (Some(o), false) => o * (inv as f64).powi(2),
                _ => dense,
            };
        });
        let grad_norm = sq.sqrt();
        let clip = match self.optimizer.config.clip_norm {
            Some(c) if grad_norm > c as f64 => (c as f64 / grad_norm) as f32,
            _ => 1.0,
        };
        let lr = self.schedule.learning_rate(self.global_step);
        let opt = &mut self.optimizer;
        let mut i = 0;
        each_param(&mut self.model, &mut self.head, &mut |name, p| {
            let g = p
                .grad
                .as_mut()
                .expect("a trainable model's parameters have gradients");
            opt.update(ex, i, name, (&mut p.value, &mut g.buf), lr, clip);
            (g.occurrence_sq, g.dense) = (None, false);
            i += 1;
        });
        B::status(ex)?;
        self.global_step += 1;
        let loss = (self.loss_sum / self.examples as f64) as f32;
        self.examples = 0;
        self.loss_sum = 0.0;
        Ok(StepReport {
            loss,
            grad_norm,
            learning_rate: lr,
            global_step: self.global_step,
        })
    }

    /// [`Trainer::accumulate`] then [`Trainer::apply`].
    pub fn step(&mut self, inputs: &Inputs, targets: &H::Targets) -> Result<StepReport> {
        self.accumulate(inputs, targets)?;
        self.apply()
    }

    /// The model and head, e.g. to build an inference model from them.
    pub fn into_parts(self) -> (BertModel<B>, H) {
        (self.model, self.head)
    }
}
