//! A fine-tuned classifier in the `.bert` format: files are written as version 4 (labels in
//! the header, header checksum), files of versions 1 and 2 written before keep opening,
//! and [`Classifier`] computes `softmax(pooled @ output_weightsᵀ + output_bias)`.

mod common;

use std::path::PathBuf;

use bert::classifier::Classifier;
use bert::tokenizer::Tokenizer;
use bert::weights::native::{self, NativeModel};
use bert::weights::{tf_checkpoint, Tensor};
use bert::{BertConfig, BertModel, Context, Inputs};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "libbert-classify-native-{}-{name}",
        std::process::id()
    ))
}

fn version(path: &PathBuf) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

/// The version 1 header exactly as it was before labels existed.
#[derive(serde::Serialize)]
struct HeaderV1 {
    config: BertConfig,
    vocab: Vec<String>,
    do_lower_case: bool,
    tensors: Vec<(String, u8, Vec<u64>, u64, u64, u32)>,
}

#[test]
fn a_version_1_file_written_by_hand_still_opens() {
    let dir = common::shared_dir().join("fixtures/tf_bert_tiny");
    let config = BertConfig::from_file(dir.join("bert_config.json")).unwrap();
    let header = HeaderV1 {
        config: config.clone(),
        vocab: vec!["[UNK]".into(), "a".into()],
        do_lower_case: false,
        tensors: Vec::new(),
    };
    let encoded = bincode::serde::encode_to_vec(&header, bincode::config::standard()).unwrap();
    let mut file = b"LIBBERT\0".to_vec();
    file.extend(1u32.to_le_bytes());
    file.extend((encoded.len() as u64).to_le_bytes());
    file.extend(&encoded);
    file.resize(file.len().div_ceil(64) * 64, 0);
    let path = tmp("v1.bert");
    std::fs::write(&path, &file).unwrap();
    let m = NativeModel::open(&path).unwrap();
    assert_eq!(m.vocab(), ["[UNK]", "a"]);
    assert!(!m.do_lower_case());
    assert!(m.labels().is_empty());
    assert_eq!(m.config().hidden_size, config.hidden_size);
    // An unknown version is refused, naming it (3 holds f16/int8 tensors, 4 adds the header
    // checksum, 5 packed f32 kernels, 6 is unknown).
    file[8] = 6;
    std::fs::write(&path, &file).unwrap();
    let e = NativeModel::open(&path).unwrap_err().to_string();
    assert!(e.contains("version 6"), "{e}");
}

#[test]
fn labels_round_trip_and_classifier_matches_the_formula() {
    let dir = common::shared_dir().join("fixtures/tf_bert_tiny");
    let config = BertConfig::from_file(dir.join("bert_config.json")).unwrap();
    let mut weights = tf_checkpoint::load(&dir).unwrap();
    let vocab: Vec<String> = std::fs::read_to_string(dir.join("vocab.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let plain = tmp("plain.bert");
    native::save(&plain, &config, &weights, &vocab, true).unwrap();
    assert_eq!(version(&plain), 4);
    let e = Classifier::load(&plain).unwrap_err().to_string();
    assert!(e.contains("not a fine-tuned classifier"), "{e}");

    let h = config.hidden_size;
    let w: Vec<f32> = (0..3 * h)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.01)
        .collect();
    let b = vec![0.1f32, -0.2, 0.05];
    weights.insert(
        "output_weights",
        Tensor::new(vec![3, h], w.clone()).unwrap(),
    );
    weights.insert("output_bias", Tensor::new(vec![3], b.clone()).unwrap());
    let labels: Vec<String> = ["x", "y", "z"].iter().map(|s| s.to_string()).collect();
    let path = tmp("classifier.bert");
    native::save_with_labels(&path, &config, &weights, &vocab, true, &labels).unwrap();
    assert_eq!(version(&path), 4);
    let m = NativeModel::open(&path).unwrap();
    assert_eq!(m.labels(), labels.as_slice());
    assert_eq!(m.vocab(), vocab.as_slice());
    let back = m.weights().unwrap();
    for (name, t) in weights.iter() {
        assert_eq!(back.tensor(name), Some(t), "{name}");
    }

    let c = Classifier::load(&path).unwrap();
    assert_eq!(c.labels(), labels.as_slice());
    let texts = [("hello world", None), ("how are you", Some("fine"))];
    let mut ctx = Context::new(1);
    let probs = c.classify(&mut ctx, &texts, 16, 8).unwrap();
    // The same computation by hand: pooled output of the encoder, then the head.
    let model = BertModel::from_weights(config.clone(), &weights).unwrap();
    let tok = Tokenizer::from_vocab_file(dir.join("vocab.txt"), true).unwrap();
    for (i, &(a, bb)) in texts.iter().enumerate() {
        let enc = tok
            .encode(a, bb, &bert::tokenizer::EncodeOptions::default())
            .unwrap();
        let out = model
            .forward(
                &mut ctx,
                &Inputs {
                    input_ids: &enc.ids,
                    segment_ids: &enc.type_ids,
                    input_mask: &[],
                    batch: 1,
                    seq: enc.len(),
                },
                false,
            )
            .unwrap();
        let pooled = out.pooled_output().unwrap();
        let logits: Vec<f64> = (0..3)
            .map(|k| {
                b[k] as f64
                    + (0..h)
                        .map(|j| pooled[j] as f64 * w[k * h + j] as f64)
                        .sum::<f64>()
            })
            .collect();
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        for k in 0..3 {
            let want = logits[k].exp() / z;
            // f32 matmul and softmax against an f64 head: 1e-5 absolute.
            assert!(
                (probs[i * 3 + k] as f64 - want).abs() < 1e-5,
                "example {i} class {k}: {} vs {want}",
                probs[i * 3 + k]
            );
        }
    }
}
