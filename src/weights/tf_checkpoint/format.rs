//! The pieces of TensorFlow's tensor bundle format (`tensorflow/core/util/tensor_bundle`)
//! that reading and writing share: `BundleHeaderProto`, `BundleEntryProto`,
//! `TensorShapeProto`, the data types, and the file names.
//!
//! ```text
//! BundleHeaderProto { int32 num_shards = 1; Endianness endianness = 2; VersionDef version = 3 }
//! BundleEntryProto  { DataType dtype = 1; TensorShapeProto shape = 2; int32 shard_id = 3;
//!                     int64 offset = 4; int64 size = 5; fixed32 crc32c = 6;
//!                     repeated TensorSliceProto slices = 7 }
//! TensorShapeProto  { repeated Dim dim = 2; bool unknown_rank = 3 }   Dim { int64 size = 1 }
//! ```

use std::path::{Path, PathBuf};

use crate::weights::proto::{put_bytes, put_key, put_varint, Field, Reader, FIXED32, VARINT};

/// More shards than any real checkpoint; bounds what a lying header can make us open.
pub(super) const MAX_SHARDS: u64 = 4096;

/// TensorFlow's `kTensorBundleVersion`: what our header says produced the file.
const BUNDLE_VERSION: u64 = 1;

/// The element types of tensors a bundle holds that libbert reads or writes
/// (`types.proto`'s `DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `DT_FLOAT`: weights, optimizer slots.
    Float,
    /// `DT_INT32`.
    Int32,
    /// `DT_INT64`: `global_step`.
    Int64,
    /// Any other type, by its `DataType` number (listed, never read as numbers).
    Other(u64),
}

impl DataType {
    pub(super) fn from_proto(v: u64) -> DataType {
        match v {
            1 => DataType::Float,
            3 => DataType::Int32,
            9 => DataType::Int64,
            other => DataType::Other(other),
        }
    }

    pub(super) fn to_proto(self) -> u64 {
        match self {
            DataType::Float => 1,
            DataType::Int32 => 3,
            DataType::Int64 => 9,
            DataType::Other(v) => v,
        }
    }

    /// Bytes per element, for the types libbert reads.
    pub fn size(self) -> Option<usize> {
        match self {
            DataType::Float | DataType::Int32 => Some(4),
            DataType::Int64 => Some(8),
            DataType::Other(_) => None,
        }
    }

    /// TensorFlow's name of the type.
    pub fn name(self) -> String {
        match self.to_proto() {
            1 => "float32".into(),
            2 => "float64".into(),
            3 => "int32".into(),
            9 => "int64".into(),
            14 => "bfloat16".into(),
            19 => "float16".into(),
            other => format!("#{other}"),
        }
    }
}

/// `BundleHeaderProto`.
pub(super) struct Header {
    pub num_shards: u64,
    pub endianness: u64,
}

/// `BundleEntryProto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub dtype: DataType,
    pub shape: Vec<usize>,
    pub shard_id: u64,
    pub offset: u64,
    pub size: u64,
    /// Masked CRC32C of the tensor's bytes.
    pub crc32c: u32,
    pub has_slices: bool,
}

pub(super) fn parse_header(buf: &[u8]) -> Result<Header, String> {
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

/// The header of a one-shard little-endian bundle: `num_shards: 1`, `endianness: LITTLE`
/// (0, left out as proto3 does), `version { producer: 1 }`.
pub(super) fn encode_header() -> Vec<u8> {
    let mut out = Vec::new();
    put_key(&mut out, 1, VARINT);
    put_varint(&mut out, 1);
    let mut version = Vec::new();
    put_key(&mut version, 1, VARINT);
    put_varint(&mut version, BUNDLE_VERSION);
    put_bytes(&mut out, 3, &version);
    out
}

pub(super) fn parse_entry(buf: &[u8]) -> Result<Entry, String> {
    let bad = || "malformed BundleEntryProto".to_string();
    let mut e = Entry {
        dtype: DataType::Other(0),
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
            (1, Field::Varint(v)) => e.dtype = DataType::from_proto(v),
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

/// Encodes an entry as TensorFlow does: fields in number order, zero scalars left out, the
/// shape always present (a scalar's is empty), the checksum always written.
pub(super) fn encode_entry(e: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    let scalar = |out: &mut Vec<u8>, number: u32, v: u64| {
        if v != 0 {
            put_key(out, number, VARINT);
            put_varint(out, v);
        }
    };
    scalar(&mut out, 1, e.dtype.to_proto());
    let mut shape = Vec::new();
    for &d in &e.shape {
        let mut dim = Vec::new();
        scalar(&mut dim, 1, d as u64);
        put_bytes(&mut shape, 2, &dim);
    }
    put_bytes(&mut out, 2, &shape);
    scalar(&mut out, 3, e.shard_id);
    scalar(&mut out, 4, e.offset);
    scalar(&mut out, 5, e.size);
    put_key(&mut out, 6, FIXED32);
    out.extend_from_slice(&e.crc32c.to_le_bytes());
    out
}

/// `TensorShapeProto { repeated Dim dim = 2; bool unknown_rank = 3; }`, `Dim { int64 size = 1 }`.
fn parse_shape(buf: &[u8]) -> Result<Vec<usize>, String> {
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

/// `<prefix>.index`.
pub(super) fn index_path(prefix: &Path) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".index");
    PathBuf::from(s)
}

/// `<prefix>.data-<shard>-of-<num_shards>`, both five digits.
pub(super) fn data_path(prefix: &Path, shard: u64, num_shards: u64) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(format!(".data-{shard:05}-of-{num_shards:05}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let e = Entry {
            dtype: DataType::Int64,
            shape: vec![],
            shard_id: 0,
            offset: 0,
            size: 8,
            crc32c: 0x1234_5678,
            has_slices: false,
        };
        let bytes = encode_entry(&e);
        // dtype 9, an empty shape, size 8, crc: what TF writes for a scalar global_step.
        assert_eq!(
            bytes,
            [0x08, 9, 0x12, 0, 0x28, 8, 0x35, 0x78, 0x56, 0x34, 0x12]
        );
        assert_eq!(parse_entry(&bytes).unwrap(), e);
        let e = Entry {
            dtype: DataType::Float,
            shape: vec![2, 0, 3],
            offset: 300,
            size: 0,
            ..e
        };
        assert_eq!(parse_entry(&encode_entry(&e)).unwrap(), e);
        let h = parse_header(&encode_header()).unwrap();
        assert_eq!((h.num_shards, h.endianness), (1, 0));
    }
}
