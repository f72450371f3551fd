//! run_classifier.py: `convert_single_example` and batching.
//!
//! Features are `[CLS] A [SEP] (B [SEP])` truncated to `max_seq_length` by
//! `_truncate_seq_pair`, exactly as Google builds them. One named difference: Google pads
//! every example to `max_seq_length`; a batch here is padded to its longest example. Padded
//! keys get the −10000 mask adder either way, so every real position computes the same
//! numbers (`exp(−10000)` is 0 in f32), while short batches cost less.

use super::processors::InputExample;
use crate::model::Batch;
use crate::tokenizer::{EncodeOptions, Padding, Tokenizer};
use crate::{Error, Result};

/// One example as model inputs, not padded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFeatures {
    pub input_ids: Vec<u32>,
    pub segment_ids: Vec<u32>,
    /// Index into the label list; 0 for unlabelled (test) examples, as Google does.
    pub label_id: u32,
}

/// Tokenizes `examples` on `threads` threads and maps labels to ids. A label missing from
/// `labels` is an error naming the example.
pub fn convert_examples(
    examples: &[InputExample],
    labels: &[String],
    tokenizer: &Tokenizer,
    max_seq_length: usize,
    threads: usize,
) -> Result<Vec<InputFeatures>> {
    let opts = EncodeOptions {
        max_seq_length: Some(max_seq_length),
        padding: Padding::None,
    };
    let pairs: Vec<(&str, Option<&str>)> = examples
        .iter()
        .map(|e| (e.text_a.as_str(), e.text_b.as_deref()))
        .collect();
    let encodings = tokenizer.encode_batch(&pairs, &opts, threads)?;
    examples
        .iter()
        .zip(encodings)
        .map(|(e, enc)| {
            let label_id = match &e.label {
                None => 0,
                Some(l) => labels.iter().position(|x| x == l).ok_or_else(|| {
                    Error::Label(format!(
                        "example {} (line {}): label {l:?} is not one of {labels:?}",
                        e.guid, e.line
                    ))
                })? as u32,
            };
            Ok(InputFeatures {
                input_ids: enc.ids,
                segment_ids: enc.type_ids,
                label_id,
            })
        })
        .collect()
}

/// Features padded to the longest one (id 0, segment 0, mask 0).
pub fn pad(features: &[&InputFeatures]) -> Batch {
    Batch::pad(
        features
            .iter()
            .map(|f| (f.input_ids.as_slice(), f.segment_ids.as_slice())),
    )
}

/// The label ids of `features`.
pub fn labels(features: &[&InputFeatures]) -> Vec<u32> {
    features.iter().map(|f| f.label_id).collect()
}
