//! Writing TensorFlow tensor bundles as `BundleWriter` (`tensor_bundle.cc`) does: the
//! tensors' little-endian bytes back to back in `<prefix>.data-00000-of-00001` (no
//! alignment padding), then `<prefix>.index`, an SSTable whose empty key holds the header
//! and whose other keys, in byte order, hold each variable's dtype, shape, offset, size and
//! masked CRC32C. Both files are written under temporary names, synced, and renamed (data
//! first, so an index never names missing data).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::format::{data_path, encode_entry, encode_header, index_path, DataType, Entry};
use super::table::build_table;
use crate::weights::crc32c::{crc32c_extend, mask_crc32c};
use crate::weights::{num_elements, Tensor, Weights};
use crate::{Error, Result};

/// A tensor's values, in row-major order.
#[derive(Debug, Clone, Copy)]
pub enum TensorData<'a> {
    F32(&'a [f32]),
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl TensorData<'_> {
    fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        }
    }

    fn dtype(&self) -> DataType {
        match self {
            TensorData::F32(_) => DataType::Float,
            TensorData::I32(_) => DataType::Int32,
            TensorData::I64(_) => DataType::Int64,
        }
    }

    /// Appends elements `start..` (at most `max` of them) as little-endian bytes.
    fn put_le(&self, start: usize, max: usize, out: &mut Vec<u8>) -> usize {
        let end = (start + max).min(self.len());
        match self {
            TensorData::F32(v) => v[start..end]
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I32(v) => v[start..end]
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I64(v) => v[start..end]
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        end - start
    }
}

/// Writes one checkpoint (one shard). Add tensors in any order; [`BundleWriter::finish`]
/// makes the files appear. Dropped unfinished, it removes its temporary files.
#[derive(Debug)]
pub struct BundleWriter {
    prefix: PathBuf,
    data_tmp: PathBuf,
    data: Option<BufWriter<File>>,
    offset: u64,
    entries: BTreeMap<String, Entry>,
    buf: Vec<u8>,
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".tmp-{}", std::process::id()));
    PathBuf::from(s)
}

impl BundleWriter {
    /// Starts the checkpoint `prefix` (e.g. `out/model.ckpt-1000`); its directory must exist.
    pub fn create(prefix: impl AsRef<Path>) -> Result<BundleWriter> {
        let prefix = prefix.as_ref().to_path_buf();
        let data_tmp = tmp_name(&data_path(&prefix, 0, 1));
        let file = File::create(&data_tmp).map_err(|e| Error::io(&data_tmp, e))?;
        Ok(BundleWriter {
            prefix,
            data_tmp,
            data: Some(BufWriter::with_capacity(1 << 20, file)),
            offset: 0,
            entries: BTreeMap::new(),
            buf: Vec::new(),
        })
    }

    /// Adds variable `name` of `shape`; `data` must hold `prod(shape)` values.
    pub fn add(&mut self, name: &str, shape: &[usize], data: TensorData<'_>) -> Result<()> {
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "a checkpoint variable needs a name (the empty key is the bundle header)".into(),
            ));
        }
        if self.entries.contains_key(name) {
            return Err(Error::InvalidArgument(format!(
                "variable {name} added twice to {}",
                self.prefix.display()
            )));
        }
        if num_elements(shape) != Some(data.len()) {
            return Err(Error::Shape(format!(
                "variable {name}: shape {shape:?} does not hold {} values",
                data.len()
            )));
        }
        let tmp = &self.data_tmp;
        let Some(file) = self.data.as_mut() else {
            return Err(Error::InvalidArgument("add after finish".into()));
        };
        let mut crc = 0;
        let mut size = 0u64;
        let mut done = 0;
        // In pieces, so a large tensor is not copied whole.
        while done < data.len() {
            self.buf.clear();
            done += data.put_le(done, 1 << 16, &mut self.buf);
            crc = crc32c_extend(crc, &self.buf);
            size += self.buf.len() as u64;
            file.write_all(&self.buf).map_err(|e| Error::io(tmp, e))?;
        }
        self.entries.insert(
            name.to_owned(),
            Entry {
                dtype: data.dtype(),
                shape: shape.to_vec(),
                shard_id: 0,
                offset: self.offset,
                size,
                crc32c: mask_crc32c(crc),
                has_slices: false,
            },
        );
        self.offset += size;
        Ok(())
    }

    /// Adds an f32 tensor.
    pub fn add_tensor(&mut self, name: &str, tensor: &Tensor) -> Result<()> {
        self.add(name, &tensor.shape, TensorData::F32(&tensor.data))
    }

    /// Syncs and renames the data file, then writes, syncs and renames the index.
    pub fn finish(mut self) -> Result<()> {
        let Some(writer) = self.data.take() else {
            return Ok(());
        };
        let tmp = self.data_tmp.clone();
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        let data_file = data_path(&self.prefix, 0, 1);
        std::fs::rename(&tmp, &data_file).map_err(|e| Error::io(&data_file, e))?;

        let mut table = Vec::with_capacity(self.entries.len() + 1);
        table.push((Vec::new(), encode_header()));
        for (name, entry) in &self.entries {
            table.push((name.as_bytes().to_vec(), encode_entry(entry)));
        }
        write_synced(&index_path(&self.prefix), &build_table(&table))
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if self.data.take().is_some() {
            let _ = std::fs::remove_file(&self.data_tmp);
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it to `path`.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_name(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Saves every f32 tensor of `weights` under its name (Google's variable names, dense
/// kernels `[in, out]`), plus `global_step` (int64 scalar) when given, as the checkpoint
/// `prefix`. f16/int8 tensors are an error: Google's code reads float32 checkpoints.
pub fn save(prefix: impl AsRef<Path>, weights: &Weights, global_step: Option<i64>) -> Result<()> {
    if let Some((name, q)) = weights.iter_quantized().next() {
        return Err(Error::Unsupported(format!(
            "tensor {name} is stored as {}; a TF checkpoint holds float32 (load the model \
             with dtype f32 from the f32 original)",
            q.dtype()
        )));
    }
    let mut w = BundleWriter::create(prefix)?;
    for (name, tensor) in weights.iter() {
        w.add_tensor(name, tensor)?;
    }
    if let Some(step) = global_step {
        w.add("global_step", &[], TensorData::I64(&[step]))?;
    }
    w.finish()
}

/// Writes the `checkpoint` state file of `dir` (`tf.train.latest_checkpoint` reads it):
/// `latest` and then `all` as paths relative to `dir` (e.g. `model.ckpt-1000`).
pub fn write_checkpoint_state(dir: impl AsRef<Path>, latest: &str, all: &[&str]) -> Result<()> {
    let quote = |s: &str| {
        let mut q = String::with_capacity(s.len() + 2);
        q.push('"');
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    };
    let mut text = format!("model_checkpoint_path: {}\n", quote(latest));
    for p in all {
        text.push_str(&format!("all_model_checkpoint_paths: {}\n", quote(p)));
    }
    write_synced(&dir.as_ref().join("checkpoint"), text.as_bytes())
}
