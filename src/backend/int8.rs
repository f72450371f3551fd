//! int8 dense layers: `y = act(x @ kernel + bias)` with an int8 kernel and int8 activations.
//!
//! # Numerics (the named choices)
//! - Weights: symmetric, per output channel ([`QuantizedKernel`]): `w[i][o] ≈ q[i][o] · s[o]`,
//!   `s[o] = max_i |w[i][o]| / 127`, `q ∈ [-127, 127]` (packed bytes from elsewhere may hold
//!   −128; every path handles it).
//! - Activations: quantized per row at every call, **asymmetric u8** with a zero point:
//!   `x[r][i] ≈ (a[r][i] − z[r]) · t[r]`, `a ∈ [0, L]`, over the row's range widened to
//!   include 0 (0 and the zero padding are exact). Asymmetric u8 is what the x86
//!   instructions multiply (`vpdpbusd`, `vpmaddubsw`: u8 × i8), and it spends every level on
//!   rows that are mostly positive (after GELU) as well as on centred ones. `L` is 255 on the
//!   VNNI, ARM and portable paths and 127 on AVX2 ([`Int8Path::activation_levels`]:
//!   `vpmaddubsw` adds pairs of products in saturating i16). The ARM instructions (`SDOT`,
//!   `SMMLA`) multiply i8 by i8: their paths store `a − 128` with zero point `z − 128`,
//!   which leaves every difference `a − z`, and so every sum, as it is.
//! - **Outliers**: the [`OUTLIERS`] (2) largest `|x|` of each row are left out of that range
//!   (their level is set to `z`, so they add nothing to the integer sum) and multiplied in
//!   f32 by their int8 weights in the epilogue. BERT's LayerNorm and GELU outputs have a few
//!   huge dimensions; without them the rest of a row gets 2–4x finer steps (up to 45x). On
//!   all-MiniLM-L6-v2 this moved the worst sentence-embedding cosine to f32 from 0.9911 to
//!   0.9985 with 7-bit activations (BENCHMARKS.md, "int8/f16 kernels").
//! - Products are summed exactly in i32 (`d = Σ a·q − z·Σ q`, column sums `Σ_i q[i][o]`
//!   per K chunk computed once, on first use), then the epilogue computes in f32
//!   `y = fma(u + Σ_outliers x·q, s[o], bias[o])` with `u = d · t[r]`, and applies the
//!   activation. Results do not depend on the thread count, and every path gives the same
//!   bits as the portable kernel at the same `L`.
//! - i32 cannot overflow: each K chunk is at most [`K_CHUNK`] long
//!   (`65536 · 255 · 128 < 2³¹`); longer K sums chunks in f32.
//!
//! # Packed weight layout ([`INT8_LAYOUT_VERSION`] 1), read by every code path
//! K is padded with zeros to a multiple of [`K_GROUP`] (4) and the output columns to a multiple
//! of [`PANEL_COLS`] (16). Panels of 16 columns follow each other; inside a panel, K groups of
//! 4 follow each other; inside a group, the 16 columns follow each other, each as its 4
//! consecutive K values (i8):
//! `byte[((panel · K/4 + group) · 16 + column) · 4 + k % 4] = q[4·group + k % 4][16·panel + column]`.
//! One group is 64 bytes: one zmm for `vpdpbusd` (16 columns × 4 k summed into an i32 lane), or
//! two ymm of 8 columns for AVX2, four NEON registers of 4 columns for `SDOT`, and, two groups
//! zipped, the 2-column x 8-k operands of `SMMLA`. A file stores these bytes as they are, so
//! a model written on one machine loads on any other (ARM included) without repacking.

#[cfg(target_arch = "aarch64")]
mod arm;
mod pack;
mod portable;
// Compiled only by Rust 1.89+ (`build.rs`), whatever the crate's MSRV.
#[cfg(all(target_arch = "x86_64", bert_vnni))]
#[clippy::msrv = "1.89"]
mod quantize512;
#[cfg(all(target_arch = "x86_64", bert_vnni))]
#[clippy::msrv = "1.89"]
mod vnni;
#[cfg(target_arch = "x86_64")]
mod x86;

use super::cpu::Activation;
use super::{Pool, WeightBytes};
use crate::{Error, Result};
use std::sync::OnceLock;

/// Version of the packed layout described in the module documentation; files record it.
pub const INT8_LAYOUT_VERSION: u32 = 1;
/// Output columns per packed panel.
pub const PANEL_COLS: usize = 16;
/// K values per group (one `vpdpbusd` lane).
pub const K_GROUP: usize = 4;
/// Values of each activation row kept out of the int8 range (see the module docs).
pub const OUTLIERS: usize = 2;
/// Longest K range summed in i32 before the f32 epilogue (`65536 · 255 · 128 < 2³¹`).
pub const K_CHUNK: usize = 1 << 16;

/// Length in bytes of the packed int8 kernel of a `[in_dim, out_dim]` dense layer.
pub fn packed_len(in_dim: usize, out_dim: usize) -> usize {
    in_dim.div_ceil(K_GROUP) * K_GROUP * out_dim.div_ceil(PANEL_COLS) * PANEL_COLS
}

/// Symmetric per-output-channel int8 quantization of a `[in, out]` kernel (Google's layout).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedKernel {
    pub in_dim: usize,
    pub out_dim: usize,
    /// `[in, out]` row-major, the layout of the f32 kernel; values in `[-127, 127]`.
    pub values: Vec<i8>,
    /// `[out]`: `w[i][o] ≈ values[i * out + o] as f32 * scales[o]`.
    pub scales: Vec<f32>,
}

impl QuantizedKernel {
    /// Quantizes a `[in_dim, out_dim]` kernel: per column `scale = max|w| / 127` and
    /// `q = round(w / scale)` (an all-zero column gets scale 0 and zeros). The error per weight
    /// is at most `scale / 2`.
    ///
    /// Panics if `kernel.len() != in_dim * out_dim` (programmer error; loaders check shapes).
    pub fn quantize(kernel: &[f32], in_dim: usize, out_dim: usize) -> QuantizedKernel {
        assert_eq!(
            kernel.len(),
            in_dim * out_dim,
            "QuantizedKernel: kernel length"
        );
        let mut max = vec![0.0f32; out_dim];
        for row in kernel.chunks_exact(out_dim.max(1)) {
            for (m, &w) in max.iter_mut().zip(row) {
                *m = m.max(w.abs());
            }
        }
        let scales: Vec<f32> = max.iter().map(|&m| m / 127.0).collect();
        let inv: Vec<f32> = scales
            .iter()
            .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
            .collect();
        let values = kernel
            .iter()
            .enumerate()
            .map(|(idx, &w)| {
                let o = idx % out_dim;
                // `as` saturates (and maps NaN to 0); the clamp keeps -128 out.
                (w * inv[o]).round().clamp(-127.0, 127.0) as i8
            })
            .collect();
        QuantizedKernel {
            in_dim,
            out_dim,
            values,
            scales,
        }
    }

    /// The f32 kernel `[in, out]` these values stand for.
    pub fn dequantize(&self) -> Vec<f32> {
        self.values
            .iter()
            .enumerate()
            .map(|(idx, &q)| q as f32 * self.scales[idx % self.out_dim])
            .collect()
    }
}

/// An int8 GEMM code path. [`Int8Path::detect`] picks the best one the CPU has; tests and
/// benchmarks force one with [`Dense::new_int8_with_path`](super::cpu::Dense::new_int8_with_path).
/// All paths read the same packed layout. Non-exhaustive: paths for new instruction sets
/// join as variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Int8Path {
    /// AVX-512 VNNI: `vpdpbusd` on zmm, 8 rows x 32 columns per tile.
    Vnni512,
    /// AVX-VNNI: `vpdpbusd` on ymm (VEX; Alder Lake, Zen 5), 4 x 16 tile.
    AvxVnni,
    /// AVX2 without VNNI: `vpmaddubsw` + `vpmaddwd`, 4 x 16 tile, 7-bit activations.
    Avx2,
    /// Plain Rust (any CPU, ARM included).
    Portable,
    /// aarch64 dot product (`SDOT`, Armv8.2 `dotprod`: Cortex-A55/A76 and later), 4 x 16
    /// tile.
    Dotprod,
    /// aarch64 int8 matrix multiply (`SMMLA`, Armv8.6 `i8mm`: Cortex-A510/A710/X2 and
    /// later), 4 x 16 tile of 2 x 2 blocks.
    I8mm,
}

impl Int8Path {
    /// The best path this CPU runs.
    pub fn detect() -> Int8Path {
        if cfg!(bert_portable) {
            return Int8Path::Portable;
        }
        [
            Int8Path::Vnni512,
            Int8Path::AvxVnni,
            Int8Path::Avx2,
            Int8Path::I8mm,
            Int8Path::Dotprod,
        ]
        .into_iter()
        .find(|p| p.available())
        .unwrap_or(Int8Path::Portable)
    }

    /// Whether this build and CPU can run the path. The VNNI paths need a compiler with
    /// AVX-512 intrinsics (Rust 1.89+) as well as the CPU feature.
    pub fn available(self) -> bool {
        match self {
            Int8Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(all(target_arch = "x86_64", bert_vnni))]
            Int8Path::Vnni512 => vnni::vnni512_available(),
            #[cfg(all(target_arch = "x86_64", bert_vnni))]
            Int8Path::AvxVnni => vnni::avx_vnni_available(),
            #[cfg(target_arch = "aarch64")]
            Int8Path::Dotprod => std::arch::is_aarch64_feature_detected!("dotprod"),
            #[cfg(target_arch = "aarch64")]
            Int8Path::I8mm => std::arch::is_aarch64_feature_detected!("i8mm"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Largest activation level: 255 (8 bits) except on AVX2, whose `vpmaddubsw` adds
    /// pairs of u8 x i8 products in saturating i16: `2 · 127 · 128 = 32512` fits, while 8-bit
    /// activations (`2 · 255 · 128 = 65280`) would saturate. So AVX2 machines quantize
    /// activations to 7 bits (half the resolution of the VNNI and portable paths; see
    /// BENCHMARKS.md for the measured cost and why the 8-bit `vpmaddwd` alternative was not
    /// taken).
    pub fn activation_levels(self) -> u8 {
        match self {
            Int8Path::Avx2 => 127,
            _ => 255,
        }
    }

    /// The kernels and tile shape of the path (which must be available).
    fn spec(self) -> Spec {
        match self {
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx2 => Spec {
                mr: x86::MR,
                np: 1,
                levels: 127,
                kernel: x86::kernel,
                simd: true,
                zmm: false,
                ka: K_GROUP,
                signed: false,
            },
            #[cfg(all(target_arch = "x86_64", bert_vnni))]
            Int8Path::Vnni512 => Spec {
                mr: vnni::MR512,
                np: vnni::NP512,
                levels: 255,
                kernel: vnni::kernel512,
                simd: true,
                zmm: true,
                ka: K_GROUP,
                signed: false,
            },
            #[cfg(all(target_arch = "x86_64", bert_vnni))]
            Int8Path::AvxVnni => Spec {
                mr: vnni::MR256,
                np: 1,
                levels: 255,
                kernel: vnni::kernel256,
                simd: true,
                zmm: false,
                ka: K_GROUP,
                signed: false,
            },
            #[cfg(target_arch = "aarch64")]
            Int8Path::Dotprod => Spec {
                mr: arm::MR,
                np: 1,
                levels: 255,
                kernel: arm::kernel_dotprod,
                simd: true,
                zmm: false,
                ka: K_GROUP,
                signed: true,
            },
            #[cfg(target_arch = "aarch64")]
            Int8Path::I8mm => Spec {
                mr: arm::MR,
                np: 1,
                levels: 255,
                kernel: arm::kernel_i8mm,
                simd: true,
                zmm: false,
                ka: arm::I8MM_KA,
                signed: true,
            },
            _ => Spec::portable(255),
        }
    }
}

/// One code path: tile shape, activation levels, kernel, and whether the AVX2 helpers
/// (quantization, epilogue) may run.
#[derive(Clone, Copy)]
pub(crate) struct Spec {
    /// Rows per tile; activations are packed in panels of `mr` rows.
    mr: usize,
    /// Weight panels (16 columns each) per tile.
    np: usize,
    /// Largest activation level (127 or 255).
    levels: u8,
    kernel: KernelFn,
    /// Use the target's SIMD helpers, bit-identical to the portable ones: on x86_64 the
    /// AVX2+FMA quantization and epilogue, on aarch64 the NEON epilogue.
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    simd: bool,
    /// Use the AVX-512 epilogue (the AVX-512 VNNI path), which also applies the activation.
    #[cfg_attr(not(all(target_arch = "x86_64", bert_vnni)), allow(dead_code))]
    zmm: bool,
    /// K values per group of the packed activations: `K_GROUP` (4), or 8 for `SMMLA`,
    /// whose operand is 2 rows x 8 k (see [`QuantizedRows::data`]).
    ka: usize,
    /// Activations stored as `i8` (`level − 128`, zero point `z − 128`) for the ARM
    /// instructions, which multiply i8 by i8: `Σ (a − 128) q − (z − 128) Σ q = Σ (a − z) q`,
    /// the same exact integer as the u8 paths compute, so the same bits.
    signed: bool,
}

impl Spec {
    fn portable(levels: u8) -> Spec {
        Spec {
            mr: portable::MR,
            np: 1,
            levels,
            kernel: portable::kernel,
            simd: false,
            zmm: false,
            ka: K_GROUP,
            signed: false,
        }
    }

    /// Bytes of one packed panel of `mr` activation rows over `groups` K groups.
    fn a_panel_len(&self, groups: usize) -> usize {
        (groups * K_GROUP).div_ceil(self.ka) * self.ka * self.mr
    }
}

/// Activation bytes per row block (see `forward_spec`).
const A_BLOCK_BYTES: usize = 96 << 10;
/// The same for the AVX-512 VNNI path, whose CPUs have 1-2 MiB of L2 per core: each row
/// block streams every weight once more, and on Zen 5 4x larger blocks measured 2-4% faster
/// on BERT-base's K = 3072 product at (1,128) and (8,128), one thread.
const A_BLOCK_BYTES_ZMM: usize = 384 << 10;

/// Most rows and columns of a tile any kernel computes.
const TILE_ROWS: usize = 8;
const TILE_COLS: usize = 3 * PANEL_COLS;
/// An i32 tile: `acc[i][j]` for tile row `i`, column `j`.
type Tile = [[i32; TILE_COLS]; TILE_ROWS];

/// `acc[i][16·p + j] = Σ_{k < 4·groups} a[i][k] · q_p[k][j]` for rows `i < rows` and panels
/// `p < panels`, where `a` is one packed A panel (per group of `ka` k values, `mr` rows of
/// `ka` u8, or i8 for a `signed` spec) and panel `p` starts at `b + p · stride` (per group of
/// 4 k, 16 columns of 4 i8). `pf`: bytes the kernel may ask for into L2 while it computes
/// (the weights read next; only the AVX-512 VNNI kernel does).
///
/// # Safety
/// `1 <= rows <= mr` and `1 <= panels <= np` of the kernel's [`Spec`]; `a` holds
/// `a_panel_len(groups)` bytes; each panel holds `groups · 64` bytes; the CPU has the path's
/// instructions.
type KernelFn = unsafe fn(
    groups: usize,
    a: *const u8,
    b: *const u8,
    stride: usize,
    rows: usize,
    panels: usize,
    pf: &[u8],
    acc: &mut Tile,
);

/// The int8 kernel of one dense layer: packed weights, per-column scales, column sums.
#[derive(Clone, Debug)]
pub(crate) struct Int8Weights {
    pub in_dim: usize,
    pub out_dim: usize,
    pub packed: WeightBytes,
    pub scales: Vec<f32>,
    /// `Σ_i q[i][o]` per column over each K chunk (`[chunks][out]`, see [`K_CHUNK`]),
    /// computed on first use (so opening a mapped file reads no weight).
    colsums: OnceLock<Vec<i32>>,
    pub path: Int8Path,
}

impl Int8Weights {
    /// Packs a quantized kernel for `path` (which must be available).
    pub fn new(q: &QuantizedKernel, path: Int8Path) -> Int8Weights {
        assert_eq!(q.values.len(), q.in_dim * q.out_dim, "int8 kernel length");
        assert_eq!(q.scales.len(), q.out_dim, "int8 scales length");
        Int8Weights {
            in_dim: q.in_dim,
            out_dim: q.out_dim,
            packed: WeightBytes::Owned(pack::pack_weights(q)),
            scales: q.scales.clone(),
            colsums: OnceLock::new(),
            path,
        }
    }

    /// Wraps already-packed bytes, checking their length and the scales'.
    pub fn from_packed(
        in_dim: usize,
        out_dim: usize,
        packed: WeightBytes,
        scales: Vec<f32>,
        path: Int8Path,
    ) -> Result<Int8Weights> {
        let want = in_dim
            .checked_add(K_GROUP)
            .zip(out_dim.checked_add(PANEL_COLS))
            .and_then(|(k, n)| k.checked_mul(n))
            .map(|_| packed_len(in_dim, out_dim))
            .ok_or_else(|| Error::Shape(format!("int8 kernel [{in_dim}, {out_dim}] too large")))?;
        if packed.len() != want {
            return Err(Error::Shape(format!(
                "packed int8 kernel [{in_dim}, {out_dim}]: {} bytes, expected {want} \
                 (layout version {INT8_LAYOUT_VERSION})",
                packed.len()
            )));
        }
        if scales.len() != out_dim {
            return Err(Error::Shape(format!(
                "int8 kernel [{in_dim}, {out_dim}]: {} scales, expected {out_dim}",
                scales.len()
            )));
        }
        Ok(Int8Weights {
            in_dim,
            out_dim,
            packed,
            scales,
            colsums: OnceLock::new(),
            path,
        })
    }

    fn colsums(&self) -> &[i32] {
        self.colsums
            .get_or_init(|| pack::column_sums(self.packed.as_bytes(), self.in_dim, self.out_dim))
    }

    /// x: `[rows, in]` -> out: `[rows, out]` = `act(x @ kernel + bias)` on the layer's path.
    ///
    /// Callers check `x`, `out` and `bias` lengths.
    pub fn forward(
        &self,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        bias: &[f32],
        act: Activation,
        pool: &Pool,
    ) {
        self.forward_spec(self.path.spec(), x, rows, out, bias, act, pool)
    }

    /// [`Int8Weights::forward`] with explicit kernels (tests run the portable kernel at the
    /// AVX2 path's activation levels).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_spec(
        &self,
        spec: Spec,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        bias: &[f32],
        act: Activation,
        pool: &Pool,
    ) {
        let (k, n) = (self.in_dim, self.out_dim);
        if rows == 0 || n == 0 {
            return;
        }
        let groups = k.div_ceil(K_GROUP);
        let panels = n.div_ceil(PANEL_COLS);
        let tiles = panels.div_ceil(spec.np);
        let colsums = self.colsums();
        let bytes = self.packed.as_bytes();
        // Below ~2M multiply-adds a wake-up costs more than the split saves.
        let threads = if rows * n * k.max(1) < (1 << 21) {
            1
        } else {
            pool.threads().min(tiles)
        };
        // Rows per block: the block's activations (`mc · K` bytes) stay in L2 next to the
        // weight panels streaming through it; past ~96 KiB the AVX2 kernel measured at 55-60%
        // of its in-cache rate on Zen 3 (K = 3072: 32 rows per block, 97% of it).
        let block = if spec.zmm {
            A_BLOCK_BYTES_ZMM
        } else {
            A_BLOCK_BYTES
        };
        let mc = ((block / (groups * K_GROUP).max(1)) / spec.mr).max(1) * spec.mr;
        pool.with_scratch(
            |s| &s.int8,
            |qa| {
                pack::quantize_rows(x, rows, k, spec, qa, pool, threads);
                let qa = &*qa;
                let out_ptr = OutPtr(out.as_mut_ptr());
                let task = |t: usize| {
                    let out_ptr: OutPtr = out_ptr;
                    let (t0, t1) = (t * tiles / threads, (t + 1) * tiles / threads);
                    let mut acc: Tile = [[0; TILE_COLS]; TILE_ROWS];
                    for rb in (0..rows).step_by(mc) {
                        for tile in t0..t1 {
                            let p0 = tile * spec.np;
                            let np = spec.np.min(panels - p0);
                            let j0 = p0 * PANEL_COLS;
                            let ncur = (np * PANEL_COLS).min(n - j0);
                            let b0 = p0 * groups * 64;
                            // The weights this task reads next: the next tile's, or the first
                            // tile's again for the next row block.
                            let next = if tile + 1 < t1 {
                                Some(tile + 1)
                            } else {
                                Some(t0).filter(|_| rb + mc < rows)
                            };
                            let next = next.map(|t| {
                                let p = t * spec.np;
                                let len = spec.np.min(panels - p) * groups * 64;
                                &bytes[p * groups * 64..][..len]
                            });
                            let rend = rows.min(rb + mc);
                            let strips = (rend - rb).div_ceil(spec.mr);
                            for r0 in (rb..rend).step_by(spec.mr) {
                                let mcur = spec.mr.min(rows - r0);
                                let a0 = r0 / spec.mr * spec.a_panel_len(groups);
                                prefetch_tile(out_ptr.0.wrapping_add(r0 * n + j0), n, mcur, ncur);
                                let pf =
                                    next.map_or(&[][..], |w| share(w, (r0 - rb) / spec.mr, strips));
                                // At least one chunk, so that K = 0 still writes `act(bias)`.
                                let mut g0 = 0;
                                loop {
                                    let gc = (K_CHUNK / K_GROUP).min(groups - g0);
                                    // SAFETY: the A panel at `a0` holds `groups · mr · 4` bytes
                                    // (`quantize_rows`) and panels `p0..p0+np` hold `groups · 64`
                                    // bytes each at stride `groups · 64` inside `bytes` (length
                                    // checked against `packed_len`), so the chunk `g0..g0+gc` is in
                                    // bounds; `mcur <= mr`, `np <= spec.np`; the path was checked
                                    // available when the layer was built.
                                    unsafe {
                                        (spec.kernel)(
                                            gc,
                                            qa.data.as_ptr().add(a0 + g0 * spec.mr * 4),
                                            bytes.as_ptr().add(b0 + g0 * 64),
                                            groups * 64,
                                            mcur,
                                            np,
                                            if g0 == 0 { pf } else { &[] },
                                            &mut acc,
                                        )
                                    };
                                    let cols = j0..j0 + ncur;
                                    let e = TileEpilogue {
                                        acc: &acc,
                                        rows: mcur,
                                        t: &qa.scale[r0..r0 + mcur],
                                        z: &qa.zero[r0..r0 + mcur],
                                        s: &self.scales[cols.clone()],
                                        colsum: &colsums[g0 / (K_CHUNK / K_GROUP) * n..]
                                            [cols.clone()],
                                        bias: &bias[cols],
                                        outliers: &qa.outliers[r0..r0 + mcur],
                                        w: &bytes[b0..b0 + np * groups * 64],
                                        wstride: groups * 64,
                                        // SAFETY (of the writes through it): rows `r0..r0+mcur <=
                                        // rows`, columns `j0..j0+ncur <= n` lie inside `out` (`rows ·
                                        // n` floats, checked by the caller); this task alone writes
                                        // the columns of its tiles.
                                        y: out_ptr.0.wrapping_add(r0 * n + j0),
                                        ldy: n,
                                        first: g0 == 0,
                                        act: if g0 + gc == groups {
                                            act
                                        } else {
                                            Activation::Identity
                                        },
                                    };
                                    // SAFETY: as stated where `e.y` is made.
                                    let applied = unsafe { epilogue(spec, &e) };
                                    if !applied && e.act != Activation::Identity {
                                        for i in 0..mcur {
                                            // SAFETY: as stated where `e.y` is made.
                                            let y = unsafe {
                                                std::slice::from_raw_parts_mut(e.y.add(i * n), ncur)
                                            };
                                            act.apply(y);
                                        }
                                    }
                                    g0 += gc;
                                    if g0 >= groups {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                };
                if threads == 1 {
                    task(0);
                } else {
                    pool.run(threads, &task);
                }
            },
        );
    }
}

/// Asks for the cache lines of an output tile (`rows` rows of `cols` floats, `ld` apart)
/// while the kernel runs: the epilogue's stores otherwise wait for them (the output is
/// usually in L2 or L3), which measured as a large share of the epilogue.
#[inline]
fn prefetch_tile(y: *const f32, ld: usize, rows: usize, cols: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in 0..rows {
        for j in (0..cols).step_by(16).chain([cols - 1]) {
            let p = y.wrapping_add(i * ld + j) as *const i8;
            // SAFETY: a prefetch never faults, whatever the address.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (y, ld, rows, cols);
}

/// Share `ip` of `strips` of the weights `w`, whole cache lines: the part of the next
/// tile's weights that row panel `ip` of the current tile asks for into L2 while it
/// computes (`KernelFn`'s `pf`), as the f32 kernels do (`gemm::l2_prefetch`). Without it the
/// first row panel of each tile waited on the weights streaming in from memory: a whole
/// BERT-base (1,128) forward took ~25% longer than its layers one at a time with their
/// weights cached.
fn share(w: &[u8], ip: usize, strips: usize) -> &[u8] {
    let size = w.len().div_ceil(strips.max(1)).next_multiple_of(64);
    let from = (ip * size).min(w.len());
    &w[from..(from + size).min(w.len())]
}

/// The output pointer shared by tasks that write disjoint column ranges.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint columns and the caller keeps `out` mutably borrowed for the
// whole call.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// What a tile's epilogue needs: the i32 tile and the rows' and columns' parameters.
pub(crate) struct TileEpilogue<'a> {
    acc: &'a Tile,
    rows: usize,
    /// `[rows]`: activation step and zero point of each row.
    t: &'a [f32],
    z: &'a [i32],
    /// `[cols]`: weight scales, column sums and bias of the tile's columns.
    s: &'a [f32],
    colsum: &'a [i32],
    bias: &'a [f32],
    /// `[rows]`: the values each row keeps out of its int8 range.
    outliers: &'a [Outliers],
    /// The tile's weight panels (from K group 0), `wstride` bytes apart.
    w: &'a [u8],
    wstride: usize,
    /// Row `i` of the output tile starts at `y + i · ldy` (columns contiguous).
    y: *mut f32,
    ldy: usize,
    /// First K chunk: `y = … + bias` (else `y += …`).
    first: bool,
    /// The activation, on the last K chunk (else `Identity`); an epilogue may apply it.
    act: Activation,
}

/// `y[i][j] (+)= ((acc[i][j] − z[i] · colsum[j]) · t[i] + Σ outliers · q) · s[j] (+ bias[j])`
/// (see [`epilogue_row`]). The AVX2 version does the same operations in the same order, so
/// both give the same bits.
///
/// Returns whether it also applied `e.act` (only the AVX-512 epilogue does; the caller
/// applies it otherwise).
///
/// # Safety
/// `e.y + i · e.ldy + j` is valid for reads and writes for `i < e.rows`, `j < e.s.len()`,
/// and no other live reference covers it; `spec` is an available path's.
unsafe fn epilogue(spec: Spec, e: &TileEpilogue<'_>) -> bool {
    #[cfg(all(target_arch = "x86_64", bert_vnni))]
    if spec.zmm {
        // SAFETY: `spec.zmm` is set only for the AVX-512 VNNI path (AVX-512F), checked
        // available when the layer was built; the rest is the caller's contract.
        return unsafe { vnni::epilogue512(e) };
    }
    #[cfg(target_arch = "x86_64")]
    if spec.simd {
        // SAFETY: `spec.simd` is set only for paths that check AVX2 and FMA, checked
        // available when the layer was built; the rest is the caller's contract.
        unsafe { x86::epilogue(e) };
        return false;
    }
    #[cfg(target_arch = "aarch64")]
    if spec.simd {
        // SAFETY: the caller's contract (NEON is in the aarch64 base architecture).
        unsafe { arm::epilogue(e) };
        return false;
    }
    let _ = spec;
    for i in 0..e.rows {
        // SAFETY: the caller's contract.
        unsafe { epilogue_row(e, i, 0) };
    }
    false
}

/// The epilogue's arithmetic for row `i`, columns `from..` of the tile: with
/// `u = (acc − z·colsum) as f32 · t`, the first K chunk writes
/// `y = fma(fma(x₁, q₁, fma(x₀, q₀, u)), s, bias)` (outliers `x₀, x₁` with their weights
/// `q₀, q₁` of the column), later chunks `y = fma(u, s, y)`. `f32::mul_add` rounds once,
/// like the SIMD `vfmadd`, so every path gives the same bits.
///
/// # Safety
/// As [`epilogue`], with `i < e.rows`.
unsafe fn epilogue_row(e: &TileEpilogue<'_>, i: usize, from: usize) {
    let (t, z, o) = (e.t[i], e.z[i], &e.outliers[i]);
    let slots = if e.wstride == 0 { 0 } else { OUTLIERS };
    for j in from..e.s.len() {
        // Exact in i32 by the K_CHUNK bound (wrapping ops: the true result fits).
        let d = e.acc[i][j].wrapping_sub(z.wrapping_mul(e.colsum[j]));
        let mut u = d as f32 * t;
        // SAFETY: the caller's contract.
        unsafe {
            let y = e.y.add(i * e.ldy + j);
            *y = if e.first {
                // Every slot, as the SIMD version does (an unused one, value 0 at index 0,
                // leaves `u` as it is); none when K = 0 (no weights, no outliers).
                for (&c, &x) in o.idx.iter().zip(&o.val).take(slots) {
                    u = x.mul_add(weight(e, c as usize, j) as f32, u);
                }
                u.mul_add(e.s[j], e.bias[j])
            } else {
                u.mul_add(e.s[j], *y)
            };
        }
    }
}

/// The int8 weight `q[c][j]` of the tile's column `j`, read from the packed panels.
fn weight(e: &TileEpilogue<'_>, c: usize, j: usize) -> i8 {
    let at = j / PANEL_COLS * e.wstride + c / K_GROUP * 64 + j % PANEL_COLS * K_GROUP + c % K_GROUP;
    e.w[at] as i8
}

/// The values a row keeps out of its int8 range: its [`OUTLIERS`] largest magnitudes (ties
/// to the lower index), multiplied in f32 by the int8 weights in the epilogue. Unused slots
/// hold value 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Outliers {
    pub idx: [u32; OUTLIERS],
    pub val: [f32; OUTLIERS],
}

/// Activations of one call, quantized and packed into `mr`-row panels (the context's
/// scratch: `cpu::scratch`).
#[derive(Default)]
pub(crate) struct QuantizedRows {
    /// Panels of `mr` rows: per K group, `mr` rows of 4 u8 (rows past the end are zero).
    pub data: Vec<u8>,
    /// `[rows]`: `t`, the step of each row.
    pub scale: Vec<f32>,
    /// `[rows]`: `z`, the zero point of each row.
    pub zero: Vec<i32>,
    /// `[rows]`: the values each row keeps in f32.
    pub outliers: Vec<Outliers>,
}

#[cfg(test)]
mod tests;
