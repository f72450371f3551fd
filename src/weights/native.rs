//! libbert's native model file (`.bert`): one file with config, vocabulary and weights, laid
//! out so that opening it maps the file and decodes a small header without touching weights.
//!
//! Layout (little-endian):
//! ```text
//! magic    8 bytes  "LIBBERT\0"
//! version  u32      1; 2 for a fine-tuned classifier; 3 for a model with f16/int8 tensors
//! hlen     u64      length of the header
//! header   hlen     bincode 2 (standard config) of `Header`: config, vocabulary lines,
//!                   do_lower_case, tensor table (name, dtype, shape, offset, length, crc32c);
//!                   version 2 appends the classifier's label list (`Vec<String>`);
//!                   version 3 is `HeaderV3` (below)
//! padding  to a multiple of 64
//! data     tensors, each starting at a multiple of 64 from the start of the data
//! ```
//! Tensor checksums (masked CRC32C, as TF uses) are verified when weights are read.
//! [`save`] writes a temporary file, syncs it and renames it over the target (atomic).
//!
//! Version 2 exists because bincode is not self-describing: a new header field needs a new
//! version. A file without labels is still written as version 1, so older readers keep
//! reading every plain model; this reader accepts both.
//!
//! Version 3 (written only when a tensor is not f32, so f32 files stay readable by older
//! builds) holds f16 and int8 tensors ([`QuantizedTensor`]): its header carries the labels and
//! `INT8_LAYOUT_VERSION` of the packed int8 kernels, and each tensor entry a dtype
//! (0 f32, 1 f16, 2 int8 dense kernel in the packed layout of `Dense::int8_packed_bytes`,
//! 3 int8 table with per-row scales) plus, for int8, the location of its f32 scales (a small
//! block of the data section with its own checksum). Every block starts 64-byte aligned.
//! An f16 or int8 tensor is not copied when the file is opened: the model borrows its bytes
//! from the memory map ([`WeightBytes::Mapped`]), so pages are read when a layer first runs
//! (or a lookup first reads an embedding row). Its checksum is therefore not verified by
//! [`NativeModel::weights`], which would read every byte; [`NativeModel::verify`] (or
//! `ModelOptions::verify_checksums`) checks all of them. Bounds, lengths and scales are always
//! checked, so a corrupt quantized block can only change results, never read out of bounds.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::crc32c::{crc32c, mask_crc32c};
use super::{num_elements, QuantizedTensor, Tensor, Weights};
use crate::backend::cpu::Dense;
use crate::backend::int8::{QuantizedKernel, INT8_LAYOUT_VERSION};
use crate::backend::WeightBytes;
use crate::config::BertConfig;
use crate::{Error, Result};

/// First bytes of every `.bert` file.
pub const MAGIC: &[u8; 8] = b"LIBBERT\0";
/// Version of the layout above without labels; readers reject unknown versions.
pub const FORMAT_VERSION: u32 = 1;
/// Version whose header ends with the classifier's label list.
pub const FORMAT_VERSION_LABELS: u32 = 2;
/// Version with f16 and int8 tensors (`HeaderV3`).
pub const FORMAT_VERSION_QUANTIZED: u32 = 3;
const ALIGN: u64 = 64;
/// Largest header we decode (vocabulary of a million lines and thousands of tensors fit).
const MAX_HEADER: usize = 64 << 20;
const DTYPE_F32: u8 = 0;
const DTYPE_F16: u8 = 1;
/// A dense kernel `[in, out]` in the packed int8 layout, with `[out]` scales.
const DTYPE_INT8_PACKED: u8 = 2;
/// A table `[rows, cols]` of int8, row-major, with `[rows]` scales.
const DTYPE_INT8_ROWS: u8 = 3;

/// Versions 1 and 2.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Header {
    config: BertConfig,
    vocab: Vec<String>,
    do_lower_case: bool,
    tensors: Vec<TensorEntry>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct TensorEntry {
    name: String,
    dtype: u8,
    shape: Vec<u64>,
    /// From the start of the data section.
    offset: u64,
    /// In bytes.
    len: u64,
    /// Masked CRC32C of the bytes.
    crc32c: u32,
}

/// Version 3.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct HeaderV3 {
    config: BertConfig,
    vocab: Vec<String>,
    do_lower_case: bool,
    /// Label names of a fine-tuned classifier (index = label id); empty for a plain model.
    labels: Vec<String>,
    /// `INT8_LAYOUT_VERSION` of the packed int8 kernels.
    int8_layout: u32,
    tensors: Vec<EntryV3>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct EntryV3 {
    name: String,
    /// `DTYPE_*`.
    dtype: u8,
    shape: Vec<u64>,
    data: Block,
    /// int8: the f32 scales (`[out]` of a kernel, `[rows]` of a table); `None` otherwise.
    scales: Option<Block>,
}

/// Bytes of the data section.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Block {
    /// From the start of the data section.
    offset: u64,
    /// In bytes.
    len: u64,
    /// Masked CRC32C of the bytes.
    crc32c: u32,
}

/// What a file holds, whatever its version.
#[derive(Debug, Clone)]
struct Contents {
    config: BertConfig,
    vocab: Vec<String>,
    do_lower_case: bool,
    labels: Vec<String>,
    int8_layout: u32,
    tensors: Vec<EntryV3>,
}

/// An opened `.bert` file: header decoded, weights still only mapped.
#[derive(Debug)]
pub struct NativeModel {
    path: PathBuf,
    map: Storage,
    data_start: usize,
    header: Contents,
}

/// The bytes of a `.bert` image: a mapped file or an in-memory copy ([`NativeModel::from_bytes`]).
#[derive(Debug)]
enum Storage {
    /// Shared with the f16/int8 layers that borrow their weights from it.
    Map(Arc<memmap2::Mmap>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Map(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_HEADER>()
}

fn align(v: u64) -> u64 {
    v.div_ceil(ALIGN) * ALIGN
}

fn dtype_name(dtype: u8) -> &'static str {
    match dtype {
        DTYPE_F32 => "f32",
        DTYPE_F16 => "f16",
        DTYPE_INT8_PACKED => "int8 (packed kernel)",
        DTYPE_INT8_ROWS => "int8 (rows)",
        _ => "unknown",
    }
}

impl NativeModel {
    /// Maps the file and decodes the header; checks every tensor's bounds and size.
    pub fn open(path: impl AsRef<Path>) -> Result<NativeModel> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the file is opened read-only and only read through this map; like every
        // memory-mapped reader we rely on nobody truncating it while it is mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        NativeModel::parse(path, Storage::Map(Arc::new(map)))
    }

    /// Decodes a `.bert` image held in memory (e.g. shipped inside an application bundle);
    /// `name` only names the source in errors. Checks as [`NativeModel::open`] does.
    pub fn from_bytes(bytes: Vec<u8>, name: impl AsRef<Path>) -> Result<NativeModel> {
        NativeModel::parse(name.as_ref().to_path_buf(), Storage::Owned(bytes))
    }

    fn parse(path: PathBuf, map: Storage) -> Result<NativeModel> {
        let err = |t: Option<&str>, m: String| Error::format(&path, t, m);
        if map.len() < 20 || &map[..8] != MAGIC {
            return Err(err(None, "not a libbert .bert file (bad magic)".into()));
        }
        let version = u32::from_le_bytes([map[8], map[9], map[10], map[11]]);
        if !(FORMAT_VERSION..=FORMAT_VERSION_QUANTIZED).contains(&version) {
            return Err(Error::Unsupported(format!(
                "{}: .bert format version {version} (this build reads {FORMAT_VERSION} to \
                 {FORMAT_VERSION_QUANTIZED})",
                path.display()
            )));
        }
        let hlen = u64::from_le_bytes(map[12..20].try_into().unwrap_or([0xff; 8]));
        let header_end = usize::try_from(hlen)
            .ok()
            .filter(|&h| h <= MAX_HEADER)
            .and_then(|h| h.checked_add(20))
            .filter(|&e| e <= map.len())
            .ok_or_else(|| err(None, format!("header length {hlen} exceeds the file")))?;
        let bytes = &map[20..header_end];
        let (header, used) =
            decode_header(bytes, version).map_err(|e| err(None, format!("bad header: {e}")))?;
        if used != header_end - 20 {
            return Err(err(
                None,
                "header length does not match its contents".into(),
            ));
        }
        header.config.validate()?;
        let data_start = align(header_end as u64) as usize;
        let data_len = (map.len() as u64).saturating_sub(data_start as u64);
        let mut packed = false;
        for t in &header.tensors {
            let name = Some(t.name.as_str());
            let shape: Vec<usize> = t
                .shape
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<_>>()
                .ok_or_else(|| err(name, "dimension too large".into()))?;
            let n = num_elements(&shape).ok_or_else(|| err(name, "shape overflows".into()))?;
            let (bytes, scales) = match (t.dtype, &shape[..]) {
                (DTYPE_F32, _) => (n.checked_mul(4), None),
                (DTYPE_F16, _) => (n.checked_mul(2), None),
                (DTYPE_INT8_ROWS, &[rows, _]) => (Some(n), Some(rows)),
                // The exact packed length is checked by `Dense::from_int8_packed`.
                (DTYPE_INT8_PACKED, &[_, out]) => {
                    packed = true;
                    if t.data.len < n as u64 {
                        return Err(err(
                            name,
                            format!("{} bytes cannot hold int8 {shape:?}", t.data.len),
                        ));
                    }
                    (None, Some(out))
                }
                (DTYPE_INT8_ROWS | DTYPE_INT8_PACKED, _) => {
                    return Err(err(name, format!("int8 tensor of shape {shape:?}")))
                }
                (d, _) => return Err(err(name, format!("unknown dtype {d}"))),
            };
            if let Some(b) = bytes {
                if b as u64 != t.data.len {
                    return Err(err(
                        name,
                        format!(
                            "{} bytes do not hold {} {shape:?}",
                            t.data.len,
                            dtype_name(t.dtype)
                        ),
                    ));
                }
            }
            let mut blocks = vec![t.data];
            match (scales, t.scales) {
                (None, None) => {}
                (Some(count), Some(s)) if Some(s.len) == (count as u64).checked_mul(4) => {
                    blocks.push(s)
                }
                (Some(count), Some(s)) => {
                    return Err(err(
                        name,
                        format!("{} bytes of scales for {count} f32 scales", s.len),
                    ))
                }
                (Some(_), None) => return Err(err(name, "int8 tensor without scales".into())),
                (None, Some(_)) => {
                    return Err(err(
                        name,
                        format!("{} tensor with scales", dtype_name(t.dtype)),
                    ))
                }
            }
            for b in blocks {
                if b.offset.checked_add(b.len).map_or(true, |e| e > data_len) {
                    return Err(err(
                        name,
                        format!("bytes {}..+{} lie outside the data", b.offset, b.len),
                    ));
                }
            }
        }
        if packed && header.int8_layout != INT8_LAYOUT_VERSION {
            return Err(Error::Unsupported(format!(
                "{}: int8 kernels packed in layout version {} (this build reads \
                 {INT8_LAYOUT_VERSION}): convert the model again",
                path.display(),
                header.int8_layout
            )));
        }
        Ok(NativeModel {
            path,
            map,
            data_start,
            header,
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.header.config
    }

    /// Vocabulary lines (line number = id), as in `vocab.txt`; may be empty.
    pub fn vocab(&self) -> &[String] {
        &self.header.vocab
    }

    pub fn do_lower_case(&self) -> bool {
        self.header.do_lower_case
    }

    /// Label names of a fine-tuned classifier (index = label id); empty for a plain model.
    pub fn labels(&self) -> &[String] {
        &self.header.labels
    }

    /// Whether any tensor is stored as f16 or int8 (format version 3).
    pub fn is_quantized(&self) -> bool {
        self.header.tensors.iter().any(|t| t.dtype != DTYPE_F32)
    }

    /// The bytes of a block (bounds were checked in `parse`).
    fn block(&self, b: &Block) -> &[u8] {
        let start = self.data_start + b.offset as usize;
        &self.map[start..start + b.len as usize]
    }

    /// Reads a block, verifying its checksum.
    fn checked(&self, name: &str, b: &Block) -> Result<&[u8]> {
        let raw = self.block(b);
        if mask_crc32c(crc32c(raw)) != b.crc32c {
            return Err(Error::format(
                &self.path,
                Some(name),
                "CRC32C mismatch (corrupt data)",
            ));
        }
        Ok(raw)
    }

    /// A block as weight bytes: borrowed from the map (nothing read), or copied from an
    /// in-memory image.
    fn weight_bytes(&self, b: &Block) -> WeightBytes {
        match &self.map {
            Storage::Map(map) => WeightBytes::Mapped {
                map: Arc::clone(map),
                offset: self.data_start + b.offset as usize,
                len: b.len as usize,
            },
            Storage::Owned(_) => WeightBytes::Owned(self.block(b).to_vec()),
        }
    }

    /// Verifies every checksum, the f16/int8 blocks included (reads the whole file).
    pub fn verify(&self) -> Result<()> {
        for t in &self.header.tensors {
            self.checked(&t.name, &t.data)?;
            if let Some(s) = &t.scales {
                self.checked(&t.name, s)?;
            }
        }
        Ok(())
    }

    /// The tensors as [`Weights`]: f32 tensors are read (checksum verified); f16 and int8
    /// tensors borrow their bytes from the memory map (see the module comment; their small
    /// scale blocks are read and verified).
    pub fn weights(&self) -> Result<Weights> {
        let mut w = Weights::new();
        for t in &self.header.tensors {
            // Shapes and bounds were checked in `parse`.
            let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
            let scales = match &t.scales {
                Some(s) => f32s(self.checked(&t.name, s)?),
                None => Vec::new(),
            };
            let q = match t.dtype {
                DTYPE_F32 => {
                    let data = f32s(self.checked(&t.name, &t.data)?);
                    w.insert(t.name.clone(), Tensor { shape, data });
                    continue;
                }
                DTYPE_F16 => QuantizedTensor::F16 {
                    shape,
                    bytes: self.weight_bytes(&t.data),
                },
                DTYPE_INT8_PACKED => QuantizedTensor::Int8Packed {
                    in_dim: shape[0],
                    out_dim: shape[1],
                    packed: self.weight_bytes(&t.data),
                    scales,
                },
                _ => QuantizedTensor::Int8Rows {
                    rows: shape[0],
                    cols: shape[1],
                    values: self.weight_bytes(&t.data),
                    scales,
                },
            };
            w.insert_quantized(t.name.clone(), q)
                .map_err(|e| Error::format(&self.path, Some(&t.name), e.to_string()))?;
        }
        Ok(w)
    }
}

fn f32s(raw: &[u8]) -> Vec<f32> {
    let n = raw.len() / 4;
    if cfg!(target_endian = "little") {
        // The stored little-endian floats are the in-memory ones: one bulk copy instead of a
        // per-element decode (16% of opening a BERT-base `.bert` went to that loop).
        let mut v = Vec::<f32>::with_capacity(n);
        // SAFETY: `v` has capacity for `n` floats (`4n` bytes, all read from `raw`, which has
        // at least that many); every bit pattern is a valid f32; the regions are distinct.
        unsafe {
            std::ptr::copy_nonoverlapping(raw.as_ptr(), v.as_mut_ptr().cast::<u8>(), 4 * n);
            v.set_len(n);
        }
        return v;
    }
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Decodes the header of `version`; returns it and the bytes used.
fn decode_header(bytes: &[u8], version: u32) -> std::result::Result<(Contents, usize), String> {
    let e = |e: bincode::error::DecodeError| e.to_string();
    if version == FORMAT_VERSION_QUANTIZED {
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

/// Whether `path` is a file that starts with the `.bert` magic (whatever its extension).
pub fn is_native_file(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && &magic == MAGIC
}

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

/// [`save`] for a fine-tuned classifier: `labels` (index = label id) are stored in a version 2
/// header; with no labels the file is version 1, byte for byte what [`save`] writes. Weights
/// with f16 or int8 tensors are written as version 3 (labels included).
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
    let encode_err = |e: bincode::error::EncodeError| {
        Error::format(path, None, format!("cannot encode header: {e}"))
    };
    if weights.iter_quantized().next().is_some() {
        let (encoded, parts) = header_v3(config, weights, vocab, do_lower_case, labels)?;
        let encoded = encoded.map_err(encode_err)?;
        return write_file(path, FORMAT_VERSION_QUANTIZED, &encoded, &parts);
    }
    let parts: Vec<Part> = weights.iter().map(|(_, t)| Part::F32(&t.data)).collect();
    let blocks = layout(&parts);
    let tensors = weights
        .iter()
        .zip(&blocks)
        .map(|((name, t), b)| TensorEntry {
            name: name.to_string(),
            dtype: DTYPE_F32,
            shape: t.shape.iter().map(|&d| d as u64).collect(),
            offset: b.offset,
            len: b.len,
            crc32c: b.crc32c,
        })
        .collect();
    let header = Header {
        config: config.clone(),
        vocab: vocab.to_vec(),
        do_lower_case,
        tensors,
    };
    let mut encoded =
        bincode::serde::encode_to_vec(&header, bincode_config()).map_err(encode_err)?;
    let version = if labels.is_empty() {
        FORMAT_VERSION
    } else {
        let more = bincode::serde::encode_to_vec(labels, bincode_config())
            .map_err(|e| Error::format(path, None, format!("cannot encode labels: {e}")))?;
        encoded.extend_from_slice(&more);
        FORMAT_VERSION_LABELS
    };
    let placed: Vec<(Block, Part)> = blocks.into_iter().zip(parts).collect();
    write_file(path, version, &encoded, &placed)
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

/// Writes magic, version, header and the blocks at their offsets to a temporary file beside
/// `path`, syncs it and renames it over `path`.
fn write_file(path: &Path, version: u32, encoded: &[u8], parts: &[(Block, Part)]) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let io = |e| Error::io(&tmp, e);
    let write = || -> Result<()> {
        let file = File::create(&tmp).map_err(io)?;
        let mut out = std::io::BufWriter::new(file);
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&version.to_le_bytes()).map_err(io)?;
        out.write_all(&(encoded.len() as u64).to_le_bytes())
            .map_err(io)?;
        out.write_all(encoded).map_err(io)?;
        let header_end = 20 + encoded.len() as u64;
        let mut pos = 0u64;
        out.write_all(&vec![0u8; (align(header_end) - header_end) as usize])
            .map_err(io)?;
        for (b, part) in parts {
            out.write_all(&vec![0u8; (b.offset - pos) as usize])
                .map_err(io)?;
            out.write_all(&part.bytes()).map_err(io)?;
            pos = b.offset + b.len;
        }
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    // Make the rename durable too (best effort: not every platform can sync a directory).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
