//! Training forward pass of `run_classifier.create_model` on `modeling.BertModel`, keeping
//! the activations the backward pass needs.
//!
//! Same numerics as the inference model (`src/model`): attention mask adder −10000, scores
//! scaled by `1/sqrt(head_size)`, LayerNorm ε from the config, GELU form from
//! `hidden_act`. Differences: LayerNorm is computed here (it must keep `x̂` and `1/σ`), and
//! dropout is applied when an RNG is given (hidden and attention-probability dropout from
//! the config; the head's hard-wired 0.1 dropout on the pooled output).

use super::params::Params;
use super::rng::Rng;
use crate::backend::{cpu, Pool};
use crate::config::Activation;
use crate::{Error, Result};

/// Google's additive attention mask for padded keys (`modeling.py`: `-10000.0`).
pub const MASK_ADDER: f32 = -10000.0;

/// `run_classifier.create_model`: dropout on the pooled output is hard-wired to 0.1.
pub const HEAD_DROPOUT: f32 = 0.1;

/// One batch of classification examples, row-major `[batch, seq]` inputs.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub input_ids: &'a [u32],
    pub segment_ids: &'a [u32],
    pub input_mask: &'a [u32],
    /// `[batch]` label ids in `0..num_labels`.
    pub labels: &'a [u32],
    pub batch: usize,
    pub seq: usize,
}

/// Result of a forward pass.
#[derive(Debug, Clone)]
pub struct Forward {
    /// `mean(−log_softmax(logits)[label])` over the batch.
    pub loss: f32,
    /// `[batch, num_labels]`
    pub logits: Vec<f32>,
}

/// LayerNorm activations: `x̂ = (x − μ)/σ` per row and `1/σ`.
pub(crate) struct LnCache {
    pub xhat: Vec<f32>,
    pub rstd: Vec<f32>,
}

pub(crate) struct LayerCache {
    pub input: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// softmax output `[batch, heads, seq, seq]` before dropout.
    pub probs: Vec<f32>,
    pub probs_drop: Option<Vec<f32>>,
    pub context: Vec<f32>,
    pub attn_drop: Option<Vec<f32>>,
    pub attn_ln: LnCache,
    /// attention block output `[rows, hidden]`.
    pub h1: Vec<f32>,
    pub inter_pre: Vec<f32>,
    pub inter: Vec<f32>,
    pub out_drop: Option<Vec<f32>>,
    pub out_ln: LnCache,
}

pub(crate) struct Cache {
    pub emb_ln: LnCache,
    pub emb_drop: Option<Vec<f32>>,
    pub layers: Vec<LayerCache>,
    /// `[batch, hidden]` first-token hidden states of the last layer.
    pub first: Vec<f32>,
    /// `[batch, hidden]` tanh output of the pooler.
    pub pooled: Vec<f32>,
    pub head_drop: Option<Vec<f32>>,
    /// `[batch, hidden]` pooled output after the head's dropout.
    pub pooled_d: Vec<f32>,
    /// `[batch, num_labels]` softmax of the logits.
    pub label_probs: Vec<f32>,
}

/// `y[rows, out] = x[rows, in] @ w[in, out] + b` (TF kernels are `[in, out]`).
pub(crate) fn dense(
    x: &[f32],
    rows: usize,
    w: &[f32],
    b: &[f32],
    (din, dout): (usize, usize),
    pool: &Pool,
) -> Vec<f32> {
    let mut y = vec![0.0; rows * dout];
    for r in y.chunks_exact_mut(dout) {
        r.copy_from_slice(b);
    }
    cpu::sgemm(
        rows,
        din,
        dout,
        1.0,
        x,
        (din as isize, 1),
        w,
        (dout as isize, 1),
        1.0,
        &mut y,
        (dout as isize, 1),
        pool,
    );
    y
}

/// LayerNorm over rows of `width` (`tf.contrib.layers.layer_norm`: biased variance, ε
/// inside the square root); returns the output and the cache. Moments in f64.
pub(crate) fn layer_norm(
    x: &[f32],
    width: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> (Vec<f32>, LnCache) {
    let rows = x.len() / width;
    let mut y = vec![0.0; x.len()];
    let mut xhat = vec![0.0; x.len()];
    let mut rstd = vec![0.0; rows];
    for r in 0..rows {
        let row = &x[r * width..][..width];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / width as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / width as f64;
        let rs = 1.0 / (var + eps as f64).sqrt();
        rstd[r] = rs as f32;
        for j in 0..width {
            let xh = ((row[j] as f64 - mean) * rs) as f32;
            xhat[r * width + j] = xh;
            y[r * width + j] = xh * gamma[j] + beta[j];
        }
    }
    (y, LnCache { xhat, rstd })
}

/// Applies `hidden_act` in place (the same kernels as inference).
pub(crate) fn activate(act: Activation, x: &mut [f32]) {
    match act {
        Activation::GeluTanh => cpu::gelu_tanh(x),
        Activation::GeluErf => cpu::gelu_erf(x),
        Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
}

fn dropout(x: &mut [f32], rate: f32, rng: &mut Option<&mut Rng>) -> Option<Vec<f32>> {
    let rng = rng.as_deref_mut()?;
    if rate <= 0.0 {
        return None;
    }
    let mask = rng.dropout_mask(x.len(), rate);
    for (v, m) in x.iter_mut().zip(&mask) {
        *v *= m;
    }
    Some(mask)
}

pub(crate) fn check_batch(p: &Params, b: &Batch) -> Result<()> {
    let c = p.config();
    let n = b.batch * b.seq;
    let bad = |m: String| Err(Error::InvalidArgument(m));
    if b.batch == 0 || b.seq == 0 {
        return bad("empty batch".into());
    }
    if b.input_ids.len() != n || b.segment_ids.len() != n || b.input_mask.len() != n {
        return bad(format!("inputs must hold batch*seq = {n} ids"));
    }
    if b.labels.len() != b.batch {
        return bad(format!(
            "{} labels for a batch of {}",
            b.labels.len(),
            b.batch
        ));
    }
    if b.seq > c.max_position_embeddings {
        return bad(format!(
            "seq {} > max_position_embeddings {}",
            b.seq, c.max_position_embeddings
        ));
    }
    if let Some(id) = b.input_ids.iter().find(|&&i| i as usize >= c.vocab_size) {
        return bad(format!("token id {id} >= vocab_size {}", c.vocab_size));
    }
    if let Some(s) = b
        .segment_ids
        .iter()
        .find(|&&i| i as usize >= c.type_vocab_size)
    {
        return bad(format!(
            "segment id {s} >= type_vocab_size {}",
            c.type_vocab_size
        ));
    }
    if let Some(l) = b.labels.iter().find(|&&l| l as usize >= p.num_labels()) {
        return bad(format!("label {l} >= num_labels {}", p.num_labels()));
    }
    Ok(())
}

/// Forward pass; `dropout: None` is evaluation mode (no dropout anywhere).
pub(crate) fn forward(
    p: &Params,
    b: &Batch,
    mut rng: Option<&mut Rng>,
    pool: &Pool,
) -> Result<(Forward, Cache)> {
    check_batch(p, b)?;
    let c = p.config().clone();
    let lay = &p.layout;
    let d = &p.data;
    let (h, inter_size) = (c.hidden_size, c.intermediate_size);
    let (nh, hd) = (c.num_attention_heads, c.head_size());
    let (bs, seq) = (b.batch, b.seq);
    let rows = bs * seq;
    let eps = c.layer_norm_eps;

    // Embeddings: word + token type + position, LayerNorm, dropout.
    let mut emb = vec![0.0f32; rows * h];
    for r in 0..rows {
        let (id, tt, pos) = (b.input_ids[r] as usize, b.segment_ids[r] as usize, r % seq);
        let w = &d[lay.word][id * h..][..h];
        let t = &d[lay.token_type][tt * h..][..h];
        let ps = &d[lay.position][pos * h..][..h];
        for j in 0..h {
            emb[r * h + j] = w[j] + t[j] + ps[j];
        }
    }
    let (mut x, emb_ln) = layer_norm(&emb, h, &d[lay.emb_ln_gamma], &d[lay.emb_ln_beta], eps);
    let emb_drop = dropout(&mut x, c.hidden_dropout_prob, &mut rng);

    let mask_bias: Vec<f32> = b
        .input_mask
        .iter()
        .map(|&m| if m != 0 { 0.0 } else { MASK_ADDER })
        .collect();
    let scale = 1.0 / (hd as f32).sqrt();
    let hs = h as isize;
    let mut layers = Vec::with_capacity(lay.layers.len());
    for li in &lay.layers {
        let q = dense(&x, rows, &d[li.query_k], &d[li.query_b], (h, h), pool);
        let k = dense(&x, rows, &d[li.key_k], &d[li.key_b], (h, h), pool);
        let v = dense(&x, rows, &d[li.value_k], &d[li.value_b], (h, h), pool);
        let mut probs = vec![0.0f32; bs * nh * seq * seq];
        for bi in 0..bs {
            let bias = &mask_bias[bi * seq..][..seq];
            for head in 0..nh {
                let off = bi * seq * h + head * hd;
                let sc = &mut probs[(bi * nh + head) * seq * seq..][..seq * seq];
                for row in sc.chunks_exact_mut(seq) {
                    row.copy_from_slice(bias);
                }
                // scores = q_h k_hᵀ / sqrt(d) + mask adder
                cpu::sgemm(
                    seq,
                    hd,
                    seq,
                    scale,
                    &q[off..],
                    (hs, 1),
                    &k[off..],
                    (1, hs),
                    1.0,
                    sc,
                    (seq as isize, 1),
                    pool,
                );
                cpu::softmax_rows(sc, seq);
            }
        }
        let mut probs_used = probs.clone();
        let probs_drop = dropout(&mut probs_used, c.attention_probs_dropout_prob, &mut rng);
        let mut context = vec![0.0f32; rows * h];
        for bi in 0..bs {
            for head in 0..nh {
                let off = bi * seq * h + head * hd;
                cpu::sgemm(
                    seq,
                    seq,
                    hd,
                    1.0,
                    &probs_used[(bi * nh + head) * seq * seq..],
                    (seq as isize, 1),
                    &v[off..],
                    (hs, 1),
                    0.0,
                    &mut context[off..],
                    (hs, 1),
                    pool,
                );
            }
        }
        let mut a = dense(
            &context,
            rows,
            &d[li.attn_out_k],
            &d[li.attn_out_b],
            (h, h),
            pool,
        );
        let attn_drop = dropout(&mut a, c.hidden_dropout_prob, &mut rng);
        cpu::add_assign(&mut a, &x);
        let (h1, attn_ln) = layer_norm(&a, h, &d[li.attn_ln_gamma], &d[li.attn_ln_beta], eps);
        let inter_pre = dense(
            &h1,
            rows,
            &d[li.inter_k],
            &d[li.inter_b],
            (h, inter_size),
            pool,
        );
        let mut inter = inter_pre.clone();
        activate(c.hidden_act, &mut inter);
        let mut o = dense(
            &inter,
            rows,
            &d[li.out_k],
            &d[li.out_b],
            (inter_size, h),
            pool,
        );
        let out_drop = dropout(&mut o, c.hidden_dropout_prob, &mut rng);
        cpu::add_assign(&mut o, &h1);
        let (y, out_ln) = layer_norm(&o, h, &d[li.out_ln_gamma], &d[li.out_ln_beta], eps);
        layers.push(LayerCache {
            input: std::mem::replace(&mut x, y),
            q,
            k,
            v,
            probs,
            probs_drop,
            context,
            attn_drop,
            attn_ln,
            h1,
            inter_pre,
            inter,
            out_drop,
            out_ln,
        });
    }

    // Pooler: tanh(dense(first token)).
    let mut first = vec![0.0f32; bs * h];
    for bi in 0..bs {
        first[bi * h..][..h].copy_from_slice(&x[bi * seq * h..][..h]);
    }
    let mut pooled = dense(&first, bs, &d[lay.pooler_k], &d[lay.pooler_b], (h, h), pool);
    cpu::tanh(&mut pooled);
    // Classifier head: dropout 0.1 (training), logits = pooled @ Wᵀ + b.
    let mut pooled_d = pooled.clone();
    let head_drop = dropout(&mut pooled_d, HEAD_DROPOUT, &mut rng);
    let nl = p.num_labels();
    let mut logits = vec![0.0f32; bs * nl];
    for r in logits.chunks_exact_mut(nl) {
        r.copy_from_slice(&d[lay.head_b]);
    }
    cpu::sgemm(
        bs,
        h,
        nl,
        1.0,
        &pooled_d,
        (hs, 1),
        &d[lay.head_w],
        (1, hs),
        1.0,
        &mut logits,
        (nl as isize, 1),
        pool,
    );
    // Mean softmax cross-entropy, in f64.
    let mut label_probs = vec![0.0f32; bs * nl];
    let mut loss = 0.0f64;
    for bi in 0..bs {
        let row = &logits[bi * nl..][..nl];
        let mx = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) as f64;
        let z: f64 = row.iter().map(|&v| (v as f64 - mx).exp()).sum();
        for j in 0..nl {
            label_probs[bi * nl + j] = ((row[j] as f64 - mx).exp() / z) as f32;
        }
        loss -= row[b.labels[bi] as usize] as f64 - mx - z.ln();
    }
    loss /= bs as f64;
    Ok((
        Forward {
            loss: loss as f32,
            logits,
        },
        Cache {
            emb_ln,
            emb_drop,
            layers,
            first,
            pooled,
            head_drop,
            pooled_d,
            label_probs,
        },
    ))
}
