//! libbert's native model file (`.bert`): one file with config, vocabulary and weights, laid
//! out so that opening it maps the file and decodes a small header without touching weights.
//!
//! Layout (little-endian):
//! ```text
//! magic    8 bytes  "LIBBERT\0"
//! version  u32      1, or 2 for a fine-tuned classifier (see below)
//! hlen     u64      length of the header
//! header   hlen     bincode 2 (standard config) of `Header`: config, vocabulary lines,
//!                   do_lower_case, tensor table (name, dtype, shape, offset, length, crc32c);
//!                   version 2 appends the classifier's label list (`Vec<String>`)
//! padding  to a multiple of 64
//! data     tensors, each starting at a multiple of 64 from the start of the data
//! ```
//! Tensor checksums (masked CRC32C, as TF uses) are verified when weights are read.
//! [`save`] writes a temporary file, syncs it and renames it over the target (atomic).
//!
//! Version 2 exists because bincode is not self-describing: a new header field needs a new
//! version. A file without labels is still written as version 1, so older readers keep
//! reading every plain model; this reader accepts both.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::crc32c::{crc32c, mask_crc32c};
use super::{num_elements, Tensor, Weights};
use crate::config::BertConfig;
use crate::{Error, Result};

/// First bytes of every `.bert` file.
pub const MAGIC: &[u8; 8] = b"LIBBERT\0";
/// Version of the layout above without labels; readers reject unknown versions.
pub const FORMAT_VERSION: u32 = 1;
/// Version whose header ends with the classifier's label list.
pub const FORMAT_VERSION_LABELS: u32 = 2;
const ALIGN: u64 = 64;
/// Largest header we decode (vocabulary of a million lines and thousands of tensors fit).
const MAX_HEADER: usize = 64 << 20;
const DTYPE_F32: u8 = 0;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Header {
    config: BertConfig,
    vocab: Vec<String>,
    do_lower_case: bool,
    tensors: Vec<TensorEntry>,
    /// Version 2 only (empty for version 1): label names, index = label id.
    #[serde(skip)]
    labels: Vec<String>,
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

/// An opened `.bert` file: header decoded, weights still only mapped.
#[derive(Debug)]
pub struct NativeModel {
    path: PathBuf,
    map: Storage,
    data_start: usize,
    header: Header,
}

/// The bytes of a `.bert` image: a mapped file or an in-memory copy ([`NativeModel::from_bytes`]).
#[derive(Debug)]
enum Storage {
    Map(memmap2::Mmap),
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

impl NativeModel {
    /// Maps the file and decodes the header; checks every tensor's bounds and size.
    pub fn open(path: impl AsRef<Path>) -> Result<NativeModel> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the file is opened read-only and only read through this map; like every
        // memory-mapped reader we rely on nobody truncating it while it is mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        NativeModel::parse(path, Storage::Map(map))
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
        if version != FORMAT_VERSION && version != FORMAT_VERSION_LABELS {
            return Err(Error::Unsupported(format!(
                "{}: .bert format version {version} (this build reads {FORMAT_VERSION} and \
                 {FORMAT_VERSION_LABELS})",
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
        let (mut header, mut used): (Header, usize) =
            bincode::serde::decode_from_slice(bytes, bincode_config())
                .map_err(|e| err(None, format!("bad header: {e}")))?;
        if version == FORMAT_VERSION_LABELS {
            let (labels, n): (Vec<String>, usize) =
                bincode::serde::decode_from_slice(&bytes[used..], bincode_config())
                    .map_err(|e| err(None, format!("bad label list: {e}")))?;
            header.labels = labels;
            used += n;
        }
        if used != header_end - 20 {
            return Err(err(
                None,
                "header length does not match its contents".into(),
            ));
        }
        header.config.validate()?;
        let data_start = align(header_end as u64) as usize;
        let data_len = (map.len() as u64).saturating_sub(data_start as u64);
        for t in &header.tensors {
            let shape: Vec<usize> = t
                .shape
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<_>>()
                .ok_or_else(|| err(Some(&t.name), "dimension too large".into()))?;
            let bytes = num_elements(&shape).and_then(|n| n.checked_mul(4));
            if t.dtype != DTYPE_F32 {
                return Err(err(Some(&t.name), format!("unknown dtype {}", t.dtype)));
            }
            if bytes.map(|b| b as u64) != Some(t.len) {
                return Err(err(
                    Some(&t.name),
                    format!("{} bytes do not hold f32 {shape:?}", t.len),
                ));
            }
            if t.offset.checked_add(t.len).map_or(true, |e| e > data_len) {
                return Err(err(
                    Some(&t.name),
                    format!("bytes {}..+{} lie outside the data", t.offset, t.len),
                ));
            }
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

    /// Reads every tensor (verifying its checksum) into [`Weights`].
    pub fn weights(&self) -> Result<Weights> {
        let mut w = Weights::new();
        for t in &self.header.tensors {
            // Bounds were checked in `open`.
            let start = self.data_start + t.offset as usize;
            let raw = &self.map[start..start + t.len as usize];
            if mask_crc32c(crc32c(raw)) != t.crc32c {
                return Err(Error::format(
                    &self.path,
                    Some(&t.name),
                    "CRC32C mismatch (corrupt data)",
                ));
            }
            let data = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let shape = t.shape.iter().map(|&d| d as usize).collect();
            w.insert(t.name.clone(), Tensor { shape, data });
        }
        Ok(w)
    }
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

/// [`save`] for a fine-tuned classifier: `labels` (index = label id) are stored in a version 2
/// header; with no labels the file is version 1, byte for byte what [`save`] writes.
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
    let mut tensors = Vec::with_capacity(weights.len());
    let mut offset = 0u64;
    for (name, t) in weights.iter() {
        let len = t.data.len() as u64 * 4;
        tensors.push(TensorEntry {
            name: name.to_string(),
            dtype: DTYPE_F32,
            shape: t.shape.iter().map(|&d| d as u64).collect(),
            offset,
            len,
            crc32c: 0,
        });
        offset = align(offset + len);
    }
    let mut bytes_of = Vec::new();
    for ((_, t), e) in weights.iter().zip(&mut tensors) {
        bytes_of.clear();
        bytes_of.extend(t.data.iter().flat_map(|v| v.to_le_bytes()));
        e.crc32c = mask_crc32c(crc32c(&bytes_of));
    }
    let header = Header {
        config: config.clone(),
        vocab: vocab.to_vec(),
        do_lower_case,
        tensors,
        labels: Vec::new(),
    };
    let mut encoded = bincode::serde::encode_to_vec(&header, bincode_config())
        .map_err(|e| Error::format(path, None, format!("cannot encode header: {e}")))?;
    let version = if labels.is_empty() {
        FORMAT_VERSION
    } else {
        let more = bincode::serde::encode_to_vec(labels, bincode_config())
            .map_err(|e| Error::format(path, None, format!("cannot encode labels: {e}")))?;
        encoded.extend_from_slice(&more);
        FORMAT_VERSION_LABELS
    };

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
        out.write_all(&encoded).map_err(io)?;
        let header_end = 20 + encoded.len() as u64;
        let mut pos = 0u64;
        out.write_all(&vec![0u8; (align(header_end) - header_end) as usize])
            .map_err(io)?;
        for ((_, t), e) in weights.iter().zip(&header.tensors) {
            out.write_all(&vec![0u8; (e.offset - pos) as usize])
                .map_err(io)?;
            for v in &t.data {
                out.write_all(&v.to_le_bytes()).map_err(io)?;
            }
            pos = e.offset + e.len;
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
