//! The task heads on the Vulkan back end (lavapipe in CI) against the CPU and TensorFlow:
//! a [`Classifier`] and a [`SquadModel`] / [`QuestionAnswerer`] built on the device give
//! the CPU's logits within 1e-4 (the back end's tolerance, see tests/vulkan_model.rs) and
//! the same answers. Fixtures: `tf_bert_tiny` with the fine-tuning references' initial heads
//! (whose first-step logits TensorFlow computed), and all-MiniLM-L6-v2 with made-up heads
//! (a real-sized encoder, ragged batches of pairs).
//!
//! Without a Vulkan device the tests fail unless `LIBBERT_SKIP_VULKAN=1` (then they print
//! why and pass). Measured values are printed with `--nocapture`.
#![cfg(feature = "vulkan")]

mod common;

use std::path::PathBuf;

use bert::backend::vulkan::Vulkan;
use bert::classifier::{self, Classifier, InputFeatures};
use bert::squad::{FeatureOptions, SquadModel};
use bert::tokenizer::{EncodeOptions, Padding, Tokenizer};
use bert::weights::{Tensor, Weights};
use bert::{Batch, BertConfig, Context, DType, ModelOptions, QuestionAnswerer};
use common::{max_abs_diff, npy_f32, npy_u32};

const TOL: f32 = 1e-4;

fn tiny() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny")
}

/// `tf_bert_tiny`'s config, weights (with `extra` tensors added from `npy` files of `dir`)
/// and tokenizer.
fn tiny_parts(dir: &str, extra: &[(&str, &str, Vec<usize>)]) -> (BertConfig, Weights, Tokenizer) {
    let config = BertConfig::from_file(tiny().join("bert_config.json")).unwrap();
    let mut w = bert::weights::tf_checkpoint::load(tiny().join("bert_model.ckpt")).unwrap();
    for (name, file, shape) in extra {
        let values = npy_f32(&tiny().join(dir), file);
        w.insert(*name, Tensor::new(shape.clone(), values).unwrap());
    }
    let tokenizer = Tokenizer::from_vocab_file(tiny().join("vocab.txt"), true).unwrap();
    (config, w, tokenizer)
}

/// The fixture batch of `dir` (`input_ids.npy`, ...), `batch` rows.
fn fixture_batch(dir: &str, batch: usize) -> Batch {
    let d = tiny().join(dir);
    let input_ids = npy_u32(&d, "input_ids.npy");
    Batch {
        batch,
        seq: input_ids.len() / batch,
        input_ids,
        segment_ids: npy_u32(&d, "segment_ids.npy"),
        input_mask: npy_u32(&d, "input_mask.npy"),
    }
}

/// Texts and pairs of varied length, some longer than a 64-position window.
fn pairs() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        ("A delightful film with wonderful performances.", None),
        ("The plot was dull and the acting was worse.", None),
        ("ok", None),
        (
            "Is it raining?",
            Some("The weather today is sunny with a chance of rain."),
        ),
        (
            "The quick brown fox jumps over the lazy dog again and again, while the dog \
             sleeps through the whole afternoon in the warm sun of Zürich.",
            Some("Nobody knows why the fox keeps jumping; perhaps it likes the exercise."),
        ),
        (
            "naïve café résumé 1984 3.14159 don't can't e-mail!",
            Some("北京 東京 🙂"),
        ),
        ("unbelievably", Some("transformers attention")),
    ]
}

/// Classifier features of `pairs`, truncated to `max_seq_length` (not padded).
fn features(tok: &Tokenizer, pairs: &[(&str, Option<&str>)], max: usize) -> Vec<InputFeatures> {
    let opts = EncodeOptions {
        max_seq_length: Some(max),
        padding: Padding::None,
    };
    tok.encode_batch(pairs, &opts, 1)
        .unwrap()
        .into_iter()
        .map(|e| InputFeatures {
            input_ids: e.ids,
            segment_ids: e.type_ids,
            label_id: 0,
        })
        .collect()
}

/// Logits of both classifiers on `batch`, and their largest difference.
fn both_logits(cpu: &Classifier, gpu: &Classifier<Vulkan>, batch: &Batch) -> (Vec<f32>, f32) {
    let want = cpu.logits(&mut Context::new(1), &batch.inputs()).unwrap();
    let mut ctx = Context::on(gpu.model().backend(), 1);
    let got = gpu.logits(&mut ctx, &batch.inputs()).unwrap();
    let d = max_abs_diff(&got, &want);
    (got, d)
}

#[test]
fn tf_bert_tiny_classifier_on_vulkan_gives_the_cpu_and_tf_logits() {
    let Some(vk) = common::vulkan::device() else {
        return;
    };
    let dir = "finetune_reference";
    let (config, w, tok) = tiny_parts(
        dir,
        &[
            ("output_weights", "initial/output_weights.npy", vec![3, 128]),
            ("output_bias", "initial/output_bias.npy", vec![3]),
        ],
    );
    let labels: Vec<String> = ["0", "1", "2"].iter().map(|s| s.to_string()).collect();
    let cpu = Classifier::from_weights(config.clone(), &w, tok.clone(), labels.clone()).unwrap();
    let gpu =
        Classifier::from_weights_on(vk.clone(), config.clone(), &w, tok.clone(), labels.clone())
            .unwrap();
    // TensorFlow's logits of the fixture batch before the first update (dropout off).
    let batch = fixture_batch(dir, 4);
    let (got, d) = both_logits(&cpu, &gpu, &batch);
    let tf = max_abs_diff(
        &got,
        &npy_f32(&tiny().join(dir), "logits_per_step.npy")[..12],
    );
    eprintln!("fixture batch: max |Δlogits| {d:.3e} against the CPU, {tf:.3e} against TF");
    assert!(d <= TOL && tf <= TOL, "{d:e} {tf:e}");

    // Texts through `classify`, one context for batches of several sizes (its buffers are
    // reused, larger then smaller).
    let texts = pairs();
    let mut ctx = Context::on(&vk, 1);
    let mut cctx = Context::new(1);
    for (max, batch_size) in [(128, 7), (16, 2), (64, 3)] {
        let want = cpu.classify(&mut cctx, &texts, max, batch_size).unwrap();
        let got = gpu.classify(&mut ctx, &texts, max, batch_size).unwrap();
        let d = max_abs_diff(&got, &want);
        eprintln!("classify, max_seq_length {max}, batch {batch_size}: max |Δp| {d:.3e}");
        assert!(d <= TOL, "max_seq_length {max}, batch {batch_size}: {d:e}");
    }

    // The same classifier saved and loaded on the device, as f32 and as f16.
    let path =
        std::env::temp_dir().join(format!("libbert-vulkan-heads-{}.bert", std::process::id()));
    classifier::save(&path, &config, &w, &tok, &labels).unwrap();
    let feats = features(&tok, &texts, 64);
    let refs: Vec<&InputFeatures> = feats.iter().collect();
    let padded = classifier::pad(&refs);
    for dtype in [None, Some(DType::F16)] {
        let opts = ModelOptions {
            dtype,
            ..ModelOptions::default()
        };
        let cpu = Classifier::load_with(&path, &opts).unwrap();
        let gpu = Classifier::load_on(vk.clone(), &path, &opts).unwrap();
        assert_eq!(gpu.labels(), labels.as_slice());
        let (_, d) = both_logits(&cpu, &gpu, &padded);
        eprintln!("loaded from a .bert file, dtype {dtype:?}: max |Δlogits| {d:.3e}");
        assert!(d <= TOL, "{dtype:?}: {d:e}");
    }
    std::fs::remove_file(&path).ok();
}

const CONTEXT: &str = "Super Bowl 50 was an American football game to determine the champion of \
the National Football League (NFL) for the 2015 season. The American Football Conference \
(AFC) champion Denver Broncos defeated the National Football Conference (NFC) champion \
Carolina Panthers 24–10 to earn their third Super Bowl title. The game was played on \
February 7, 2016, at Levi's Stadium in the San Francisco Bay Area at Santa Clara, California.";

/// Both answerers' answers to a few questions, one of them over a context of several
/// windows: the same spans in the same order, scores within `TOL`.
fn same_answers(cpu: &QuestionAnswerer, gpu: &QuestionAnswerer<Vulkan>) {
    let long = [CONTEXT; 3].join(" ");
    let questions = [
        ("Which NFL team won Super Bowl 50?", CONTEXT),
        ("Where was the game played?", long.as_str()),
        ("When?", "February 7, 2016."),
        ("Who?", ""),
    ];
    let want = cpu
        .answer_batch(&mut Context::new(1), &questions, 5)
        .unwrap();
    let mut ctx = Context::on(gpu.model().model().backend(), 1);
    let got = gpu.answer_batch(&mut ctx, &questions, 5).unwrap();
    let mut worst = 0f32;
    for (q, (g, w)) in got.iter().zip(&want).enumerate() {
        let spans = |a: &[bert::Answer]| -> Vec<(usize, usize)> {
            a.iter().map(|a| (a.start_byte, a.end_byte)).collect()
        };
        assert_eq!(spans(g), spans(w), "question {q}");
        for (a, b) in g.iter().zip(w) {
            worst = worst.max((a.score - b.score).abs());
        }
    }
    eprintln!("answers: same spans, max |Δscore| {worst:.3e}");
    assert!(worst <= TOL, "{worst:e}");
    assert!(!got[0].is_empty() && got[3].is_empty());
}

#[test]
fn tf_bert_tiny_span_head_on_vulkan_gives_the_cpu_and_tf_logits_and_answers() {
    let Some(vk) = common::vulkan::device() else {
        return;
    };
    let dir = "squad_finetune_reference";
    let (config, w, tok) = tiny_parts(
        dir,
        &[
            (
                "cls/squad/output_weights",
                "initial/cls/squad/output_weights.npy",
                vec![2, 128],
            ),
            (
                "cls/squad/output_bias",
                "initial/cls/squad/output_bias.npy",
                vec![2],
            ),
        ],
    );
    let cpu = SquadModel::from_weights(config.clone(), &w, tok.clone()).unwrap();
    let gpu = SquadModel::from_weights_on(vk.clone(), config, &w, tok).unwrap();
    // Every position of the fixture batch (padding included, as TF computes it).
    let batch = fixture_batch(dir, 8);
    let want = cpu.logits(&mut Context::new(1), &batch.inputs()).unwrap();
    let got = gpu
        .logits(&mut Context::on(&vk, 1), &batch.inputs())
        .unwrap();
    let flat: Vec<f32> = got.start.iter().chain(&got.end).copied().collect();
    let tf = max_abs_diff(
        &flat,
        &npy_f32(&tiny().join(dir), "logits_per_step.npy")[..flat.len()],
    );
    let d = max_abs_diff(&got.start, &want.start).max(max_abs_diff(&got.end, &want.end));
    eprintln!("fixture batch: max |Δlogits| {d:.3e} against the CPU, {tf:.3e} against TF");
    assert!(d <= TOL && tf <= TOL, "{d:e} {tf:e}");

    let windows = FeatureOptions {
        max_seq_length: 64,
        doc_stride: 16,
        max_query_length: 16,
    };
    let cpu = QuestionAnswerer::with_options(cpu, windows, 30, 4).unwrap();
    let gpu = QuestionAnswerer::with_options(gpu, windows, 30, 4).unwrap();
    same_answers(&cpu, &gpu);

    // Saved and loaded on the device with the defaults (windows of 384).
    let path =
        std::env::temp_dir().join(format!("libbert-vulkan-squad-{}.bert", std::process::id()));
    let m = cpu.model();
    bert::squad::model::save(&path, m.config(), &w, m.tokenizer()).unwrap();
    let cpu = QuestionAnswerer::load(&path).unwrap();
    let gpu = QuestionAnswerer::load_on(vk.clone(), &path).unwrap();
    assert_eq!(gpu.options(), cpu.options());
    same_answers(&cpu, &gpu);
    std::fs::remove_file(&path).ok();
}

/// Deterministic small values (xorshift), so the made-up heads are the same every run.
fn made_up(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .map(|v| v * 0.05)
        .collect()
}

#[test]
fn minilm_classifier_and_span_head_on_vulkan_match_the_cpu() {
    let Some(vk) = common::vulkan::device() else {
        return;
    };
    let dir = common::minilm_dir();
    let (config, mut w) = bert::model::read_weights(&dir, &ModelOptions::default()).unwrap();
    let h = config.hidden_size;
    let heads = [
        ("output_weights", vec![3, h], 1),
        ("output_bias", vec![3], 2),
        ("cls/squad/output_weights", vec![2, h], 3),
        ("cls/squad/output_bias", vec![2], 4),
    ];
    for (name, shape, seed) in heads {
        let n = shape.iter().product();
        w.insert(name, Tensor::new(shape, made_up(n, seed)).unwrap());
    }
    let tok = Tokenizer::from_vocab_file(dir.join("vocab.txt"), true).unwrap();
    let labels: Vec<String> = ["neg", "neutral", "pos"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cpu = Classifier::from_weights(config.clone(), &w, tok.clone(), labels.clone()).unwrap();
    let gpu =
        Classifier::from_weights_on(vk.clone(), config.clone(), &w, tok.clone(), labels).unwrap();
    let feats = features(&tok, &pairs(), 128);
    let refs: Vec<&InputFeatures> = feats.iter().collect();
    let (_, d) = both_logits(&cpu, &gpu, &classifier::pad(&refs));
    eprintln!(
        "MiniLM classifier, ragged batch of {}: max |Δlogits| {d:.3e}",
        refs.len()
    );
    assert!(d <= TOL, "{d:e}");

    let cpu = SquadModel::from_weights(config.clone(), &w, tok.clone()).unwrap();
    let gpu = SquadModel::from_weights_on(vk.clone(), config, &w, tok).unwrap();
    // Windows of 128 positions: longer ones make the test minutes long on lavapipe.
    let windows = FeatureOptions {
        max_seq_length: 128,
        doc_stride: 48,
        max_query_length: 32,
    };
    let cpu = QuestionAnswerer::with_options(cpu, windows, 30, 8).unwrap();
    let gpu = QuestionAnswerer::with_options(gpu, windows, 30, 8).unwrap();
    same_answers(&cpu, &gpu);
}
