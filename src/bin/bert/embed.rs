//! `bert embed --model PATH [--pooling mean|cls|max|pooler] [--normalize] [--batch_size N]
//! [--max_batch_tokens N] [--doc_stride N] [--backend cpu|vulkan|auto]`: one sentence embedding per input line (stdin),
//! written as a JSON array of floats per line (stdout). `--doc_stride` embeds a line longer
//! than `--max_seq_length` as overlapping windows instead of truncating it.

use std::io::{BufWriter, Write};

use bert::backend::Backend;
use bert::pipeline::LongText;
use bert::{Context, EmbedOptions, Pipeline, Pooling};

use crate::flags::{Flags, MAX_BATCH};
use crate::lines::{for_each_line_within, MAX_TRUNCATED_LINE_BYTES};
use crate::model_flags;

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["do_lower_case", "normalize", "mmap"])?;
    let pooling = match flags.get("pooling").unwrap_or("mean") {
        "mean" => Pooling::Mean,
        "cls" => Pooling::Cls,
        "max" => Pooling::Max,
        "pooler" => Pooling::Pooler,
        other => {
            return Err(format!(
                "--pooling {other:?}: expected mean, cls, max or pooler"
            ))
        }
    };
    let defaults = EmbedOptions::default();
    let opts = EmbedOptions {
        pooling,
        normalize: flags.bool("normalize", false)?,
        // The pipeline's, once it is loaded.
        max_seq_length: None,
        batch_size: flags
            .size("batch_size", defaults.batch_size, MAX_BATCH)?
            .max(1),
        max_batch_tokens: flags.size("max_batch_tokens", defaults.max_batch_tokens, usize::MAX)?,
        // Windows of `--doc_stride` tokens instead of truncation, as run_squad.py cuts a
        // document.
        long_text: match flags.size("doc_stride", 0, usize::MAX)? {
            0 => LongText::Truncate,
            stride => LongText::Windows { stride },
        },
    };
    let threads = flags.threads()?;
    let job = Embed { opts, threads };
    model_flags::run_on_backend(&flags, None, job)
}

/// The command once its flags are read: embeds stdin with the pipeline.
struct Embed {
    opts: EmbedOptions,
    threads: usize,
}

impl model_flags::OnBackend for Embed {
    fn run<B: Backend>(self, pipeline: Pipeline<B>) -> Result<(), String> {
        let opts = EmbedOptions {
            max_seq_length: Some(pipeline.max_seq_length()),
            ..self.opts
        };
        embed_stdin(
            &pipeline,
            &mut Context::on(pipeline.model().backend(), self.threads),
            &opts,
        )
    }
}

fn embed_stdin<B: Backend>(
    pipeline: &Pipeline<B>,
    ctx: &mut Context<B>,
    opts: &EmbedOptions,
) -> Result<(), String> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let h = pipeline.model().config().hidden_size;
    let mut pending: Vec<String> = Vec::new();
    let mut flush = |pending: &mut Vec<String>, out: &mut BufWriter<_>| -> Result<(), String> {
        let texts: Vec<&str> = pending.iter().map(String::as_str).collect();
        let vectors = pipeline
            .embed(ctx, &texts, opts)
            .map_err(|e| e.to_string())?;
        for v in vectors.chunks_exact(h) {
            serde_json::to_writer(&mut *out, v).map_err(|e| format!("writing to stdout: {e}"))?;
            out.write_all(b"\n").map_err(stdout_err)?;
        }
        pending.clear();
        Ok(())
    };
    let stdin = std::io::stdin();
    for_each_line_within(stdin.lock(), MAX_TRUNCATED_LINE_BYTES, |_, text| {
        pending.push(text.to_string());
        // Several batches' worth at a time, so the pipeline can cut them by tokens.
        if pending.len() == READ_AHEAD.max(opts.batch_size) {
            flush(&mut pending, &mut out)?;
        }
        Ok(())
    })?;
    if !pending.is_empty() {
        flush(&mut pending, &mut out)?;
    }
    out.flush().map_err(stdout_err)
}

/// Lines read before they are embedded (memory stays bounded by this many lines).
const READ_AHEAD: usize = 1024;

fn stdout_err(e: std::io::Error) -> String {
    format!("writing to stdout: {e}")
}
