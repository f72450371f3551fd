//! Texts to sentence vectors: tokenized once, run through the encoder in batches cut by a
//! token budget, in input order.
//!
//! The encoder runs each sequence only up to its last real token (`Inputs::rows`), so a
//! batch costs the sum of its texts' lengths, not `batch × longest`: there is no padding to
//! sort away, as sentence-transformers sorts texts by length to reduce it. What matters is
//! that each forward pass has enough rows for efficient products, so batches are cut by a
//! token budget as well as a count: many short sentences go together, a long paragraph
//! fills a batch alone. A text's vector does not depend on its batch (tested bit for bit).
//!
//! A text longer than `max_seq_length` is truncated, as `convert_examples_to_features` does,
//! or ([`LongText::Windows`]) embedded as overlapping windows (the window machinery of
//! `run_squad.py`) pooled into one vector.

use super::Pipeline;
use crate::backend::Backend;
use crate::model::{Batch, Context, Pooling};
use crate::tokenizer::{EncodeOptions, Encoding, Padding, WindowOptions};
use crate::{Error, Result};

/// What [`Pipeline::embed`] does with a text longer than `max_seq_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LongText {
    /// Keep its first `max_seq_length - 2` tokens (Google's features).
    #[default]
    Truncate,
    /// Embed it as windows of `max_seq_length` positions, each starting `stride` tokens
    /// after the previous one, pooled into one vector: each token is read in the window where
    /// it has the most context (`run_squad.py: _check_is_max_context`), `[CLS]` in the first
    /// window and the final `[SEP]` in the last; `Cls` and `Pooler` pooling read the first
    /// window. A text that fits in one window gets exactly the truncating vector.
    Windows { stride: usize },
}

/// How [`Pipeline::embed`] turns texts into vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedOptions {
    pub pooling: Pooling,
    /// L2-normalise each vector (what sentence-transformers' `Normalize` module does).
    pub normalize: bool,
    /// Longest input in positions, `[CLS]`/`[SEP]` included; `None` uses the model's default.
    pub max_seq_length: Option<usize>,
    /// Most texts run through the encoder together.
    pub batch_size: usize,
    /// Most tokens in one batch (a text longer than this still runs, alone); 0: no limit.
    /// The default, 512, keeps a batch's activations in the core's caches: on 2,000 mixed
    /// texts (all-MiniLM-L6-v2, AMD Zen 5) a budget of 8192 tokens took 15.0 s on one
    /// thread, 2048 13.9 s, 512 12.3 s, 256 12.5 s (BENCHMARKS.md, "texts to vectors").
    pub max_batch_tokens: usize,
    pub long_text: LongText,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            pooling: Pooling::Mean,
            normalize: false,
            max_seq_length: None,
            batch_size: 256,
            max_batch_tokens: 512,
            long_text: LongText::Truncate,
        }
    }
}

impl<B: Backend> Pipeline<B> {
    /// One vector per text, `[texts.len(), hidden_size]` row-major, in input order.
    pub fn embed(
        &self,
        ctx: &mut Context<B>,
        texts: &[&str],
        opts: &EmbedOptions,
    ) -> Result<Vec<f32>> {
        let h = self.model.config().hidden_size;
        let max_len = opts.max_seq_length.unwrap_or(self.max_seq_length);
        let limit = self.model.config().max_position_embeddings;
        if !(2..=limit).contains(&max_len) {
            return Err(Error::InvalidArgument(format!(
                "max_seq_length {max_len} is not within 2..={limit}"
            )));
        }
        let windows = match opts.long_text {
            LongText::Windows { stride } => Some(stride),
            LongText::Truncate => None,
        };
        let encode = EncodeOptions {
            // Windows need the whole text; else stop tokenizing at the limit.
            max_seq_length: windows.is_none().then_some(max_len),
            padding: Padding::None,
        };
        let pairs: Vec<(&str, Option<&str>)> = texts.iter().map(|t| (*t, None)).collect();
        let encodings = self
            .tokenizer
            .encode_batch(&pairs, &encode, ctx.threads())?;
        let mut out = vec![0.0; texts.len() * h];
        // Texts that fit go through the batches; the others (with windows) one by one.
        let (fit, long): (Vec<usize>, Vec<usize>) =
            (0..texts.len()).partition(|&i| encodings[i].len() <= max_len);
        for batch in batches(&fit, &encodings, opts) {
            let padded = Batch::pad(batch.iter().map(|&i| {
                (
                    encodings[i].ids.as_slice(),
                    encodings[i].type_ids.as_slice(),
                )
            }));
            let v = self
                .model
                .embed(ctx, &padded.inputs(), opts.pooling, opts.normalize)?;
            for (&i, row) in batch.iter().zip(v.chunks_exact(h)) {
                out[i * h..][..h].copy_from_slice(row);
            }
        }
        if let Some(stride) = windows {
            for &i in &long {
                let v = self.embed_windows(ctx, texts[i], max_len, stride, opts)?;
                out[i * h..][..h].copy_from_slice(&v);
            }
        }
        Ok(out)
    }

    /// One text too long for one window: [`LongText::Windows`].
    fn embed_windows(
        &self,
        ctx: &mut Context<B>,
        text: &str,
        max_seq_length: usize,
        doc_stride: usize,
        opts: &EmbedOptions,
    ) -> Result<Vec<f32>> {
        let h = self.model.config().hidden_size;
        let wopts = WindowOptions {
            max_seq_length,
            doc_stride,
            max_query_length: None,
            padding: Padding::Longest,
        };
        let windows = self.tokenizer.encode_windows(None, text, &wopts)?;
        let padded = Batch::pad(
            windows
                .iter()
                .map(|w| (w.encoding.ids.as_slice(), w.encoding.type_ids.as_slice())),
        );
        let seq = padded.seq;
        let out = self.model.forward(ctx, &padded.inputs(), false)?;
        let hidden = out.read_sequence_output();
        let row = |w: usize, t: usize| &hidden[(w * seq + t) * h..][..h];
        let mut v = vec![0.0f32; h];
        match opts.pooling {
            Pooling::Cls => v.copy_from_slice(row(0, 0)),
            Pooling::Pooler => {
                let pooled = out.read_pooled_output().ok_or_else(|| {
                    Error::Unsupported(
                        "pooler pooling: the checkpoint has no bert/pooler/dense".into(),
                    )
                })?;
                v.copy_from_slice(&pooled[..h]);
            }
            Pooling::Mean | Pooling::Max => {
                // [CLS] of the first window, each text token where it has the most context,
                // the final [SEP] of the last window.
                let last = windows.len() - 1;
                let mut rows = vec![row(0, 0)];
                for (w, win) in windows.iter().enumerate() {
                    for (k, &best) in win.max_context.iter().enumerate() {
                        if best {
                            rows.push(row(w, win.text_start + k));
                        }
                    }
                }
                rows.push(row(
                    last,
                    windows[last].text_start + windows[last].span.length,
                ));
                if opts.pooling == Pooling::Mean {
                    for r in &rows {
                        v.iter_mut().zip(r.iter()).for_each(|(a, x)| *a += x);
                    }
                    let inv = 1.0 / rows.len() as f32;
                    v.iter_mut().for_each(|a| *a *= inv);
                } else {
                    v.fill(f32::NEG_INFINITY);
                    for r in &rows {
                        v.iter_mut().zip(r.iter()).for_each(|(a, x)| *a = a.max(*x));
                    }
                }
            }
        }
        if opts.normalize {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
        }
        Ok(v)
    }
}

/// The texts `indices` cut into batches in order: at most `batch_size` texts and
/// `max_batch_tokens` tokens each (a text alone may exceed the budget).
fn batches<'a>(
    indices: &'a [usize],
    encodings: &'a [Encoding],
    opts: &EmbedOptions,
) -> impl Iterator<Item = &'a [usize]> {
    let (count, budget) = (opts.batch_size.max(1), opts.max_batch_tokens);
    let mut rest = indices;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (mut n, mut tokens) = (0, 0);
        while n < rest.len() && n < count {
            let len = encodings[rest[n]].len();
            if n > 0 && budget > 0 && tokens + len > budget {
                break;
            }
            tokens += len;
            n += 1;
        }
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        Some(batch)
    })
}
