//! The training state of a fine-tuning run, so that it can stop and resume: what
//! tf.estimator keeps in `model.ckpt-N` (variables, `adam_m` / `adam_v` slots, `global_step`)
//! plus what it does not need to keep but we do, to make a resumed run bitwise equal to an
//! uninterrupted one (the dropout and shuffling generators and the position in the data).
//!
//! One file, written atomically, holding everything a resume reads: a separate sidecar
//! (`training_state.safetensors` beside `model.bert`) rather than a new `.bert` version,
//! because (1) `.bert` is the deployable model (one copy of the weights, mmapped by
//! inference) while the training state is three copies (weights, m, v) that a deployment
//! never needs; (2) `.bert`'s version number is being extended concurrently for quantized
//! weights, and optimizer tensors in the same header would collide with that; (3) one file
//! that holds the weights too is consistent by construction: one rename replaces it whole,
//! whereas a `.bert` + slots pair could be caught half-updated.
//!
//! The layout is safetensors (8-byte little-endian header length, JSON header, raw
//! little-endian data), so Python's `safetensors` reads it: every trainable variable by its
//! Google name, its slots as `{name}/adam_m` and `{name}/adam_v` (TF's slot names), the
//! example order as `data_order` (U32), and `__metadata__` strings: `format`
//! (`libbert-training-state`), `version`, `global_step`, the generators' states, the data
//! position, the hyper-parameters and a fingerprint of the training examples (a resume with
//! other data or settings is refused), `labels` and `config` (JSON), `data_crc32c`
//! (CRC-32C of the data bytes: a torn or corrupted file is an error, never a silent resume)
//! and, since version 2, `metadata_crc32c` (CRC-32C of the other metadata strings: an edited
//! `global_step` is an error too).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::config::BertConfig;
use crate::weights::crc32c::crc32c_extend;
use crate::{Error, Result};

/// `format` in the metadata.
pub const FORMAT: &str = "libbert-training-state";
/// `version` in the metadata: 2 adds `metadata_crc32c`; version 1 files are still read.
pub const VERSION: u32 = 2;
/// The file name `bert classify` uses in `--output_dir`.
pub const FILE_NAME: &str = "training_state.safetensors";

/// Largest JSON header accepted (a BERT-large state has ~1,200 entries, far below this).
const MAX_HEADER: u64 = 64 << 20;

/// A trainable variable with its optimizer slots.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: Vec<f32>,
    /// `adam_m` and `adam_v`.
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// Everything a resume needs, as read from or written to a state file.
#[derive(Debug, Clone)]
pub struct TrainingState {
    pub config: BertConfig,
    /// Every trainable variable, in `tf.trainable_variables()` order when written (a state
    /// file read back lists them by name order).
    pub variables: Vec<Variable>,
    pub global_step: u64,
    pub dropout_rng: u64,
    pub order_rng: u64,
    /// The permutation of example indices of the current epoch and how far it was used.
    pub order: Vec<u32>,
    pub order_position: u64,
    /// Hyper-parameters and data fingerprint (`key -> value` strings), compared on resume.
    pub settings: BTreeMap<String, String>,
    pub labels: Vec<String>,
}

/// `v` as little-endian bytes into `buf` (replacing its contents).
fn le_bytes(v: &[f32], buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend(v.iter().flat_map(|x| x.to_le_bytes()));
}

/// Writes `state` to `path` atomically: temporary file beside it, fsync, rename (and fsync
/// of the directory, so the rename itself survives a crash).
pub fn save(path: &Path, state: &TrainingState) -> Result<()> {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    let mut entry = |name: String, dtype: &str, shape: &[usize], bytes: u64| {
        header.insert(
            name,
            json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    };
    for var in &state.variables {
        let (name, shape) = (&var.name, &var.shape);
        let bytes = var.value.len() as u64 * 4;
        entry(name.to_string(), "F32", shape, bytes);
        entry(format!("{name}/adam_m"), "F32", shape, bytes);
        entry(format!("{name}/adam_v"), "F32", shape, bytes);
    }
    entry(
        "data_order".into(),
        "U32",
        &[state.order.len()],
        state.order.len() as u64 * 4,
    );
    // The CRC is computed in a first pass so the header can carry it; the data is then
    // converted a second time while writing (no copy of the whole state in memory).
    let tensors = || {
        state
            .variables
            .iter()
            .flat_map(|var| [var.value.as_slice(), var.m.as_slice(), var.v.as_slice()])
    };
    let mut buf = Vec::new();
    let mut crc = 0u32;
    for t in tensors() {
        for chunk in t.chunks(1 << 16) {
            le_bytes(chunk, &mut buf);
            crc = crc32c_extend(crc, &buf);
        }
    }
    let order_bytes: Vec<u8> = state.order.iter().flat_map(|x| x.to_le_bytes()).collect();
    crc = crc32c_extend(crc, &order_bytes);
    let mut meta: BTreeMap<String, String> = state.settings.clone();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("version".into(), VERSION.to_string());
    meta.insert("global_step".into(), state.global_step.to_string());
    meta.insert("dropout_rng_state".into(), state.dropout_rng.to_string());
    meta.insert("order_rng_state".into(), state.order_rng.to_string());
    meta.insert("order_position".into(), state.order_position.to_string());
    meta.insert(
        "labels".into(),
        Value::from(state.labels.clone()).to_string(),
    );
    meta.insert(
        "config".into(),
        serde_json::to_string(&state.config).map_err(|e| Error::Config(e.to_string()))?,
    );
    meta.insert("data_crc32c".into(), crc.to_string());
    meta.insert(METADATA_CRC.into(), metadata_crc(&meta).to_string());
    header.insert("__metadata__".into(), json!(meta));
    let mut text = Value::Object(header).to_string().into_bytes();
    // safetensors pads the header with spaces so the data starts 8-byte aligned.
    while text.len() % 8 != 0 {
        text.push(b' ');
    }

    write_atomically(path, |out| {
        out.write_all(&(text.len() as u64).to_le_bytes())?;
        out.write_all(&text)?;
        for t in tensors() {
            for chunk in t.chunks(1 << 16) {
                le_bytes(chunk, &mut buf);
                out.write_all(&buf)?;
            }
        }
        out.write_all(&order_bytes)
    })
}

/// Temporary file beside `path`, `write`, fsync, rename, fsync of the directory
/// ([`crate::output::write_with`]).
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    crate::output::write_with(path, write)
}

/// The metadata key holding [`metadata_crc`] (version 2).
const METADATA_CRC: &str = "metadata_crc32c";

/// CRC-32C of the metadata strings but [`METADATA_CRC`] itself, in key order, each key and
/// value preceded by its length: `data_crc32c` covers the tensors, this the strings a resume
/// reads (an edited `global_step` resumed at the wrong step).
fn metadata_crc(meta: &BTreeMap<String, String>) -> u32 {
    let mut crc = 0;
    for (k, v) in meta.iter().filter(|(k, _)| *k != METADATA_CRC) {
        for s in [k, v] {
            crc = crc32c_extend(crc, &(s.len() as u64).to_le_bytes());
            crc = crc32c_extend(crc, s.as_bytes());
        }
    }
    crc
}

/// Checks the stored [`METADATA_CRC`] against the metadata.
fn check_metadata_crc(meta: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    let stored = meta
        .get(METADATA_CRC)
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or("metadata has no metadata_crc32c number")?;
    if stored != metadata_crc(meta) {
        return Err(
            "metadata checksum mismatch: the metadata (global_step, generator states, \
                    settings) was edited or is corrupt"
                .into(),
        );
    }
    Ok(())
}

/// Fewest data bytes a state for `config` has: values, `adam_m` and `adam_v` of the
/// embeddings and the encoder layers' kernels. A metadata config larger than the file is
/// refused before its parameters are allocated (a forged one asked for petabytes).
fn min_state_bytes(c: &crate::config::BertConfig) -> u128 {
    let (h, i) = (c.hidden_size as u128, c.intermediate_size as u128);
    let rows = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) as u128;
    let params = rows * h + c.num_hidden_layers as u128 * (4 * h * h + 2 * h * i);
    params * 3 * 4
}

/// Reads a state file written by [`save`]: every tensor's entry is checked (dtype, shape,
/// offsets) and the data against `data_crc32c`; the variables' names and shapes are checked
/// against the run when it resumes.
pub fn load(path: &Path) -> Result<TrainingState> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let err = |m: String| Error::format(path, None, m);
    let n = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| err("too short for a training state".into()))?;
    if n > MAX_HEADER || n + 8 > bytes.len() as u64 {
        return Err(err(format!("header length {n} exceeds the file")));
    }
    let header_end = 8 + n as usize;
    let header: Value = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| err(format!("header is not JSON: {e}")))?;
    let data = &bytes[header_end..];
    let meta: BTreeMap<String, String> = header
        .get("__metadata__")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .ok_or_else(|| err("no __metadata__ strings".into()))?;
    let get = |k: &str| -> Result<&String> {
        meta.get(k)
            .ok_or_else(|| err(format!("metadata has no {k}")))
    };
    if get("format")? != FORMAT {
        return Err(err(format!("not a {FORMAT} file")));
    }
    match get("version")?.as_str() {
        "1" => {}
        "2" => check_metadata_crc(&meta).map_err(err)?,
        v => {
            return Err(err(format!(
                "training state version {v} (this libbert reads 1 to {VERSION})"
            )))
        }
    }
    let num = |k: &str| -> Result<u64> {
        get(k)?
            .parse()
            .map_err(|_| err(format!("metadata {k} is not a number")))
    };
    let crc: u32 = get("data_crc32c")?
        .parse()
        .map_err(|_| err("data_crc32c is not a number".into()))?;
    if crc32c_extend(0, data) != crc {
        return Err(err(
            "checksum mismatch: the file is truncated or corrupt".into()
        ));
    }
    let config: crate::config::BertConfig =
        serde_json::from_str(get("config")?).map_err(|e| err(format!("metadata config: {e}")))?;
    let labels: Vec<String> =
        serde_json::from_str(get("labels")?).map_err(|e| err(format!("metadata labels: {e}")))?;
    if min_state_bytes(&config) > data.len() as u128 {
        return Err(err(format!(
            "metadata config ({} x {} embeddings, {} layers) cannot fit the file's {} data bytes",
            config.vocab_size,
            config.hidden_size,
            config.num_hidden_layers,
            data.len()
        )));
    }

    // A tensor's bytes, checked against its header entry.
    let tensor = |name: &str, dtype: &str, len: usize| -> Result<&[u8]> {
        let e = header
            .get(name)
            .ok_or_else(|| Error::format(path, Some(name), "missing"))?;
        let bad = |m: &str| Error::format(path, Some(name), m);
        if e.get("dtype").and_then(Value::as_str) != Some(dtype) {
            return Err(bad(&format!("dtype is not {dtype}")));
        }
        let shape: Vec<u64> = e
            .get("shape")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if shape.iter().product::<u64>() != len as u64 {
            return Err(bad(&format!("shape {shape:?} is not {len} values")));
        }
        let off: Vec<u64> = e
            .get("data_offsets")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        match off[..] {
            [b, t] if b <= t && t <= data.len() as u64 && t - b == len as u64 * 4 => {
                Ok(&data[b as usize..t as usize])
            }
            _ => Err(bad("data_offsets outside the data")),
        }
    };
    let floats = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let obj = header
        .as_object()
        .ok_or_else(|| err("header is not a JSON object".into()))?;
    let mut variables = Vec::new();
    for (name, e) in obj {
        let slot = name.ends_with("/adam_m") || name.ends_with("/adam_v");
        if slot || name == "data_order" || name == "__metadata__" {
            continue;
        }
        let shape: Vec<usize> = e
            .get("shape")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|d| d as usize)
                    .collect()
            })
            .ok_or_else(|| Error::format(path, Some(name), "no shape"))?;
        let len = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n as u64 <= data.len() as u64 / 4)
            .ok_or_else(|| Error::format(path, Some(name), "shape larger than the data"))?;
        variables.push(Variable {
            value: floats(tensor(name, "F32", len)?),
            m: floats(tensor(&format!("{name}/adam_m"), "F32", len)?),
            v: floats(tensor(&format!("{name}/adam_v"), "F32", len)?),
            name: name.clone(),
            shape,
        });
    }
    let order_len = header
        .get("data_order")
        .and_then(|e| e.get("shape"))
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::format(path, Some("data_order"), "missing"))?;
    if order_len > data.len() as u64 / 4 {
        return Err(Error::format(
            path,
            Some("data_order"),
            "longer than the data",
        ));
    }
    let order: Vec<u32> = tensor("data_order", "U32", order_len as usize)?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let order_position = num("order_position")?;
    if order_position > order.len() as u64 {
        return Err(err("order_position is past the example order".into()));
    }
    let mut settings = meta.clone();
    for k in [
        "format",
        "version",
        "global_step",
        "dropout_rng_state",
        "order_rng_state",
        "order_position",
        "labels",
        "config",
        "data_crc32c",
        METADATA_CRC,
    ] {
        settings.remove(k);
    }
    Ok(TrainingState {
        config,
        variables,
        global_step: num("global_step")?,
        dropout_rng: num("dropout_rng_state")?,
        order_rng: num("order_rng_state")?,
        order,
        order_position,
        settings,
        labels,
    })
}
