//! `create_pretraining_data.py`: masked-LM / next-sentence training data from plain text
//! (one sentence per line, blank lines between documents), written as TFRecords of
//! `tf.train.Example`s, record for record what Google's script writes for the same input
//! and flags (Python 3: the script draws from CPython's `random.Random(random_seed)`, which
//! [`PyRandom`] reproduces call for call).
//!
//! The order of work is Google's, because the random stream depends on it: read every
//! document of every input file; shuffle the documents; `dupe_factor` times, create the
//! instances of each document (a random next segment may come from any document of any
//! file); shuffle all instances; write them round-robin over the output files. The
//! document shuffle and the instance shuffle are global, so every document must be in
//! memory before the first instance and every instance before the first is written; what
//! is kept is compact instead (token ids, and instances as spans of them plus their masks:
//! see [`Documents`] and [`Instances`]). The parts that do not draw random numbers run on
//! all threads: tokenizing each block of input lines, and encoding and checksumming
//! records in output order. The output does not depend on the thread count.
//!
//! [`PretrainingRecords`] reads such files back for pre-training (`run_pretraining.py`'s
//! `input_fn`), checking names, types and shapes.

mod documents;
mod example;
mod features;
mod glob;
mod instances;
mod masking;
mod random;
mod tfrecord;
mod write;

use std::path::PathBuf;

pub use documents::Documents;
pub use example::{Example, Feature};
pub use features::{FeatureShapes, PretrainingFeatures, PretrainingRecords};
pub use glob::expand_input_files;
pub use instances::{Instances, TrainingInstance};
pub use random::PyRandom;
pub use tfrecord::{frame_record, TfRecordReader, TfRecordWriter};
pub use write::write_instance_to_example_files;

use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use instances::{create_instances_from_document, AllDocuments, InstanceParams, InstanceScratch};
use masking::{MaskParams, VocabInfo};

/// The flags of `create_pretraining_data.py` that shape the data, with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Maximum sequence length, `[CLS]` and both `[SEP]`s included (at least 5).
    pub max_seq_length: usize,
    /// Maximum number of masked-LM predictions per sequence.
    pub max_predictions_per_seq: usize,
    /// Seed of `random.Random`.
    pub random_seed: i64,
    /// Number of passes over the documents (each with new masks and pairs).
    pub dupe_factor: usize,
    /// Fraction of the tokens to mask (rounded half to even, at least 1).
    pub masked_lm_prob: f64,
    /// Probability of a shorter target length (uniform in `2..=max_seq_length - 3`).
    pub short_seq_prob: f64,
    /// Mask whole words (a piece and its `##` continuations) instead of single pieces.
    pub do_whole_word_mask: bool,
    /// Threads for tokenizing and encoding; 0 means one per core.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_seq_length: 128,
            max_predictions_per_seq: 20,
            random_seed: 12345,
            dupe_factor: 10,
            masked_lm_prob: 0.15,
            short_seq_prob: 0.1,
            do_whole_word_mask: false,
            threads: 1,
        }
    }
}

impl Options {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.max_seq_length < 5 || u32::try_from(self.max_seq_length).is_err() {
            // Below 5, `[CLS] A [SEP] B [SEP]` cannot hold a token of each segment (Google's
            // script fails an assertion there).
            return bad(format!(
                "max_seq_length {} must be at least 5",
                self.max_seq_length
            ));
        }
        if u32::try_from(self.max_predictions_per_seq).is_err() {
            return bad(format!(
                "max_predictions_per_seq {} is too large",
                self.max_predictions_per_seq
            ));
        }
        if !self.masked_lm_prob.is_finite() || !self.short_seq_prob.is_finite() {
            return bad("masked_lm_prob and short_seq_prob must be finite numbers".into());
        }
        Ok(())
    }

    fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Where a run is, for a progress callback (which returns `false` to cancel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Reading and tokenizing the input: bytes done of all files' bytes.
    Reading { bytes: u64, total_bytes: u64 },
    /// Creating instances: documents done of `dupe_factor × documents`.
    Creating {
        documents: u64,
        total_documents: u64,
        instances: u64,
    },
    /// Writing: instances written of all.
    Writing { written: u64, total: u64 },
}

/// What a run read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The input files, in the order read.
    pub input_files: Vec<PathBuf>,
    /// Bytes of input text.
    pub input_bytes: u64,
    /// Non-empty documents.
    pub documents: usize,
    /// WordPiece tokens of all documents.
    pub tokens: usize,
    /// Instances written (all files).
    pub instances: u64,
}

/// `create_training_instances` after reading: shuffles the documents, creates the instances
/// of every document `dupe_factor` times, and shuffles the instances. Returns the instances
/// and their output order (`order[k]` is the instance written k-th).
pub fn create_training_instances(
    tokenizer: &Tokenizer,
    docs: &Documents,
    options: &Options,
    rng: &mut PyRandom,
    on_progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<(Instances, Vec<u32>)> {
    options.check()?;
    let vocab = VocabInfo::new(tokenizer)?;
    let n = u32::try_from(docs.len())
        .map_err(|_| Error::InvalidArgument("more than 2^32 documents".into()))?;
    let mut order: Vec<u32> = (0..n).collect();
    rng.shuffle(&mut order);

    let params = InstanceParams {
        max_seq_length: options.max_seq_length,
        short_seq_prob: options.short_seq_prob,
        mask: MaskParams {
            masked_lm_prob: options.masked_lm_prob,
            max_predictions_per_seq: options.max_predictions_per_seq,
            do_whole_word_mask: options.do_whole_word_mask,
        },
    };
    let total = (options.dupe_factor as u64).saturating_mul(docs.len() as u64);
    let mut instances = Instances::default();
    let mut scratch = InstanceScratch::default();
    let mut done = 0u64;
    for _ in 0..options.dupe_factor {
        for document_index in 0..order.len() {
            create_instances_from_document(
                AllDocuments {
                    docs,
                    order: &order,
                },
                document_index,
                &params,
                &vocab,
                rng,
                &mut scratch,
                &mut instances,
            );
            done += 1;
            if done % 1024 == 0 || done == total {
                let p = Progress::Creating {
                    documents: done,
                    total_documents: total,
                    instances: instances.len() as u64,
                };
                if !on_progress(p) {
                    return Err(Error::Cancelled(
                        "create_pretraining_data: cancelled while creating instances".into(),
                    ));
                }
            }
        }
    }
    let count = u32::try_from(instances.len())
        .map_err(|_| Error::InvalidArgument("more than 2^32 instances".into()))?;
    let mut written: Vec<u32> = (0..count).collect();
    rng.shuffle(&mut written);
    Ok((instances, written))
}

/// The whole script: reads `input_files` (see [`expand_input_files`] for patterns),
/// creates the instances and writes them round-robin to `output_files`, each written to a
/// temporary file and renamed when complete.
pub fn create_pretraining_data(
    tokenizer: &Tokenizer,
    input_files: &[PathBuf],
    output_files: &[PathBuf],
    options: &Options,
    on_progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Summary> {
    options.check()?;
    if input_files.is_empty() {
        return Err(Error::InvalidArgument("no input files".into()));
    }
    if output_files.is_empty() {
        return Err(Error::InvalidArgument("no output files".into()));
    }
    let threads = options.thread_count();
    let mut total_bytes = 0u64;
    for f in input_files {
        total_bytes += std::fs::metadata(f).map_err(|e| Error::io(f, e))?.len();
    }
    let docs = Documents::read(tokenizer, input_files, threads, &mut |bytes| {
        on_progress(Progress::Reading { bytes, total_bytes })
    })?;
    let mut rng = PyRandom::new(options.random_seed);
    let (instances, order) =
        create_training_instances(tokenizer, &docs, options, &mut rng, on_progress)?;
    let written = write_instance_to_example_files(
        tokenizer,
        &docs,
        &instances,
        &order,
        options,
        output_files,
        on_progress,
    )?;
    Ok(Summary {
        input_files: input_files.to_vec(),
        input_bytes: total_bytes,
        documents: docs.len(),
        tokens: docs.num_tokens(),
        instances: written,
    })
}
