//! The SSTable (LevelDB table format) of a bundle's `.index` file, both ways: blocks of
//! prefix-compressed sorted entries with restart points, each followed by a compression
//! byte and a masked CRC32C; an (empty) metaindex block; an index block mapping each data
//! block's last key to its handle; a 48-byte footer with both handles and the magic number.

use std::path::Path;

use crate::weights::crc32c::{crc32c_extend, mask_crc32c};
use crate::weights::proto::{put_varint, read_varint};
use crate::{Error, Result};

const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER_LEN: usize = 48;
const BLOCK_TRAILER_LEN: usize = 5;
/// TensorFlow's `table::Options` defaults: 256 KiB blocks, a restart point every 16 keys.
const BLOCK_SIZE: usize = 256 * 1024;
const RESTART_INTERVAL: usize = 16;

/// One table entry: key bytes, value bytes.
pub(super) type KeyValue = (Vec<u8>, Vec<u8>);

/// Every (key, value) of the table, in order.
pub(super) fn read_table(file: &[u8], path: &Path) -> Result<Vec<KeyValue>> {
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

// ---------------------------------------------------------------------------------------------
// Writing

/// Builds one block: entries sharing a prefix with the previous key, a restart point (full
/// key) every `interval` entries, then the restart offsets and their count.
struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    interval: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    fn new(interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            counter: 0,
            interval,
            last_key: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.counter < self.interval {
            key.iter()
                .zip(&self.last_key)
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
            0
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
    }

    /// The finished block; the builder starts over.
    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts = vec![0];
        self.counter = 0;
        self.last_key.clear();
        out
    }
}

/// Writes a table of `entries`, which must be in strictly increasing key order.
pub(super) fn build_table(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut file = Vec::new();
    let mut data = BlockBuilder::new(RESTART_INTERVAL);
    // LevelDB writes index entries with a restart point each.
    let mut index = BlockBuilder::new(1);
    let mut handle = Vec::new();
    let mut pending: Option<(Handle, &[u8])> = None;
    for (key, value) in entries {
        if let Some((h, last)) = pending.take() {
            encode_handle(&mut handle, h);
            index.add(&shortest_separator(last, key), &handle);
        }
        data.add(key, value);
        if data.size_estimate() >= BLOCK_SIZE {
            pending = Some((write_block(&mut file, &data.finish()), key));
        }
    }
    if !data.is_empty() {
        let last = entries.last().map_or(&[][..], |(k, _)| k);
        pending = Some((write_block(&mut file, &data.finish()), last));
    }
    if let Some((h, last)) = pending {
        encode_handle(&mut handle, h);
        index.add(&short_successor(last), &handle);
    }
    let metaindex = write_block(&mut file, &BlockBuilder::new(RESTART_INTERVAL).finish());
    let index = write_block(&mut file, &index.finish());
    let mut footer = Vec::with_capacity(FOOTER_LEN);
    put_varint(&mut footer, metaindex.offset);
    put_varint(&mut footer, metaindex.size);
    put_varint(&mut footer, index.offset);
    put_varint(&mut footer, index.size);
    footer.resize(FOOTER_LEN - 8, 0);
    footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
    file.extend_from_slice(&footer);
    file
}

/// LevelDB's `BytewiseComparator::FindShortestSeparator`: a short key `k` with
/// `start <= k < limit`, so index blocks stay small (what TensorFlow writes).
fn shortest_separator(start: &[u8], limit: &[u8]) -> Vec<u8> {
    let common = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if common < start.len().min(limit.len()) {
        let b = start[common];
        if b < 0xff && b + 1 < limit[common] {
            let mut k = start[..=common].to_vec();
            k[common] += 1;
            return k;
        }
    }
    start.to_vec()
}

/// LevelDB's `FindShortSuccessor`: a short key `>= key` (its first byte that is not 0xff,
/// incremented, and nothing after it).
fn short_successor(key: &[u8]) -> Vec<u8> {
    match key.iter().position(|&b| b != 0xff) {
        Some(i) => {
            let mut k = key[..=i].to_vec();
            k[i] += 1;
            k
        }
        None => key.to_vec(),
    }
}

fn encode_handle(out: &mut Vec<u8>, h: Handle) {
    out.clear();
    put_varint(out, h.offset);
    put_varint(out, h.size);
}

/// Appends an uncompressed block and its trailer; its handle.
fn write_block(file: &mut Vec<u8>, contents: &[u8]) -> Handle {
    let h = Handle {
        offset: file.len() as u64,
        size: contents.len() as u64,
    };
    file.extend_from_slice(contents);
    let kind = 0u8; // no compression
    let crc = crc32c_extend(crc32c_extend(0, contents), &[kind]);
    file.push(kind);
    file.extend_from_slice(&mask_crc32c(crc).to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_tables_read_back() {
        // Enough entries for several data blocks and restart points; gaps of 20 between
        // the numbers let LevelDB shorten some separators.
        let entries: Vec<KeyValue> = (0..40_000u32)
            .map(|i| {
                let key = format!("bert/encoder/layer_{:07}/kernel", i * 20).into_bytes();
                (key, vec![i as u8; 1 + (i % 13) as usize])
            })
            .collect();
        let table = build_table(&entries);
        assert!(table.len() > 2 * BLOCK_SIZE);
        let back = read_table(&table, Path::new("t.index")).unwrap();
        assert_eq!(back, entries);

        // Each index key separates its block from the next as LevelDB's would.
        let footer = &table[table.len() - FOOTER_LEN..];
        let mut pos = 0;
        read_handle(footer, &mut pos).unwrap();
        let index = read_handle(footer, &mut pos).unwrap();
        let index = block_entries(read_block(&table, index, Path::new("t")).unwrap()).unwrap();
        assert!(index.len() >= 3);
        let mut shortened = 0;
        let mut first_of_block = 0;
        for (k, (key, handle)) in index.iter().enumerate() {
            let mut p = 0;
            let h = read_handle(handle, &mut p).unwrap();
            let block = block_entries(read_block(&table, h, Path::new("t")).unwrap()).unwrap();
            let last = &block.last().unwrap().0;
            let next = first_of_block + block.len();
            let want = match entries.get(next) {
                Some((limit, _)) => shortest_separator(last, limit),
                None => short_successor(last),
            };
            assert_eq!(key, &want, "index entry {k}");
            assert!(key >= last && entries.get(next).map_or(true, |(l, _)| key < l));
            shortened += usize::from(key.len() < last.len());
            first_of_block = next;
        }
        assert!(shortened > 0);

        // Index keys are shortened as LevelDB does.
        assert_eq!(shortest_separator(b"abcd", b"abzz"), b"abd");
        assert_eq!(shortest_separator(b"abcd", b"abd"), b"abcd");
        assert_eq!(shortest_separator(b"ab", b"abc"), b"ab");
        assert_eq!(short_successor(b"output_weights"), b"p");
        assert_eq!(short_successor(b"\xff\xffa"), b"\xff\xffb");
        let empty = build_table(&[]);
        assert!(read_table(&empty, Path::new("e.index")).unwrap().is_empty());
    }
}
