//! The CPU back end: f32 kernels (with f16 and int8 weight storage) and [`Cpu`], its
//! implementation of [`Backend`](super::Backend).
//!
//! Layouts are row-major. Dense kernels keep Google's `[in, out]` layout
//! (`modeling.py` applies `x @ kernel + bias`).
//!
//! # Kernels
//! - [`Dense`]: `x @ kernel + bias`. [`Dense::new`] packs the weights once into the panel
//!   layout of the best micro-kernel this CPU has (AVX-512 8x48, AVX2+FMA 4x24 or portable
//!   4x8; see `cpu/microkernel.rs`); the forward call packs the activations per call into
//!   reusable per-thread scratch. [`Dense::forward_act`] fuses an [`Activation`] into the
//!   GEMM's epilogue (e.g. `intermediate/dense` + GELU) so the output is written once.
//!   [`Dense::new_f16`] keeps an f16 kernel (converted panel by panel as the GEMM runs;
//!   `cpu/f16.rs`), [`Dense::new_int8`] / [`Dense::from_int8_packed`] an int8 one (the int8
//!   GEMM of [`super::int8`]); the forward calls are the same.
//! - [`sgemm`]: `C = alpha·A·B + beta·C` with (row, column) strides for every operand, so
//!   `Q·Kᵀ` reads K transposed in place, and training's `xᵀ·dy` needs no copy. `beta == 0`
//!   does not read `C` (BLAS semantics).
//! - [`attention`]: self-attention heads with their scores kept in L1 (`cpu/attention.rs`,
//!   which also holds the training record and backward pass).
//! - Row kernels, vectorized (AVX-512 / AVX2+FMA / portable, picked at run time):
//!   [`layer_norm`], [`layer_norm_residual`] (fuses the residual add before the norm),
//!   [`softmax_rows`], [`gelu_tanh`], [`gelu_erf`], [`tanh`], [`add_assign`].
//! - The training ops: LayerNorm with its record and backward (`norm.rs`), dropout masks
//!   and activation derivatives (`elementwise.rs`), row gathers and scatters (`rows.rs`),
//!   the loss (`loss.rs`) and the optimizer's passes (`optim.rs`).
//!
//! Work is split over the context's [`Pool`] (column ranges of `C` first, so each thread
//! reads only its share of the weights). Results do not depend on the thread count: every
//! element of `C` is summed in the same order whatever the split, and every reduction over
//! rows adds fixed chunks in a fixed order (`par.rs`).
//!
//! # Accuracy (tested against f64 references in this module)
//! - GEMM: within `4e-6 · Σ|a||b|` of the exact product, `K` summed in blocks of 256.
//! - `exp` inside softmax/GELU/tanh: relative error below 2.5e-7 (Cephes polynomial).
//! - [`gelu_tanh`], [`gelu_erf`]: absolute error ≤ 1e-6 against the f64 formula over
//!   [-20, 20]; [`tanh`]: ≤ 1e-6 absolute and relative.

mod attention;
mod backend;
mod dense;
mod elementwise;
mod f16;
mod gemm;
mod isa;
mod lanes;
mod loss;
mod math;
mod microkernel;
mod norm;
mod optim;
mod pack;
mod par;
mod rows;
pub(crate) mod scratch;

use super::Pool;
pub use crate::backend::Activation;
pub use attention::attention;
pub use backend::{Cpu, CpuExec};
pub use dense::Dense;
use gemm::{BSrc, CMut};
pub use isa::Isa;
use math::Path;
use pack::MatRef;
pub use rows::Table;

/// Floats of a `[k, n]` f32 kernel packed in `nr`-column panels (see
/// [`crate::weights::QuantizedTensor::F32Packed`]).
pub(crate) fn packed_f32_len(k: usize, n: usize, nr: usize) -> Option<usize> {
    pack::packed_len(k, n, nr)
}

/// The `[k, n]` row-major kernel back from panels of `nr` columns in `kc`-row blocks.
pub(crate) fn unpack_f32(packed: &[f32], k: usize, n: usize, nr: usize, kc: usize) -> Vec<f32> {
    pack::unpack(packed, k, n, nr, kc)
}

/// A `[k, n]` row-major kernel packed in `isa`'s f32 panel layout: the values and the layout
/// `(nr, kc)`, as a `.bert` file stores them.
pub(crate) fn pack_f32(isa: Isa, kernel: &[f32], k: usize, n: usize) -> (Vec<f32>, (usize, usize)) {
    let (nr, kc) = pack::layout(isa);
    let mut out = vec![0.0; pack::packed_len(k, n, nr).unwrap_or(0)];
    let view = MatRef {
        data: kernel,
        rs: n,
        cs: 1,
    };
    pack::pack_into(&mut out, view, k, n, nr, kc);
    (out, (nr, kc))
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
    let (a, b, c) = ((a, a_strides), (b, b_strides), (c, c_strides));
    product(
        isa,
        (m, k, n),
        alpha,
        a,
        b,
        beta,
        c,
        None,
        Activation::Identity,
        pool,
    )
}

/// `c = act(alpha · a @ b + beta · c + bias)`: [`sgemm_with_isa`] with the dense layers'
/// epilogue (training's plain kernels take this path).
#[allow(clippy::too_many_arguments)]
pub(crate) fn product(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    (a, a_strides): (&[f32], (isize, isize)),
    (b, b_strides): (&[f32], (isize, isize)),
    beta: f32,
    (c, c_strides): (&mut [f32], (isize, isize)),
    bias: Option<&[f32]>,
    act: Activation,
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
    assert!(bias.map_or(true, |b| b.len() >= n), "sgemm: bias too short");
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
    // slices (strides are non-negative, checked by `span`) and that `bias` has `n` floats;
    // `c` is borrowed mutably for the call, so nothing else reads or writes it;
    // `distinct_elements` guarantees that the threads' disjoint (i, j) ranges are disjoint
    // memory.
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
            bias,
            act,
            pool,
        )
    }
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
