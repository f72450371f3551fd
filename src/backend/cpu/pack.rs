//! Packing: copies of GEMM operands in the micro-kernels' panel layout (see `microkernel.rs`),
//! and the 64-byte aligned buffers they live in.

use super::gemm::SMALL_MR;
use super::isa::Isa;
#[cfg(all(target_arch = "x86_64", bert_avx512))]
use super::microkernel;
use crate::backend::WeightBytes;

/// A `Vec<f32>` whose visible part starts on a 64-byte boundary (whole cache lines for the
/// kernels' panel loads).
#[derive(Debug, Default)]
pub(crate) struct AlignedVec {
    buf: Vec<f32>,
    len: usize,
}

impl AlignedVec {
    fn start(&self) -> usize {
        let addr = self.buf.as_ptr() as usize;
        (64 - addr % 64) % 64 / std::mem::size_of::<f32>()
    }

    /// A zero-initialized-once, reused slice of `len` floats (grows, never shrinks).
    pub(crate) fn get(&mut self, len: usize) -> &mut [f32] {
        if self.buf.len() < len + 16 {
            self.buf = vec![0.0; len + 16];
            huge_pages(&self.buf);
        }
        self.len = len;
        let s = self.start();
        &mut self.buf[s..s + len]
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        let s = self.start();
        &self.buf[s..s + self.len]
    }
}

/// Asks Linux to back the 2 MiB-aligned interior of a large, not yet touched buffer with
/// transparent huge pages (where THP is in `madvise` mode, the usual default). Packed weights
/// are streamed from memory once per forward pass at small batches: with 4 KiB pages that is a
/// TLB miss every 4 KiB, with huge pages one per 2 MiB.
fn huge_pages(buf: &[f32]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buf.as_ptr() as usize;
        let end = start + std::mem::size_of_val(buf);
        let (lo, hi) = (start.div_ceil(HUGE) * HUGE, end / HUGE * HUGE);
        if hi > lo {
            // SAFETY: `lo..hi` lies inside `buf`'s allocation; MADV_HUGEPAGE changes only how
            // the kernel backs those pages, not their contents. Failure (no THP) is harmless.
            unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

impl Clone for AlignedVec {
    fn clone(&self) -> Self {
        // A copied buffer may be aligned differently, so copy the visible part only.
        let mut v = AlignedVec::default();
        v.get(self.len).copy_from_slice(self.as_slice());
        v
    }
}

/// A row-major-or-strided read-only matrix view; strides are in elements.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Packs rows `i0..i0+mc`, K range `p0..p0+kc` of A into `MR`-row panels, zero-padding the
/// last panel.
pub(crate) fn pack_a(
    dst: &mut [f32],
    a: MatRef<'_>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    mr: usize,
) {
    if a.rs == 1 && a.cs != 1 {
        // Transposed A (`xᵀ` of a weight gradient `xᵀ·dy`): a panel's `MR` values at each
        // `p` are contiguous, so copy them as a run instead of gathering element by element.
        for (ip, panel) in dst.chunks_exact_mut(kc * mr).enumerate() {
            let i = ip * mr;
            let w = mr.min(mc.saturating_sub(i));
            for (p, run) in panel.chunks_exact_mut(mr).enumerate() {
                let base = i0 + i + (p0 + p) * a.cs;
                run[..w].copy_from_slice(&a.data[base..base + w]);
                run[w..].fill(0.0);
            }
        }
        return;
    }
    for (ip, panel) in dst.chunks_exact_mut(kc * mr).enumerate() {
        for ii in 0..mr {
            let i = ip * mr + ii;
            if i < mc {
                let base = (i0 + i) * a.rs + p0 * a.cs;
                if a.cs == 1 {
                    let src = &a.data[base..base + kc];
                    for (p, &v) in src.iter().enumerate() {
                        panel[p * mr + ii] = v;
                    }
                } else {
                    for p in 0..kc {
                        panel[p * mr + ii] = a.data[base + p * a.cs];
                    }
                }
            } else {
                for p in 0..kc {
                    panel[p * mr + ii] = 0.0;
                }
            }
        }
    }
}

/// `pack_a` for the 16 x 16 tile (`small_tile`, so AVX-512): 16 whole rows of a row-major A
/// are transposed in registers, 16 x 16 floats at a time.
pub(crate) fn pack_a_small(
    dst: &mut [f32],
    a: MatRef<'_>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
) {
    #[cfg(all(target_arch = "x86_64", bert_avx512))]
    if a.cs == 1 && mc == SMALL_MR && microkernel::avx512::available() {
        let start = i0 * a.rs + p0;
        // Rows `i0..i0+16` (all `< m`) of the `[m, k]` A that `a` covers, columns `p0..p0+kc`.
        assert!(start + (SMALL_MR - 1) * a.rs + kc <= a.data.len() && dst.len() >= kc * SMALL_MR);
        // SAFETY: the assert bounds every read `start + i*rs + p` (i < 16, p < kc) and the
        // `kc * 16` writes; the CPU has AVX-512F (checked above).
        unsafe {
            microkernel::avx512::pack_rows16(dst.as_mut_ptr(), a.data[start..].as_ptr(), a.rs, kc)
        };
        return;
    }
    pack_a(dst, a, i0, mc, p0, kc, SMALL_MR);
}

/// Packs K range `p0..p0+kc`, columns `j0..j0+ncols` of B (of `n` columns) into `NR`-column
/// panels; columns past `n` are zero.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_b(
    dst: &mut [f32],
    b: MatRef<'_>,
    n: usize,
    p0: usize,
    kc: usize,
    j0: usize,
    ncols: usize,
    nr: usize,
) {
    let panels = ncols.div_ceil(nr);
    for (jp, panel) in dst.chunks_exact_mut(kc * nr).take(panels).enumerate() {
        let jb = j0 + jp * nr;
        let w = nr.min(n.saturating_sub(jb));
        if b.rs == 1 && b.cs != 1 {
            // Transposed B (Kᵀ in attention): read each column contiguously.
            for jj in 0..nr {
                if jj < w {
                    let base = p0 + (jb + jj) * b.cs;
                    for (p, &v) in b.data[base..base + kc].iter().enumerate() {
                        panel[p * nr + jj] = v;
                    }
                } else {
                    for p in 0..kc {
                        panel[p * nr + jj] = 0.0;
                    }
                }
            }
            continue;
        }
        for p in 0..kc {
            let row = &mut panel[p * nr..p * nr + nr];
            let base = (p0 + p) * b.rs + jb * b.cs;
            if b.cs == 1 {
                row[..w].copy_from_slice(&b.data[base..base + w]);
            } else {
                for (jj, v) in row[..w].iter_mut().enumerate() {
                    *v = b.data[base + jj * b.cs];
                }
            }
            row[w..].fill(0.0);
        }
    }
}

/// Weights packed once for one kernel: K blocks of `KC`, each a row of `NR`-column panels.
#[derive(Clone, Debug)]
pub(crate) struct PackedB {
    pub isa: Isa,
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) n_pad: usize,
    pub(crate) data: Panels,
}

/// Where packed panels live: packed at load, or as a `.bert` file stores them (dtype
/// "f32 packed"), borrowed from its memory map so that a model starts without repacking.
#[derive(Clone, Debug)]
pub(crate) enum Panels {
    Owned(AlignedVec),
    Mapped(WeightBytes),
}

impl Panels {
    pub(crate) fn as_slice(&self) -> &[f32] {
        match self {
            Panels::Owned(v) => v.as_slice(),
            // `PackedB::from_bytes` admitted only bytes that `as_f32` reads in place.
            Panels::Mapped(b) => b.as_f32().unwrap_or(&[]),
        }
    }
}

/// The panel layout of `isa`'s f32 micro-kernel: `(NR, KC)`. Two kernels with the same
/// layout read the same packed bytes.
pub(crate) fn layout(isa: Isa) -> (usize, usize) {
    let (_, nr, kc, _, _) = isa.params();
    (nr, kc)
}

/// Floats of a `[k, n]` matrix packed in `nr`-column panels (columns padded to `nr`).
pub(crate) fn packed_len(k: usize, n: usize, nr: usize) -> Option<usize> {
    n.div_ceil(nr.max(1)).checked_mul(nr)?.checked_mul(k)
}

impl PackedB {
    /// Packs a `[k, n]` matrix for `isa` (panics if the CPU lacks it).
    pub(crate) fn new(isa: Isa, k: usize, n: usize, b: MatRef<'_>) -> PackedB {
        assert!(
            isa.available(),
            "{isa:?} kernels are not supported by this CPU"
        );
        let (nr, kcb) = layout(isa);
        let n_pad = n.div_ceil(nr) * nr;
        let mut data = AlignedVec::default();
        let buf = data.get(k * n_pad);
        pack_into(buf, b, k, n, nr, kcb);
        PackedB {
            isa,
            k,
            n,
            n_pad,
            data: Panels::Owned(data),
        }
    }

    /// Panels as a file stores them, for `isa` (which this CPU has): `None` unless they are in
    /// `isa`'s layout (`nr`, `kc`), have the packed length and can be read in place.
    pub(crate) fn from_bytes(
        isa: Isa,
        k: usize,
        n: usize,
        (nr, kc): (usize, usize),
        bytes: &WeightBytes,
    ) -> Option<PackedB> {
        let fits = layout(isa) == (nr, kc)
            && isa.available()
            && packed_len(k, n, nr).and_then(|l| l.checked_mul(4)) == Some(bytes.len())
            && bytes.as_f32().is_some();
        fits.then(|| PackedB {
            isa,
            k,
            n,
            n_pad: n.div_ceil(nr) * nr,
            data: Panels::Mapped(bytes.clone()),
        })
    }
}

/// Packs all of a `[k, n]` matrix into `buf` (`packed_len` floats): K blocks of `kcb` rows,
/// each a row of `nr`-column panels.
pub(crate) fn pack_into(buf: &mut [f32], b: MatRef<'_>, k: usize, n: usize, nr: usize, kcb: usize) {
    let n_pad = n.div_ceil(nr) * nr;
    let mut p0 = 0;
    while p0 < k {
        let kc = kcb.min(k - p0);
        pack_b(&mut buf[p0 * n_pad..], b, n, p0, kc, 0, n, nr);
        p0 += kc;
    }
}

/// The `[k, n]` row-major matrix back from its packed panels (the inverse of [`pack_into`]).
pub(crate) fn unpack(packed: &[f32], k: usize, n: usize, nr: usize, kcb: usize) -> Vec<f32> {
    let n_pad = n.div_ceil(nr) * nr;
    let mut out = vec![0.0; k * n];
    let mut p0 = 0;
    while p0 < k {
        let kc = kcb.min(k - p0);
        let block = &packed[p0 * n_pad..];
        for (jp, panel) in block.chunks_exact(kc * nr).take(n_pad / nr).enumerate() {
            let jb = jp * nr;
            let w = nr.min(n - jb);
            for p in 0..kc {
                out[(p0 + p) * n + jb..][..w].copy_from_slice(&panel[p * nr..][..w]);
            }
        }
        p0 += kc;
    }
    out
}
