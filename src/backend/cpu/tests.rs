//! Kernel tests: every path (forced through `Isa` / `Path`) against f64 references.

use super::math::{self, Path};
use super::*;
use crate::backend::WeightBytes;

/// Deterministic values in [-1, 1) (an LCG; no dependency).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn isas() -> Vec<Isa> {
    let all = [Isa::Portable, Isa::Avx2, Isa::Avx512, Isa::Neon];
    let have: Vec<Isa> = all.into_iter().filter(|i| i.available()).collect();
    for isa in all.iter().filter(|i| !have.contains(i)) {
        eprintln!("note: {isa:?} kernels not tested: this CPU lacks them");
    }
    have
}

fn paths() -> Vec<Path> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut all = vec![Path::Portable];
    #[cfg(target_arch = "x86_64")]
    all.extend([Path::Avx2, Path::Avx512]);
    #[cfg(target_arch = "aarch64")]
    all.push(Path::Neon);
    all.into_iter().filter(|p| p.available()).collect()
}

#[allow(clippy::too_many_arguments)]
fn at(v: &[f32], (rs, cs): (isize, isize), i: usize, j: usize) -> f32 {
    v[i * rs as usize + j * cs as usize]
}

/// Checks `sgemm_with_isa` against an f64 product for one shape and layout.
#[allow(clippy::too_many_arguments)]
fn check_sgemm(
    isa: Isa,
    pool: &Pool,
    (m, k, n): (usize, usize, usize),
    a_t: bool,
    b_t: bool,
    c_pad: usize,
    c_t: bool,
    alpha: f32,
    beta: f32,
) {
    let a = values(m * k, (m * 31 + k) as u64);
    let b = values(k * n, (k * 17 + n) as u64);
    let a_s = if a_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let b_s = if b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    let c_s = if c_t {
        (1, (m + c_pad) as isize)
    } else {
        ((n + c_pad) as isize, 1)
    };
    let c_len = if c_t {
        (m + c_pad) * n
    } else {
        m * (n + c_pad)
    };
    let c0 = values(c_len, 99);
    let mut c = c0.clone();
    if beta == 0.0 {
        // BLAS semantics: C is not read, so NaN there must not leak through.
        c.iter_mut().for_each(|v| *v = f32::NAN);
    }
    sgemm_with_isa(
        isa, m, k, n, alpha, &a, a_s, &b, b_s, beta, &mut c, c_s, pool,
    );
    for i in 0..m {
        for j in 0..n {
            let (mut exact, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let t = at(&a, a_s, i, p) as f64 * at(&b, b_s, p, j) as f64;
                exact += t;
                mag += t.abs();
            }
            let cij = at(&c0, c_s, i, j) as f64;
            let want = alpha as f64 * exact + if beta == 0.0 { 0.0 } else { beta as f64 * cij };
            let got = at(&c, c_s, i, j) as f64;
            let tol = 4e-6 * (alpha.abs() as f64 * mag + (beta as f64 * cij).abs()) + 1e-6;
            assert!(
                (got - want).abs() <= tol,
                "{isa:?} threads={} m={m} k={k} n={n} a_t={a_t} b_t={b_t} c_t={c_t} \
                 alpha={alpha} beta={beta}: c[{i},{j}] = {got}, want {want}",
                pool.threads()
            );
        }
    }
    // Padding between rows of C is never written.
    if !c_t && c_pad > 0 && beta != 0.0 {
        for i in 0..m {
            for j in n..n + c_pad {
                assert_eq!(c[i * (n + c_pad) + j], c0[i * (n + c_pad) + j]);
            }
        }
    }
}

#[test]
fn sgemm_matches_f64_on_odd_shapes() {
    let pools = [Pool::single(), Pool::new(2), Pool::new(3)];
    let dims = [1, 3, 17, 63, 129];
    for isa in isas() {
        for &m in &dims {
            for &k in &[1, 3, 17, 63, 257, 300] {
                for &n in &dims {
                    let pool = &pools[(m + k + n) % 3];
                    check_sgemm(isa, pool, (m, k, n), false, false, 0, false, 1.0, 0.0);
                }
            }
        }
        // BERT-sized, with more than one K block and ragged M.
        for shape in [
            (16, 768, 96),
            (33, 768, 200),
            (5, 3072, 48),
            (130, 513, 100),
        ] {
            for pool in &pools {
                check_sgemm(isa, pool, shape, false, false, 0, false, 1.0, 0.0);
            }
        }
    }
}

#[test]
fn sgemm_strided_transposed_alpha_beta() {
    let pools = [Pool::single(), Pool::new(2)];
    for isa in isas() {
        for pool in &pools {
            for &(m, k, n) in &[(1, 64, 128), (17, 64, 65), (128, 64, 128), (63, 300, 9)] {
                for (a_t, b_t, c_t) in [
                    (false, true, false), // Q · Kᵀ
                    (true, false, false),
                    (true, true, true),
                    (false, false, true),
                ] {
                    for (alpha, beta) in [(1.0, 0.0), (0.125, 0.0), (-0.5, 1.0), (2.0, -0.75)] {
                        check_sgemm(isa, pool, (m, k, n), a_t, b_t, 3, c_t, alpha, beta);
                    }
                }
            }
            // 4.4 MB of B and 13 rows: AVX-512's 16 x 16 tile, with every layout (a
            // transposed A packed, a strided B packed, a strided C through `store_tile`).
            for (a_t, b_t, c_t) in [(false, false, false), (true, true, true)] {
                check_sgemm(isa, pool, (13, 1100, 1000), a_t, b_t, 3, c_t, 2.0, -0.75);
            }
        }
    }
}

#[test]
fn sgemm_k_zero_scales_c() {
    let mut c = vec![2.0f32; 6];
    sgemm(
        2,
        0,
        3,
        1.0,
        &[],
        (0, 1),
        &[],
        (3, 1),
        0.5,
        &mut c,
        (3, 1),
        &Pool::single(),
    );
    assert_eq!(c, vec![1.0; 6]);
    sgemm(
        2,
        0,
        3,
        1.0,
        &[],
        (0, 1),
        &[],
        (3, 1),
        0.0,
        &mut c,
        (3, 1),
        &Pool::single(),
    );
    assert_eq!(c, vec![0.0; 6]);
}

#[test]
#[should_panic(expected = "map two elements to one place")]
fn sgemm_rejects_aliasing_c() {
    let mut c = vec![0.0f32; 4];
    let a = vec![1.0f32; 4];
    sgemm(
        2,
        2,
        2,
        1.0,
        &a,
        (2, 1),
        &a,
        (2, 1),
        0.0,
        &mut c,
        (1, 1),
        &Pool::single(),
    );
}

fn act_f64(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Identity => x,
        Activation::GeluTanh => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        }
        Activation::GeluErf => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::Tanh => x.tanh(),
        Activation::Relu => x.max(0.0),
    }
}

/// Checks the first `rows` rows of a dense layer's output `out` (`o` columns) against
/// `act(x·kernel + bias)` in f64, within a tolerance scaled by the sum of magnitudes.
fn check_dense(
    out: &[f32],
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
    (rows, i, o): (usize, usize, usize),
    act: Activation,
    what: &str,
) {
    for r in 0..rows {
        for c in 0..o {
            let (mut pre, mut mag) = (bias[c] as f64, bias[c].abs() as f64);
            for t in 0..i {
                let v = x[r * i + t] as f64 * kernel[t * o + c] as f64;
                pre += v;
                mag += v.abs();
            }
            let (got, want) = (out[r * o + c] as f64, act_f64(act, pre));
            assert!(
                (got - want).abs() <= 4e-6 * mag + 2e-6,
                "{what}: [{r},{c}] = {got}, want {want}"
            );
        }
    }
}

#[test]
fn dense_matches_f64_for_every_kernel_and_activation() {
    let pools = [Pool::single(), Pool::new(2), Pool::new(3)];
    for isa in isas() {
        for &(rows, i, o) in &[
            (1, 4, 5),
            (3, 768, 50),
            (16, 300, 96),
            (40, 768, 300), // large enough to be split across threads
            (37, 64, 200),
            (9, 1, 7),
            (5, 32, 600), // activation groups of `ACT_COLS`: 3 whole and a partial one
        ] {
            let x = values(rows * i, 1);
            let kernel = values(i * o, 2);
            let bias = values(o, 3);
            let d = Dense::with_isa(isa, i, o, kernel.clone(), bias.clone());
            assert_eq!(d.isa(), isa);
            for act in [
                Activation::Identity,
                Activation::GeluTanh,
                Activation::GeluErf,
                Activation::Tanh,
                Activation::Relu,
            ] {
                for pool in &pools {
                    let mut out = vec![f32::NAN; rows * o];
                    d.forward_act(&x, rows, &mut out, act, pool);
                    let what = format!("{isa:?} {act:?} rows={rows} {i}->{o}");
                    check_dense(&out, &x, &kernel, &bias, (rows, i, o), act, &what);
                }
            }
        }
    }
}

#[test]
fn few_rows_of_large_weights_match_f64_and_larger_batches_bit_for_bit() {
    // 1024 x 1100: 4.5 MB of weights, over the threshold of AVX-512's 16 x 16 tile for at most
    // 16 rows; 1100 columns are 22 panels of 48 and a ragged one of 44 (two 16-column tiles and
    // one of 12). The same rows inside a 64-row batch take the 8 x 48 tile: a sequence must
    // get the same bits whatever else is in its batch.
    let (i, o) = (1024, 1100);
    let (kernel, bias, x) = (values(i * o, 21), values(o, 22), values(64 * i, 23));
    let pools = [Pool::single(), Pool::new(2)];
    for isa in isas() {
        let d = Dense::with_isa(isa, i, o, kernel.clone(), bias.clone());
        for act in [Activation::Identity, Activation::GeluErf] {
            let mut batch = vec![0.0f32; 64 * o];
            d.forward_act(&x, 64, &mut batch, act, &pools[0]);
            for rows in [1, 9, 16] {
                for pool in &pools {
                    let mut out = vec![f32::NAN; rows * o];
                    d.forward_act(&x[..rows * i], rows, &mut out, act, pool);
                    assert!(
                        out.iter()
                            .zip(&batch)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{isa:?} {act:?} rows={rows} threads={}: differs from the 64-row batch",
                        pool.threads()
                    );
                }
            }
            let what = format!("{isa:?} {act:?}");
            check_dense(&batch, &x, &kernel, &bias, (16, i, o), act, &what);
        }
    }
    // f16 weights are widened panel by panel into the same layout: the same rule holds.
    let bytes = kernel
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect();
    let d = Dense::new_f16(i, o, WeightBytes::Owned(bytes), bias).unwrap();
    let mut batch = vec![0.0f32; 64 * o];
    d.forward(&x, 64, &mut batch, &pools[0]);
    let mut out = vec![f32::NAN; 16 * o];
    d.forward(&x[..16 * i], 16, &mut out, &pools[1]);
    assert!(out
        .iter()
        .zip(&batch)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn dense_forward_is_identity_act_and_clone_keeps_weights() {
    // Large enough (> 2M multiply-adds) for the two-thread pool to split it.
    let (rows, i, o) = (64, 256, 240);
    let d = Dense::new(i, o, values(i * o, 4), values(o, 5));
    let x = values(rows * i, 6);
    let mut y1 = vec![0.0; rows * o];
    let mut y2 = vec![0.0; rows * o];
    d.forward(&x, rows, &mut y1, &Pool::single());
    d.clone()
        .forward_act(&x, rows, &mut y2, Activation::Identity, &Pool::new(2));
    // Same summation order whatever the thread split: bit-identical.
    assert_eq!(y1, y2);
}

/// Max abs and rel error of `f32` kernel `f` against `g` in f64 over `xs`.
fn errors(xs: &[f32], f: impl Fn(&mut [f32]), g: impl Fn(f64) -> f64) -> (f64, f64) {
    let mut y = xs.to_vec();
    f(&mut y);
    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    for (&x, &v) in xs.iter().zip(&y) {
        let want = g(x as f64);
        let e = (v as f64 - want).abs();
        abs = abs.max(e);
        if want.abs() > 1e-30 {
            rel = rel.max(e / want.abs());
        }
    }
    (abs, rel)
}

fn grid(lo: f32, hi: f32, count: usize) -> Vec<f32> {
    (0..=count)
        .map(|i| lo + (hi - lo) * i as f32 / count as f32)
        .collect()
}

#[test]
fn exp_relative_error() {
    let xs = grid(-87.0, 88.0, 700_001);
    for p in paths() {
        let (_, rel) = errors(&xs, |y| math::exp_slice(p, y), f64::exp);
        eprintln!("{p:?}: exp max rel error {rel:.3e}");
        assert!(rel <= 2.5e-7, "{p:?}: exp rel error {rel:e}");
        let mut tiny = [-100.0f32, -1e4, f32::NEG_INFINITY];
        math::exp_slice(p, &mut tiny);
        assert_eq!(tiny, [0.0; 3]);
    }
}

#[test]
fn gelu_and_tanh_absolute_error() {
    let xs = grid(-20.0, 20.0, 400_000);
    let c = (2.0 / std::f64::consts::PI).sqrt();
    for p in paths() {
        let (abs, _) = errors(
            &xs,
            |y| math::gelu_tanh(p, y),
            |x| 0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh()),
        );
        eprintln!("{p:?}: gelu_tanh max abs error {abs:.3e}");
        assert!(abs <= 1e-6, "{p:?}: gelu_tanh abs error {abs:e}");
        let (abs, _) = errors(
            &xs,
            |y| math::gelu_erf(p, y),
            |x| 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        );
        eprintln!("{p:?}: gelu_erf max abs error {abs:.3e}");
        assert!(abs <= 1e-6, "{p:?}: gelu_erf abs error {abs:e}");
        let (abs, rel) = errors(&xs, |y| math::tanh(p, y), f64::tanh);
        eprintln!("{p:?}: tanh max abs error {abs:.3e}, rel {rel:.3e}");
        assert!(
            abs <= 1e-6 && rel <= 1e-6,
            "{p:?}: tanh error {abs:e} / {rel:e}"
        );
        let small = grid(-1e-3, 1e-3, 20_001);
        let (_, rel) = errors(&small, |y| math::tanh(p, y), f64::tanh);
        assert!(rel <= 1e-6, "{p:?}: tanh rel error near 0 {rel:e}");
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
        math::tanh(p, &mut special);
        assert!(special[0].is_nan());
        assert_eq!(&special[1..], &[1.0, -1.0, -0.0]);
        assert!(special[3].is_sign_negative());
        let mut g = [f32::NAN, 1e30, -1e30];
        math::gelu_tanh(p, &mut g);
        assert!(g[0].is_nan() && g[1] == 1e30 && g[2] == 0.0);
    }
}

#[test]
fn softmax_matches_f64_with_masked_entries() {
    for p in paths() {
        for width in [1, 7, 16, 33, 40, 128, 384] {
            let mut x: Vec<f32> = values(3 * width, width as u64)
                .iter()
                .map(|v| v * 8.0)
                .collect();
            // An attention mask adds -10000 to padded positions.
            for v in x.iter_mut().skip(1).step_by(3) {
                *v -= 10000.0;
            }
            let orig = x.clone();
            // The attention's form too: rows at a stride, the gap between them untouched.
            let stride = width + 5;
            let mut strided = vec![f32::NAN; 3 * stride];
            for (r, o) in orig.chunks(width).enumerate() {
                strided[r * stride..][..width].copy_from_slice(o);
            }
            math::softmax_strided(p, &mut strided, stride, width, 3);
            math::softmax_rows(p, &mut x, width);
            for r in 0..3 {
                let (got, want) = (&strided[r * stride..][..stride], &x[r * width..][..width]);
                for (g, w) in got.iter().zip(want) {
                    assert!(
                        (g - w).abs() <= 5e-7 * w.abs() + 1e-37,
                        "{p:?} width={width}: {g} vs {w}"
                    );
                }
                assert!(got[width..].iter().all(|v| v.is_nan()));
            }
            for (row, o) in x.chunks(width).zip(orig.chunks(width)) {
                let max = o.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                let sum: f64 = o.iter().map(|&v| (v as f64 - max).exp()).sum();
                for (&got, &v) in row.iter().zip(o) {
                    let want = (v as f64 - max).exp() / sum;
                    assert!(
                        (got as f64 - want).abs() <= 1e-6 * want + 1e-30,
                        "{p:?} width={width}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn layer_norm_matches_f64_and_residual_form() {
    for p in paths() {
        for width in [1, 5, 16, 384, 768, 1000] {
            let rows = 3;
            let x: Vec<f32> = values(rows * width, 7)
                .iter()
                .map(|v| v * 3.0 + 1.0)
                .collect();
            let res = values(rows * width, 8);
            let gamma = values(width, 9);
            let beta = values(width, 10);
            let eps = 1e-12;
            let mut y = x.clone();
            math::layer_norm_residual(p, &mut y, &res, width, &gamma, &beta, eps);
            let mut z: Vec<f32> = x.iter().zip(&res).map(|(a, b)| a + b).collect();
            math::layer_norm(p, &mut z, width, &gamma, &beta, eps);
            assert_eq!(y, z, "{p:?}: fused residual differs");
            for r in 0..rows {
                let row: Vec<f64> = (0..width)
                    .map(|j| (x[r * width + j] + res[r * width + j]) as f64)
                    .collect();
                let mean = row.iter().sum::<f64>() / width as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / width as f64;
                let inv = 1.0 / (var + eps as f64).sqrt();
                for j in 0..width {
                    let want = (row[j] - mean) * inv * gamma[j] as f64 + beta[j] as f64;
                    let got = y[r * width + j] as f64;
                    // width 1: var = 0 and the normalized value is 0 up to rounding / 1e-6.
                    let tol = if width == 1 { 1.0 } else { 2e-5 };
                    assert!(
                        (got - want).abs() <= tol,
                        "{p:?} w={width}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn public_row_kernels_use_the_same_math() {
    let x = grid(-5.0, 5.0, 1001);
    let mut a = x.clone();
    let mut b = x.clone();
    gelu_tanh(&mut a);
    Activation::GeluTanh.apply(&mut b);
    assert_eq!(a, b);
    let mut s = x.clone();
    add_assign(&mut s, &x);
    assert!(s.iter().zip(&x).all(|(s, x)| *s == 2.0 * x));
}

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
fn f16_dense_equals_f32_dense_of_the_rounded_weights() {
    use crate::backend::WeightBytes;
    use crate::weights::DType;
    let pools = [Pool::single(), Pool::new(2)];
    for isa in isas() {
        for &(rows, i, o) in &[(1, 4, 5), (3, 37, 25), (16, 300, 96), (40, 768, 300)] {
            let x = values(rows * i, 7);
            // Up to ±4 so that rounding to f16 changes the values.
            let kernel: Vec<f32> = values(i * o, 8).iter().map(|w| 4.0 * w).collect();
            let bias = values(o, 9);
            let bytes: Vec<u8> = kernel
                .iter()
                .flat_map(|&w| half::f16::from_f32(w).to_le_bytes())
                .collect();
            let rounded: Vec<f32> = kernel
                .iter()
                .map(|&w| half::f16::from_f32(w).to_f32())
                .collect();
            let d16 = Dense::new_f16_with_isa(isa, i, o, WeightBytes::Owned(bytes), bias.clone())
                .unwrap();
            assert_eq!(d16.dtype(), DType::F16);
            let d32 = Dense::with_isa(isa, i, o, rounded, bias.clone());
            for pool in &pools {
                let mut y16 = vec![f32::NAN; rows * o];
                let mut y32 = vec![f32::NAN; rows * o];
                d16.forward_act(&x, rows, &mut y16, Activation::GeluErf, pool);
                d32.forward_act(&x, rows, &mut y32, Activation::GeluErf, pool);
                // Same packed panels, same summation order: bit-identical.
                assert_eq!(y16, y32, "{isa:?} rows={rows} {i}->{o}");
                d16.forward(&x, rows, &mut y16, pool);
                for r in 0..rows {
                    for c in 0..o {
                        let (mut want, mut mag) = (bias[c] as f64, bias[c].abs() as f64);
                        for t in 0..i {
                            let v = x[r * i + t] as f64 * kernel[t * o + c] as f64;
                            want += v;
                            mag += v.abs();
                        }
                        // f16 keeps 11 significant bits: each weight is off by ≤ 2⁻¹¹
                        // relative; plus the f32 GEMM bound of `dense_matches_f64_…`.
                        let got = y16[r * o + c] as f64;
                        assert!(
                            (got - want).abs() <= (2f64.powi(-11) + 4e-6) * mag + 2e-6,
                            "{isa:?} rows={rows} {i}->{o}: [{r},{c}] = {got}, want {want}"
                        );
                    }
                }
            }
        }
    }
    let bad = Dense::new_f16(3, 2, WeightBytes::Owned(vec![0; 11]), vec![0.0; 2]);
    assert!(matches!(bad, Err(crate::Error::Shape(_))));
    let bad = Dense::new_f16(3, 2, WeightBytes::Owned(vec![0; 12]), vec![0.0; 3]);
    assert!(matches!(bad, Err(crate::Error::Shape(_))));
}

#[test]
fn f16_conversion_is_exact_for_every_bit_pattern() {
    // The `half` conversion (portable) and, where present, F16C agree on all 65536 values.
    let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
    let mut portable = vec![0.0f32; 1 << 16];
    f16::convert_portable(&bytes, &mut portable);
    for (h, &v) in portable.iter().enumerate() {
        let want = half::f16::from_bits(h as u16).to_f64();
        assert!(
            v as f64 == want || (v.is_nan() && want.is_nan()),
            "{h:#06x}"
        );
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("f16c") {
        // One panel of width 8 over a [8192, 8] matrix holding every pattern.
        let mut simd = vec![0.0f32; 1 << 16];
        // SAFETY: F16C (and so AVX) detected; 8192 rows of 8 columns, one 8-wide panel.
        unsafe { f16::x86::pack_b(&mut simd, &bytes, 8, 0, 8192, 0, 1, 8) };
        for (h, (&a, &b)) in simd.iter().zip(&portable).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{h:#06x}"
            );
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        // `fcvtl`, 8 values at a time: one panel of width 8 over [8192, 8]; then width 12
        // (the NEON tile) over [5461, 12], whose last 4 columns take the portable tail.
        for (cols, nr) in [(8, 8), (12, 12)] {
            let k = (1 << 16) / cols;
            let mut simd = vec![0.0f32; k * nr];
            f16::neon::pack_b(&mut simd, &bytes[..k * cols * 2], cols, 0, k, 0, 1, nr);
            for (h, (&a, &b)) in simd.iter().zip(&portable).enumerate() {
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{h:#06x}"
                );
            }
        }
    }
}

/// Prints the kernels this CPU gets (the emulated ARM runs of `scripts/test_arm.sh` show
/// which path each CPU level used) and checks that each is one the CPU can run.
#[test]
fn detected_paths_are_available_and_reported() {
    let (isa, row, int8) = (
        Isa::detect(),
        Path::Auto.resolve(),
        crate::backend::int8::Int8Path::detect(),
    );
    assert!(isa.available() && row.available() && int8.available());
    #[cfg(target_arch = "aarch64")]
    if !cfg!(bert_portable) {
        assert_eq!((isa, row), (Isa::Neon, Path::Neon));
    }
    eprintln!("kernel paths: f32 gemm {isa:?}, row kernels {row:?}, int8 {int8:?}");
}
