//! `optimization.py: AdamWeightDecayOptimizer` and the global-norm clipping of
//! `create_optimizer`.
//!
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `update = m/(√v + ε)` — no bias correction —,
//! plus `rate · θ` for variables whose name contains none of `LayerNorm`, `layer_norm`,
//! `bias`; `θ ← θ − lr · update`. Computed in f32 like the TF ops.

use super::kernels::SharedMut;
use super::params::{Grads, Params};
use crate::backend::Pool;

/// Elements per task of [`AdamW::apply_and_zero`].
const CHUNK: usize = 1 << 15;

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

    /// Restores the slots of the variable at position `i` (resuming from a checkpoint); the
    /// lengths must be the variable's.
    pub fn set_slots(&mut self, i: usize, m: &[f32], v: &[f32]) -> crate::Result<()> {
        let len = self.m.get(i).map(Vec::len);
        if len != Some(m.len()) || len != Some(v.len()) {
            return Err(crate::Error::Shape(format!(
                "optimizer slots of variable {i}: {} and {} values for {len:?}",
                m.len(),
                v.len()
            )));
        }
        self.m[i].copy_from_slice(m);
        self.v[i].copy_from_slice(v);
        Ok(())
    }

    /// One update with already-clipped gradients at learning rate `lr`.
    pub fn apply(&mut self, params: &mut Params, grads: &Grads, lr: f32) {
        let k = Constants::new(&self.config, lr);
        for i in 0..params.data.len() {
            let decay = self.decay[i];
            let (p, g) = (&mut params.data[i], &grads.data[i]);
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for j in 0..p.len() {
                k.update(&mut p[j], g[j], &mut m[j], &mut v[j], decay);
            }
        }
    }

    /// The update of `clip_by_global_norm` (`grads · grad_scale`, when clipping applies)
    /// followed by [`AdamW::apply`], in one pass over the variables spread over `pool`, leaving
    /// `grads` zeroed for the next accumulation. Same f32 arithmetic as the two steps, element
    /// by element, so the result does not depend on the thread count.
    pub(crate) fn apply_and_zero(
        &mut self,
        params: &mut Params,
        grads: &mut Grads,
        grad_scale: Option<f32>,
        lr: f32,
        pool: &Pool,
    ) {
        let k = Constants::new(&self.config, lr);
        let mut tasks = Vec::new();
        for (i, t) in params.data.iter().enumerate() {
            for start in (0..t.len()).step_by(CHUNK) {
                tasks.push((i, start, (start + CHUNK).min(t.len())));
            }
        }
        fn shared(ts: &mut [Vec<f32>]) -> Vec<SharedMut<'_>> {
            ts.iter_mut().map(|t| SharedMut::new(t)).collect()
        }
        let (ps, gs) = (shared(&mut params.data), shared(&mut grads.data));
        let (ms, vs) = (shared(&mut self.m), shared(&mut self.v));
        let decay = &self.decay;
        pool.run(tasks.len(), &|t| {
            let (i, a, b) = tasks[t];
            // SAFETY: tasks cover disjoint ranges of each variable.
            let (p, g, m, v) = unsafe {
                (
                    ps[i].part(a, b - a),
                    gs[i].part(a, b - a),
                    ms[i].part(a, b - a),
                    vs[i].part(a, b - a),
                )
            };
            for j in 0..p.len() {
                let gj = match grad_scale {
                    Some(s) => g[j] * s,
                    None => g[j],
                };
                k.update(&mut p[j], gj, &mut m[j], &mut v[j], decay[i]);
                g[j] = 0.0;
            }
        });
        grads.word_occurrence_sq = 0.0;
    }
}

/// The f32 constants of one update.
struct Constants {
    b1: f32,
    b2: f32,
    one_minus_b1: f32,
    one_minus_b2: f32,
    eps: f32,
    wd: f32,
    lr: f32,
}

impl Constants {
    fn new(c: &AdamWConfig, lr: f32) -> Constants {
        Constants {
            b1: c.beta_1 as f32,
            b2: c.beta_2 as f32,
            // `1.0 - beta` is computed on Python floats and rounded to f32 once (in f32,
            // 1 − 0.999 would be 0.00100005, a relative error of 5e-5).
            one_minus_b1: (1.0 - c.beta_1) as f32,
            one_minus_b2: (1.0 - c.beta_2) as f32,
            eps: c.epsilon as f32,
            wd: c.weight_decay_rate as f32,
            lr,
        }
    }

    #[inline(always)]
    fn update(&self, p: &mut f32, g: f32, m: &mut f32, v: &mut f32, decay: bool) {
        let mj = self.b1 * *m + self.one_minus_b1 * g;
        let vj = self.b2 * *v + self.one_minus_b2 * (g * g);
        *m = mj;
        *v = vj;
        let mut update = mj / (vj.sqrt() + self.eps);
        if decay {
            update += self.wd * *p;
        }
        *p -= self.lr * update;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BertConfig;

    fn tiny() -> Params {
        let c = BertConfig {
            vocab_size: 3,
            hidden_size: 2,
            num_hidden_layers: 1,
            num_attention_heads: 1,
            intermediate_size: 2,
            max_position_embeddings: 2,
            type_vocab_size: 1,
            ..BertConfig::default()
        };
        Params::zeros(&c, 2).unwrap()
    }

    /// Two updates of one decayed and one excluded variable, written out from
    /// `optimization.py` (no bias correction; decay only where the name allows).
    #[test]
    fn updates_follow_optimization_py() {
        let mut p = tiny();
        p.set("output_weights", &[1.0, -2.0, 0.5, 0.0]).unwrap();
        p.set("output_bias", &[3.0, -1.0]).unwrap();
        let mut g = p.zeros_like();
        g.set("output_weights", &[0.1, 0.2, -0.3, 0.0]).unwrap();
        g.set("output_bias", &[0.5, -0.25]).unwrap();
        let mut opt = AdamW::new(&p, AdamWConfig::default());
        let names: Vec<&str> = p.names().collect();
        let iw = names.iter().position(|&n| n == "output_weights").unwrap();
        let ib = names.iter().position(|&n| n == "output_bias").unwrap();
        assert!(opt.decays(iw) && !opt.decays(ib));
        assert!(!opt.decays(names.iter().position(|&n| n.contains("gamma")).unwrap()));
        let (w0, b0) = (
            p.get("output_weights").unwrap().to_vec(),
            p.get("output_bias").unwrap().to_vec(),
        );
        let lr = 0.1f64;
        opt.apply(&mut p, &g, lr as f32);
        opt.apply(&mut p, &g, lr as f32);
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
        let gw = g.get("output_weights").unwrap();
        for (j, &x) in p.get("output_weights").unwrap().iter().enumerate() {
            let e = expect(w0[j] as f64, gw[j] as f64, true);
            assert!((x as f64 - e).abs() < 1e-6, "{j}: {x} vs {e}");
        }
        let gb = g.get("output_bias").unwrap();
        for (j, &x) in p.get("output_bias").unwrap().iter().enumerate() {
            let e = expect(b0[j] as f64, gb[j] as f64, false);
            assert!((x as f64 - e).abs() < 1e-6, "{j}: {x} vs {e}");
        }
        // Zero gradient: only the decay moves a decayed variable (w[3] = 0 stays 0).
        assert_eq!(p.get("output_weights").unwrap()[3], 0.0);
    }

    #[test]
    fn clipping_scales_only_above_the_threshold() {
        let mut g = tiny();
        g.set("output_bias", &[0.3, 0.4]).unwrap();
        assert!((clip_by_global_norm(&mut g, 1.0) - 0.5).abs() < 1e-7);
        assert_eq!(g.get("output_bias").unwrap(), &[0.3, 0.4]);
        g.set("output_bias", &[3.0, 4.0]).unwrap();
        assert!((clip_by_global_norm(&mut g, 1.0) - 5.0).abs() < 1e-6);
        let b = g.get("output_bias").unwrap();
        assert!((b[0] - 0.6).abs() < 1e-7 && (b[1] - 0.8).abs() < 1e-7);
    }
}
