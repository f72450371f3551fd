//! f16 weights: converted to f32 while the GEMM packs each block of B, so an f16 kernel is
//! never expanded in memory as a whole (only one `KC x columns` block per thread at a time).

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
    let f16c =
        std::arch::is_x86_feature_detected!("f16c") && std::arch::is_x86_feature_detected!("avx");
    for (jp, panel) in dst.chunks_exact_mut(kc * nr).take(panels).enumerate() {
        let jb = j0 + jp * nr;
        let w = nr.min(n.saturating_sub(jb));
        for p in 0..kc {
            let row = &mut panel[p * nr..p * nr + nr];
            let src = &bytes[((p0 + p) * n + jb) * 2..][..w * 2];
            #[cfg(target_arch = "x86_64")]
            if f16c {
                // SAFETY: F16C and AVX were detected above; `src` has `2 · w` bytes and `row`
                // `w` floats or more.
                unsafe { x86::convert(src, &mut row[..w]) };
                row[w..].fill(0.0);
                continue;
            }
            convert_portable(src, &mut row[..w]);
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

    /// F16C conversion, 8 values per `vcvtph2ps`.
    ///
    /// # Safety
    /// The CPU has F16C and AVX; `src.len() >= 2 · dst.len()`.
    #[target_feature(enable = "avx,f16c")]
    pub(crate) unsafe fn convert(src: &[u8], dst: &mut [f32]) {
        let n = dst.len();
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: 16 bytes at `2i` and 8 floats at `i` are in bounds (`i + 8 <= n`).
            unsafe {
                let h = _mm_loadu_si128(src.as_ptr().add(2 * i) as *const __m128i);
                _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
            }
            i += 8;
        }
        super::convert_portable(&src[2 * i..], &mut dst[i..]);
    }
}
