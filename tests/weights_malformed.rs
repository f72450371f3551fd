//! Malformed model files that loaded silently (issue 21): safetensors whose header length or
//! offsets lie, non-finite weights, a `.bert` header with a flipped bit, a config with fewer
//! layers than the checkpoint. Each test failed before its fix.

mod common;

use std::path::Path;

use bert::weights::safetensors;

/// A safetensors image: `(name, dtype, shape, data_offsets)` entries and the data bytes.
fn image(entries: &[(&str, &str, &[usize], [usize; 2])], data: &[u8]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    for (name, dtype, shape, off) in entries {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": off}),
        );
    }
    let mut text = serde_json::Value::Object(header).to_string().into_bytes();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

fn floats(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn parse_err(bytes: &[u8]) -> String {
    match safetensors::parse(bytes, Path::new("t.safetensors")) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

const A: &str = "embeddings.LayerNorm.weight";
const B: &str = "embeddings.LayerNorm.bias";

#[test]
fn safetensors_offsets_must_be_contiguous_and_cover_the_data() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let ok = image(
        &[(A, "F32", &[2], [0, 8]), (B, "F32", &[2], [8, 16])],
        &data,
    );
    safetensors::parse(&ok, Path::new("t")).unwrap();
    // Overlapping: both tensors read the same bytes.
    let e = parse_err(&image(
        &[(A, "F32", &[2], [0, 8]), (B, "F32", &[2], [0, 8])],
        &data,
    ));
    assert!(e.contains("data_offsets"), "{e}");
    // A gap between tensors.
    let e = parse_err(&image(
        &[(A, "F32", &[1], [0, 4]), (B, "F32", &[2], [8, 16])],
        &data,
    ));
    assert!(e.contains("data_offsets"), "{e}");
    // Bytes after the last tensor.
    let e = parse_err(&image(
        &[(A, "F32", &[2], [0, 8]), (B, "F32", &[1], [8, 12])],
        &data,
    ));
    assert!(e.contains("bytes"), "{e}");
}

#[test]
fn safetensors_header_length_one_short_is_an_error() {
    // The real all-MiniLM-L6-v2 file with its header length one byte short: the JSON still
    // parses (its last byte is padding) and every tensor was read one byte early (NaNs).
    let mut bytes = std::fs::read(common::minilm_dir().join("model.safetensors")).unwrap();
    safetensors::parse(&bytes, Path::new("real")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    bytes[..8].copy_from_slice(&(n - 1).to_le_bytes());
    let e = parse_err(&bytes);
    assert!(e.contains("header length"), "{e}");
}

#[test]
fn non_finite_weights_are_an_error_naming_the_tensor() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let data = floats(&[1.0, 2.0, bad, 4.0]);
        let e = parse_err(&image(
            &[(A, "F32", &[2], [0, 8]), (B, "F32", &[2], [8, 16])],
            &data,
        ));
        assert!(
            e.contains("bert/embeddings/LayerNorm/beta") && e.contains("finite"),
            "{e}"
        );
    }
    let f16_inf = 0x7c00u16.to_le_bytes();
    let e = parse_err(&image(
        &[(B, "F16", &[1], [0, 2])],
        &[f16_inf, [0; 2]].concat()[..2],
    ));
    assert!(e.contains("finite"), "{e}");
}

#[test]
fn a_flipped_bit_in_a_bert_header_is_an_error() {
    // One bit turned "the" into "uhe" in the stored vocabulary, silently (issue 21 case 5).
    use bert::weights::native::{self, NativeModel};
    let dir = common::shared_dir().join("fixtures/tf_bert_tiny");
    let config = bert::BertConfig::from_file(dir.join("bert_config.json")).unwrap();
    let vocab: Vec<String> = std::fs::read_to_string(dir.join("vocab.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut w = bert::weights::Weights::new();
    let bias = bert::weights::Tensor::new(vec![2], vec![0.5, -0.5]).unwrap();
    w.insert("bert/pooler/dense/bias", bias);
    let path = std::env::temp_dir().join(format!("libbert-hdr-{}.bert", std::process::id()));
    native::save(&path, &config, &w, &vocab, true).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let the = vocab.iter().position(|t| t == "the").unwrap();
    assert_eq!(NativeModel::open(&path).unwrap().vocab()[the], "the");
    // bincode writes each string as its length (one byte below 251) and its bytes.
    let at = bytes.windows(4).position(|w| w == b"\x03the").unwrap() + 1;
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let e = NativeModel::open(&path).unwrap_err().to_string();
    assert!(e.contains("header CRC32C mismatch"), "{e}");
    // The same in the tensor table (the bias's name: "bert" -> "Bert").
    bytes[at] ^= 1;
    let name = b"bert/pooler/dense/bias";
    let i = bytes.windows(name.len()).position(|w| w == name).unwrap();
    bytes[i] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let e = NativeModel::open(&path).unwrap_err().to_string();
    assert!(e.contains("header CRC32C mismatch"), "{e}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_mapped_bert_truncated_in_place_is_an_error_and_a_read_one_is_unaffected() {
    // Issue 21 case 2: a mapped int8/f16 `.bert` overwritten in place crashed its readers
    // with SIGBUS. Truncation between opening and reading the weights is now an error; a file
    // read into memory (`NativeModel::read`, `--mmap=false`) does not care.
    use bert::weights::native::{self, NativeModel};
    use bert::weights::{quantize, tf_checkpoint, DType};
    let dir = common::shared_dir().join("fixtures/tf_bert_tiny");
    let config = bert::BertConfig::from_file(dir.join("bert_config.json")).unwrap();
    let weights = tf_checkpoint::load(&dir).unwrap();
    let q = quantize::convert(weights, &config, DType::Int8).unwrap();
    let path = std::env::temp_dir().join(format!("libbert-trunc-{}.bert", std::process::id()));
    native::save(&path, &config, &q, &["[UNK]".to_string()], true).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();

    let mapped = NativeModel::open(&path).unwrap();
    let copied = NativeModel::read(&path).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    let e = mapped.weights().unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("renaming"), "{e}");
    assert!(mapped.verify().is_err());
    copied.verify().unwrap();
    let w = copied.weights().unwrap();
    bert::BertModel::from_weights(config, &w).unwrap();
    let _ = std::fs::remove_file(&path);
}
