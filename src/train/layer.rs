//! One encoder layer (`modeling.py: transformer_model`, one loop iteration) for training:
//! forward into a [`LayerActs`] and backward from it.
//!
//! Forward: `q = x_q W_q + b_q`, `[k v] = x [W_k W_v] + [b_k b_v]`, attention, then
//! `h1 = LN(dropout(context W_ao + b_ao) + x_q)`, `y = LN(dropout(act(h1 W_i + b_i) W_o + b_o) + h1)`.
//! Every dense layer is one packed GEMM ([`cpu::sgemm`]); its bias, dropout, residual and
//! LayerNorm (or activation) are one fused row-parallel pass (the projections' biases are
//! written into the output before their GEMM, which adds onto them).
//!
//! Backward, for each dense layer `y = x W + b` (`W: [in, out]`): `dW += xᵀ dy` and
//! `dx = dy Wᵀ` are GEMMs on the stored operands read through strides (no transposed
//! copy), and `db` is a column sum, fused into the neighbouring pass where there is one.
//!
//! Query rows `x_q` are all rows, or (`first_only`, the last layer) each example's first
//! row: the classifier reads only position 0 of the last layer, so its other rows need keys
//! and values but no query, attention output or feed-forward block.

use super::attention::{self, Heads};
use super::kernels::{
    act_backward, act_rows, bias_act, bias_dropout_residual_ln, col_sums, fill_rows, ln_backward,
    LnOut, Partials,
};
use super::params::{Grads, LayerIdx, Params};
use super::workspace::{sized, LayerActs, LayerDrops, Packed, Scratch};
use crate::backend::{cpu, Pool};

/// `c[m, n] (beta)= a[m, k] b[k, n]` for row-major `a`, `b`, `c` with the given row strides
/// (`a_t` / `b_t`: read the operand transposed, i.e. stored `[k, m]` / `[n, k]`).
#[allow(clippy::too_many_arguments)]
fn gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (lda, a_t): (usize, bool),
    b: &[f32],
    (ldb, b_t): (usize, bool),
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    pool: &Pool,
) {
    let strides = |ld: usize, t: bool| {
        if t {
            (1, ld as isize)
        } else {
            (ld as isize, 1)
        }
    };
    cpu::sgemm(
        m,
        k,
        n,
        1.0,
        a,
        strides(lda, a_t),
        b,
        strides(ldb, b_t),
        beta,
        c,
        (ldc as isize, 1),
        pool,
    );
}

/// A dense layer's kernel gradient over `rows` rows: `gw[in, out] += xᵀ dy`, for `x` rows of
/// `in` values and `dy` rows of `out` values at the given row strides.
fn weight_grad(
    (rows, inp, out): (usize, usize, usize),
    (x, ldx): (&[f32], usize),
    (dy, ldy): (&[f32], usize),
    gw: &mut [f32],
    pool: &Pool,
) {
    gemm(
        (inp, rows, out),
        x,
        (ldx, T),
        dy,
        (ldy, N),
        1.0,
        gw,
        out,
        pool,
    );
}

/// The input gradient through a `[in, out]` kernel `w`: `dx[rows, in] (beta)= dy wᵀ`, for `dy`
/// rows of `out` values and `dx` rows at the given row strides.
fn input_grad(
    (rows, inp, out): (usize, usize, usize),
    (dy, ldy): (&[f32], usize),
    w: &[f32],
    beta: f32,
    (dx, ldx): (&mut [f32], usize),
    pool: &Pool,
) {
    gemm(
        (rows, out, inp),
        dy,
        (ldy, N),
        w,
        (out, T),
        beta,
        dx,
        ldx,
        pool,
    );
}

const N: bool = false;
const T: bool = true;

/// Layer forward from `x: [R, h]` into `a` and `y: [Rq, h]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    p: &Params,
    li: &LayerIdx,
    pk: &Packed,
    x: &[f32],
    first_only: bool,
    a: &mut LayerActs,
    d: &LayerDrops,
    s: &mut Scratch,
    y: &mut [f32],
    pool: &Pool,
) {
    let c = p.config();
    let w = &p.data;
    let (h, isz, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
    let r = pk.rows;
    let rq = if first_only { pk.spans.len() } else { r };
    if first_only {
        let xq = sized(&mut a.xq, rq * h);
        for (e, span) in pk.spans.iter().enumerate() {
            xq[e * h..][..h].copy_from_slice(&x[span.off * h..][..h]);
        }
    }
    let xq: &[f32] = if first_only { &a.xq } else { x };

    // Projections: the biases are written first and the GEMMs add onto them.
    let q = sized(&mut a.q, rq * h);
    fill_rows(pool, q, rq, &w[li.query_b]);
    gemm(
        (rq, h, h),
        xq,
        (h, N),
        &w[li.query_k],
        (h, N),
        1.0,
        q,
        h,
        pool,
    );
    let kv_bias = sized(&mut s.kv_bias, 2 * h);
    kv_bias[..h].copy_from_slice(&w[li.key_b]);
    kv_bias[h..].copy_from_slice(&w[li.value_b]);
    let kv = sized(&mut a.kv, r * 2 * h);
    fill_rows(pool, kv, r, &s.kv_bias);
    gemm(
        (r, h, h),
        x,
        (h, N),
        &w[li.key_k],
        (h, N),
        1.0,
        kv,
        2 * h,
        pool,
    );
    gemm(
        (r, h, h),
        x,
        (h, N),
        &w[li.value_k],
        (h, N),
        1.0,
        &mut kv[h..],
        2 * h,
        pool,
    );

    let heads = Heads {
        n: c.num_attention_heads,
        size: c.head_size(),
    };
    let probs_len = if first_only {
        pk.probs_len_first
    } else {
        pk.probs_len
    };
    attention::forward(
        pk,
        first_only,
        heads,
        &a.q,
        &a.kv,
        d.probs,
        sized(&mut a.probs, probs_len),
        sized(&mut a.context, rq * h),
        pool,
    );

    // Attention output: h1 = LN(dropout(context W + b) + x_q).
    let z = sized(&mut s.z, rq * h);
    gemm(
        (rq, h, h),
        &a.context,
        (h, N),
        &w[li.attn_out_k],
        (h, N),
        0.0,
        z,
        h,
        pool,
    );
    bias_dropout_residual_ln(
        pool,
        rq,
        z,
        &w[li.attn_out_b],
        d.attn,
        xq,
        (&w[li.attn_ln_gamma], &w[li.attn_ln_beta], eps),
        LnOut {
            y: sized(&mut a.h1, rq * h),
            xhat: sized(&mut a.attn_xhat, rq * h),
            rstd: sized(&mut a.attn_rstd, rq),
        },
    );

    // Feed-forward: y = LN(dropout(act(h1 W_i + b_i) W_o + b_o) + h1).
    let pre = sized(&mut a.inter_pre, rq * isz);
    gemm(
        (rq, h, isz),
        &a.h1,
        (h, N),
        &w[li.inter_k],
        (isz, N),
        0.0,
        pre,
        isz,
        pool,
    );
    let inter = sized(&mut s.inter, rq * isz);
    bias_act(pool, rq, pre, &w[li.inter_b], c.hidden_act, inter);
    let z = sized(&mut s.z, rq * h);
    gemm(
        (rq, isz, h),
        &s.inter,
        (isz, N),
        &w[li.out_k],
        (h, N),
        0.0,
        z,
        h,
        pool,
    );
    bias_dropout_residual_ln(
        pool,
        rq,
        z,
        &w[li.out_b],
        d.out,
        &a.h1,
        (&w[li.out_ln_gamma], &w[li.out_ln_beta], eps),
        LnOut {
            y: &mut y[..rq * h],
            xhat: sized(&mut a.out_xhat, rq * h),
            rstd: sized(&mut a.out_rstd, rq),
        },
    );
}

/// Layer backward: adds the layer's parameter gradients into `g` and writes
/// `dx: [R, h]` (`∂loss/∂x`) from `dy: [Rq, h]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    p: &Params,
    li: &LayerIdx,
    pk: &Packed,
    x: &[f32],
    first_only: bool,
    a: &LayerActs,
    d: &LayerDrops,
    dy: &[f32],
    g: &mut Grads,
    s: &mut Scratch,
    dx: &mut [f32],
    pool: &Pool,
) {
    let c = p.config();
    let w = &p.data;
    let (h, isz) = (c.hidden_size, c.intermediate_size);
    let r = pk.rows;
    let rq = if first_only { pk.spans.len() } else { r };

    // Output block: y = LN(dropout(z) + h1), z = inter W_o + b_o.
    let parts = Partials::new(&mut s.partials, rq, h, 3);
    ln_backward(
        pool,
        rq,
        dy,
        (&a.out_xhat, &a.out_rstd, &w[li.out_ln_gamma]),
        None,
        d.out,
        sized(&mut s.dh1, rq * h),
        Some(sized(&mut s.z, rq * h)),
        &parts,
    );
    parts.add_into(0, &mut g.data[li.out_ln_gamma]);
    parts.add_into(1, &mut g.data[li.out_ln_beta]);
    parts.add_into(2, &mut g.data[li.out_b]);
    let inter = sized(&mut s.inter, rq * isz);
    act_rows(pool, rq, isz, &a.inter_pre, c.hidden_act, inter);
    weight_grad(
        (rq, isz, h),
        (&s.inter, isz),
        (&s.z, h),
        &mut g.data[li.out_k],
        pool,
    );
    let dinter = sized(&mut s.dinter, rq * isz);
    input_grad(
        (rq, isz, h),
        (&s.z, h),
        &w[li.out_k],
        0.0,
        (dinter, isz),
        pool,
    );

    // Activation and intermediate dense.
    let parts = Partials::new(&mut s.partials, rq, isz, 1);
    act_backward(pool, rq, &a.inter_pre, dinter, c.hidden_act, &parts);
    parts.add_into(0, &mut g.data[li.inter_b]);
    weight_grad(
        (rq, h, isz),
        (&a.h1, h),
        (&s.dinter, isz),
        &mut g.data[li.inter_k],
        pool,
    );
    input_grad(
        (rq, h, isz),
        (&s.dinter, isz),
        &w[li.inter_k],
        1.0,
        (&mut s.dh1, h),
        pool,
    );

    // Attention output block: h1 = LN(dropout(z) + x_q), z = context W_ao + b_ao. The
    // residual's gradient goes straight into dx (all rows are queries) or into dxq.
    let parts = Partials::new(&mut s.partials, rq, h, 3);
    let dres: &mut [f32] = if first_only {
        sized(&mut s.dxq, rq * h)
    } else {
        &mut dx[..r * h]
    };
    ln_backward(
        pool,
        rq,
        &s.dh1,
        (&a.attn_xhat, &a.attn_rstd, &w[li.attn_ln_gamma]),
        None,
        d.attn,
        dres,
        Some(&mut s.z[..rq * h]),
        &parts,
    );
    parts.add_into(0, &mut g.data[li.attn_ln_gamma]);
    parts.add_into(1, &mut g.data[li.attn_ln_beta]);
    parts.add_into(2, &mut g.data[li.attn_out_b]);
    weight_grad(
        (rq, h, h),
        (&a.context, h),
        (&s.z, h),
        &mut g.data[li.attn_out_k],
        pool,
    );
    let dctx = sized(&mut s.dctx, rq * h);
    input_grad(
        (rq, h, h),
        (&s.z, h),
        &w[li.attn_out_k],
        0.0,
        (dctx, h),
        pool,
    );

    // Self-attention.
    let heads = Heads {
        n: c.num_attention_heads,
        size: c.head_size(),
    };
    attention::backward(
        pk,
        first_only,
        heads,
        (&a.q, &a.kv, &a.probs),
        d.probs,
        &s.dctx,
        sized(&mut s.dq, rq * h),
        sized(&mut s.dkv, r * 2 * h),
        pool,
    );

    // Projections: biases, kernels, then dx = dq W_qᵀ + dk W_kᵀ + dv W_vᵀ (+ the residual).
    let parts = Partials::new(&mut s.partials, rq, h, 1);
    col_sums(pool, rq, &s.dq, (h, 0), &parts, 0);
    parts.add_into(0, &mut g.data[li.query_b]);
    let parts = Partials::new(&mut s.partials, r, h, 2);
    col_sums(pool, r, &s.dkv, (2 * h, 0), &parts, 0);
    col_sums(pool, r, &s.dkv, (2 * h, h), &parts, 1);
    parts.add_into(0, &mut g.data[li.key_b]);
    parts.add_into(1, &mut g.data[li.value_b]);
    let xq: &[f32] = if first_only { &a.xq } else { x };
    weight_grad(
        (rq, h, h),
        (xq, h),
        (&s.dq, h),
        &mut g.data[li.query_k],
        pool,
    );
    weight_grad(
        (r, h, h),
        (x, h),
        (&s.dkv, 2 * h),
        &mut g.data[li.key_k],
        pool,
    );
    weight_grad(
        (r, h, h),
        (x, h),
        (&s.dkv[h..], 2 * h),
        &mut g.data[li.value_k],
        pool,
    );
    let beta = if first_only { 0.0 } else { 1.0 };
    input_grad(
        (r, h, h),
        (&s.dkv, 2 * h),
        &w[li.key_k],
        beta,
        (dx, h),
        pool,
    );
    input_grad(
        (r, h, h),
        (&s.dkv[h..], 2 * h),
        &w[li.value_k],
        1.0,
        (dx, h),
        pool,
    );
    if first_only {
        input_grad(
            (rq, h, h),
            (&s.dq, h),
            &w[li.query_k],
            1.0,
            (&mut s.dxq, h),
            pool,
        );
        for (e, span) in pk.spans.iter().enumerate() {
            let row = &mut dx[span.off * h..][..h];
            for (v, add) in row.iter_mut().zip(&s.dxq[e * h..][..h]) {
                *v += add;
            }
        }
    } else {
        input_grad((r, h, h), (&s.dq, h), &w[li.query_k], 1.0, (dx, h), pool);
    }
}
