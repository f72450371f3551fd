//! Checkpoint loaders: Google TF checkpoints, Hugging Face safetensors, ONNX (feature), `.bert`.
//!
//! Every loader produces [`Weights`]: named f32 tensors under Google's variable names
//! (`bert/encoder/layer_3/attention/self/query/kernel`), dense kernels in Google's `[in, out]`
//! layout. The model walks those names, so a missing or misshapen tensor names itself.
//!
//! A quantized model (f16 or int8, see [`quantize`]) holds its large tensors as
//! [`QuantizedTensor`]s beside the f32 ones; [`Weights::get`] stays f32-only.

pub(crate) mod crc32c;
pub mod native;
#[cfg(feature = "onnx")]
pub mod onnx;
pub(crate) mod proto;
pub mod quantize;
mod quantized;
pub mod safetensors;
pub mod tf_checkpoint;

use std::collections::BTreeMap;

use crate::{Error, Result};

pub use crc32c::{crc32c, mask_crc32c};
pub use quantized::{DType, QuantizedTensor};

/// One f32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` has `prod(shape)` elements.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor> {
        let n = num_elements(&shape)
            .ok_or_else(|| Error::Shape(format!("shape {shape:?} overflows")))?;
        if n != data.len() {
            return Err(Error::Shape(format!(
                "shape {shape:?} needs {n} values, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }
}

/// An error naming tensor `name` of `path` if a value is NaN or infinite: a checkpoint with
/// such a weight computes NaN for every input, so every loader refuses it.
pub(crate) fn check_finite(path: &std::path::Path, name: &str, values: &[f32]) -> Result<()> {
    // A branch-free pass the compiler vectorises; the position is searched only on failure.
    if !values.iter().fold(false, |bad, v| bad | !v.is_finite()) {
        return Ok(());
    }
    let (i, v) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
        .unwrap_or((0, &f32::NAN));
    Err(Error::format(
        path,
        Some(name),
        format!("value {i} is {v}: weights must be finite"),
    ))
}

/// `prod(shape)`, or `None` on overflow.
pub(crate) fn num_elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Named tensors under Google's variable names: f32 ones, and (in a quantized model) f16 or
/// int8 ones kept apart, so that [`Weights::get`] keeps returning f32.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    tensors: BTreeMap<String, Tensor>,
    quantized: BTreeMap<String, QuantizedTensor>,
    /// Tensors present in the file but not loadable as f32 (name -> reason, e.g. the dtype);
    /// asking for one gives an `Unsupported` error naming it.
    unsupported: BTreeMap<String, String>,
}

impl Weights {
    /// An empty set.
    pub fn new() -> Weights {
        Weights::default()
    }

    /// Adds (or replaces) a tensor.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        let name = name.into();
        self.quantized.remove(&name);
        self.tensors.insert(name, tensor);
    }

    /// Adds (or replaces) an f16 or int8 tensor, after checking its lengths.
    pub fn insert_quantized(
        &mut self,
        name: impl Into<String>,
        tensor: QuantizedTensor,
    ) -> Result<()> {
        let name = name.into();
        tensor
            .check()
            .map_err(|e| Error::Shape(format!("tensor {name}: {e}")))?;
        self.tensors.remove(&name);
        self.quantized.insert(name, tensor);
        Ok(())
    }

    /// Adds an int8 dense kernel: `values` `[in, out]` row-major (Google's kernel layout) and
    /// one scale per output column, `w[i][o] ≈ values[i * out + o] · scales[o]` (repeat a
    /// per-tensor scale `out` times).
    pub fn insert_int8(
        &mut self,
        name: impl Into<String>,
        in_dim: usize,
        out_dim: usize,
        values: Vec<i8>,
        scales: Vec<f32>,
    ) -> Result<()> {
        let t = QuantizedTensor::Int8 {
            in_dim,
            out_dim,
            values,
            scales,
        };
        self.insert_quantized(name, t)
    }

    /// The f16 or int8 tensor `name`, if it is stored so.
    pub fn quantized(&self, name: &str) -> Option<&QuantizedTensor> {
        self.quantized.get(name)
    }

    /// Name and tensor pairs of the f16 and int8 tensors, in sorted name order.
    pub fn iter_quantized(&self) -> impl Iterator<Item = (&str, &QuantizedTensor)> {
        self.quantized.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How `name` is stored, if present.
    pub fn dtype(&self, name: &str) -> Option<DType> {
        if self.tensors.contains_key(name) {
            return Some(DType::F32);
        }
        self.quantized.get(name).map(QuantizedTensor::dtype)
    }

    /// Removes `name` (f32 or quantized).
    pub fn remove(&mut self, name: &str) {
        self.tensors.remove(name);
        self.quantized.remove(name);
    }

    /// Records a tensor that exists but cannot be loaded (e.g. a non-f32 dtype).
    pub fn insert_unsupported(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        self.unsupported.insert(name.into(), reason.into());
    }

    /// The tensor `name`, checked against `expected_shape`; the error names the tensor.
    pub fn get(&self, name: &str, expected_shape: &[usize]) -> Result<&[f32]> {
        let t = match self.tensors.get(name) {
            Some(t) => t,
            None => {
                return Err(
                    match (self.quantized.get(name), self.unsupported.get(name)) {
                        (Some(q), _) => Error::Unsupported(format!(
                            "tensor {name} is stored as {}; this use needs f32 (load the model \
                         with dtype f32 from the f32 original)",
                            q.dtype()
                        )),
                        (None, Some(why)) => Error::Unsupported(format!("tensor {name}: {why}")),
                        (None, None) => Error::Shape(format!("missing tensor {name}")),
                    },
                )
            }
        };
        if t.shape != expected_shape {
            return Err(Error::Shape(format!(
                "tensor {name} has shape {:?}, the config needs {expected_shape:?}",
                t.shape
            )));
        }
        Ok(&t.data)
    }

    /// Like [`Weights::get`], copied into a new vector.
    pub fn get_vec(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>> {
        self.get(name, expected_shape).map(<[f32]>::to_vec)
    }

    /// The f32 tensor `name`, whatever its shape.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Whether `name` is present (f32 or quantized).
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name) || self.quantized.contains_key(name)
    }

    /// Names of the f32 tensors in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Name and tensor pairs of the f32 tensors in sorted name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of tensors (f32 and quantized).
    pub fn len(&self) -> usize {
        self.tensors.len() + self.quantized.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty() && self.quantized.is_empty()
    }
}

/// `[rows, cols]` -> `[cols, rows]` (a layout change at load time, not model arithmetic).
pub(crate) fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for (r, row) in data.chunks_exact(cols).enumerate().take(rows) {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
    out
}

/// Finds the checkpoint and config at `path` and loads both. A directory is recognised by
/// what it holds: `bert_config.json` + `bert_model.ckpt.index` (or a `checkpoint` file) is a
/// Google TF checkpoint, `config.json` + `model.safetensors` a Hugging Face model. A file path
/// may name a `.safetensors` file, a TF checkpoint prefix or its `.index` file (the config is
/// read from the same directory), or a libbert `.bert` file (config inside). With the `onnx`
/// feature, a `.onnx` file, or a directory that is neither of the above holding exactly one
/// `.onnx` file, is an ONNX export (config inferred from the graph; see the `onnx` module,
/// which that feature builds).
pub fn load_model_files(path: &std::path::Path) -> Result<(crate::config::BertConfig, Weights)> {
    let (config, weights) = find_and_load(path)?;
    check_layers(&config, &weights)?;
    Ok((config, weights))
}

/// Refuses a path that cannot hold a model before looking for files beside it: a FIFO, a
/// device such as `/dev/zero` or an empty file was reported as a missing `bert_config.json`.
fn check_model_path(path: &std::path::Path) -> Result<()> {
    let kind = match std::fs::metadata(path) {
        // Not there: a TF checkpoint prefix names no file of its own; the loader says more.
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(m) if m.is_file() && m.len() > 0 => return Ok(()),
        Ok(m) if m.is_file() => "an empty file",
        Ok(m) => special_file_kind(&m),
    };
    Err(Error::format(
        path,
        None,
        format!(
            "is {kind}, not a model: give a model directory or a .bert, .safetensors, .onnx or \
             TF checkpoint file"
        ),
    ))
}

/// "a FIFO", "a character device", ... for a path that is neither a file nor a directory.
fn special_file_kind(m: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    let _ = m;
    "not a regular file"
}

/// Refuses weights with more encoder layers than `config.num_hidden_layers`: the model would
/// run the first layers and ignore the rest, silently (a config edited to 6 layers next to a
/// 12-layer checkpoint). Every loader calls it.
pub fn check_layers(config: &crate::config::BertConfig, weights: &Weights) -> Result<()> {
    let deepest = weights
        .tensors
        .keys()
        .chain(weights.quantized.keys())
        .filter_map(|name| {
            let rest = name.strip_prefix("bert/encoder/layer_")?;
            rest.split('/').next()?.parse::<usize>().ok()
        })
        .max();
    match deepest {
        Some(d) if d >= config.num_hidden_layers => Err(Error::Config(format!(
            "the checkpoint has {} encoder layers (up to layer_{d}) but num_hidden_layers is \
             {}: the last layers would be ignored (set num_hidden_layers to {})",
            d + 1,
            config.num_hidden_layers,
            d + 1
        ))),
        _ => Ok(()),
    }
}

/// [`load_model_files`] before the layer check.
fn find_and_load(path: &std::path::Path) -> Result<(crate::config::BertConfig, Weights)> {
    use crate::config::{BertConfig, ConfigFlavor};
    check_model_path(path)?;
    if native::is_native_file(path) {
        let m = native::NativeModel::open(path)?;
        return Ok((m.config().clone(), m.weights()?));
    }
    if path.extension().is_some_and(|e| e == "onnx") && !path.is_dir() {
        return load_onnx(path);
    }
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    };
    let is_safetensors = if path.is_dir() {
        let tf = dir.join("bert_config.json").is_file()
            && (dir.join("bert_model.ckpt.index").is_file() || dir.join("checkpoint").is_file());
        let hf = dir.join("model.safetensors").is_file() && dir.join("config.json").is_file();
        match (tf, hf) {
            (true, _) => false,
            (false, true) => true,
            (false, false) => {
                if let Some(file) = single_onnx_file(&dir)? {
                    return load_onnx(&file);
                }
                return Err(Error::format(
                    path,
                    None,
                    "not a model directory: expected bert_config.json + bert_model.ckpt.index \
                     (TF), config.json + model.safetensors (Hugging Face) or one .onnx file",
                ));
            }
        }
    } else {
        path.extension().is_some_and(|e| e == "safetensors")
    };
    if is_safetensors {
        let file = if path.is_dir() {
            dir.join("model.safetensors")
        } else {
            path.to_path_buf()
        };
        let config =
            BertConfig::from_file_flavor(dir.join("config.json"), ConfigFlavor::HuggingFace)?;
        Ok((config, safetensors::load(&file)?))
    } else {
        let config =
            BertConfig::from_file_flavor(dir.join("bert_config.json"), ConfigFlavor::Google)?;
        Ok((config, tf_checkpoint::load(path)?))
    }
}

/// The one `.onnx` file in `dir`, if there is exactly one; several are an error.
fn single_onnx_file(dir: &std::path::Path) -> Result<Option<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "onnx") {
            found.push(p);
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(Error::format(
            dir,
            None,
            format!("{n} .onnx files; name the one to load"),
        )),
    }
}

/// An ONNX export. The config comes from the graph; a `config.json` beside the file, when
/// present, must agree with it on the sizes.
#[cfg(feature = "onnx")]
fn load_onnx(path: &std::path::Path) -> Result<(crate::config::BertConfig, Weights)> {
    use crate::config::{BertConfig, ConfigFlavor};
    let (config, weights) = onnx::load(path)?;
    let beside = path.parent().map(|d| d.join("config.json"));
    if let Some(file) = beside.filter(|f| f.is_file()) {
        let c = BertConfig::from_file_flavor(&file, ConfigFlavor::HuggingFace)?;
        let sizes = |c: &BertConfig| {
            [
                c.vocab_size,
                c.hidden_size,
                c.num_hidden_layers,
                c.num_attention_heads,
                c.intermediate_size,
            ]
        };
        if sizes(&c) != sizes(&config) {
            return Err(Error::Config(format!(
                "{}: sizes (vocab, hidden, layers, heads, intermediate) {:?} differ from \
                 the ONNX graph's {:?} in {}",
                file.display(),
                sizes(&c),
                sizes(&config),
                path.display()
            )));
        }
    }
    Ok((config, weights))
}

#[cfg(not(feature = "onnx"))]
fn load_onnx(path: &std::path::Path) -> Result<(crate::config::BertConfig, Weights)> {
    Err(Error::Unsupported(format!(
        "built without the onnx feature: rebuild libbert with `--features onnx` to load {}",
        path.display()
    )))
}

#[cfg(all(test, not(feature = "onnx")))]
mod tests {
    #[test]
    fn an_onnx_file_without_the_feature_is_unsupported() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx_tiny.onnx");
        let e = super::load_model_files(&path).unwrap_err();
        assert!(
            matches!(&e, crate::Error::Unsupported(m) if m.contains("onnx feature")),
            "{e}"
        );
    }
}
