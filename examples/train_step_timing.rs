//! Smoke timing of one fine-tuning step (forward with dropout, backward, clipping, AdamW) of
//! `tf_bert_tiny` with a 3-label head on the fine-tuning fixture's batch (4 x 128), on the
//! CPU back end and, with feature `vulkan`, on the Vulkan device: median of `--steps` timed
//! steps after one untimed. Not a benchmark: on lavapipe (Mesa's CPU Vulkan driver) it
//! measures that training runs on a device, not how fast a GPU would run it.
//!
//! ```text
//! cargo run --release --features vulkan --example train_step_timing -- \
//!     ../shared/fixtures/tf_bert_tiny [--steps 5] [--threads 1]
//! ```

use std::path::Path;
use std::time::Instant;

use bert::backend::Backend;
use bert::heads::ClassifierHead;
use bert::train::{AdamWConfig, Schedule, Trainer};
use bert::weights::{Tensor, Weights};
use bert::{BertConfig, BertModel, Cpu, Inputs};

fn npy_u32(path: &Path) -> Vec<u32> {
    // The fixtures' int32 .npy files: a header, then little-endian values.
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize + 10;
    bytes[header..]
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32)
        .collect()
}

/// Median milliseconds of `steps` steps after one warm-up step.
fn time<B: Backend>(b: B, dir: &Path, weights: &Weights, steps: usize, threads: usize) -> f64 {
    let config = BertConfig::from_file(dir.join("bert_config.json")).expect("the config");
    let fixture = dir.join("finetune_reference");
    let ids = npy_u32(&fixture.join("input_ids.npy"));
    let segments = npy_u32(&fixture.join("segment_ids.npy"));
    let mask = npy_u32(&fixture.join("input_mask.npy"));
    let labels = npy_u32(&fixture.join("label_ids.npy"));
    let inputs = Inputs {
        input_ids: &ids,
        segment_ids: &segments,
        input_mask: &mask,
        batch: 4,
        seq: 128,
    };
    let model = BertModel::build(b.clone(), config, weights, true).expect("the model");
    let head = ClassifierHead::load(&b, weights, 128, 3, true).expect("the head");
    let schedule = Schedule {
        init_lr: 2e-5,
        num_train_steps: 1000,
        num_warmup_steps: 10,
    };
    let adamw = AdamWConfig::default();
    let mut t = Trainer::new(model, head, schedule, adamw, 1, threads).expect("a trainer");
    t.step(&inputs, &labels).expect("a step");
    let mut ms: Vec<f64> = (0..steps)
        .map(|_| {
            let start = Instant::now();
            t.step(&inputs, &labels).expect("a step");
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(
        args.first()
            .map_or("../shared/fixtures/tf_bert_tiny", |s| s.as_str()),
    );
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let (steps, threads) = (flag("--steps", 5), flag("--threads", 1));
    let mut weights =
        bert::weights::tf_checkpoint::load(dir.join("bert_model.ckpt")).expect("the checkpoint");
    weights.insert(
        "output_weights",
        Tensor::new(vec![3, 128], vec![0.01; 384]).unwrap(),
    );
    weights.insert("output_bias", Tensor::new(vec![3], vec![0.0; 3]).unwrap());
    let cpu = time(Cpu, dir, &weights, steps, threads);
    println!("cpu ({threads} thread(s)): {cpu:.1} ms per step (median of {steps})");
    #[cfg(feature = "vulkan")]
    {
        use bert::backend::vulkan::{DeviceChoice, Vulkan};
        match Vulkan::open(DeviceChoice::Any) {
            Ok(vk) => {
                let name = vk.device_name().to_string();
                let ms = time(vk, dir, &weights, steps, threads);
                println!("vulkan ({name}): {ms:.1} ms per step (median of {steps})");
            }
            Err(e) => println!("vulkan: no device ({e})"),
        }
    }
}
