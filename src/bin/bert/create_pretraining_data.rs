//! `bert create-pretraining-data`: Google's `create_pretraining_data.py` with its flags and,
//! for the same input and flags, the same records in the same order (see
//! `bert::train::pretraining_data`). `--threads N` (default: every core) only changes how
//! fast, never what is written.

use std::path::PathBuf;
use std::time::Instant;

use bert::tokenizer::Tokenizer;
use bert::train::pretraining_data::{self, Options, Progress};

use crate::flags::Flags;

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["do_lower_case", "do_whole_word_mask"])?;
    let input = flags.required("input_file")?.to_string();
    let output = flags.required("output_file")?.to_string();
    let vocab = flags.required("vocab_file")?.to_string();
    let lower = flags.bool("do_lower_case", true)?;
    let defaults = Options::default();
    let options = Options {
        max_seq_length: flags.parsed("max_seq_length", defaults.max_seq_length)?,
        max_predictions_per_seq: flags
            .parsed("max_predictions_per_seq", defaults.max_predictions_per_seq)?,
        random_seed: flags.parsed("random_seed", defaults.random_seed)?,
        dupe_factor: flags.parsed("dupe_factor", defaults.dupe_factor)?,
        masked_lm_prob: flags.parsed("masked_lm_prob", defaults.masked_lm_prob)?,
        short_seq_prob: flags.parsed("short_seq_prob", defaults.short_seq_prob)?,
        do_whole_word_mask: flags.bool("do_whole_word_mask", defaults.do_whole_word_mask)?,
        threads: flags.parsed("threads", 0usize)?,
    };
    flags.finish()?;

    let err = |e: bert::Error| e.to_string();
    let tokenizer = Tokenizer::from_vocab_file(&vocab, lower).map_err(err)?;
    let inputs = pretraining_data::expand_input_files(&input).map_err(err)?;
    let outputs: Vec<PathBuf> = output.split(',').map(PathBuf::from).collect();
    if outputs.iter().any(|p| p.as_os_str().is_empty()) {
        return Err(format!("--output_file {output:?}: an empty file name"));
    }
    eprintln!("*** Reading from input files ***");
    for f in &inputs {
        eprintln!("  {}", f.display());
    }
    eprintln!("*** Writing to output files ***");
    for f in &outputs {
        eprintln!("  {}", f.display());
    }
    let start = Instant::now();
    let mut read_done = None;
    let mut on_progress = |p: Progress| {
        if let Progress::Creating { .. } = p {
            read_done.get_or_insert_with(|| start.elapsed());
        }
        true
    };
    let summary = pretraining_data::create_pretraining_data(
        &tokenizer,
        &inputs,
        &outputs,
        &options,
        &mut on_progress,
    )
    .map_err(err)?;
    let seconds = start.elapsed().as_secs_f64();
    let mb = summary.input_bytes as f64 / 1e6;
    eprintln!("Wrote {} total instances", summary.instances);
    eprintln!(
        "{} documents, {} tokens; {mb:.2} MB of text in {seconds:.2} s ({:.2} MB/s; reading and \
         tokenizing {:.2} s)",
        summary.documents,
        summary.tokens,
        mb / seconds.max(1e-9),
        read_done.map_or(0.0, |d| d.as_secs_f64()),
    );
    Ok(())
}
