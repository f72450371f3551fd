//! Row-parallel plumbing of the CPU ops: fixed row chunks spread over the [`Pool`], buffers
//! that tasks write in disjoint parts, and per-chunk partial sums.
//!
//! Every reduction over rows (bias, γ and β gradients, column sums) first sums each chunk in
//! row order into its own slot, then adds the chunks in chunk order. The chunking does not
//! depend on the thread count, so results are bit-identical for any number of threads.

use std::marker::PhantomData;

use crate::backend::Pool;

/// Rows per task (a few tens of KiB per operand: small enough to balance two to sixteen
/// threads on a 32 x 128 batch, large enough that a task's overhead does not show).
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

/// Per-chunk partial sums of up to three `width`-wide row reductions.
pub(crate) struct Partials<'a> {
    buf: SharedMut<'a>,
    pub(crate) width: usize,
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
    pub(crate) unsafe fn slot(&self, c: usize, k: usize) -> &'a mut [f32] {
        // SAFETY: forwarded contract.
        unsafe { self.buf.part((c * self.n + k) * self.width, self.width) }
    }

    /// Adds sum `k` of every chunk, in chunk order, into `dst`.
    pub(crate) fn add_into(&self, k: usize, dst: &mut [f32]) {
        let chunks = self.buf.len / (self.n * self.width).max(1);
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

/// Defines `fn $name(args)` running `$body(args)` compiled for AVX-512 (Rust 1.89+ builds)
/// or AVX2 + FMA when the CPU has them, and for the build's baseline (SSE2 on x86_64)
/// otherwise. The element-wise loops of the training ops are written to vectorize; this
/// gives them 16 or 8 lanes and vector integer multiplies (the dropout hash). (`$body` must
/// be `#[inline(always)]` so it is compiled inside each variant.)
macro_rules! avx2_or_baseline {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) => $body:path) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[cfg(bert_avx512)]
                #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
                unsafe fn avx512($($a: $t),*) {
                    $body($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($a: $t),*) {
                    $body($($a),*)
                }
                #[cfg(bert_avx512)]
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($a),*) };
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
pub(crate) fn sum64(n: usize, f: impl Fn(usize) -> f64) -> f64 {
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

/// Makes `v` hold at least `n` values (never shrinks: the next batch may be as large).
pub(crate) fn grow(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}
