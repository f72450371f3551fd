//! What a training run keeps besides its [`Trainer`] to stop and resume bit for bit: the
//! order of its examples, and the capture / check / restore of a [`TrainingState`] that the
//! classifier, SQuAD and pre-training runs share (each states its own settings and data
//! fingerprint; the file format is [`super::checkpoint`]'s).

use std::collections::BTreeMap;
use std::path::Path;

use super::checkpoint::{TrainingState, Variable};
use super::{Rng, Trainer};
use crate::backend::Backend;
use crate::config::BertConfig;
use crate::heads::Head;
use crate::model::{Param, Visit};
use crate::weights::{Tensor, Weights};
use crate::{Error, Result};

/// Uniform integer in `0..n` (multiply-shift; the bias is below 2⁻³² · n).
fn below(rng: &mut Rng, n: usize) -> usize {
    ((rng.next_u32() as u64 * n as u64) >> 32) as usize
}

/// Example indices epoch after epoch, each epoch a fresh Fisher–Yates shuffle.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub rng: Rng,
    pub perm: Vec<u32>,
    pub at: usize,
}

impl Order {
    pub fn new(n: usize, seed: u64) -> Order {
        Order {
            // A stream of its own, so that shuffling does not shift the dropout masks.
            rng: Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15),
            perm: (0..n as u32).collect(),
            at: n,
        }
    }

    pub fn next(&mut self) -> usize {
        if self.at == self.perm.len() {
            for i in (1..self.perm.len()).rev() {
                let j = below(&mut self.rng, i + 1);
                self.perm.swap(i, j);
            }
            self.at = 0;
        }
        self.at += 1;
        self.perm[self.at - 1] as usize
    }
}

/// The run's whole state: every variable with its AdamW slots, the global step, the
/// generators and the data position.
pub(crate) fn capture<B: Backend, H: Head<B>>(
    trainer: &Trainer<H, B>,
    config: &BertConfig,
    order: &Order,
    settings: BTreeMap<String, String>,
    labels: Vec<String>,
) -> Result<TrainingState> {
    let mut variables = Vec::new();
    trainer.visit_params(&mut |name, p| {
        variables.push(Variable {
            name: name.to_string(),
            shape: p.shape.clone(),
            value: trainer.host(&p.value, p.len()),
            m: Vec::new(),
            v: Vec::new(),
        })
    });
    let opt = trainer.optimizer();
    for var in &mut variables {
        let (m, v) = opt
            .slots(&var.name)
            .ok_or_else(|| Error::Shape(format!("no optimizer slots for {}", var.name)))?;
        let n = var.value.len();
        (var.m, var.v) = (trainer.host(m, n), trainer.host(v, n));
    }
    // Variables the run does not train (SQuAD's pooler) are kept too, with zero slots, so
    // that the resumed run still holds and saves them. Visited in place: copying every
    // variable (`Trainer::weights`) to find these few doubled a checkpoint's memory.
    let mut untrained = |name: &str, p: &Param<B>| {
        if opt.slots(name).is_none() {
            variables.push(Variable {
                name: name.to_string(),
                shape: p.shape.clone(),
                value: trainer.host(&p.value, p.len()),
                m: vec![0.0; p.len()],
                v: vec![0.0; p.len()],
            });
        }
    };
    trainer.model.visit("", &mut untrained);
    trainer.head.visit("", &mut untrained);
    Ok(TrainingState {
        config: config.clone(),
        variables,
        global_step: trainer.global_step(),
        dropout_rng: trainer.rng_state(),
        order_rng: order.rng.state(),
        order: order.perm.clone(),
        order_position: order.at as u64,
        settings,
        labels,
    })
}

/// The error of a state file this run cannot continue.
pub(crate) fn refuse(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!(
        "{}: cannot resume: {what} (delete it to start afresh)",
        path.display()
    ))
}

/// A state read from `path` that this run may continue: same labels, model shape, settings
/// (hyper-parameters and data fingerprint) and an order over its `num_examples` examples;
/// anything else is refused with an error naming what differs. Returns the state and its
/// variables as weights, to build the run's trainer from.
pub(crate) fn load(
    path: &Path,
    config: &BertConfig,
    labels: &[String],
    settings: &BTreeMap<String, String>,
    num_examples: usize,
) -> Result<(TrainingState, Weights)> {
    let state = super::checkpoint::load(path)?;
    if state.labels != labels {
        let what = format!(
            "it was trained for labels {:?}, this run has {labels:?}",
            state.labels
        );
        return Err(refuse(path, what));
    }
    if state.config != *config {
        return Err(refuse(path, "it was trained from a model of another shape"));
    }
    let differ: Vec<String> = settings
        .iter()
        .filter(|(k, v)| state.settings.get(*k) != Some(v))
        .map(|(k, v)| {
            let was = state.settings.get(k).map_or("missing", String::as_str);
            format!("{k} {was} (now {v})")
        })
        .collect();
    if !differ.is_empty() {
        let what = format!("its settings or data differ: {}", differ.join(", "));
        return Err(refuse(path, what));
    }
    let n = num_examples;
    if state.order.len() != n || state.order.iter().any(|&i| i as usize >= n) {
        return Err(refuse(path, "its example order does not fit the data"));
    }
    let mut weights = Weights::new();
    for var in &state.variables {
        weights.insert(
            &var.name,
            Tensor::new(var.shape.clone(), var.value.clone())?,
        );
    }
    Ok((state, weights))
}

/// Puts `state`'s optimizer slots, step and generators into `trainer` (built from the
/// state's weights) and returns the data order to go on with.
pub(crate) fn restore<B: Backend, H: Head<B>>(
    path: &Path,
    trainer: &mut Trainer<H, B>,
    state: TrainingState,
) -> Result<Order> {
    let trained: Vec<_> = state
        .variables
        .iter()
        .filter(|v| trainer.optimizer().slots(&v.name).is_some())
        .map(|v| (v.name.as_str(), v.m.as_slice(), v.v.as_slice()))
        .collect();
    trainer
        .resume(trained, state.global_step, state.dropout_rng)
        .map_err(|e| refuse(path, e))?;
    Ok(Order {
        rng: Rng::from_state(state.order_rng),
        perm: state.order,
        at: state.order_position as usize,
    })
}
