//! Self-attention of `modeling.py: attention_layer` for training: forward keeping the
//! softmax outputs, and its backward pass.
//!
//! Per example and head: `P = softmax(q kᵀ / sqrt(d) + mask)`, `context = dropout(P) v`.
//! Backward: `dP = dcontext vᵀ` (through the dropout mask), `dv = dropout(P)ᵀ dcontext`,
//! `dS = P ⊙ (dP − rowsum(dP ⊙ P))`, `dq = dS k / sqrt(d)`, `dk = dSᵀ q / sqrt(d)`.
//!
//! One pool task per example (its rows of every output are its own), each running its heads'
//! small GEMMs on one thread. Queries are all of an example's rows, or only its first row
//! in the last layer (`first_only`), where nothing but position 0 reaches the classifier.

use std::cell::RefCell;

use super::dropout::Dropout;
use super::kernels::{softmax_backward, SharedMut};
use super::workspace::Packed;
use crate::backend::{cpu, Pool};

thread_local! {
    /// Per-thread `[Rq_e, R_e]` tiles: probabilities after dropout, their gradient.
    static TILES: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Rows of example `e`: (first query row, query rows, first key row, key rows, offset of
/// its probabilities).
fn geometry(pk: &Packed, first_only: bool, e: usize) -> (usize, usize, usize, usize, usize) {
    let s = pk.spans[e];
    if first_only {
        (e, 1, s.off, s.len, pk.probs_off_first[e])
    } else {
        (s.off, s.len, s.off, s.len, pk.probs_off[e])
    }
}

/// Heads and their width.
#[derive(Clone, Copy)]
pub(crate) struct Heads {
    pub n: usize,
    pub size: usize,
}

/// `q: [Rq, h]`, `kv: [R, 2h]` (keys then values) -> `probs` (before dropout, per example
/// `[heads, Rq_e, R_e]`) and `context: [Rq, h]`. Dropout element `i` of the probabilities
/// is their index in `probs`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    pk: &Packed,
    first_only: bool,
    heads: Heads,
    q: &[f32],
    kv: &[f32],
    drop: Option<Dropout>,
    probs: &mut [f32],
    context: &mut [f32],
    pool: &Pool,
) {
    let (nh, d) = (heads.n, heads.size);
    let h = nh * d;
    let scale = 1.0 / (d as f32).sqrt();
    let (ps, cs) = (SharedMut::new(probs), SharedMut::new(context));
    pool.run(pk.spans.len(), &|e| {
        let (qo, ql, ko, kl, po) = geometry(pk, first_only, e);
        // SAFETY: an example's probabilities and context rows belong to its task alone.
        let (pr, ctx) = unsafe { (ps.part(po, nh * ql * kl), cs.rows(qo, qo + ql, h)) };
        let bias = &pk.mask_bias[ko..][..kl];
        let single = Pool::single();
        TILES.with(|t| {
            let (used, _) = &mut *t.borrow_mut();
            for head in 0..nh {
                let base = head * ql * kl;
                let p = &mut pr[base..][..ql * kl];
                for row in p.chunks_exact_mut(kl) {
                    row.copy_from_slice(bias);
                }
                // scores = q_h k_hᵀ / sqrt(d) + mask adder
                cpu::sgemm(
                    ql,
                    d,
                    kl,
                    scale,
                    &q[qo * h + head * d..],
                    (h as isize, 1),
                    &kv[ko * 2 * h + head * d..],
                    (1, 2 * h as isize),
                    1.0,
                    p,
                    (kl as isize, 1),
                    &single,
                );
                cpu::softmax_rows(p, kl);
                let p_used: &[f32] = match drop {
                    Some(dr) => {
                        dr.apply_from(p, used, (po + base) as u64);
                        used
                    }
                    None => p,
                };
                cpu::sgemm(
                    ql,
                    kl,
                    d,
                    1.0,
                    p_used,
                    (kl as isize, 1),
                    &kv[ko * 2 * h + h + head * d..],
                    (2 * h as isize, 1),
                    0.0,
                    &mut ctx[head * d..],
                    (h as isize, 1),
                    &single,
                );
            }
        });
    });
}

/// Backward of [`forward`]: `dctx: [Rq, h]` -> `dq: [Rq, h]`, `dkv: [R, 2h]` (overwritten).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    pk: &Packed,
    first_only: bool,
    heads: Heads,
    (q, kv, probs): (&[f32], &[f32], &[f32]),
    drop: Option<Dropout>,
    dctx: &[f32],
    dq: &mut [f32],
    dkv: &mut [f32],
    pool: &Pool,
) {
    let (nh, d) = (heads.n, heads.size);
    let h = nh * d;
    let scale = 1.0 / (d as f32).sqrt();
    let (qs, kvs) = (SharedMut::new(dq), SharedMut::new(dkv));
    pool.run(pk.spans.len(), &|e| {
        let (qo, ql, ko, kl, po) = geometry(pk, first_only, e);
        // SAFETY: an example's query rows of `dq` and key rows of `dkv` belong to its task.
        let (dq, dkv) = unsafe { (qs.rows(qo, qo + ql, h), kvs.rows(ko, ko + kl, 2 * h)) };
        let single = Pool::single();
        TILES.with(|t| {
            let (used, dp) = &mut *t.borrow_mut();
            dp.resize(ql * kl, 0.0);
            for head in 0..nh {
                let base = head * ql * kl;
                let p = &probs[po + base..][..ql * kl];
                let p_used: &[f32] = match drop {
                    Some(dr) => {
                        dr.apply_from(p, used, (po + base) as u64);
                        used
                    }
                    None => p,
                };
                let dctx_h = &dctx[qo * h + head * d..];
                // dP = dctx_h v_hᵀ
                cpu::sgemm(
                    ql,
                    d,
                    kl,
                    1.0,
                    dctx_h,
                    (h as isize, 1),
                    &kv[ko * 2 * h + h + head * d..],
                    (1, 2 * h as isize),
                    0.0,
                    dp,
                    (kl as isize, 1),
                    &single,
                );
                // dv_h = dropout(P)ᵀ dctx_h
                cpu::sgemm(
                    kl,
                    ql,
                    d,
                    1.0,
                    p_used,
                    (1, kl as isize),
                    dctx_h,
                    (h as isize, 1),
                    0.0,
                    &mut dkv[h + head * d..],
                    (2 * h as isize, 1),
                    &single,
                );
                if let Some(dr) = drop {
                    dr.apply(dp, (po + base) as u64);
                }
                softmax_backward(p, dp, kl);
                // dq_h = dS k_h / sqrt(d), dk_h = dSᵀ q_h / sqrt(d)
                cpu::sgemm(
                    ql,
                    kl,
                    d,
                    scale,
                    dp,
                    (kl as isize, 1),
                    &kv[ko * 2 * h + head * d..],
                    (2 * h as isize, 1),
                    0.0,
                    &mut dq[head * d..],
                    (h as isize, 1),
                    &single,
                );
                cpu::sgemm(
                    kl,
                    ql,
                    d,
                    scale,
                    dp,
                    (1, kl as isize),
                    &q[qo * h + head * d..],
                    (h as isize, 1),
                    0.0,
                    &mut dkv[head * d..],
                    (2 * h as isize, 1),
                    &single,
                );
            }
        });
    });
}
