//! The native `.bert` format: converting a model gives bit-identical results, and a corrupt
//! file is an error.

mod common;

use std::path::PathBuf;

use bert::weights::{native, tf_checkpoint};
use bert::{BertConfig, BertModel, Context, Inputs};

fn tf_fixture() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("libbert-native-{}-{name}", std::process::id()))
}

fn vocab(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("vocab.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn run(model: &BertModel) -> (Vec<f32>, Vec<f32>) {
    let ids = [
        101u32, 7592, 1010, 2088, 999, 102, 0, 0, 101, 2129, 2214, 2024, 2017, 1029, 102, 0,
    ];
    let mask = [1u32, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0];
    let segs = [0u32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0];
    let mut ctx = Context::new(1);
    let out = model
        .forward(
            &mut ctx,
            &Inputs {
                input_ids: &ids,
                segment_ids: &segs,
                input_mask: &mask,
                batch: 2,
                seq: 8,
            },
            false,
        )
        .unwrap();
    (
        out.sequence_output().to_vec(),
        out.pooled_output().unwrap().to_vec(),
    )
}

#[test]
fn tf_checkpoint_converted_gives_identical_results() {
    let dir = tf_fixture();
    let config = BertConfig::from_file(dir.join("bert_config.json")).unwrap();
    let weights = tf_checkpoint::load(&dir).unwrap();
    let path = tmp("tiny.bert");
    native::save(&path, &config, &weights, &vocab(&dir), true).unwrap();
    let opened = native::NativeModel::open(&path).unwrap();
    assert_eq!(opened.config(), &config);
    assert_eq!(opened.vocab().len(), 30522);
    assert_eq!(opened.vocab()[101], "[CLS]");
    assert!(opened.do_lower_case());
    let back = opened.weights().unwrap();
    assert_eq!(back.len(), weights.len());
    for (name, t) in weights.iter() {
        assert_eq!(back.tensor(name), Some(t), "{name}");
    }
    let a = run(&BertModel::load(&dir).unwrap());
    let b = run(&BertModel::load(&path).unwrap());
    assert_eq!(a, b, "converted model must give bit-identical outputs");

    // Corruption is detected: flipped data byte (checksum), truncation, bad magic.
    let bytes = std::fs::read(&path).unwrap();
    let bad_path = tmp("bad.bert");
    let mut bad = bytes.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x40;
    std::fs::write(&bad_path, &bad).unwrap();
    let err = BertModel::load(&bad_path).unwrap_err();
    assert!(err.to_string().contains("CRC32C mismatch"), "{err}");
    for cut in [0, 10, 19, 20, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&bad_path, &bytes[..cut]).unwrap();
        assert!(
            native::NativeModel::open(&bad_path).is_err(),
            "cut at {cut}"
        );
    }
    let mut bad = bytes.clone();
    bad[0] = b'X';
    std::fs::write(&bad_path, &bad).unwrap();
    assert!(native::NativeModel::open(&bad_path).is_err());
    let mut bad = bytes[..200].to_vec();
    bad[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&bad_path, &bad).unwrap();
    assert!(native::NativeModel::open(&bad_path).is_err());
    let _ = std::fs::remove_file(&bad_path);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn minilm_converted_gives_identical_results() {
    let dir = common::minilm_dir();
    let config = BertConfig::from_file(dir.join("config.json")).unwrap();
    let weights = bert::weights::safetensors::load(dir.join("model.safetensors")).unwrap();
    let path = tmp("minilm.bert");
    native::save(&path, &config, &weights, &vocab(&dir), true).unwrap();
    let a = run(&BertModel::load(&dir).unwrap());
    let b = run(&BertModel::load(&path).unwrap());
    assert_eq!(a, b);
    let _ = std::fs::remove_file(&path);
}

/// Absolute file offset of a tensor that a `.bert` model borrows from its memory map.
fn mapped_offset(w: &bert::weights::Weights, name: &str) -> usize {
    use bert::backend::WeightBytes;
    use bert::weights::QuantizedTensor;
    let bytes = match w.quantized(name) {
        Some(QuantizedTensor::F16 { bytes, .. }) => bytes,
        Some(QuantizedTensor::Int8Packed { packed, .. }) => packed,
        Some(QuantizedTensor::Int8Rows { values, .. }) => values,
        other => panic!("{name}: {other:?}"),
    };
    match bytes {
        WeightBytes::Mapped { offset, .. } => *offset,
        WeightBytes::Owned(_) => panic!("{name} was copied, not mapped"),
    }
}

#[test]
fn f16_and_int8_files_round_trip_and_verify_checksums_lazily() {
    use bert::weights::{quantize, DType};
    use bert::ModelOptions;
    let dir = tf_fixture();
    let config = BertConfig::from_file(dir.join("bert_config.json")).unwrap();
    let weights = tf_checkpoint::load(&dir).unwrap();
    let kernel = "bert/encoder/layer_1/intermediate/dense/kernel";
    for dtype in [DType::Int8, DType::F16] {
        let q = quantize::convert(weights.clone(), &config, dtype).unwrap();
        assert_eq!(q.dtype(kernel), Some(dtype));
        assert_eq!(
            q.dtype("bert/encoder/layer_0/attention/self/qkv/kernel"),
            Some(dtype)
        );
        assert!(!q.contains("bert/encoder/layer_0/attention/self/query/kernel"));
        assert_eq!(q.dtype("bert/pooler/dense/kernel"), Some(DType::F32));
        assert_eq!(
            q.dtype("bert/embeddings/word_embeddings"),
            Some(quantize::embeddings_dtype(dtype))
        );
        let path = tmp(&format!("tiny-{dtype}.bert"));
        native::save(&path, &config, &q, &vocab(&dir), true).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 4);
        let opened = native::NativeModel::open(&path).unwrap();
        assert!(opened.is_quantized());
        assert_eq!(opened.vocab()[101], "[CLS]");
        let back = opened.weights().unwrap();
        assert_eq!(back.len(), q.len());
        for (name, t) in q.iter() {
            assert_eq!(back.tensor(name), Some(t), "{name}");
        }
        // The model read from the file computes exactly what the converted weights compute.
        let expected = run(&BertModel::from_weights(config.clone(), &q).unwrap());
        assert_eq!(run(&BertModel::load(&path).unwrap()), expected, "{dtype}");
        // Saving what was read (packed int8, mapped bytes) writes the same file.
        let again = tmp(&format!("tiny-{dtype}-again.bert"));
        native::save(&again, &config, &back, &vocab(&dir), true).unwrap();
        assert!(
            std::fs::read(&again).unwrap() == bytes,
            "{dtype}: re-save differs"
        );
        let _ = std::fs::remove_file(&again);

        // A flipped byte inside a mapped f16/int8 block is not read when loading (the model
        // still loads), but `verify` and `verify_checksums` find it.
        let at = mapped_offset(&back, kernel);
        let bad_path = tmp(&format!("tiny-{dtype}-bad.bert"));
        let mut bad = bytes.clone();
        bad[at + 5] ^= 0x40;
        std::fs::write(&bad_path, &bad).unwrap();
        BertModel::load(&bad_path).unwrap();
        let e = native::NativeModel::open(&bad_path)
            .unwrap()
            .verify()
            .unwrap_err();
        assert!(e.to_string().contains("CRC32C mismatch"), "{e}");
        assert!(e.to_string().contains(kernel), "{e}");
        let checked = ModelOptions {
            verify_checksums: true,
            ..ModelOptions::default()
        };
        assert!(BertModel::load_with(&bad_path, &checked).is_err());
        BertModel::load_with(&path, &checked).unwrap();
        // f32 tensors of a quantized file are still verified on every load.
        let pooler_bias: Vec<u8> = q
            .tensor("bert/pooler/dense/bias")
            .unwrap()
            .data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let at = bytes
            .windows(pooler_bias.len())
            .position(|w| w == pooler_bias)
            .unwrap();
        let mut bad = bytes.clone();
        bad[at + 1] ^= 0x40;
        std::fs::write(&bad_path, &bad).unwrap();
        let e = BertModel::load(&bad_path).unwrap_err();
        assert!(e.to_string().contains("CRC32C mismatch"), "{e}");
        // Truncation anywhere is an error when opening.
        for cut in [20, 100, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&bad_path, &bytes[..cut]).unwrap();
            assert!(
                native::NativeModel::open(&bad_path).is_err(),
                "{dtype}: cut at {cut}"
            );
        }
        let _ = std::fs::remove_file(&bad_path);
        let _ = std::fs::remove_file(&path);
    }
}

/// `[k, n]` row-major -> panels of `nr` columns in `kc`-row blocks (columns padded with zeros
/// to a multiple of `nr`), written from the layout's description, not with the library's
/// packer: the file format is checked against its specification.
fn pack_reference(v: &[f32], k: usize, n: usize, nr: usize, kc: usize) -> Vec<u8> {
    let n_pad = n.div_ceil(nr) * nr;
    let mut out = Vec::with_capacity(k * n_pad * 4);
    for p0 in (0..k).step_by(kc) {
        let rows = kc.min(k - p0);
        for j0 in (0..n_pad).step_by(nr) {
            for p in p0..p0 + rows {
                for j in j0..j0 + nr {
                    let x = if j < n { v[p * n + j] } else { 0.0 };
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    out
}

#[test]
fn packed_f32_file_runs_from_the_map_and_reads_back_bit_for_bit() {
    use bert::backend::WeightBytes;
    use bert::weights::{quantize, QuantizedTensor};
    let dir = tf_fixture();
    let config = BertConfig::from_file(dir.join("bert_config.json")).unwrap();
    let weights = tf_checkpoint::load(&dir).unwrap();
    let expected = run(&BertModel::load(&dir).unwrap());

    // Packed for this CPU: version 5, run in place, Google's tensors back bit for bit.
    let path = tmp("packed.bert");
    let packed = quantize::pack_f32(weights.clone(), &config).unwrap();
    native::save(&path, &config, &packed, &vocab(&dir), true).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 5);
    let opened = native::NativeModel::open(&path).unwrap();
    let back = opened.weights().unwrap();
    assert_eq!(back.len(), weights.len());
    for (name, t) in weights.iter() {
        assert_eq!(back.tensor(name), Some(t), "{name}");
    }
    let mapped = opened.weights_mapped().unwrap();
    let fused = "bert/encoder/layer_0/attention/self/qkv/kernel";
    match mapped.quantized(fused) {
        Some(QuantizedTensor::F32Packed {
            in_dim: 128,
            out_dim: 384,
            bytes: WeightBytes::Mapped { .. },
            ..
        }) => {}
        other => panic!("{fused}: {other:?}"),
    }
    assert!(matches!(
        mapped.quantized("bert/embeddings/word_embeddings"),
        Some(QuantizedTensor::F32Rows {
            bytes: WeightBytes::Mapped { .. },
            ..
        })
    ));
    assert_eq!(run(&BertModel::load(&path).unwrap()), expected);
    opened.verify().unwrap();

    // Packed in another CPU's layout (8-column panels of 64 rows, written here from the
    // format's description): unpacked and packed again at load, same bits.
    let name = "bert/encoder/layer_1/intermediate/dense/kernel";
    let (k, n) = (config.hidden_size, config.intermediate_size);
    let plain = weights.get(name, &[k, n]).unwrap().to_vec();
    let mut foreign = weights.clone();
    let q = QuantizedTensor::F32Packed {
        in_dim: k,
        out_dim: n,
        nr: 8,
        kc: 64,
        bytes: WeightBytes::Owned(pack_reference(&plain, k, n, 8, 64)),
    };
    foreign.insert_quantized(name, q.clone()).unwrap();
    assert_eq!(q.to_f32().unwrap(), plain);
    let foreign_path = tmp("foreign.bert");
    native::save(&foreign_path, &config, &foreign, &vocab(&dir), true).unwrap();
    assert_eq!(run(&BertModel::load(&foreign_path).unwrap()), expected);
    let back = native::NativeModel::open(&foreign_path)
        .unwrap()
        .weights()
        .unwrap();
    assert_eq!(back.get(name, &[k, n]).unwrap(), &plain[..]);

    // The library's packing for this CPU is the layout the format describes.
    if let Some(QuantizedTensor::F32Packed { nr, kc, bytes, .. }) =
        packed.quantized("bert/encoder/layer_1/intermediate/dense/kernel")
    {
        assert_eq!(
            bytes.as_bytes(),
            &pack_reference(&plain, k, n, *nr, *kc)[..]
        );
    } else {
        panic!("layer 1's intermediate kernel is not packed");
    }

    // A packed kernel whose bytes do not fill its panels is refused.
    let short = QuantizedTensor::F32Packed {
        in_dim: k,
        out_dim: n,
        nr: 8,
        kc: 64,
        bytes: WeightBytes::Owned(vec![0; 4 * k * n - 4]),
    };
    let err = foreign.insert_quantized(name, short).unwrap_err();
    assert!(err.to_string().contains("packed f32"), "{err}");
    for p in [path, foreign_path] {
        let _ = std::fs::remove_file(p);
    }
}
