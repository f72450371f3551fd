//! The `.bert` layout: magic, format versions, the header types of each version and their
//! decoding (see the module comment of [`super`] for the byte layout).

use crate::config::BertConfig;
use crate::weights::crc32c::{crc32c, mask_crc32c};

/// First bytes of every `.bert` file.
pub const MAGIC: &[u8; 8] = b"LIBBERT\0";
/// Version of the layout above without labels; readers reject unknown versions.
pub const FORMAT_VERSION: u32 = 1;
/// Version whose header ends with the classifier's label list.
pub const FORMAT_VERSION_LABELS: u32 = 2;
/// Version with f16 and int8 tensors (`HeaderV3`).
pub const FORMAT_VERSION_QUANTIZED: u32 = 3;
/// Version 3's header followed by its checksum: what [`super::save`] writes.
pub const FORMAT_VERSION_HEADER_CRC: u32 = 4;
/// Version 4 with f32 dense kernels stored packed for the f32 micro-kernels
/// (`DTYPE_F32_PACKED`): what [`super::save`] writes when a tensor is packed. Older builds
/// refuse it by its number rather than misread the panels as a row-major kernel.
pub const FORMAT_VERSION_PACKED: u32 = 5;
/// Bytes of the header checksum that follows a version 4 header.
pub(super) const HEADER_CRC_LEN: usize = 4;
pub(super) const ALIGN: u64 = 64;
/// Largest header we decode (vocabulary of a million lines and thousands of tensors fit).
pub(super) const MAX_HEADER: usize = 64 << 20;
pub(super) const DTYPE_F32: u8 = 0;
pub(super) const DTYPE_F16: u8 = 1;
/// A dense kernel `[in, out]` in the packed int8 layout, with `[out]` scales.
pub(super) const DTYPE_INT8_PACKED: u8 = 2;
/// A table `[rows, cols]` of int8, row-major, with `[rows]` scales.
pub(super) const DTYPE_INT8_ROWS: u8 = 3;
/// A dense kernel in f32, packed: shape `[in, out, nr, kc]` (`nr`-column panels of `kc`-row
/// blocks, columns padded to a multiple of `nr`; see `QuantizedTensor::F32Packed`).
pub(super) const DTYPE_F32_PACKED: u8 = 4;

/// Versions 1 and 2.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Header {
    pub(super) config: BertConfig,
    pub(super) vocab: Vec<String>,
    pub(super) do_lower_case: bool,
    pub(super) tensors: Vec<TensorEntry>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct TensorEntry {
    pub(super) name: String,
    pub(super) dtype: u8,
    pub(super) shape: Vec<u64>,
    /// From the start of the data section.
    pub(super) offset: u64,
    /// In bytes.
    pub(super) len: u64,
    /// Masked CRC32C of the bytes.
    pub(super) crc32c: u32,
}

/// Version 3.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct HeaderV3 {
    pub(super) config: BertConfig,
    pub(super) vocab: Vec<String>,
    pub(super) do_lower_case: bool,
    /// Label names of a fine-tuned classifier (index = label id); empty for a plain model.
    pub(super) labels: Vec<String>,
    /// `INT8_LAYOUT_VERSION` of the packed int8 kernels.
    pub(super) int8_layout: u32,
    pub(super) tensors: Vec<EntryV3>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct EntryV3 {
    pub(super) name: String,
    /// `DTYPE_*`.
    pub(super) dtype: u8,
    pub(super) shape: Vec<u64>,
    pub(super) data: Block,
    /// int8: the f32 scales (`[out]` of a kernel, `[rows]` of a table); `None` otherwise.
    pub(super) scales: Option<Block>,
}

/// Bytes of the data section.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct Block {
    /// From the start of the data section.
    pub(super) offset: u64,
    /// In bytes.
    pub(super) len: u64,
    /// Masked CRC32C of the bytes.
    pub(super) crc32c: u32,
}

/// What a file holds, whatever its version.
#[derive(Debug, Clone)]
pub(super) struct Contents {
    pub(super) config: BertConfig,
    pub(super) vocab: Vec<String>,
    pub(super) do_lower_case: bool,
    pub(super) labels: Vec<String>,
    pub(super) int8_layout: u32,
    pub(super) tensors: Vec<EntryV3>,
}

pub(super) fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_HEADER>()
}

/// The masked CRC32C stored after a version 4 header: over the file's first bytes up to the
/// end of the header (magic, version, length and header), so that a flipped bit anywhere
/// before the data (a vocabulary entry, the config, the tensor table) is an error.
pub(super) fn header_crc(start_of_file: &[u8]) -> u32 {
    mask_crc32c(crc32c(start_of_file))
}

pub(super) fn align(v: u64) -> u64 {
    v.div_ceil(ALIGN) * ALIGN
}

pub(super) fn dtype_name(dtype: u8) -> &'static str {
    match dtype {
        DTYPE_F32 => "f32",
        DTYPE_F16 => "f16",
        DTYPE_INT8_PACKED => "int8 (packed kernel)",
        DTYPE_INT8_ROWS => "int8 (rows)",
        DTYPE_F32_PACKED => "f32 (packed kernel)",
        _ => "unknown",
    }
}

/// Decodes the header of `version`; returns it and the bytes used.
pub(super) fn decode_header(
    bytes: &[u8],
    version: u32,
) -> std::result::Result<(Contents, usize), String> {
    let e = |e: bincode::error::DecodeError| e.to_string();
    if version >= FORMAT_VERSION_QUANTIZED {
        let (h, used): (HeaderV3, usize) =
            bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(e)?;
        let contents = Contents {
            config: h.config,
            vocab: h.vocab,
            do_lower_case: h.do_lower_case,
            labels: h.labels,
            int8_layout: h.int8_layout,
            tensors: h.tensors,
        };
        return Ok((contents, used));
    }
    let (h, mut used): (Header, usize) =
        bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(e)?;
    let mut labels = Vec::new();
    if version == FORMAT_VERSION_LABELS {
        let (l, n): (Vec<String>, usize) =
            bincode::serde::decode_from_slice(&bytes[used..], bincode_config())
                .map_err(|x| format!("bad label list: {x}"))?;
        labels = l;
        used += n;
    }
    let tensors = h
        .tensors
        .into_iter()
        .map(|t| EntryV3 {
            name: t.name,
            dtype: t.dtype,
            shape: t.shape,
            data: Block {
                offset: t.offset,
                len: t.len,
                crc32c: t.crc32c,
            },
            scales: None,
        })
        .collect::<Vec<_>>();
    if let Some(t) = tensors.iter().find(|t| t.dtype != DTYPE_F32) {
        return Err(format!(
            "tensor {}: dtype {} in a version {version} file (only f32)",
            t.name, t.dtype
        ));
    }
    let contents = Contents {
        config: h.config,
        vocab: h.vocab,
        do_lower_case: h.do_lower_case,
        labels,
        int8_layout: 0,
        tensors,
    };
    Ok((contents, used))
}
