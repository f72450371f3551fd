//! Vectorized element-wise and row kernels: exp, softmax, LayerNorm, GELU (tanh and erf), tanh.
//!
//! Every kernel is written once as branch-free scalar code over a slice (reductions keep 16
//! partial sums so they vectorize too), then compiled per instruction set: AVX2+FMA and
//! AVX-512 on x86_64 (picked at run time), and portably (SSE2 on x86_64, NEON on aarch64).
//! The element-wise functions and the attention's soft-max run on explicit vector lanes
//! (`lanes.rs`: AVX2, AVX-512, NEON). `FMA` selects fused multiply-adds only where the
//! hardware has them, because a software `fmaf` would be slower than the whole kernel.
//!
//! Accuracy (checked against f64 in the tests below): `exp` ≤ 2 ulp-ish relative error
//! (about 2e-7) on [-87.3, 88]; results below e^-87.3 flush to 0, arguments in (88, 88.8]
//! give e^88 and larger ones infinity (the callers only need exp of non-positive values and
//! of large positive ones, where infinity is the right limit). GELU (both forms)
//! and tanh stay within 1e-6 absolute of the f64 formula over [-20, 20] (measured: see tests).

use super::lanes::{self, Scalar};

const LANES: usize = 16;

#[inline(always)]
fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// e^x for x ≤ 88 (see `lanes::exp`).
#[inline(always)]
pub(crate) fn exp<const FMA: bool>(x: f32) -> f32 {
    lanes::exp(Scalar::<FMA>(x)).0
}

/// The vector registers a kernel body works on (its `VEC` parameter).
const VEC_NONE: u8 = 0;
#[cfg(target_arch = "x86_64")]
const VEC_AVX2: u8 = 1;
#[cfg(all(target_arch = "x86_64", bert_avx512))]
const VEC_AVX512: u8 = 2;
#[cfg(target_arch = "aarch64")]
const VEC_NEON: u8 = 3;

/// Applies an element-wise function of `lanes.rs` to `x`: sixteen floats per zmm register on
/// the AVX-512 path, eight per ymm on the AVX2 path, four per NEON register on aarch64, one
/// at a time otherwise (`VEC` says which; the dispatcher below checked the CPU for it).
macro_rules! map_lanes {
    ($FMA:ident, $VEC:ident, $x:expr, $f:ty) => {{
        #[cfg(all(target_arch = "x86_64", bert_avx512))]
        if $VEC == VEC_AVX512 {
            // SAFETY: the bodies get `VEC_AVX512` only from the AVX-512 dispatcher below,
            // which checked the CPU.
            unsafe { lanes::map::<lanes::avx512::V16, $f>($x) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if $VEC == VEC_AVX2 {
            // SAFETY: the bodies get `VEC_AVX2` only from the AVX2+FMA dispatcher below,
            // which checked the CPU.
            unsafe { lanes::map::<lanes::avx2::V8, $f>($x) };
            return;
        }
        #[cfg(target_arch = "aarch64")]
        if $VEC == VEC_NEON {
            // SAFETY: NEON is in the aarch64 base architecture.
            unsafe { lanes::map::<lanes::neon::V4, $f>($x) };
            return;
        }
        for v in $x.iter_mut() {
            *v = <$f as lanes::Elementwise>::apply(Scalar::<$FMA>(*v)).0;
        }
    }};
}

#[inline(always)]
fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    let mut s = 0.0;
    for v in tail {
        s += v;
    }
    for a in acc {
        s += a;
    }
    s
}

#[inline(always)]
fn max_lanes(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &v in tail.iter().chain(acc.iter()) {
        m = if v > m { v } else { m };
    }
    m
}

#[inline(always)]
fn softmax_body<const FMA: bool, const VEC: u8>(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width) {
        let max = max_lanes(row);
        let mut acc = [0.0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for l in 0..LANES {
                c[l] = exp::<FMA>(c[l] - max);
                acc[l] += c[l];
            }
        }
        let mut sum = 0.0;
        for v in chunks.into_remainder() {
            *v = exp::<FMA>(*v - max);
            sum += *v;
        }
        for a in acc {
            sum += a;
        }
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Softmax, in place, of `rows` rows of `width` values at row stride `stride` in `x` (the
/// attention's score tile, which the P·V product then reads in place as its A operand).
#[inline(always)]
fn softmax_strided_body<const FMA: bool, const VEC: u8>(
    x: &mut [f32],
    stride: usize,
    width: usize,
    rows: usize,
) {
    for i in 0..rows {
        let row = &mut x[i * stride..][..width];
        #[cfg(all(target_arch = "x86_64", bert_avx512))]
        if VEC == VEC_AVX512 {
            // SAFETY: `VEC_AVX512` only comes from the AVX-512 dispatcher, which checked
            // the CPU.
            unsafe { lanes::softmax_row::<lanes::avx512::V16>(row) };
            continue;
        }
        #[cfg(target_arch = "x86_64")]
        if VEC == VEC_AVX2 {
            // SAFETY: `VEC_AVX2` only comes from the AVX2+FMA dispatcher, which checked the
            // CPU.
            unsafe { lanes::softmax_row::<lanes::avx2::V8>(row) };
            continue;
        }
        #[cfg(target_arch = "aarch64")]
        if VEC == VEC_NEON {
            // SAFETY: NEON is in the aarch64 base architecture.
            unsafe { lanes::softmax_row::<lanes::neon::V4>(row) };
            continue;
        }
        softmax_body::<FMA, VEC>(row, width);
    }
}

/// A row's LayerNorm moments: `(mean, 1 / sqrt(var + eps))`.
#[inline(always)]
fn moments<const FMA: bool>(row: &[f32], eps: f32) -> (f32, f32) {
    let width = row.len();
    let mean = sum_lanes(row) / width as f32;
    // Two passes (mean, then squared deviations) as TF does: no cancellation.
    let mut acc = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let mut var = 0.0;
    for v in chunks.remainder() {
        var += (v - mean) * (v - mean);
    }
    for c in chunks {
        for l in 0..LANES {
            let d = c[l] - mean;
            acc[l] = fmadd::<FMA>(d, d, acc[l]);
        }
    }
    for a in acc {
        var += a;
    }
    let var = var / width as f32;
    (mean, 1.0 / (var + eps).sqrt())
}

#[inline(always)]
fn layer_norm_row<const FMA: bool>(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let (mean, inv) = moments::<FMA>(row, eps);
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = fmadd::<FMA>((*v - mean) * inv, *g, *b);
    }
}

/// [`layer_norm_body`] that also keeps what the backward pass reads: `x̂` per element and
/// `1/σ` per row. The same operations in the same order, so the output is bit for bit that
/// of the plain kernel (a layer recomputed under gradient checkpointing matches its first
/// pass).
#[inline(always)]
fn layer_norm_record_body<const FMA: bool, const VEC: u8>(
    x: &mut [f32],
    width: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    xhat: &mut [f32],
    rstd: &mut [f32],
) {
    let rows = x.chunks_exact_mut(width).zip(xhat.chunks_exact_mut(width));
    for ((row, xh), rs) in rows.zip(rstd.iter_mut()) {
        let (mean, inv) = moments::<FMA>(row, eps);
        *rs = inv;
        for (((v, t), g), b) in row.iter_mut().zip(xh.iter_mut()).zip(gamma).zip(beta) {
            *t = (*v - mean) * inv;
            *v = fmadd::<FMA>(*t, *g, *b);
        }
    }
}

#[inline(always)]
fn layer_norm_body<const FMA: bool, const VEC: u8>(
    x: &mut [f32],
    width: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    for row in x.chunks_exact_mut(width) {
        layer_norm_row::<FMA>(row, gamma, beta, eps);
    }
}

#[inline(always)]
fn layer_norm_residual_body<const FMA: bool, const VEC: u8>(
    x: &mut [f32],
    residual: &[f32],
    width: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    for (row, res) in x.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
        for (v, r) in row.iter_mut().zip(res) {
            *v += r;
        }
        layer_norm_row::<FMA>(row, gamma, beta, eps);
    }
}

#[inline(always)]
fn add_assign_body<const FMA: bool, const VEC: u8>(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
#[inline(always)]
fn exp_body<const FMA: bool, const VEC: u8>(x: &mut [f32]) {
    map_lanes!(FMA, VEC, x, lanes::Exp)
}

#[inline(always)]
fn tanh_body<const FMA: bool, const VEC: u8>(x: &mut [f32]) {
    map_lanes!(FMA, VEC, x, lanes::Tanh)
}

#[inline(always)]
fn gelu_tanh_body<const FMA: bool, const VEC: u8>(x: &mut [f32]) {
    map_lanes!(FMA, VEC, x, lanes::GeluTanh)
}

#[inline(always)]
fn gelu_erf_body<const FMA: bool, const VEC: u8>(x: &mut [f32]) {
    map_lanes!(FMA, VEC, x, lanes::GeluErf)
}

/// Which code path the row kernels take; `Auto` picks the best one this CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Outside tests only `Auto` is used.
#[allow(dead_code)]
pub(crate) enum Path {
    Auto,
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F (Rust 1.89+ builds): the element-wise functions and the attention's soft-max
    /// sixteen lanes wide; the other kernels as on AVX2, compiled with AVX-512 enabled.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// aarch64 NEON: the element-wise functions and the attention's soft-max four lanes
    /// wide. The other kernels (LayerNorm, the plain soft-max, the residual add) are the
    /// portable bodies, which the compiler already vectorizes for NEON (the aarch64
    /// baseline), as it does for AVX2 on that path.
    #[cfg(target_arch = "aarch64")]
    Neon,
}

#[allow(dead_code)]
impl Path {
    /// The path `Auto` stands for on this CPU (`Portable` in a `--cfg bert_portable`
    /// build), or `self`.
    pub(crate) fn resolve(self) -> Path {
        if self != Path::Auto {
            return self;
        }
        if cfg!(bert_portable) {
            return Path::Portable;
        }
        #[cfg(target_arch = "x86_64")]
        for p in [Path::Avx512, Path::Avx2] {
            if p.available() {
                return p;
            }
        }
        #[cfg(target_arch = "aarch64")]
        if Path::Neon.available() {
            return Path::Neon;
        }
        Path::Portable
    }

    /// Whether this CPU can run the path (tests skip the ones it cannot).
    pub(crate) fn available(self) -> bool {
        match self {
            Path::Auto | Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => {
                cfg!(bert_avx512)
                    && Path::Avx2.available()
                    && std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(target_arch = "aarch64")]
            Path::Neon => std::arch::is_aarch64_feature_detected!("neon"),
        }
    }
}

/// Defines `pub(crate) fn $name(path, args...)` dispatching to `$body::<FMA, VEC>` compiled
/// for each instruction set.
macro_rules! dispatch {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name(path: Path, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body::<true, VEC_AVX2>($($arg),*)
                }
                #[cfg(bert_avx512)]
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body::<true, VEC_AVX512>($($arg),*)
                }
                match path.resolve() {
                    #[cfg(bert_avx512)]
                    Path::Avx512 => {
                        assert!(Path::Avx512.available(), "AVX-512 path forced on a CPU without it");
                        // SAFETY: the CPU supports avx512f, avx2 and fma (checked just above);
                        // the body is safe code.
                        return unsafe { avx512($($arg),*) };
                    }
                    Path::Avx2 => {
                        assert!(Path::Avx2.available(), "AVX2 path forced on a CPU without it");
                        // SAFETY: the CPU supports avx2 and fma (checked just above); the body
                        // is safe code.
                        return unsafe { avx2($($arg),*) };
                    }
                    _ => {}
                }
            }
            #[cfg(target_arch = "aarch64")]
            if path.resolve() == Path::Neon {
                return $body::<true, VEC_NEON>($($arg),*);
            }
            let _ = path;
            // aarch64 always has fused multiply-add; x86_64 without AVX2 may lack FMA.
            $body::<{ cfg!(target_arch = "aarch64") }, VEC_NONE>($($arg),*)
        }
    };
}

#[cfg(test)]
dispatch!(exp_slice, exp_body, (x: &mut [f32]));
dispatch!(tanh, tanh_body, (x: &mut [f32]));
dispatch!(gelu_tanh, gelu_tanh_body, (x: &mut [f32]));
dispatch!(gelu_erf, gelu_erf_body, (x: &mut [f32]));
dispatch!(softmax_rows, softmax_body, (x: &mut [f32], width: usize));
dispatch!(
    softmax_strided,
    softmax_strided_body,
    (x: &mut [f32], stride: usize, width: usize, rows: usize)
);
dispatch!(add_assign, add_assign_body, (x: &mut [f32], y: &[f32]));
dispatch!(
    layer_norm,
    layer_norm_body,
    (x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32)
);
dispatch!(
    layer_norm_residual,
    layer_norm_residual_body,
    (
        x: &mut [f32],
        residual: &[f32],
        width: usize,
        gamma: &[f32],
        beta: &[f32],
        eps: f32
    )
);
dispatch!(
    layer_norm_record,
    layer_norm_record_body,
    (
        x: &mut [f32],
        width: usize,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        xhat: &mut [f32],
        rstd: &mut [f32]
    )
);
