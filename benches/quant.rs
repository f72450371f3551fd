//! int8 and f16 dense layers against our f32 `Dense` on BERT shapes, interleaved in one run.
//!
//! `cargo bench --bench quant` (add `-- quick` for fewer samples, `portable` for a column
//! with the portable int8 kernel, and label substrings such as `"128 x 768"` to run only
//! those rows). GOP/s = 2·rows·in·out / time for every column (an int8 multiply-add counts
//! as two operations, like an f32 FMA), median of samples of at least 20 ms each.
//! Single-threaded columns are timed by the thread's on-CPU time (the machine is shared;
//! time given to other processes does not count); two-threaded ones by wall time.

use bert::backend::cpu::Dense;
use bert::backend::int8::{Int8Path, QuantizedKernel};
use bert::backend::{Pool, WeightBytes};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// Nanoseconds the calling thread has spent on a CPU (Linux `schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Seconds per call of `f`, over at least `min` of calls; on-CPU time with `cpu_time`.
fn sample(f: &mut dyn FnMut(), min: Duration, cpu_time: bool) -> f64 {
    let cpu0 = if cpu_time { thread_cpu_ns() } else { None };
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < min {
        f();
        calls += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if cpu_time => (b - a) as f64 * 1e-9 / calls as f64,
        _ => wall / calls as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// One candidate: a closure and whether it is single-threaded (timed by on-CPU time).
type Cand<'a> = (&'a mut dyn FnMut(), bool);

/// Runs the candidates interleaved, `samples` rounds; each one's median seconds.
fn measure(cands: &mut [Cand<'_>], samples: usize) -> Vec<f64> {
    for (f, _) in cands.iter_mut() {
        f(); // warm caches, scratch, pool threads and column sums
    }
    let mut times = vec![Vec::new(); cands.len()];
    for _ in 0..samples {
        for (t, (f, single)) in times.iter_mut().zip(cands.iter_mut()) {
            t.push(sample(*f, Duration::from_millis(20), *single));
        }
    }
    times.into_iter().map(median).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "quick");
    let portable = args.iter().any(|a| a == "portable");
    let filter: Vec<&String> = args
        .iter()
        .filter(|a| !["quick", "portable", "--bench"].contains(&a.as_str()))
        .collect();
    let wanted =
        |label: &str| filter.is_empty() || filter.iter().any(|f| label.contains(f.as_str()));
    let samples = if quick { 3 } else { 7 };
    let (p1, p2) = (Pool::single(), Pool::new(2));
    let path = Int8Path::detect();
    println!(
        "int8 path: {path:?} (activations 0..={}); f32 kernel: {:?}; medians of {samples} \
         samples (>= 20 ms each), interleaved",
        path.activation_levels(),
        bert::backend::cpu::Isa::detect()
    );
    println!();
    print!("| shape (rows x in -> out) | f32 GOP/s | int8 GOP/s | int8 / f32 | f16 GOP/s | f16 / f32 |");
    if portable {
        print!(" int8 portable GOP/s |");
    }
    println!(" f32 2t GOP/s | int8 2t GOP/s | int8 / f32 (2t) |");
    print!("| --- | --- | --- | --- | --- | --- |");
    if portable {
        print!(" --- |");
    }
    println!(" --- | --- | --- |");
    let widths = [
        ("MiniLM", 384, 384),
        ("MiniLM", 384, 1536),
        ("MiniLM", 1536, 384),
        ("BERT-base", 768, 768),
        ("BERT-base", 768, 3072),
        ("BERT-base", 3072, 768),
    ];
    for rows in [16, 128] {
        for &(model, i, o) in &widths {
            let label = format!("{model} {rows} x {i} -> {o}");
            if !wanted(&label) {
                continue;
            }
            let kernel = values(i * o, 1);
            let bias = values(o, 2);
            let x = values(rows * i, 3);
            let f32d = Dense::new(i, o, kernel.clone(), bias.clone());
            let q = QuantizedKernel::quantize(&kernel, i, o);
            let int8 = Dense::new_int8(&q, bias.clone());
            let int8p = Dense::new_int8_with_path(&q, bias.clone(), Int8Path::Portable)
                .expect("portable int8 path");
            let f16_bytes: Vec<u8> = kernel
                .iter()
                .flat_map(|&w| half::f16::from_f32(w).to_le_bytes())
                .collect();
            let f16d = Dense::new_f16(i, o, WeightBytes::Owned(f16_bytes), bias.clone())
                .expect("f16 layer");
            let mut ys = vec![vec![0.0f32; rows * o]; 6];
            let [y0, y1, y2, y3, y4, y5] = &mut ys[..] else {
                unreachable!()
            };
            let mut f0 = || f32d.forward(black_box(&x), rows, y0, &p1);
            let mut f1 = || int8.forward(black_box(&x), rows, y1, &p1);
            let mut f2 = || f16d.forward(black_box(&x), rows, y2, &p1);
            let mut f3 = || int8p.forward(black_box(&x), rows, y3, &p1);
            let mut f4 = || f32d.forward(black_box(&x), rows, y4, &p2);
            let mut f5 = || int8.forward(black_box(&x), rows, y5, &p2);
            let mut cands: Vec<Cand<'_>> = vec![(&mut f0, true), (&mut f1, true), (&mut f2, true)];
            if portable {
                cands.push((&mut f3, true));
            }
            cands.push((&mut f4, false));
            cands.push((&mut f5, false));
            let t = measure(&mut cands, samples);
            let g = |s: f64| 2.0 * (rows * i * o) as f64 / s / 1e9;
            let (t2f, t2i) = (t[t.len() - 2], t[t.len() - 1]);
            print!(
                "| {label} | {:.1} | {:.1} | {:.2}x | {:.1} | {:.2}x |",
                g(t[0]),
                g(t[1]),
                t[0] / t[1],
                g(t[2]),
                t[0] / t[2]
            );
            if portable {
                print!(" {:.1} |", g(t[3]));
            }
            println!(" {:.1} | {:.1} | {:.2}x |", g(t2f), g(t2i), t2f / t2i);
        }
    }
}
