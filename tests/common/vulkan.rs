//! Opening the Vulkan device of the `vulkan_*` tests. A machine without one fails the tests
//! (CI installs lavapipe, so a silent skip would hide a broken setup) unless
//! `LIBBERT_SKIP_VULKAN=1` says to skip. Also what the op tests (`vulkan_ops.rs`,
//! `vulkan_train.rs`) share: inputs, both back ends side by side, and their comparison.

use bert::backend::vulkan::{DeviceChoice, Vulkan};
use bert::backend::{Backend, Cpu, Rows, Span};

/// The device, or `None` when there is none and `LIBBERT_SKIP_VULKAN=1`.
pub fn device() -> Option<Vulkan> {
    match Vulkan::open(DeviceChoice::Any) {
        Ok(v) => {
            eprintln!("vulkan device: {}", v.device_name());
            Some(v)
        }
        Err(e) if std::env::var("LIBBERT_SKIP_VULKAN").as_deref() == Ok("1") => {
            eprintln!("skipped (LIBBERT_SKIP_VULKAN=1): {e}");
            None
        }
        Err(e) => panic!(
            "no Vulkan device ({e}); install mesa-vulkan-drivers (lavapipe) or set \
             LIBBERT_SKIP_VULKAN=1 to skip"
        ),
    }
}

/// Deterministic values in [-1, 1).
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Compares every output of a test before failing it, so one run shows each op that is
/// wrong (not only the first).
pub struct Checks {
    failures: Vec<String>,
    /// The largest difference allowed, given the reference's max |x|.
    tolerance: fn(f32) -> f32,
}

impl Checks {
    pub fn new(tolerance: fn(f32) -> f32) -> Checks {
        Checks {
            failures: Vec::new(),
            tolerance,
        }
    }

    pub fn check(&mut self, what: &str, got: &[f32], want: &[f32]) {
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        // A NaN anywhere (what a read gives after a device error) is an infinite difference:
        // `f32::max` alone would skip it.
        let d = got.iter().zip(want).fold(0f32, |m, (a, b)| {
            let e = (a - b).abs();
            if e.is_nan() {
                f32::INFINITY
            } else {
                m.max(e)
            }
        });
        let tol = (self.tolerance)(scale);
        eprintln!("{what}: max abs diff {d:e} (max |x| {scale})");
        if got.len() != want.len() || d > tol {
            self.failures.push(format!(
                "{what}: max abs diff {d:e} > {tol:e} (lengths {} vs {})",
                got.len(),
                want.len()
            ));
        }
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        if !self.failures.is_empty() && !std::thread::panicking() {
            panic!("{}", self.failures.join("\n"));
        }
    }
}

/// A batch of sequences of these lengths; the last `pad[i]` rows of sequence i are padding.
pub fn rows_of(lens: &[usize], pad: &[usize]) -> Rows {
    let mut r = Rows::default();
    for (s, (&len, &p)) in lens.iter().zip(pad).enumerate() {
        r.seqs.push(Span {
            start: r.ids.len(),
            len,
        });
        for t in 0..len {
            r.ids.push(((t * 7 + s * 3) % 50) as u32);
            r.segments.push((t >= len / 2) as u32);
            r.positions.push(t as u32);
            r.mask_bias.push(if t + p >= len { -10000.0 } else { 0.0 });
        }
    }
    r
}

/// The device and the CPU, each with an execution context of one thread.
pub struct Both {
    pub gpu: Vulkan,
    pub cx: <Cpu as Backend>::Exec,
    pub gx: <Vulkan as Backend>::Exec,
}

impl Both {
    /// `None` where [`device`] is.
    pub fn new() -> Option<Both> {
        let gpu = device()?;
        let gx = gpu.exec(1);
        Some(Both {
            gpu,
            cx: Cpu.exec(1),
            gx,
        })
    }

    pub fn up(&self, v: &[f32]) -> <Vulkan as Backend>::Buf {
        self.gpu.upload(v)
    }

    /// `n` values of a device buffer, after checking the device ran the ops before.
    pub fn read(&self, b: &<Vulkan as Backend>::Buf, n: usize) -> Vec<f32> {
        let v = Vulkan::read(&self.gx, b, n).into_owned();
        Vulkan::status(&self.gx).expect("the device ops");
        v
    }
}
