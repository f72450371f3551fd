//! int8 kernel tests: every available path against f64 references.

use super::*;
use crate::backend::cpu::Dense;

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

fn paths() -> Vec<Int8Path> {
    let all = [
        Int8Path::Vnni512,
        Int8Path::AvxVnni,
        Int8Path::Avx2,
        Int8Path::Portable,
    ];
    let have: Vec<Int8Path> = all.into_iter().filter(|p| p.available()).collect();
    for p in all.iter().filter(|p| !have.contains(p)) {
        eprintln!("note: int8 path {p:?} not tested: this CPU or build lacks it");
    }
    have
}

/// Checks one path and shape against an f64 product of the f32 inputs, within the error the
/// quantization allows: per output, `Σ_k (0.51·t·|ŵ_k| + 0.5·s·|x_k|)` (activation step `t`
/// of the row, weight step `s` of the column; 0.51 covers the f32 rounding of `x / t`), plus
/// f32 rounding of the epilogue.
fn check(path: Int8Path, pool: &Pool, rows: usize, k: usize, n: usize, seed: u64) {
    let x = values(rows * k, seed);
    let w = values(k * n, seed + 1);
    let bias = values(n, seed + 2);
    let q = QuantizedKernel::quantize(&w, k, n);
    let wq = q.dequantize();
    let dense = Dense::new_int8_with_path(&q, bias.clone(), path).unwrap();
    let mut y = vec![f32::NAN; rows * n];
    dense.forward(&x, rows, &mut y, pool);
    for r in 0..rows {
        let row = &x[r * k..(r + 1) * k];
        let (lo, hi) = row.iter().fold((0.0f64, 0.0f64), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
        let t = (hi - lo) / 255.0;
        for j in 0..n {
            let mut exact = bias[j] as f64;
            let mut bound = 1e-6 * (1.0 + bias[j].abs() as f64);
            for i in 0..k {
                let (xv, wv) = (row[i] as f64, w[i * n + j] as f64);
                exact += xv * wv;
                bound += 0.51 * t * (wq[i * n + j] as f64).abs()
                    + 0.5 * q.scales[j] as f64 * xv.abs()
                    + 1e-6 * (xv * wv).abs();
            }
            let got = y[r * n + j] as f64;
            assert!(
                (got - exact).abs() <= bound,
                "{path:?} rows {rows} k {k} n {n}: y[{r}][{j}] = {got}, f64 {exact}, bound {bound}"
            );
        }
    }
}

#[test]
fn int8_dense_matches_f64_reference() {
    let pool = Pool::new(2);
    for path in paths() {
        for &(rows, k, n) in &[(1, 1, 1), (3, 5, 17), (16, 37, 40), (5, 64, 16)] {
            check(path, &pool, rows, k, n, (rows * 7 + k * 3 + n) as u64);
        }
    }
}

#[test]
fn from_int8_packed_rejects_wrong_lengths() {
    let (k, n) = (6, 20);
    let q = QuantizedKernel::quantize(&values(k * n, 9), k, n);
    let dense = Dense::new_int8_with_path(&q, vec![0.0; n], Int8Path::Portable).unwrap();
    let packed = dense.int8_packed_bytes().unwrap().to_vec();
    assert_eq!(packed.len(), packed_len(k, n));
    assert_eq!(packed_len(k, n), 8 * 32);
    let ok = |p: Vec<u8>, s: usize, b: usize| {
        Dense::from_int8_packed(k, n, WeightBytes::Owned(p), vec![1.0; s], vec![0.0; b])
    };
    assert!(ok(packed.clone(), n, n).is_ok());
    for bad in [
        ok(packed[1..].to_vec(), n, n),
        ok([packed.clone(), vec![0]].concat(), n, n),
        ok(vec![], n, n),
        ok(packed.clone(), n - 1, n),
        ok(packed.clone(), n, n + 1),
    ] {
        assert!(matches!(bad, Err(Error::Shape(_))), "{bad:?}");
    }
}
