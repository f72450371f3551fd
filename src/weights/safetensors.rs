//! Hugging Face safetensors (`model.safetensors`), memory-mapped.
//!
//! Layout: an 8-byte little-endian header length N, N bytes of JSON
//! (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": ..}`),
//! then the tensor bytes (offsets relative to the end of the header). Every offset is checked
//! against the file length and the shape before a byte is read.
//!
//! Names are mapped to Google's (see [`google_name`]); PyTorch `nn.Linear` weights are stored
//! `[out, in]` and are transposed here to Google's `[in, out]` kernels.

use std::fs::File;
use std::path::Path;

use serde_json::Value;

use super::{check_finite, num_elements, transpose, Tensor, Weights};
use crate::{Error, Result};

/// Largest header we accept (real headers are tens of kilobytes).
const MAX_HEADER: u64 = 100 << 20;

/// A tensor's name under Google's conventions and whether its data must be transposed from
/// `[out, in]` to `[in, out]`. `None` for tensors that are not weights of their own
/// (`embeddings.position_ids`, the masked-LM decoder tied to the word embeddings).
pub fn google_name(hf: &str) -> Option<(String, bool)> {
    let name = hf.strip_prefix("bert.").unwrap_or(hf);
    let fixed = match name {
        "embeddings.position_ids" => return None,
        "cls.predictions.decoder.weight" | "cls.predictions.decoder.bias" => return None,
        "cls.predictions.bias" => "cls/predictions/output_bias",
        "cls.seq_relationship.weight" => "cls/seq_relationship/output_weights",
        "cls.seq_relationship.bias" => "cls/seq_relationship/output_bias",
        // BertForQuestionAnswering's span head and BertForSequenceClassification's head
        // are `[out, in]` like Google's `cls/squad/output_weights` and `output_weights`.
        "qa_outputs.weight" => "cls/squad/output_weights",
        "qa_outputs.bias" => "cls/squad/output_bias",
        "classifier.weight" => "output_weights",
        "classifier.bias" => "output_bias",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some((fixed.to_string(), false));
    }
    let parts: Vec<&str> = name.split('.').collect();
    let (last, scope) = parts.split_last()?;
    let mut out = match scope.first() {
        Some(&("embeddings" | "encoder" | "pooler")) => String::from("bert"),
        _ => String::new(),
    };
    let mut i = 0;
    while i < scope.len() {
        if !out.is_empty() {
            out.push('/');
        }
        if scope[i] == "layer" && i + 1 < scope.len() && scope[i + 1].parse::<usize>().is_ok() {
            out.push_str("layer_");
            out.push_str(scope[i + 1]);
            i += 2;
        } else {
            out.push_str(scope[i]);
            i += 1;
        }
    }
    let parent = scope.last().copied().unwrap_or("");
    let (leaf, transposed) = match (parent, *last) {
        ("LayerNorm", "weight" | "gamma") => ("gamma", false),
        ("LayerNorm", "bias" | "beta") => ("beta", false),
        (p, "weight") if p.ends_with("_embeddings") => ("", false),
        (_, "weight") => ("kernel", true),
        (_, leaf) => (leaf, false),
    };
    if !leaf.is_empty() {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(leaf);
    }
    Some((out, transposed))
}

/// The Hugging Face name of a Google-named tensor (the inverse of [`google_name`], with the
/// `bert.` prefix of `BertFor*` models) and whether its data must be transposed from
/// `[in, out]` to `[out, in]`. `None` for a name outside BERT's conventions.
pub fn hugging_face_name(google: &str) -> Option<(String, bool)> {
    let fixed = match google {
        "cls/predictions/output_bias" => "cls.predictions.bias",
        "cls/seq_relationship/output_weights" => "cls.seq_relationship.weight",
        "cls/seq_relationship/output_bias" => "cls.seq_relationship.bias",
        "cls/squad/output_weights" => "qa_outputs.weight",
        "cls/squad/output_bias" => "qa_outputs.bias",
        "output_weights" => "classifier.weight",
        "output_bias" => "classifier.bias",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some((fixed.to_string(), false));
    }
    let parts: Vec<&str> = google.split('/').collect();
    let (last, scope) = parts.split_last()?;
    let mut out: Vec<String> = Vec::with_capacity(parts.len() + 1);
    for part in scope {
        match part.strip_prefix("layer_") {
            Some(n) if n.parse::<usize>().is_ok() => {
                out.push("layer".into());
                out.push(n.to_string());
            }
            _ => out.push(part.to_string()),
        }
    }
    let parent = scope.last().copied().unwrap_or("");
    let (leaf, transposed) = match *last {
        "gamma" => ("weight", false),
        "beta" => ("bias", false),
        "kernel" => ("weight", true),
        _ if last.ends_with("_embeddings") && parent == "embeddings" => {
            out.push(last.to_string());
            ("weight", false)
        }
        leaf => (leaf, false),
    };
    out.push(leaf.to_string());
    Some((out.join("."), transposed))
}

/// Writes `weights` (f32 values only) as a Hugging Face `.safetensors` file with the names
/// of [`hugging_face_name`], kernels transposed to `[out, in]`, atomically: what Python's
/// `safetensors`/`transformers` and ONNX exporters read. Quantized tensors are refused (convert
/// from an f32 model).
pub fn save(path: &Path, weights: &Weights) -> Result<()> {
    if let Some((name, _)) = weights.iter_quantized().next() {
        return Err(Error::format(
            path,
            Some(name),
            "safetensors output holds f32 weights only (convert an f32 model)",
        ));
    }
    let mut tensors: Vec<(String, Vec<usize>, std::borrow::Cow<'_, [f32]>)> = Vec::new();
    for (name, t) in weights.iter() {
        let (hf, transposed) = hugging_face_name(name).ok_or_else(|| {
            Error::format(path, Some(name), "no Hugging Face name for this tensor")
        })?;
        let (shape, data) = match (transposed, &t.shape[..]) {
            (true, &[rows, cols]) if cols > 0 => (
                vec![cols, rows],
                std::borrow::Cow::Owned(transpose(&t.data, rows, cols)),
            ),
            _ => (t.shape.clone(), std::borrow::Cow::Borrowed(&t.data[..])),
        };
        tensors.push((hf, shape, data));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, shape, data) in &tensors {
        let end = offset + 4 * data.len() as u64;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    header.insert(
        "__metadata__".into(),
        serde_json::json!({"format": "pt", "producer": "libbert"}),
    );
    let mut text = Value::Object(header).to_string().into_bytes();
    // The data starts 8-byte aligned, as safetensors writers pad the header with spaces.
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    crate::output::write_with(path, |out| {
        out.write_all(&(text.len() as u64).to_le_bytes())?;
        out.write_all(&text)?;
        let mut buf = Vec::new();
        for (_, _, data) in &tensors {
            for chunk in data.chunks(1 << 16) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
                out.write_all(&buf)?;
            }
        }
        Ok(())
    })
}

/// Loads a `.safetensors` file into Google-named f32 weights (F16 and BF16 converted).
pub fn load(path: impl AsRef<Path>) -> Result<Weights> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the file is opened read-only and only read through this map; like every
    // memory-mapped reader we rely on nobody truncating it while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    parse(&map, path)
}

/// Parses safetensors bytes (`path` only names the source in errors). Checked as the reference
/// `safetensors` crate checks a file, before a byte of data is read: the header length fits
/// the file and leaves the data 8-byte aligned (the writer pads the JSON with spaces), the
/// header is a JSON object, every tensor's `data_offsets` hold exactly its shape's bytes, and
/// the tensors, sorted by offset, lie one after another from 0 to the end of the file (no
/// gap, no overlap, nothing after). Non-finite weights are an error naming the tensor.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Weights> {
    let err = |t: Option<&str>, m: String| Error::format(path, t, m);
    let n = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| err(None, "too short for a safetensors header".into()))?;
    let header_end = n
        .checked_add(8)
        .filter(|&e| n <= MAX_HEADER && e <= bytes.len() as u64)
        .ok_or_else(|| err(None, format!("header length {n} exceeds the file")))?
        as usize;
    if header_end % 8 != 0 {
        return Err(err(
            None,
            format!(
                "header length {n} leaves the data unaligned (8 + {n} is not a multiple of 8, \
                 as safetensors writers pad it): a truncated or edited header"
            ),
        ));
    }
    let json = &bytes[8..header_end];
    if json.first() != Some(&b'{') {
        return Err(err(None, "header does not start with '{'".into()));
    }
    let header: Value =
        serde_json::from_slice(json).map_err(|e| err(None, format!("header is not JSON: {e}")))?;
    let header = header
        .as_object()
        .ok_or_else(|| err(None, "header is not a JSON object".into()))?;
    let data = &bytes[header_end..];

    let mut entries = Vec::with_capacity(header.len());
    for (hf_name, info) in header {
        if hf_name != "__metadata__" {
            entries.push(entry(hf_name, info).map_err(|m| err(Some(hf_name), m))?);
        }
    }
    // Contiguous from 0 to the end of the data, in offset order.
    entries.sort_by_key(|e| (e.begin, e.end));
    let mut expected = 0u64;
    for e in &entries {
        if e.begin != expected {
            return Err(err(
                Some(e.name),
                format!(
                    "data_offsets [{}, {}] should start at {expected}: tensors lie one after \
                     another without gaps or overlaps",
                    e.begin, e.end
                ),
            ));
        }
        expected = e.end;
    }
    if expected != data.len() as u64 {
        return Err(err(
            None,
            format!(
                "the tensors cover {expected} of the {} data bytes (a wrong header length or \
                 data_offsets)",
                data.len()
            ),
        ));
    }

    let mut weights = Weights::new();
    for e in entries {
        let t = Some(e.name);
        let Some(dtype) = e.dtype else {
            if let Some((g, _)) = google_name(e.name) {
                weights
                    .insert_unsupported(g, format!("dtype {} (F32, F16, BF16 only)", e.dtype_name));
            }
            continue;
        };
        let Some((name, transposed)) = google_name(e.name) else {
            continue;
        };
        // Offsets were checked against the data above.
        let raw = &data[e.begin as usize..e.end as usize];
        let mut values: Vec<f32> = match dtype {
            Float::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Float::F16 => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Float::Bf16 => raw
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        };
        check_finite(path, &name, &values)?;
        let mut shape = e.shape;
        if transposed {
            // nn.Linear stores [out, in]; Google's dense kernels are [in, out].
            let &[out_dim, in_dim] = &shape[..] else {
                return Err(err(
                    t,
                    format!("linear weight of shape {shape:?} is not 2-D"),
                ));
            };
            values = transpose(&values, out_dim, in_dim);
            shape = vec![in_dim, out_dim];
        }
        weights.insert(
            name,
            Tensor {
                shape,
                data: values,
            },
        );
    }
    Ok(weights)
}

/// The float types we convert to f32.
#[derive(Clone, Copy)]
enum Float {
    F32,
    F16,
    Bf16,
}

/// One header entry, its sizes checked.
struct Entry<'a> {
    name: &'a str,
    dtype_name: &'a str,
    /// `None`: a type we do not load (its size is still checked).
    dtype: Option<Float>,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
}

/// Bytes per element of every safetensors dtype, and which of them we load.
fn dtype_info(dtype: &str) -> Option<(u64, Option<Float>)> {
    Some(match dtype {
        "F32" => (4, Some(Float::F32)),
        "F16" => (2, Some(Float::F16)),
        "BF16" => (2, Some(Float::Bf16)),
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => (1, None),
        "I16" | "U16" => (2, None),
        "I32" | "U32" => (4, None),
        "F64" | "I64" | "U64" => (8, None),
        _ => return None,
    })
}

fn entry<'a>(name: &'a str, info: &'a Value) -> std::result::Result<Entry<'a>, String> {
    let dtype_name = info
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or("no dtype")?;
    let (width, dtype) =
        dtype_info(dtype_name).ok_or_else(|| format!("unknown dtype {dtype_name:?}"))?;
    let shape: Vec<usize> = info
        .get("shape")
        .and_then(Value::as_array)
        .ok_or("no shape")?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or("shape is not a list of sizes")?;
    let offsets: Vec<u64> = info
        .get("data_offsets")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let [begin, end] = offsets[..] else {
        return Err("data_offsets is not [begin, end]".into());
    };
    let bytes = num_elements(&shape)
        .and_then(|c| (c as u64).checked_mul(width))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    if end.checked_sub(begin) != Some(bytes) {
        return Err(format!(
            "data_offsets [{begin}, {end}] do not hold the {bytes} bytes of {dtype_name} {shape:?}"
        ));
    }
    Ok(Entry {
        name,
        dtype_name,
        dtype,
        shape,
        begin,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_hugging_face_names_to_google() {
        let cases = [
            (
                "embeddings.word_embeddings.weight",
                "bert/embeddings/word_embeddings",
                false,
            ),
            (
                "bert.embeddings.LayerNorm.weight",
                "bert/embeddings/LayerNorm/gamma",
                false,
            ),
            (
                "embeddings.LayerNorm.beta",
                "bert/embeddings/LayerNorm/beta",
                false,
            ),
            (
                "encoder.layer.3.attention.self.query.weight",
                "bert/encoder/layer_3/attention/self/query/kernel",
                true,
            ),
            (
                "bert.encoder.layer.11.output.LayerNorm.bias",
                "bert/encoder/layer_11/output/LayerNorm/beta",
                false,
            ),
            ("pooler.dense.weight", "bert/pooler/dense/kernel", true),
            ("cls.predictions.bias", "cls/predictions/output_bias", false),
            (
                "cls.predictions.transform.dense.weight",
                "cls/predictions/transform/dense/kernel",
                true,
            ),
        ];
        for (hf, google, t) in cases {
            assert_eq!(google_name(hf), Some((google.to_string(), t)), "{hf}");
        }
        assert_eq!(google_name("embeddings.position_ids"), None);
    }

    /// Every Google name of a BERT with all three heads maps to a Hugging Face name that
    /// maps back, and `save` then `load` gives the same tensors (kernels transposed twice).
    #[test]
    fn saves_what_it_loads() {
        let names = [
            ("bert/embeddings/word_embeddings", vec![5, 3]),
            ("bert/embeddings/position_embeddings", vec![4, 3]),
            ("bert/embeddings/token_type_embeddings", vec![2, 3]),
            ("bert/embeddings/LayerNorm/gamma", vec![3]),
            (
                "bert/encoder/layer_0/attention/self/query/kernel",
                vec![3, 3],
            ),
            (
                "bert/encoder/layer_10/intermediate/dense/kernel",
                vec![3, 4],
            ),
            ("bert/encoder/layer_10/intermediate/dense/bias", vec![4]),
            ("bert/encoder/layer_10/output/LayerNorm/beta", vec![3]),
            ("bert/pooler/dense/kernel", vec![3, 3]),
            ("cls/predictions/transform/dense/kernel", vec![3, 3]),
            ("cls/predictions/transform/LayerNorm/gamma", vec![3]),
            ("cls/predictions/output_bias", vec![5]),
            ("cls/seq_relationship/output_weights", vec![2, 3]),
            ("cls/squad/output_weights", vec![2, 3]),
            ("cls/squad/output_bias", vec![2]),
            ("output_weights", vec![2, 3]),
            ("output_bias", vec![2]),
        ];
        let mut w = Weights::new();
        for (i, (name, shape)) in names.iter().enumerate() {
            let n: usize = shape.iter().product();
            let data = (0..n).map(|j| (i * 100 + j) as f32).collect();
            w.insert(*name, Tensor::new(shape.clone(), data).unwrap());
            let (hf, t) = hugging_face_name(name).unwrap();
            assert_eq!(
                google_name(&hf),
                Some((name.to_string(), t)),
                "{name} -> {hf}"
            );
        }
        assert_eq!(
            hugging_face_name("bert/encoder/layer_3/attention/output/dense/kernel"),
            Some((
                "bert.encoder.layer.3.attention.output.dense.weight".into(),
                true
            ))
        );
        let path =
            std::env::temp_dir().join(format!("libbert-st-{}.safetensors", std::process::id()));
        save(&path, &w).unwrap();
        let back = load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.len(), w.len());
        for (name, t) in w.iter() {
            assert_eq!(back.tensor(name), Some(t), "{name}");
        }
    }

    #[test]
    fn parses_and_checks_offsets() {
        // 75 bytes of JSON and 5 spaces: the data starts 8-byte aligned, as writers pad it.
        let header =
            br#"{"pooler.dense.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}     "#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        for v in 0..6 {
            file.extend_from_slice(&(v as f32).to_le_bytes());
        }
        let w = parse(&file, Path::new("t")).unwrap();
        // [out=2, in=3] -> [in=3, out=2]
        assert_eq!(
            w.get("bert/pooler/dense/kernel", &[3, 2]).unwrap(),
            &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        assert!(parse(&file[..file.len() - 1], Path::new("t")).is_err());
    }
}
