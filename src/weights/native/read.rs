//! Opening a `.bert` file: map it, decode and check the header, hand out the weights.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    align, decode_header, dtype_name, header_crc, Block, Contents, DTYPE_F16, DTYPE_F32,
    DTYPE_F32_PACKED, DTYPE_INT8_PACKED, DTYPE_INT8_ROWS, FORMAT_VERSION,
    FORMAT_VERSION_HEADER_CRC, FORMAT_VERSION_PACKED, HEADER_CRC_LEN, MAGIC, MAX_HEADER,
};
use crate::backend::int8::INT8_LAYOUT_VERSION;
use crate::backend::WeightBytes;
use crate::config::BertConfig;
use crate::weights::crc32c::{crc32c, mask_crc32c};
use crate::weights::{check_finite, num_elements, QuantizedTensor, Tensor, Weights};
use crate::{Error, Result};

/// An opened `.bert` file: header decoded, weights still only mapped ([`NativeModel::open`])
/// or read into memory ([`NativeModel::read`]).
#[derive(Debug)]
pub struct NativeModel {
    path: PathBuf,
    map: Storage,
    data_start: usize,
    header: Contents,
}

/// The bytes of a `.bert` image: a mapped file or an in-memory copy ([`NativeModel::read`],
/// [`NativeModel::from_bytes`]).
#[derive(Debug)]
enum Storage {
    /// Shared with the f16/int8 layers that borrow their weights from it; the file is kept to
    /// tell whether it was truncated since it was mapped.
    Map(Arc<memmap2::Mmap>, File),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Map(m, _) => m,
            Storage::Owned(v) => v,
        }
    }
}

impl NativeModel {
    /// Maps the file and decodes the header; checks every tensor's bounds and size.
    ///
    /// The file must not change while it is mapped (by the returned value or by a model
    /// built from its f16/int8 weights): replace a `.bert` file by renaming a new one over it,
    /// as every libbert writer does ([`crate::output`]); the old inode stays valid for whoever
    /// has it open. Overwriting it in place (`cp new.bert model.bert`, `truncate`) changes the
    /// weights under a running model, and reading a page that truncation removed is a `SIGBUS`
    /// that no library can turn into an error without a process-wide signal handler. Where
    /// files may be rewritten in place, use [`NativeModel::read`]. A truncation between this
    /// call and [`NativeModel::weights`] or [`NativeModel::verify`] is found there (an error).
    pub fn open(path: impl AsRef<Path>) -> Result<NativeModel> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the file is opened read-only and only read through this map. Its contents
        // must not change while mapped: the contract documented above (replace by rename);
        // a shrinking file is detected before each read of the weights (`check_length`).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        NativeModel::parse(path, Storage::Map(Arc::new(map), file))
    }

    /// Reads the whole file into memory and decodes it: nothing refers to the file
    /// afterwards, so it may be overwritten, truncated or removed while the model runs. Costs
    /// the read of every byte at load (and, while the weights are built, twice the f16/int8
    /// weights' size in memory) where [`NativeModel::open`] maps pages as layers first use
    /// them and shares them between processes.
    pub fn read(path: impl AsRef<Path>) -> Result<NativeModel> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        NativeModel::parse(path.to_path_buf(), Storage::Owned(bytes))
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
        if !(FORMAT_VERSION..=FORMAT_VERSION_PACKED).contains(&version) {
            return Err(Error::Unsupported(format!(
                "{}: .bert format version {version} (this build reads {FORMAT_VERSION} to \
                 {FORMAT_VERSION_PACKED})",
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
        let mut data_from = header_end;
        if version >= FORMAT_VERSION_HEADER_CRC {
            let stored = map
                .get(header_end..header_end + HEADER_CRC_LEN)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| err(None, "the file ends before the header checksum".into()))?;
            if header_crc(&map[..header_end]) != stored {
                return Err(err(
                    None,
                    "header CRC32C mismatch: the header (config, vocabulary, labels, tensor \
                     table) is corrupt"
                        .into(),
                ));
            }
            data_from += HEADER_CRC_LEN;
        }
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
        let data_start = align(data_from as u64) as usize;
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
            // A packed kernel's shape also names its panel layout: not a product of sizes.
            let n = match t.dtype {
                DTYPE_F32_PACKED => 0,
                _ => num_elements(&shape).ok_or_else(|| err(name, "shape overflows".into()))?,
            };
            let (bytes, scales) = match (t.dtype, &shape[..]) {
                (DTYPE_F32_PACKED, &[k, n, nr, kc]) if nr > 0 && kc > 0 => (
                    crate::backend::cpu::packed_f32_len(k, n, nr).and_then(|l| l.checked_mul(4)),
                    None,
                ),
                (DTYPE_F32_PACKED, _) => {
                    return Err(err(name, format!("packed f32 kernel of shape {shape:?}")))
                }
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
        self.header
            .tensors
            .iter()
            .any(|t| !matches!(t.dtype, DTYPE_F32 | DTYPE_F32_PACKED))
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
            Storage::Map(map, _) => WeightBytes::Mapped {
                map: Arc::clone(map),
                offset: self.data_start + b.offset as usize,
                len: b.len as usize,
            },
            Storage::Owned(_) => WeightBytes::Owned(self.block(b).to_vec()),
        }
    }

    /// An error if the mapped file is now shorter than its map: reading the missing pages
    /// would be a `SIGBUS` (see [`NativeModel::open`]).
    fn check_length(&self) -> Result<()> {
        if let Storage::Map(map, file) = &self.map {
            let now = file.metadata().map_err(|e| Error::io(&self.path, e))?.len();
            if now < map.len() as u64 {
                return Err(Error::format(
                    &self.path,
                    None,
                    format!(
                        "truncated to {now} of {} bytes after it was opened: a .bert file in \
                         use must be replaced by renaming a new file over it, never rewritten \
                         in place",
                        map.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Verifies every checksum, the f16/int8 blocks included (reads the whole file).
    pub fn verify(&self) -> Result<()> {
        self.check_length()?;
        for t in &self.header.tensors {
            self.checked(&t.name, &t.data)?;
            if let Some(s) = &t.scales {
                self.checked(&t.name, s)?;
            }
        }
        Ok(())
    }

    /// The tensors as [`Weights`] in Google's layout, as training, conversion and export
    /// want them: f32 tensors are read (checksum verified), packed f32 kernels unpacked (and
    /// a fused `qkv` split back into query, key and value); f16 and int8 tensors borrow their
    /// bytes from the memory map (see the module comment; their small scale blocks are read
    /// and verified).
    pub fn weights(&self) -> Result<Weights> {
        let w = self.tensors(false)?;
        if self
            .header
            .tensors
            .iter()
            .any(|t| t.dtype == DTYPE_F32_PACKED)
        {
            return crate::weights::quantize::convert(w, self.config(), crate::weights::DType::F32);
        }
        Ok(w)
    }

    /// The tensors for inference, copying nothing large: packed f32 kernels and the f32 word
    /// embeddings stay in the memory map like f16 and int8 tensors (their checksums are not
    /// verified: [`NativeModel::verify`] does that), so that building a model reads no weight
    /// and a packed model starts at once. Other f32 tensors are read as by
    /// [`NativeModel::weights`].
    pub fn weights_mapped(&self) -> Result<Weights> {
        self.tensors(true)
    }

    fn tensors(&self, mapped: bool) -> Result<Weights> {
        self.check_length()?;
        let mut w = Weights::new();
        for t in &self.header.tensors {
            // Shapes and bounds were checked in `parse`.
            let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
            let scales = match &t.scales {
                Some(s) => f32s(self.checked(&t.name, s)?),
                None => Vec::new(),
            };
            let q = match t.dtype {
                DTYPE_F32 if mapped && t.name == WORD_EMBEDDINGS && shape.len() == 2 => {
                    QuantizedTensor::F32Rows {
                        rows: shape[0],
                        cols: shape[1],
                        bytes: self.weight_bytes(&t.data),
                    }
                }
                DTYPE_F32 => {
                    let data = f32s(self.checked(&t.name, &t.data)?);
                    check_finite(&self.path, &t.name, &data)?;
                    w.insert(t.name.clone(), Tensor { shape, data });
                    continue;
                }
                DTYPE_F32_PACKED => QuantizedTensor::F32Packed {
                    in_dim: shape[0],
                    out_dim: shape[1],
                    nr: shape[2],
                    kc: shape[3],
                    bytes: if mapped {
                        self.weight_bytes(&t.data)
                    } else {
                        WeightBytes::Owned(self.checked(&t.name, &t.data)?.to_vec())
                    },
                },
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
        crate::weights::check_layers(self.config(), &w)?;
        Ok(w)
    }
}

/// The one f32 table an inference model reads row by row (and the largest f32 tensor).
const WORD_EMBEDDINGS: &str = "bert/embeddings/word_embeddings";

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
