//! `bert tokenize --vocab_file PATH [--do_lower_case=true|false]`: one JSON object
//! `{"tokens": [...], "ids": [...]}` per input line (no specials, no truncation), the shape
//! of the conformance data. Lines are split on `\n` only; a `\r` stays part of the text.

use std::io::{BufWriter, Write};

use bert::tokenizer::{Token, Tokenizer, Workspace};

use crate::flags::Flags;
use crate::lines::for_each_line;

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["do_lower_case"])?;
    let vocab = flags.required("vocab_file")?.to_string();
    // Google's scripts default to do_lower_case=True.
    let lower = flags.bool("do_lower_case", true)?;
    flags.finish()?;
    let tokenizer = Tokenizer::from_vocab_file(&vocab, lower).map_err(|e| e.to_string())?;

    let stdin = std::io::stdin();
    let input = std::io::BufReader::with_capacity(1 << 16, stdin.lock());
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut ws = Workspace::default();
    let mut tokens: Vec<Token<'_>> = Vec::new();
    let io_err = |e: std::io::Error| format!("writing to stdout: {e}");
    for_each_line(input, |_, text| {
        tokens.clear();
        tokenizer.tokenize_with(text, &mut ws, &mut tokens);
        write_json(&mut out, &tokens).map_err(io_err)
    })?;
    out.flush().map_err(io_err)
}

fn write_json(out: &mut impl Write, tokens: &[Token<'_>]) -> std::io::Result<()> {
    out.write_all(b"{\"tokens\": [")?;
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.write_all(b", ")?;
        }
        serde_json::to_writer(&mut *out, t.text)?;
    }
    out.write_all(b"], \"ids\": [")?;
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.write_all(b", ")?;
        }
        write!(out, "{}", t.id)?;
    }
    out.write_all(b"]}\n")
}
