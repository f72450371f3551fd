//! The trainable variables of `run_classifier.create_model`, by Google's names.
//!
//! The 39 `bert/*` variables of `modeling.py` (embeddings, every layer, pooler) plus the
//! classifier head at the top level: `output_weights` `[num_labels, hidden]` (applied as
//! `pooled @ output_weightsᵀ`) and `output_bias` `[num_labels]`. Dense kernels keep TF's
//! `[in, out]` layout. The same type holds gradients ([`Params::zeros_like`]).

use std::collections::HashMap;

use super::rng::Rng;
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::{Error, Result};

/// Indices of one layer's variables in [`Params`].
#[derive(Debug, Clone)]
pub(crate) struct LayerIdx {
    pub query_k: usize,
    pub query_b: usize,
    pub key_k: usize,
    pub key_b: usize,
    pub value_k: usize,
    pub value_b: usize,
    pub attn_out_k: usize,
    pub attn_out_b: usize,
    pub attn_ln_beta: usize,
    pub attn_ln_gamma: usize,
    pub inter_k: usize,
    pub inter_b: usize,
    pub out_k: usize,
    pub out_b: usize,
    pub out_ln_beta: usize,
    pub out_ln_gamma: usize,
}

/// Indices of every variable in [`Params`].
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub word: usize,
    pub token_type: usize,
    pub position: usize,
    pub emb_ln_beta: usize,
    pub emb_ln_gamma: usize,
    pub layers: Vec<LayerIdx>,
    pub pooler_k: usize,
    pub pooler_b: usize,
    pub head_w: usize,
    pub head_b: usize,
}

/// Named f32 tensors in the order of Google's `tf.trainable_variables()`.
#[derive(Debug, Clone)]
pub struct Params {
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    pub(crate) data: Vec<Vec<f32>>,
    index: HashMap<String, usize>,
    pub(crate) layout: Layout,
    config: BertConfig,
    num_labels: usize,
    /// Gradient sets only: Σ over token occurrences of ‖∂loss/∂(gathered word row)‖², i.e.
    /// the word-embedding term `tf.global_norm` sees for the `IndexedSlices` gradient of
    /// `tf.gather` (duplicate ids are not summed before squaring).
    pub(crate) word_occurrence_sq: f64,
}

/// Gradients: one tensor per trainable variable, same names and shapes.
pub type Grads = Params;

struct Builder {
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
}

impl Builder {
    fn add(&mut self, name: String, shape: &[usize]) -> usize {
        self.names.push(name);
        self.shapes.push(shape.to_vec());
        self.names.len() - 1
    }
}

impl Params {
    /// Zero-filled variables for `config` with a `num_labels`-way classifier head.
    pub fn zeros(config: &BertConfig, num_labels: usize) -> Result<Params> {
        config.validate()?;
        if num_labels == 0 {
            return Err(Error::InvalidArgument(
                "num_labels must be at least 1".into(),
            ));
        }
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let mut b = Builder {
            names: Vec::new(),
            shapes: Vec::new(),
        };
        let e = "bert/embeddings";
        let word = b.add(format!("{e}/word_embeddings"), &[config.vocab_size, h]);
        let token_type = b.add(
            format!("{e}/token_type_embeddings"),
            &[config.type_vocab_size, h],
        );
        let position = b.add(
            format!("{e}/position_embeddings"),
            &[config.max_position_embeddings, h],
        );
        let emb_ln_beta = b.add(format!("{e}/LayerNorm/beta"), &[h]);
        let emb_ln_gamma = b.add(format!("{e}/LayerNorm/gamma"), &[h]);
        let mut layers = Vec::new();
        for l in 0..config.num_hidden_layers {
            let s = format!("bert/encoder/layer_{l}");
            let a = format!("{s}/attention/self");
            layers.push(LayerIdx {
                query_k: b.add(format!("{a}/query/kernel"), &[h, h]),
                query_b: b.add(format!("{a}/query/bias"), &[h]),
                key_k: b.add(format!("{a}/key/kernel"), &[h, h]),
                key_b: b.add(format!("{a}/key/bias"), &[h]),
                value_k: b.add(format!("{a}/value/kernel"), &[h, h]),
                value_b: b.add(format!("{a}/value/bias"), &[h]),
                attn_out_k: b.add(format!("{s}/attention/output/dense/kernel"), &[h, h]),
                attn_out_b: b.add(format!("{s}/attention/output/dense/bias"), &[h]),
                attn_ln_beta: b.add(format!("{s}/attention/output/LayerNorm/beta"), &[h]),
                attn_ln_gamma: b.add(format!("{s}/attention/output/LayerNorm/gamma"), &[h]),
                inter_k: b.add(format!("{s}/intermediate/dense/kernel"), &[h, i]),
                inter_b: b.add(format!("{s}/intermediate/dense/bias"), &[i]),
                out_k: b.add(format!("{s}/output/dense/kernel"), &[i, h]),
                out_b: b.add(format!("{s}/output/dense/bias"), &[h]),
                out_ln_beta: b.add(format!("{s}/output/LayerNorm/beta"), &[h]),
                out_ln_gamma: b.add(format!("{s}/output/LayerNorm/gamma"), &[h]),
            });
        }
        let pooler_k = b.add("bert/pooler/dense/kernel".into(), &[h, h]);
        let pooler_b = b.add("bert/pooler/dense/bias".into(), &[h]);
        let head_w = b.add("output_weights".into(), &[num_labels, h]);
        let head_b = b.add("output_bias".into(), &[num_labels]);
        let data = b
            .shapes
            .iter()
            .map(|s| vec![0.0; s.iter().product()])
            .collect();
        let index = b
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Ok(Params {
            names: b.names,
            shapes: b.shapes,
            data,
            index,
            layout: Layout {
                word,
                token_type,
                position,
                emb_ln_beta,
                emb_ln_gamma,
                layers,
                pooler_k,
                pooler_b,
                head_w,
                head_b,
            },
            config: config.clone(),
            num_labels,
            word_occurrence_sq: 0.0,
        })
    }

    /// Loads every `bert/*` variable from `weights` by name (a missing or mis-shaped tensor
    /// names itself in the error). The head is taken from `weights` when it holds
    /// `output_weights` / `output_bias`; otherwise it is initialised as `create_model` does:
    /// truncated normal (stddev 0.02) weights drawn from `Rng::new(seed)`, zero bias.
    pub fn load(
        weights: &Weights,
        config: &BertConfig,
        num_labels: usize,
        seed: u64,
    ) -> Result<Params> {
        let mut p = Params::zeros(config, num_labels)?;
        let mut rng = Rng::new(seed);
        for i in 0..p.names.len() {
            let name = &p.names[i];
            let head = i == p.layout.head_w || i == p.layout.head_b;
            if head && !weights.contains(name) {
                if i == p.layout.head_w {
                    for x in &mut p.data[i] {
                        *x = rng.truncated_normal(0.02);
                    }
                }
                continue;
            }
            p.data[i].copy_from_slice(weights.get(name, &p.shapes[i])?);
        }
        Ok(p)
    }

    /// A gradient set: same names and shapes, all zeros.
    pub fn zeros_like(&self) -> Params {
        let mut g = self.clone();
        g.fill_zero();
        g
    }

    /// Sets every value to 0.
    pub fn fill_zero(&mut self) {
        for t in &mut self.data {
            t.fill(0.0);
        }
        self.word_occurrence_sq = 0.0;
    }

    /// The configuration the variables were built for.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Number of classifier labels.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no variables (never, for a valid config).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Variable names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// `(name, shape, values)` for every variable, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[usize], &[f32])> {
        self.names
            .iter()
            .zip(&self.shapes)
            .zip(&self.data)
            .map(|((n, s), d)| (n.as_str(), s.as_slice(), d.as_slice()))
    }

    /// Values of a variable by Google name.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.index.get(name).map(|&i| self.data[i].as_slice())
    }

    /// Mutable values of a variable by Google name.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut [f32]> {
        self.index.get(name).map(|&i| self.data[i].as_mut_slice())
    }

    /// Shape of a variable by Google name.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.index.get(name).map(|&i| self.shapes[i].as_slice())
    }

    /// Replaces a variable's values; the length must match its shape.
    pub fn set(&mut self, name: &str, values: &[f32]) -> Result<()> {
        let dst = self
            .get_mut(name)
            .ok_or_else(|| Error::Shape(format!("no trainable variable named {name}")))?;
        if dst.len() != values.len() {
            return Err(Error::Shape(format!(
                "{name}: {} values given, {} expected",
                values.len(),
                dst.len()
            )));
        }
        dst.copy_from_slice(values);
        Ok(())
    }

    /// `self += alpha * other` (same layout).
    pub fn add_scaled(&mut self, alpha: f32, other: &Params) {
        assert_eq!(
            self.names, other.names,
            "add_scaled: different variable sets"
        );
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += alpha * y;
            }
        }
        self.word_occurrence_sq += (alpha as f64).powi(2) * other.word_occurrence_sq;
    }

    /// Multiplies every value by `alpha`.
    pub fn scale(&mut self, alpha: f32) {
        for t in &mut self.data {
            for x in t {
                *x *= alpha;
            }
        }
        self.word_occurrence_sq *= (alpha as f64).powi(2);
    }

    /// `sqrt(Σ x²)` over all variables jointly (`tf.global_norm`), accumulated in f64.
    pub fn global_norm(&self) -> f64 {
        self.data
            .iter()
            .flatten()
            .map(|&x| x as f64 * x as f64)
            .sum::<f64>()
            .sqrt()
    }

    /// The global norm TensorFlow computes for this gradient set in `clip_by_global_norm`:
    /// like [`Params::global_norm`], except that the word-embedding gradient counts as the
    /// `IndexedSlices` of `tf.gather`, one row per token occurrence (a token id occurring
    /// twice contributes `‖a‖² + ‖b‖²`, not `‖a + b‖²`). This is the norm the reference
    /// reports and clips with.
    pub fn tf_global_norm(&self) -> f64 {
        let word = self.layout.word;
        let dense: f64 = self
            .data
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != word)
            .flat_map(|(_, t)| t.iter())
            .map(|&x| x as f64 * x as f64)
            .sum();
        (dense + self.word_occurrence_sq).sqrt()
    }
}
