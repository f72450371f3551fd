//! f16 weights: converted to f32 panel by panel while the GEMM runs, so an f16 kernel is
//! never expanded in memory as a whole: each thread holds one `KC x NR` f32 panel (18 KiB for
//! AVX2), converted just before the micro-kernel reads it and still in L1 when it does.
//!
//! The conversion is exact (every f16 is an f32): `vcvtph2ps` (F16C) on x86_64, `fcvtl`
//! (base aarch64, no `fp16` extension needed) on ARM, the `half` crate elsewhere. The
//! products then run in f32 on the f32 micro-kernel, so an f16 layer gives the bits of an
//! f32 layer holding the rounded weights. ARM's FP16 arithmetic (`fp16`, `fhm`) is not
//! used: f16 products or f16 accumulators would give up that identity and 13 bits of every
//! product for a conversion that costs two instructions per eight weights.

/// As `gemm::pack_b` for a row-major `[k, n]` f16 matrix given as little-endian bytes: packs
/// K range `p0..p0+kc`, columns `j0..j0+ncols` into `nr`-column f32 panels, zero past `n`.
///
/// `bytes` holds at least `k · n · 2` bytes (checked when the layer was built).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_b(
    dst: &mut [f32],
    bytes: &[u8],
    n: usize,
    p0: usize,
    kc: usize,
    j0: usize,
    ncols: usize,
    nr: usize,
) {
    let panels = ncols.div_ceil(nr);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("f16c") && std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: F16C and AVX were detected; the slices are as `x86::pack_b` requires (the
        // caller's contract).
        unsafe { x86::pack_b(dst, bytes, n, p0, kc, j0, panels, nr) };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if !cfg!(bert_portable) {
        neon::pack_b(dst, bytes, n, p0, kc, j0, panels, nr);
        return;
    }
    for (jp, panel) in dst.chunks_exact_mut(kc * nr).take(panels).enumerate() {
        let jb = j0 + jp * nr;
        let w = nr.min(n.saturating_sub(jb));
        for p in 0..kc {
            let row = &mut panel[p * nr..p * nr + nr];
            convert_portable(&bytes[((p0 + p) * n + jb) * 2..][..w * 2], &mut row[..w]);
            row[w..].fill(0.0);
        }
    }
}

/// `dst[i] = f16(src[2i..2i+2])` with the `half` crate (exact: every f16 is an f32).
pub(crate) fn convert_portable(src: &[u8], dst: &mut [f32]) {
    for (d, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    /// `pack_b` with F16C, 8 values per `vcvtph2ps`.
    ///
    /// # Safety
    /// The CPU has F16C and AVX; `dst` holds `panels` panels of `kc · nr` floats; `bytes`
    /// holds the rows `p0..p0+kc` of a `[k, n]` f16 matrix; `j0 + (panels − 1) · nr < n`.
    #[target_feature(enable = "avx,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn pack_b(
        dst: &mut [f32],
        bytes: &[u8],
        n: usize,
        p0: usize,
        kc: usize,
        j0: usize,
        panels: usize,
        nr: usize,
    ) {
        for (jp, panel) in dst.chunks_exact_mut(kc * nr).take(panels).enumerate() {
            let jb = j0 + jp * nr;
            let w = nr.min(n - jb);
            let body = w / 8 * 8;
            for p in 0..kc {
                let row = &mut panel[p * nr..p * nr + nr];
                let src = &bytes[((p0 + p) * n + jb) * 2..][..w * 2];
                for i in (0..body).step_by(8) {
                    // SAFETY: 16 bytes at `2i` of `src` and 8 floats at `i` of `row` are in
                    // bounds (`i + 8 <= w <= nr`).
                    unsafe {
                        let h = _mm_loadu_si128(src.as_ptr().add(2 * i) as *const __m128i);
                        _mm256_storeu_ps(row.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
                    }
                }
                super::convert_portable(&src[2 * body..], &mut row[body..w]);
                row[w..].fill(0.0);
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
pub(crate) mod neon {
    use std::arch::aarch64::*;

    /// Eight f16 values (16 little-endian bytes at `src`) as two f32 vectors, with
    /// `fcvtl`/`fcvtl2`, exact like every f16 -> f32 conversion.
    ///
    /// # Safety
    /// `src .. src + 16` is readable.
    #[inline(always)]
    unsafe fn convert8(src: *const u8) -> (float32x4_t, float32x4_t) {
        // SAFETY: 16 readable bytes (caller's contract); NEON is in the aarch64 base
        // architecture, and so are `fcvtl`/`fcvtl2`, which only read and write the named
        // registers.
        unsafe {
            let h = vld1q_u8(src);
            let (lo, hi): (float32x4_t, float32x4_t);
            std::arch::asm!(
                "fcvtl {lo:v}.4s, {h:v}.4h",
                "fcvtl2 {hi:v}.4s, {h:v}.8h",
                h = in(vreg) h,
                lo = out(vreg) lo,
                hi = out(vreg) hi,
                options(pure, nomem, nostack, preserves_flags),
            );
            (lo, hi)
        }
    }

    /// `super::pack_b` with NEON, 8 values per `fcvtl` pair: `dst` holds `panels` panels of
    /// `kc · nr` floats; `bytes` holds the rows `p0..p0+kc` of a `[k, n]` f16 matrix;
    /// `j0 + (panels − 1) · nr < n` (the caller's contract, checked by the slicing).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pack_b(
        dst: &mut [f32],
        bytes: &[u8],
        n: usize,
        p0: usize,
        kc: usize,
        j0: usize,
        panels: usize,
        nr: usize,
    ) {
        for (jp, panel) in dst.chunks_exact_mut(kc * nr).take(panels).enumerate() {
            let jb = j0 + jp * nr;
            let w = nr.min(n - jb);
            let body = w / 8 * 8;
            for p in 0..kc {
                let row = &mut panel[p * nr..p * nr + nr];
                let src = &bytes[((p0 + p) * n + jb) * 2..][..w * 2];
                for i in (0..body).step_by(8) {
                    // SAFETY: 16 bytes at `2i` of `src` and 8 floats at `i` of `row` are in
                    // bounds (`i + 8 <= w <= nr`).
                    unsafe {
                        let (lo, hi) = convert8(src.as_ptr().add(2 * i));
                        vst1q_f32(row.as_mut_ptr().add(i), lo);
                        vst1q_f32(row.as_mut_ptr().add(i + 4), hi);
                    }
                }
                super::convert_portable(&src[2 * body..], &mut row[body..w]);
                row[w..].fill(0.0);
            }
        }
    }
}
