//! Converting a model's weights between f32, f16 and int8 (`bert convert --dtype`, and
//! quantize-on-load through `ModelOptions::dtype`; both run [`convert`], so a converted file
//! and a model quantized on load compute the same thing).
//!
//! What is converted, and why:
//! - The encoder's dense kernels (query/key/value, attention output, intermediate, output):
//!   almost all of the encoder's weights and all of its matmul time. int8 is symmetric with one
//!   scale per output column (`QuantizedKernel::quantize`).
//! - The word embeddings `[vocab_size, hidden]`: 52% of all-MiniLM-L6-v2's f32 file (30522 x
//!   384), so with f32 embeddings an int8 file could not get below ~60% of the f32 size. They
//!   become f16 in an f16 model and int8 with one scale per row in an int8 model (a lookup
//!   reads one row); the LayerNorm right after the lookup absorbs most of the rounding.
//!   Measured in BENCHMARKS.md ("int8 and f16 models").
//! - Everything else stays f32: biases, LayerNorms, position and token-type embeddings (small),
//!   the pooler and any task head (small, and a classifier's decision is read right off them).
//!
//! In an f16 or int8 model the three self-attention kernels are stored as one fused kernel
//! `…/attention/self/qkv/kernel` `[hidden, 3 * hidden]` (query, key, value columns, the layout
//! the model's fused QKV layer uses) with `…/qkv/bias` `[3 * hidden]`, so a `.bert` file can
//! hold it in the packed int8 layout that the layer borrows from the memory map as it is.
//! Converting to f32 splits it back into Google's names.

use super::quantized::DType;
use super::{QuantizedTensor, Tensor, Weights};
use crate::backend::{Layout, MatrixSource, WeightBytes};
use crate::config::BertConfig;
use crate::{Error, Result};

/// Name part of the fused self-attention projection in f16 and int8 models.
pub const QKV: &str = "qkv";

/// How the word embeddings are stored in a model whose kernels are `dtype` (see the module
/// comment): f32 -> f32, f16 -> f16, int8 -> int8 rows.
pub fn embeddings_dtype(dtype: DType) -> DType {
    dtype
}

/// The storage of the model's dense kernels (that of layer 0's intermediate kernel): f32 for
/// a model read from a Google, Hugging Face or ONNX f32 checkpoint.
pub fn model_dtype(w: &Weights) -> DType {
    w.dtype("bert/encoder/layer_0/intermediate/dense/kernel")
        .unwrap_or(DType::F32)
}

/// `w` with its encoder kernels in `dtype` and its word embeddings in
/// [`embeddings_dtype`]`(dtype)`; every other tensor is moved over unchanged.
pub fn convert(w: Weights, config: &BertConfig, dtype: DType) -> Result<Weights> {
    convert_with(w, config, dtype, embeddings_dtype(dtype))
}

/// [`convert`] with the word embeddings in `embeddings` (for measuring the choice).
pub fn convert_with(
    mut w: Weights,
    config: &BertConfig,
    dtype: DType,
    embeddings: DType,
) -> Result<Weights> {
    config.validate()?;
    let (h, i) = (config.hidden_size, config.intermediate_size);
    for l in 0..config.num_hidden_layers {
        let scope = format!("bert/encoder/layer_{l}");
        convert_qkv(&mut w, &format!("{scope}/attention/self"), h, dtype)?;
        for (name, rows, cols) in [
            ("attention/output/dense", h, h),
            ("intermediate/dense", h, i),
            ("output/dense", i, h),
        ] {
            let name = format!("{scope}/{name}/kernel");
            let k = take(&mut w, &name, &[rows, cols])?;
            put(&mut w, &name, k.into_kernel(dtype)?)?;
        }
    }
    let name = "bert/embeddings/word_embeddings";
    let table = take(&mut w, name, &[config.vocab_size, h])?;
    let table = match embeddings {
        _ if table.dtype() == embeddings
            && table.is_table() == (embeddings == DType::Int8)
            && !table.is_borrowed_f32() =>
        {
            table
        }
        DType::Int8 => {
            let f = table.into_f32()?;
            Stored::Q(QuantizedTensor::quantize_rows(
                &f.data, f.shape[0], f.shape[1],
            ))
        }
        d => table.into_kernel(d)?,
    };
    put(&mut w, name, table)?;
    Ok(w)
}

/// `w` (f32) with the encoder's dense kernels packed for this CPU's f32 micro-kernel and the
/// three self-attention kernels fused (`…/attention/self/qkv`, as in f16 and int8 models):
/// what `bert convert` writes into an f32 `.bert` file, so that the model runs from the
/// memory map without repacking ([`QuantizedTensor::F32Packed`]; on a CPU whose kernel has
/// another panel layout the kernels are unpacked and packed again at load). Reading the file
/// back with `NativeModel::weights` gives Google's tensors bit for bit.
pub fn pack_f32(w: Weights, config: &BertConfig) -> Result<Weights> {
    let mut w = convert(w, config, DType::F32)?;
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let isa = crate::backend::cpu::Isa::detect();
    let pack = |w: &mut Weights, name: &str, k: Tensor| -> Result<()> {
        let (rows, cols) = (k.shape[0], k.shape[1]);
        let (values, (nr, kc)) = crate::backend::cpu::pack_f32(isa, &k.data, rows, cols);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let q = QuantizedTensor::F32Packed {
            in_dim: rows,
            out_dim: cols,
            nr,
            kc,
            bytes: WeightBytes::Owned(bytes),
        };
        w.insert_quantized(name, q)
    };
    for l in 0..config.num_hidden_layers {
        let scope = format!("bert/encoder/layer_{l}");
        let attn = format!("{scope}/attention/self");
        let (parts, bias) = qkv_parts(&w, &attn, h)?;
        for name in QKV_PARTS {
            w.remove(&format!("{attn}/{name}/kernel"));
            w.remove(&format!("{attn}/{name}/bias"));
        }
        let fused = fuse_qkv(parts, h)?.into_f32()?;
        pack(&mut w, &format!("{attn}/{QKV}/kernel"), fused)?;
        w.insert(
            format!("{attn}/{QKV}/bias"),
            Tensor::new(vec![3 * h], bias)?,
        );
        for (name, rows, cols) in [
            ("attention/output/dense", h, h),
            ("intermediate/dense", h, i),
            ("output/dense", i, h),
        ] {
            let name = format!("{scope}/{name}/kernel");
            let k = take(&mut w, &name, &[rows, cols])?.into_f32()?;
            pack(&mut w, &name, k)?;
        }
    }
    Ok(w)
}

/// A tensor taken out of [`Weights`], whatever its storage.
#[derive(Debug, Clone)]
pub(crate) enum Stored {
    F32(Tensor),
    Q(QuantizedTensor),
}

impl Stored {
    fn dtype(&self) -> DType {
        match self {
            Stored::F32(_) => DType::F32,
            Stored::Q(q) => q.dtype(),
        }
    }

    /// Whether this is an int8 table with per-row scales (not a dense kernel).
    fn is_table(&self) -> bool {
        matches!(self, Stored::Q(QuantizedTensor::Int8Rows { .. }))
    }

    fn shape(&self) -> Vec<usize> {
        match self {
            Stored::F32(t) => t.shape.clone(),
            Stored::Q(q) => q.shape(),
        }
    }

    fn into_f32(self) -> Result<Tensor> {
        match self {
            Stored::F32(t) => Ok(t),
            Stored::Q(q) => Tensor::new(q.shape(), q.to_f32()?),
        }
    }

    /// Whether this is f32 that is not a plain `Vec` (packed or borrowed from a map).
    fn is_borrowed_f32(&self) -> bool {
        matches!(
            self,
            Stored::Q(QuantizedTensor::F32Packed { .. } | QuantizedTensor::F32Rows { .. })
        )
    }

    /// This 2-D tensor as a dense kernel stored as `dtype` (f32: a plain `Vec`).
    fn into_kernel(self, dtype: DType) -> Result<Stored> {
        if self.dtype() == dtype && !self.is_table() && !self.is_borrowed_f32() {
            return Ok(self);
        }
        let t = self.into_f32()?;
        let (rows, cols) = match t.shape[..] {
            [r, c] => (r, c),
            _ => return Err(Error::Shape(format!("{:?} is not a matrix", t.shape))),
        };
        Ok(match dtype {
            DType::F32 => Stored::F32(t),
            DType::F16 => Stored::Q(QuantizedTensor::f16_from_f32(t.shape, &t.data)),
            DType::Int8 => Stored::Q(QuantizedTensor::quantize_kernel(&t.data, rows, cols)),
        })
    }

    /// The kernel as a back end takes it.
    pub(crate) fn source(&self) -> MatrixSource<'_> {
        match self {
            Stored::F32(t) => MatrixSource::F32(&t.data, Layout::InOut),
            Stored::Q(q) => MatrixSource::Quantized(q),
        }
    }
}

/// Removes `name` from `w`, checking its shape.
fn take(w: &mut Weights, name: &str, shape: &[usize]) -> Result<Stored> {
    let s = peek(w, name, shape)?;
    w.remove(name);
    Ok(s)
}

/// A copy of `name` in `w`, checking its shape.
pub(crate) fn peek(w: &Weights, name: &str, shape: &[usize]) -> Result<Stored> {
    let s = match (w.tensors.get(name), w.quantized.get(name)) {
        (Some(t), _) => Stored::F32(t.clone()),
        (None, Some(q)) => Stored::Q(q.clone()),
        (None, None) => return Err(Error::Shape(format!("missing tensor {name}"))),
    };
    if s.shape() != shape {
        return Err(Error::Shape(format!(
            "tensor {name} has shape {:?}, the config needs {shape:?}",
            s.shape()
        )));
    }
    Ok(s)
}

fn put(w: &mut Weights, name: &str, s: Stored) -> Result<()> {
    match s {
        Stored::F32(t) => {
            w.insert(name, t);
            Ok(())
        }
        Stored::Q(q) => w.insert_quantized(name, q),
    }
}

/// Google's three `[h, h]` kernels as one `[h, 3h]` (query, key, value columns). int8 and f16
/// kernels are joined as they are stored (the int8 scales are per column, so they join too);
/// mixed storage is joined in f32.
pub(crate) fn fuse_qkv(parts: [Stored; 3], h: usize) -> Result<Stored> {
    fn int8(s: &Stored) -> Option<(&[i8], &[f32])> {
        match s {
            Stored::Q(QuantizedTensor::Int8 { values, scales, .. }) => Some((values, scales)),
            _ => None,
        }
    }
    if let [Some(q), Some(k), Some(v)] = [int8(&parts[0]), int8(&parts[1]), int8(&parts[2])] {
        let mut values = Vec::with_capacity(3 * h * h);
        for r in 0..h {
            for p in [q.0, k.0, v.0] {
                values.extend_from_slice(&p[r * h..][..h]);
            }
        }
        let scales = [q.1, k.1, v.1].concat();
        return Ok(Stored::Q(QuantizedTensor::int8(h, 3 * h, values, scales)?));
    }
    let f16 = |s: &Stored| match s {
        Stored::Q(QuantizedTensor::F16 { bytes, .. }) => Some(bytes.as_bytes().to_vec()),
        _ => None,
    };
    if let [Some(q), Some(k), Some(v)] = [f16(&parts[0]), f16(&parts[1]), f16(&parts[2])] {
        let mut bytes = Vec::with_capacity(6 * h * h);
        for r in 0..h {
            for p in [&q, &k, &v] {
                bytes.extend_from_slice(&p[2 * r * h..][..2 * h]);
            }
        }
        return Ok(Stored::Q(QuantizedTensor::F16 {
            shape: vec![h, 3 * h],
            bytes: WeightBytes::Owned(bytes),
        }));
    }
    let [q, k, v] = parts;
    let (q, k, v) = (q.into_f32()?, k.into_f32()?, v.into_f32()?);
    let mut data = Vec::with_capacity(3 * h * h);
    for r in 0..h {
        for p in [&q, &k, &v] {
            data.extend_from_slice(&p.data[r * h..][..h]);
        }
    }
    Ok(Stored::F32(Tensor::new(vec![h, 3 * h], data)?))
}

const QKV_PARTS: [&str; 3] = ["query", "key", "value"];

/// Google's three query/key/value kernels of `scope` (copies) and their joined bias.
pub(crate) fn qkv_parts(w: &Weights, scope: &str, h: usize) -> Result<([Stored; 3], Vec<f32>)> {
    let mut bias = Vec::with_capacity(3 * h);
    let mut parts = Vec::with_capacity(3);
    for name in QKV_PARTS {
        parts.push(peek(w, &format!("{scope}/{name}/kernel"), &[h, h])?);
        bias.extend_from_slice(w.get(&format!("{scope}/{name}/bias"), &[h])?);
    }
    let parts: [Stored; 3] = parts
        .try_into()
        .map_err(|_| Error::Shape("three attention kernels".into()))?;
    Ok((parts, bias))
}

/// Self-attention kernels of `scope` in `dtype`: fused (`qkv`) for f16 and int8, Google's
/// three for f32.
fn convert_qkv(w: &mut Weights, scope: &str, h: usize, dtype: DType) -> Result<()> {
    let fused = format!("{scope}/{QKV}/kernel");
    let fused_bias = format!("{scope}/{QKV}/bias");
    if w.contains(&fused) {
        let k = take(w, &fused, &[h, 3 * h])?;
        if dtype != DType::F32 {
            return put(w, &fused, k.into_kernel(dtype)?);
        }
        let bias = w.get_vec(&fused_bias, &[3 * h])?;
        w.remove(&fused_bias);
        let k = k.into_f32()?;
        for (j, name) in QKV_PARTS.iter().enumerate() {
            let mut data = Vec::with_capacity(h * h);
            for row in k.data.chunks_exact(3 * h) {
                data.extend_from_slice(&row[j * h..][..h]);
            }
            w.insert(
                format!("{scope}/{name}/kernel"),
                Tensor::new(vec![h, h], data)?,
            );
            let b = bias[j * h..][..h].to_vec();
            w.insert(format!("{scope}/{name}/bias"), Tensor::new(vec![h], b)?);
        }
        return Ok(());
    }
    if dtype == DType::F32 {
        for name in QKV_PARTS {
            let name = format!("{scope}/{name}/kernel");
            let k = take(w, &name, &[h, h])?;
            put(w, &name, k.into_kernel(DType::F32)?)?;
        }
        return Ok(());
    }
    let (parts, bias) = qkv_parts(w, scope, h)?;
    for name in QKV_PARTS {
        w.remove(&format!("{scope}/{name}/kernel"));
        w.remove(&format!("{scope}/{name}/bias"));
    }
    let k = fuse_qkv(parts, h)?.into_kernel(dtype)?;
    put(w, &fused, k)?;
    w.insert(fused_bias, Tensor::new(vec![3 * h], bias)?);
    Ok(())
}
