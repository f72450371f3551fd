//! Helpers shared by the kernel benchmarks: deterministic inputs and on-CPU timing.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// `len` pseudo-random values in [-0.5, 0.5) (xorshift from `seed`).
pub fn values(len: usize, seed: u64) -> Vec<f32> {
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

/// Nanoseconds the calling thread has spent on a CPU, so that time the scheduler gives to
/// other processes on this shared machine does not count. `clock_gettime`, not
/// `/proc/thread-self/schedstat`: on some kernels the latter advances only at scheduler ticks
/// (4 ms), which put a 20 ms sample off by up to 20%.
pub fn thread_cpu_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    return clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
    #[cfg(not(target_os = "linux"))]
    None
}

/// Nanoseconds all threads of this process have spent on a CPU (like Python's
/// `time.process_time()`).
pub fn process_cpu_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    return clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(target_os = "linux")]
fn clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Seconds per call of `f`: one sample runs `f` for at least `min` and divides. With
/// `cpu_time`, time is the calling thread's on-CPU time (single-threaded runs), else wall
/// time.
pub fn sample(f: &mut dyn FnMut(), min: Duration, cpu_time: bool) -> f64 {
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

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
