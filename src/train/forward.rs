//! Training forward pass of `run_classifier.create_model` on `modeling.BertModel`, keeping
//! the activations the backward pass needs.
//!
//! Same numerics as the inference model (`src/model`): attention mask adder −10000, scores
//! scaled by `1/sqrt(head_size)`, LayerNorm ε from the config, GELU form from
//! `hidden_act`. Differences: LayerNorm is computed here (it must keep `x̂` and `1/σ`), and
//! dropout is applied when an RNG is given (hidden and attention-probability dropout from
//! the config; the head's hard-wired 0.1 dropout on the pooled output). Activations live in
//! a [`Workspace`] reused across steps; see `workspace.rs` for the packed token layout and
//! `layer.rs` for one layer.

use super::dropout::Dropout;
use super::kernels::{for_chunks, ln_row, SharedMut};
use super::layer;
use super::params::Params;
use super::rng::Rng;
use super::workspace::{sized, Workspace};
use crate::backend::{cpu, Pool};
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

/// Forward pass into `ws`; `dropout: None` is evaluation mode (no dropout anywhere). Masks
/// are drawn from the RNG in a fixed order (embeddings; per layer attention probabilities,
/// attention output, output; head) so a run is reproducible for a seed, whatever the thread
/// count.
pub(crate) fn forward(
    p: &Params,
    b: &Batch,
    mut rng: Option<&mut Rng>,
    ws: &mut Workspace,
    pool: &Pool,
) -> Result<Forward> {
    check_batch(p, b)?;
    let c = p.config();
    let lay = &p.layout;
    let d = &p.data;
    let (h, nl, bs) = (c.hidden_size, p.num_labels(), b.batch);
    let num_layers = lay.layers.len();
    ws.prepare(num_layers);
    ws.packed.build(b, c.num_attention_heads);
    let rows = ws.packed.rows;

    ws.emb_drop = Dropout::draw(&mut rng, c.hidden_dropout_prob);
    for dr in &mut ws.drops {
        dr.probs = Dropout::draw(&mut rng, c.attention_probs_dropout_prob);
        dr.attn = Dropout::draw(&mut rng, c.hidden_dropout_prob);
        dr.out = Dropout::draw(&mut rng, c.hidden_dropout_prob);
    }
    ws.head.drop = Dropout::draw(&mut rng, HEAD_DROPOUT);

    embeddings(p, b, ws, pool);
    for (l, li) in lay.layers.iter().enumerate() {
        let (done, rest) = ws.inputs.split_at_mut(l + 1);
        let first_only = l + 1 == num_layers;
        let out_rows = if first_only { bs } else { rows };
        let acts = &mut ws.layers[if ws.checkpointing { 0 } else { l }];
        layer::forward(
            p,
            li,
            &ws.packed,
            &done[l],
            first_only,
            acts,
            &ws.drops[l],
            &mut ws.scratch,
            sized(&mut rest[0], out_rows * h),
            pool,
        );
    }

    // Pooler: tanh(dense(first token)).
    let hd = &mut ws.head;
    let first = sized(&mut hd.first, bs * h);
    if num_layers > 0 {
        first.copy_from_slice(&ws.inputs[num_layers][..bs * h]);
    } else {
        for (e, span) in ws.packed.spans.iter().enumerate() {
            first[e * h..][..h].copy_from_slice(&ws.inputs[0][span.off * h..][..h]);
        }
    }
    let pooled = sized(&mut hd.pooled, bs * h);
    for r in pooled.chunks_exact_mut(h) {
        r.copy_from_slice(&d[lay.pooler_b]);
    }
    let hs = h as isize;
    cpu::sgemm(
        bs,
        h,
        h,
        1.0,
        &hd.first,
        (hs, 1),
        &d[lay.pooler_k],
        (hs, 1),
        1.0,
        pooled,
        (hs, 1),
        pool,
    );
    cpu::tanh(pooled);
    // Classifier head: dropout 0.1 (training), logits = pooled @ Wᵀ + b.
    let pooled_d = sized(&mut hd.pooled_d, bs * h);
    pooled_d.copy_from_slice(&hd.pooled[..bs * h]);
    if let Some(dr) = hd.drop {
        dr.apply(pooled_d, 0);
    }
    let mut logits = vec![0.0f32; bs * nl];
    for r in logits.chunks_exact_mut(nl) {
        r.copy_from_slice(&d[lay.head_b]);
    }
    cpu::sgemm(
        bs,
        h,
        nl,
        1.0,
        &hd.pooled_d,
        (hs, 1),
        &d[lay.head_w],
        (1, hs),
        1.0,
        &mut logits,
        (nl as isize, 1),
        pool,
    );
    // Mean softmax cross-entropy, in f64.
    let label_probs = sized(&mut hd.label_probs, bs * nl);
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
    Ok(Forward {
        loss: loss as f32,
        logits,
    })
}

/// `modeling.py: embedding_lookup` + `embedding_postprocessor`: word + token type +
/// position embeddings, LayerNorm, dropout; into `ws.inputs[0]`, keeping `x̂` and `1/σ`.
fn embeddings(p: &Params, b: &Batch, ws: &mut Workspace, pool: &Pool) {
    let c = p.config();
    let lay = &p.layout;
    let d = &p.data;
    let h = c.hidden_size;
    let pk = &ws.packed;
    let rows = pk.rows;
    let drop = ws.emb_drop;
    let (ys, xs, rs) = (
        SharedMut::new(sized(&mut ws.inputs[0], rows * h)),
        SharedMut::new(sized(&mut ws.emb_xhat, rows * h)),
        SharedMut::new(sized(&mut ws.emb_rstd, rows)),
    );
    let (gamma, beta) = (&d[lay.emb_ln_gamma], &d[lay.emb_ln_beta]);
    for_chunks(pool, rows, &|_, r0, r1| {
        // SAFETY: chunks are disjoint row ranges.
        let (y, xh, rstd) = unsafe { (ys.rows(r0, r1, h), xs.rows(r0, r1, h), rs.rows(r0, r1, 1)) };
        let mut sum = vec![0.0f32; h];
        for (i, r) in (r0..r1).enumerate() {
            let src = pk.src[r];
            let (id, tt, pos) = (
                b.input_ids[src] as usize,
                b.segment_ids[src] as usize,
                src % b.seq,
            );
            let w = &d[lay.word][id * h..][..h];
            let t = &d[lay.token_type][tt * h..][..h];
            let ps = &d[lay.position][pos * h..][..h];
            for j in 0..h {
                sum[j] = w[j] + t[j] + ps[j];
            }
            let yr = &mut y[i * h..][..h];
            rstd[i] = ln_row(
                &sum,
                gamma,
                beta,
                c.layer_norm_eps,
                yr,
                &mut xh[i * h..][..h],
            );
            if let Some(dr) = drop {
                dr.apply(yr, (r * h) as u64);
            }
        }
    });
}
