//! GEMM throughput on BERT shapes: libbert's packed kernels at 1 and 2 threads against
//! `matrixmultiply::sgemm` (1 thread), measured interleaved in the same run.
//!
//! `cargo bench --bench gemm` (add `-- quick` for fewer samples, and label substrings such as
//! `"128 x 768"` to run only those rows). Prints GFLOP/s (median of samples of at least 20 ms
//! each) and the share of one core's FP32 FMA peak, measured register-only in the same run
//! (`common/peaks.rs`: zmm FMAs where the CPU has AVX-512F, else ymm), so the share reads
//! against what the core delivers at that moment on a shared machine. Single-threaded runs
//! are timed by the thread's on-CPU time (time given to other processes does not count),
//! two-threaded ones by wall time.

use bert::backend::cpu::{sgemm, Dense};
use bert::backend::Pool;
use std::hint::black_box;
use std::time::Duration;

#[path = "common/peaks.rs"]
mod peaks;
#[path = "common/timing.rs"]
mod timing;
use timing::{median, sample, values};

/// Runs the candidates interleaved, `samples` rounds, and returns each one's median seconds.
/// Candidates 0 and 2 are single-threaded (timed by on-CPU time), 1 uses two threads (wall
/// time).
fn measure(cands: &mut [&mut dyn FnMut()], samples: usize) -> Vec<f64> {
    for f in cands.iter_mut() {
        f(); // warm caches, scratch and pool threads
    }
    let mut times = vec![Vec::new(); cands.len()];
    for _ in 0..samples {
        for (i, (t, f)) in times.iter_mut().zip(cands.iter_mut()).enumerate() {
            t.push(sample(*f, Duration::from_millis(20), i != 1));
        }
    }
    times.into_iter().map(median).collect()
}

fn gflops(flops: f64, secs: f64) -> f64 {
    flops / secs / 1e9
}

fn row(label: &str, flops: f64, t: &[f64], peak: f64) {
    let (g1, g2, gm) = (
        gflops(flops, t[0]),
        gflops(flops, t[1]),
        gflops(flops, t[2]),
    );
    println!(
        "| {label} | {g1:.1} | {:.0}% | {g2:.1} | {:.2}x | {gm:.1} | {:.0}% | {:.2}x |",
        100.0 * g1 / peak,
        g2 / g1,
        100.0 * gm / peak,
        g1 / gm
    );
}

/// `matrixmultiply::sgemm` over slices, with bounds checked here.
#[allow(clippy::too_many_arguments)]
fn mm_sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    (ars, acs): (isize, isize),
    b: &[f32],
    (brs, bcs): (isize, isize),
    beta: f32,
    c: &mut [f32],
    (crs, ccs): (isize, isize),
) {
    let reach = |r: usize, cl: usize, rs: isize, cs: isize| {
        (r - 1) * rs as usize + (cl - 1) * cs as usize + 1
    };
    assert!(reach(m, k, ars, acs) <= a.len());
    assert!(reach(k, n, brs, bcs) <= b.len());
    assert!(reach(m, n, crs, ccs) <= c.len());
    // SAFETY: the asserts check that every element the strides reach is inside the slices;
    // `c` is a unique borrow.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            ars,
            acs,
            b.as_ptr(),
            brs,
            bcs,
            beta,
            c.as_mut_ptr(),
            crs,
            ccs,
        )
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "quick" && a != "--bench")
        .collect();
    let wanted =
        |label: &str| filter.is_empty() || filter.iter().any(|f| label.contains(f.as_str()));
    // Without a measured peak (no AVX2) the share columns read NaN.
    let peak = peaks::measured_peaks().map_or(f64::NAN, |(f, _)| f);
    println!("register-only f32 FMA peak of one core in this run: {peak:.1} GFLOP/s");
    let samples = if quick { 3 } else { 7 };
    let (p1, p2) = (Pool::single(), Pool::new(2));
    println!(
        "kernel: {:?}; medians of {samples} samples (>= 20 ms each), interleaved",
        bert::backend::cpu::Isa::detect()
    );
    println!();
    println!("| shape (rows x in -> out) | 1 thread GFLOP/s | % peak | 2 threads GFLOP/s | 2t speed-up | matrixmultiply GFLOP/s | % peak | ours / mm (1t) |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let widths = [
        ("BERT-base", 768, 768),
        ("BERT-base", 768, 3072),
        ("BERT-base", 3072, 768),
        ("MiniLM", 384, 384),
        ("MiniLM", 384, 1536),
        ("MiniLM", 1536, 384),
    ];
    for rows in [16, 128, 384, 1024] {
        for &(model, i, o) in &widths {
            let label = format!("{model} {rows} x {i} -> {o}");
            if !wanted(&label) {
                continue;
            }
            let dense = Dense::new(i, o, values(i * o, 1), values(o, 2));
            let kernel = values(i * o, 1);
            let bias = values(o, 2);
            let x = values(rows * i, 3);
            let mut y = vec![0.0f32; rows * o];
            let mut y2 = vec![0.0f32; rows * o];
            let mut y3 = vec![0.0f32; rows * o];
            let t = measure(
                &mut [
                    &mut || dense.forward(black_box(&x), rows, &mut y, &p1),
                    &mut || dense.forward(black_box(&x), rows, &mut y2, &p2),
                    &mut || {
                        // The same work as Dense: bias broadcast, then C += x @ kernel.
                        for r in y3.chunks_exact_mut(o) {
                            r.copy_from_slice(&bias);
                        }
                        mm_sgemm(
                            rows,
                            i,
                            o,
                            1.0,
                            black_box(&x),
                            (i as isize, 1),
                            &kernel,
                            (o as isize, 1),
                            1.0,
                            &mut y3,
                            (o as isize, 1),
                        );
                    },
                ],
                samples,
            );
            row(
                &format!("{model} {rows} x {i} -> {o}"),
                2.0 * (rows * i * o) as f64,
                &t,
                peak,
            );
        }
    }

    if !wanted("attention") {
        return;
    }
    // Attention for one head inside a [seq, 768] hidden state (head size 64): Q·Kᵀ reads K
    // transposed through its strides, P·V writes into the head's columns of the context.
    let (seq, hidden, d) = (128usize, 768usize, 64usize);
    let q = values(seq * hidden, 4);
    let kmat = values(seq * hidden, 5);
    let v = values(seq * hidden, 6);
    let mut scores = [
        vec![0.0f32; seq * seq],
        vec![0.0f32; seq * seq],
        vec![0.0f32; seq * seq],
    ];
    let qs = (hidden as isize, 1);
    let kts = (1, hidden as isize);
    let ss = (seq as isize, 1);
    let [s1, s2, s3] = &mut scores;
    let t = measure(
        &mut [
            &mut || {
                sgemm(
                    seq,
                    d,
                    seq,
                    0.125,
                    black_box(&q),
                    qs,
                    &kmat,
                    kts,
                    0.0,
                    s1,
                    ss,
                    &p1,
                )
            },
            &mut || {
                sgemm(
                    seq,
                    d,
                    seq,
                    0.125,
                    black_box(&q),
                    qs,
                    &kmat,
                    kts,
                    0.0,
                    s2,
                    ss,
                    &p2,
                )
            },
            &mut || {
                mm_sgemm(
                    seq,
                    d,
                    seq,
                    0.125,
                    black_box(&q),
                    qs,
                    &kmat,
                    kts,
                    0.0,
                    s3,
                    ss,
                )
            },
        ],
        samples,
    );
    row(
        "attention Q·Kᵀ 128x64 · (128x64)ᵀ, strided",
        2.0 * (seq * d * seq) as f64,
        &t,
        peak,
    );
    let p = values(seq * seq, 7);
    let mut ctx = [
        vec![0.0f32; seq * hidden],
        vec![0.0f32; seq * hidden],
        vec![0.0f32; seq * hidden],
    ];
    let [c1, c2, c3] = &mut ctx;
    let hs = (hidden as isize, 1);
    let t = measure(
        &mut [
            &mut || {
                sgemm(
                    seq,
                    seq,
                    d,
                    1.0,
                    black_box(&p),
                    ss,
                    &v,
                    hs,
                    0.0,
                    c1,
                    hs,
                    &p1,
                )
            },
            &mut || {
                sgemm(
                    seq,
                    seq,
                    d,
                    1.0,
                    black_box(&p),
                    ss,
                    &v,
                    hs,
                    0.0,
                    c2,
                    hs,
                    &p2,
                )
            },
            &mut || mm_sgemm(seq, seq, d, 1.0, black_box(&p), ss, &v, hs, 0.0, c3, hs),
        ],
        samples,
    );
    row(
        "attention P·V 128x128 · 128x64, strided",
        2.0 * (seq * seq * d) as f64,
        &t,
        peak,
    );
}
