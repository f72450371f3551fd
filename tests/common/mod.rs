//! Paths shared by the integration tests: `../shared` beside the checkout (read-only
//! fixtures and data) and the model cache filled by `scripts/setup.sh`.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod fixture;
#[cfg(feature = "vulkan")]
pub mod vulkan;

/// `../shared` next to the checkout, or `$LIBBERT_SHARED` when set.
pub fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("LIBBERT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    };
    assert!(
        dir.join("data").is_dir(),
        "shared data not found at {} (set LIBBERT_SHARED)",
        dir.display()
    );
    dir
}

/// `$LIBBERT_CACHE`, default `~/.cache/libbert`: where `scripts/setup.sh` unpacks models.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("LIBBERT_CACHE") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/libbert")
        }
    }
}

/// The all-MiniLM-L6-v2 directory unpacked by `scripts/setup.sh`.
pub fn minilm_dir() -> PathBuf {
    let dir = cache_dir().join("all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// `tests/data/NAME` (small committed files: ONNX graphs and their references).
pub fn test_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A `tests/data` file of little-endian f32 values.
pub fn read_f32(name: &str) -> Vec<f32> {
    std::fs::read(test_data(name))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// A `tests/data` JSON file.
pub fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(test_data(name)).unwrap()).unwrap()
}

/// The integers of a JSON array, or of an array of arrays (rows flattened).
pub fn ints(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|x| match x.as_array() {
            Some(row) => row.iter().map(|y| y.as_u64().unwrap() as u32).collect(),
            None => vec![x.as_u64().unwrap() as u32],
        })
        .collect()
}

/// A batch of `tf_bert_tiny` references (token types, padding): the one the tiny ONNX graphs'
/// references were computed on (`input_ids`, `input_mask`, `segment_ids` rows of
/// `tests/data/onnx_tiny_reference.json`), or one of `fixtures/tf_bert_tiny/reference`.
pub struct TinyBatch {
    pub ids: Vec<u32>,
    pub mask: Vec<u32>,
    pub segments: Vec<u32>,
    pub batch: usize,
    pub seq: usize,
}

impl TinyBatch {
    pub fn from_reference(meta: &serde_json::Value) -> TinyBatch {
        let ids = ints(&meta["input_ids"]);
        let batch = meta["input_ids"].as_array().unwrap().len();
        TinyBatch {
            seq: ids.len() / batch,
            mask: ints(&meta["input_mask"]),
            segments: ints(&meta["segment_ids"]),
            ids,
            batch,
        }
    }

    /// `{prefix}input_ids.npy`, `{prefix}input_mask.npy` and `{prefix}segment_ids.npy` of
    /// `dir`, `[batch, seq]` each.
    pub fn from_npy(dir: &std::path::Path, prefix: &str) -> TinyBatch {
        let (shape, ids) = npy_u32_shaped(dir, &format!("{prefix}input_ids.npy"));
        TinyBatch {
            ids,
            mask: npy_u32(dir, &format!("{prefix}input_mask.npy")),
            segments: npy_u32(dir, &format!("{prefix}segment_ids.npy")),
            batch: shape[0],
            seq: shape[1],
        }
    }

    pub fn inputs(&self) -> bert::Inputs<'_> {
        bert::Inputs {
            input_ids: &self.ids,
            segment_ids: &self.segments,
            input_mask: &self.mask,
            batch: self.batch,
            seq: self.seq,
        }
    }

    /// The examples `range` of the batch.
    pub fn examples(&self, range: std::ops::Range<usize>) -> bert::Inputs<'_> {
        let rows = range.start * self.seq..range.end * self.seq;
        bert::Inputs {
            input_ids: &self.ids[rows.clone()],
            segment_ids: &self.segments[rows.clone()],
            input_mask: &self.mask[rows],
            batch: range.len(),
            seq: self.seq,
        }
    }
}

/// Cosine similarity, accumulated in f64.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum();
    (dot / (na.sqrt() * nb.sqrt()).max(1e-30)) as f32
}

/// Largest absolute element-wise difference; infinite where either side has a NaN
/// (`f32::max` alone would skip it, and a NaN output would pass every tolerance).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
        .fold(0.0, f32::max)
}

/// One sentence of the all-MiniLM-L6-v2 reference (`tests/data/minilm_reference.*`, made by
/// `scripts/make_minilm_reference.py` with the NumPy BERT in float64; ids from HF tokenizers).
pub struct MinilmSentence {
    /// One text, or two for a pair.
    pub text: Vec<String>,
    pub ids: Vec<u32>,
    pub segments: Vec<u32>,
    /// `[len, 384]`
    pub last_hidden: Vec<f32>,
    pub pooled: Vec<f32>,
    /// sentence-transformers' embedding: masked mean, then L2 normalisation.
    pub embedding: Vec<f32>,
}

pub fn minilm_reference() -> Vec<MinilmSentence> {
    use serde_json::Value;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("minilm_reference.json")).unwrap())
            .unwrap();
    let raw = std::fs::read(dir.join("minilm_reference.bin")).unwrap();
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(values.len() as u64, meta["values"].as_u64().unwrap());
    let h = meta["hidden_size"].as_u64().unwrap() as usize;
    let ints = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    meta["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ids = ints(&s["input_ids"]);
            let at = |k: &str, n: usize| {
                let o = s[k].as_u64().unwrap() as usize;
                values[o..o + n].to_vec()
            };
            MinilmSentence {
                text: s["text"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect(),
                segments: ints(&s["segment_ids"]),
                last_hidden: at("last_hidden_offset", ids.len() * h),
                pooled: at("pooled_offset", h),
                embedding: at("embedding_offset", h),
                ids,
            }
        })
        .collect()
}

/// The paraphrase-MiniLM-L3-v2 ONNX export unpacked by `scripts/setup.sh` (one `.onnx` file
/// and the vocab.txt it was tokenized with).
pub fn onnx_l3_dir() -> PathBuf {
    let dir = cache_dir().join("paraphrase-MiniLM-L3-v2-onnx");
    assert!(
        dir.join("paraphrase-MiniLM-L3-v2.onnx").is_file(),
        "paraphrase-MiniLM-L3-v2 (ONNX) not found in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// A minimal `.npy` (format 1.0/2.0, little-endian, C order) reader: `<f4` or `<i4`.
pub fn npy(path: &std::path::Path) -> (Vec<usize>, Vec<u8>, String) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header.split("'descr': '").nth(1).unwrap();
    let descr = descr[..descr.find('\'').unwrap()].to_string();
    let shape = header.split("'shape': (").nth(1).unwrap();
    let shape: Vec<usize> = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (shape, bytes[start + hlen..].to_vec(), descr)
}

/// An `.npy` of `<f4` values: `dir/rel`.
pub fn npy_f32(dir: &std::path::Path, rel: &str) -> Vec<f32> {
    let (_, raw, descr) = npy(&dir.join(rel));
    assert_eq!(descr, "<f4", "{rel}");
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// An `.npy` of non-negative `<i4` values (ids, positions, masks): `dir/rel`.
pub fn npy_u32(dir: &std::path::Path, rel: &str) -> Vec<u32> {
    npy_u32_shaped(dir, rel).1
}

/// [`npy_u32`] and the array's shape.
pub fn npy_u32_shaped(dir: &std::path::Path, rel: &str) -> (Vec<usize>, Vec<u32>) {
    let (shape, raw, descr) = npy(&dir.join(rel));
    assert_eq!(descr, "<i4", "{rel}");
    let values = raw
        .chunks_exact(4)
        .map(|b| u32::try_from(i32::from_le_bytes(b.try_into().unwrap())).unwrap())
        .collect();
    (shape, values)
}

/// The rows of a `[rows, width]` variable a training fixture stores: all of them, or for
/// the word embeddings only those of `row_ids` (the fixtures keep the rows a batch touches).
pub fn stored_rows(name: &str, full: &[f32], row_ids: &[u32], width: usize) -> Vec<f32> {
    if name == "bert/embeddings/word_embeddings" {
        row_ids
            .iter()
            .flat_map(|&r| full[r as usize * width..][..width].iter().copied())
            .collect()
    } else {
        full.to_vec()
    }
}

/// The rows of a `[batch * seq, h]` sequence output at each example's masked positions
/// (`positions`: `batch` runs of equal length, as `run_pretraining.py`'s
/// `gather_indexes` reads them).
pub fn gather_positions(
    sequence: &[f32],
    positions: &[u32],
    batch: usize,
    seq: usize,
    h: usize,
) -> Vec<f32> {
    let per_example = positions.len() / batch;
    positions
        .iter()
        .enumerate()
        .flat_map(|(i, &p)| {
            let row = (i / per_example) * seq + p as usize;
            sequence[row * h..][..h].to_vec()
        })
        .collect()
}

/// What a run of the `bert` command line gave.
pub struct Cli {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs this package's `bert` binary with `args`, stdin closed. Whatever the arguments, a
/// failure must be exit status 1 with a message: a panic (101), a signal or another status
/// fails the calling test.
pub fn bert_cli<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Cli {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bert"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{o:?}");
    Cli {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Google's tiny TF checkpoint: `../shared/fixtures/tf_bert_tiny`.
pub fn tiny_dir() -> PathBuf {
    shared_dir().join("fixtures/tf_bert_tiny")
}

/// The flags that load [`tiny_dir`]'s checkpoint as Google's scripts take it:
/// `--bert_config_file` and `--init_checkpoint`.
pub fn tiny_checkpoint_flags() -> [String; 2] {
    let tiny = tiny_dir();
    [
        format!(
            "--bert_config_file={}",
            tiny.join("bert_config.json").display()
        ),
        format!(
            "--init_checkpoint={}",
            tiny.join("bert_model.ckpt").display()
        ),
    ]
}
