//! Self-attention heads on the micro-kernels: scores, soft-max and the product with V per
//! block of query rows, kept in L1.

use super::gemm::CMut;
use super::isa::Isa;
use super::microkernel::{Epilogue, Prefetch};
use super::pack::{pack_a, pack_b, AlignedVec, MatRef};
use super::Activation;
use crate::backend::Pool;
use std::cell::RefCell;

#[derive(Default)]
struct AttnScratch {
    /// Kᵀ as B panels `[kv_pad / NR][d][NR]`.
    k: AlignedVec,
    /// V as B panels `[d_pad / NR][kv][NR]`.
    v: AlignedVec,
    /// One A panel of `MR` query rows (`[d][MR]`), for a ragged last block of queries.
    a: AlignedVec,
    /// `MR` rows of scores, row stride `kv_pad`.
    scores: AlignedVec,
    /// The key mask bias padded to `kv_pad`.
    bias: AlignedVec,
}

thread_local! {
    static ATTN: RefCell<AttnScratch> = RefCell::new(AttnScratch::default());
}

/// One (batch, head) of self-attention on one thread:
/// `out[seq, d] = softmax(scale · q kᵀ + bias) v` with `q: [seq, d]`, `k, v: [kv, d]`,
/// `bias: [kv]`, all read in place through their row strides (column stride 1).
///
/// Kᵀ and V are packed once into the micro-kernel's B panels; then, `MR` query rows at a
/// time, the scores go to an `MR x kv` tile that stays in L1 (scale and mask bias applied in
/// the kernel's epilogue), are soft-maxed there in place and multiplied by V straight into
/// `out`, the kernel reading the probabilities in place as its A rows. The full `[seq, kv]` probability matrix never exists.
///
/// # Safety
/// `q` spans `[seq, d]`, `k` and `v` span `[kv, d]` (their `cs` is 1); every
/// `out.ptr + i*out.rs + j` (`i < seq`, `j < d`, `out.cs == 1`) is valid for writes and no
/// other live reference covers it; `isa` is available; `seq, kv, d >= 1`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn attention_head(
    isa: Isa,
    q: MatRef<'_>,
    k: MatRef<'_>,
    v: MatRef<'_>,
    seq: usize,
    kv: usize,
    d: usize,
    scale: f32,
    bias: &[f32],
    out: CMut,
) {
    let (mr, nr, kernel) = isa.attention_params();
    let (kv_pad, d_pad) = (kv.div_ceil(nr) * nr, d.div_ceil(nr) * nr);
    ATTN.with(|s| {
        let mut s = s.borrow_mut();
        let AttnScratch {
            k: kbuf,
            v: vbuf,
            a: abuf,
            scores: sbuf,
            bias: bbuf,
        } = &mut *s;
        let kt = MatRef {
            data: k.data,
            rs: 1,
            cs: k.rs,
        };
        let kp = kbuf.get(kv_pad * d);
        pack_b(kp, kt, kv, 0, d, 0, kv, nr);
        let vp = vbuf.get(d_pad * kv);
        pack_b(vp, v, d, 0, kv, 0, d, nr);
        let bp = bbuf.get(kv_pad);
        bp[..kv].copy_from_slice(&bias[..kv]);
        bp[kv..].fill(0.0);
        let scores = sbuf.get(mr * kv_pad);
        let ap = abuf.get(mr * d);
        let (kp, vp, bp) = (&*kp, &*vp, &*bp);
        let mut i0 = 0;
        while i0 < seq {
            let mcur = mr.min(seq - i0);
            // A full block of query rows is read in place (q has unit column stride).
            let (qa, qrs, qks) = if mcur == mr {
                (q.data[i0 * q.rs..].as_ptr(), q.rs as isize, 1)
            } else {
                pack_a(&mut ap[..mr * d], q, i0, mcur, 0, d, mr);
                (ap.as_ptr(), 1, mr as isize)
            };
            for jp in 0..kv_pad / nr {
                let ep = Epilogue {
                    alpha: scale,
                    beta: 0.0,
                    first: true,
                    last: true,
                    bias: bp[jp * nr..].as_ptr(),
                    act: Activation::Identity,
                };
                // SAFETY: `MR` query rows of `d` floats (in place, rows `< seq`, or the
                // packed panel) and one B panel of `d x NR` floats; the full `MR x NR` tile
                // lies in `scores` (`MR` rows of `kv_pad`), with `NR` bias values; the ISA is
                // available (caller's contract).
                unsafe {
                    kernel(
                        d,
                        qa,
                        qrs,
                        qks,
                        kp[jp * d * nr..].as_ptr(),
                        scores.as_mut_ptr().add(jp * nr),
                        kv_pad as isize,
                        1,
                        mr,
                        nr,
                        &ep,
                        Prefetch::NONE,
                    )
                };
            }
            // Soft-max each row in place; P·V then reads the `MR` rows of probabilities
            // where they are (row stride `kv_pad`), like a row-major A block: no repacking.
            // Rows past `mcur` of a ragged last block hold stale values whose products are
            // never stored.
            super::math::softmax_strided(super::math::Path::Auto, scores, kv_pad, kv, mcur);
            let ep = Epilogue {
                alpha: 1.0,
                beta: 0.0,
                first: true,
                last: true,
                bias: std::ptr::null(),
                act: Activation::Identity,
            };
            for jp in 0..d_pad / nr {
                let j = jp * nr;
                // SAFETY: A is `MR` rows of `kv` floats in `scores` (row stride `kv_pad`),
                // B a panel of `kv x NR`; the tile rows `i0..i0+mcur`, columns
                // `j..j+min(NR, d-j)` lie in `out` (caller's contract).
                unsafe {
                    kernel(
                        kv,
                        scores.as_ptr(),
                        kv_pad as isize,
                        1,
                        vp[jp * kv * nr..].as_ptr(),
                        out.ptr.offset(i0 as isize * out.rs + j as isize),
                        out.rs,
                        1,
                        mcur,
                        nr.min(d - j),
                        &ep,
                        Prefetch::NONE,
                    )
                };
            }
            i0 += mr;
        }
    });
}

/// Multi-head self-attention of `modeling.py: attention_layer` on fused projections.
///
/// `qkv: [batch * seq, 3 * hidden]` holds each position's query, key and value (in that
/// order, each `hidden = heads * head_size` wide, head `h` in columns `h * head_size..`);
/// `mask_bias: [batch, seq]` is the additive key mask (0 for real keys, −10000 for padding);
/// writes `context: [batch * seq, hidden]`, per head
/// `softmax(q kᵀ / sqrt(head_size) + mask_bias) v`.
///
/// The `batch × heads` products are split across `pool`, each task on one thread
/// (`attention_head`: `MR` query rows at a time, scores kept in L1). Trailing padded keys of a sequence (bias ≠ 0 after its last real key)
/// are skipped: their softmax weight, `exp(−10000 + …)`, is exactly 0 in f32 whenever the
/// real logits are moderate (|logit| well below 10⁴), so the result is that of the full
/// product, and a sequence's result does not depend on how much padding its batch has.
/// A sequence with no real key keeps every key (Google's uniform-shift semantics).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    qkv: &[f32],
    batch: usize,
    seq: usize,
    heads: usize,
    head_size: usize,
    mask_bias: &[f32],
    context: &mut [f32],
    pool: &Pool,
) {
    let (d, h) = (head_size, heads * head_size);
    let rows = batch * seq;
    assert!(qkv.len() >= rows * 3 * h, "attention: qkv too short");
    assert!(mask_bias.len() >= rows, "attention: mask_bias too short");
    assert!(context.len() >= rows * h, "attention: context too short");
    if rows == 0 || d == 0 || heads == 0 {
        return;
    }
    let isa = Isa::detect();
    let scale = 1.0 / (d as f32).sqrt();
    let out = CMut {
        ptr: context.as_mut_ptr(),
        rs: h as isize,
        cs: 1,
    };
    let task = |t: usize| {
        let out: CMut = out;
        let (b, head) = (t / heads, t % heads);
        let bias = &mask_bias[b * seq..][..seq];
        // Keys up to the last real one (all of them if none is real).
        let kv = bias.iter().rposition(|&x| x == 0.0).map_or(seq, |i| i + 1);
        let base = b * seq * 3 * h + head * d;
        let view = |off: usize| MatRef {
            data: &qkv[base + off..],
            rs: 3 * h,
            cs: 1,
        };
        // SAFETY: Q, K, V of this (batch, head) are `[seq, d]` views with row stride 3h
        // inside `qkv` (asserted length), `kv <= seq`; the output tile (rows `b*seq..+seq`,
        // columns `head*d..+d` of `context`) belongs to this task alone (tasks are distinct
        // (batch, head) pairs) and `context` stays mutably borrowed until `pool.run`
        // returns; the ISA was detected.
        unsafe {
            attention_head(
                isa,
                view(0),
                view(h),
                view(2 * h),
                seq,
                kv,
                d,
                scale,
                bias,
                CMut {
                    ptr: out.ptr.add(b * seq * h + head * d),
                    rs: out.rs,
                    cs: 1,
                },
            )
        };
    };
    pool.run(batch * heads, &task);
}
