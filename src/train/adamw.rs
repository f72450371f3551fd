//! `optimization.py: AdamWeightDecayOptimizer` and the global-norm clipping of
//! `create_optimizer`.
//!
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `update = m/(√v + ε)` — no bias correction —,
//! plus `rate · θ` for variables whose name contains none of `LayerNorm`, `layer_norm`,
//! `bias`; `θ ← θ − lr · update`. Computed in f32 like the TF ops.

use crate::backend::{AdamStep, Backend, Cpu};
use crate::{Error, Result};

/// Optimizer hyper-parameters (Google's defaults via [`Default`]). Python floats in
/// `optimization.py`, hence f64 here; the update itself runs in f32 like the TF graph.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWConfig {
    pub weight_decay_rate: f64,
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
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

/// One variable's `adam_m` / `adam_v` slots.
struct Slot<B: Backend> {
    name: String,
    m: B::Buf,
    v: B::Buf,
    decay: bool,
}

/// Optimizer state: the `adam_m` / `adam_v` slots of every trainable variable, by name.
pub struct AdamW<B: Backend = Cpu> {
    pub config: AdamWConfig,
    slots: Vec<Slot<B>>,
}

impl<B: Backend> std::fmt::Debug for AdamW<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdamW({} slots, {:?})", self.slots.len(), self.config)
    }
}

impl AdamWConfig {
    /// Whether `name` gets weight decay (its name contains none of the exclusions).
    pub fn decays(&self, name: &str) -> bool {
        self.weight_decay_rate != 0.0
            && !self
                .exclude_from_weight_decay
                .iter()
                .any(|e| name.contains(e.as_str()))
    }

    /// The f32 constants of an update at learning rate `lr` (`decay`: the variable's).
    pub fn step(&self, lr: f32, decay: bool, grad_scale: f32) -> AdamStep {
        AdamStep {
            lr,
            beta_1: self.beta_1 as f32,
            beta_2: self.beta_2 as f32,
            // `1.0 - beta` is computed on Python floats and rounded to f32 once.
            one_minus_beta_1: (1.0 - self.beta_1) as f32,
            one_minus_beta_2: (1.0 - self.beta_2) as f32,
            epsilon: self.epsilon as f32,
            weight_decay: if decay {
                self.weight_decay_rate as f32
            } else {
                0.0
            },
            grad_scale,
        }
    }
}

impl<B: Backend> AdamW<B> {
    /// Zero slots for variables `(name, number of values)` on `backend`.
    pub fn new<'a>(
        backend: &B,
        vars: impl IntoIterator<Item = (&'a str, usize)>,
        config: AdamWConfig,
    ) -> AdamW<B> {
        let slots = vars
            .into_iter()
            .map(|(name, len)| Slot {
                name: name.to_string(),
                m: backend.upload(&vec![0.0; len]),
                v: backend.upload(&vec![0.0; len]),
                decay: config.decays(name),
            })
            .collect();
        AdamW { config, slots }
    }

    /// Variable names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| s.name.as_str())
    }

    /// Whether the variable `name` gets weight decay.
    pub fn decays(&self, name: &str) -> bool {
        self.slots.iter().any(|s| s.name == name && s.decay)
    }

    /// The slots `(m, v)` of variable `name`.
    pub fn slots(&self, name: &str) -> Option<(&B::Buf, &B::Buf)> {
        let s = self.slots.iter().find(|s| s.name == name)?;
        Some((&s.m, &s.v))
    }

    /// Restores the slots of `name` (resuming from a checkpoint).
    pub fn set_slots(&mut self, ex: &mut B::Exec, name: &str, m: &[f32], v: &[f32]) -> Result<()> {
        let s = self
            .slots
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::Shape(format!("no optimizer slots for variable {name}")))?;
        let len = B::len(&s.m);
        if m.len() != len || v.len() != len {
            return Err(Error::Shape(format!(
                "optimizer slots of {name}: {} and {} values for {len}",
                m.len(),
                v.len()
            )));
        }
        B::write(ex, &mut s.m, m);
        B::write(ex, &mut s.v, v);
        Ok(())
    }

    /// One update of variable `i` (in creation order), named `name`: AdamW at `lr` on its
    /// gradient times `grad_scale`, which it leaves zeroed.
    pub(crate) fn update(
        &mut self,
        ex: &mut B::Exec,
        i: usize,
        name: &str,
        (value, grad): (&mut B::Buf, &mut B::Buf),
        lr: f32,
        grad_scale: f32,
    ) {
        let s = &mut self.slots[i];
        debug_assert_eq!(s.name, name, "variables visited in another order");
        let step = self.config.step(lr, s.decay, grad_scale);
        B::adamw(ex, value, grad, &mut s.m, &mut s.v, &step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two updates of one decayed and one excluded variable, written out from
    /// `optimization.py` (no bias correction; decay only where the name allows).
    #[test]
    fn updates_follow_optimization_py() {
        let cfg = AdamWConfig::default();
        assert!(cfg.decays("output_weights") && !cfg.decays("output_bias"));
        assert!(!cfg.decays("bert/embeddings/LayerNorm/gamma"));
        let mut opt: AdamW<Cpu> =
            AdamW::new(&Cpu, [("output_weights", 4), ("output_bias", 2)], cfg);
        let mut ex = Cpu.exec(1);
        let (w0, b0) = (vec![1.0f32, -2.0, 0.5, 0.0], vec![3.0f32, -1.0]);
        let (gw, gb) = (vec![0.1f32, 0.2, -0.3, 0.0], vec![0.5f32, -0.25]);
        let (mut w, mut b) = (w0.clone(), b0.clone());
        let lr = 0.1f64;
        for _ in 0..2 {
            let (mut g1, mut g2) = (gw.clone(), gb.clone());
            opt.update(
                &mut ex,
                0,
                "output_weights",
                (&mut w, &mut g1),
                lr as f32,
                1.0,
            );
            opt.update(&mut ex, 1, "output_bias", (&mut b, &mut g2), lr as f32, 1.0);
            assert!(g1.iter().chain(&g2).all(|&x| x == 0.0), "gradients zeroed");
        }
        let expect = |theta0: f64, gr: f64, decay: bool| {
            let (mut th, mut m, mut v) = (theta0, 0.0, 0.0);
            for _ in 0..2 {
                m = 0.9 * m + 0.1 * gr;
                v = 0.999 * v + 0.001 * gr * gr;
                let mut u = m / (v.sqrt() + 1e-6);
                if decay {
                    u += 0.01 * th;
                }
                th -= lr * u;
            }
            th
        };
        for (j, &x) in w.iter().enumerate() {
            let e = expect(w0[j] as f64, gw[j] as f64, true);
            assert!((x as f64 - e).abs() < 1e-6, "{j}: {x} vs {e}");
        }
        for (j, &x) in b.iter().enumerate() {
            let e = expect(b0[j] as f64, gb[j] as f64, false);
            assert!((x as f64 - e).abs() < 1e-6, "{j}: {x} vs {e}");
        }
        // Zero gradient: only the decay moves a decayed variable (w[3] = 0 stays 0).
        assert_eq!(w[3], 0.0);
    }
}
