//! Google TensorFlow "V2" checkpoints (`bert_model.ckpt.index` + `.data-SSSSS-of-NNNNN`), the
//! format of every released BERT checkpoint, read without TensorFlow.
//!
//! The `.index` file is an SSTable (LevelDB table format) mapping variable names to
//! `BundleEntryProto`s; the empty key holds the `BundleHeaderProto`. Each entry says where the
//! tensor's bytes lie in which data shard and carries their masked CRC32C. Every handle, offset
//! and size is checked against the file lengths before it is used, and every block and tensor
//! checksum is verified.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::crc32c::{crc32c_extend, mask_crc32c};
use super::proto::{read_varint, Field, Reader};
use super::{num_elements, Tensor, Weights};
use crate::{Error, Result};

const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER_LEN: usize = 48;
const BLOCK_TRAILER_LEN: usize = 5;
/// TensorFlow's `DT_FLOAT`.
const DT_FLOAT: u64 = 1;
/// More shards than any real checkpoint; bounds what a lying header can make us open.
const MAX_SHARDS: u64 = 4096;

/// Resolves what the caller named to the checkpoint prefix (`.../bert_model.ckpt`): the prefix
/// itself, its `.index` file, or a directory (through its `checkpoint` file, else
/// `bert_model.ckpt`).
pub fn resolve_prefix(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let state = path.join("checkpoint");
        if let Ok(text) = std::fs::read_to_string(&state) {
            for line in text.lines() {
                if let Some(rest) = line.trim().strip_prefix("model_checkpoint_path:") {
                    let name = rest.trim().trim_matches('"');
                    let p = Path::new(name);
                    let prefix = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        path.join(p)
                    };
                    if index_path(&prefix).is_file() {
                        return Ok(prefix);
                    }
                    // Saver writes absolute paths of the machine that trained; fall back to
                    // the file name beside the `checkpoint` file.
                    if let Some(file) = p.file_name() {
                        let local = path.join(file);
                        if index_path(&local).is_file() {
                            return Ok(local);
                        }
                    }
                }
            }
        }
        let prefix = path.join("bert_model.ckpt");
        if index_path(&prefix).is_file() {
            return Ok(prefix);
        }
        return Err(Error::format(
            path,
            None,
            "no TF checkpoint here (no usable `checkpoint` file, no bert_model.ckpt.index)",
        ));
    }
    let s = path.as_os_str().to_string_lossy();
    if let Some(prefix) = s.strip_suffix(".index") {
        return Ok(PathBuf::from(prefix));
    }
    Ok(path.to_path_buf())
}

fn index_path(prefix: &Path) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".index");
    PathBuf::from(s)
}

/// Loads every f32 tensor of a TF checkpoint under its variable name. Optimizer slots
/// (`.../adam_m`, `.../adam_v`) are skipped (they are not model weights and would triple the
/// memory); non-f32 tensors (e.g. `global_step`) are recorded as unsupported, so asking for
/// one names it.
pub fn load(path: impl AsRef<Path>) -> Result<Weights> {
    let prefix = resolve_prefix(path.as_ref())?;
    let index_file = index_path(&prefix);
    let index = std::fs::read(&index_file).map_err(|e| Error::io(&index_file, e))?;
    let entries = read_table(&index, &index_file)?;

    let mut header: Option<Header> = None;
    let mut parsed = Vec::with_capacity(entries.len());
    for (key, value) in &entries {
        if key.is_empty() {
            header = Some(parse_header(value).map_err(|m| Error::format(&index_file, None, m))?);
            continue;
        }
        let name = std::str::from_utf8(key)
            .map_err(|_| Error::format(&index_file, None, "variable name is not UTF-8"))?;
        let entry = parse_entry(value).map_err(|m| Error::format(&index_file, Some(name), m))?;
        parsed.push((name.to_owned(), entry));
    }
    let header =
        header.ok_or_else(|| Error::format(&index_file, None, "no bundle header (empty key)"))?;
    if header.endianness != 0 {
        return Err(Error::Unsupported(format!(
            "{}: big-endian checkpoints",
            index_file.display()
        )));
    }

    let mut shards: Vec<Option<(PathBuf, memmap2::Mmap)>> =
        (0..header.num_shards).map(|_| None).collect();
    let mut weights = Weights::new();
    for (name, e) in parsed {
        if name.ends_with("/adam_m") || name.ends_with("/adam_v") {
            continue;
        }
        if e.dtype != DT_FLOAT {
            weights.insert_unsupported(
                &name,
                format!("dtype {} (only float32 is supported)", dtype_name(e.dtype)),
            );
            continue;
        }
        if e.has_slices {
            return Err(Error::Unsupported(format!(
                "tensor {name}: partitioned (sliced) variables"
            )));
        }
        let fmt = |m: String| Error::format(&index_file, Some(&name), m);
        let shard = usize::try_from(e.shard_id)
            .ok()
            .filter(|&s| s < shards.len())
            .ok_or_else(|| {
                fmt(format!(
                    "shard {} of {} does not exist",
                    e.shard_id, header.num_shards
                ))
            })?;
        let shape = e.shape.clone();
        let count =
            num_elements(&shape).ok_or_else(|| fmt(format!("shape {shape:?} overflows")))?;
        let bytes = count
            .checked_mul(4)
            .ok_or_else(|| fmt(format!("shape {shape:?} overflows")))?;
        if e.size != bytes as u64 {
            return Err(fmt(format!(
                "size {} bytes does not match shape {shape:?} of float32",
                e.size
            )));
        }
        if shards[shard].is_none() {
            let data_path = PathBuf::from(format!(
                "{}.data-{:05}-of-{:05}",
                prefix.display(),
                shard,
                header.num_shards
            ));
            let file = File::open(&data_path).map_err(|err| Error::io(&data_path, err))?;
            // SAFETY: the file is opened read-only and only read through this map; like every
            // memory-mapped reader we rely on nobody truncating it while it is mapped.
            let map =
                unsafe { memmap2::Mmap::map(&file) }.map_err(|err| Error::io(&data_path, err))?;
            shards[shard] = Some((data_path, map));
        }
        let Some((data_path, map)) = shards[shard].as_ref() else {
            continue;
        };
        let start = usize::try_from(e.offset).ok();
        let end = start.and_then(|s| s.checked_add(bytes));
        let raw = match (start, end) {
            (Some(s), Some(t)) if t <= map.len() => &map[s..t],
            _ => {
                return Err(Error::format(
                    data_path,
                    Some(&name),
                    format!(
                        "bytes {}..+{} lie outside the file ({} bytes)",
                        e.offset,
                        e.size,
                        map.len()
                    ),
                ))
            }
        };
        if mask_crc32c(crc32c_extend(0, raw)) != e.crc32c {
            return Err(Error::format(
                data_path,
                Some(&name),
                "CRC32C mismatch (corrupt data)",
            ));
        }
        let data: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        super::check_finite(data_path, &name, &data)?;
        weights.insert(name, Tensor { shape, data });
    }
    Ok(weights)
}

struct Header {
    num_shards: u64,
    endianness: u64,
}

#[derive(Debug)]
struct Entry {
    dtype: u64,
    shape: Vec<usize>,
    shard_id: u64,
    offset: u64,
    size: u64,
    crc32c: u32,
    has_slices: bool,
}

fn parse_header(buf: &[u8]) -> std::result::Result<Header, String> {
    let mut h = Header {
        num_shards: 1,
        endianness: 0,
    };
    for f in Reader::new(buf) {
        match f.map_err(|_| "malformed bundle header".to_string())? {
            (1, Field::Varint(v)) => h.num_shards = v,
            (2, Field::Varint(v)) => h.endianness = v,
            _ => {}
        }
    }
    if h.num_shards == 0 || h.num_shards > MAX_SHARDS {
        return Err(format!(
            "bundle header: implausible num_shards {}",
            h.num_shards
        ));
    }
    Ok(h)
}

fn parse_entry(buf: &[u8]) -> std::result::Result<Entry, String> {
    let bad = || "malformed BundleEntryProto".to_string();
    let mut e = Entry {
        dtype: 0,
        shape: Vec::new(),
        shard_id: 0,
        offset: 0,
        size: 0,
        crc32c: 0,
        has_slices: false,
    };
    let mut has_crc = false;
    for f in Reader::new(buf) {
        match f.map_err(|_| bad())? {
            (1, Field::Varint(v)) => e.dtype = v,
            (2, Field::Bytes(shape)) => e.shape = parse_shape(shape)?,
            (3, Field::Varint(v)) => e.shard_id = v,
            (4, Field::Varint(v)) => e.offset = v,
            (5, Field::Varint(v)) => e.size = v,
            (6, Field::Fixed32(v)) => {
                e.crc32c = v;
                has_crc = true;
            }
            (7, _) => e.has_slices = true,
            _ => {}
        }
    }
    if !has_crc && e.size > 0 {
        return Err("entry has no checksum".into());
    }
    Ok(e)
}

/// `TensorShapeProto { repeated Dim dim = 2; bool unknown_rank = 3; }`, `Dim { int64 size = 1 }`.
fn parse_shape(buf: &[u8]) -> std::result::Result<Vec<usize>, String> {
    let bad = || "malformed TensorShapeProto".to_string();
    let mut dims = Vec::new();
    for f in Reader::new(buf) {
        match f.map_err(|_| bad())? {
            (2, Field::Bytes(dim)) => {
                let mut size = 0i64;
                for g in Reader::new(dim) {
                    if let (1, Field::Varint(v)) = g.map_err(|_| bad())? {
                        size = v as i64;
                    }
                }
                let size =
                    usize::try_from(size).map_err(|_| format!("negative dimension {size}"))?;
                dims.push(size);
            }
            (3, Field::Varint(v)) if v != 0 => return Err("unknown rank".into()),
            _ => {}
        }
    }
    Ok(dims)
}

fn dtype_name(dtype: u64) -> String {
    match dtype {
        1 => "float32".into(),
        2 => "float64".into(),
        3 => "int32".into(),
        9 => "int64".into(),
        14 => "bfloat16".into(),
        19 => "float16".into(),
        other => format!("#{other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// SSTable (LevelDB table format)

/// One table entry: key bytes, value bytes.
type KeyValue = (Vec<u8>, Vec<u8>);

/// Every (key, value) of the table, in order.
fn read_table(file: &[u8], path: &Path) -> Result<Vec<KeyValue>> {
    let err = |m: &str| Error::format(path, None, m.to_string());
    if file.len() < FOOTER_LEN {
        return Err(err("too short for an SSTable footer"));
    }
    let footer = &file[file.len() - FOOTER_LEN..];
    let magic = u64::from_le_bytes(footer[40..48].try_into().map_err(|_| err("footer"))?);
    if magic != TABLE_MAGIC {
        return Err(err("not an SSTable (bad magic number)"));
    }
    let mut pos = 0;
    let metaindex =
        read_handle(&footer[..40], &mut pos).ok_or_else(|| err("bad metaindex handle"))?;
    let index = read_handle(&footer[..40], &mut pos).ok_or_else(|| err("bad index handle"))?;
    // The metaindex block is empty in TF bundles; it is still checked, so no byte before the
    // footer escapes a checksum.
    read_block(file, metaindex, path)?;
    let index_block = read_block(file, index, path)?;
    let mut out = Vec::new();
    for (_, handle) in block_entries(index_block).map_err(|m| err(&m))? {
        let mut p = 0;
        let h = read_handle(&handle, &mut p).ok_or_else(|| err("bad data block handle"))?;
        let block = read_block(file, h, path)?;
        out.extend(block_entries(block).map_err(|m| err(&m))?);
    }
    Ok(out)
}

#[derive(Clone, Copy)]
struct Handle {
    offset: u64,
    size: u64,
}

fn read_handle(buf: &[u8], pos: &mut usize) -> Option<Handle> {
    Some(Handle {
        offset: read_varint(buf, pos)?,
        size: read_varint(buf, pos)?,
    })
}

/// The block's contents, after checking bounds, compression type and checksum.
fn read_block<'a>(file: &'a [u8], h: Handle, path: &Path) -> Result<&'a [u8]> {
    let start = usize::try_from(h.offset).ok();
    let len = usize::try_from(h.size).ok();
    let end = match (start, len) {
        (Some(s), Some(l)) => s
            .checked_add(l)
            .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN)),
        _ => None,
    };
    let (start, len, end) = match (start, len, end) {
        (Some(s), Some(l), Some(e)) if e <= file.len() => (s, l, e),
        _ => {
            return Err(Error::format(
                path,
                None,
                format!(
                    "block at {}+{} lies outside the file ({} bytes)",
                    h.offset,
                    h.size,
                    file.len()
                ),
            ))
        }
    };
    let contents = &file[start..start + len];
    let kind = file[start + len];
    let stored = u32::from_le_bytes([file[end - 4], file[end - 3], file[end - 2], file[end - 1]]);
    let crc = crc32c_extend(crc32c_extend(0, contents), &[kind]);
    if mask_crc32c(crc) != stored {
        return Err(Error::format(
            path,
            None,
            format!("block at {start}: CRC32C mismatch"),
        ));
    }
    match kind {
        0 => Ok(contents),
        1 => Err(Error::Unsupported(format!(
            "{}: snappy-compressed blocks: snappy not supported",
            path.display()
        ))),
        k => Err(Error::format(
            path,
            None,
            format!("unknown block compression type {k}"),
        )),
    }
}

/// Decodes a block: prefix-compressed entries, then the restart array and its count.
fn block_entries(block: &[u8]) -> std::result::Result<Vec<KeyValue>, String> {
    let bad = |m: &str| format!("malformed table block: {m}");
    if block.len() < 4 {
        return Err(bad("too short"));
    }
    let n = block.len();
    let num_restarts = u32::from_le_bytes([block[n - 4], block[n - 3], block[n - 2], block[n - 1]]);
    let restarts_len = (num_restarts as usize)
        .checked_mul(4)
        .and_then(|r| r.checked_add(4))
        .filter(|&r| r <= n)
        .ok_or_else(|| bad("restart array larger than the block"))?;
    let data = &block[..n - restarts_len];
    let mut out: Vec<KeyValue> = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let shared = read_varint(data, &mut pos).ok_or_else(|| bad("entry header"))?;
        let non_shared = read_varint(data, &mut pos).ok_or_else(|| bad("entry header"))?;
        let value_len = read_varint(data, &mut pos).ok_or_else(|| bad("entry header"))?;
        let shared = usize::try_from(shared)
            .ok()
            .filter(|&s| s <= key.len())
            .ok_or_else(|| bad("shared key prefix longer than the previous key"))?;
        let key_end = usize::try_from(non_shared)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| bad("key runs past the block"))?;
        let value_end = usize::try_from(value_len)
            .ok()
            .and_then(|l| key_end.checked_add(l))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| bad("value runs past the block"))?;
        key.truncate(shared);
        key.extend_from_slice(&data[pos..key_end]);
        out.push((key.clone(), data[key_end..value_end].to_vec()));
        pos = value_end;
    }
    Ok(out)
}
