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

use super::{num_elements, transpose, Tensor, Weights};
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

/// Loads a `.safetensors` file into Google-named f32 weights (F16 and BF16 converted).
pub fn load(path: impl AsRef<Path>) -> Result<Weights> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the file is opened read-only and only read through this map; like every
    // memory-mapped reader we rely on nobody truncating it while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    parse(&map, path)
}

/// Parses safetensors bytes (`path` only names the source in errors).
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
    let header: Value = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| err(None, format!("header is not JSON: {e}")))?;
    let header = header
        .as_object()
        .ok_or_else(|| err(None, "header is not a JSON object".into()))?;
    let data = &bytes[header_end..];

    let mut weights = Weights::new();
    for (hf_name, info) in header {
        if hf_name == "__metadata__" {
            continue;
        }
        let t = Some(hf_name.as_str());
        let dtype = info
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| err(t, "no dtype".into()))?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| err(t, "no shape".into()))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| err(t, "shape is not a list of sizes".into()))?;
        let offsets: Vec<u64> = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let [begin, end] = offsets[..] else {
            return Err(err(t, "data_offsets is not [begin, end]".into()));
        };
        if begin > end || end > data.len() as u64 {
            return Err(err(
                t,
                format!(
                    "data_offsets [{begin}, {end}] outside the {} data bytes",
                    data.len()
                ),
            ));
        }
        let raw = &data[begin as usize..end as usize];
        let width = match dtype {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => {
                if let Some((g, _)) = google_name(hf_name) {
                    weights.insert_unsupported(g, format!("dtype {other} (F32, F16, BF16 only)"));
                }
                continue;
            }
        };
        let count = num_elements(&shape)
            .and_then(|c| c.checked_mul(width).map(|b| (c, b)))
            .filter(|&(_, b)| b == raw.len())
            .map(|(c, _)| c)
            .ok_or_else(|| {
                err(
                    t,
                    format!("{} bytes do not hold {dtype} {shape:?}", raw.len()),
                )
            })?;
        let Some((name, transposed)) = google_name(hf_name) else {
            continue;
        };
        let mut values: Vec<f32> = match dtype {
            "F32" => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            "F16" => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => raw
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        };
        debug_assert_eq!(values.len(), count);
        let mut shape = shape;
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

    #[test]
    fn parses_and_checks_offsets() {
        let header =
            br#"{"pooler.dense.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
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
