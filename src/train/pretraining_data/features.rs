//! Reading `create_pretraining_data`'s TFRecords back as `run_pretraining.py`'s
//! `input_fn` does (`_decode_record` with `name_to_features`): seven fixed-length features,
//! checked by name, list type and length; extra features are ignored, as
//! `tf.parse_single_example` ignores them. Values must fit the `int32` TF casts them to,
//! and no id, mask or position may be negative.

use std::path::{Path, PathBuf};

use super::example::{Example, Feature};
use super::tfrecord::TfRecordReader;
use crate::{Error, Result};

/// One decoded training example, as `run_pretraining.py`'s model function receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainingFeatures {
    /// `[max_seq_length]`: `[CLS] A [SEP] B [SEP]` ids (masked), zero-padded.
    pub input_ids: Vec<u32>,
    /// `[max_seq_length]`: 1 for real tokens, 0 for padding.
    pub input_mask: Vec<u32>,
    /// `[max_seq_length]`: 0 for A, 1 for B, 0 for padding.
    pub segment_ids: Vec<u32>,
    /// `[max_predictions_per_seq]`: masked positions, zero-padded.
    pub masked_lm_positions: Vec<u32>,
    /// `[max_predictions_per_seq]`: original ids at those positions, zero-padded.
    pub masked_lm_ids: Vec<u32>,
    /// `[max_predictions_per_seq]`: 1.0 for a real prediction, 0.0 for padding.
    pub masked_lm_weights: Vec<f32>,
    /// 1 if B is a random document's text, 0 if it is A's continuation.
    pub next_sentence_labels: u32,
}

/// The shapes `run_pretraining.py` parses with (`--max_seq_length`,
/// `--max_predictions_per_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureShapes {
    pub max_seq_length: usize,
    pub max_predictions_per_seq: usize,
}

impl PretrainingFeatures {
    /// Decodes one serialized `tf.train.Example`; the error says which feature is wrong.
    pub fn decode(bytes: &[u8], shapes: FeatureShapes) -> std::result::Result<Self, String> {
        let ex = Example::decode(bytes)?;
        let seq = shapes.max_seq_length;
        let pred = shapes.max_predictions_per_seq;
        let ints = |name: &str, len: usize| int_feature(&ex, name, len);
        // In `name_to_features` order, so the first wrong feature is the one named.
        let input_ids = ints("input_ids", seq)?;
        let input_mask = ints("input_mask", seq)?;
        let segment_ids = ints("segment_ids", seq)?;
        let masked_lm_positions = ints("masked_lm_positions", pred)?;
        let masked_lm_ids = ints("masked_lm_ids", pred)?;
        let masked_lm_weights = match ex.features.get("masked_lm_weights") {
            Some(Feature::Float(v)) if v.len() == pred => v.clone(),
            other => {
                return Err(mismatch(
                    &ex,
                    "masked_lm_weights",
                    "float_list",
                    pred,
                    other,
                ))
            }
        };
        let next = ints("next_sentence_labels", 1)?;
        // `tf.gather` would fail on these at run time.
        if let Some(p) = masked_lm_positions.iter().find(|&&p| p as usize >= seq) {
            return Err(format!(
                "feature masked_lm_positions: position {p} is outside max_seq_length {seq}"
            ));
        }
        Ok(PretrainingFeatures {
            input_ids,
            input_mask,
            segment_ids,
            masked_lm_positions,
            masked_lm_ids,
            masked_lm_weights,
            next_sentence_labels: next[0],
        })
    }
}

fn int_feature(ex: &Example, name: &str, len: usize) -> std::result::Result<Vec<u32>, String> {
    match ex.features.get(name) {
        Some(Feature::Int64(v)) if v.len() == len => v
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                u32::try_from(x)
                    .ok()
                    .filter(|&x| x <= i32::MAX as u32)
                    .ok_or_else(|| {
                        format!("feature {name}: value {x} at index {i} is out of range")
                    })
            })
            .collect(),
        other => Err(mismatch(ex, name, "int64_list", len, other)),
    }
}

fn mismatch(ex: &Example, name: &str, kind: &str, len: usize, got: Option<&Feature>) -> String {
    match got {
        None => {
            let present: Vec<&str> = ex.features.keys().map(String::as_str).collect();
            format!(
                "no feature {name} (features present: {}); is this create_pretraining_data output?",
                present.join(", ")
            )
        }
        Some(f) if f.kind() != kind => {
            format!("feature {name} is a {}, expected a {kind}", f.kind())
        }
        Some(f) => format!(
            "feature {name} has {} values, expected {len} (do --max_seq_length and \
             --max_predictions_per_seq match the data?)",
            f.len()
        ),
    }
}

/// The decoded examples of several TFRecord files, one file after another. Errors name the
/// file, the record and what is wrong; after an error the iterator ends.
#[derive(Debug)]
pub struct PretrainingRecords {
    files: Vec<PathBuf>,
    next_file: usize,
    reader: Option<TfRecordReader>,
    shapes: FeatureShapes,
    buf: Vec<u8>,
    failed: bool,
}

impl PretrainingRecords {
    /// Reads `files` in the given order.
    pub fn open(files: &[PathBuf], shapes: FeatureShapes) -> PretrainingRecords {
        PretrainingRecords {
            files: files.to_vec(),
            next_file: 0,
            reader: None,
            shapes,
            buf: Vec::new(),
            failed: false,
        }
    }

    fn advance(&mut self) -> Result<Option<PretrainingFeatures>> {
        loop {
            let reader = match self.reader.as_mut() {
                Some(r) => r,
                None => {
                    let Some(path) = self.files.get(self.next_file) else {
                        return Ok(None);
                    };
                    self.next_file += 1;
                    self.reader.insert(TfRecordReader::open(path)?)
                }
            };
            let index = reader.index();
            if !reader.read_into(&mut self.buf)? {
                self.reader = None;
                continue;
            }
            return PretrainingFeatures::decode(&self.buf, self.shapes)
                .map(Some)
                .map_err(|m| record_error(reader.path(), index, m));
        }
    }
}

fn record_error(path: &Path, index: u64, message: String) -> Error {
    Error::format(path, None, format!("record {index}: {message}"))
}

impl Iterator for PretrainingRecords {
    type Item = Result<PretrainingFeatures>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.advance() {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
