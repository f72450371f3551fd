//! `bert extract-features`: Google's `extract_features.py` with its flags and its output.
//!
//! Input: one example per line, `text_a ||| text_b` for pairs (split at the last ` ||| `, as
//! the original regex `^(.*) \|\|\| (.*)$` does), each line stripped of surrounding whitespace.
//! Output: JSON Lines, `{"linex_index": N, "features": [{"token": T, "layers": [{"index": L,
//! "values": [...]}]}]}` for every real token, values rounded to 6 decimals and printed as
//! Python's `json.dumps` prints them, so the file is byte-comparable with the original's.
//! Unlike the original, invalid UTF-8 is an error (Google drops such bytes silently).

use std::path::Path;

use bert::backend::Backend;
use bert::pyjson::{push_py_str, py_repr, py_round};
use bert::{Context, Pipeline};

use crate::flags::{Flags, MAX_BATCH};
use crate::lines::{self, for_each_line_within, MAX_TRUNCATED_LINE_BYTES};
use crate::model_flags;

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &["do_lower_case", "use_tpu", "use_one_hot_embeddings", "mmap"],
    )?;
    let input = flags.required("input_file")?.to_string();
    let output = flags.required("output_file")?.to_string();
    let layers = flags.get("layers").unwrap_or("-1,-2,-3,-4").to_string();
    let batch_size = flags.size("batch_size", 32, MAX_BATCH)?.max(1);
    let threads = flags.threads()?;
    // Accepted so that Google's command lines run unchanged; they select TPU execution or
    // a one-hot embedding lookup, which compute the same numbers here.
    for f in ["use_tpu", "use_one_hot_embeddings"] {
        flags.bool(f, false)?;
    }
    for f in ["master", "num_tpu_cores"] {
        flags.get(f);
    }
    let job = Extract {
        input,
        output,
        layers,
        batch_size,
        threads,
    };
    // extract_features.py's default max_seq_length is 128.
    model_flags::run_on_backend(&flags, Some(128), job)
}

/// The command once its flags are read.
struct Extract {
    input: String,
    output: String,
    layers: String,
    batch_size: usize,
    threads: usize,
}

impl model_flags::OnBackend for Extract {
    fn run<B: Backend>(self, pipeline: Pipeline<B>) -> Result<(), String> {
        let Extract {
            input,
            output,
            layers,
            batch_size,
            threads,
        } = self;
        extract(&pipeline, (&input, &output), &layers, batch_size, threads)
    }
}

fn extract<B: Backend>(
    pipeline: &Pipeline<B>,
    (input, output): (&str, &str),
    layers: &str,
    batch_size: usize,
    threads: usize,
) -> Result<(), String> {
    let num_layers = pipeline.model().config().num_hidden_layers;
    let layer_indexes = parse_layers(layers, num_layers)?;

    let mut examples: Vec<(String, Option<String>)> = Vec::new();
    for_each_line_within(lines::open(input)?, MAX_TRUNCATED_LINE_BYTES, |_, line| {
        examples.push(split_example(py_strip(line)));
        Ok(())
    })?;

    let mut text = String::new();
    let mut ctx = Context::on(pipeline.model().backend(), threads);
    for (chunk_index, chunk) in examples.chunks(batch_size).enumerate() {
        let pairs: Vec<(&str, Option<&str>)> = chunk
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_deref()))
            .collect();
        write_batch(
            pipeline,
            &mut ctx,
            &pairs,
            chunk_index * batch_size,
            &layer_indexes,
            &mut text,
        )?;
    }
    write_atomically(Path::new(output), text.as_bytes())
}

/// `--layers=-1,-2`: Python-style indexes into the list of encoder layers.
fn parse_layers(spec: &str, num_layers: usize) -> Result<Vec<(i64, usize)>, String> {
    let n = num_layers as i64;
    spec.split(',')
        .map(|s| {
            let i: i64 = s
                .trim()
                .parse()
                .map_err(|_| format!("--layers: cannot parse {s:?}"))?;
            let resolved = if i < 0 { n + i } else { i };
            if (0..n).contains(&resolved) {
                Ok((i, resolved as usize))
            } else {
                Err(format!(
                    "--layers: index {i} does not exist, the model has {num_layers} layers \
                     (valid: -{num_layers}..{})",
                    num_layers - 1
                ))
            }
        })
        .collect()
}

/// Python's `str.strip()`: Unicode whitespace plus the separators U+001C..U+001F.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

fn split_example(line: &str) -> (String, Option<String>) {
    match line.rfind(" ||| ") {
        Some(at) => (line[..at].to_string(), Some(line[at + 5..].to_string())),
        None => (line.to_string(), None),
    }
}

fn write_batch<B: Backend>(
    pipeline: &Pipeline<B>,
    ctx: &mut Context<B>,
    pairs: &[(&str, Option<&str>)],
    first_index: usize,
    layers: &[(i64, usize)],
    text: &mut String,
) -> Result<(), String> {
    let err = |e: bert::Error| e.to_string();
    let (encodings, batch) = pipeline
        .encode(pairs, pipeline.max_seq_length(), ctx.threads())
        .map_err(err)?;
    let out = pipeline
        .model()
        .forward(ctx, &batch.inputs(), true)
        .map_err(err)?;
    let h = out.hidden_size();
    // The layers asked for, read once per batch (a copy from a device's memory).
    let mut kept = vec![None; pipeline.model().config().num_hidden_layers];
    for &(_, layer) in layers {
        if kept[layer].is_none() {
            kept[layer] = out.read_encoder_layer(layer);
        }
    }
    for (b, enc) in encodings.iter().enumerate() {
        text.push_str(&format!(
            "{{\"linex_index\": {}, \"features\": [",
            first_index + b
        ));
        let real = enc.attention_mask.iter().filter(|&&m| m == 1).count();
        for (t, token) in enc.tokens[..real].iter().enumerate() {
            if t > 0 {
                text.push_str(", ");
            }
            text.push_str("{\"token\": ");
            push_py_str(text, token);
            text.push_str(", \"layers\": [");
            for (j, &(index, layer)) in layers.iter().enumerate() {
                if j > 0 {
                    text.push_str(", ");
                }
                let hidden = kept
                    .get(layer)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| format!("layer {layer} was not kept"))?;
                let row = &hidden[(b * batch.seq + t) * h..][..h];
                text.push_str(&format!("{{\"index\": {index}, \"values\": ["));
                for (k, v) in row.iter().enumerate() {
                    if k > 0 {
                        text.push_str(", ");
                    }
                    text.push_str(&py_repr(py_round(f64::from(*v), 6)));
                }
                text.push_str("]}");
            }
            text.push_str("]}");
        }
        text.push_str("]}\n");
    }
    Ok(())
}

/// Writes `bytes` to `path` as libbert writes every output ([`bert::output::write_with`]):
/// a regular file is replaced atomically (a failed run never leaves a half-written output),
/// a device or FIFO is written in place, a symbolic link's target is replaced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    bert::output::write_bytes(path, bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_last_separator() {
        assert_eq!(
            split_example("a ||| b ||| c"),
            ("a ||| b".to_string(), Some("c".to_string()))
        );
        assert_eq!(split_example("a|||b"), ("a|||b".to_string(), None));
    }

    #[test]
    fn layers_are_python_indexes() {
        assert_eq!(parse_layers("-1,-2", 2).unwrap(), vec![(-1, 1), (-2, 0)]);
        assert_eq!(parse_layers("0", 2).unwrap(), vec![(0, 0)]);
        assert!(parse_layers("-3", 2)
            .unwrap_err()
            .contains("does not exist"));
        assert!(parse_layers("x", 2).is_err());
    }

    #[test]
    fn strip_is_pythons() {
        assert_eq!(py_strip("\u{1f} a b\u{3000}\r"), "a b");
    }
}
