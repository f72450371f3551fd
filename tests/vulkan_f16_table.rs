//! An f16 `.bert` model on the Vulkan device (lavapipe in CI): its word table stays f16
//! there (halves two per word, as the dense kernels hold f16 weights: half the memory) and
//! the lookup widens the rows it reads, so the device computes what the CPU's f16 model
//! computes. An int8 model's table is widened to f32 on the device (its per-row scales have
//! no shader yet).
#![cfg(feature = "vulkan")]

mod common;

use std::path::PathBuf;
use std::process::Command;

use bert::backend::vulkan::Vulkan;
use bert::backend::Backend;
use bert::{BertModel, Context, DType, ModelOptions, Pipeline, Pooling};
use common::{cosine, max_abs_diff};

/// all-MiniLM-L6-v2 converted by `bert convert --dtype dtype` into a temporary file.
fn converted(dtype: &str) -> PathBuf {
    let file = std::env::temp_dir().join(format!(
        "libbert-vulkan-{dtype}-table-{}.bert",
        std::process::id()
    ));
    let status = Command::new(env!("CARGO_BIN_EXE_bert"))
        .args(["convert", "--dtype", dtype, "--model"])
        .arg(common::minilm_dir())
        .arg("--output")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    file
}

const TEXTS: [&str; 4] = [
    "A man is playing a guitar.",
    "Café au lait, crème brûlée.",
    "the quick brown fox jumps over the lazy dog",
    "北京 🙂 don't",
];

/// Mean-pooled, normalised embeddings of [`TEXTS`] by a CPU model and another model: the worst
/// cosine and max abs difference.
fn compare<B: Backend>(cpu: &BertModel, device: &BertModel<B>) -> (f32, f32) {
    let pipeline = Pipeline::load(common::minilm_dir(), None).unwrap();
    let inputs: Vec<(&str, Option<&str>)> = TEXTS.iter().map(|t| (*t, None)).collect();
    let (_, batch) = pipeline.encode(&inputs, 128, 1).unwrap();
    let want = cpu
        .embed(&mut Context::new(1), &batch.inputs(), Pooling::Mean, true)
        .unwrap()
        .into_owned();
    let mut ctx = Context::on(device.backend(), 1);
    let got = device
        .embed(&mut ctx, &batch.inputs(), Pooling::Mean, true)
        .unwrap()
        .into_owned();
    let h = device.config().hidden_size;
    let (mut cos, mut diff) = (1f32, 0f32);
    for (g, w) in got.chunks_exact(h).zip(want.chunks_exact(h)) {
        cos = cos.min(cosine(g, w));
        diff = diff.max(max_abs_diff(g, w));
    }
    (cos, diff)
}

#[test]
fn f16_word_table_stays_f16_on_the_device() {
    let Some(vk) = common::vulkan::device() else {
        return;
    };
    let file = converted("f16");
    let model = BertModel::load_on(vk.clone(), &file, &ModelOptions::default()).unwrap();
    let (v, h) = (model.config().vocab_size, model.config().hidden_size);
    let table = model.embeddings().word_table().unwrap();
    assert_eq!(table.dtype(), DType::F16);
    assert_eq!(table.device_bytes(), v * h * 2);
    let cpu = BertModel::load(&file).unwrap();
    let (cos, diff) = compare(&cpu, &model);
    eprintln!("f16 MiniLM on vulkan vs the CPU's f16 model: cosine {cos}, max abs diff {diff:e}");
    assert!(
        cos >= 0.9999 && diff <= 1e-4,
        "cosine {cos}, max abs diff {diff:e}"
    );

    // The table in chunks of 100 rows of halves (a small maxStorageBufferRange).
    let split = vk.clone().with_binding_limit(100 * 2 * h as u64);
    let chunked = BertModel::load_on(split, &file, &ModelOptions::default()).unwrap();
    let (cos, diff) = compare(&cpu, &chunked);
    eprintln!("in chunks: cosine {cos}, max abs diff {diff:e}");
    assert!(
        cos >= 0.9999 && diff <= 1e-4,
        "chunked: cosine {cos}, max abs diff {diff:e}"
    );

    // Read whole as f32 (the masked LM's output layer): the CPU's widened halves exactly.
    let want = cpu.embeddings().word_embeddings(&bert::Cpu).unwrap();
    let got = model.embeddings().word_embeddings(&vk).unwrap();
    let mut ctx = Context::on(&vk, 1);
    let got = <Vulkan as Backend>::read(ctx.exec(), &got, v * h);
    assert!(got[..] == want[..v * h], "the widened table differs");
    std::fs::remove_file(&file).ok();
}

/// An int8 model converted while loading (an int8 `.bert` file stores its kernels packed
/// for the CPU, which the device cannot read: loading one there is an error saying so). Its
/// table is widened to the CPU's dequantized values exactly. The device multiplies f32
/// activations by the widened int8 weights where the CPU's int8 products also quantize the
/// activations (`backend::int8`), so the device's embeddings are compared with f32's: at
/// least as close as the CPU's int8 model.
#[test]
fn int8_word_table_is_widened_on_the_device() {
    let Some(vk) = common::vulkan::device() else {
        return;
    };
    let int8 = ModelOptions {
        dtype: Some(DType::Int8),
        ..ModelOptions::default()
    };
    let dir = common::minilm_dir();
    let model = BertModel::load_on(vk.clone(), &dir, &int8).unwrap();
    let (v, h) = (model.config().vocab_size, model.config().hidden_size);
    let table = model.embeddings().word_table().unwrap();
    assert_eq!(table.dtype(), DType::F32);
    assert_eq!(table.device_bytes(), v * h * 4);
    let cpu = BertModel::load_with(&dir, &int8).unwrap();
    let want = cpu.embeddings().word_embeddings(&bert::Cpu).unwrap();
    let got = model.embeddings().word_embeddings(&vk).unwrap();
    let mut ctx = Context::on(&vk, 1);
    let got = <Vulkan as Backend>::read(ctx.exec(), &got, v * h);
    assert!(got[..] == want[..v * h], "the widened table differs");
    let f32_model = BertModel::load(&dir).unwrap();
    let (cos_cpu, _) = compare(&f32_model, &cpu);
    let (cos_dev, diff) = compare(&f32_model, &model);
    eprintln!(
        "int8 MiniLM against f32: cosine {cos_dev} (max abs diff {diff:e}) on vulkan, \
         {cos_cpu} on the CPU"
    );
    assert!(cos_dev >= cos_cpu, "{cos_dev} < {cos_cpu}");
    let file = converted("int8");
    let err = BertModel::load_on(vk, &file, &ModelOptions::default()).unwrap_err();
    assert!(err.to_string().contains("packed"), "{err}");
    std::fs::remove_file(&file).ok();
}
