//! Multi-head self-attention (`modeling.py: attention_layer`) on the micro-kernels, and its
//! backward pass.
//!
//! Forward, per sequence and head: `P = softmax(q kᵀ / sqrt(d) + mask_bias[key])`,
//! `context = dropout(P) v`, the scores of a block of query rows kept in L1
//! ([`attention_head`]); training records `P` (before dropout) per sequence as
//! `[heads, queries, keys]`, in sequence order.
//! Backward: `dP = dcontext vᵀ` (through the dropout mask), `dv = dropout(P)ᵀ dcontext`,
//! `dS = P ⊙ (dP − rowsum(dP ⊙ P))`, `dq = dS k / sqrt(d)`, `dk = dSᵀ q / sqrt(d)`.
//!
//! One pool task per (sequence, head) in the forward pass and per sequence in the backward
//! pass (its rows of every output are its own), each running its small GEMMs on one thread.
//! Trailing padded keys of a sequence (bias ≠ 0 after its last real key) are skipped: their
//! softmax weight, `exp(−10000 + …)`, is exactly 0 in f32 whenever the real logits are
//! moderate (|logit| well below 10⁴), so the result is that of the full product, and a
//! sequence's result does not depend on how much padding its batch has. A sequence with no
//! real key keeps every key (Google's uniform-shift semantics).

use super::elementwise::mask_mul;
use super::gemm::CMut;
use super::isa::Isa;
use super::microkernel::{Epilogue, Prefetch};
use super::pack::{pack_a, pack_b, AlignedVec, MatRef};
use super::par::{sum64, SharedMut};
use super::scratch;
use super::Activation;
use crate::backend::{Dropout, Heads, Pool, Queries, Rows, Span};

#[derive(Default)]
pub(crate) struct AttnScratch {
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

/// One (batch, head) of self-attention on one thread:
/// `out[seq, d] = softmax(scale · q kᵀ + bias) v` with `q: [seq, d]`, `k, v: [kv, d]`,
/// `bias: [kv]`, all read in place through their row strides (column stride 1).
///
/// Kᵀ and V are packed once into the micro-kernel's B panels; then, `MR` query rows at a
/// time, the scores go to an `MR x kv` tile that stays in L1 (scale and mask bias applied in
/// the kernel's epilogue), are soft-maxed there in place and multiplied by V straight into
/// `out`, the kernel reading the probabilities in place as its A rows. The full `[seq, kv]` probability matrix never exists.
///
/// With `record` (`[seq, kv]`), the probabilities are also copied out; with `drop` (a mask
/// and the index of element (0, 0)), element (i, j) is multiplied by mask element
/// `start + i·kv + j` before the product with V.
///
/// # Safety
/// `q` spans `[seq, d]`, `k` and `v` span `[kv, d]` (their `cs` is 1); every
/// `out.ptr + i*out.rs + j` (`i < seq`, `j < d`, `out.cs == 1`) is valid for writes and no
/// other live reference covers it; `isa` is available; `seq, kv, d >= 1`; `record`, if
/// given, holds `seq * kv` floats.
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
    mut record: Option<&mut [f32]>,
    drop: Option<(Dropout, u64)>,
) {
    let (mr, nr, kernel) = isa.attention_params();
    let (kv_pad, d_pad) = (kv.div_ceil(nr) * nr, d.div_ceil(nr) * nr);
    scratch::with(
        |s| &s.attn,
        |s| {
            let AttnScratch {
                k: kbuf,
                v: vbuf,
                a: abuf,
                scores: sbuf,
                bias: bbuf,
            } = s;
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
                for i in 0..mcur {
                    let row = &mut scores[i * kv_pad..][..kv];
                    if let Some(rec) = record.as_deref_mut() {
                        rec[(i0 + i) * kv..][..kv].copy_from_slice(row);
                    }
                    if let Some((mask, start)) = drop {
                        mask_mul(&mask, None, row, start + ((i0 + i) * kv) as u64);
                    }
                }
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
        },
    );
}

/// Rows at a stride inside a slice: element (r, c) is `data[col + r * stride + c]`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub data: &'a [f32],
    pub col: usize,
    pub stride: usize,
}

impl<'a> Strided<'a> {
    /// Rows `start..` from column `col + c0` on, as a micro-kernel view.
    fn at(&self, start: usize, c0: usize) -> MatRef<'a> {
        MatRef {
            data: &self.data[self.col + start * self.stride + c0..],
            rs: self.stride,
            cs: 1,
        }
    }
}

/// Sequence `e`'s query rows (in `q` and `out`) and key rows.
fn geometry(rows: &Rows, queries: Option<&Queries>, e: usize) -> (Span, Span) {
    let keys = rows.seqs[e];
    (queries.map_or(keys, |q| q.seqs[e]), keys)
}

/// Keys a sequence attends to: up to its last real one (all if none is real).
fn attended(bias: &[f32]) -> usize {
    bias.iter()
        .rposition(|&x| x == 0.0)
        .map_or(bias.len(), |i| i + 1)
}

/// Offset of each sequence's recorded probabilities `[heads, queries, keys]`, and the total.
fn record_offsets(rows: &Rows, queries: Option<&Queries>, heads: usize) -> (Vec<usize>, usize) {
    let mut offsets = Vec::with_capacity(rows.seqs.len());
    let mut total = 0;
    for e in 0..rows.seqs.len() {
        let (qs, ks) = geometry(rows, queries, e);
        offsets.push(total);
        let kl = attended(&rows.mask_bias[ks.start..][..ks.len]);
        total += heads * qs.len * kl;
    }
    (offsets, total)
}

/// Self-attention over `rows` into `out: [queries, heads · size]` (see the module docs),
/// recording the probabilities into `record` when given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    pool: &Pool,
    (q, k, v): (Strided<'_>, Strided<'_>, Strided<'_>),
    rows: &Rows,
    queries: Option<&Queries>,
    heads: Heads,
    out: &mut [f32],
    record: Option<&mut Vec<f32>>,
    drop: Option<Dropout>,
) {
    let (d, nh) = (heads.size, heads.n);
    let h = nh * d;
    let nq = queries.map_or(rows.len(), Queries::len);
    assert!(out.len() >= nq * h, "attention: out too short");
    if nq == 0 || d == 0 || nh == 0 {
        return;
    }
    let (offsets, total) = record_offsets(rows, queries, nh);
    let record = record.map(|r| {
        if r.len() < total {
            r.resize(total, 0.0);
        }
        SharedMut::new(&mut r[..total])
    });
    let isa = Isa::detect();
    let scale = 1.0 / (d as f32).sqrt();
    let outp = CMut {
        ptr: out.as_mut_ptr(),
        rs: h as isize,
        cs: 1,
    };
    let task = |t: usize| {
        let outp: CMut = outp;
        let (e, head) = (t / nh, t % nh);
        let (qs, ks) = geometry(rows, queries, e);
        if qs.len == 0 || ks.len == 0 {
            return;
        }
        let bias = &rows.mask_bias[ks.start..][..ks.len];
        let kl = attended(bias);
        let base = offsets[e] + head * qs.len * kl;
        // SAFETY: a (sequence, head) pair's record block belongs to its task alone.
        let rec = record
            .as_ref()
            .map(|r| unsafe { r.part(base, qs.len * kl) });
        // SAFETY: the views span the sequence's rows (the caller's buffers hold every row);
        // the output tile (its query rows, the head's columns) belongs to this task alone and
        // `out` stays mutably borrowed until `pool.run` returns; the ISA was detected.
        unsafe {
            attention_head(
                isa,
                q.at(qs.start, head * d),
                k.at(ks.start, head * d),
                v.at(ks.start, head * d),
                qs.len,
                kl,
                d,
                scale,
                bias,
                CMut {
                    ptr: outp.ptr.add(qs.start * h + head * d),
                    rs: outp.rs,
                    cs: 1,
                },
                rec,
                drop.map(|m| (m, base as u64)),
            )
        };
    };
    pool.run(rows.seqs.len() * nh, &task);
}

/// Backward of [`forward`]: `dout: [queries, h]` -> `dq: [queries, h]`, `dk`, `dv`:
/// `[rows, h]` (overwritten; keys a sequence does not attend to get 0).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    pool: &Pool,
    (q, k, v): (Strided<'_>, Strided<'_>, Strided<'_>),
    rows: &Rows,
    queries: Option<&Queries>,
    heads: Heads,
    record: &[f32],
    drop: Option<Dropout>,
    dout: &[f32],
    (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
) {
    let (d, nh) = (heads.size, heads.n);
    let h = nh * d;
    let scale = 1.0 / (d as f32).sqrt();
    let (offsets, _) = record_offsets(rows, queries, nh);
    let (qs_, ks_, vs_) = (SharedMut::new(dq), SharedMut::new(dk), SharedMut::new(dv));
    pool.run(rows.seqs.len(), &|e| {
        let (qs, ks) = geometry(rows, queries, e);
        // SAFETY: a sequence's query rows of `dq` and key rows of `dk`, `dv` belong to its
        // task.
        let (dq, dk, dv) = unsafe {
            (
                qs_.rows(qs.start, qs.start + qs.len, h),
                ks_.rows(ks.start, ks.start + ks.len, h),
                vs_.rows(ks.start, ks.start + ks.len, h),
            )
        };
        let kl = attended(&rows.mask_bias[ks.start..][..ks.len]);
        dk[kl * h..].fill(0.0);
        dv[kl * h..].fill(0.0);
        let (ql, single) = (qs.len, Pool::single());
        if ql == 0 || kl == 0 {
            dq.fill(0.0);
            return;
        }
        // The `[queries, keys]` tiles: probabilities after dropout, their gradient.
        scratch::with(
            |s| &s.tiles,
            |(used, dp)| {
                dp.resize(ql * kl, 0.0);
                used.resize(ql * kl, 0.0);
                for head in 0..nh {
                    let base = offsets[e] + head * ql * kl;
                    let p = &record[base..][..ql * kl];
                    let p_used: &[f32] = match drop {
                        Some(m) => {
                            mask_mul(&m, Some(p), used, base as u64);
                            used
                        }
                        None => p,
                    };
                    let (qv, kv, vv) = (
                        q.at(qs.start, head * d),
                        k.at(ks.start, head * d),
                        v.at(ks.start, head * d),
                    );
                    let dout_h = &dout[qs.start * h + head * d..];
                    let hs = h as isize;
                    // dP = dout_h v_hᵀ
                    super::sgemm(
                        ql,
                        d,
                        kl,
                        1.0,
                        dout_h,
                        (hs, 1),
                        vv.data,
                        (1, vv.rs as isize),
                        0.0,
                        dp,
                        (kl as isize, 1),
                        &single,
                    );
                    // dv_h = dropout(P)ᵀ dout_h
                    super::sgemm(
                        kl,
                        ql,
                        d,
                        1.0,
                        p_used,
                        (1, kl as isize),
                        dout_h,
                        (hs, 1),
                        0.0,
                        &mut dv[head * d..],
                        (hs, 1),
                        &single,
                    );
                    if let Some(m) = drop {
                        mask_mul(&m, None, dp, base as u64);
                    }
                    softmax_backward(p, dp, kl);
                    // dq_h = dS k_h / sqrt(d), dk_h = dSᵀ q_h / sqrt(d)
                    super::sgemm(
                        ql,
                        kl,
                        d,
                        scale,
                        dp,
                        (kl as isize, 1),
                        kv.data,
                        (kv.rs as isize, 1),
                        0.0,
                        &mut dq[head * d..],
                        (hs, 1),
                        &single,
                    );
                    super::sgemm(
                        kl,
                        ql,
                        d,
                        scale,
                        dp,
                        (1, kl as isize),
                        qv.data,
                        (qv.rs as isize, 1),
                        0.0,
                        &mut dk[head * d..],
                        (hs, 1),
                        &single,
                    );
                }
            },
        );
    });
}

/// Softmax backward over rows of `width`: `dz = p ⊙ (dp − Σ_j dp_j p_j)`, in place on `dp`.
pub(crate) fn softmax_backward(p: &[f32], dp: &mut [f32], width: usize) {
    for (pr, dr) in p.chunks_exact(width).zip(dp.chunks_exact_mut(width)) {
        let dot = sum64(width, |j| pr[j] as f64 * dr[j] as f64) as f32;
        for (d, &pv) in dr.iter_mut().zip(pr) {
            *d = pv * (*d - dot);
        }
    }
}

/// Multi-head self-attention of `[batch, seq]` inputs on fused projections (the fixed-shape
/// form benchmarks use): `qkv: [batch * seq, 3 * hidden]` holds each position's query, key
/// and value; `mask_bias: [batch * seq]` the additive key mask; writes
/// `context: [batch * seq, hidden]`.
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
    let h = heads * head_size;
    assert!(qkv.len() >= batch * seq * 3 * h, "attention: qkv too short");
    assert!(
        mask_bias.len() >= batch * seq,
        "attention: mask_bias too short"
    );
    let rows = Rows {
        seqs: (0..batch)
            .map(|b| Span {
                start: b * seq,
                len: seq,
            })
            .collect(),
        ids: vec![0; batch * seq],
        segments: Vec::new(),
        positions: Vec::new(),
        mask_bias: mask_bias[..batch * seq].to_vec(),
    };
    let view = |col| Strided {
        data: qkv,
        col,
        stride: 3 * h,
    };
    let heads = Heads {
        n: heads,
        size: head_size,
    };
    forward(
        pool,
        (view(0), view(h), view(2 * h)),
        &rows,
        None,
        heads,
        context,
        None,
        None,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
