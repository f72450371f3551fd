//! `optimization.py: AdamWeightDecayOptimizer` and the global-norm clipping of
//! `create_optimizer`.
//!
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `update = m/(√v + ε)` — no bias correction —,
//! plus `rate · θ` for variables whose name contains none of `LayerNorm`, `layer_norm`,
//! `bias`; `θ ← θ − lr · update`. Computed in f32 like the TF ops.

use super::params::{Grads, Params};

/// Optimizer hyper-parameters (Google's defaults via [`Default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWConfig {
    pub weight_decay_rate: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// Substrings that exclude a variable from weight decay.
    pub exclude_from_weight_decay: Vec<String>,
    /// `tf.clip_by_global_norm` threshold; `None` disables clipping.
    pub clip_norm: Option<f32>,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            weight_decay_rate: 0.01,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-6,
            exclude_from_weight_decay: vec!["LayerNorm".into(), "layer_norm".into(), "bias".into()],
            clip_norm: Some(1.0),
        }
    }
}

/// Optimizer state: the `adam_m` / `adam_v` slots of every variable.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub config: AdamWConfig,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    decay: Vec<bool>,
}

/// `tf.clip_by_global_norm(grads, clip_norm)`: scales all gradients by
/// `clip_norm / max(global_norm, clip_norm)`; returns the norm before clipping. The norm is
/// [`Params::tf_global_norm`] (word-embedding gradient counted per token occurrence, as TF
/// does for the `tf.gather` gradient).
pub fn clip_by_global_norm(grads: &mut Grads, clip_norm: f32) -> f64 {
    let norm = grads.tf_global_norm();
    if norm > clip_norm as f64 {
        grads.scale((clip_norm as f64 / norm) as f32);
    }
    norm
}

impl AdamW {
    /// Zero slots for every variable of `params`.
    pub fn new(params: &Params, config: AdamWConfig) -> AdamW {
        let decay = params
            .names()
            .map(|n| {
                config.weight_decay_rate != 0.0
                    && !config
                        .exclude_from_weight_decay
                        .iter()
                        .any(|e| n.contains(e.as_str()))
            })
            .collect();
        AdamW {
            m: params.data.iter().map(|t| vec![0.0; t.len()]).collect(),
            v: params.data.iter().map(|t| vec![0.0; t.len()]).collect(),
            decay,
            config,
        }
    }

    /// Whether the variable at position `i` gets weight decay.
    pub fn decays(&self, name_index: usize) -> bool {
        self.decay[name_index]
    }

    /// The `adam_m` slot of a variable by position.
    pub fn m(&self, i: usize) -> &[f32] {
        &self.m[i]
    }

    /// The `adam_v` slot of a variable by position.
    pub fn v(&self, i: usize) -> &[f32] {
        &self.v[i]
    }

    /// One update with already-clipped gradients at learning rate `lr`.
    pub fn apply(&mut self, params: &mut Params, grads: &Grads, lr: f32) {
        let c = &self.config;
        let (b1, b2, eps, wd) = (c.beta_1, c.beta_2, c.epsilon, c.weight_decay_rate);
        for i in 0..params.data.len() {
            let decay = self.decay[i];
            let (p, g) = (&mut params.data[i], &grads.data[i]);
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for j in 0..p.len() {
                let gj = g[j];
                let mj = b1 * m[j] + (1.0 - b1) * gj;
                let vj = b2 * v[j] + (1.0 - b2) * (gj * gj);
                m[j] = mj;
                v[j] = vj;
                let mut update = mj / (vj.sqrt() + eps);
                if decay {
                    update += wd * p[j];
                }
                p[j] -= lr * update;
            }
        }
    }
}
