//! Row-parallel element-wise kernels of the training pass: the fused passes between the
//! GEMMs (bias + dropout + residual + LayerNorm, bias + activation), their backward passes,
//! and column sums for bias gradients.
//!
//! Work is split into fixed chunks of [`CHUNK_ROWS`] rows spread over the [`Pool`]; every
//! reduction over rows (bias, γ and β gradients) first sums each chunk in row order into its
//! own slot of a partial-sums buffer, then adds the chunks in chunk order. The chunking does
//! not depend on the thread count, so results are bit-identical for any number of threads.

use std::marker::PhantomData;

use super::dropout::{maybe_drop, Dropout};
use crate::backend::{cpu, Pool};
use crate::config::Activation;

/// Rows per task in the element-wise passes (a few tens of KiB per operand: small enough to
/// balance two to sixteen threads on a 32 x 128 batch, large enough that a task's overhead
/// does not show).
pub(crate) const CHUNK_ROWS: usize = 32;

/// Number of [`CHUNK_ROWS`] chunks covering `rows`.
pub(crate) fn chunks(rows: usize) -> usize {
    rows.div_ceil(CHUNK_ROWS)
}

/// Calls `f(chunk, r0, r1)` for every chunk of rows `r0..r1`, spread over the pool.
pub(crate) fn for_chunks(pool: &Pool, rows: usize, f: &(dyn Fn(usize, usize, usize) + Sync)) {
    pool.run(chunks(rows), &|c| {
        let r0 = c * CHUNK_ROWS;
        f(c, r0, (r0 + CHUNK_ROWS).min(rows))
    });
}

/// A mutable slice that pool tasks write in disjoint parts.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<'a> {
    ptr: *mut f32,
    len: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `SharedMut` only hands out sub-slices through `part`, whose contract requires the
// parts used at the same time to be disjoint; the underlying slice stays mutably borrowed for
// `'a`.
unsafe impl Send for SharedMut<'_> {}
// SAFETY: as above.
unsafe impl Sync for SharedMut<'_> {}

impl<'a> SharedMut<'a> {
    pub(crate) fn new(s: &'a mut [f32]) -> SharedMut<'a> {
        SharedMut {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            _borrow: PhantomData,
        }
    }

    /// Elements `start..start + len`.
    ///
    /// # Safety
    /// No other part overlapping this range may be alive at the same time.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, start: usize, len: usize) -> &'a mut [f32] {
        assert!(start + len <= self.len, "SharedMut::part out of bounds");
        // SAFETY: in bounds (asserted); exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// Rows `r0..r1` of a `[rows, width]` matrix.
    ///
    /// # Safety
    /// As [`SharedMut::part`].
    pub(crate) unsafe fn rows(&self, r0: usize, r1: usize, width: usize) -> &'a mut [f32] {
        // SAFETY: forwarded contract.
        unsafe { self.part(r0 * width, (r1 - r0) * width) }
    }
}

/// Defines `fn $name(args)` running `$body(args)` compiled for AVX2 + FMA when the CPU has
/// them, and for the build's baseline (SSE2 on x86_64) otherwise. The element-wise loops of
/// the training pass are written to vectorize; this gives them 8 lanes and 32-bit vector
/// multiplies. (`$body` must be `#[inline(always)]` so it is compiled inside each variant.)
macro_rules! avx2_or_baseline {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) => $body:path) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($a: $t),*) {
                    $body($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($a),*) };
                }
            }
            $body($($a),*)
        }
    };
}
pub(crate) use avx2_or_baseline;

/// Sum of `f(j)` over `0..n` in f64 with eight independent accumulators (vectorizes).
#[inline(always)]
fn sum64(n: usize, f: impl Fn(usize) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let full = n / 8 * 8;
    for j0 in (0..full).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(j0 + l);
        }
    }
    let mut s = 0.0;
    for j in full..n {
        s += f(j);
    }
    acc.iter().sum::<f64>() + s
}

/// LayerNorm of one row (`tf.contrib.layers.layer_norm`: biased variance, ε inside the
/// root; moments in f64): writes `y = x̂γ + β` and `x̂`, returns `1/σ`.
#[inline]
pub(crate) fn ln_row(
    s: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    xhat: &mut [f32],
) -> f32 {
    let w = s.len();
    let mean = sum64(w, |j| s[j] as f64) / w as f64;
    let var = sum64(w, |j| (s[j] as f64 - mean).powi(2)) / w as f64;
    let rs = 1.0 / (var + eps as f64).sqrt();
    for j in 0..w {
        let xh = ((s[j] as f64 - mean) * rs) as f32;
        xhat[j] = xh;
        y[j] = xh * gamma[j] + beta[j];
    }
    rs as f32
}

/// Per-chunk partial sums of up to three `width`-wide row reductions.
pub(crate) struct Partials<'a> {
    buf: SharedMut<'a>,
    width: usize,
    n: usize,
}

impl<'a> Partials<'a> {
    /// Zeroes `n` sums of `width` per chunk of `rows` in `buf` (grown as needed).
    pub(crate) fn new(buf: &'a mut Vec<f32>, rows: usize, width: usize, n: usize) -> Self {
        let len = chunks(rows) * n * width;
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        buf[..len].fill(0.0);
        Partials {
            buf: SharedMut::new(&mut buf[..len]),
            width,
            n,
        }
    }

    /// The `k`-th sum of chunk `c`.
    ///
    /// # Safety
    /// Each chunk's slots are used by one task at a time.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slot(&self, c: usize, k: usize) -> &'a mut [f32] {
        // SAFETY: forwarded contract.
        unsafe { self.buf.part((c * self.n + k) * self.width, self.width) }
    }

    /// Adds sum `k` of every chunk, in chunk order, into `dst`.
    pub(crate) fn add_into(&self, k: usize, dst: &mut [f32]) {
        let chunks = self.buf.len / (self.n * self.width);
        for c in 0..chunks {
            // SAFETY: the tasks that wrote the partials have finished (`Pool::run` returned)
            // and this shared view is the only one alive.
            let p = unsafe { self.slot(c, k) };
            for (d, v) in dst.iter_mut().zip(p.iter()) {
                *d += v;
            }
        }
    }
}

/// `x[r] = bias` for every row.
pub(crate) fn fill_rows(pool: &Pool, x: &mut [f32], rows: usize, bias: &[f32]) {
    let w = bias.len();
    let xs = SharedMut::new(&mut x[..rows * w]);
    for_chunks(pool, rows, &|_, r0, r1| {
        // SAFETY: chunks are disjoint row ranges.
        let x = unsafe { xs.rows(r0, r1, w) };
        for row in x.chunks_exact_mut(w) {
            row.copy_from_slice(bias);
        }
    });
}

/// The tensors of one LayerNorm's forward pass.
pub(crate) struct LnOut<'a> {
    pub y: &'a mut [f32],
    pub xhat: &'a mut [f32],
    pub rstd: &'a mut [f32],
}

/// `y = LayerNorm(dropout(z + bias) + residual)` over `rows` rows of `width`
/// (`modeling.py`: the attention-output and output blocks), keeping `x̂` and `1/σ`; `z` (a
/// GEMM's output without its bias) is overwritten. Dropout element `i` is `r·width + j`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn bias_dropout_residual_ln(
    pool: &Pool,
    rows: usize,
    z: &mut [f32],
    bias: &[f32],
    drop: Option<Dropout>,
    residual: &[f32],
    (gamma, beta, eps): (&[f32], &[f32], f32),
    out: LnOut<'_>,
) {
    let w = bias.len();
    let (zs, ys, xs, rs) = (
        SharedMut::new(&mut z[..rows * w]),
        SharedMut::new(&mut out.y[..rows * w]),
        SharedMut::new(&mut out.xhat[..rows * w]),
        SharedMut::new(&mut out.rstd[..rows]),
    );
    for_chunks(pool, rows, &|_, r0, r1| {
        // SAFETY: chunks are disjoint row ranges of each buffer.
        let (z, y, xh, rstd) = unsafe {
            (
                zs.rows(r0, r1, w),
                ys.rows(r0, r1, w),
                xs.rows(r0, r1, w),
                rs.rows(r0, r1, 1),
            )
        };
        for (i, r) in (r0..r1).enumerate() {
            let zr = &mut z[i * w..][..w];
            for (v, b) in zr.iter_mut().zip(bias) {
                *v += b;
            }
            maybe_drop(drop, zr, (r * w) as u64);
            for (v, x) in zr.iter_mut().zip(&residual[r * w..][..w]) {
                *v += x;
            }
            rstd[i] = ln_row(
                zr,
                gamma,
                beta,
                eps,
                &mut y[i * w..][..w],
                &mut xh[i * w..][..w],
            );
        }
    });
}

/// `pre += bias` (kept for the backward pass) and `out = act(pre)`, both `[rows, width]`
/// (`intermediate/dense` and its activation).
pub(crate) fn bias_act(
    pool: &Pool,
    rows: usize,
    pre: &mut [f32],
    bias: &[f32],
    act: Activation,
    out: &mut [f32],
) {
    let w = bias.len();
    let (ps, os) = (
        SharedMut::new(&mut pre[..rows * w]),
        SharedMut::new(&mut out[..rows * w]),
    );
    for_chunks(pool, rows, &|_, r0, r1| {
        // SAFETY: chunks are disjoint row ranges.
        let (p, o) = unsafe { (ps.rows(r0, r1, w), os.rows(r0, r1, w)) };
        for row in p.chunks_exact_mut(w) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
        o.copy_from_slice(p);
        activate(act, o);
    });
}

/// `out = act(pre)` (recomputing the activation for the backward pass).
pub(crate) fn act_rows(
    pool: &Pool,
    rows: usize,
    width: usize,
    pre: &[f32],
    act: Activation,
    out: &mut [f32],
) {
    let os = SharedMut::new(&mut out[..rows * width]);
    for_chunks(pool, rows, &|_, r0, r1| {
        // SAFETY: chunks are disjoint row ranges.
        let o = unsafe { os.rows(r0, r1, width) };
        o.copy_from_slice(&pre[r0 * width..r1 * width]);
        activate(act, o);
    });
}

/// Applies `hidden_act` in place with the inference kernels.
pub(crate) fn activate(act: Activation, x: &mut [f32]) {
    match act {
        Activation::GeluTanh => cpu::gelu_tanh(x),
        Activation::GeluErf => cpu::gelu_erf(x),
        Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
}

/// `d *= act'(pre)` and the column sums of the result into partial sum 0 (the dense bias
/// gradient), both `[rows, width]`.
pub(crate) fn act_backward(
    pool: &Pool,
    rows: usize,
    pre: &[f32],
    d: &mut [f32],
    act: Activation,
    partials: &Partials<'_>,
) {
    let w = partials.width;
    let ds = SharedMut::new(&mut d[..rows * w]);
    for_chunks(pool, rows, &|c, r0, r1| {
        // SAFETY: chunks are disjoint row ranges and own their partial slots.
        let (d, db) = unsafe { (ds.rows(r0, r1, w), partials.slot(c, 0)) };
        let p = &pre[r0 * w..r1 * w];
        act_grad_mul(act, d, p);
        for row in d.chunks_exact(w) {
            for (a, v) in db.iter_mut().zip(row) {
                *a += v;
            }
        }
    });
}

avx2_or_baseline!(
    /// `d *= act'(pre)` element-wise.
    fn act_grad_mul(act: Activation, d: &mut [f32], pre: &[f32]) => act_grad_mul_body
);

#[inline(always)]
fn act_grad_mul_body(act: Activation, d: &mut [f32], pre: &[f32]) {
    // Plain `for` loops: an iterator's `fold` would be a separate function, compiled
    // without the caller's AVX2.
    let n = d.len().min(pre.len());
    let (d, pre) = (&mut d[..n], &pre[..n]);
    match act {
        Activation::GeluTanh => {
            for j in 0..n {
                d[j] *= gelu_tanh_grad(pre[j]);
            }
        }
        Activation::GeluErf => {
            for j in 0..n {
                d[j] *= gelu_erf_grad(pre[j]);
            }
        }
        Activation::Relu => {
            for j in 0..n {
                d[j] = if pre[j] > 0.0 { d[j] } else { 0.0 };
            }
        }
    }
}

/// Column sums of `x: [rows, width]` (row stride `stride`, columns `col..col + width`) into
/// partial sum `k`.
pub(crate) fn col_sums(
    pool: &Pool,
    rows: usize,
    x: &[f32],
    (stride, col): (usize, usize),
    partials: &Partials<'_>,
    k: usize,
) {
    let w = partials.width;
    for_chunks(pool, rows, &|c, r0, r1| {
        // SAFETY: each chunk owns its partial slots.
        let acc = unsafe { partials.slot(c, k) };
        for r in r0..r1 {
            for (a, v) in acc.iter_mut().zip(&x[r * stride + col..][..w]) {
                *a += v;
            }
        }
    });
}

/// Gradients of one LayerNorm's input, given `dy` (`∂loss/∂y`, `[rows, width]`) and the
/// saved `x̂`, `1/σ`:
/// `dsum = (1/σ)(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))` with `dx̂ = dy·γ` (moments in f64).
/// `in_drop` first multiplies `dy` by a mask applied after the norm (the embeddings);
/// writes `dsum` into `dres` and, when given, `dsum ⊙ out_drop` into `dz` (the branch that
/// went through dropout before the residual add). Partial sums: 0 = dγ (`Σ dy·x̂`),
/// 1 = dβ (`Σ dy`), 2 = the bias of the dense before the dropout (`Σ dz`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn ln_backward(
    pool: &Pool,
    rows: usize,
    dy: &[f32],
    (xhat, rstd, gamma): (&[f32], &[f32], &[f32]),
    in_drop: Option<Dropout>,
    out_drop: Option<Dropout>,
    dres: &mut [f32],
    dz: Option<&mut [f32]>,
    partials: &Partials<'_>,
) {
    let w = gamma.len();
    let rs = SharedMut::new(&mut dres[..rows * w]);
    let zs = dz.map(|z| SharedMut::new(&mut z[..rows * w]));
    for_chunks(pool, rows, &|c, r0, r1| {
        // SAFETY: chunks are disjoint row ranges and own their partial slots.
        let (res, dg, dbt) =
            unsafe { (rs.rows(r0, r1, w), partials.slot(c, 0), partials.slot(c, 1)) };
        let mut row_dy = Vec::new();
        for (i, r) in (r0..r1).enumerate() {
            let mut dyr = &dy[r * w..][..w];
            if let Some(d) = in_drop {
                row_dy.clear();
                row_dy.extend_from_slice(dyr);
                d.apply(&mut row_dy, (r * w) as u64);
                dyr = &row_dy;
            }
            let xh = &xhat[r * w..][..w];
            let s1 = sum64(w, |j| (dyr[j] * gamma[j]) as f64);
            let s2 = sum64(w, |j| (dyr[j] * gamma[j]) as f64 * xh[j] as f64);
            let (m1, m2) = (s1 / w as f64, s2 / w as f64);
            let rsd = rstd[r] as f64;
            let out = &mut res[i * w..][..w];
            for j in 0..w {
                let dxh = (dyr[j] * gamma[j]) as f64;
                out[j] = (rsd * (dxh - m1 - xh[j] as f64 * m2)) as f32;
            }
            for j in 0..w {
                dg[j] += dyr[j] * xh[j];
                dbt[j] += dyr[j];
            }
            if let Some(zs) = &zs {
                // SAFETY: as above.
                let (z, db) = unsafe { (zs.part(r * w, w), partials.slot(c, 2)) };
                z.copy_from_slice(out);
                maybe_drop(out_drop, z, (r * w) as u64);
                for (a, v) in db.iter_mut().zip(z.iter()) {
                    *a += v;
                }
            }
        }
    });
}

/// e^x for x ≤ 88 (Cephes `expf`, as `backend::cpu`'s; plain multiply-adds so the compiler
/// vectorizes it for the build's baseline), 0 below −87.3.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0;
    let xc = x.clamp(-87.3, 88.0);
    let t = xc * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * LN2_HI;
    let r = r - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    let scale = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    if x < -87.3 {
        0.0
    } else {
        y * scale
    }
}

/// Derivative of Google's tanh GELU `x·σ(2u)`, `u = c(x + 0.044715x³)`:
/// `σ(2u) + 2x·σ(2u)(1 − σ(2u))·c(1 + 3·0.044715x²)`.
#[inline(always)]
pub(crate) fn gelu_tanh_grad(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2/pi)
    const A: f32 = 0.044_715;
    let x2 = x * x;
    let u = C * (x + A * x2 * x);
    let e = exp(-2.0 * u);
    let s = 1.0 / (1.0 + e);
    // 1 − σ = e·σ, without the cancellation of 1 − σ near σ = 1.
    s + 2.0 * x * s * (e * s) * C * (1.0 + 3.0 * A * x2)
}

/// Derivative of the erf GELU `xΦ(x)`: `Φ(x) + xφ(x)`, with Φ from Numerical Recipes'
/// `erfcc` as in `backend::cpu::gelu_erf`.
#[inline(always)]
pub(crate) fn gelu_erf_grad(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (0.5 * z + 1.0);
    let mut p = 0.170_872_77;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    let e = exp(-0.5 * x * x);
    // erfc(z) = t·exp(−z² + p); −z² = −x²/2.
    let half_erfc = 0.5 * t * e * exp(p);
    let phi_cdf = if x > 0.0 { 1.0 - half_erfc } else { half_erfc };
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    phi_cdf + x * INV_SQRT_2PI * e
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

#[cfg(test)]
mod tests {
    use super::super::backward::activation_grad;
    use super::*;
    use crate::train::rng::Rng;

    /// The vectorizable f32 derivatives against the f64 formulas (`activation_grad`, itself
    /// checked against finite differences): f32 rounding of a handful of operations on
    /// values ≤ 1.2, so 1e-6 absolute.
    #[test]
    fn gelu_derivatives_match_the_f64_formulas() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0 + 0.0031;
            for (act, f) in [
                (Activation::GeluTanh, gelu_tanh_grad as fn(f32) -> f32),
                (Activation::GeluErf, gelu_erf_grad),
            ] {
                let (a, b) = (f(x), activation_grad(act, x));
                assert!((a - b).abs() <= 1e-6, "{act:?}'({x}): {a} vs {b}");
            }
        }
        assert!(gelu_tanh_grad(-200.0).abs() < 1e-20);
        assert_eq!(gelu_erf_grad(200.0), 1.0);
    }

    /// Chunked, pooled passes give the same bits with 1 and 3 threads.
    #[test]
    fn passes_do_not_depend_on_the_thread_count() {
        let (rows, w) = (77, 24);
        let vals = |k: usize| -> Vec<f32> {
            (0..rows * w)
                .map(|i| ((i * 7 + k * 13) % 23) as f32 / 7.0 - 1.5)
                .collect()
        };
        let gamma: Vec<f32> = (0..w).map(|j| 1.0 + j as f32 / 50.0).collect();
        let run = |threads: usize| {
            let pool = Pool::new(threads);
            let mut buf = Vec::new();
            let p = Partials::new(&mut buf, rows, w, 3);
            let (mut dres, mut dz) = (vec![0.0; rows * w], vec![0.0; rows * w]);
            let xhat = vals(1);
            let rstd: Vec<f32> = (0..rows).map(|r| 1.0 + r as f32 / 100.0).collect();
            let mut rng = Rng::new(1);
            let d = Dropout::draw(&mut Some(&mut rng), 0.2);
            ln_backward(
                &pool,
                rows,
                &vals(2),
                (&xhat, &rstd, &gamma),
                d,
                d,
                &mut dres,
                Some(&mut dz),
                &p,
            );
            let mut sums = vec![0.0f32; 3 * w];
            for k in 0..3 {
                p.add_into(k, &mut sums[k * w..][..w]);
            }
            (dres, dz, sums)
        };
        assert_eq!(run(1), run(3));
    }
}
