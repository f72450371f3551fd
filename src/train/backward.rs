//! Backward pass of [`super::forward`]: gradients of the mean cross-entropy loss with
//! respect to every trainable variable, added (times a scale) into a [`Grads`] set.
//!
//! Pieces, in reverse order of the forward pass: softmax cross-entropy, classifier head
//! (with its dropout), pooler (tanh), per layer the output block (LayerNorm, residual,
//! dropout, dense), GELU, intermediate dense, attention output block, self-attention
//! (softmax backward, attention-probability dropout, per-head matmuls), and the embeddings
//! (LayerNorm, then scatter-add into the word / position / token-type tables).

use super::forward::{Batch, Cache, LnCache};
use super::params::{Grads, Params};
use crate::backend::{cpu, Pool};
use crate::config::Activation;

/// Gradient of `y = x @ w + b` (`w: [din, dout]`): `dw += xᵀ dy`, `db += Σ_rows dy`, and
/// `dx = dy wᵀ` (overwritten when `dx_beta == 0`, added when it is 1).
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense_backward(
    x: &[f32],
    dy: &[f32],
    rows: usize,
    w: &[f32],
    (din, dout): (usize, usize),
    g: &mut Grads,
    (iw, ib): (usize, usize),
    dx: Option<(&mut [f32], f32)>,
    pool: &Pool,
) {
    cpu::sgemm(
        din,
        rows,
        dout,
        1.0,
        x,
        (1, din as isize),
        dy,
        (dout as isize, 1),
        1.0,
        &mut g.data[iw],
        (dout as isize, 1),
        pool,
    );
    let db = &mut g.data[ib];
    for r in dy.chunks_exact(dout) {
        for (a, v) in db.iter_mut().zip(r) {
            *a += v;
        }
    }
    if let Some((dx, beta)) = dx {
        cpu::sgemm(
            rows,
            dout,
            din,
            1.0,
            dy,
            (dout as isize, 1),
            w,
            (1, dout as isize),
            beta,
            dx,
            (din as isize, 1),
            pool,
        );
    }
}

/// LayerNorm backward: `dγ += Σ dy·x̂`, `dβ += Σ dy`, and returns
/// `dx = (1/σ)(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))` with `dx̂ = dy·γ`.
pub(crate) fn layer_norm_backward(
    dy: &[f32],
    ln: &LnCache,
    gamma: &[f32],
    g: &mut Grads,
    (igamma, ibeta): (usize, usize),
) -> Vec<f32> {
    let width = gamma.len();
    let mut dx = vec![0.0f32; dy.len()];
    for (r, &rs) in ln.rstd.iter().enumerate() {
        let dyr = &dy[r * width..][..width];
        let xh = &ln.xhat[r * width..][..width];
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for j in 0..width {
            let dxh = (dyr[j] * gamma[j]) as f64;
            s1 += dxh;
            s2 += dxh * xh[j] as f64;
        }
        let (m1, m2) = (s1 / width as f64, s2 / width as f64);
        for j in 0..width {
            let dxh = (dyr[j] * gamma[j]) as f64;
            dx[r * width + j] = (rs as f64 * (dxh - m1 - xh[j] as f64 * m2)) as f32;
        }
        let dg = &mut g.data[igamma][..width];
        for j in 0..width {
            dg[j] += dyr[j] * xh[j];
        }
        let dbt = &mut g.data[ibeta][..width];
        for j in 0..width {
            dbt[j] += dyr[j];
        }
    }
    dx
}

/// Derivative of `hidden_act` at `x`.
pub(crate) fn activation_grad(act: Activation, x: f32) -> f32 {
    match act {
        Activation::GeluTanh => {
            // g = 0.5 x (1 + tanh(u)), u = c (x + 0.044715 x³)
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let x = x as f64;
            let u = c * (x + 0.044715 * x * x * x);
            let t = u.tanh();
            (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x)) as f32
        }
        Activation::GeluErf => {
            // g = x Φ(x): g' = Φ(x) + x φ(x)
            let x = x as f64;
            let cdf = 0.5 * (1.0 + cpu::erf(x / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (cdf + x * pdf) as f32
        }
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// Softmax backward over rows: `dz = p ⊙ (dp − Σ_j dp_j p_j)`, in place on `dp`.
pub(crate) fn softmax_backward(p: &[f32], dp: &mut [f32], width: usize) {
    for (pr, dr) in p.chunks_exact(width).zip(dp.chunks_exact_mut(width)) {
        let dot: f64 = pr
            .iter()
            .zip(dr.iter())
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        for (d, &pv) in dr.iter_mut().zip(pr) {
            *d = pv * (*d - dot as f32);
        }
    }
}

fn mul_mask(x: &mut [f32], mask: &Option<Vec<f32>>) {
    if let Some(m) = mask {
        for (v, f) in x.iter_mut().zip(m) {
            *v *= f;
        }
    }
}

/// Adds `scale · ∂loss/∂θ` into `g` for every variable.
pub(crate) fn backward(
    p: &Params,
    b: &Batch,
    cache: &Cache,
    g: &mut Grads,
    scale: f32,
    pool: &Pool,
) {
    let c = p.config();
    let lay = &p.layout;
    let d = &p.data;
    let (h, isz) = (c.hidden_size, c.intermediate_size);
    let (nh, hd) = (c.num_attention_heads, c.head_size());
    let (bs, seq) = (b.batch, b.seq);
    let rows = bs * seq;
    let nl = p.num_labels();
    let hs = h as isize;

    // Mean softmax cross-entropy: dlogits = (softmax − onehot) / batch.
    let mut dlogits = cache.label_probs.clone();
    for bi in 0..bs {
        dlogits[bi * nl + b.labels[bi] as usize] -= 1.0;
    }
    let k = scale / bs as f32;
    dlogits.iter_mut().for_each(|v| *v *= k);

    // Head: logits = pooled_d Wᵀ + b, W: [nl, h].
    cpu::sgemm(
        nl,
        bs,
        h,
        1.0,
        &dlogits,
        (1, nl as isize),
        &cache.pooled_d,
        (hs, 1),
        1.0,
        &mut g.data[lay.head_w],
        (hs, 1),
        pool,
    );
    for r in dlogits.chunks_exact(nl) {
        for (a, v) in g.data[lay.head_b].iter_mut().zip(r) {
            *a += v;
        }
    }
    let mut dpooled = vec![0.0f32; bs * h];
    cpu::sgemm(
        bs,
        nl,
        h,
        1.0,
        &dlogits,
        (nl as isize, 1),
        &d[lay.head_w],
        (hs, 1),
        0.0,
        &mut dpooled,
        (hs, 1),
        pool,
    );
    mul_mask(&mut dpooled, &cache.head_drop);
    // Pooler: tanh' = 1 − y².
    for (dv, &y) in dpooled.iter_mut().zip(&cache.pooled) {
        *dv *= 1.0 - y * y;
    }
    let mut dfirst = vec![0.0f32; bs * h];
    dense_backward(
        &cache.first,
        &dpooled,
        bs,
        &d[lay.pooler_k],
        (h, h),
        g,
        (lay.pooler_k, lay.pooler_b),
        Some((&mut dfirst, 0.0)),
        pool,
    );
    let mut dx = vec![0.0f32; rows * h];
    for bi in 0..bs {
        dx[bi * seq * h..][..h].copy_from_slice(&dfirst[bi * h..][..h]);
    }

    let scale_att = 1.0 / (hd as f32).sqrt();
    for (li, lc) in lay.layers.iter().zip(&cache.layers).rev() {
        // Output block: y = LN(dropout(inter W + b) + h1).
        let dsum = layer_norm_backward(
            &dx,
            &lc.out_ln,
            &d[li.out_ln_gamma],
            g,
            (li.out_ln_gamma, li.out_ln_beta),
        );
        let mut dh1 = dsum.clone();
        let mut dout = dsum;
        mul_mask(&mut dout, &lc.out_drop);
        let mut dinter = vec![0.0f32; rows * isz];
        dense_backward(
            &lc.inter,
            &dout,
            rows,
            &d[li.out_k],
            (isz, h),
            g,
            (li.out_k, li.out_b),
            Some((&mut dinter, 0.0)),
            pool,
        );
        for (dv, &xv) in dinter.iter_mut().zip(&lc.inter_pre) {
            *dv *= activation_grad(c.hidden_act, xv);
        }
        dense_backward(
            &lc.h1,
            &dinter,
            rows,
            &d[li.inter_k],
            (h, isz),
            g,
            (li.inter_k, li.inter_b),
            Some((&mut dh1, 1.0)),
            pool,
        );
        // Attention output block: h1 = LN(dropout(context W + b) + input).
        let dsum = layer_norm_backward(
            &dh1,
            &lc.attn_ln,
            &d[li.attn_ln_gamma],
            g,
            (li.attn_ln_gamma, li.attn_ln_beta),
        );
        let mut dinput = dsum.clone();
        let mut da = dsum;
        mul_mask(&mut da, &lc.attn_drop);
        let mut dctx = vec![0.0f32; rows * h];
        dense_backward(
            &lc.context,
            &da,
            rows,
            &d[li.attn_out_k],
            (h, h),
            g,
            (li.attn_out_k, li.attn_out_b),
            Some((&mut dctx, 0.0)),
            pool,
        );
        // Self-attention, per example and head.
        let mut probs_used = lc.probs.clone();
        mul_mask(&mut probs_used, &lc.probs_drop);
        let mut dprobs = vec![0.0f32; lc.probs.len()];
        let (mut dq, mut dk, mut dv) = (
            vec![0.0f32; rows * h],
            vec![0.0f32; rows * h],
            vec![0.0f32; rows * h],
        );
        for bi in 0..bs {
            for head in 0..nh {
                let off = bi * seq * h + head * hd;
                let po = (bi * nh + head) * seq * seq;
                // dprobs = dctx_h v_hᵀ: [seq, d] x [d, seq]
                cpu::sgemm(
                    seq,
                    hd,
                    seq,
                    1.0,
                    &dctx[off..],
                    (hs, 1),
                    &lc.v[off..],
                    (1, hs),
                    0.0,
                    &mut dprobs[po..],
                    (seq as isize, 1),
                    pool,
                );
                // dv_h = probs_usedᵀ dctx_h: [seq, seq] x [seq, d]
                cpu::sgemm(
                    seq,
                    seq,
                    hd,
                    1.0,
                    &probs_used[po..],
                    (1, seq as isize),
                    &dctx[off..],
                    (hs, 1),
                    0.0,
                    &mut dv[off..],
                    (hs, 1),
                    pool,
                );
            }
        }
        mul_mask(&mut dprobs, &lc.probs_drop);
        softmax_backward(&lc.probs, &mut dprobs, seq);
        for bi in 0..bs {
            for head in 0..nh {
                let off = bi * seq * h + head * hd;
                let po = (bi * nh + head) * seq * seq;
                // scores = s q_h k_hᵀ: dq_h = s dS k_h, dk_h = s dSᵀ q_h
                cpu::sgemm(
                    seq,
                    seq,
                    hd,
                    scale_att,
                    &dprobs[po..],
                    (seq as isize, 1),
                    &lc.k[off..],
                    (hs, 1),
                    0.0,
                    &mut dq[off..],
                    (hs, 1),
                    pool,
                );
                cpu::sgemm(
                    seq,
                    seq,
                    hd,
                    scale_att,
                    &dprobs[po..],
                    (1, seq as isize),
                    &lc.q[off..],
                    (hs, 1),
                    0.0,
                    &mut dk[off..],
                    (hs, 1),
                    pool,
                );
            }
        }
        for (dy, iw, ib) in [
            (&dq, li.query_k, li.query_b),
            (&dk, li.key_k, li.key_b),
            (&dv, li.value_k, li.value_b),
        ] {
            dense_backward(
                &lc.input,
                dy,
                rows,
                &d[iw],
                (h, h),
                g,
                (iw, ib),
                Some((&mut dinput, 1.0)),
                pool,
            );
        }
        dx = dinput;
    }

    // Embeddings: dropout, LayerNorm, then scatter-add into the three tables.
    mul_mask(&mut dx, &cache.emb_drop);
    let demb = layer_norm_backward(
        &dx,
        &cache.emb_ln,
        &d[lay.emb_ln_gamma],
        g,
        (lay.emb_ln_gamma, lay.emb_ln_beta),
    );
    for r in 0..rows {
        let src = &demb[r * h..][..h];
        g.word_occurrence_sq += src.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        let targets = [
            (lay.word, b.input_ids[r] as usize),
            (lay.token_type, b.segment_ids[r] as usize),
            (lay.position, r % seq),
        ];
        for (t, row) in targets {
            for (a, v) in g.data[t][row * h..][..h].iter_mut().zip(src) {
                *a += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences in f64 (step 1e-4, error O(1e-8)); the derivatives are computed in
    /// f64 and rounded to f32, so 1e-6 absolute is tight.
    #[test]
    fn activation_derivatives_match_finite_differences() {
        let gelu_tanh = |x: f64| {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        };
        let gelu_erf = |x: f64| 0.5 * x * (1.0 + cpu::erf(x / std::f64::consts::SQRT_2));
        let e = 1e-4;
        for i in -60..=60 {
            let x = i as f64 / 10.0 + 0.013;
            for (act, f) in [
                (Activation::GeluTanh, &gelu_tanh as &dyn Fn(f64) -> f64),
                (Activation::GeluErf, &gelu_erf),
            ] {
                let fd = (f(x + e) - f(x - e)) / (2.0 * e);
                let an = activation_grad(act, x as f32) as f64;
                assert!((fd - an).abs() < 1e-6, "{act:?} at {x}: {an} vs {fd}");
            }
        }
    }

    /// Softmax backward against central differences of `Σ w·softmax(z)` in f64.
    #[test]
    fn softmax_backward_matches_finite_differences() {
        let z = [0.3f64, -1.2, 2.0, 0.7, -0.1];
        let w = [0.5f64, -2.0, 1.0, 3.0, -0.7];
        let sm = |z: &[f64]| {
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
            z.iter().map(|v| (v - m).exp() / s).collect::<Vec<_>>()
        };
        let f = |z: &[f64]| sm(z).iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        let p: Vec<f32> = sm(&z).iter().map(|&v| v as f32).collect();
        let mut dp: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        softmax_backward(&p, &mut dp, 5);
        for i in 0..5 {
            let (mut a, mut b) = (z, z);
            a[i] += 1e-5;
            b[i] -= 1e-5;
            let fd = (f(&a) - f(&b)) / 2e-5;
            assert!((fd - dp[i] as f64).abs() < 1e-6, "{i}: {} vs {fd}", dp[i]);
        }
    }
}
