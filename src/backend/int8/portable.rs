//! The portable int8 micro-kernel: plain Rust, exact i32 sums (any CPU, ARM included).

use super::Tile;

/// Rows per tile (the A panels are packed for it).
pub(super) const MR: usize = 4;

/// See `KernelFn` in `int8.rs`.
///
/// # Safety
/// `rows <= MR`, `panels <= 1`; `a` holds `groups · MR · 4` bytes and `b` `groups · 64`.
#[allow(clippy::too_many_arguments)] // `KernelFn`
pub(super) unsafe fn kernel(
    groups: usize,
    a: *const u8,
    b: *const u8,
    _stride: usize,
    rows: usize,
    _panels: usize,
    _pf: &[u8],
    acc: &mut Tile,
) {
    // SAFETY: lengths by the caller's contract.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, groups * MR * 4),
            std::slice::from_raw_parts(b as *const i8, groups * 64),
        )
    };
    let mut t = [[0i32; 16]; MR];
    for (ag, bg) in a.chunks_exact(MR * 4).zip(b.chunks_exact(64)) {
        for (i, ti) in t.iter_mut().enumerate().take(rows) {
            let ai = &ag[i * 4..i * 4 + 4];
            for (j, tij) in ti.iter_mut().enumerate() {
                let bj = &bg[j * 4..j * 4 + 4];
                *tij += (0..4).map(|x| ai[x] as i32 * bj[x] as i32).sum::<i32>();
            }
        }
    }
    for (dst, src) in acc.iter_mut().zip(&t).take(rows) {
        dst[..16].copy_from_slice(src);
    }
}
