//! aarch64 int8 kernels: `SDOT` (Armv8.2 dot product) and `SMMLA` (Armv8.6 int8 matrix
//! multiply), both exact i8 x i8 sums into i32 lanes, over the weight layout every path
//! reads. Activations come as i8 (`level − 128`, see `Spec::signed`).
//!
//! - `SDOT v.4s, w.16b, a.4b[r]`: four columns x 4 k of one weight group (16 bytes) against
//!   the 4 k of row `r`, one lane of a register holding the group's 4 rows. 4 x 16 tile: 16
//!   accumulators, 4 weight and 1 activation registers per group.
//! - `SMMLA c.4s, a.16b, w.16b`: a 2 x 8 block of activations (two rows, 8 k) times an 8 x 2
//!   block of weights (two columns, 8 k) into a 2 x 2 block of i32. Two weight groups (4 k
//!   each) zipped by 32-bit element give the column pairs; the activations are packed in
//!   groups of 8 k (`I8MM_KA`), so a row pair is one load. 4 x 16 tile: 2 row pairs x 8
//!   column pairs, 16 accumulators.
//!
//! Their epilogue ([`epilogue`]) is the portable one's arithmetic on NEON, four columns at a
//! time. The instructions are written as `asm!`: their intrinsics are newer than the crate's
//! MSRV.
//! The enclosing functions enable the extension, checked at run time
//! (`is_aarch64_feature_detected!`) before a layer takes the path.

use super::{Tile, TileEpilogue, K_GROUP, OUTLIERS, PANEL_COLS};
use std::arch::aarch64::*;

/// Rows per tile (both kernels).
pub(super) const MR: usize = 4;
/// K values per packed activation group of the `SMMLA` path.
pub(super) const I8MM_KA: usize = 8;

/// `acc += w (4 columns x 4 k) · a.4b[LANE]`.
macro_rules! sdot {
    ($acc:expr, $w:expr, $a:expr, $lane:literal) => {
        // SAFETY: `SDOT` only reads and writes the named registers; the enclosing function
        // enables `dotprod`, which its callers checked.
        unsafe {
            std::arch::asm!(
                concat!("sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[", $lane, "]"),
                acc = inout(vreg) $acc,
                w = in(vreg) $w,
                a = in(vreg) $a,
                options(pure, nomem, nostack, preserves_flags),
            )
        }
    };
}

/// See `KernelFn` in `int8.rs` (one panel per tile).
///
/// # Safety
/// The CPU has `dotprod`; `1 <= rows <= 4`; `a` holds `groups · 16` bytes and `b`
/// `groups · 64`.
#[allow(clippy::too_many_arguments)] // `KernelFn`
#[target_feature(enable = "dotprod")]
pub(super) unsafe fn kernel_dotprod(
    groups: usize,
    a: *const u8,
    b: *const u8,
    _stride: usize,
    rows: usize,
    _panels: usize,
    _pf: &[u8],
    acc: &mut Tile,
) {
    let z = vdupq_n_s32(0);
    let mut c = [[z; 4]; MR];
    for g in 0..groups {
        // SAFETY: group `g < groups`: 64 weight bytes at `b + 64g` and 4 rows of 4
        // activation bytes at `a + 16g` (caller's contract).
        let (w, x) = unsafe {
            let bg = b.add(64 * g) as *const i8;
            (
                [
                    vld1q_s8(bg),
                    vld1q_s8(bg.add(16)),
                    vld1q_s8(bg.add(32)),
                    vld1q_s8(bg.add(48)),
                ],
                vld1q_s8(a.add(MR * K_GROUP * g) as *const i8),
            )
        };
        for (cv, &wv) in c[0].iter_mut().zip(&w) {
            sdot!(*cv, wv, x, "0");
        }
        for (cv, &wv) in c[1].iter_mut().zip(&w) {
            sdot!(*cv, wv, x, "1");
        }
        for (cv, &wv) in c[2].iter_mut().zip(&w) {
            sdot!(*cv, wv, x, "2");
        }
        for (cv, &wv) in c[3].iter_mut().zip(&w) {
            sdot!(*cv, wv, x, "3");
        }
    }
    for (dst, cr) in acc.iter_mut().zip(&c).take(rows) {
        for (v, &cv) in cr.iter().enumerate() {
            // SAFETY: a tile row holds `TILE_COLS >= 16` i32.
            unsafe { vst1q_s32(dst.as_mut_ptr().add(4 * v), cv) };
        }
    }
}

/// `acc += a (2 rows x 8 k) · w (8 k x 2 columns)`.
#[inline(always)]
fn smmla(acc: &mut int32x4_t, a: int8x16_t, w: int8x16_t) {
    // SAFETY: `SMMLA` only reads and writes the named registers; it is only reached from
    // `kernel_i8mm`, which enables `i8mm`, checked by its callers.
    unsafe {
        std::arch::asm!(
            "smmla {acc:v}.4s, {a:v}.16b, {w:v}.16b",
            acc = inout(vreg) *acc,
            a = in(vreg) a,
            w = in(vreg) w,
            options(pure, nomem, nostack, preserves_flags),
        )
    }
}

/// See `KernelFn` in `int8.rs` (one panel per tile); activations in groups of 8 k.
///
/// # Safety
/// The CPU has `i8mm`; `1 <= rows <= 4`; `a` holds `ceil(groups / 2) · 32` bytes and `b`
/// `groups · 64`.
#[allow(clippy::too_many_arguments)] // `KernelFn`
#[target_feature(enable = "i8mm")]
pub(super) unsafe fn kernel_i8mm(
    groups: usize,
    a: *const u8,
    b: *const u8,
    _stride: usize,
    rows: usize,
    _panels: usize,
    _pf: &[u8],
    acc: &mut Tile,
) {
    let z = vdupq_n_s32(0);
    // `c[rp][cp]`: rows `2rp, 2rp + 1` x columns `2cp, 2cp + 1`, as (r0c0, r0c1, r1c0, r1c1).
    let mut c = [[z; 8]; MR / 2];
    let zero = vdupq_n_s8(0);
    for h in 0..groups.div_ceil(2) {
        let g = 2 * h;
        // SAFETY: groups `g` and (when `g + 1 < groups`) `g + 1` of the panel (64 bytes each
        // at `b + 64g`) and block `h` of the activations (4 rows x 8 bytes at `a + 32h`) are
        // in bounds (caller's contract); past an odd last group the weights are zeros.
        unsafe {
            let bg = b.add(64 * g) as *const i8;
            let ah = a.add(MR * I8MM_KA * h) as *const i8;
            let x = [vld1q_s8(ah), vld1q_s8(ah.add(16))];
            let last = g + 1 == groups;
            for q in 0..4 {
                // Columns 4q..4q+4 at k 4g..4g+4 and 4g+4..4g+8; zipped by 4-byte column
                // groups: (column 4q, 8 k; column 4q+1, 8 k) and (4q+2; 4q+3).
                let lo = vreinterpretq_s32_s8(vld1q_s8(bg.add(16 * q)));
                let hi = if last {
                    vreinterpretq_s32_s8(zero)
                } else {
                    vreinterpretq_s32_s8(vld1q_s8(bg.add(64 + 16 * q)))
                };
                let w01 = vreinterpretq_s8_s32(vzip1q_s32(lo, hi));
                let w23 = vreinterpretq_s8_s32(vzip2q_s32(lo, hi));
                for (cr, &xv) in c.iter_mut().zip(&x) {
                    smmla(&mut cr[2 * q], xv, w01);
                    smmla(&mut cr[2 * q + 1], xv, w23);
                }
            }
        }
    }
    for (rp, cr) in c.iter().enumerate() {
        for q in 0..4 {
            let (a01, a23) = (
                vreinterpretq_s64_s32(cr[2 * q]),
                vreinterpretq_s64_s32(cr[2 * q + 1]),
            );
            // Row 2rp: the low halves (columns 4q..4q+4); row 2rp + 1: the high halves.
            let pair = [vzip1q_s64(a01, a23), vzip2q_s64(a01, a23)];
            for (r, &v) in pair.iter().enumerate() {
                let row = 2 * rp + r;
                if row < rows {
                    // SAFETY: a tile row holds `TILE_COLS >= 16` i32.
                    unsafe {
                        vst1q_s32(acc[row].as_mut_ptr().add(4 * q), vreinterpretq_s32_s64(v))
                    };
                }
            }
        }
    }
}

/// The epilogue of `int8.rs` (`epilogue_row`) for a whole tile, 4 columns at a time, for the
/// ARM paths: the same operations in the same order (`fmla` rounds once, like
/// `f32::mul_add`; `scvtf` rounds to nearest, like `as f32`), so the same bits. Every outlier
/// slot is applied, unused ones (value 0, index 0) included, as the portable version does.
///
/// # Safety
/// The contract of `int8.rs`'s `epilogue`.
pub(super) unsafe fn epilogue(e: &TileEpilogue<'_>) {
    let cols = e.s.len();
    let body = cols / 4 * 4;
    // K = 0 has no weights to read (and no outliers).
    let slots = if e.wstride == 0 { 0 } else { OUTLIERS };
    for i in 0..e.rows {
        let o = &e.outliers[i];
        let (t, z) = (vdupq_n_f32(e.t[i]), vdupq_n_s32(e.z[i]));
        // Per outlier slot: the value, where its weights sit in a panel's K group, and the
        // shift that brings its byte to the top of each 32-bit lane.
        let mut xs = [vdupq_n_f32(0.0); OUTLIERS];
        let mut offs = [0usize; OUTLIERS];
        let mut ups = [vdupq_n_s32(0); OUTLIERS];
        for s in 0..slots {
            let c = o.idx[s] as usize;
            // `c < K` (slot index or 0), so its group lies inside each panel.
            assert!(c / K_GROUP * 64 + 64 <= e.wstride);
            xs[s] = vdupq_n_f32(o.val[s]);
            offs[s] = c / K_GROUP * 64;
            ups[s] = vdupq_n_s32((24 - 8 * (c % K_GROUP)) as i32);
        }
        for j in (0..body).step_by(4) {
            // Columns `j..j+4` of panel `j / 16`: 4 bytes each, 16 contiguous bytes.
            let panel = j / PANEL_COLS * e.wstride;
            assert!(panel + e.wstride <= e.w.len());
            let wj = panel + j % PANEL_COLS * K_GROUP;
            // SAFETY: `j + 4 <= cols`: inside the tile row, the column slices and (caller's
            // contract) the output row. Weight loads: 16 bytes at `wj + off`, `off + 64 <=
            // wstride` (asserted per slot), `j % 16 <= 12`: inside panel `j / 16`, which
            // lies inside `e.w` (asserted).
            unsafe {
                let acc = vld1q_s32(e.acc[i].as_ptr().add(j));
                let cs = vld1q_s32(e.colsum.as_ptr().add(j));
                let d = vsubq_s32(acc, vmulq_s32(z, cs));
                let mut u = vmulq_f32(vcvtq_f32_s32(d), t);
                let s = vld1q_f32(e.s.as_ptr().add(j));
                let y = e.y.add(i * e.ldy + j);
                let out = if e.first {
                    for k in 0..slots {
                        let w = vreinterpretq_s32_s8(vld1q_s8(
                            e.w.as_ptr().add(wj + offs[k]) as *const i8
                        ));
                        let q = vshrq_n_s32::<24>(vshlq_s32(w, ups[k]));
                        u = vfmaq_f32(u, xs[k], vcvtq_f32_s32(q));
                    }
                    vfmaq_f32(vld1q_f32(e.bias.as_ptr().add(j)), u, s)
                } else {
                    vfmaq_f32(vld1q_f32(y), u, s)
                };
                vst1q_f32(y, out);
            }
        }
        if body < cols {
            // SAFETY: the caller's contract.
            unsafe { super::epilogue_row(e, i, body) };
        }
    }
}
