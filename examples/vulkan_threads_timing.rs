//! Smoke timing of Vulkan inference from several threads: `--batches` batches of 8 short
//! sentences embedded (mean pooling, normalised) by one device model of all-MiniLM-L6-v2,
//! shared by `--threads` threads, each with its own context; wall-clock seconds after one
//! untimed batch. Contexts record their commands apart; their submissions take turns (one
//! queue, one lock: see `Gpu::submit` in `src/backend/vulkan/device.rs`).
//!
//! ```text
//! cargo run --features vulkan --example vulkan_threads_timing -- \
//!     ~/.cache/libbert/all-MiniLM-L6-v2 [--batches 8] [--threads 1]
//! ```

#[cfg(feature = "vulkan")]
fn main() {
    use std::time::Instant;

    use bert::backend::vulkan::{DeviceChoice, Vulkan};
    use bert::{BertModel, Context, ModelOptions, Pipeline, Pooling};

    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .expect("usage: vulkan_threads_timing MODEL_DIR [flags]");
    let flag = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .map_or(default, |i| args[i + 1].parse().expect(name))
    };
    let (batches, threads) = (flag("--batches", 8), flag("--threads", 1).max(1));
    let vk = Vulkan::open(DeviceChoice::Any).expect("a Vulkan device");
    let pipeline = Pipeline::load(dir, None).unwrap();
    let texts: Vec<String> = (0..8)
        .map(|i| format!("sentence number {i} about the quick brown fox and the lazy dog"))
        .collect();
    let inputs: Vec<(&str, Option<&str>)> = texts.iter().map(|t| (t.as_str(), None)).collect();
    let (_, batch) = pipeline.encode(&inputs, 128, 1).unwrap();
    let model = BertModel::load_on(vk.clone(), dir, &ModelOptions::default()).unwrap();
    let embed = |ctx: &mut Context<Vulkan>| {
        model
            .embed(ctx, &batch.inputs(), Pooling::Mean, true)
            .unwrap();
    };
    embed(&mut Context::on(&vk, 1));
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (vk, embed) = (&vk, &embed);
            s.spawn(move || {
                let mut ctx = Context::on(vk, 1);
                for _ in (t..batches).step_by(threads) {
                    embed(&mut ctx);
                }
            });
        }
    });
    println!(
        "{batches} batches of 8 on {threads} threads ({}): {:.2} s",
        vk.device_name(),
        started.elapsed().as_secs_f64()
    );
}

#[cfg(not(feature = "vulkan"))]
fn main() {
    eprintln!("vulkan_threads_timing needs --features vulkan");
}
