//! `tf.train.Example` (`example.proto`, `feature.proto`) without TensorFlow:
//! `Example { Features features = 1 }`, `Features { map<string, Feature> feature = 1 }`,
//! `Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
//! Int64List int64_list = 3 } }`, each list `repeated ... value = 1` (numbers packed).
//!
//! Encoding writes the features in the order given (protobuf itself leaves map order open:
//! Google's script writes a different order in every process) and packs numbers, as TF does.
//! Decoding accepts packed and unpacked numbers and keeps the last of repeated keys, as
//! protobuf's map parsing does.

use std::collections::BTreeMap;

use crate::weights::proto::{put_bytes, put_key, put_varint, Field, Reader, LEN};

/// One feature's value list.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    /// `bytes_list`.
    Bytes(Vec<Vec<u8>>),
    /// `float_list`.
    Float(Vec<f32>),
    /// `int64_list`.
    Int64(Vec<i64>),
}

impl Feature {
    /// The list's name in `feature.proto`, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Feature::Bytes(_) => "bytes_list",
            Feature::Float(_) => "float_list",
            Feature::Int64(_) => "int64_list",
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Feature::Bytes(v) => v.len(),
            Feature::Float(v) => v.len(),
            Feature::Int64(v) => v.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A `tf.train.Example`: features by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Example {
    pub features: BTreeMap<String, Feature>,
}

impl Example {
    /// Serializes with the features in name order.
    pub fn encode(&self) -> Vec<u8> {
        let mut enc = ExampleEncoder::default();
        for (name, feature) in &self.features {
            match feature {
                Feature::Int64(v) => enc.int64(name, v.iter().map(|&x| x as u64)),
                Feature::Float(v) => enc.float(name, v.iter().copied()),
                Feature::Bytes(v) => enc.bytes(name, v),
            }
        }
        let mut out = Vec::new();
        enc.finish(&mut out);
        out
    }

    /// Parses a serialized `Example`; the error says what is malformed.
    pub fn decode(bytes: &[u8]) -> Result<Example, String> {
        let mut ex = Example::default();
        for field in Reader::new(bytes) {
            match field.map_err(|_| "malformed Example".to_string())? {
                (1, Field::Bytes(features)) => decode_features(features, &mut ex.features)?,
                (1, _) => return Err("Example.features has the wrong wire type".into()),
                _ => {}
            }
        }
        Ok(ex)
    }
}

fn decode_features(buf: &[u8], out: &mut BTreeMap<String, Feature>) -> Result<(), String> {
    for field in Reader::new(buf) {
        match field.map_err(|_| "malformed Features".to_string())? {
            (1, Field::Bytes(entry)) => {
                let (name, feature) = decode_entry(entry)?;
                out.insert(name, feature);
            }
            (1, _) => return Err("Features.feature has the wrong wire type".into()),
            _ => {}
        }
    }
    Ok(())
}

fn decode_entry(buf: &[u8]) -> Result<(String, Feature), String> {
    let mut name = String::new();
    let mut feature = None;
    for field in Reader::new(buf) {
        match field.map_err(|_| "malformed feature map entry".to_string())? {
            (1, Field::Bytes(key)) => {
                name = String::from_utf8(key.to_vec())
                    .map_err(|_| "a feature name is not UTF-8".to_string())?
            }
            (2, Field::Bytes(value)) => feature = Some(decode_feature(value)?),
            (1 | 2, _) => return Err("feature map entry has the wrong wire type".into()),
            _ => {}
        }
    }
    let feature = feature.ok_or_else(|| format!("feature {name:?} has no value list"))?;
    Ok((name, feature))
}

/// `Feature`: the last list given wins (a oneof).
fn decode_feature(buf: &[u8]) -> Result<Feature, String> {
    let bad = |what: &str| format!("malformed {what}");
    let mut kind = None;
    for field in Reader::new(buf) {
        match field.map_err(|_| bad("Feature"))? {
            (1, Field::Bytes(list)) => {
                let mut values = Vec::new();
                for f in Reader::new(list) {
                    match f.map_err(|_| bad("BytesList"))? {
                        (1, Field::Bytes(b)) => values.push(b.to_vec()),
                        (1, _) => return Err(bad("BytesList")),
                        _ => {}
                    }
                }
                kind = Some(Feature::Bytes(values));
            }
            (2, Field::Bytes(list)) => {
                let mut values = Vec::new();
                for f in Reader::new(list) {
                    match f.map_err(|_| bad("FloatList"))? {
                        (1, Field::Bytes(packed)) => {
                            if packed.len() % 4 != 0 {
                                return Err(bad("FloatList (packed length not a multiple of 4)"));
                            }
                            values.extend(
                                packed
                                    .chunks_exact(4)
                                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                            );
                        }
                        (1, Field::Fixed32(bits)) => values.push(f32::from_bits(bits)),
                        (1, _) => return Err(bad("FloatList")),
                        _ => {}
                    }
                }
                kind = Some(Feature::Float(values));
            }
            (3, Field::Bytes(list)) => {
                let mut values = Vec::new();
                for f in Reader::new(list) {
                    match f.map_err(|_| bad("Int64List"))? {
                        (1, Field::Bytes(packed)) => {
                            let mut pos = 0;
                            while pos < packed.len() {
                                let v = crate::weights::proto::read_varint(packed, &mut pos)
                                    .ok_or_else(|| bad("Int64List (packed varints)"))?;
                                values.push(v as i64);
                            }
                        }
                        (1, Field::Varint(v)) => values.push(v as i64),
                        (1, _) => return Err(bad("Int64List")),
                        _ => {}
                    }
                }
                kind = Some(Feature::Int64(values));
            }
            (1..=3, _) => return Err(bad("Feature (wrong wire type)")),
            _ => {}
        }
    }
    kind.ok_or_else(|| "a feature has no value list".to_string())
}

/// Writes an `Example` feature by feature into reusable buffers (the per-instance path of
/// the writer allocates nothing once warm).
#[derive(Debug, Default)]
pub(crate) struct ExampleEncoder {
    /// The `Features` message so far.
    features: Vec<u8>,
    /// The current feature's list message.
    list: Vec<u8>,
    /// The current list's packed values.
    packed: Vec<u8>,
}

impl ExampleEncoder {
    /// Adds an `int64_list` feature (values as two's-complement `u64`, as protobuf writes
    /// `int64`).
    pub fn int64(&mut self, name: &str, values: impl Iterator<Item = u64>) {
        self.packed.clear();
        for v in values {
            put_varint(&mut self.packed, v);
        }
        self.list_of_packed(name, 3);
    }

    /// Adds a `float_list` feature.
    pub fn float(&mut self, name: &str, values: impl Iterator<Item = f32>) {
        self.packed.clear();
        for v in values {
            self.packed.extend_from_slice(&v.to_le_bytes());
        }
        self.list_of_packed(name, 2);
    }

    /// Adds a `bytes_list` feature.
    pub fn bytes(&mut self, name: &str, values: &[Vec<u8>]) {
        self.list.clear();
        for v in values {
            put_bytes(&mut self.list, 1, v);
        }
        self.entry(name, 1);
    }

    fn list_of_packed(&mut self, name: &str, kind: u32) {
        self.list.clear();
        // proto3 leaves an empty repeated field out.
        if !self.packed.is_empty() {
            put_bytes(&mut self.list, 1, &self.packed);
        }
        self.entry(name, kind);
    }

    /// Appends the map entry `{key: name, value: Feature { <kind>: list }}`.
    fn entry(&mut self, name: &str, kind: u32) {
        let list_len = self.list.len();
        let feature_len = 1 + varint_len(list_len) + list_len;
        let entry_len =
            1 + varint_len(name.len()) + name.len() + 1 + varint_len(feature_len) + feature_len;
        let out = &mut self.features;
        put_key(out, 1, LEN);
        put_varint(out, entry_len as u64);
        put_bytes(out, 1, name.as_bytes());
        put_key(out, 2, LEN);
        put_varint(out, feature_len as u64);
        put_bytes(out, kind, &self.list);
    }

    /// Appends the `Example` to `out` and starts a new one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        put_bytes(out, 1, &self.features);
        self.features.clear();
    }
}

fn varint_len(n: usize) -> usize {
    crate::weights::proto::varint_len(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_bytes() {
        let mut ex = Example::default();
        ex.features
            .insert("a".into(), Feature::Int64(vec![1, 300, -1]));
        ex.features
            .insert("b".into(), Feature::Float(vec![1.0, 0.0]));
        ex.features
            .insert("c".into(), Feature::Bytes(vec![b"hi".to_vec()]));
        ex.features.insert("d".into(), Feature::Int64(vec![]));
        let bytes = ex.encode();
        assert_eq!(Example::decode(&bytes).unwrap(), ex);
        // {"d": int64_list {}} alone, as protobuf writes it.
        let mut d = Example::default();
        d.features.insert("d".into(), Feature::Int64(vec![]));
        assert_eq!(
            d.encode(),
            [0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x01, b'd', 0x12, 0x02, 0x1a, 0x00]
        );
    }

    #[test]
    fn unpacked_numbers_and_repeated_keys_decode() {
        // Int64List { value: 5 value: 6 } unpacked, FloatList { value: 2.0 } unpacked.
        let int_list = [0x08, 5, 0x08, 6];
        let mut float_list = vec![0x0d];
        float_list.extend_from_slice(&2.0f32.to_le_bytes());
        let mut features = Vec::new();
        for (name, kind, list) in [
            ("x", 3, &int_list[..]),
            ("y", 2, &float_list[..]),
            ("x", 2, &float_list[..]),
        ] {
            let mut feature = Vec::new();
            put_bytes(&mut feature, kind, list);
            let mut entry = Vec::new();
            put_bytes(&mut entry, 1, name.as_bytes());
            put_bytes(&mut entry, 2, &feature);
            put_bytes(&mut features, 1, &entry);
        }
        let mut ex = Vec::new();
        put_bytes(&mut ex, 1, &features);
        let got = Example::decode(&ex).unwrap();
        assert_eq!(
            got.features["x"],
            Feature::Float(vec![2.0]),
            "the last key wins"
        );
        assert_eq!(got.features["y"], Feature::Float(vec![2.0]));
        let mut only_ints = Vec::new();
        let mut feature = Vec::new();
        put_bytes(&mut feature, 3, &int_list);
        let mut entry = Vec::new();
        put_bytes(&mut entry, 1, b"x");
        put_bytes(&mut entry, 2, &feature);
        put_bytes(&mut only_ints, 1, &entry);
        let mut ex = Vec::new();
        put_bytes(&mut ex, 1, &only_ints);
        assert_eq!(
            Example::decode(&ex).unwrap().features["x"],
            Feature::Int64(vec![5, 6])
        );
    }

    #[test]
    fn malformed_examples_are_errors() {
        let mut ex = Example::default();
        ex.features
            .insert("input_ids".into(), Feature::Int64(vec![101, 2023, 102]));
        let bytes = ex.encode();
        for cut in 1..bytes.len() {
            assert!(Example::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
