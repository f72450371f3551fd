//! Tensors stored below f32 precision: f16 and int8 dense kernels, int8 embedding rows.
//!
//! [`Weights`](super::Weights) keeps these apart from its f32 tensors, so every f32 consumer
//! (`Weights::get`, training) keeps its `&[f32]` and a quantized tensor asked for as f32 gives
//! an `Unsupported` error that names it. A back end prepares its dense layers straight from
//! these ([`crate::backend::MatrixSource`]): no f32 copy of a quantized kernel is ever made.

use std::fmt;
use std::str::FromStr;

use crate::backend::int8::QuantizedKernel;
use crate::backend::WeightBytes;
use crate::{Error, Result};

/// Storage precision of a model's large tensors (encoder dense kernels, word embeddings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DType {
    /// 4-byte IEEE floats: the reference.
    #[default]
    F32,
    /// IEEE half floats; dense layers convert them to f32 inside the matmul.
    F16,
    /// Symmetric int8 with one f32 scale per output channel (dense kernels) or per row (word
    /// embeddings); dense layers quantize their activations per row and accumulate in i32.
    Int8,
}

impl DType {
    /// `"f32"`, `"f16"` or `"int8"` (what `--dtype` takes).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Int8 => "int8",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = Error;
    fn from_str(s: &str) -> Result<DType> {
        match s {
            "f32" | "float32" => Ok(DType::F32),
            "f16" | "float16" | "half" => Ok(DType::F16),
            "int8" | "i8" => Ok(DType::Int8),
            other => Err(Error::InvalidArgument(format!(
                "dtype {other:?}: expected f32, f16 or int8"
            ))),
        }
    }
}

/// A tensor not held as a `Vec<f32>`: stored below f32 precision, or f32 borrowed from a
/// `.bert` file's memory map (plain, or packed for the f32 micro-kernel).
#[derive(Debug, Clone)]
pub enum QuantizedTensor {
    /// IEEE half floats, little-endian, row-major in `shape` (a dense kernel is `[in, out]`).
    F16 {
        shape: Vec<usize>,
        bytes: WeightBytes,
    },
    /// A dense kernel `[in, out]` in symmetric int8, row-major (the f32 kernel's layout), one
    /// scale per output column: `w[i][o] ≈ values[i * out + o] · scales[o]`.
    Int8 {
        in_dim: usize,
        out_dim: usize,
        values: Vec<i8>,
        scales: Vec<f32>,
    },
    /// A dense kernel `[in, out]` in int8, already in the packed layout every int8 code path
    /// reads (`Dense::int8_packed_bytes`, layout `INT8_LAYOUT_VERSION`): what a `.bert` file
    /// stores, so that loading needs no repacking. `scales: [out]` as for [`Self::Int8`].
    Int8Packed {
        in_dim: usize,
        out_dim: usize,
        packed: WeightBytes,
        scales: Vec<f32>,
    },
    /// A table `[rows, cols]` in symmetric int8 with one scale per row (word embeddings: a
    /// lookup reads one row): `t[r][c] ≈ values[r * cols + c] · scales[r]`.
    Int8Rows {
        rows: usize,
        cols: usize,
        values: WeightBytes,
        scales: Vec<f32>,
    },
    /// A dense kernel `[in, out]` in f32, in the panel layout of the f32 micro-kernels
    /// (`nr`-column panels of `kc`-row blocks, columns padded to `nr`): a `.bert` file packed
    /// for one CPU family runs straight from its memory map there, and is unpacked elsewhere.
    F32Packed {
        in_dim: usize,
        out_dim: usize,
        nr: usize,
        kc: usize,
        bytes: WeightBytes,
    },
    /// An f32 matrix `[rows, cols]`, row-major little-endian, borrowed from a memory map (the
    /// word embeddings of an f32 `.bert` model: a lookup reads one row).
    F32Rows {
        rows: usize,
        cols: usize,
        bytes: WeightBytes,
    },
}

impl QuantizedTensor {
    /// An int8 dense kernel from `[in, out]` values and `[out]` scales (a per-tensor scale is
    /// repeated per column); checks the lengths.
    pub fn int8(
        in_dim: usize,
        out_dim: usize,
        values: Vec<i8>,
        scales: Vec<f32>,
    ) -> Result<QuantizedTensor> {
        let t = QuantizedTensor::Int8 {
            in_dim,
            out_dim,
            values,
            scales,
        };
        t.check()?;
        Ok(t)
    }

    /// Symmetric per-output-channel int8 of an f32 kernel `[in, out]` (scale = max|w| / 127
    /// per column; see `QuantizedKernel::quantize`).
    pub fn quantize_kernel(kernel: &[f32], in_dim: usize, out_dim: usize) -> QuantizedTensor {
        let q = QuantizedKernel::quantize(kernel, in_dim, out_dim);
        QuantizedTensor::Int8 {
            in_dim,
            out_dim,
            values: q.values,
            scales: q.scales,
        }
    }

    /// An f16 copy of an f32 tensor.
    pub fn f16_from_f32(shape: Vec<usize>, data: &[f32]) -> QuantizedTensor {
        let bytes = data
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        QuantizedTensor::F16 {
            shape,
            bytes: WeightBytes::Owned(bytes),
        }
    }

    /// Symmetric int8 of a table `[rows, cols]` with one scale per row (max|row| / 127).
    pub fn quantize_rows(data: &[f32], rows: usize, cols: usize) -> QuantizedTensor {
        let mut values = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(rows);
        for row in data.chunks_exact(cols.max(1)).take(rows) {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            values.extend(
                row.iter()
                    .map(|&v| ((v / scale).round().clamp(-127.0, 127.0) as i8) as u8),
            );
        }
        QuantizedTensor::Int8Rows {
            rows,
            cols,
            values: WeightBytes::Owned(values),
            scales,
        }
    }

    /// The storage precision.
    pub fn dtype(&self) -> DType {
        match self {
            QuantizedTensor::F16 { .. } => DType::F16,
            QuantizedTensor::F32Packed { .. } | QuantizedTensor::F32Rows { .. } => DType::F32,
            _ => DType::Int8,
        }
    }

    /// The logical shape (`[in, out]` for a dense kernel).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            QuantizedTensor::F16 { shape, .. } => shape.clone(),
            QuantizedTensor::Int8 {
                in_dim, out_dim, ..
            }
            | QuantizedTensor::Int8Packed {
                in_dim, out_dim, ..
            } => vec![*in_dim, *out_dim],
            QuantizedTensor::F32Packed {
                in_dim, out_dim, ..
            } => vec![*in_dim, *out_dim],
            QuantizedTensor::Int8Rows { rows, cols, .. }
            | QuantizedTensor::F32Rows { rows, cols, .. } => vec![*rows, *cols],
        }
    }

    /// Checks that the byte and scale counts match the shape (loaders call this before use).
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Shape(m));
        match self {
            QuantizedTensor::F16 { shape, bytes } => {
                let n = super::num_elements(shape).and_then(|n| n.checked_mul(2));
                if n != Some(bytes.as_bytes().len()) {
                    return bad(format!(
                        "f16 {shape:?} needs {n:?} bytes, got {}",
                        bytes.as_bytes().len()
                    ));
                }
            }
            QuantizedTensor::Int8 {
                in_dim,
                out_dim,
                values,
                scales,
            } => {
                if in_dim.checked_mul(*out_dim) != Some(values.len()) || scales.len() != *out_dim {
                    return bad(format!(
                        "int8 [{in_dim}, {out_dim}] needs {} values and {out_dim} scales, got \
                         {} and {}",
                        in_dim.saturating_mul(*out_dim),
                        values.len(),
                        scales.len()
                    ));
                }
            }
            QuantizedTensor::Int8Packed {
                out_dim, scales, ..
            } => {
                // The packed length is checked by `Dense::from_int8_packed`.
                if scales.len() != *out_dim {
                    return bad(format!(
                        "int8 kernel with {out_dim} outputs has {} scales",
                        scales.len()
                    ));
                }
            }
            QuantizedTensor::Int8Rows {
                rows,
                cols,
                values,
                scales,
            } => {
                if rows.checked_mul(*cols) != Some(values.as_bytes().len()) || scales.len() != *rows
                {
                    return bad(format!(
                        "int8 rows [{rows}, {cols}] need {} values and {rows} scales, got {} \
                         and {}",
                        rows.saturating_mul(*cols),
                        values.as_bytes().len(),
                        scales.len()
                    ));
                }
            }
            QuantizedTensor::F32Packed {
                in_dim,
                out_dim,
                nr,
                kc,
                bytes,
            } => {
                let want = crate::backend::cpu::packed_f32_len(*in_dim, *out_dim, *nr)
                    .and_then(|n| n.checked_mul(4));
                if *nr == 0 || *kc == 0 || want != Some(bytes.len()) {
                    return bad(format!(
                        "packed f32 [{in_dim}, {out_dim}] in panels of {nr} x {kc}: {} bytes, \
                         expected {want:?}",
                        bytes.len()
                    ));
                }
            }
            QuantizedTensor::F32Rows { rows, cols, bytes } => {
                let want = rows.checked_mul(*cols).and_then(|n| n.checked_mul(4));
                if want != Some(bytes.len()) {
                    return bad(format!(
                        "f32 [{rows}, {cols}]: {} bytes, expected {want:?}",
                        bytes.len()
                    ));
                }
            }
        }
        if let Some(s) = self
            .scales()
            .iter()
            .find(|s| !(s.is_finite() && **s >= 0.0))
        {
            return bad(format!(
                "int8 scale {s} is not a finite non-negative number"
            ));
        }
        Ok(())
    }

    /// The int8 scales (empty for f16).
    pub fn scales(&self) -> &[f32] {
        match self {
            QuantizedTensor::F16 { .. }
            | QuantizedTensor::F32Packed { .. }
            | QuantizedTensor::F32Rows { .. } => &[],
            QuantizedTensor::Int8 { scales, .. }
            | QuantizedTensor::Int8Packed { scales, .. }
            | QuantizedTensor::Int8Rows { scales, .. } => scales,
        }
    }

    /// The f32 values (a dequantized or unpacked copy, `[in, out]` row-major for a kernel). A
    /// packed int8 kernel cannot be unpacked: convert from the f32 original instead.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        match self {
            QuantizedTensor::F32Packed {
                in_dim,
                out_dim,
                nr,
                kc,
                bytes,
            } => {
                self.check()?;
                let v = bytes.to_f32();
                Ok(crate::backend::cpu::unpack_f32(
                    &v, *in_dim, *out_dim, *nr, *kc,
                ))
            }
            QuantizedTensor::F32Rows { bytes, .. } => Ok(bytes.to_f32().into_owned()),
            QuantizedTensor::F16 { bytes, .. } => Ok(f16_to_f32(bytes.as_bytes())),
            QuantizedTensor::Int8 {
                out_dim,
                values,
                scales,
                ..
            } => Ok(values
                .iter()
                .enumerate()
                .map(|(i, &v)| v as f32 * scales[i % out_dim])
                .collect()),
            QuantizedTensor::Int8Packed { .. } => Err(Error::Unsupported(
                "an int8 kernel read from a .bert file is stored packed and cannot be turned \
                 back into f32: convert from the f32 original"
                    .into(),
            )),
            QuantizedTensor::Int8Rows {
                cols,
                values,
                scales,
                ..
            } => Ok(values
                .as_bytes()
                .iter()
                .enumerate()
                .map(|(i, &v)| v as i8 as f32 * scales[i / cols])
                .collect()),
        }
    }
}

/// Little-endian f16 bytes -> f32 values.
pub(crate) fn f16_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_round_trip_and_unknown_names_are_errors() {
        for d in [DType::F32, DType::F16, DType::Int8] {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
        assert!("int4".parse::<DType>().is_err());
    }

    #[test]
    fn row_quantization_is_within_half_a_step_of_each_value() {
        let data = [0.5f32, -1.0, 0.25, 0.0, 0.0, 0.0, 3.0, 1.0, -2.9];
        let q = QuantizedTensor::quantize_rows(&data, 3, 3);
        q.check().unwrap();
        let back = q.to_f32().unwrap();
        let scales = q.scales().to_vec();
        assert_eq!(scales, vec![1.0 / 127.0, 1.0, 3.0 / 127.0]);
        for (i, (a, b)) in data.iter().zip(&back).enumerate() {
            assert!(
                (a - b).abs() <= scales[i / 3] / 2.0 + 1e-7,
                "{i}: {a} vs {b}"
            );
        }
        // The row's largest magnitude is exact (it maps to ±127).
        assert_eq!(back[1], -1.0);
    }

    #[test]
    fn f16_copy_rounds_to_nearest_half() {
        let q = QuantizedTensor::f16_from_f32(vec![3], &[1.0, 0.1, -65504.0]);
        q.check().unwrap();
        assert_eq!(q.to_f32().unwrap(), vec![1.0, 0.099975586, -65504.0]);
    }

    #[test]
    fn inconsistent_lengths_are_shape_errors() {
        assert!(QuantizedTensor::int8(2, 3, vec![0; 5], vec![1.0; 3]).is_err());
        assert!(QuantizedTensor::int8(2, 3, vec![0; 6], vec![1.0; 2]).is_err());
        assert!(QuantizedTensor::int8(2, 3, vec![0; 6], vec![1.0, f32::NAN, 1.0]).is_err());
        assert!(QuantizedTensor::int8(2, 3, vec![0; 6], vec![1.0; 3]).is_ok());
    }
}
