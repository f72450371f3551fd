//! int8 kernel tests: every available path against f64 references and against exact integer
//! sums, on ragged and adversarial shapes and values.

use super::*;
use crate::backend::cpu::{Activation, Dense};

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
        Int8Path::I8mm,
        Int8Path::Dotprod,
        Int8Path::Portable,
    ];
    let have: Vec<Int8Path> = all.into_iter().filter(|p| p.available()).collect();
    for p in all.iter().filter(|p| !have.contains(p)) {
        eprintln!("note: int8 path {p:?} not tested: this CPU or build lacks it");
    }
    have
}

fn int8_weights(d: &Dense) -> Int8Weights {
    Int8Weights::from_packed(
        d.in_dim(),
        d.out_dim(),
        WeightBytes::Owned(d.int8_packed_bytes().unwrap().to_vec()),
        d.int8_scales().unwrap().to_vec(),
        d.int8_path().unwrap(),
    )
    .unwrap()
}

/// Checks one path and shape against an f64 product of the f32 inputs, within the error the
/// quantization allows: per output, `Σ_k (0.51·t·|ŵ_k| + 0.5·s·|x_k|)` over the row's
/// quantized values (activation step `t` of the row without its [`OUTLIERS`] largest `|x|`,
/// at the path's levels; weight step `s` of the column; 0.51 covers the f32 rounding of
/// `x / t`), `Σ 0.5·s·|x_k|` over the outliers (kept in f32), plus f32 rounding.
#[allow(clippy::too_many_arguments)]
fn check_f64(path: Int8Path, pool: &Pool, rows: usize, k: usize, n: usize, x: &[f32], w: &[f32]) {
    let bias = values(n, (k + n) as u64);
    let q = QuantizedKernel::quantize(w, k, n);
    let wq = q.dequantize();
    let dense = Dense::new_int8_with_path(&q, bias.clone(), path).unwrap();
    assert_eq!(dense.int8_path(), Some(path));
    let mut y = vec![f32::NAN; rows * n];
    dense.forward(x, rows, &mut y, pool);
    let levels = path.activation_levels() as f64;
    for r in 0..rows {
        let row = &x[r * k..(r + 1) * k];
        // The outliers, chosen independently of the implementation: the largest |x|, ties
        // to the lower index.
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| row[b].abs().total_cmp(&row[a].abs()).then(a.cmp(&b)));
        let outlier = |i: usize| order[..OUTLIERS.min(k)].contains(&i);
        let (lo, hi) = (0..k)
            .filter(|&i| !outlier(i))
            .fold((0.0f64, 0.0f64), |(lo, hi), i| {
                (lo.min(row[i] as f64), hi.max(row[i] as f64))
            });
        let t = (hi - lo) / levels;
        for j in 0..n {
            let mut exact = bias[j] as f64;
            let mut bound = 1e-6 * (1.0 + bias[j].abs() as f64);
            for i in 0..k {
                let (xv, wv) = (row[i] as f64, w[i * n + j] as f64);
                exact += xv * wv;
                let act_err = if outlier(i) { 0.0 } else { 0.51 * t };
                bound += act_err * (wq[i * n + j] as f64).abs()
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

/// Rows 1, 3, 16, 128; K not a multiple of 4 or 32; outputs not a multiple of 16 or 32.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 5, 17),
    (3, 37, 40),
    (16, 100, 33),
    (16, 384, 100),
    (9, 70, 97),
    (128, 61, 50),
    (128, 384, 48),
    // K = 3000: 32 rows per row block (`A_BLOCK_BYTES`), so 40 rows take two blocks.
    (40, 3000, 20),
];

#[test]
fn every_path_matches_f64_within_the_quantization_bound() {
    let pool = Pool::new(2);
    for path in paths() {
        for &(rows, k, n) in SHAPES {
            let seed = (rows * 7 + k * 3 + n) as u64;
            check_f64(
                path,
                &pool,
                rows,
                k,
                n,
                &values(rows * k, seed),
                &values(k * n, seed + 1),
            );
        }
    }
}

#[test]
fn one_sided_and_outlier_rows_match_f64() {
    // After GELU rows are mostly positive; BERT's hidden states have a few huge dimensions.
    let pool = Pool::single();
    let (rows, k, n) = (6, 96, 40);
    let mut x: Vec<f32> = values(rows * k, 3).iter().map(|v| v.abs() - 0.1).collect();
    x[5] = 40.0;
    x[k + 7] = -25.0;
    x[2 * k..3 * k].fill(0.0);
    let w = values(k * n, 4);
    for path in paths() {
        check_f64(path, &pool, rows, k, n, &x, &w);
    }
}

#[test]
fn outliers_are_kept_out_of_the_int8_range() {
    // One huge value per row would leave the rest of the row a handful of levels; kept in
    // f32, it costs nothing and the others keep their resolution (the bound of `check_f64`
    // uses the step without the outliers, 200x finer here).
    let (rows, k, n) = (5, 300, 24);
    let mut x = values(rows * k, 41);
    for r in 0..rows {
        x[r * k + 7 * r + 3] = if r % 2 == 0 { 400.0 } else { -400.0 };
        x[r * k + 200] = 150.0;
    }
    let w = values(k * n, 42);
    for path in paths() {
        check_f64(path, &Pool::single(), rows, k, n, &x, &w);
    }
}

#[test]
fn outlier_selection_takes_the_largest_magnitudes_ties_to_the_lower_index() {
    let rows: Vec<Vec<f32>> = vec![
        vec![],
        vec![-3.0],
        vec![0.0, 0.0, 0.0],
        vec![1.0, -2.0, 2.0, -2.0, 0.5],
        (0..37).map(|i| ((i * 7) % 5) as f32 - 2.0).collect(),
        values(1000, 43),
        values(64, 44),
        values(47, 45),
        vec![-0.0, 0.0, 0.5, -0.5, 0.5, -0.0],
        (0..70)
            .map(|i| if i % 3 == 0 { 1.0 } else { -1.0 })
            .collect(),
        vec![f32::NAN, 1.0, f32::NAN, -1.0, 0.25],
    ];
    let want = |row: &[f32]| {
        let mut order: Vec<usize> = (0..row.len()).filter(|&i| !row[i].is_nan()).collect();
        order.sort_by(|&a, &b| row[b].abs().total_cmp(&row[a].abs()).then(a.cmp(&b)));
        order.truncate(OUTLIERS);
        order
    };
    for row in &rows {
        let o = pack::select_outliers(row);
        let n = want(row).len();
        let got: Vec<usize> = o.idx[..n].iter().map(|&i| i as usize).collect();
        assert_eq!(got, want(row), "{row:?}");
        for s in 0..n {
            assert_eq!(o.val[s].to_bits(), row[o.idx[s] as usize].to_bits());
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 detected.
            let simd = unsafe { x86::select_outliers(row) };
            assert_eq!(simd.idx, o.idx, "{row:?}");
            assert_eq!(
                simd.val.map(f32::to_bits),
                o.val.map(f32::to_bits),
                "{row:?}"
            );
        }
        #[cfg(all(target_arch = "x86_64", bert_vnni))]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F detected.
            let simd = unsafe { quantize512::select_outliers(row, &[]) };
            assert_eq!(simd.idx, o.idx, "{row:?}");
            assert_eq!(
                simd.val.map(f32::to_bits),
                o.val.map(f32::to_bits),
                "{row:?}"
            );
        }
    }
}

#[test]
fn paths_agree_bit_for_bit_with_exact_integer_sums_at_any_thread_count() {
    // The portable kernel sums in plain i32 arithmetic; every SIMD path must produce the
    // same bits at its activation levels (same quantization, exact sums, same epilogue),
    // whatever the thread split.
    let pools = [Pool::single(), Pool::new(2), Pool::new(3)];
    for path in paths() {
        let reference = Spec::portable(path.activation_levels());
        for &(rows, k, n) in SHAPES.iter().chain(&[(17, 200, 130), (64, 256, 520)]) {
            let x = values(rows * k, (rows + k) as u64);
            let q = QuantizedKernel::quantize(&values(k * n, 5), k, n);
            let bias = values(n, 6);
            let dense = Dense::new_int8_with_path(&q, bias.clone(), path).unwrap();
            let mut want = vec![f32::NAN; rows * n];
            int8_weights(&dense).forward_spec(
                reference,
                &x,
                rows,
                &mut want,
                &bias,
                Activation::Identity,
                &pools[0],
            );
            for pool in &pools {
                let mut got = vec![f32::NAN; rows * n];
                dense.forward(&x, rows, &mut got, pool);
                assert_eq!(
                    got,
                    want,
                    "{path:?} rows {rows} k {k} n {n} threads {}",
                    pool.threads()
                );
            }
        }
    }
}

#[test]
fn activations_applied_in_the_epilogue_give_the_same_bits() {
    // The AVX-512 epilogue applies the activation to a tile in registers (whole panels only;
    // not ReLU), the others to the stored rows afterwards: the same bits either way. The
    // widths cover whole tiles, a tile of one panel and tiles with a partial panel.
    let pool = Pool::single();
    let acts = [
        Activation::GeluErf,
        Activation::GeluTanh,
        Activation::Tanh,
        Activation::Relu,
    ];
    for path in paths() {
        let reference = Spec::portable(path.activation_levels());
        for act in acts {
            for &(rows, k, n) in &[(9, 64, 48), (17, 200, 130), (8, 96, 40)] {
                let x = values(rows * k, (rows + k) as u64);
                let q = QuantizedKernel::quantize(&values(k * n, 5), k, n);
                let bias = values(n, 6);
                let dense = Dense::new_int8_with_path(&q, bias.clone(), path).unwrap();
                let w = int8_weights(&dense);
                let run = |spec: Spec| {
                    let mut y = vec![f32::NAN; rows * n];
                    w.forward_spec(spec, &x, rows, &mut y, &bias, act, &pool);
                    y.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                };
                assert_eq!(
                    run(path.spec()),
                    run(reference),
                    "{path:?} {act:?} rows {rows} k {k} n {n}"
                );
            }
        }
    }
}

/// All activations at the top level (255 or 127) against weights of -128 and 127: the case
/// where `vpmaddubsw` would saturate with 8-bit activations (`2 · 255 · (−128) = −65280`).
#[test]
fn adversarial_extremes_do_not_saturate() {
    let pool = Pool::single();
    for path in paths() {
        for &(rows, k, n) in &[(4, 64, 16), (3, 1000, 20), (8, 32, 64)] {
            // Column j: all -128, or +127 and -128 alternating along K, or all +127.
            let values: Vec<i8> = (0..k * n)
                .map(|idx| {
                    let (i, j) = (idx / n, idx % n);
                    match j % 3 {
                        0 => -128,
                        1 if i % 2 == 0 => 127,
                        1 => -128,
                        _ => 127,
                    }
                })
                .collect();
            let q = QuantizedKernel {
                in_dim: k,
                out_dim: n,
                values: values.clone(),
                scales: vec![1.0 / 128.0; n],
            };
            let dense = Dense::new_int8_with_path(&q, vec![0.0; n], path).unwrap();
            // Every row is all 1.0 (every activation at the top level, zero point 0), or
            // alternates 1 and -1 (levels 0 and the top, zero point in the middle).
            let mut x = vec![1.0f32; rows * k];
            for (i, v) in x[k..2 * k].iter_mut().enumerate() {
                *v = if i % 2 == 0 { 1.0 } else { -1.0 };
            }
            let mut y = vec![f32::NAN; rows * n];
            dense.forward(&x, rows, &mut y, &pool);
            for r in 0..rows {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|i| x[r * k + i] as f64 * values[i * n + j] as f64 / 128.0)
                        .sum();
                    let got = y[r * n + j] as f64;
                    // Row 1 has zero point levels/2 (rounded): off by up to one step for
                    // the -1 entries.
                    let tol =
                        1e-5 * want.abs().max(1.0) + if r == 1 { k as f64 / 120.0 } else { 0.0 };
                    assert!(
                        (got - want).abs() <= tol,
                        "{path:?} k {k}: y[{r}][{j}] = {got}, want {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn long_k_is_summed_in_chunks() {
    // K past K_CHUNK: i32 sums per chunk, chunks added in f32; extremes as above.
    let (rows, k, n) = (2, K_CHUNK + 44, 16);
    let q = QuantizedKernel {
        in_dim: k,
        out_dim: n,
        values: vec![-128; k * n],
        scales: vec![1.0 / 128.0; n],
    };
    let x = vec![1.0f32; rows * k];
    for path in paths() {
        let dense = Dense::new_int8_with_path(&q, vec![0.5; n], path).unwrap();
        let mut y = vec![f32::NAN; rows * n];
        dense.forward_act(&x, rows, &mut y, Activation::Tanh, &Pool::new(2));
        let want = (0.5 - k as f64).tanh() as f32;
        assert!(y.iter().all(|&v| v == want), "{path:?}: {:?}", &y[..4]);
        let mut y = vec![f32::NAN; rows * n];
        dense.forward(&x, rows, &mut y, &Pool::single());
        let want = 0.5 - k as f64;
        assert!(
            y.iter()
                .all(|&v| (v as f64 - want).abs() <= 1e-6 * want.abs()),
            "{path:?}: {:?} vs {want}",
            &y[..4]
        );
    }
}

#[test]
fn long_k_with_a_zero_point_matches_f64() {
    // Rows with negative and positive values get a zero point near the middle of the range:
    // each K chunk's sum must take off its own share `z · Σ q` (the column sums over that
    // chunk), not the whole K's once per chunk. 5 K groups past the chunk: an odd last group
    // for the 8-k activation groups of `SMMLA`.
    let (rows, k, n) = (3, K_CHUNK + 20, 20);
    let (x, w) = (values(rows * k, 51), values(k * n, 52));
    for path in paths() {
        check_f64(path, &Pool::new(2), rows, k, n, &x, &w);
    }
}

#[test]
fn activation_is_fused_in_the_epilogue() {
    let (rows, k, n) = (5, 50, 70);
    let x = values(rows * k, 11);
    let q = QuantizedKernel::quantize(&values(k * n, 12), k, n);
    for path in paths() {
        let dense = Dense::new_int8_with_path(&q, values(n, 13), path).unwrap();
        let mut plain = vec![0.0; rows * n];
        dense.forward(&x, rows, &mut plain, &Pool::single());
        for act in [Activation::GeluTanh, Activation::GeluErf, Activation::Tanh] {
            let mut fused = vec![0.0; rows * n];
            dense.forward_act(&x, rows, &mut fused, act, &Pool::single());
            let mut want = plain.clone();
            act.apply(&mut want);
            for (a, b) in fused.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{path:?} {act:?}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn quantized_kernel_round_trip_error_is_half_a_step() {
    let (k, n) = (300, 37);
    let mut w: Vec<f32> = values(k * n, 21).iter().map(|v| v * 3.0).collect();
    for i in 0..k {
        w[i * n + 5] = 0.0; // an all-zero column
    }
    w[7 * n + 9] = -50.0; // an outlier sets its column's scale
    let q = QuantizedKernel::quantize(&w, k, n);
    assert_eq!(
        (q.in_dim, q.out_dim, q.values.len(), q.scales.len()),
        (k, n, k * n, n)
    );
    assert_eq!(q.scales[5], 0.0);
    assert_eq!(q.scales[9], 50.0 / 127.0);
    assert_eq!(q.values[7 * n + 9], -127);
    assert!(q.values.iter().all(|&v| v != -128));
    let back = q.dequantize();
    for (idx, (&a, &b)) in w.iter().zip(&back).enumerate() {
        let s = q.scales[idx % n];
        assert!(
            (a - b).abs() <= 0.5 * s * (1.0 + 1e-6) + 1e-7,
            "w[{idx}] = {a}, back {b}, step {s}"
        );
    }
    // Each column's largest |w| lands exactly on ±127.
    for j in 0..n {
        let top = (0..k)
            .map(|i| q.values[i * n + j].unsigned_abs())
            .max()
            .unwrap();
        assert_eq!(top, if j == 5 { 0 } else { 127 }, "column {j}");
    }
}

#[test]
fn packed_bytes_round_trip_through_from_int8_packed_and_a_memory_map() {
    let (rows, k, n) = (7, 45, 50);
    let q = QuantizedKernel::quantize(&values(k * n, 31), k, n);
    let bias = values(n, 32);
    let x = values(rows * k, 33);
    let dense = Dense::new_int8(&q, bias.clone());
    assert_eq!(dense.dtype(), crate::weights::DType::Int8);
    let packed = dense.int8_packed_bytes().unwrap();
    assert_eq!(packed.len(), packed_len(k, n));
    // Spot-check the documented layout: q[i][j] sits at
    // ((panel · K/4 + i/4) · 16 + j % 16) · 4 + i % 4.
    let groups = k.div_ceil(4);
    for &(i, j) in &[(0, 0), (44, 49), (13, 17), (3, 31)] {
        let at = ((j / 16 * groups + i / 4) * 16 + j % 16) * 4 + i % 4;
        assert_eq!(packed[at] as i8, q.values[i * n + j], "q[{i}][{j}]");
    }
    let mut want = vec![0.0; rows * n];
    dense.forward(&x, rows, &mut want, &Pool::single());

    let path = std::env::temp_dir().join(format!("bert-int8-test-{}", std::process::id()));
    let mut file_bytes = vec![0xAB; 13]; // an odd offset: any alignment works
    file_bytes.extend_from_slice(packed);
    std::fs::write(&path, &file_bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    // SAFETY: the test owns the file and does not modify it while mapped.
    let map = std::sync::Arc::new(unsafe { memmap2::Mmap::map(&file) }.unwrap());
    let _ = std::fs::remove_file(&path);
    let mapped = WeightBytes::Mapped {
        map: map.clone(),
        offset: 13,
        len: packed.len(),
    };
    let loaded = Dense::from_int8_packed(k, n, mapped, q.scales.clone(), bias.clone()).unwrap();
    let mut got = vec![0.0; rows * n];
    loaded.forward(&x, rows, &mut got, &Pool::single());
    assert_eq!(got, want);
    // A range outside the map is an error, not a panic.
    let outside = WeightBytes::Mapped {
        map,
        offset: 20,
        len: packed.len(),
    };
    assert!(Dense::from_int8_packed(k, n, outside, q.scales, bias).is_err());
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
    let huge = Dense::from_int8_packed(usize::MAX, 2, WeightBytes::Owned(vec![]), vec![], vec![]);
    assert!(huge.is_err());
    // A path the CPU lacks is an error too (or, where the CPU has every path, fine).
    for path in [
        Int8Path::Vnni512,
        Int8Path::AvxVnni,
        Int8Path::Avx2,
        Int8Path::I8mm,
        Int8Path::Dotprod,
    ] {
        let r = Dense::new_int8_with_path(&q, vec![0.0; n], path);
        assert_eq!(r.is_ok(), path.available(), "{path:?}");
    }
}

#[test]
fn zero_rows_and_zero_k() {
    let q = QuantizedKernel::quantize(&[], 0, 3);
    for path in paths() {
        let dense = Dense::new_int8_with_path(&q, vec![1.0, -2.0, 0.5], path).unwrap();
        let mut y = vec![f32::NAN; 6];
        dense.forward(&[], 2, &mut y, &Pool::single());
        assert_eq!(y, [1.0, -2.0, 0.5, 1.0, -2.0, 0.5], "{path:?}");
        dense.forward(&[], 0, &mut [], &Pool::single());
    }
}
