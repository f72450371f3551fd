//! Writing a `.bert` file: lay the tensors out, encode the header of the right version, write
//! a temporary file, sync it and rename it over the target.

use std::borrow::Cow;
use std::path::Path;

use super::format::{
    align, bincode_config, header_crc, Block, EntryV3, HeaderV3, DTYPE_F16, DTYPE_F32,
    DTYPE_F32_PACKED, DTYPE_INT8_PACKED, DTYPE_INT8_ROWS, FORMAT_VERSION_HEADER_CRC,
    FORMAT_VERSION_PACKED, HEADER_CRC_LEN, MAGIC,
};
use crate::backend::cpu::Dense;
use crate::backend::int8::{QuantizedKernel, INT8_LAYOUT_VERSION};
use crate::config::BertConfig;
use crate::weights::crc32c::{crc32c, mask_crc32c};
use crate::weights::{QuantizedTensor, Tensor, Weights};
use crate::{Error, Result};

/// Writes a `.bert` file atomically: temporary file beside `path`, fsync, rename.
pub fn save(
    path: impl AsRef<Path>,
    config: &BertConfig,
    weights: &Weights,
    vocab: &[String],
    do_lower_case: bool,
) -> Result<()> {
    save_with_labels(path, config, weights, vocab, do_lower_case, &[])
}

/// Bytes to write for one block.
enum Part<'a> {
    F32(&'a [f32]),
    Bytes(Cow<'a, [u8]>),
}

impl Part<'_> {
    fn len(&self) -> u64 {
        match self {
            Part::F32(v) => v.len() as u64 * 4,
            Part::Bytes(b) => b.len() as u64,
        }
    }

    fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Part::F32(v) => Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Part::Bytes(b) => Cow::Borrowed(b),
        }
    }
}

/// Lays out `parts` one after another, each 64-byte aligned; returns their blocks.
fn layout(parts: &[Part]) -> Vec<Block> {
    let mut offset = 0u64;
    parts
        .iter()
        .map(|p| {
            let b = Block {
                offset,
                len: p.len(),
                crc32c: mask_crc32c(crc32c(&p.bytes())),
            };
            offset = align(offset + b.len);
            b
        })
        .collect()
}

/// The packed bytes of an int8 kernel, as the int8 dense layer lays them out.
fn pack_int8(in_dim: usize, out_dim: usize, values: &[i8], scales: &[f32]) -> Result<Vec<u8>> {
    let q = QuantizedKernel {
        in_dim,
        out_dim,
        values: values.to_vec(),
        scales: scales.to_vec(),
    };
    let dense = Dense::new_int8(&q, vec![0.0; out_dim]);
    dense
        .int8_packed_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::Unsupported("the int8 dense layer has no packed bytes".into()))
}

/// [`save`] for a fine-tuned classifier: `labels` (index = label id) are stored in the header.
/// Files are written as version 4 (version 3's header, which holds labels and f16/int8
/// tensors, followed by its checksum), or 5 when a kernel is packed (see
/// [`crate::weights::quantize::pack_f32`]); readers keep reading versions 1 to 3.
pub fn save_with_labels(
    path: impl AsRef<Path>,
    config: &BertConfig,
    weights: &Weights,
    vocab: &[String],
    do_lower_case: bool,
    labels: &[String],
) -> Result<()> {
    let path = path.as_ref();
    config.validate()?;
    let (encoded, parts) = header_v3(config, weights, vocab, do_lower_case, labels)?;
    let encoded =
        encoded.map_err(|e| Error::format(path, None, format!("cannot encode header: {e}")))?;
    let packed = weights
        .iter_quantized()
        .any(|(_, q)| matches!(q, QuantizedTensor::F32Packed { .. }));
    let version = if packed {
        FORMAT_VERSION_PACKED
    } else {
        FORMAT_VERSION_HEADER_CRC
    };
    write_file(path, version, &encoded, &parts)
}

type Encoded = std::result::Result<Vec<u8>, bincode::error::EncodeError>;

/// The version 3 header and the blocks it describes, in name order (an int8 tensor's scales
/// right after its values).
fn header_v3<'a>(
    config: &BertConfig,
    weights: &'a Weights,
    vocab: &[String],
    do_lower_case: bool,
    labels: &[String],
) -> Result<(Encoded, Vec<(Block, Part<'a>)>)> {
    enum Item<'a> {
        F32(&'a Tensor),
        Q(&'a QuantizedTensor),
    }
    let mut items: Vec<(&str, Item)> = weights
        .iter()
        .map(|(n, t)| (n, Item::F32(t)))
        .chain(weights.iter_quantized().map(|(n, q)| (n, Item::Q(q))))
        .collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let mut parts = Vec::new();
    let mut entries = Vec::new();
    for (name, item) in items {
        let (dtype, shape, data, scales): (u8, Vec<usize>, Part, Option<&[f32]>) = match item {
            Item::F32(t) => (DTYPE_F32, t.shape.clone(), Part::F32(&t.data), None),
            Item::Q(q) => match q {
                QuantizedTensor::F16 { shape, bytes } => (
                    DTYPE_F16,
                    shape.clone(),
                    Part::Bytes(Cow::Borrowed(bytes.as_bytes())),
                    None,
                ),
                QuantizedTensor::Int8 {
                    in_dim,
                    out_dim,
                    values,
                    scales,
                } => (
                    DTYPE_INT8_PACKED,
                    vec![*in_dim, *out_dim],
                    Part::Bytes(Cow::Owned(pack_int8(*in_dim, *out_dim, values, scales)?)),
                    Some(scales),
                ),
                QuantizedTensor::Int8Packed {
                    in_dim,
                    out_dim,
                    packed,
                    scales,
                } => (
                    DTYPE_INT8_PACKED,
                    vec![*in_dim, *out_dim],
                    Part::Bytes(Cow::Borrowed(packed.as_bytes())),
                    Some(scales),
                ),
                QuantizedTensor::Int8Rows {
                    rows,
                    cols,
                    values,
                    scales,
                } => (
                    DTYPE_INT8_ROWS,
                    vec![*rows, *cols],
                    Part::Bytes(Cow::Borrowed(values.as_bytes())),
                    Some(scales),
                ),
                QuantizedTensor::F32Packed {
                    in_dim,
                    out_dim,
                    nr,
                    kc,
                    bytes,
                } => (
                    DTYPE_F32_PACKED,
                    vec![*in_dim, *out_dim, *nr, *kc],
                    Part::Bytes(Cow::Borrowed(bytes.as_bytes())),
                    None,
                ),
                QuantizedTensor::F32Rows { rows, cols, bytes } => (
                    DTYPE_F32,
                    vec![*rows, *cols],
                    Part::Bytes(Cow::Borrowed(bytes.as_bytes())),
                    None,
                ),
            },
        };
        entries.push((name, dtype, shape, scales.is_some()));
        parts.push(data);
        if let Some(s) = scales {
            parts.push(Part::F32(s));
        }
    }
    let blocks = layout(&parts);
    let mut next = blocks.iter();
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, dtype, shape, has_scales) in entries {
        let data = *next.next().unwrap_or(&blocks[0]);
        let scales = if has_scales {
            next.next().copied()
        } else {
            None
        };
        tensors.push(EntryV3 {
            name: name.to_string(),
            dtype,
            shape: shape.iter().map(|&d| d as u64).collect(),
            data,
            scales,
        });
    }
    let header = HeaderV3 {
        config: config.clone(),
        vocab: vocab.to_vec(),
        do_lower_case,
        labels: labels.to_vec(),
        int8_layout: INT8_LAYOUT_VERSION,
        tensors,
    };
    let encoded = bincode::serde::encode_to_vec(&header, bincode_config());
    Ok((encoded, blocks.into_iter().zip(parts).collect()))
}

/// Writes magic, version, header and the blocks at their offsets through
/// [`crate::output::write_with`] (temporary file beside `path`, sync, rename).
fn write_file(path: &Path, version: u32, encoded: &[u8], parts: &[(Block, Part)]) -> Result<()> {
    crate::output::write_with(path, |out| {
        out.write_all(MAGIC)?;
        out.write_all(&version.to_le_bytes())?;
        out.write_all(&(encoded.len() as u64).to_le_bytes())?;
        out.write_all(encoded)?;
        let mut start = MAGIC.to_vec();
        start.extend_from_slice(&version.to_le_bytes());
        start.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
        start.extend_from_slice(encoded);
        out.write_all(&header_crc(&start).to_le_bytes())?;
        let header_end = (start.len() + HEADER_CRC_LEN) as u64;
        out.write_all(&vec![0u8; (align(header_end) - header_end) as usize])?;
        let mut pos = 0u64;
        for (b, part) in parts {
            out.write_all(&vec![0u8; (b.offset - pos) as usize])?;
            out.write_all(&part.bytes())?;
            pos = b.offset + b.len;
        }
        Ok(())
    })
}
