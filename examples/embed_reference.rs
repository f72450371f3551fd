//! The reference every binding test compares with: the Rust API's mean-pooled, L2-normalised
//! all-MiniLM-L6-v2 embedding of one sentence.
//!
//! `cargo run --release --example embed_reference -- [MODEL_DIR] [OUT_FILE] [SENTENCE]`
//! prints the vector and, with OUT_FILE, writes it there, one float per line (shortest text
//! that reads back to the same f32). MODEL_DIR defaults to
//! `$LIBBERT_CACHE/all-MiniLM-L6-v2` (`~/.cache/libbert`), the sentence to
//! "The quick brown fox jumps over the lazy dog.". With a fourth argument BERT_FILE it also
//! saves the model as a libbert `.bert` file there (for the bindings' `.bert` loading tests).

use std::path::PathBuf;

use bert::tokenizer::{EncodeOptions, Tokenizer};
use bert::{BertModel, Context, Inputs, Pooling};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.first() {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("LIBBERT_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/libbert")
            })
            .join("all-MiniLM-L6-v2"),
    };
    let sentence = args.get(2).map_or(
        "The quick brown fox jumps over the lazy dog.",
        String::as_str,
    );

    let tokenizer = Tokenizer::from_vocab_file(dir.join("vocab.txt"), true)?;
    let model = BertModel::load(&dir)?;
    let e = tokenizer.encode(sentence, None, &EncodeOptions::default())?;
    let mask: Vec<u32> = e.attention_mask.iter().map(|&m| m as u32).collect();
    let inputs = Inputs {
        input_ids: &e.ids,
        segment_ids: &e.type_ids,
        input_mask: &mask,
        batch: 1,
        seq: e.len(),
    };
    let mut ctx = Context::new(1);
    let v = model.embed(&mut ctx, &inputs, Pooling::Mean, true)?;

    let text: String = v.iter().map(|x| format!("{x:e}\n")).collect();
    print!("{text}");
    if let Some(out) = args.get(1) {
        std::fs::write(out, &text)?;
    }
    if let Some(native) = args.get(3) {
        let (config, weights) = bert::weights::load_model_files(&dir)?;
        let vocab: Vec<String> = std::fs::read_to_string(dir.join("vocab.txt"))?
            .lines()
            .map(str::to_owned)
            .collect();
        bert::weights::native::save(native, &config, &weights, &vocab, true)?;
    }
    Ok(())
}
