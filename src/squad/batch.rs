//! Feature batches as the model takes them: `input_ids`, `input_mask`, `segment_ids`
//! `[batch, seq]` row-major, and in training mode the start and end positions `[batch]`.

use super::features::InputFeatures;
use crate::model::Inputs;
use crate::{Error, Result};

/// A batch of features, each padded to `max_seq_length` as Google feeds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureBatch {
    /// `[batch]`: which feature each row is (to match logits back in `RawResult`s).
    pub unique_ids: Vec<u64>,
    /// `[batch, seq]`.
    pub input_ids: Vec<u32>,
    /// `[batch, seq]`: 1 for real tokens, 0 for padding.
    pub input_mask: Vec<u32>,
    /// `[batch, seq]`.
    pub segment_ids: Vec<u32>,
    /// `[batch]` in training mode (features from `is_training` conversion), else empty.
    pub start_positions: Vec<u32>,
    /// `[batch]`, like `start_positions`.
    pub end_positions: Vec<u32>,
    pub batch: usize,
    pub seq: usize,
}

impl FeatureBatch {
    /// Stacks `features` (at least one, all of one length). Start and end positions are
    /// filled when every feature has them; a mix of training and prediction features is an
    /// error.
    pub fn new(features: &[&InputFeatures]) -> Result<FeatureBatch> {
        let Some(first) = features.first() else {
            return Err(Error::InvalidArgument("a batch needs a feature".into()));
        };
        let seq = first.input_ids.len();
        let training = first.start_position.is_some();
        let mut b = FeatureBatch {
            batch: features.len(),
            seq,
            ..FeatureBatch::default()
        };
        for f in features {
            let lengths = [f.input_ids.len(), f.input_mask.len(), f.segment_ids.len()];
            if lengths != [seq; 3] {
                return Err(Error::InvalidArgument(format!(
                    "feature {}: input lengths {lengths:?}, the batch has {seq}",
                    f.unique_id
                )));
            }
            b.unique_ids.push(f.unique_id);
            b.input_ids.extend_from_slice(&f.input_ids);
            b.input_mask.extend_from_slice(&f.input_mask);
            b.segment_ids.extend_from_slice(&f.segment_ids);
            match (training, f.start_position, f.end_position) {
                (true, Some(s), Some(e)) if s < seq && e < seq => {
                    b.start_positions.push(s as u32);
                    b.end_positions.push(e as u32);
                }
                (false, None, None) => {}
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "feature {}: start/end positions {:?}/{:?} do not fit a {} batch of \
                         length {seq}",
                        f.unique_id,
                        f.start_position,
                        f.end_position,
                        if training { "training" } else { "prediction" }
                    )))
                }
            }
        }
        Ok(b)
    }

    /// The features `features[i..i + batch_size]` for each `i`, in order.
    pub fn batches(
        features: &[InputFeatures],
        batch_size: usize,
    ) -> impl Iterator<Item = Result<FeatureBatch>> + '_ {
        features.chunks(batch_size.max(1)).map(|chunk| {
            let refs: Vec<&InputFeatures> = chunk.iter().collect();
            FeatureBatch::new(&refs)
        })
    }

    /// Cuts every row to the longest real (mask 1) length of the batch. The real positions
    /// compute the same numbers (padded keys are masked either way), but the logits are
    /// shorter than Google's, which changes predictions only where a padding position
    /// would have taken one of the `n_best_size` slots (see [`super::predictions`]).
    pub fn trim_to_longest(&mut self) {
        let longest = self
            .input_mask
            .chunks(self.seq.max(1))
            .map(|row| row.iter().rposition(|&m| m != 0).map_or(0, |p| p + 1))
            .max()
            .unwrap_or(0);
        if longest == self.seq {
            return;
        }
        let cut = |v: &mut Vec<u32>| {
            *v = v
                .chunks(self.seq.max(1))
                .flat_map(|row| row[..longest].iter().copied())
                .collect();
        };
        cut(&mut self.input_ids);
        cut(&mut self.input_mask);
        cut(&mut self.segment_ids);
        self.seq = longest;
    }

    /// The encoder's view.
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            input_ids: &self.input_ids,
            segment_ids: &self.segment_ids,
            input_mask: &self.input_mask,
            batch: self.batch,
            seq: self.seq,
        }
    }
}
