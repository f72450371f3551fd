//! AVX-512F micro-kernels (16 floats per zmm register, 32 registers).
//!
//! Intel server cores (Skylake-SP and later: Ice Lake, Sapphire/Emerald/Granite Rapids) have two
//! 512-bit FMA units, so these tiles double the AVX2 kernels' FLOPs per cycle there; ONNX
//! Runtime's MLAS switches to its AVX-512 SGEMM on the same CPUs.
//!
//! | kernel | tile (MR x NR) | accumulators | used for |
//! | --- | --- | --- | --- |
//! | [`avx512`] | 8 x 48 | 24 zmm | dense layers: 8 divides every row count BERT batches make (multiples of 8) and 48 every width (384, 768, 1536, 3072) |
//! | [`avx512_8x32`] | 8 x 32 | 16 zmm | attention: heads of 32 (one panel) and 64, keys in multiples of 32 |
//! | [`avx512_16x16`] | 16 x 16 | 16 zmm | dense layers of at most 16 rows with weights of 4 MB or more (they stream from memory): reads each weight once |
//!
//! The k loops are assembly, for their addressing (see [`avx512`]); the epilogue is shared
//! intrinsics. Ragged columns are stored with masks, so only a strided `C` goes through
//! [`store_tile`].
//!
//! Compiled only by Rust 1.89+ (`cfg(bert_avx512)` from `build.rs`), where AVX-512 intrinsics
//! are stable; chosen at run time only where the CPU reports AVX-512F.

use super::{store_tile, Epilogue, Prefetch};
use std::arch::x86_64::*;

pub(crate) const AVX512_MR: usize = 8;
pub(crate) const AVX512_NR: usize = 48;
pub(crate) const AVX512_ATTN_MR: usize = 8;
pub(crate) const AVX512_ATTN_NR: usize = 32;

pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// 8 x 48 tile for the dense layers. Besides its own B panel it streams `pf` into L2 (three
/// lines per step, see [`Prefetch`]).
///
/// # Safety
/// The CPU supports AVX-512F; `a + i*ars + p*aks` is readable for `i < 8`, `p < kc`; `b`
/// holds `kc * 48` floats; `C` as in [`store_tile`].
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx512(
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
    pf: Prefetch,
) {
    prefetch_c::<3>(c, rs, cs, mr);
    let z = _mm512_setzero_ps();
    let [mut c00, mut c01, mut c02, mut c10, mut c11, mut c12] = [z; 6];
    let [mut c20, mut c21, mut c22, mut c30, mut c31, mut c32] = [z; 6];
    let [mut c40, mut c41, mut c42, mut c50, mut c51, mut c52] = [z; 6];
    let [mut c60, mut c61, mut c62, mut c70, mut c71, mut c72] = [z; 6];
    // The k loop in assembly, for its addressing: rows at a + {0, 1, 2, 3}·ars and
    // a4 + {0, 1, 2, 3}·ars, so a step costs two pointer adds. The same loop in intrinsics got
    // a chain of seven dependent adds per step, scalar uops that compete with the FMAs for
    // the two ports that execute them.
    let (ars_b, aks_b) = (ars * 4, aks * 4);
    let ars3_b = 3 * ars_b;
    let a4 = a.wrapping_offset(4 * ars);
    // SAFETY: the loop runs `kc >= 1` times (k = 0 never reaches a kernel) and reads
    // `a + i*ars + p*aks` (i < 8, p < kc) and `kc * 48` floats from `b`, all readable by the
    // caller's contract; its prefetches do not fault, whatever the address. It writes only
    // the named registers, touches no stack, and the CPU supports AVX-512F (caller's
    // contract).
    unsafe {
        std::arch::asm!(
            "2:",
            "vmovups zmm24, zmmword ptr [{b}]",
            "vmovups zmm25, zmmword ptr [{b} + 64]",
            "vmovups zmm26, zmmword ptr [{b} + 128]",
            "vbroadcastss zmm27, dword ptr [{a}]",
            "vfmadd231ps zmm0, zmm27, zmm24",
            "vfmadd231ps zmm1, zmm27, zmm25",
            "vfmadd231ps zmm2, zmm27, zmm26",
            "vbroadcastss zmm28, dword ptr [{a} + {ars}]",
            "vfmadd231ps zmm3, zmm28, zmm24",
            "vfmadd231ps zmm4, zmm28, zmm25",
            "vfmadd231ps zmm5, zmm28, zmm26",
            // B, the weights: into L1 48 steps (9 KiB) ahead, three lines (one step) of
            // each; into L2 where the caller's plan says (`pf`, the panels ahead, spread
            // over the A panels that share this B panel).
            "prefetcht0 [{b} + 9216]",
            "prefetcht0 [{b} + 9280]",
            "prefetcht0 [{b} + 9344]",
            "prefetcht1 [{pf}]",
            "prefetcht1 [{pf} + 64]",
            "prefetcht1 [{pf} + 128]",
            "vbroadcastss zmm29, dword ptr [{a} + {ars} * 2]",
            "vfmadd231ps zmm6, zmm29, zmm24",
            "vfmadd231ps zmm7, zmm29, zmm25",
            "vfmadd231ps zmm8, zmm29, zmm26",
            "vbroadcastss zmm30, dword ptr [{a} + {ars3}]",
            "vfmadd231ps zmm9, zmm30, zmm24",
            "vfmadd231ps zmm10, zmm30, zmm25",
            "vfmadd231ps zmm11, zmm30, zmm26",
            "vbroadcastss zmm27, dword ptr [{a4}]",
            "vfmadd231ps zmm12, zmm27, zmm24",
            "vfmadd231ps zmm13, zmm27, zmm25",
            "vfmadd231ps zmm14, zmm27, zmm26",
            "vbroadcastss zmm28, dword ptr [{a4} + {ars}]",
            "vfmadd231ps zmm15, zmm28, zmm24",
            "vfmadd231ps zmm16, zmm28, zmm25",
            "vfmadd231ps zmm17, zmm28, zmm26",
            "vbroadcastss zmm29, dword ptr [{a4} + {ars} * 2]",
            "vfmadd231ps zmm18, zmm29, zmm24",
            "vfmadd231ps zmm19, zmm29, zmm25",
            "vfmadd231ps zmm20, zmm29, zmm26",
            "vbroadcastss zmm30, dword ptr [{a4} + {ars3}]",
            "vfmadd231ps zmm21, zmm30, zmm24",
            "vfmadd231ps zmm22, zmm30, zmm25",
            "vfmadd231ps zmm23, zmm30, zmm26",
            "add {a}, {aks}",
            "add {a4}, {aks}",
            "add {b}, 192",
            "add {pf}, {pfs}",
            "dec {k}",
            "jnz 2b",
            a = inout(reg) a => _,
            a4 = inout(reg) a4 => _,
            b = inout(reg) b => _,
            pf = inout(reg) pf.next => _,
            pfs = in(reg) pf.step,
            k = inout(reg) kc => _,
            ars = in(reg) ars_b,
            ars3 = in(reg) ars3_b,
            aks = in(reg) aks_b,
            inout("zmm0") c00,
            inout("zmm1") c01,
            inout("zmm2") c02,
            inout("zmm3") c10,
            inout("zmm4") c11,
            inout("zmm5") c12,
            inout("zmm6") c20,
            inout("zmm7") c21,
            inout("zmm8") c22,
            inout("zmm9") c30,
            inout("zmm10") c31,
            inout("zmm11") c32,
            inout("zmm12") c40,
            inout("zmm13") c41,
            inout("zmm14") c42,
            inout("zmm15") c50,
            inout("zmm16") c51,
            inout("zmm17") c52,
            inout("zmm18") c60,
            inout("zmm19") c61,
            inout("zmm20") c62,
            inout("zmm21") c70,
            inout("zmm22") c71,
            inout("zmm23") c72,
            out("zmm24") _,
            out("zmm25") _,
            out("zmm26") _,
            out("zmm27") _,
            out("zmm28") _,
            out("zmm29") _,
            out("zmm30") _,
            options(nostack, readonly),
        );
    }
    let acc = [
        [c00, c01, c02],
        [c10, c11, c12],
        [c20, c21, c22],
        [c30, c31, c32],
        [c40, c41, c42],
        [c50, c51, c52],
        [c60, c61, c62],
        [c70, c71, c72],
    ];
    // SAFETY: forwarded contract.
    unsafe { store(&acc, c, rs, cs, mr, nr, ep) }
}

/// 8 x 32 tile for attention's short products.
///
/// # Safety
/// As [`avx512`] with `b` holding `kc * 32` floats.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx512_8x32(
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
    let z = _mm512_setzero_ps();
    let [mut c00, mut c01, mut c10, mut c11, mut c20, mut c21, mut c30, mut c31] = [z; 8];
    let [mut c40, mut c41, mut c50, mut c51, mut c60, mut c61, mut c70, mut c71] = [z; 8];
    // As in `avx512`, two vectors per row. No B prefetch: attention's panels were packed
    // just before (L1/L2), and a C prefetch would fetch the score tile that is in L1 anyway.
    let (ars_b, aks_b) = (ars * 4, aks * 4);
    let ars3_b = 3 * ars_b;
    let a4 = a.wrapping_offset(4 * ars);
    // SAFETY: the loop runs `kc >= 1` times and reads `a + i*ars + p*aks` (i < 8, p < kc)
    // and `kc * 32` floats from `b`, all readable by the caller's contract. It writes only the
    // named registers, touches no stack, and the CPU supports AVX-512F.
    unsafe {
        std::arch::asm!(
            "2:",
            "vmovups zmm16, zmmword ptr [{b}]",
            "vmovups zmm17, zmmword ptr [{b} + 64]",
            "vbroadcastss zmm18, dword ptr [{a}]",
            "vfmadd231ps zmm0, zmm18, zmm16",
            "vfmadd231ps zmm1, zmm18, zmm17",
            "vbroadcastss zmm19, dword ptr [{a} + {ars}]",
            "vfmadd231ps zmm2, zmm19, zmm16",
            "vfmadd231ps zmm3, zmm19, zmm17",
            "vbroadcastss zmm20, dword ptr [{a} + {ars} * 2]",
            "vfmadd231ps zmm4, zmm20, zmm16",
            "vfmadd231ps zmm5, zmm20, zmm17",
            "vbroadcastss zmm21, dword ptr [{a} + {ars3}]",
            "vfmadd231ps zmm6, zmm21, zmm16",
            "vfmadd231ps zmm7, zmm21, zmm17",
            "vbroadcastss zmm18, dword ptr [{a4}]",
            "vfmadd231ps zmm8, zmm18, zmm16",
            "vfmadd231ps zmm9, zmm18, zmm17",
            "vbroadcastss zmm19, dword ptr [{a4} + {ars}]",
            "vfmadd231ps zmm10, zmm19, zmm16",
            "vfmadd231ps zmm11, zmm19, zmm17",
            "vbroadcastss zmm20, dword ptr [{a4} + {ars} * 2]",
            "vfmadd231ps zmm12, zmm20, zmm16",
            "vfmadd231ps zmm13, zmm20, zmm17",
            "vbroadcastss zmm21, dword ptr [{a4} + {ars3}]",
            "vfmadd231ps zmm14, zmm21, zmm16",
            "vfmadd231ps zmm15, zmm21, zmm17",
            "add {a}, {aks}",
            "add {a4}, {aks}",
            "add {b}, 128",
            "dec {k}",
            "jnz 2b",
            a = inout(reg) a => _,
            a4 = inout(reg) a4 => _,
            b = inout(reg) b => _,
            k = inout(reg) kc => _,
            ars = in(reg) ars_b,
            ars3 = in(reg) ars3_b,
            aks = in(reg) aks_b,
            inout("zmm0") c00,
            inout("zmm1") c01,
            inout("zmm2") c10,
            inout("zmm3") c11,
            inout("zmm4") c20,
            inout("zmm5") c21,
            inout("zmm6") c30,
            inout("zmm7") c31,
            inout("zmm8") c40,
            inout("zmm9") c41,
            inout("zmm10") c50,
            inout("zmm11") c51,
            inout("zmm12") c60,
            inout("zmm13") c61,
            inout("zmm14") c70,
            inout("zmm15") c71,
            out("zmm16") _,
            out("zmm17") _,
            out("zmm18") _,
            out("zmm19") _,
            out("zmm20") _,
            out("zmm21") _,
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
        [c60, c61],
        [c70, c71],
    ];
    // SAFETY: forwarded contract.
    unsafe { store(&acc, c, rs, cs, mr, nr, ep) }
}

/// 16 x 16 tile for products of at most 16 rows whose weights stream from L3 or memory
/// (a sentence of up to 16 tokens): every 16 columns of a 48-wide B panel are one call, so
/// each B line is read once, by one call, at one line per step. With the 8 x 48 tile such a
/// product reads every panel twice, the first pass at three lines per step, which outruns
/// what one core streams from L3, and the second from L1 while memory idles.
///
/// `a` is a packed 16-row panel (`a + p * 16 + i`); `b` the tile's first column in its panel,
/// whose rows are `bks` floats apart; `pf` the lines to ask L2 for, one per step.
///
/// # Safety
/// The CPU supports AVX-512F; `a` holds `kc * 16` floats; `b + p * bks + j` is readable for
/// `p < kc`, `j < 16`; `C` as in [`store_tile`] with `mr <= 16`, `nr <= 16`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx512_16x16(
    kc: usize,
    a: *const f32,
    b: *const f32,
    bks: usize,
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
    pf: Prefetch,
) {
    prefetch_c::<1>(c, rs, cs, mr);
    let mut acc = [[_mm512_setzero_ps()]; 16];
    // SAFETY: the loop runs `kc >= 1` times and reads `kc * 16` floats from `a` and 16 floats
    // at each of `b + p * bks` (p < kc), readable by the caller's contract; prefetches do not
    // fault. It writes only the named registers, touches no stack, and the CPU supports
    // AVX-512F (caller's contract).
    unsafe {
        std::arch::asm!(
            "2:",
            "vmovups zmm16, zmmword ptr [{b}]",
            "vfmadd231ps zmm0, zmm16, dword ptr [{a} + 0]{{1to16}}",
            "vfmadd231ps zmm1, zmm16, dword ptr [{a} + 4]{{1to16}}",
            "vfmadd231ps zmm2, zmm16, dword ptr [{a} + 8]{{1to16}}",
            "vfmadd231ps zmm3, zmm16, dword ptr [{a} + 12]{{1to16}}",
            "vfmadd231ps zmm4, zmm16, dword ptr [{a} + 16]{{1to16}}",
            "vfmadd231ps zmm5, zmm16, dword ptr [{a} + 20]{{1to16}}",
            "vfmadd231ps zmm6, zmm16, dword ptr [{a} + 24]{{1to16}}",
            "vfmadd231ps zmm7, zmm16, dword ptr [{a} + 28]{{1to16}}",
            "vfmadd231ps zmm8, zmm16, dword ptr [{a} + 32]{{1to16}}",
            "vfmadd231ps zmm9, zmm16, dword ptr [{a} + 36]{{1to16}}",
            "vfmadd231ps zmm10, zmm16, dword ptr [{a} + 40]{{1to16}}",
            "vfmadd231ps zmm11, zmm16, dword ptr [{a} + 44]{{1to16}}",
            "vfmadd231ps zmm12, zmm16, dword ptr [{a} + 48]{{1to16}}",
            "vfmadd231ps zmm13, zmm16, dword ptr [{a} + 52]{{1to16}}",
            "vfmadd231ps zmm14, zmm16, dword ptr [{a} + 56]{{1to16}}",
            "vfmadd231ps zmm15, zmm16, dword ptr [{a} + 60]{{1to16}}",
            // Into L1 48 steps ahead, as in `avx512` (a step reads one line here); into L2
            // the caller's line of the panel to come (`pf`: the passes over a panel ask for
            // the next one in address order, see `gemm::small_prefetch`).
            "prefetcht0 [{b} + {pf0}]",
            "prefetcht1 [{pf}]",
            "add {pf}, {pfstep}",
            "add {a}, 64",
            "add {b}, {bks}",
            "dec {k}",
            "jnz 2b",
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            k = inout(reg) kc => _,
            bks = in(reg) bks * 4,
            pf0 = in(reg) 48 * bks * 4,
            pf = inout(reg) pf.next => _,
            pfstep = in(reg) pf.step,
            inout("zmm0") acc[0][0],
            inout("zmm1") acc[1][0],
            inout("zmm2") acc[2][0],
            inout("zmm3") acc[3][0],
            inout("zmm4") acc[4][0],
            inout("zmm5") acc[5][0],
            inout("zmm6") acc[6][0],
            inout("zmm7") acc[7][0],
            inout("zmm8") acc[8][0],
            inout("zmm9") acc[9][0],
            inout("zmm10") acc[10][0],
            inout("zmm11") acc[11][0],
            inout("zmm12") acc[12][0],
            inout("zmm13") acc[13][0],
            inout("zmm14") acc[14][0],
            inout("zmm15") acc[15][0],
            out("zmm16") _,
            options(nostack, readonly),
        );
    }
    // SAFETY: forwarded contract.
    unsafe { store(&acc, c, rs, cs, mr, nr, ep) }
}

/// C is usually in L2 or further: fetch the tile's lines while the FMAs run.
#[inline(always)]
fn prefetch_c<const V: usize>(c: *mut f32, rs: isize, cs: isize, mr: usize) {
    if cs == 1 {
        for i in 0..mr {
            let row = c.wrapping_offset(i as isize * rs);
            for v in 0..V {
                // SAFETY: `prefetcht0` does not fault, whatever the address.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(16 * v) as *const i8) };
            }
        }
    }
}

/// Applies the epilogue to an `MR x 16 V` accumulator tile and stores its `mr x nr` part.
///
/// # Safety
/// As [`store_tile`] for `mr <= MR`, `nr <= 16 V`; the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store<const MR: usize, const V: usize>(
    acc: &[[__m512; V]; MR],
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
) {
    if cs != 1 {
        let mut flat = [[[0.0f32; 16]; V]; MR];
        for (dst, row) in flat.iter_mut().zip(acc) {
            for (d, &r) in dst.iter_mut().zip(row) {
                // SAFETY: `d` holds 16 floats.
                unsafe { _mm512_storeu_ps(d.as_mut_ptr(), r) };
            }
        }
        // SAFETY: forwarded contract; `flat` is `MR` rows of `16 V` floats.
        unsafe {
            store_tile(
                flat.as_flattened().as_flattened(),
                16 * V,
                c,
                rs,
                cs,
                mr,
                nr,
                ep,
            )
        };
        return;
    }
    let alpha = _mm512_set1_ps(ep.alpha);
    let beta = _mm512_set1_ps(ep.beta);
    // Columns `16 v ..` of a row: all 16 lanes, or the `nr % 16` of a ragged last vector.
    let mut masks = [0xffff_u16; V];
    for (v, m) in masks.iter_mut().enumerate() {
        let left = nr.saturating_sub(16 * v);
        if left < 16 {
            *m = (1u16 << left) - 1;
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        // SAFETY: row `i < mr` of the tile has `nr` contiguous floats (`cs == 1`, caller's
        // contract) and `bias` `nr` floats when not null; masked loads and stores touch only
        // the lanes below `nr` (masked-off lanes do not fault).
        unsafe {
            let cr = c.offset(i as isize * rs);
            for (v, (&r, &m)) in row.iter().zip(&masks).enumerate() {
                if m == 0 {
                    break;
                }
                let cp = cr.add(16 * v);
                let mut x = _mm512_mul_ps(alpha, r);
                if ep.first {
                    if ep.beta != 0.0 {
                        x = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m, cp), x);
                    }
                    if !ep.bias.is_null() {
                        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, ep.bias.add(16 * v)));
                    }
                } else {
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, cp));
                }
                _mm512_mask_storeu_ps(cp, m, x);
            }
            if ep.last_act() {
                ep.act.apply(std::slice::from_raw_parts_mut(cr, nr));
            }
        }
    }
}

/// Packs 16 rows of `kc` floats (`src + i * rs + p`) into the 16 x 16 tile's A panel
/// (`dst + p * 16 + i`), transposing 16 x 16 blocks in registers. Element by element this
/// took 4% of BERT-base (1,16) at two threads (one scattered store per float).
///
/// # Safety
/// The CPU supports AVX-512F; `src + i * rs + p` is readable for `i < 16`, `p < kc`; `dst`
/// is writable for `kc * 16` floats.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn pack_rows16(dst: *mut f32, src: *const f32, rs: usize, kc: usize) {
    let full = kc / 16 * 16;
    let mut p = 0;
    while p < full {
        // SAFETY: rows `i < 16`, columns `p..p+16 <= kc` of `src`, and `dst`'s floats
        // `p*16..(p+16)*16`, are in bounds by the caller's contract.
        unsafe {
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, v) in r.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(src.add(i * rs + p));
            }
            let t = transpose16(r);
            for (j, v) in t.iter().enumerate() {
                _mm512_storeu_ps(dst.add((p + j) * 16), *v);
            }
        }
        p += 16;
    }
    for p in full..kc {
        for i in 0..16 {
            // SAFETY: as above, `p < kc`.
            unsafe { *dst.add(p * 16 + i) = *src.add(i * rs + p) };
        }
    }
}

/// The transpose of a 16 x 16 block held as 16 rows: output `j` holds column `j`.
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // Pairs of rows interleaved (2 x 2 blocks), then pairs of pairs (4 x 4 blocks inside
    // each 128-bit lane), then 128-bit lanes exchanged between rows 4 apart and 8 apart.
    let mut t = [_mm512_setzero_ps(); 16];
    for k in 0..8 {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    let mut u = [_mm512_setzero_ps(); 16];
    for k in 0..4 {
        u[4 * k] = _mm512_shuffle_ps::<0x44>(t[4 * k], t[4 * k + 2]);
        u[4 * k + 1] = _mm512_shuffle_ps::<0xEE>(t[4 * k], t[4 * k + 2]);
        u[4 * k + 2] = _mm512_shuffle_ps::<0x44>(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm512_shuffle_ps::<0xEE>(t[4 * k + 1], t[4 * k + 3]);
    }
    for h in [0, 8] {
        for i in 0..4 {
            t[h + i] = _mm512_shuffle_f32x4::<0x88>(u[h + i], u[h + i + 4]);
            t[h + i + 4] = _mm512_shuffle_f32x4::<0xDD>(u[h + i], u[h + i + 4]);
        }
    }
    let mut out = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        out[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[i + 8]);
        out[i + 8] = _mm512_shuffle_f32x4::<0xDD>(t[i], t[i + 8]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn pack_rows16_matches_element_by_element() {
        if !super::available() {
            return;
        }
        let rs = 203;
        let src: Vec<f32> = (0..16 * rs).map(|i| i as f32 * 0.5 - 7.0).collect();
        for kc in [1, 15, 16, 17, 48, 192, 200] {
            let mut dst = vec![f32::NAN; kc * 16];
            // SAFETY: AVX-512F is available; 16 rows of `rs >= kc` floats; `kc * 16` floats.
            unsafe { super::pack_rows16(dst.as_mut_ptr(), src.as_ptr(), rs, kc) };
            for p in 0..kc {
                for i in 0..16 {
                    assert_eq!(dst[p * 16 + i], src[i * rs + p], "kc {kc}, p {p}, row {i}");
                }
            }
        }
    }
}
