//! LayerNorm (`modeling.py: layer_norm`, i.e. `tf.contrib.layers.layer_norm`: over the last
//! axis, biased variance, ε inside the square root, then `· gamma + beta`), fused with the
//! residual add and dropout before it, and its backward pass; column sums for bias gradients.

use std::sync::Mutex;

use super::elementwise::{mask_mul, maybe_drop};
use super::math::{self, Path};
use super::par::{avx2_or_baseline, for_chunks, sum64, Partials, SharedMut};
use crate::backend::{Dropout, Pool};

/// Fewest elements for which the forward pass splits rows among threads: below it a
/// wake-up costs about what the split saves.
const PARALLEL_MIN: usize = 32 * 1024;

/// What one call normalises.
pub(crate) struct NormArgs<'a> {
    pub width: usize,
    pub residual: Option<&'a [f32]>,
    pub drop: Option<Dropout>,
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

/// `x = LayerNorm(drop(x) + residual)` over `x: [rows, width]`, writing `x̂` and `1/σ` into
/// `record` when given.
///
/// Rows are split into one contiguous part per thread (`Pool::run` gives thread `p` part
/// `p`): where `gemm` split the dense product before by rows, these are (with two threads
/// and row counts that are multiples of 16, as BERT's batches are) the rows that thread
/// wrote, still in its L2.
pub(crate) fn layer_norm(
    pool: &Pool,
    x: &mut [f32],
    a: &NormArgs<'_>,
    record: Option<(&mut [f32], &mut [f32])>,
) {
    let w = a.width;
    if w == 0 {
        return;
    }
    let rows = x.len() / w;
    let parts = if x.len() >= PARALLEL_MIN {
        pool.threads().min(rows)
    } else {
        1
    };
    let per = rows.div_ceil(parts.max(1)).max(1);
    let (xhat, rstd) = match record {
        Some((h, r)) => (Some(&mut h[..rows * w]), Some(&mut r[..rows])),
        None => (None, None),
    };
    // One part per thread: (first row, rows, x̂, 1/σ).
    type Part<'p> = (
        usize,
        &'p mut [f32],
        Option<&'p mut [f32]>,
        Option<&'p mut [f32]>,
    );
    let mut hs = xhat.map(|h| h.chunks_mut(per * w));
    let mut rs = rstd.map(|r| r.chunks_mut(per));
    let jobs: Vec<Mutex<Part<'_>>> = x
        .chunks_mut(per * w)
        .enumerate()
        .map(|(i, xs)| {
            let h = hs.as_mut().and_then(Iterator::next);
            let r = rs.as_mut().and_then(Iterator::next);
            Mutex::new((i * per, xs, h, r))
        })
        .collect();
    let run = |i: usize| {
        let mut job = jobs[i].lock().unwrap_or_else(|e| e.into_inner());
        let (r0, x, xhat, rstd) = &mut *job;
        rows_norm(a, *r0, x, xhat.as_deref_mut(), rstd.as_deref_mut());
    };
    if jobs.len() == 1 {
        run(0);
    } else {
        pool.run(jobs.len(), &run);
    }
}

/// [`layer_norm`] of the rows from `r0` on, on the calling thread.
fn rows_norm(
    a: &NormArgs<'_>,
    r0: usize,
    x: &mut [f32],
    xhat: Option<&mut [f32]>,
    rstd: Option<&mut [f32]>,
) {
    let w = a.width;
    maybe_drop(a.drop, x, (r0 * w) as u64);
    let residual = a.residual.map(|res| &res[r0 * w..][..x.len()]);
    match (xhat, rstd, residual) {
        (Some(h), Some(r), res) => {
            if let Some(res) = res {
                math::add_assign(Path::Auto, x, res);
            }
            math::layer_norm_record(Path::Auto, x, w, a.gamma, a.beta, a.eps, h, r)
        }
        // One pass over memory: the residual added row by row inside the norm (the same
        // operations as the two steps above, so the same bits).
        (_, _, Some(res)) => {
            math::layer_norm_residual(Path::Auto, x, res, w, a.gamma, a.beta, a.eps)
        }
        _ => math::layer_norm(Path::Auto, x, w, a.gamma, a.beta, a.eps),
    }
}

/// Gradients of one LayerNorm, given `dy` (`∂loss/∂y`, `[rows, width]`) and the saved `x̂`,
/// `1/σ`: `dsum = (1/σ)(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))` with `dx̂ = dy·γ` (moments in
/// f64), written into `dsum`; with `branch`, `dsum ⊙ mask` into its buffer (the dropped
/// branch before the residual add). Partial sums: 0 = dγ (`Σ dy·x̂`), 1 = dβ (`Σ dy`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_norm_backward(
    pool: &Pool,
    rows: usize,
    dy: &[f32],
    (xhat, rstd, gamma): (&[f32], &[f32], &[f32]),
    dsum: &mut [f32],
    branch: Option<(Option<Dropout>, &mut [f32])>,
    partials: &Partials<'_>,
) {
    let w = gamma.len();
    let rs = SharedMut::new(&mut dsum[..rows * w]);
    let (drop, zs) = match branch {
        Some((d, z)) => (d, Some(SharedMut::new(&mut z[..rows * w]))),
        None => (None, None),
    };
    for_chunks(pool, rows, &|c, r0, r1| {
        // SAFETY: chunks are disjoint row ranges and own their partial slots.
        let (res, dg, dbt) =
            unsafe { (rs.rows(r0, r1, w), partials.slot(c, 0), partials.slot(c, 1)) };
        for (i, r) in (r0..r1).enumerate() {
            let (dyr, xh) = (&dy[r * w..][..w], &xhat[r * w..][..w]);
            let out = &mut res[i * w..][..w];
            norm_row_backward(dyr, xh, gamma, rstd[r], out, dg, dbt);
            if let Some(zs) = &zs {
                // SAFETY: as above.
                let z = unsafe { zs.part(r * w, w) };
                match drop {
                    Some(d) => mask_mul(&d, Some(out), z, (r * w) as u64),
                    None => z.copy_from_slice(out),
                }
            }
        }
    });
}

avx2_or_baseline!(
    /// One row of [`layer_norm_backward`]: `out = dsum`, `dg += dy·x̂`, `db += dy`.
    fn norm_row_backward(
        dy: &[f32],
        xh: &[f32],
        gamma: &[f32],
        rstd: f32,
        out: &mut [f32],
        dg: &mut [f32],
        db: &mut [f32],
    ) => norm_row_backward_body
);

#[inline(always)]
fn norm_row_backward_body(
    dy: &[f32],
    xh: &[f32],
    gamma: &[f32],
    rstd: f32,
    out: &mut [f32],
    dg: &mut [f32],
    db: &mut [f32],
) {
    let w = gamma.len();
    let (dy, xh, out, dg, db) = (
        &dy[..w],
        &xh[..w],
        &mut out[..w],
        &mut dg[..w],
        &mut db[..w],
    );
    let s1 = sum64(w, |j| (dy[j] * gamma[j]) as f64);
    let s2 = sum64(w, |j| (dy[j] * gamma[j]) as f64 * xh[j] as f64);
    let (m1, m2) = (s1 / w as f64, s2 / w as f64);
    let rsd = rstd as f64;
    for j in 0..w {
        let dxh = (dy[j] * gamma[j]) as f64;
        out[j] = (rsd * (dxh - m1 - xh[j] as f64 * m2)) as f32;
    }
    for j in 0..w {
        dg[j] += dy[j] * xh[j];
        db[j] += dy[j];
    }
}

avx2_or_baseline!(
    /// `acc += x` element-wise.
    fn add_row(acc: &mut [f32], x: &[f32]) => add_row_body
);

#[inline(always)]
fn add_row_body(acc: &mut [f32], x: &[f32]) {
    let n = acc.len().min(x.len());
    let (acc, x) = (&mut acc[..n], &x[..n]);
    for j in 0..n {
        acc[j] += x[j];
    }
}

/// Column sums of `x` (rows `stride` apart, columns `col..col + width`) into partial sum `k`.
pub(crate) fn column_sums(
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
            add_row(acc, &x[r * stride + col..][..w]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args<'a>(gamma: &'a [f32], beta: &'a [f32], residual: Option<&'a [f32]>) -> NormArgs<'a> {
        NormArgs {
            width: gamma.len(),
            residual,
            drop: None,
            gamma,
            beta,
            eps: 1e-12,
        }
    }

    /// Splitting rows among threads must give each row exactly what one thread gives it, and
    /// the recording kernel must give exactly the plain kernel's output: every row normalised
    /// once, with its own residual, in any split (ragged ones too).
    #[test]
    fn norm_is_bit_identical_across_threads_and_with_a_record() {
        let width = 384;
        let gamma: Vec<f32> = (0..width).map(|j| 0.5 + (j % 7) as f32 * 0.1).collect();
        let beta: Vec<f32> = (0..width).map(|j| (j % 5) as f32 * 0.01 - 0.02).collect();
        // 101 rows: above `PARALLEL_MIN` and not a multiple of 2 or 3.
        let rows = 101;
        assert!(rows * width >= PARALLEL_MIN);
        let x: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.03 + (i / width) as f32)
            .collect();
        let residual: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) * 0.1)
            .collect();
        let a = args(&gamma, &beta, Some(&residual));
        let mut want = x.clone();
        layer_norm(&Pool::single(), &mut want, &a, None);
        // The reference itself normalises: `(y - beta) / gamma` has mean 0 and variance 1.
        for row in want.chunks(width) {
            let z: Vec<f64> = (0..width)
                .map(|j| ((row[j] - beta[j]) / gamma[j]) as f64)
                .collect();
            let mean = z.iter().sum::<f64>() / width as f64;
            let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / width as f64;
            assert!(
                mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-4,
                "{mean} {var}"
            );
        }
        for threads in [1, 2, 3, 4] {
            let pool = Pool::new(threads);
            let mut got = x.clone();
            let (mut h, mut r) = (vec![0.0; rows * width], vec![0.0; rows]);
            layer_norm(&pool, &mut got, &a, Some((&mut h, &mut r)));
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads with a record differ from one without"
            );
            for (j, (&y, &xh)) in got.iter().zip(&h).enumerate() {
                let c = j % width;
                assert!((y - (xh * gamma[c] + beta[c])).abs() <= 1e-6, "{j}");
            }
            let mut plain = x.clone();
            layer_norm(&pool, &mut plain, &a, None);
            assert!(plain
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    /// The backward pass against central differences of `Σ w·LN(x)` in f64.
    #[test]
    fn norm_backward_matches_finite_differences() {
        let gamma = [1.1f32, 0.9, 1.3, 0.7, 1.0, 1.2];
        let beta = [0.1f32, -0.2, 0.0, 0.3, 0.05, -0.1];
        let x = [0.3f32, -1.2, 2.0, 0.7, -0.1, 0.4];
        let wts = [0.5f32, -2.0, 1.0, 3.0, -0.7, 0.2];
        let f = |x: &[f64]| {
            let m = x.iter().sum::<f64>() / 6.0;
            let v = x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 6.0;
            let r = 1.0 / (v + 1e-12).sqrt();
            (0..6)
                .map(|j| ((x[j] - m) * r * gamma[j] as f64 + beta[j] as f64) * wts[j] as f64)
                .sum::<f64>()
        };
        let mut y = x.to_vec();
        let (mut h, mut r) = (vec![0.0; 6], vec![0.0; 1]);
        let a = args(&gamma, &beta, None);
        layer_norm(&Pool::single(), &mut y, &a, Some((&mut h, &mut r)));
        let mut buf = Vec::new();
        let parts = Partials::new(&mut buf, 1, 6, 2);
        let mut dsum = vec![0.0; 6];
        let pool = Pool::single();
        layer_norm_backward(&pool, 1, &wts, (&h, &r, &gamma), &mut dsum, None, &parts);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for i in 0..6 {
            let (mut a, mut b) = (x64.clone(), x64.clone());
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let fd = (f(&a) - f(&b)) / 2e-6;
            assert!(
                (fd - dsum[i] as f64).abs() < 1e-5,
                "{i}: {} vs {fd}",
                dsum[i]
            );
        }
        let mut dg = vec![0.0; 6];
        parts.add_into(0, &mut dg);
        for j in 0..6 {
            assert!((dg[j] - wts[j] * h[j]).abs() < 1e-7);
        }
    }
}
