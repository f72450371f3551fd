//! Robustness of the loaders, standing in for fuzzing: the real TF checkpoint and safetensors
//! file truncated and with bytes flipped at many seeded positions, and hand-made checkpoints
//! whose headers lie. Every case must return `Err` (or, where a flip is harmless, `Ok`) and
//! never panic.

mod common;

use std::path::{Path, PathBuf};

use bert::weights::{crc32c, mask_crc32c, safetensors, tf_checkpoint};
use bert::{BertConfig, BertModel};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tf_fixture() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny")
}

const INDEX: &str = "bert_model.ckpt.index";
const DATA: &str = "bert_model.ckpt.data-00000-of-00001";

#[test]
fn tf_index_truncated_or_flipped_is_an_error() {
    let dir = scratch_dir("tf-index");
    let index = std::fs::read(tf_fixture().join(INDEX)).unwrap();
    std::fs::copy(tf_fixture().join(DATA), dir.join(DATA)).unwrap();
    let prefix = dir.join("bert_model.ckpt");
    let mut rng = Rng(1);
    for _ in 0..40 {
        let cut = rng.below(index.len());
        std::fs::write(dir.join(INDEX), &index[..cut]).unwrap();
        assert!(
            tf_checkpoint::load(&prefix).is_err(),
            "index cut at {cut} loaded"
        );
    }
    // Blocks and their trailers are covered by CRC32C; the footer's padding and the unused
    // metaindex handle are not, so there we only require "no panic".
    let footer_start = index.len() - 48;
    let mut positions: Vec<usize> = (0..60).map(|_| rng.below(index.len())).collect();
    positions.extend(footer_start..index.len());
    for pos in positions {
        let mut bad = index.clone();
        bad[pos] ^= 1 << rng.below(8);
        std::fs::write(dir.join(INDEX), &bad).unwrap();
        let r = tf_checkpoint::load(&prefix);
        if pos < footer_start {
            assert!(r.is_err(), "flip at {pos} went unnoticed");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tf_data_truncated_or_flipped_is_an_error() {
    let dir = scratch_dir("tf-data");
    std::fs::copy(tf_fixture().join(INDEX), dir.join(INDEX)).unwrap();
    let data = std::fs::read(tf_fixture().join(DATA)).unwrap();
    let prefix = dir.join("bert_model.ckpt");
    let mut rng = Rng(2);
    for _ in 0..8 {
        let cut = rng.below(data.len());
        std::fs::write(dir.join(DATA), &data[..cut]).unwrap();
        let err = tf_checkpoint::load(&prefix).unwrap_err();
        assert!(err.to_string().contains("outside the file"), "{err}");
    }
    let mut bad = data.clone();
    for _ in 0..8 {
        let pos = rng.below(data.len());
        bad[pos] ^= 0x10;
        std::fs::write(dir.join(DATA), &bad).unwrap();
        let err = tf_checkpoint::load(&prefix).unwrap_err();
        assert!(err.to_string().contains("CRC32C mismatch"), "{err}");
        bad[pos] ^= 0x10;
    }
    std::fs::remove_file(dir.join(DATA)).unwrap();
    assert_eq!(tf_checkpoint::load(&prefix).unwrap_err().code(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- hand-made checkpoints ---------------------------------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One block with unshared keys, a single restart point and its trailer.
fn block(entries: &[(Vec<u8>, Vec<u8>)], kind: u8) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in entries {
        varint(&mut b, 0);
        varint(&mut b, k.len() as u64);
        varint(&mut b, v.len() as u64);
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    let mut with_type = b.clone();
    with_type.push(kind);
    let crc = mask_crc32c(crc32c(&with_type));
    b.push(kind);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// An SSTable with one data block (of compression type `kind`) holding `entries`.
fn table(entries: &[(Vec<u8>, Vec<u8>)], kind: u8) -> Vec<u8> {
    let data = block(entries, kind);
    let data_len = data.len() as u64 - 5;
    let mut handle = Vec::new();
    varint(&mut handle, 0);
    varint(&mut handle, data_len);
    let mut file = data;
    let meta_offset = file.len() as u64;
    let meta = block(&[], 0);
    let meta_len = meta.len() as u64 - 5;
    file.extend_from_slice(&meta);
    let index_offset = file.len() as u64;
    let index = block(&[(b"\xff".to_vec(), handle)], 0);
    let index_len = index.len() as u64 - 5;
    file.extend_from_slice(&index);
    let mut footer = Vec::new();
    varint(&mut footer, meta_offset);
    varint(&mut footer, meta_len);
    varint(&mut footer, index_offset);
    varint(&mut footer, index_len);
    footer.resize(40, 0);
    footer.extend_from_slice(&0xdb47_7524_8b80_fb57u64.to_le_bytes());
    file.extend_from_slice(&footer);
    file
}

#[derive(Clone)]
struct Entry {
    dtype: u64,
    dims: Vec<i64>,
    shard: u64,
    offset: u64,
    size: u64,
    crc: u32,
}

fn entry(e: &Entry) -> Vec<u8> {
    let mut shape = Vec::new();
    for &d in &e.dims {
        let mut dim = Vec::new();
        varint(&mut dim, 0x08);
        varint(&mut dim, d as u64);
        shape.push(0x12);
        varint(&mut shape, dim.len() as u64);
        shape.extend_from_slice(&dim);
    }
    let mut m = Vec::new();
    varint(&mut m, 1 << 3);
    varint(&mut m, e.dtype);
    m.push(0x12);
    varint(&mut m, shape.len() as u64);
    m.extend_from_slice(&shape);
    for (field, v) in [(3, e.shard), (4, e.offset), (5, e.size)] {
        varint(&mut m, field << 3);
        varint(&mut m, v);
    }
    m.push(0x35);
    m.extend_from_slice(&e.crc.to_le_bytes());
    m
}

fn header(num_shards: u64) -> (Vec<u8>, Vec<u8>) {
    let mut h = Vec::new();
    varint(&mut h, 0x08);
    varint(&mut h, num_shards);
    (Vec::new(), h)
}

fn write_ckpt(dir: &Path, index: &[u8], data: &[u8]) -> PathBuf {
    std::fs::write(dir.join(INDEX), index).unwrap();
    std::fs::write(dir.join(DATA), data).unwrap();
    dir.join("bert_model.ckpt")
}

#[test]
fn lying_tf_headers_are_errors() {
    let dir = scratch_dir("tf-lies");
    let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let crc = mask_crc32c(crc32c(&data));
    let good = Entry {
        dtype: 1,
        dims: vec![2, 2],
        shard: 0,
        offset: 0,
        size: 16,
        crc,
    };
    let one = |e: Entry| table(&[header(1), (b"w".to_vec(), entry(&e))], 0);

    let prefix = write_ckpt(&dir, &one(Entry { ..good.clone() }), &data);
    let w = tf_checkpoint::load(&prefix).unwrap();
    assert_eq!(w.get("w", &[2, 2]).unwrap(), &[1.0, 2.0, 3.0, 4.0]);

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            one(Entry {
                offset: 8,
                ..good.clone()
            }),
            "outside the file",
        ),
        (
            one(Entry {
                offset: u64::MAX - 3,
                ..good.clone()
            }),
            "outside the file",
        ),
        (
            one(Entry {
                size: 12,
                ..good.clone()
            }),
            "does not match shape",
        ),
        (
            one(Entry {
                dims: vec![1 << 40, 1 << 40],
                size: 16,
                ..good.clone()
            }),
            "overflows",
        ),
        (
            one(Entry {
                dims: vec![-1, 4],
                ..good.clone()
            }),
            "negative dimension",
        ),
        (
            one(Entry {
                shard: 3,
                ..good.clone()
            }),
            "shard 3 of 1",
        ),
        (
            one(Entry {
                crc: crc ^ 1,
                ..good.clone()
            }),
            "CRC32C mismatch",
        ),
        (
            table(&[header(0), (b"w".to_vec(), entry(&good))], 0),
            "num_shards",
        ),
        (
            table(&[(b"w".to_vec(), entry(&good))], 0),
            "no bundle header",
        ),
        (
            table(&[header(1), (b"w".to_vec(), entry(&good))], 1),
            "snappy not supported",
        ),
        (
            table(&[header(1), (b"w".to_vec(), entry(&good))], 7),
            "compression type 7",
        ),
        (
            table(&[header(1), (b"w".to_vec(), vec![0x12, 0x7f])], 0),
            "malformed",
        ),
    ];
    for (index, want) in cases {
        let prefix = write_ckpt(&dir, &index, &data);
        let err = tf_checkpoint::load(&prefix).unwrap_err();
        assert!(err.to_string().contains(want), "want {want:?}, got {err}");
    }

    // A non-f32 tensor loads as "unsupported" and names itself when asked for.
    let prefix = write_ckpt(
        &dir,
        &one(Entry {
            dtype: 9,
            ..good.clone()
        }),
        &data,
    );
    let w = tf_checkpoint::load(&prefix).unwrap();
    let err = w.get("w", &[2, 2]).unwrap_err();
    assert_eq!(err.code(), 8);
    assert!(err.to_string().contains("tensor w: dtype int64"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// --- safetensors --------------------------------------------------------------------------

#[test]
fn safetensors_truncated_flipped_or_lying_is_an_error() {
    let path = common::minilm_dir().join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let config = BertConfig::from_file(common::minilm_dir().join("config.json")).unwrap();
    let mut rng = Rng(3);
    for _ in 0..6 {
        let cut = rng.below(bytes.len());
        assert!(
            safetensors::parse(&bytes[..cut], &path).is_err(),
            "cut at {cut}"
        );
    }
    for cut in [0, 7, 8, 9, n / 2, n + 7] {
        assert!(
            safetensors::parse(&bytes[..cut], &path).is_err(),
            "cut at {cut}"
        );
    }
    // Flips in the JSON header: must not panic; when the result still parses, building the
    // model either works (a harmless flip, e.g. in __metadata__) or names a tensor.
    for _ in 0..25 {
        let pos = 8 + rng.below(n);
        let bit = 1 << rng.below(8);
        bytes[pos] ^= bit;
        if let Ok(w) = safetensors::parse(&bytes, &path) {
            if let Err(e) = BertModel::from_weights(config.clone(), &w) {
                assert!(e.to_string().contains("tensor"), "{e}");
            }
        }
        bytes[pos] ^= bit;
    }
    // A header length larger than the file, and one larger than any real header.
    let mut lie = bytes[..64].to_vec();
    lie[..8].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
    assert!(safetensors::parse(&lie, &path).is_err());
    let tiny = |header: &str, data: &[u8]| {
        // Padded with spaces so the data starts 8-byte aligned, as writers do.
        let header = format!("{header:<width$}", width = header.len().next_multiple_of(8));
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(data);
        safetensors::parse(&f, Path::new("t.safetensors"))
    };
    let lies = [
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#,
        r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
        r#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#,
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#,
        r#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
        r#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#,
        r#"{"a.weight":{"dtype":"F32","shape":[8],"data_offsets":[0,8]}}"#,
        r#"["not", "an", "object"]"#,
    ];
    for h in lies {
        assert!(tiny(h, &[0; 8]).is_err(), "{h}");
    }
    let w = tiny(
        r#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#,
        &[0, 0x3c, 0, 0xc0],
    )
    .unwrap();
    assert_eq!(w.get("a", &[2]).unwrap(), &[1.0, -2.0]);
}

#[test]
fn wrong_shapes_and_missing_tensors_name_the_tensor() {
    let mut w = tf_checkpoint::load(tf_fixture()).unwrap();
    let config = BertConfig::from_file(tf_fixture().join("bert_config.json")).unwrap();
    let mut big = config.clone();
    big.intermediate_size = 1024;
    let err = BertModel::from_weights(big, &w).unwrap_err();
    assert!(
        err.to_string()
            .contains("layer_0/intermediate/dense/kernel"),
        "{err}"
    );
    let mut deep = config.clone();
    deep.num_hidden_layers = 3;
    let err = BertModel::from_weights(deep, &w).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing tensor bert/encoder/layer_2/"),
        "{err}"
    );
    let t = w
        .tensor("bert/encoder/layer_1/attention/self/key/bias")
        .unwrap()
        .clone();
    w.insert(
        "bert/encoder/layer_1/attention/self/key/bias",
        bert::weights::Tensor::new(vec![t.data.len() - 1], t.data[1..].to_vec()).unwrap(),
    );
    let err = BertModel::from_weights(config, &w).unwrap_err();
    assert!(
        err.to_string().contains("layer_1/attention/self/key/bias"),
        "{err}"
    );
    let err = BertModel::load(std::env::temp_dir()).unwrap_err();
    assert!(err.to_string().contains("not a model directory"), "{err}");
}

/// A small int8 `.bert` image (tf_bert_tiny cut to 64 tokens and 16 positions, no vocabulary):
/// every header byte and 1,500 seeded data bytes flipped, and truncations. Opening, reading
/// the weights, building the model and running it must give `Err` or results, never a panic
/// (a flipped int8 value is not detected until `verify`: it only changes results).
#[test]
fn int8_bert_file_flipped_or_truncated_never_panics() {
    use bert::weights::{native, quantize, DType, Tensor};
    use bert::{Context, Inputs};
    let mut config = BertConfig::from_file(tf_fixture().join("bert_config.json")).unwrap();
    let mut w = tf_checkpoint::load(tf_fixture()).unwrap();
    let h = config.hidden_size;
    for (name, rows) in [
        ("bert/embeddings/word_embeddings", 64),
        ("bert/embeddings/position_embeddings", 16),
    ] {
        let t = w.tensor(name).unwrap().data[..rows * h].to_vec();
        w.insert(name, Tensor::new(vec![rows, h], t).unwrap());
    }
    config.vocab_size = 64;
    config.max_position_embeddings = 16;
    let q = quantize::convert(w, &config, DType::Int8).unwrap();
    let path = scratch_dir("int8-fuzz").join("tiny-int8.bert");
    native::save(&path, &config, &q, &[], true).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_end = 20 + u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let try_image = |image: Vec<u8>| {
        let Ok(m) = native::NativeModel::from_bytes(image, "fuzz.bert") else {
            return;
        };
        let Ok(w) = m.weights() else { return };
        let Ok(model) = BertModel::from_weights(m.config().clone(), &w) else {
            return;
        };
        let ids = [1u32, 5, 9, 2];
        let inputs = Inputs {
            input_ids: &ids,
            segment_ids: &[],
            input_mask: &[],
            batch: 1,
            seq: 4,
        };
        let _ = model.forward(&mut Context::new(1), &inputs, false);
    };
    try_image(bytes.clone());
    for at in 8..header_end {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[at] ^= flip;
            try_image(b);
        }
    }
    let mut rng = Rng(7);
    for _ in 0..1500 {
        let mut b = bytes.clone();
        let at = header_end + rng.below(bytes.len() - header_end);
        b[at] ^= 1 << rng.below(8);
        try_image(b);
    }
    for _ in 0..50 {
        try_image(bytes[..rng.below(bytes.len())].to_vec());
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn non_finite_weights_in_a_tf_checkpoint_or_bert_file_are_errors() {
    // Issue 21 case 4: every loader refuses NaN or infinite weights, naming the tensor.
    let dir = scratch_dir("tf-nan");
    let data: Vec<u8> = [1.0f32, f32::NAN, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let e = Entry {
        dtype: 1,
        dims: vec![2, 2],
        shard: 0,
        offset: 0,
        size: 16,
        crc: mask_crc32c(crc32c(&data)),
    };
    let index = table(
        &[header(1), (b"bert/pooler/dense/bias".to_vec(), entry(&e))],
        0,
    );
    let err = tf_checkpoint::load(write_ckpt(&dir, &index, &data)).unwrap_err();
    assert!(
        err.to_string().contains("bert/pooler/dense/bias") && err.to_string().contains("finite"),
        "{err}"
    );

    let config = BertConfig::from_file(tf_fixture().join("bert_config.json")).unwrap();
    let mut w = bert::weights::Weights::new();
    let t = bert::weights::Tensor::new(vec![2], vec![0.5, f32::INFINITY]).unwrap();
    w.insert("bert/pooler/dense/bias", t);
    let path = dir.join("nan.bert");
    bert::weights::native::save(&path, &config, &w, &["[UNK]".into()], true).unwrap();
    let m = bert::weights::native::NativeModel::open(&path).unwrap();
    let err = m.weights().unwrap_err().to_string();
    assert!(
        err.contains("bert/pooler/dense/bias") && err.contains("finite"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
