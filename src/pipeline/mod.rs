//! A model together with its tokenizer: text in, vectors out.
//!
//! This is what `extract_features.py` and sentence-embedding users do by hand: find the
//! vocabulary beside the checkpoint, tokenize with Google's feature construction
//! (`[CLS] A [SEP] (B [SEP])`, `_truncate_seq_pair`), pad a batch to its longest sequence,
//! run the encoder and pool.

mod embed;

use std::path::{Path, PathBuf};

pub use embed::{EmbedOptions, LongText};

use crate::backend::{Backend, Cpu};
use crate::model::{Batch, BertModel, ModelOptions};
use crate::tokenizer::{EncodeOptions, Encoding, Padding, Tokenizer, Vocab};
use crate::weights::native::{self, NativeModel};
use crate::{Error, Result};

/// A loaded model and the tokenizer that belongs to it, on a back end (the CPU unless said
/// otherwise). Immutable and `Send + Sync`: share one between threads, each with its own
/// [`Context`](crate::model::Context).
#[derive(Debug)]
pub struct Pipeline<B: Backend = Cpu> {
    model: BertModel<B>,
    tokenizer: Tokenizer,
    max_seq_length: usize,
}

impl Pipeline {
    /// Loads a model (any format [`BertModel::load`] reads) and its vocabulary: the one stored
    /// in a `.bert` file, else `vocab.txt` in the model directory (or beside the model file).
    ///
    /// `do_lower_case`: `None` takes the `.bert` header's flag, else `do_lower_case` from a
    /// Hugging Face `tokenizer_config.json` beside the model, else `true` (Google's default).
    pub fn load(path: impl AsRef<Path>, do_lower_case: Option<bool>) -> Result<Pipeline> {
        Pipeline::load_with(path, do_lower_case, &ModelOptions::default())
    }

    /// [`Pipeline::load`] with model options (e.g. `dtype: Some(DType::Int8)` to quantize an
    /// f32 model while loading it).
    pub fn load_with(
        path: impl AsRef<Path>,
        do_lower_case: Option<bool>,
        opts: &ModelOptions,
    ) -> Result<Pipeline> {
        Pipeline::load_on(Cpu, path, do_lower_case, opts)
    }
}

impl<B: Backend> Pipeline<B> {
    /// [`Pipeline::load_with`] on another back end (e.g. `backend::Vulkan` with the `vulkan` feature).
    pub fn load_on(
        backend: B,
        path: impl AsRef<Path>,
        do_lower_case: Option<bool>,
        opts: &ModelOptions,
    ) -> Result<Pipeline<B>> {
        let path = path.as_ref();
        let dir = model_dir(path);
        let (model, tokenizer) = if native::is_native_file(path) {
            // One map and one header decode for the model and its vocabulary.
            let native = NativeModel::open(path)?;
            let w = crate::model::native_weights(&native, opts)?;
            let model = BertModel::build(backend, native.config().clone(), &w, false)?;
            let vocab = Vocab::from_tokens(native.vocab().iter().map(String::as_str))?;
            let lower = do_lower_case.unwrap_or(native.do_lower_case());
            (model, Tokenizer::new(vocab, lower)?)
        } else {
            let model = BertModel::load_on(backend, path, opts)?;
            let vocab = dir.join("vocab.txt");
            if !vocab.is_file() {
                return Err(Error::Vocab(format!(
                    "no vocab.txt beside the model in {} (pass the vocabulary explicitly)",
                    dir.display()
                )));
            }
            let lower = match do_lower_case {
                Some(v) => v,
                None => hf_do_lower_case(&dir).unwrap_or(true),
            };
            (model, Tokenizer::from_vocab_file(vocab, lower)?)
        };
        let max_seq_length = sentence_transformers_max_len(&dir)
            .unwrap_or(model.config().max_position_embeddings)
            .min(model.config().max_position_embeddings);
        Pipeline::new(model, tokenizer, max_seq_length)
    }

    /// Pairs a model with a tokenizer; the vocabulary must fit the model's embedding table.
    pub fn new(model: BertModel<B>, tokenizer: Tokenizer, max_seq_length: usize) -> Result<Self> {
        let vocab = tokenizer.vocab().len();
        if vocab > model.config().vocab_size {
            return Err(Error::Vocab(format!(
                "the vocabulary has {vocab} tokens but the model only {} embeddings",
                model.config().vocab_size
            )));
        }
        if max_seq_length < 2 || max_seq_length > model.config().max_position_embeddings {
            return Err(Error::InvalidArgument(format!(
                "max_seq_length {max_seq_length} is not within 2..={}",
                model.config().max_position_embeddings
            )));
        }
        Ok(Pipeline {
            model,
            tokenizer,
            max_seq_length,
        })
    }

    /// The same model with another tokenizer (e.g. an explicit `--vocab_file`).
    pub fn with_tokenizer(self, tokenizer: Tokenizer) -> Result<Self> {
        Pipeline::new(self.model, tokenizer, self.max_seq_length)
    }

    /// The same model with another default longest input.
    pub fn with_max_seq_length(self, max_seq_length: usize) -> Result<Self> {
        Pipeline::new(self.model, self.tokenizer, max_seq_length)
    }

    /// The model and the tokenizer, for callers that keep them apart.
    pub fn into_parts(self) -> (BertModel<B>, Tokenizer) {
        (self.model, self.tokenizer)
    }

    pub fn model(&self) -> &BertModel<B> {
        &self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The default longest input: sentence-transformers' `max_seq_length` when the model
    /// directory has one, else `max_position_embeddings`.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Encodes texts or pairs as Google's `convert_examples_to_features` does, truncated to
    /// `max_seq_length` and padded to the longest of the batch: the encodings (tokens,
    /// offsets) and the encoder's inputs.
    pub fn encode(
        &self,
        inputs: &[(&str, Option<&str>)],
        max_seq_length: usize,
        threads: usize,
    ) -> Result<(Vec<Encoding>, Batch)> {
        let limit = self.model.config().max_position_embeddings;
        if !(2..=limit).contains(&max_seq_length) {
            return Err(Error::InvalidArgument(format!(
                "max_seq_length {max_seq_length} is not within 2..={limit}"
            )));
        }
        let opts = EncodeOptions {
            max_seq_length: Some(max_seq_length),
            padding: Padding::Longest,
        };
        let encodings = self.tokenizer.encode_batch(inputs, &opts, threads)?;
        let seq = encodings.first().map_or(0, Encoding::len);
        let mut b = Batch {
            batch: encodings.len(),
            seq,
            ..Batch::default()
        };
        for e in &encodings {
            b.input_ids.extend_from_slice(&e.ids);
            b.segment_ids.extend_from_slice(&e.type_ids);
            b.input_mask
                .extend(e.attention_mask.iter().map(|&m| u32::from(m)));
        }
        Ok((encodings, b))
    }
}

/// The directory holding a model given as a directory, a file or a TF checkpoint prefix.
fn model_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// `do_lower_case` of a Hugging Face `tokenizer_config.json`, when present.
fn hf_do_lower_case(dir: &Path) -> Option<bool> {
    read_json(&dir.join("tokenizer_config.json"))?
        .get("do_lower_case")?
        .as_bool()
}

/// `max_seq_length` of a sentence-transformers `sentence_bert_config.json`, when present.
fn sentence_transformers_max_len(dir: &Path) -> Option<usize> {
    let v = read_json(&dir.join("sentence_bert_config.json"))?
        .get("max_seq_length")?
        .as_u64()?;
    usize::try_from(v).ok().filter(|&n| n >= 2)
}
