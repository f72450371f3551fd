//! The model a fine-tuning run starts from, found the way `run_classifier.py`'s flags (or
//! `--model`) name it: any checkpoint format libbert reads, with its vocabulary and casing.

use std::path::Path;

use crate::config::BertConfig;
use crate::tokenizer::{Tokenizer, Vocab};
use crate::weights::{self, native::NativeModel, Weights};
use crate::{Error, Result};

/// The model a run starts from: config, weights, tokenizer and (for a fine-tuned `.bert`)
/// its labels.
#[derive(Debug)]
pub struct ModelStart {
    pub config: BertConfig,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    pub labels: Vec<String>,
}

impl ModelStart {
    /// Loads any model [`weights::load_model_files`] reads, with its vocabulary: the one in a
    /// `.bert` file, else `vocab_file`, else `vocab.txt` beside the model. `do_lower_case`:
    /// `None` takes the `.bert` header's flag, else a Hugging Face `tokenizer_config.json`
    /// beside the model, else true (Google's default).
    pub fn load(
        path: &Path,
        vocab_file: Option<&Path>,
        do_lower_case: Option<bool>,
    ) -> Result<ModelStart> {
        let (config, weights) = weights::load_model_files(path)?;
        if weights::native::is_native_file(path) {
            let m = NativeModel::open(path)?;
            let lower = do_lower_case.unwrap_or(m.do_lower_case());
            let tokenizer = match vocab_file {
                Some(v) => Tokenizer::from_vocab_file(v, lower)?,
                None => Tokenizer::new(
                    Vocab::from_tokens(m.vocab().iter().map(String::as_str))?,
                    lower,
                )?,
            };
            return Ok(ModelStart {
                config,
                weights,
                tokenizer,
                labels: m.labels().to_vec(),
            });
        }
        let dir = if path.is_dir() {
            path.to_path_buf()
        } else {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let lower = do_lower_case
            .or_else(|| hf_do_lower_case(&dir))
            .unwrap_or(true);
        let vocab = match vocab_file {
            Some(v) => v.to_path_buf(),
            None => {
                let v = dir.join("vocab.txt");
                if !v.is_file() {
                    return Err(Error::Vocab(format!(
                        "no vocab.txt beside the model in {} (give the vocabulary file)",
                        dir.display()
                    )));
                }
                v
            }
        };
        Ok(ModelStart {
            config,
            weights,
            tokenizer: Tokenizer::from_vocab_file(vocab, lower)?,
            labels: Vec::new(),
        })
    }
}

/// `do_lower_case` of a Hugging Face `tokenizer_config.json` in `dir`.
fn hf_do_lower_case(dir: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .get("do_lower_case")?
        .as_bool()
}
