//! int8 dense layers: `y = act(x @ kernel + bias)` with an int8 kernel and int8 activations.
//!
//! # Numerics (the named choices)
//! - Weights: symmetric, per output channel ([`QuantizedKernel`]): `w[i][o] ≈ q[i][o] · s[o]`,
//!   `s[o] = max_i |w[i][o]| / 127`, `q ∈ [-127, 127]`.
//! - Activations: quantized per row at every call, **asymmetric u8** with a zero point:
//!   `x[r][i] ≈ (a[r][i] − z[r]) · t[r]`, `a ∈ [0, 255]`, over the row's range widened to
//!   include 0 (so 0 and the zero padding are exact). Asymmetric u8 is what the x86
//!   instructions multiply (`vpdpbusd`, `vpmaddubsw`: u8 × i8), and it spends all 256 levels
//!   on rows that are mostly positive (after GELU) as well as on centred ones.
//! - Products are summed exactly in i32, then the epilogue computes
//!   `y = t[r] · s[o] · (Σ_i a·q − z[r] · Σ_i q[i][o]) + bias[o]` in f32 and applies the
//!   activation. `Σ_i q[i][o]` (column sums) is computed once, on first use.
//! - i32 cannot overflow: each K chunk is at most [`K_CHUNK`] long
//!   (`65536 · 255 · 127 < 2³¹`); longer K sums chunks in f32.
//!
//! # Packed weight layout ([`INT8_LAYOUT_VERSION`] 1), read by every code path
//! K is padded with zeros to a multiple of [`K_GROUP`] (4) and the output columns to a multiple
//! of [`PANEL_COLS`] (16). Panels of 16 columns follow each other; inside a panel, K groups of
//! 4 follow each other; inside a group, the 16 columns follow each other, each as its 4
//! consecutive K values (i8):
//! `byte[((panel · K/4 + group) · 16 + column) · 4 + k % 4] = q[4·group + k % 4][16·panel + column]`.
//! One group is 64 bytes: one zmm for `vpdpbusd` (16 columns × 4 k summed into an i32 lane), or
//! two ymm of 8 columns for AVX2. A file stores these bytes as they are, so a model written on
//! one machine loads on any other (ARM included) without repacking.

mod pack;
mod portable;

use super::cpu::Activation;
use super::{Pool, WeightBytes};
use crate::{Error, Result};
use std::cell::RefCell;
use std::sync::OnceLock;

/// Version of the packed layout described in the module documentation; files record it.
pub const INT8_LAYOUT_VERSION: u32 = 1;
/// Output columns per packed panel.
pub const PANEL_COLS: usize = 16;
/// K values per group (one `vpdpbusd` lane).
pub const K_GROUP: usize = 4;
/// Longest K range summed in i32 before the f32 epilogue (`65536 · 255 · 127 < 2³¹`).
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
/// All paths read the same packed layout and compute the same i32 sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Path {
    /// AVX-512 VNNI (`vpdpbusd` on zmm).
    Vnni512,
    /// AVX-VNNI (`vpdpbusd` on ymm, VEX-encoded; Alder Lake, Zen 5).
    AvxVnni,
    /// AVX2 without VNNI.
    Avx2,
    /// Plain Rust (any CPU, ARM included).
    Portable,
}

impl Int8Path {
    /// The best path this CPU runs.
    pub fn detect() -> Int8Path {
        [Int8Path::Vnni512, Int8Path::AvxVnni, Int8Path::Avx2]
            .into_iter()
            .find(|p| p.available())
            .unwrap_or(Int8Path::Portable)
    }

    /// Whether this build and CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Int8Path::Portable => true,
            Int8Path::Vnni512 | Int8Path::AvxVnni | Int8Path::Avx2 => false,
        }
    }

    /// Rows per micro-kernel tile and the kernel.
    fn kernel(self) -> (usize, KernelFn) {
        // Only the portable kernel exists so far; SIMD paths report themselves unavailable.
        let _ = self;
        (portable::MR, portable::kernel)
    }
}

/// `acc[i][j] = Σ_{k < 4·groups} a[i][k] · b[k][j]` for an `MR x 16` tile: `a` is one packed
/// A panel (per group, `MR` rows of 4 u8), `b` the start of a weight panel's K range.
///
/// # Safety
/// `a` holds `groups · MR · 4` bytes, `b` holds `groups · 64`, and the CPU has the path's
/// instructions.
type KernelFn = unsafe fn(groups: usize, a: *const u8, b: *const i8, acc: &mut [[i32; 16]; 8]);

/// The int8 kernel of one dense layer: packed weights, per-column scales, column sums.
#[derive(Clone, Debug)]
pub(crate) struct Int8Weights {
    pub in_dim: usize,
    pub out_dim: usize,
    pub packed: WeightBytes,
    pub scales: Vec<f32>,
    /// `Σ_i q[i][o]` per padded column, computed on first use (so opening a mapped file
    /// reads no weight).
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
            .checked_mul(out_dim)
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

    /// x: `[rows, in]` -> out: `[rows, out]` = `act(x @ kernel + bias)`.
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
        let (k, n) = (self.in_dim, self.out_dim);
        if rows == 0 || n == 0 {
            return;
        }
        let (mr, kernel) = self.path.kernel();
        let groups = k.div_ceil(K_GROUP);
        let panels = n.div_ceil(PANEL_COLS);
        let colsums = self.colsums();
        let bytes = self.packed.as_bytes();
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let qa = &mut *s;
            pack::quantize_rows(x, rows, k, mr, qa);
            let qa = &*qa;
            let out_ptr = OutPtr(out.as_mut_ptr());
            let threads = if rows * n * k < (1 << 20) {
                1
            } else {
                pool.threads().min(panels)
            };
            let task = |t: usize| {
                let out_ptr: OutPtr = out_ptr;
                let (p0, p1) = (t * panels / threads, (t + 1) * panels / threads);
                for p in p0..p1 {
                    let j0 = p * PANEL_COLS;
                    let ncur = PANEL_COLS.min(n - j0);
                    let panel = &bytes[p * groups * 64..][..groups * 64];
                    for r0 in (0..rows).step_by(mr) {
                        let mcur = mr.min(rows - r0);
                        let apanel = &qa.data[r0 / mr * groups * mr * 4..][..groups * mr * 4];
                        let mut g0 = 0;
                        while g0 < groups {
                            let gc = (K_CHUNK / K_GROUP).min(groups - g0);
                            let mut acc = [[0i32; 16]; 8];
                            // SAFETY: `apanel` holds `groups · mr · 4` bytes and `panel`
                            // `groups · 64`, so the chunk `g0..g0+gc` of each is in bounds;
                            // the path was checked available when the weights were made.
                            unsafe {
                                kernel(
                                    gc,
                                    apanel[g0 * mr * 4..].as_ptr(),
                                    panel[g0 * 64..].as_ptr() as *const i8,
                                    &mut acc,
                                )
                            };
                            let ep = Epilogue {
                                first: g0 == 0,
                                last: g0 + gc == groups,
                                act,
                            };
                            for (i, acc_row) in acc.iter().enumerate().take(mcur) {
                                let r = r0 + i;
                                // SAFETY: row `r < rows`, columns `j0..j0+ncur < n`: inside
                                // `out` (`rows · n` floats, checked by the caller); this task
                                // alone writes the columns of panel `p`.
                                let y = unsafe {
                                    std::slice::from_raw_parts_mut(out_ptr.0.add(r * n + j0), ncur)
                                };
                                epilogue(
                                    &acc_row[..ncur],
                                    qa.scale[r],
                                    qa.zero[r],
                                    &self.scales[j0..j0 + ncur],
                                    &colsums[j0..j0 + ncur],
                                    &bias[j0..j0 + ncur],
                                    y,
                                    ep,
                                );
                            }
                            g0 += gc;
                        }
                    }
                }
            };
            if threads == 1 {
                task(0);
            } else {
                pool.run(threads, &task);
            }
        });
    }
}

/// The output pointer shared by tasks that write disjoint column panels.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint columns and the caller keeps `out` mutably borrowed for the
// whole call.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

#[derive(Clone, Copy)]
struct Epilogue {
    /// First K chunk: `y = …` (else `y += …`).
    first: bool,
    /// Last K chunk: apply the activation.
    last: bool,
    act: Activation,
}

/// `y[j] (+)= t · s[j] · (acc[j] − z · colsum[j]) (+ bias[j])`, then the activation.
#[allow(clippy::too_many_arguments)]
fn epilogue(
    acc: &[i32],
    t: f32,
    z: i32,
    s: &[f32],
    colsum: &[i32],
    bias: &[f32],
    y: &mut [f32],
    ep: Epilogue,
) {
    for j in 0..y.len() {
        // Exact in i32 by the K_CHUNK bound (wrapping ops: the true result fits).
        let d = acc[j].wrapping_sub(z.wrapping_mul(colsum[j]));
        let v = d as f32 * (t * s[j]);
        y[j] = if ep.first { v + bias[j] } else { y[j] + v };
    }
    if ep.last {
        ep.act.apply(y);
    }
}

/// Activations of one call, quantized and packed into `MR`-row panels.
#[derive(Default)]
pub(crate) struct QuantizedRows {
    /// Panels of `MR` rows: per K group, `MR` rows of 4 u8 (rows past the end are zero).
    pub data: Vec<u8>,
    /// `[rows]`: `t`, the step of each row.
    pub scale: Vec<f32>,
    /// `[rows]`: `z`, the zero point of each row.
    pub zero: Vec<i32>,
}

thread_local! {
    /// The calling thread's quantized activations (grows, never shrinks).
    static SCRATCH: RefCell<QuantizedRows> = RefCell::new(QuantizedRows::default());
}

#[cfg(test)]
mod tests;
