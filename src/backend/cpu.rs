//! f32 CPU kernels: dense layers, general matmul, LayerNorm, softmax, activations.
//!
//! Layouts are row-major. Dense kernels keep Google's `[in, out]` layout
//! (`modeling.py` applies `x @ kernel + bias`).
//!
//! # Kernels
//! - [`Dense`]: `x @ kernel + bias`. [`Dense::new`] packs the weights once into the panel
//!   layout of the best micro-kernel this CPU has (AVX2+FMA 4x24 or portable 4x8; see `cpu/microkernel.rs`); [`Dense::forward`] packs the activations per call into
//!   reusable per-thread scratch. [`Dense::forward_act`] fuses an [`Activation`] into the
//!   GEMM's epilogue (e.g. `intermediate/dense` + GELU) so the output is written once.
//!   [`Dense::new_f16`] keeps an f16 kernel (converted panel by panel as the GEMM runs;
//!   `cpu/f16.rs`), [`Dense::new_int8`] / [`Dense::from_int8_packed`] an int8 one (the int8
//!   GEMM of [`super::int8`]); the forward calls are the same.
//! - [`sgemm`]: `C = alpha·A·B + beta·C` with (row, column) strides for every operand, so
//!   `Q·Kᵀ` reads K transposed in place. `beta == 0` does not read `C` (BLAS semantics).
//! - Row kernels, vectorized (AVX2+FMA / portable, picked at run time):
//!   [`layer_norm`], [`layer_norm_residual`] (fuses the residual add before the norm),
//!   [`softmax_rows`], [`gelu_tanh`], [`gelu_erf`], [`tanh`], [`add_assign`].
//!
//! Work is split over the context's [`Pool`] (column ranges of `C` first, so each thread
//! reads only its share of the weights). Results do not depend on the thread count: every
//! element of `C` is summed in the same order whatever the split.
//!
//! # Accuracy (tested against f64 references in this module)
//! - GEMM: within `4e-6 · Σ|a||b|` of the exact product, `K` summed in blocks of 256.
//! - `exp` inside softmax/GELU/tanh: relative error below 2.5e-7 (Cephes polynomial).
//! - [`gelu_tanh`], [`gelu_erf`]: absolute error ≤ 1e-6 against the f64 formula over
//!   [-20, 20]; [`tanh`]: ≤ 1e-6 absolute and relative.

mod f16;
mod gemm;
mod lanes;
mod math;
mod microkernel;

use super::int8::{Int8Path, Int8Weights, QuantizedKernel};
use super::{Pool, WeightBytes, WeightDType};
use crate::{Error, Result};
pub use gemm::Isa;
use gemm::{BSrc, CMut, MatRef, PackedB};
use math::Path;

/// An activation a dense layer can apply in its epilogue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// None: `x @ kernel + bias`.
    #[default]
    Identity,
    /// Google's `gelu` (tanh approximation; [`gelu_tanh`]).
    GeluTanh,
    /// The exact erf GELU of Hugging Face checkpoints ([`gelu_erf`]).
    GeluErf,
    /// `tanh` (the pooler).
    Tanh,
}

impl Activation {
    /// Applies the activation to every element of `x`, in place.
    pub fn apply(self, x: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::GeluTanh => gelu_tanh(x),
            Activation::GeluErf => gelu_erf(x),
            Activation::Tanh => tanh(x),
        }
    }
}

/// A dense layer `y = x @ kernel + bias` with `kernel: [in, out]` (Google's layout).
///
/// The kernel is stored as f32 (packed once for the f32 micro-kernel), f16 (converted while
/// each GEMM packs its blocks) or int8 (packed once in the layout of [`super::int8`]); the
/// model code calls [`Dense::forward_act`] whatever the storage.
#[derive(Debug, Clone)]
pub struct Dense {
    in_dim: usize,
    out_dim: usize,
    kernel: Kernel,
    /// `[out]`
    bias: Vec<f32>,
}

#[derive(Debug, Clone)]
enum Kernel {
    /// `[in, out]`, packed by [`PackedB`].
    F32(PackedB),
    /// `[in, out]` f16 little-endian bytes; the f32 micro-kernel `isa` runs the GEMM.
    F16 {
        bytes: WeightBytes,
        isa: Isa,
    },
    Int8(Int8Weights),
}

impl Dense {
    /// Builds a dense layer from a `[in, out]` kernel and an `[out]` bias, packed for the best
    /// micro-kernel this CPU runs.
    ///
    /// Panics only on programmer error (lengths inconsistent with `in_dim`/`out_dim`); loaders
    /// check shapes before calling.
    pub fn new(in_dim: usize, out_dim: usize, kernel: Vec<f32>, bias: Vec<f32>) -> Self {
        Self::with_isa(Isa::detect(), in_dim, out_dim, kernel, bias)
    }

    /// As [`Dense::new`] with an explicit micro-kernel (tests and benchmarks); panics if the
    /// CPU lacks it ([`Isa::available`]).
    pub fn with_isa(
        isa: Isa,
        in_dim: usize,
        out_dim: usize,
        kernel: Vec<f32>,
        bias: Vec<f32>,
    ) -> Self {
        Self::packed_from(isa, in_dim, out_dim, &kernel, bias)
    }

    /// As [`Dense::new`] from a borrowed kernel (the loaders' tensors): packing copies it
    /// anyway, so a `Vec` of it would be one more pass over every weight.
    pub fn from_slice(in_dim: usize, out_dim: usize, kernel: &[f32], bias: Vec<f32>) -> Self {
        Self::packed_from(Isa::detect(), in_dim, out_dim, kernel, bias)
    }

    fn packed_from(
        isa: Isa,
        in_dim: usize,
        out_dim: usize,
        kernel: &[f32],
        bias: Vec<f32>,
    ) -> Self {
        assert_eq!(kernel.len(), in_dim * out_dim, "Dense kernel length");
        assert_eq!(bias.len(), out_dim, "Dense bias length");
        let view = MatRef {
            data: kernel,
            rs: out_dim,
            cs: 1,
        };
        Dense {
            in_dim,
            out_dim,
            kernel: Kernel::F32(PackedB::new(isa, in_dim, out_dim, view)),
            bias,
        }
    }

    /// A dense layer whose `[in, out]` kernel is IEEE half precision (little-endian bytes,
    /// possibly borrowed from a memory map). Each forward call converts the blocks it packs,
    /// so the f32 kernel never exists in memory as a whole.
    pub fn new_f16(
        in_dim: usize,
        out_dim: usize,
        kernel: WeightBytes,
        bias: Vec<f32>,
    ) -> Result<Dense> {
        Self::new_f16_with_isa(Isa::detect(), in_dim, out_dim, kernel, bias)
    }

    /// As [`Dense::new_f16`] with an explicit f32 micro-kernel (tests and benchmarks); an
    /// error if the CPU lacks it.
    pub fn new_f16_with_isa(
        isa: Isa,
        in_dim: usize,
        out_dim: usize,
        kernel: WeightBytes,
        bias: Vec<f32>,
    ) -> Result<Dense> {
        if !isa.available() {
            return Err(Error::Unsupported(format!(
                "{isa:?} kernels: this CPU lacks them"
            )));
        }
        let want = in_dim
            .checked_mul(out_dim)
            .and_then(|x| x.checked_mul(2))
            .ok_or_else(|| Error::Shape(format!("f16 kernel [{in_dim}, {out_dim}] too large")))?;
        if kernel.len() != want {
            return Err(Error::Shape(format!(
                "f16 kernel [{in_dim}, {out_dim}]: {} bytes, expected {want}",
                kernel.len()
            )));
        }
        check_bias(out_dim, &bias)?;
        Ok(Dense {
            in_dim,
            out_dim,
            kernel: Kernel::F16 { bytes: kernel, isa },
            bias,
        })
    }

    /// An int8 dense layer from a quantized kernel, packed once for every int8 code path
    /// (the best one this CPU has runs it; see [`super::int8`] for the numerics).
    ///
    /// Panics only on programmer error (lengths inconsistent with the kernel's dimensions).
    pub fn new_int8(q: &QuantizedKernel, bias: Vec<f32>) -> Dense {
        assert_eq!(bias.len(), q.out_dim, "Dense bias length");
        Dense {
            in_dim: q.in_dim,
            out_dim: q.out_dim,
            kernel: Kernel::Int8(Int8Weights::new(q, Int8Path::detect())),
            bias,
        }
    }

    /// As [`Dense::new_int8`] on a forced code path (tests and benchmarks); an error if the
    /// CPU or build lacks it.
    pub fn new_int8_with_path(
        q: &QuantizedKernel,
        bias: Vec<f32>,
        path: Int8Path,
    ) -> Result<Dense> {
        check_path(path)?;
        check_bias(q.out_dim, &bias)?;
        if q.values.len() != q.in_dim * q.out_dim || q.scales.len() != q.out_dim {
            return Err(Error::Shape(format!(
                "int8 kernel [{}, {}]: {} values, {} scales",
                q.in_dim,
                q.out_dim,
                q.values.len(),
                q.scales.len()
            )));
        }
        Ok(Dense {
            in_dim: q.in_dim,
            out_dim: q.out_dim,
            kernel: Kernel::Int8(Int8Weights::new(q, path)),
            bias,
        })
    }

    /// An int8 dense layer from weights already in the packed layout
    /// ([`super::int8::INT8_LAYOUT_VERSION`], e.g. borrowed from a `.bert` file): no
    /// repacking, and no weight is read until the first forward call. Checks the lengths of
    /// `packed` ([`super::int8::packed_len`]), `scales` and `bias`; any alignment works.
    pub fn from_int8_packed(
        in_dim: usize,
        out_dim: usize,
        packed: WeightBytes,
        scales: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<Dense> {
        Self::from_int8_packed_with_path(in_dim, out_dim, packed, scales, bias, Int8Path::detect())
    }

    /// As [`Dense::from_int8_packed`] on a forced code path (tests and benchmarks).
    pub fn from_int8_packed_with_path(
        in_dim: usize,
        out_dim: usize,
        packed: WeightBytes,
        scales: Vec<f32>,
        bias: Vec<f32>,
        path: Int8Path,
    ) -> Result<Dense> {
        check_path(path)?;
        check_bias(out_dim, &bias)?;
        Ok(Dense {
            in_dim,
            out_dim,
            kernel: Kernel::Int8(Int8Weights::from_packed(
                in_dim, out_dim, packed, scales, path,
            )?),
            bias,
        })
    }

    /// The packed int8 kernel bytes (what a file stores), if this layer is int8.
    pub fn int8_packed_bytes(&self) -> Option<&[u8]> {
        match &self.kernel {
            Kernel::Int8(w) => Some(w.packed.as_bytes()),
            _ => None,
        }
    }

    /// The per-output-channel int8 scales `[out]`, if this layer is int8.
    pub fn int8_scales(&self) -> Option<&[f32]> {
        match &self.kernel {
            Kernel::Int8(w) => Some(&w.scales),
            _ => None,
        }
    }

    /// The int8 code path this layer runs, if it is int8.
    pub fn int8_path(&self) -> Option<Int8Path> {
        match &self.kernel {
            Kernel::Int8(w) => Some(w.path),
            _ => None,
        }
    }

    /// Which storage the kernel has.
    pub fn dtype(&self) -> WeightDType {
        match &self.kernel {
            Kernel::F32(_) => WeightDType::F32,
            Kernel::F16 { .. } => WeightDType::F16,
            Kernel::Int8(_) => WeightDType::Int8,
        }
    }

    /// The bias `[out]`.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// The f32 micro-kernel the layer runs (f32 and f16 storage; for int8, the one this CPU
    /// would use).
    pub fn isa(&self) -> Isa {
        match &self.kernel {
            Kernel::F32(p) => p.isa,
            Kernel::F16 { isa, .. } => *isa,
            Kernel::Int8(_) => Isa::detect(),
        }
    }

    /// x: `[rows, in]` -> out: `[rows, out]`.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], pool: &Pool) {
        self.forward_act(x, rows, out, Activation::Identity, pool)
    }

    /// x: `[rows, in]` -> out: `[rows, out]` = `act(x @ kernel + bias)`, the activation fused
    /// into the GEMM epilogue (`modeling.py`'s `intermediate` dense layer with `gelu`, the
    /// pooler with `tanh`).
    pub fn forward_act(
        &self,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        act: Activation,
        pool: &Pool,
    ) {
        assert!(x.len() >= rows * self.in_dim, "Dense: x too short");
        assert!(out.len() >= rows * self.out_dim, "Dense: out too short");
        let (k, n) = (self.in_dim, self.out_dim);
        let (isa, b) = match &self.kernel {
            Kernel::F32(p) => (p.isa, BSrc::Packed(p)),
            Kernel::F16 { bytes, isa } => (*isa, BSrc::F16(bytes.as_bytes())),
            Kernel::Int8(w) => {
                w.forward(x, rows, out, &self.bias, act, pool);
                return;
            }
        };
        let c = CMut {
            ptr: out.as_mut_ptr(),
            rs: n as isize,
            cs: 1,
        };
        // SAFETY: `out` holds `rows * n` floats (asserted) and stays mutably borrowed for the
        // call; `x` holds `[rows, k]` (asserted); `bias` has `n` floats and an f16 kernel
        // `k * n * 2` bytes (checked in the constructors); the constructors checked the ISA.
        unsafe {
            gemm::gemm(
                isa,
                rows,
                k,
                n,
                1.0,
                MatRef {
                    data: x,
                    rs: k,
                    cs: 1,
                },
                b,
                0.0,
                c,
                Some(&self.bias),
                act,
                pool,
            )
        }
    }
}

fn check_bias(out_dim: usize, bias: &[f32]) -> Result<()> {
    if bias.len() != out_dim {
        return Err(Error::Shape(format!(
            "dense bias: {} values, expected {out_dim}",
            bias.len()
        )));
    }
    Ok(())
}

fn check_path(path: Int8Path) -> Result<()> {
    if !path.available() {
        return Err(Error::Unsupported(format!(
            "int8 path {path:?}: this CPU or build lacks it"
        )));
    }
    Ok(())
}

/// `c = alpha * a @ b + beta * c` with `a: [m, k]`, `b: [k, n]`, `c: [m, n]`, each given with
/// its (row stride, column stride) in elements, so transposed operands need no copy.
/// `beta == 0` overwrites `c` without reading it.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    a_strides: (isize, isize),
    b: &[f32],
    b_strides: (isize, isize),
    beta: f32,
    c: &mut [f32],
    c_strides: (isize, isize),
    pool: &Pool,
) {
    sgemm_with_isa(
        Isa::detect(),
        m,
        k,
        n,
        alpha,
        a,
        a_strides,
        b,
        b_strides,
        beta,
        c,
        c_strides,
        pool,
    )
}

/// [`sgemm`] with an explicit micro-kernel (tests and benchmarks); panics if the CPU lacks
/// it.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_with_isa(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    a_strides: (isize, isize),
    b: &[f32],
    b_strides: (isize, isize),
    beta: f32,
    c: &mut [f32],
    c_strides: (isize, isize),
    pool: &Pool,
) {
    assert!(
        isa.available(),
        "{isa:?} kernels are not supported by this CPU"
    );
    if m == 0 || n == 0 {
        return;
    }
    assert!(span(m, k, a_strides) <= a.len(), "sgemm: a too short");
    assert!(span(k, n, b_strides) <= b.len(), "sgemm: b too short");
    assert!(span(m, n, c_strides) <= c.len(), "sgemm: c too short");
    assert!(
        distinct_elements(m, n, c_strides),
        "sgemm: c strides map two elements to one place"
    );
    let cm = CMut {
        ptr: c.as_mut_ptr(),
        rs: c_strides.0,
        cs: c_strides.1,
    };
    let view = |data, (rs, cs): (isize, isize)| MatRef {
        data,
        rs: rs as usize,
        cs: cs as usize,
    };
    // SAFETY: the asserts above check that every index the strides reach lies inside the
    // slices (strides are non-negative, checked by `span`); `c` is borrowed mutably for the
    // call, so nothing else reads or writes it; `distinct_elements` guarantees that the
    // threads' disjoint (i, j) ranges are disjoint memory.
    unsafe {
        gemm::gemm(
            isa,
            m,
            k,
            n,
            alpha,
            view(a, a_strides),
            BSrc::Strided(view(b, b_strides)),
            beta,
            cm,
            None,
            Activation::Identity,
            pool,
        )
    }
}

/// Multi-head self-attention of `modeling.py: attention_layer` on fused projections.
///
/// `qkv: [batch * seq, 3 * hidden]` holds each position's query, key and value (in that
/// order, each `hidden = heads * head_size` wide, head `h` in columns `h * head_size..`);
/// `mask_bias: [batch, seq]` is the additive key mask (0 for real keys, −10000 for padding);
/// writes `context: [batch * seq, hidden]`, per head
/// `softmax(q kᵀ / sqrt(head_size) + mask_bias) v`.
///
/// The `batch × heads` products are split across `pool`, each task on one thread
/// (`gemm::attention_head`: `MR` query rows at a time, scores kept in L1). Trailing padded keys of a sequence (bias ≠ 0 after its last real key)
/// are skipped: their softmax weight, `exp(−10000 + …)`, is exactly 0 in f32 whenever the
/// real logits are moderate (|logit| well below 10⁴), so the result is that of the full
/// product, and a sequence's result does not depend on how much padding its batch has.
/// A sequence with no real key keeps every key (Google's uniform-shift semantics).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    qkv: &[f32],
    batch: usize,
    seq: usize,
    heads: usize,
    head_size: usize,
    mask_bias: &[f32],
    context: &mut [f32],
    pool: &Pool,
) {
    let (d, h) = (head_size, heads * head_size);
    let rows = batch * seq;
    assert!(qkv.len() >= rows * 3 * h, "attention: qkv too short");
    assert!(mask_bias.len() >= rows, "attention: mask_bias too short");
    assert!(context.len() >= rows * h, "attention: context too short");
    if rows == 0 || d == 0 || heads == 0 {
        return;
    }
    let isa = Isa::detect();
    let scale = 1.0 / (d as f32).sqrt();
    let out = CMut {
        ptr: context.as_mut_ptr(),
        rs: h as isize,
        cs: 1,
    };
    let task = |t: usize| {
        let out: CMut = out;
        let (b, head) = (t / heads, t % heads);
        let bias = &mask_bias[b * seq..][..seq];
        // Keys up to the last real one (all of them if none is real).
        let kv = bias.iter().rposition(|&x| x == 0.0).map_or(seq, |i| i + 1);
        let base = b * seq * 3 * h + head * d;
        let view = |off: usize| MatRef {
            data: &qkv[base + off..],
            rs: 3 * h,
            cs: 1,
        };
        // SAFETY: Q, K, V of this (batch, head) are `[seq, d]` views with row stride 3h
        // inside `qkv` (asserted length), `kv <= seq`; the output tile (rows `b*seq..+seq`,
        // columns `head*d..+d` of `context`) belongs to this task alone (tasks are distinct
        // (batch, head) pairs) and `context` stays mutably borrowed until `pool.run`
        // returns; the ISA was detected.
        unsafe {
            gemm::attention_head(
                isa,
                view(0),
                view(h),
                view(2 * h),
                seq,
                kv,
                d,
                scale,
                bias,
                CMut {
                    ptr: out.ptr.add(b * seq * h + head * d),
                    rs: out.rs,
                    cs: 1,
                },
            )
        };
    };
    pool.run(batch * heads, &task);
}

/// Whether a `rows x cols` view with these (non-negative) strides reaches every element at
/// a different place (row-major-like or column-major-like nesting), so threads writing
/// different elements never write the same float.
fn distinct_elements(rows: usize, cols: usize, (rs, cs): (isize, isize)) -> bool {
    let (rs, cs) = (rs as usize, cs as usize);
    match (rows == 1, cols == 1) {
        (true, true) => true,
        (true, false) => cs >= 1,
        (false, true) => rs >= 1,
        (false, false) => (cs >= 1 && rs >= cols * cs) || (rs >= 1 && cs >= rows * rs),
    }
}

/// Number of elements a `rows x cols` view with the given strides reaches (last index + 1).
fn span(rows: usize, cols: usize, (rs, cs): (isize, isize)) -> usize {
    assert!(rs >= 0 && cs >= 0, "negative strides are not supported");
    if rows == 0 || cols == 0 {
        return 0;
    }
    (rows - 1) * rs as usize + (cols - 1) * cs as usize + 1
}

/// LayerNorm over the last dimension of `x: [rows, width]`, in place
/// (`modeling.py: layer_norm`, i.e. `tf.contrib.layers.layer_norm` with `eps`).
pub fn layer_norm(x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    if width == 0 {
        return;
    }
    math::layer_norm(Path::Auto, x, width, gamma, beta, eps)
}

/// `x = LayerNorm(x + residual)` over rows of `width` (`modeling.py`: `layer_norm(hidden +
/// input)` after attention and after the FFN), in one pass over memory.
pub fn layer_norm_residual(
    x: &mut [f32],
    residual: &[f32],
    width: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    if width == 0 {
        return;
    }
    assert_eq!(x.len(), residual.len(), "layer_norm_residual: lengths");
    math::layer_norm_residual(Path::Auto, x, residual, width, gamma, beta, eps)
}

/// Softmax over each row of `x: [rows, width]`, in place.
pub fn softmax_rows(x: &mut [f32], width: usize) {
    if width == 0 {
        return;
    }
    math::softmax_rows(Path::Auto, x, width)
}

/// Google's `gelu` (`modeling.py`): the tanh approximation
/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: &mut [f32]) {
    math::gelu_tanh(Path::Auto, x)
}

/// Hugging Face's `gelu`: the exact erf form `0.5 x (1 + erf(x / sqrt(2)))`.
pub fn gelu_erf(x: &mut [f32]) {
    math::gelu_erf(Path::Auto, x)
}

/// `tanh` in place (the pooler's activation).
pub fn tanh(x: &mut [f32]) {
    math::tanh(Path::Auto, x)
}

/// `x += y`, element-wise (residual connections).
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    math::add_assign(Path::Auto, x, y)
}

/// erf in f64 (std has none): Maclaurin series below 2.5, continued fraction for erfc
/// above; both converge to full f64 precision in that range.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let r = if ax < 2.5 {
        // Maclaurin series: erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0f64;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x2 / n;
            if n > 200.0 {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else if ax < 6.0 {
        // Continued fraction for erfc (Lentz), converges fast for x >= 2.5.
        1.0 - erfc_cf(ax)
    } else {
        1.0
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

fn erfc_cf(x: f64) -> f64 {
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + 2/(x + ...)))))
    let mut f = x;
    for k in (1..60).rev() {
        f = x + (k as f64 / 2.0) / f;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / f
}

#[cfg(test)]
mod tests;
