//! Register-tile micro-kernels: `C[mr x nr] (op)= A_panel[kc x MR] · B_panel[kc x NR]`.
//!
//! B comes from `pack.rs`: for every `p < kc`, `NR` values (one per column) lie next
//! to each other, zero-padded past the matrix edge. A is addressed with two strides (`ars`
//! between rows, `aks` between k steps): a packed A panel (`ars = 1`, `aks = MR`) or, for
//! full row blocks of a row-major A, the matrix itself (`ars = lda`, `aks = 1`), which saves
//! packing A (5–10% of a MiniLM forward pass when A was packed). The inner loop is loads,
//! broadcasts and FMAs only. The tile shapes fill
//! the register file and divide BERT's widths (64, 384, 768, 1536, 3072) and row counts
//! (multiples of 8) without a ragged edge:
//!
//! | path | tile (MR x NR) | accumulators |
//! | --- | --- | --- |
//! | AVX-512F (`avx512`) | 8 x 48 | 24 zmm of 32 |
//! | AVX-512F, attention (`avx512::avx512_8x32`) | 8 x 32 | 16 zmm of 32 |
//! | AVX2+FMA | 4 x 24 | 12 ymm of 16 |
//! | AVX2+FMA, attention (`avx2_6x16`) | 6 x 16 | 12 ymm of 16 |
//! | NEON (`neon`, aarch64) | 8 x 12 | 24 of 32 |
//! | NEON, attention (`neon::neon_4x16`) | 4 x 16 | 16 of 32 |
//! | portable | 4 x 8 | autovectorized |
//!
//! The AVX-512 tiles are compiled only by Rust 1.89+ (stable AVX-512 intrinsics; the crate's
//! MSRV is older) and run where the CPU has AVX-512F (Intel server cores: two 512-bit FMA
//! units, twice the AVX2 tile's FLOPs per cycle). On Zen 4, 512-bit FMAs run as two 256-bit
//! halves, so either tile reaches the same peak there.
//!
//! A kernel writes a full tile with contiguous columns straight from registers; ragged
//! edges and strided `C` go through a small stack tile and [`store_tile`].

use super::Activation;

#[cfg(all(target_arch = "x86_64", bert_avx512))]
#[clippy::msrv = "1.89"]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;

/// Where a micro-kernel streams weights that later tiles will use into L2, alongside its
/// own work: three lines per k step from `next`, which advances `step` bytes per step. Only
/// the AVX-512 8 x 48 tile prefetches into L2 (see `gemm`'s `l2_prefetch`); the other
/// kernels ignore it. Addresses only: a prefetch never faults, so `next` may point past the
/// end of the weights.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Prefetch {
    pub next: usize,
    pub step: usize,
}

impl Prefetch {
    /// For kernels that do not prefetch into L2.
    pub const NONE: Prefetch = Prefetch { next: 0, step: 0 };
}

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

impl Epilogue {
    /// Whether the tile gets an activation (last K block, not identity).
    fn last_act(&self) -> bool {
        self.last && self.act != Activation::Identity
    }
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
        if ep.last_act() {
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
/// `a + i*ars + p*aks` is readable for `i < 4`, `p < kc`; `b` holds `kc * 8` floats; `C` as
/// in [`store_tile`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn portable(
    kc: usize,
    a: *const f32,
    ars: isize,
    aks: isize,
    b: *const f32,
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
    _pf: Prefetch,
) {
    const MR: usize = PORTABLE_MR;
    const NR: usize = PORTABLE_NR;
    // SAFETY: lengths by the caller's contract.
    let b = unsafe { std::slice::from_raw_parts(b, kc * NR) };
    let mut acc = [[0.0f32; NR]; MR];
    for (p, bp) in b.chunks_exact(NR).enumerate() {
        // SAFETY: `i < MR`, `p < kc`: readable by the caller's contract.
        let ap: [f32; MR] =
            std::array::from_fn(|i| unsafe { *a.offset(i as isize * ars + p as isize * aks) });
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
    use super::{store_tile, Epilogue, Prefetch};
    use std::arch::x86_64::*;

    /// A ragged or strided tile (`R` rows of `V` vectors): through a stack copy and
    /// [`store_tile`].
    ///
    /// # Safety
    /// As [`store_tile`] for `mr <= R`, `nr <= 8 * V`; AVX is available.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn store_acc<const R: usize, const V: usize>(
        acc: &[[__m256; V]; R],
        c: *mut f32,
        rs: isize,
        cs: isize,
        mr: usize,
        nr: usize,
        ep: &Epilogue,
    ) {
        let mut flat = [[0.0f32; 8]; 64];
        for (i, row) in acc.iter().enumerate() {
            for (v, &r) in row.iter().enumerate() {
                // SAFETY: `flat` holds 64 x 8 floats and `R * V <= 64` (checked below).
                unsafe { _mm256_storeu_ps(flat[i * V + v].as_mut_ptr(), r) };
            }
        }
        const { assert!(R * V <= 64) };
        // SAFETY: forwarded contract; `flat` is `R` rows of `8 * V` floats.
        unsafe { store_tile(flat.as_flattened(), 8 * V, c, rs, cs, mr, nr, ep) }
    }

    pub(crate) const AVX2_MR: usize = 4;
    pub(crate) const AVX2_NR: usize = 24;

    /// 4 x 24 tile, 12 ymm accumulators.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; `a + i*ars + p*aks` is readable for `i < 4`, `p < kc`;
    /// `b` holds `kc * 24` floats; `C` as in [`store_tile`].
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn avx2(
        kc: usize,
        a: *const f32,
        ars: isize,
        aks: isize,
        b: *const f32,
        c: *mut f32,
        rs: isize,
        cs: isize,
        mr: usize,
        nr: usize,
        ep: &Epilogue,
        _pf: Prefetch,
    ) {
        const MR: usize = AVX2_MR;
        const NR: usize = AVX2_NR;
        if cs == 1 {
            // C is usually far away (L3 or memory); fetch its lines while the FMAs run
            // instead of stalling in the epilogue.
            for i in 0..mr {
                let row = c.wrapping_offset(i as isize * rs);
                _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(NR - 1) as *const i8);
            }
        }
        let [mut c00, mut c01, mut c02, mut c10, mut c11, mut c12] = [_mm256_setzero_ps(); 6];
        let [mut c20, mut c21, mut c22, mut c30, mut c31, mut c32] = [_mm256_setzero_ps(); 6];
        // The k loop in assembly: 12 accumulators + 3 B vectors + 1 broadcast use all 16 ymm
        // registers, and LLVM's allocator sometimes spills one accumulator of the equivalent
        // intrinsics loop (a store-to-load chain that halves throughput).
        // Byte strides for the addressing modes: rows at a, a+ars, a+2·ars, a+3·ars.
        let (ars_b, aks_b) = (ars * 4, aks * 4);
        let ars3_b = 3 * ars_b;
        // SAFETY: the loop runs `kc >= 1` times (k = 0 never reaches a kernel) and reads
        // `a + i*ars + p*aks` (i < 4, p < kc) and `kc * 24` floats from `b`, all readable
        // by the caller's contract; `prefetcht0` does not fault past the end. It writes only the named
        // registers, touches no stack, and the CPU supports AVX2+FMA (caller's contract).
        unsafe {
            std::arch::asm!(
                "2:",
                "vmovups ymm12, ymmword ptr [{b}]",
                "vmovups ymm13, ymmword ptr [{b} + 32]",
                "vmovups ymm14, ymmword ptr [{b} + 64]",
                "vbroadcastss ymm15, dword ptr [{a}]",
                "vfmadd231ps ymm0, ymm15, ymm12",
                "vfmadd231ps ymm1, ymm15, ymm13",
                "vfmadd231ps ymm2, ymm15, ymm14",
                "vbroadcastss ymm15, dword ptr [{a} + {ars}]",
                "vfmadd231ps ymm3, ymm15, ymm12",
                "vfmadd231ps ymm4, ymm15, ymm13",
                "vfmadd231ps ymm5, ymm15, ymm14",
                // 96 k-steps (9 KiB, ~600 cycles) ahead: half a panel, running into the next
                // panel of the same K block (panels lie back to back), far enough to hide a
                // DRAM miss when few rows use each weight panel (batch 1, seq 16: the
                // weights stream from memory); at 768 bytes (1,16) was 4-6% slower. A step
                // advances 96 bytes, 1.5 lines, so one prefetch per step skipped every third
                // line: the second one (48 bytes on) covers it (another 3% at (1,16)).
                "prefetcht0 [{b} + 9216]",
                "prefetcht0 [{b} + 9264]",
                "vbroadcastss ymm15, dword ptr [{a} + {ars} * 2]",
                "vfmadd231ps ymm6, ymm15, ymm12",
                "vfmadd231ps ymm7, ymm15, ymm13",
                "vfmadd231ps ymm8, ymm15, ymm14",
                "vbroadcastss ymm15, dword ptr [{a} + {ars3}]",
                "vfmadd231ps ymm9, ymm15, ymm12",
                "vfmadd231ps ymm10, ymm15, ymm13",
                "vfmadd231ps ymm11, ymm15, ymm14",
                "add {a}, {aks}",
                "add {b}, 96",
                "dec {k}",
                "jnz 2b",
                a = inout(reg) a => _,
                b = inout(reg) b => _,
                k = inout(reg) kc => _,
                ars = in(reg) ars_b,
                ars3 = in(reg) ars3_b,
                aks = in(reg) aks_b,
                inout("ymm0") c00,
                inout("ymm1") c01,
                inout("ymm2") c02,
                inout("ymm3") c10,
                inout("ymm4") c11,
                inout("ymm5") c12,
                inout("ymm6") c20,
                inout("ymm7") c21,
                inout("ymm8") c22,
                inout("ymm9") c30,
                inout("ymm10") c31,
                inout("ymm11") c32,
                out("ymm12") _,
                out("ymm13") _,
                out("ymm14") _,
                out("ymm15") _,
                options(nostack, readonly),
            );
        }
        let acc = [
            [c00, c01, c02],
            [c10, c11, c12],
            [c20, c21, c22],
            [c30, c31, c32],
        ];
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
                    if ep.last_act() {
                        ep.act.apply(std::slice::from_raw_parts_mut(cr, NR));
                    }
                }
            }
            return;
        }
        // SAFETY: forwarded contract.
        unsafe { store_acc(&acc, c, rs, cs, mr, nr, ep) }
    }

    pub(crate) const AVX2_ATTN_MR: usize = 6;
    pub(crate) const AVX2_ATTN_NR: usize = 16;

    /// 6 x 16 tile, 12 ymm accumulators, for attention: head sizes 32 and 64 and sequence
    /// lengths that are multiples of 16 fill it exactly, where the 24-column tile pads a head
    /// of 32 to 48 (P·V a third wasted) and keys 128 to 144.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; `a + i*ars + p*aks` is readable for `i < 6`, `p < kc`;
    /// `b` holds `kc * 16` floats; `C` as in [`store_tile`].
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn avx2_6x16(
        kc: usize,
        a: *const f32,
        ars: isize,
        aks: isize,
        b: *const f32,
        c: *mut f32,
        rs: isize,
        cs: isize,
        mr: usize,
        nr: usize,
        ep: &Epilogue,
        _pf: Prefetch,
    ) {
        const MR: usize = AVX2_ATTN_MR;
        const NR: usize = AVX2_ATTN_NR;
        let [mut c00, mut c01, mut c10, mut c11, mut c20, mut c21] = [_mm256_setzero_ps(); 6];
        let [mut c30, mut c31, mut c40, mut c41, mut c50, mut c51] = [_mm256_setzero_ps(); 6];
        // As in `avx2`: 12 accumulators + 2 B vectors + 1 broadcast, in assembly so that no
        // accumulator is spilled. Rows at a + {0, 1, 2, 3, 4, 5}·ars.
        let (ars_b, aks_b) = (ars * 4, aks * 4);
        let (ars3_b, ars5_b) = (3 * ars_b, 5 * ars_b);
        // SAFETY: the loop runs `kc >= 1` times and reads `a + i*ars + p*aks` (i < 6,
        // p < kc) and `kc * 16` floats from `b`, all readable by the caller's contract. It
        // writes only the named registers, touches no stack, and the CPU supports AVX2+FMA.
        unsafe {
            std::arch::asm!(
                "2:",
                "vmovups ymm12, ymmword ptr [{b}]",
                "vmovups ymm13, ymmword ptr [{b} + 32]",
                "vbroadcastss ymm14, dword ptr [{a}]",
                "vfmadd231ps ymm0, ymm14, ymm12",
                "vfmadd231ps ymm1, ymm14, ymm13",
                "vbroadcastss ymm15, dword ptr [{a} + {ars}]",
                "vfmadd231ps ymm2, ymm15, ymm12",
                "vfmadd231ps ymm3, ymm15, ymm13",
                "vbroadcastss ymm14, dword ptr [{a} + {ars} * 2]",
                "vfmadd231ps ymm4, ymm14, ymm12",
                "vfmadd231ps ymm5, ymm14, ymm13",
                "vbroadcastss ymm15, dword ptr [{a} + {ars3}]",
                "vfmadd231ps ymm6, ymm15, ymm12",
                "vfmadd231ps ymm7, ymm15, ymm13",
                "vbroadcastss ymm14, dword ptr [{a} + {ars} * 4]",
                "vfmadd231ps ymm8, ymm14, ymm12",
                "vfmadd231ps ymm9, ymm14, ymm13",
                "vbroadcastss ymm15, dword ptr [{a} + {ars5}]",
                "vfmadd231ps ymm10, ymm15, ymm12",
                "vfmadd231ps ymm11, ymm15, ymm13",
                "add {a}, {aks}",
                "add {b}, 64",
                "dec {k}",
                "jnz 2b",
                a = inout(reg) a => _,
                b = inout(reg) b => _,
                k = inout(reg) kc => _,
                ars = in(reg) ars_b,
                ars3 = in(reg) ars3_b,
                ars5 = in(reg) ars5_b,
                aks = in(reg) aks_b,
                inout("ymm0") c00,
                inout("ymm1") c01,
                inout("ymm2") c10,
                inout("ymm3") c11,
                inout("ymm4") c20,
                inout("ymm5") c21,
                inout("ymm6") c30,
                inout("ymm7") c31,
                inout("ymm8") c40,
                inout("ymm9") c41,
                inout("ymm10") c50,
                inout("ymm11") c51,
                out("ymm12") _,
                out("ymm13") _,
                out("ymm14") _,
                out("ymm15") _,
                options(nostack, readonly),
            );
        }
        let acc = [
            [c00, c01],
            [c10, c11],
            [c20, c21],
            [c30, c31],
            [c40, c41],
            [c50, c51],
        ];
        let alpha = _mm256_set1_ps(ep.alpha);
        // The attention's tiles: first and last block, beta 0, no activation.
        if mr == MR && nr == NR && cs == 1 && ep.first && ep.beta == 0.0 && !ep.last_act() {
            for (i, row) in acc.iter().enumerate() {
                // SAFETY: a full tile with unit column stride: `NR` contiguous floats per row
                // (caller's contract), and `bias` has `NR` floats when not null.
                unsafe {
                    let cr = c.offset(i as isize * rs);
                    for (v, &r) in row.iter().enumerate() {
                        let mut x = _mm256_mul_ps(alpha, r);
                        if !ep.bias.is_null() {
                            x = _mm256_add_ps(x, _mm256_loadu_ps(ep.bias.add(8 * v)));
                        }
                        _mm256_storeu_ps(cr.add(8 * v), x);
                    }
                }
            }
            return;
        }
        // SAFETY: forwarded contract.
        unsafe { store_acc(&acc, c, rs, cs, mr, nr, ep) }
    }
}
