//! The training examples in memory, their order, and batches of them as the model and the
//! heads take them.
//!
//! `run_pretraining.py` streams its files (shuffled file order, `repeat()`, a 100-example
//! shuffle buffer). Here every example is read first (a data error then stops the run before
//! the first step, not hours into it) and each epoch is a full Fisher–Yates shuffle drawn
//! from the run's seed: the order is then a pure function of the seed and the checkpointed
//! position, so a resumed run sees the examples the uninterrupted one would have seen.

use std::path::PathBuf;

use crate::config::BertConfig;
use crate::heads::pretraining::MaskedLmTargets;
use crate::model::Inputs;
use crate::train::pretraining_data::{FeatureShapes, PretrainingFeatures, PretrainingRecords};
use crate::{Error, Result};

/// Reads every example of `files` (in order), checking each against the shapes and against
/// `config` (ids below `vocab_size`, segments below `type_vocab_size`); an error names the
/// file and the record's index in it.
pub fn read_examples(
    files: &[PathBuf],
    shapes: FeatureShapes,
    config: &BertConfig,
) -> Result<Vec<PretrainingFeatures>> {
    let mut out = Vec::new();
    for path in files {
        let records = PretrainingRecords::open(std::slice::from_ref(path), shapes);
        for (index, record) in records.enumerate() {
            let f = record?;
            check(&f, config)
                .map_err(|m| Error::format(path, None, format!("record {index}: {m}")))?;
            out.push(f);
        }
    }
    Ok(out)
}

/// What the model would reject later, without saying which record: checked here.
fn check(f: &PretrainingFeatures, c: &BertConfig) -> std::result::Result<(), String> {
    let bad = |name: &str, v: &[u32], limit: usize| {
        v.iter().position(|&x| x as usize >= limit).map(|i| {
            format!(
                "feature {name}: value {} at index {i} is not below {limit}",
                v[i]
            )
        })
    };
    let msg = bad("input_ids", &f.input_ids, c.vocab_size)
        .or_else(|| bad("masked_lm_ids", &f.masked_lm_ids, c.vocab_size))
        .or_else(|| bad("segment_ids", &f.segment_ids, c.type_vocab_size))
        .or_else(|| bad("input_mask", &f.input_mask, 2))
        .or_else(|| bad("next_sentence_labels", &[f.next_sentence_labels], 2));
    match msg {
        Some(m) => Err(m),
        None if f.input_ids.len() > c.max_position_embeddings => Err(format!(
            "{} positions, the model has {} (max_position_embeddings)",
            f.input_ids.len(),
            c.max_position_embeddings
        )),
        None => Ok(()),
    }
}

/// `files` as given on the command line (comma-separated, globs): see
/// [`crate::train::pretraining_data::expand_input_files`].
pub fn expand(patterns: &str) -> Result<Vec<PathBuf>> {
    crate::train::pretraining_data::expand_input_files(patterns)
}

/// A batch: the model's inputs and the heads' targets.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub input_ids: Vec<u32>,
    pub input_mask: Vec<u32>,
    pub segment_ids: Vec<u32>,
    pub targets: MaskedLmTargets,
    pub batch: usize,
    pub seq: usize,
}

impl Batch {
    /// The examples stacked (all have the shapes they were read with).
    pub fn of(examples: &[&PretrainingFeatures]) -> Batch {
        let seq = examples.first().map_or(0, |f| f.input_ids.len());
        let per_seq = examples.first().map_or(0, |f| f.masked_lm_ids.len());
        let mut b = Batch {
            batch: examples.len(),
            seq,
            targets: MaskedLmTargets {
                per_seq,
                ..MaskedLmTargets::default()
            },
            ..Batch::default()
        };
        for f in examples {
            b.input_ids.extend(&f.input_ids);
            b.input_mask.extend(&f.input_mask);
            b.segment_ids.extend(&f.segment_ids);
            let t = &mut b.targets;
            t.positions.extend(&f.masked_lm_positions);
            t.ids.extend(&f.masked_lm_ids);
            t.weights.extend(&f.masked_lm_weights);
            t.next_sentence.push(f.next_sentence_labels);
        }
        b
    }

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

/// CRC-32C of the examples' contents (a resume with other data is refused).
pub(super) fn fingerprint(examples: &[PretrainingFeatures]) -> u32 {
    let mut crc = 0u32;
    let mut b = Vec::new();
    for f in examples {
        b.clear();
        for v in [
            &f.input_ids,
            &f.input_mask,
            &f.segment_ids,
            &f.masked_lm_positions,
            &f.masked_lm_ids,
        ] {
            b.extend((v.len() as u32).to_le_bytes());
            b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        }
        b.extend(f.masked_lm_weights.iter().flat_map(|x| x.to_le_bytes()));
        b.extend(f.next_sentence_labels.to_le_bytes());
        crc = crate::weights::crc32c::crc32c_extend(crc, &b);
    }
    crc
}
