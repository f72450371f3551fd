//! Reading TensorFlow "V2" checkpoints (`bert_model.ckpt.index` + `.data-SSSSS-of-NNNNN`),
//! the format of every released BERT checkpoint, without TensorFlow.
//!
//! The `.index` file is an SSTable mapping variable names to `BundleEntryProto`s; the empty
//! key holds the `BundleHeaderProto`. Each entry says where the tensor's bytes lie in which
//! data shard and carries their masked CRC32C. Every handle, offset and size is checked
//! against the file lengths before it is used, and every block and tensor checksum is
//! verified.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::format::{data_path, index_path, parse_entry, parse_header, DataType, Entry};
use super::table::read_table;
use crate::weights::crc32c::{crc32c_extend, mask_crc32c};
use crate::weights::{num_elements, Tensor, Weights};
use crate::{Error, Result};

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

/// An open checkpoint: its variables listed from the index, their data read (and
/// checked) on demand. Data shards are memory-mapped when first needed.
#[derive(Debug)]
pub struct BundleReader {
    prefix: PathBuf,
    index_file: PathBuf,
    num_shards: u64,
    /// Variables in key (name) order, as the index lists them.
    entries: Vec<(String, Entry)>,
    shards: Vec<OnceLock<(PathBuf, memmap2::Mmap)>>,
}

impl BundleReader {
    /// Opens the checkpoint `path` names (see [`resolve_prefix`]) and reads its index.
    pub fn open(path: impl AsRef<Path>) -> Result<BundleReader> {
        let prefix = resolve_prefix(path.as_ref())?;
        let index_file = index_path(&prefix);
        let index = std::fs::read(&index_file).map_err(|e| Error::io(&index_file, e))?;
        let table = read_table(&index, &index_file)?;

        let mut header = None;
        let mut entries = Vec::with_capacity(table.len());
        for (key, value) in &table {
            if key.is_empty() {
                let h = parse_header(value).map_err(|m| Error::format(&index_file, None, m))?;
                header = Some(h);
                continue;
            }
            let name = std::str::from_utf8(key)
                .map_err(|_| Error::format(&index_file, None, "variable name is not UTF-8"))?;
            let entry =
                parse_entry(value).map_err(|m| Error::format(&index_file, Some(name), m))?;
            entries.push((name.to_owned(), entry));
        }
        let header = header
            .ok_or_else(|| Error::format(&index_file, None, "no bundle header (empty key)"))?;
        // A table's keys are sorted; a hand-made or corrupt one may not be, and lookups
        // below rely on the order.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::format(
                &index_file,
                Some(&w[0].0),
                "the variable is listed twice",
            ));
        }
        if header.endianness != 0 {
            return Err(Error::Unsupported(format!(
                "{}: big-endian checkpoints",
                index_file.display()
            )));
        }
        Ok(BundleReader {
            prefix,
            index_file,
            num_shards: header.num_shards,
            entries,
            shards: (0..header.num_shards).map(|_| OnceLock::new()).collect(),
        })
    }

    /// The checkpoint prefix (`.../model.ckpt-1000`).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Every variable's name, type and shape in name order (`tf.train.list_variables`).
    pub fn variables(&self) -> impl Iterator<Item = (&str, DataType, &[usize])> {
        self.entries
            .iter()
            .map(|(n, e)| (n.as_str(), e.dtype, e.shape.as_slice()))
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.entries[i].1)
            .ok_or_else(|| Error::Shape(format!("missing tensor {name}")))
    }

    /// The bytes of tensor `name`, after checking that it is `dtype`, that its size fits
    /// its shape, that it lies inside its shard, and its CRC32C.
    pub fn raw(&self, name: &str, dtype: DataType) -> Result<(&[usize], &[u8])> {
        let e = self.entry(name)?;
        let fmt = |m: String| Error::format(&self.index_file, Some(name), m);
        if e.dtype != dtype {
            return Err(Error::Unsupported(format!(
                "tensor {name}: dtype {}, expected {}",
                e.dtype.name(),
                dtype.name()
            )));
        }
        if e.has_slices {
            return Err(Error::Unsupported(format!(
                "tensor {name}: partitioned (sliced) variables"
            )));
        }
        let shard = usize::try_from(e.shard_id)
            .ok()
            .filter(|&s| s < self.shards.len())
            .ok_or_else(|| {
                fmt(format!(
                    "shard {} of {} does not exist",
                    e.shard_id, self.num_shards
                ))
            })?;
        let shape = &e.shape;
        let bytes = num_elements(shape)
            .and_then(|n| n.checked_mul(dtype.size().unwrap_or(1)))
            .ok_or_else(|| fmt(format!("shape {shape:?} overflows")))?;
        if e.size != bytes as u64 {
            return Err(fmt(format!(
                "size {} bytes does not match shape {shape:?} of {}",
                e.size,
                dtype.name()
            )));
        }
        let (data_file, map) = self.shard(shard)?;
        let start = usize::try_from(e.offset).ok();
        let end = start.and_then(|s| s.checked_add(bytes));
        let raw = match (start, end) {
            (Some(s), Some(t)) if t <= map.len() => &map[s..t],
            _ => {
                return Err(Error::format(
                    data_file,
                    Some(name),
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
                data_file,
                Some(name),
                "CRC32C mismatch (corrupt data)",
            ));
        }
        Ok((shape, raw))
    }

    fn shard(&self, shard: usize) -> Result<&(PathBuf, memmap2::Mmap)> {
        if let Some(s) = self.shards[shard].get() {
            return Ok(s);
        }
        let path = data_path(&self.prefix, shard as u64, self.num_shards);
        let file = File::open(&path).map_err(|err| Error::io(&path, err))?;
        // SAFETY: the file is opened read-only and only read through this map; like every
        // memory-mapped reader we rely on nobody truncating it while it is mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|err| Error::io(&path, err))?;
        // Another thread may have mapped it meanwhile; either map will do.
        Ok(self.shards[shard].get_or_init(|| (path, map)))
    }

    /// A float32 tensor.
    pub fn read_f32(&self, name: &str) -> Result<Tensor> {
        let (shape, raw) = self.raw(name, DataType::Float)?;
        let data = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// An int64 tensor (e.g. `global_step`): shape and values.
    pub fn read_i64(&self, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let (shape, raw) = self.raw(name, DataType::Int64)?;
        let data = raw
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect();
        Ok((shape.to_vec(), data))
    }

    /// An int32 tensor: shape and values.
    pub fn read_i32(&self, name: &str) -> Result<(Vec<usize>, Vec<i32>)> {
        let (shape, raw) = self.raw(name, DataType::Int32)?;
        let data = raw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((shape.to_vec(), data))
    }
}

/// Loads every f32 tensor of a TF checkpoint under its variable name. Optimizer slots
/// (`.../adam_m`, `.../adam_v`) are skipped (they are not model weights and would triple the
/// memory; [`BundleReader`] reads them); non-f32 tensors (e.g. `global_step`) are recorded
/// as unsupported, so asking for one names it.
pub fn load(path: impl AsRef<Path>) -> Result<Weights> {
    let path = path.as_ref();
    let bundle = BundleReader::open(path)?;
    let mut weights = Weights::new();
    for (name, dtype, _) in bundle.variables() {
        if name.ends_with("/adam_m") || name.ends_with("/adam_v") {
            continue;
        }
        if dtype != DataType::Float {
            weights.insert_unsupported(
                name,
                format!("dtype {} (only float32 is supported)", dtype.name()),
            );
            continue;
        }
        let tensor = bundle.read_f32(name)?;
        super::super::check_finite(path, name, &tensor.data)?;
        weights.insert(name, tensor);
    }
    Ok(weights)
}
