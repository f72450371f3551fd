//! TFRecord files without TensorFlow. Each record is
//! `u64 length | u32 masked_crc32c(length) | data | u32 masked_crc32c(data)`, little-endian,
//! the CRC being CRC-32C with LevelDB's mask (`tensorflow/core/lib/io/record_writer.cc`).
//!
//! The writer writes a temporary file beside the target, syncs and renames it, so a
//! finished file is never half-written. The reader checks both checksums and every length
//! against the file's size before allocating, and its errors name the file, the record
//! index and its byte offset.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::weights::crc32c::crc32c_extend;
use crate::weights::mask_crc32c;
use crate::{Error, Result};

const HEADER: usize = 12;
const FOOTER: usize = 4;

fn masked_crc(bytes: &[u8]) -> u32 {
    mask_crc32c(crc32c_extend(0, bytes))
}

/// Appends one framed record holding `data` to `out`.
pub fn frame_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// Writes a TFRecord file: a temporary file until [`TfRecordWriter::finish`] renames it.
#[derive(Debug)]
pub struct TfRecordWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    frame: Vec<u8>,
}

impl TfRecordWriter {
    /// Starts `path` (its directory must exist).
    pub fn create(path: impl AsRef<Path>) -> Result<TfRecordWriter> {
        let path = path.as_ref().to_path_buf();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(TfRecordWriter {
            path,
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            frame: Vec::new(),
        })
    }

    /// The file this writer will produce.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record holding `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        frame_record(&mut frame, data);
        let r = self.write_framed(&frame);
        self.frame = frame;
        r
    }

    /// Writes bytes that are already framed records (see [`frame_record`]).
    pub fn write_framed(&mut self, records: &[u8]) -> Result<()> {
        let tmp = &self.tmp;
        match self.file.as_mut() {
            Some(f) => f.write_all(records).map_err(|e| Error::io(tmp, e)),
            None => Err(Error::InvalidArgument(format!(
                "{}: written after finish",
                self.path.display()
            ))),
        }
    }

    /// Flushes, syncs and renames the temporary file to the target.
    pub fn finish(mut self) -> Result<()> {
        let Some(writer) = self.file.take() else {
            return Ok(());
        };
        let tmp = self.tmp.clone();
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

impl Drop for TfRecordWriter {
    fn drop(&mut self) {
        // Not finished (an error or a cancel on the way): leave no partial file behind.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Reads the records of one TFRecord file in order.
#[derive(Debug)]
pub struct TfRecordReader {
    path: PathBuf,
    file: BufReader<File>,
    len: u64,
    offset: u64,
    index: u64,
}

impl TfRecordReader {
    /// Opens `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<TfRecordReader> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        Ok(TfRecordReader {
            path,
            file: BufReader::with_capacity(1 << 20, file),
            len,
            offset: 0,
            index: 0,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Index of the next record (0-based).
    pub fn index(&self) -> u64 {
        self.index
    }

    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::format(
            &self.path,
            None,
            format!("record {} (at byte {}): {message}", self.index, self.offset),
        )
    }

    /// Reads the next record into `data`; `Ok(false)` at the end of the file.
    pub fn read_into(&mut self, data: &mut Vec<u8>) -> Result<bool> {
        let left = self.len - self.offset.min(self.len);
        if left == 0 {
            return Ok(false);
        }
        if left < HEADER as u64 {
            return Err(self.error(format!(
                "truncated: {left} bytes left, a record header needs {HEADER}"
            )));
        }
        let mut header = [0u8; HEADER];
        self.file
            .read_exact(&mut header)
            .map_err(|e| self.error(format!("cannot read the header: {e}")))?;
        let (len_bytes, crc_bytes) = header.split_at(8);
        let stored = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if masked_crc(len_bytes) != stored {
            return Err(self.error("length CRC mismatch (corrupt or not a TFRecord file)"));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(len_bytes);
        let n = u64::from_le_bytes(n);
        let body_left = left - HEADER as u64;
        if n.checked_add(FOOTER as u64)
            .map_or(true, |need| need > body_left)
        {
            return Err(self.error(format!(
                "truncated: the record holds {n} bytes, the file has {} left",
                body_left.saturating_sub(FOOTER as u64)
            )));
        }
        data.clear();
        data.resize(n as usize, 0);
        self.file
            .read_exact(data)
            .map_err(|e| self.error(format!("cannot read the data: {e}")))?;
        let mut footer = [0u8; FOOTER];
        self.file
            .read_exact(&mut footer)
            .map_err(|e| self.error(format!("cannot read the data CRC: {e}")))?;
        if masked_crc(data) != u32::from_le_bytes(footer) {
            return Err(self.error("data CRC mismatch (corrupt record)"));
        }
        self.offset += (HEADER + FOOTER) as u64 + n;
        self.index += 1;
        Ok(true)
    }
}

impl Iterator for TfRecordReader {
    type Item = Result<Vec<u8>>;

    /// The next record; after an error the reader stops.
    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        let mut data = Vec::new();
        match self.read_into(&mut data) {
            Ok(true) => Some(Ok(data)),
            Ok(false) => None,
            Err(e) => {
                self.offset = self.len;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout() {
        let mut out = Vec::new();
        frame_record(&mut out, b"abc");
        assert_eq!(out.len(), 12 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(out[8..12], masked_crc(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(out[15..], masked_crc(b"abc").to_le_bytes());
    }
}
