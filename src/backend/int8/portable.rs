//! The portable int8 micro-kernel: plain Rust, exact i32 sums (any CPU, ARM included).

/// Rows per tile.
pub(super) const MR: usize = 4;

/// See `KernelFn` in `int8.rs`.
///
/// # Safety
/// `a` holds `groups · MR · 4` bytes and `b` holds `groups · 64`.
pub(super) unsafe fn kernel(groups: usize, a: *const u8, b: *const i8, acc: &mut [[i32; 16]; 8]) {
    // SAFETY: lengths by the caller's contract.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, groups * MR * 4),
            std::slice::from_raw_parts(b, groups * 64),
        )
    };
    let mut t = [[0i32; 16]; MR];
    for (ag, bg) in a.chunks_exact(MR * 4).zip(b.chunks_exact(64)) {
        for (i, ti) in t.iter_mut().enumerate() {
            let ai = &ag[i * 4..i * 4 + 4];
            for (j, tij) in ti.iter_mut().enumerate() {
                let bj = &bg[j * 4..j * 4 + 4];
                *tij += (0..4).map(|x| ai[x] as i32 * bj[x] as i32).sum::<i32>();
            }
        }
    }
    acc[..MR].copy_from_slice(&t);
}
