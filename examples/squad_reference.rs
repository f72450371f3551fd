//! The reference the bindings' question-answering tests compare with: the Rust API's
//! (`QuestionAnswerer`) answers to one question, with the tiny SQuAD model they load.
//!
//! `cargo run --release --example squad_reference -- TINY_DIR OUT_BERT OUT_FILE [QUESTION
//! CONTEXT]` builds the model from Google's tiny fixture (`TINY_DIR` =
//! `shared/fixtures/tf_bert_tiny`: its checkpoint and vocabulary, with the initial span head
//! of `squad_finetune_reference`) and saves it as the `.bert` file `OUT_BERT`; then writes the
//! 3 best answers to `OUT_FILE`, one per line: `start_byte end_byte score text` (the score as
//! the shortest text that reads back to the same f32). The head is untrained, so the answers
//! are not right ones, but they are exactly what the library computes: a binding that passes
//! the texts, the offsets or the options wrongly gets others.

use std::path::{Path, PathBuf};

use bert::squad::{self, SquadModel};
use bert::tokenizer::Tokenizer;
use bert::weights::Tensor;
use bert::{BertConfig, Context, QuestionAnswerer};

/// The question and context of every binding's test.
const QUESTION: &str = "Which NFL team won Super Bowl 50?";
const CONTEXT: &str = "Super Bowl 50 was an American football game to determine the champion \
of the National Football League (NFL) for the 2015 season. The American Football Conference \
(AFC) champion Denver Broncos defeated the National Football Conference (NFC) champion \
Carolina Panthers 24–10 to earn their third Super Bowl title.";

/// A little-endian f32 `.npy` file (version 1 or 2 header), as the fixture stores the head.
fn npy_f32(path: &Path) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let (len, start) = match bytes.get(6) {
        Some(1) => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
    };
    let header = std::str::from_utf8(&bytes[start..start + len])?;
    if !header.contains("'<f4'") {
        return Err(format!("{}: not little-endian f32: {header}", path.display()).into());
    }
    Ok(bytes[start + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: squad_reference TINY_DIR OUT_BERT OUT_FILE [QUESTION CONTEXT]".into());
    }
    let tiny = PathBuf::from(&args[0]);
    let question = args.get(3).map_or(QUESTION, String::as_str);
    let context = args.get(4).map_or(CONTEXT, String::as_str);

    let config = BertConfig::from_file(tiny.join("bert_config.json"))?;
    let mut w = bert::weights::tf_checkpoint::load(tiny.join("bert_model.ckpt"))?;
    let head = tiny.join("squad_finetune_reference/initial/cls/squad");
    let hidden = config.hidden_size;
    w.insert(
        "cls/squad/output_weights",
        Tensor::new(vec![2, hidden], npy_f32(&head.join("output_weights.npy"))?)?,
    );
    w.insert(
        "cls/squad/output_bias",
        Tensor::new(vec![2], npy_f32(&head.join("output_bias.npy"))?)?,
    );
    let tokenizer = Tokenizer::from_vocab_file(tiny.join("vocab.txt"), true)?;
    squad::model::save(&args[1], &config, &w, &tokenizer)?;

    // The saved file, loaded as any caller would: what the bindings load.
    let qa = QuestionAnswerer::new(SquadModel::load(&args[1])?)?;
    let answers = qa.answer(&mut Context::new(1), question, context, 3)?;
    let text: String = answers
        .iter()
        .map(|a| format!("{} {} {:e} {}\n", a.start_byte, a.end_byte, a.score, a.text))
        .collect();
    print!("{text}");
    std::fs::write(&args[2], text)?;
    Ok(())
}
