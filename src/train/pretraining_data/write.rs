//! `write_instance_to_example_files`: each instance as a `tf.train.Example` with Google's
//! seven features (ids, mask and segment ids zero-padded to `max_seq_length`; positions,
//! label ids and weights zero-padded to `max_predictions_per_seq`), round-robin over the
//! output files. Records are encoded and checksummed on all threads, a round of
//! consecutive instances at a time, and written in order.

use std::path::PathBuf;

use super::documents::Documents;
use super::example::ExampleEncoder;
use super::instances::{Instances, TrainingInstance};
use super::masking::VocabInfo;
use super::tfrecord::{frame_record, TfRecordWriter};
use super::{Options, Progress};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// Instances each thread encodes per round.
const PER_THREAD: usize = 2048;

/// Writes `instances` in the order `order` (`order[k]` is written k-th, to file
/// `k % output_files.len()`). Returns the number written.
pub fn write_instance_to_example_files(
    tokenizer: &Tokenizer,
    docs: &Documents,
    instances: &Instances,
    order: &[u32],
    options: &Options,
    output_files: &[PathBuf],
    on_progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<u64> {
    options.check()?;
    let vocab = VocabInfo::new(tokenizer)?;
    if output_files.is_empty() {
        return Err(Error::InvalidArgument("no output files".into()));
    }
    if instances.longest > options.max_seq_length
        || instances.most_predictions > options.max_predictions_per_seq
    {
        return Err(Error::InvalidArgument(format!(
            "write_instance_to_example_files: instances of up to {} tokens and {} predictions \
             do not fit max_seq_length {} and max_predictions_per_seq {}",
            instances.longest,
            instances.most_predictions,
            options.max_seq_length,
            options.max_predictions_per_seq
        )));
    }
    if !instances.fits(docs) || order.iter().any(|&i| i as usize >= instances.len()) {
        return Err(Error::InvalidArgument(
            "write_instance_to_example_files: the instances, their order and the documents \
             do not belong together"
                .into(),
        ));
    }
    let mut writers = output_files
        .iter()
        .map(TfRecordWriter::create)
        .collect::<Result<Vec<_>>>()?;
    let threads = options.thread_count();
    let files = writers.len();
    let total = order.len() as u64;
    let encode = |start: usize, end: usize| -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new(); files];
        let mut enc = Encoder::new(options);
        for (k, &i) in order.iter().enumerate().take(end).skip(start) {
            enc.encode(docs, instances, i as usize, &vocab, &mut out[k % files]);
        }
        out
    };
    let mut k = 0;
    while k < order.len() {
        let round = (threads * PER_THREAD).min(order.len() - k);
        let per = round.div_ceil(threads);
        let ranges: Vec<(usize, usize)> = (0..threads)
            .map(|t| (k + t * per, (k + (t + 1) * per).min(k + round)))
            .filter(|(a, b)| a < b)
            .collect();
        let buffers: Vec<Vec<Vec<u8>>> = if ranges.len() == 1 {
            vec![encode(ranges[0].0, ranges[0].1)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = ranges
                    .iter()
                    .map(|&(a, b)| scope.spawn(move || encode(a, b)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        for per_file in &buffers {
            for (w, bytes) in writers.iter_mut().zip(per_file) {
                w.write_framed(bytes)?;
            }
        }
        k += round;
        if !on_progress(Progress::Writing {
            written: k as u64,
            total,
        }) {
            return Err(Error::Cancelled(
                "create_pretraining_data: cancelled while writing".into(),
            ));
        }
    }
    for w in writers {
        w.finish()?;
    }
    Ok(total)
}

/// `v` as `int64` values, then `pad` zeros.
fn padded(v: &[u32], pad: usize) -> impl Iterator<Item = u64> + '_ {
    v.iter()
        .map(|&x| u64::from(x))
        .chain(std::iter::repeat(0).take(pad))
}

/// One thread's buffers for turning instances into framed records.
struct Encoder {
    max_seq_length: usize,
    max_predictions_per_seq: usize,
    instance: TrainingInstance,
    example: ExampleEncoder,
    bytes: Vec<u8>,
}

impl Encoder {
    fn new(options: &Options) -> Encoder {
        Encoder {
            max_seq_length: options.max_seq_length,
            max_predictions_per_seq: options.max_predictions_per_seq,
            instance: TrainingInstance {
                tokens: Vec::new(),
                segment_ids: Vec::new(),
                is_random_next: false,
                masked_lm_positions: Vec::new(),
                masked_lm_labels: Vec::new(),
            },
            example: ExampleEncoder::default(),
            bytes: Vec::new(),
        }
    }

    /// Appends instance `i` as a framed record to `out`.
    fn encode(
        &mut self,
        docs: &Documents,
        instances: &Instances,
        i: usize,
        vocab: &VocabInfo,
        out: &mut Vec<u8>,
    ) {
        let inst = &mut self.instance;
        instances.get_into(docs, i, vocab.cls, vocab.sep, inst);
        let seq_pad = self.max_seq_length - inst.tokens.len();
        let pred_pad = self.max_predictions_per_seq - inst.masked_lm_positions.len();
        let ex = &mut self.example;
        // Google's feature order (an OrderedDict).
        ex.int64("input_ids", padded(&inst.tokens, seq_pad));
        ex.int64(
            "input_mask",
            std::iter::repeat(1)
                .take(inst.tokens.len())
                .chain(std::iter::repeat(0).take(seq_pad)),
        );
        ex.int64("segment_ids", padded(&inst.segment_ids, seq_pad));
        ex.int64(
            "masked_lm_positions",
            padded(&inst.masked_lm_positions, pred_pad),
        );
        ex.int64("masked_lm_ids", padded(&inst.masked_lm_labels, pred_pad));
        ex.float(
            "masked_lm_weights",
            std::iter::repeat(1.0)
                .take(inst.masked_lm_positions.len())
                .chain(std::iter::repeat(0.0).take(pred_pad)),
        );
        ex.int64(
            "next_sentence_labels",
            std::iter::once(u64::from(inst.is_random_next)),
        );
        self.bytes.clear();
        ex.finish(&mut self.bytes);
        frame_record(out, &self.bytes);
    }
}
