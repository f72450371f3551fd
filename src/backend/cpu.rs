//! f32 CPU kernels: dense layers, general matmul, LayerNorm, softmax, activations.
//!
//! Layouts are row-major. Dense kernels keep Google's `[in, out]` layout
//! (`modeling.py` applies `x @ kernel + bias`).

use super::Pool;

/// A dense layer `y = x @ kernel + bias` with `kernel: [in, out]` (Google's layout).
#[derive(Debug, Clone)]
pub struct Dense {
    in_dim: usize,
    out_dim: usize,
    /// `[in, out]`, row-major.
    kernel: Vec<f32>,
    /// `[out]`
    bias: Vec<f32>,
}

impl Dense {
    /// Builds a dense layer from a `[in, out]` kernel and an `[out]` bias.
    ///
    /// Panics only on programmer error (lengths inconsistent with `in_dim`/`out_dim`); loaders
    /// check shapes before calling.
    pub fn new(in_dim: usize, out_dim: usize, kernel: Vec<f32>, bias: Vec<f32>) -> Self {
        assert_eq!(kernel.len(), in_dim * out_dim, "Dense kernel length");
        assert_eq!(bias.len(), out_dim, "Dense bias length");
        Dense {
            in_dim,
            out_dim,
            kernel,
            bias,
        }
    }

    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// x: `[rows, in]` -> out: `[rows, out]`.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], pool: &Pool) {
        debug_assert_eq!(x.len(), rows * self.in_dim);
        debug_assert_eq!(out.len(), rows * self.out_dim);
        for row in out.chunks_exact_mut(self.out_dim) {
            row.copy_from_slice(&self.bias);
        }
        let (k, n) = (self.in_dim, self.out_dim);
        sgemm(
            rows,
            k,
            n,
            1.0,
            x,
            (k as isize, 1),
            &self.kernel,
            (n as isize, 1),
            1.0,
            out,
            (n as isize, 1),
            pool,
        );
    }
}

/// `c = alpha * a @ b + beta * c` with `a: [m, k]`, `b: [k, n]`, `c: [m, n]`, each given with
/// its (row stride, column stride) in elements, so transposed operands need no copy.
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
    _pool: &Pool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(span(m, k, a_strides) <= a.len(), "sgemm: a too short");
    assert!(span(k, n, b_strides) <= b.len(), "sgemm: b too short");
    assert!(span(m, n, c_strides) <= c.len(), "sgemm: c too short");
    // SAFETY: the asserts above check that every index the strides reach lies inside the
    // slices (strides are non-negative by construction in this crate), and `c` is borrowed
    // mutably so it cannot alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            a_strides.0,
            a_strides.1,
            b.as_ptr(),
            b_strides.0,
            b_strides.1,
            beta,
            c.as_mut_ptr(),
            c_strides.0,
            c_strides.1,
        );
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
    for row in x.chunks_exact_mut(width) {
        let mean = row.iter().sum::<f32>() / width as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// Softmax over each row of `x: [rows, width]`, in place.
pub fn softmax_rows(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Google's `gelu` (`modeling.py`): the tanh approximation
/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: &mut [f32]) {
    const C: f32 = 0.797_884_6; // sqrt(2 / pi)
    for v in x {
        let u = *v;
        *v = 0.5 * u * (1.0 + (C * (u + 0.044715 * u * u * u)).tanh());
    }
}

/// Hugging Face's `gelu`: the exact erf form `0.5 x (1 + erf(x / sqrt(2)))`.
pub fn gelu_erf(x: &mut [f32]) {
    for v in x {
        let u = *v as f64;
        *v = (0.5 * u * (1.0 + erf(u / std::f64::consts::SQRT_2))) as f32;
    }
}

/// `tanh` in place (the pooler's activation).
pub fn tanh(x: &mut [f32]) {
    for v in x {
        *v = v.tanh();
    }
}

/// `x += y`, element-wise (residual connections).
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
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
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // Values from tables of erf (e.g. Abramowitz & Stegun table 7.1, extended precision).
        let cases = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (-1.0, -0.842_700_792_949_714_9),
        ];
        for (x, want) in cases {
            assert!((erf(x) - want).abs() < 1e-13, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn dense_matches_naive() {
        let (rows, i, o) = (3, 4, 5);
        let x: Vec<f32> = (0..rows * i).map(|v| v as f32 * 0.1 - 0.3).collect();
        let kernel: Vec<f32> = (0..i * o).map(|v| (v as f32 * 0.37).sin()).collect();
        let bias: Vec<f32> = (0..o).map(|v| v as f32).collect();
        let d = Dense::new(i, o, kernel.clone(), bias.clone());
        let mut out = vec![0.0; rows * o];
        d.forward(&x, rows, &mut out, &Pool::single());
        for r in 0..rows {
            for c in 0..o {
                let want: f32 = bias[c]
                    + (0..i)
                        .map(|t| x[r * i + t] * kernel[t * o + c])
                        .sum::<f32>();
                assert!((out[r * o + c] - want).abs() < 1e-5);
            }
        }
    }
}
