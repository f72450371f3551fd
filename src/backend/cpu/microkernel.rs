//! Register-tile micro-kernels: `C[mr x nr] (op)= A_panel[kc x MR] · B_panel[kc x NR]`.
//!
//! Panels come from `gemm.rs`'s packing: for every `p < kc`, `MR` values of A (one per row)
//! and then `NR` values of B (one per column) lie next to each other, zero-padded past the
//! matrix edge, so the inner loop is loads, broadcasts and FMAs only. The tile shapes fill
//! the register file and divide BERT's widths (64, 384, 768, 1536, 3072) and row counts
//! (multiples of 8) without a ragged edge:
//!
//! | path | tile (MR x NR) | accumulators |
//! | --- | --- | --- |
//! | AVX2+FMA | 4 x 24 | 12 ymm of 16 |
//! | portable | 4 x 8 | autovectorized |
//!
//! There is no AVX-512 kernel yet: the crate's MSRV (1.80) predates stable AVX-512
//! intrinsics (1.89), and on Zen 4 (our target) 512-bit FMAs run as two 256-bit halves, so
//! the 4 x 24 AVX2 tile already reaches the same FLOP peak. An 8 x 48 zmm tile is the
//! natural next step for Intel cores with two 512-bit FMA units once the MSRV allows it.
//!
//! A kernel writes a full tile with contiguous columns straight from registers; ragged
//! edges and strided `C` go through a small stack tile and [`store_tile`].

use super::Activation;

/// What to do with the accumulated tile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epilogue {
    pub alpha: f32,
    /// Used only on the first K block; 0 means `C` is not read (BLAS semantics).
    pub beta: f32,
    /// First K block: `C = alpha·acc + beta·C (+ bias)`; later blocks: `C += alpha·acc`.
    pub first: bool,
    /// Last K block: apply `act` to the finished tile.
    pub last: bool,
    /// `bias[j]` for the tile's columns, or null.
    pub bias: *const f32,
    pub act: Activation,
}

/// The portable epilogue: `acc` is an `mr x nr` tile with row stride `ldacc`.
///
/// # Safety
/// `c + i*rs + j*cs` must be valid for reads and writes for `i < mr`, `j < nr`, and `bias`
/// (when not null) for `nr` reads.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn store_tile(
    acc: &[f32],
    ldacc: usize,
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
) {
    for i in 0..mr {
        for j in 0..nr {
            // SAFETY: in bounds by the caller's contract.
            unsafe {
                let cp = c.offset(i as isize * rs + j as isize * cs);
                let mut v = ep.alpha * acc[i * ldacc + j];
                if ep.first {
                    if ep.beta != 0.0 {
                        v += ep.beta * *cp;
                    }
                    if !ep.bias.is_null() {
                        v += *ep.bias.add(j);
                    }
                } else {
                    v += *cp;
                }
                *cp = v;
            }
        }
        if ep.last && ep.act != Activation::Identity {
            for j in 0..nr {
                // SAFETY: as above; a one-element slice of `C`, which nothing else borrows.
                let v = unsafe {
                    std::slice::from_raw_parts_mut(c.offset(i as isize * rs + j as isize * cs), 1)
                };
                ep.act.apply(v);
            }
        }
    }
}

pub(crate) const PORTABLE_MR: usize = 4;
pub(crate) const PORTABLE_NR: usize = 8;

/// # Safety
/// `a` holds `kc * 4` floats, `b` holds `kc * 8`, and `C` as in [`store_tile`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn portable(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
) {
    const MR: usize = PORTABLE_MR;
    const NR: usize = PORTABLE_NR;
    // SAFETY: lengths by the caller's contract.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, kc * MR),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    let mut acc = [[0.0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += ap[i] * bp[j];
            }
        }
    }
    let flat: [f32; MR * NR] = std::array::from_fn(|x| acc[x / NR][x % NR]);
    // SAFETY: forwarded contract.
    unsafe { store_tile(&flat, NR, c, rs, cs, mr, nr, ep) }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::{store_tile, Activation, Epilogue};
    use std::arch::x86_64::*;

    pub(crate) const AVX2_MR: usize = 4;
    pub(crate) const AVX2_NR: usize = 24;

    /// 4 x 24 tile, 12 ymm accumulators.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; `a` holds `kc * 4` floats, `b` holds `kc * 24`, and `C`
    /// as in [`store_tile`].
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn avx2(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs: isize,
        cs: isize,
        mr: usize,
        nr: usize,
        ep: &Epilogue,
    ) {
        const MR: usize = AVX2_MR;
        const NR: usize = AVX2_NR;
        let mut acc = [[_mm256_setzero_ps(); 3]; MR];
        if cs == 1 {
            // C is usually far away (L3 or memory); fetch its lines while the FMAs run
            // instead of stalling in the epilogue.
            for i in 0..mr {
                let row = c.wrapping_offset(i as isize * rs);
                _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(NR - 1) as *const i8);
            }
        }
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            // SAFETY: `p < kc`, so these reads are inside the panels.
            unsafe {
                let b0 = _mm256_loadu_ps(b);
                let b1 = _mm256_loadu_ps(b.add(8));
                let b2 = _mm256_loadu_ps(b.add(16));
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(NR * 8) as *const i8);
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*a.add(i));
                    row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
                    row[2] = _mm256_fmadd_ps(ai, b2, row[2]);
                }
                a = a.add(MR);
                b = b.add(NR);
            }
        }
        let alpha = _mm256_set1_ps(ep.alpha);
        if mr == MR && nr == NR && cs == 1 {
            for (i, row) in acc.iter().enumerate() {
                // SAFETY: a full tile with unit column stride: `NR` contiguous floats per row
                // (caller's contract), and `bias` has `NR` floats when not null.
                unsafe {
                    let cr = c.offset(i as isize * rs);
                    for (v, &r) in row.iter().enumerate() {
                        let cp = cr.add(8 * v);
                        let mut x = _mm256_mul_ps(alpha, r);
                        if ep.first {
                            if ep.beta != 0.0 {
                                x = _mm256_fmadd_ps(
                                    _mm256_set1_ps(ep.beta),
                                    _mm256_loadu_ps(cp),
                                    x,
                                );
                            }
                            if !ep.bias.is_null() {
                                x = _mm256_add_ps(x, _mm256_loadu_ps(ep.bias.add(8 * v)));
                            }
                        } else {
                            x = _mm256_add_ps(x, _mm256_loadu_ps(cp));
                        }
                        _mm256_storeu_ps(cp, x);
                    }
                    if ep.last && ep.act != Activation::Identity {
                        ep.act.apply(std::slice::from_raw_parts_mut(cr, NR));
                    }
                }
            }
            return;
        }
        let mut flat = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            for (v, &r) in row.iter().enumerate() {
                // SAFETY: `flat` has room for `MR * NR` floats.
                unsafe { _mm256_storeu_ps(flat.as_mut_ptr().add(i * NR + 8 * v), r) };
            }
        }
        // SAFETY: forwarded contract.
        unsafe { store_tile(&flat, NR, c, rs, cs, mr, nr, ep) }
    }
}
