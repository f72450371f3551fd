//! Google's FullTokenizer on arbitrary bytes, uncased and cased; and the early stop of
//! truncating encodes: an encoding cut to `max_seq_length` equals the full tokenization cut.
//! Input: byte 0 = casing (bit 0) and pair (bit 1), byte 1 = max_seq_length, then the text
//! (a pair splits at the first `\t`).
#![no_main]

use std::sync::OnceLock;

use bert::tokenizer::{EncodeOptions, Padding, Tokenizer};
use libfuzzer_sys::fuzz_target;

fn tokenizers() -> &'static [Tokenizer; 2] {
    static T: OnceLock<[Tokenizer; 2]> = OnceLock::new();
    T.get_or_init(|| {
        let vocab = bert_fuzz::shared_dir().join("data/tokenizer/vocab-uncased.txt");
        [
            Tokenizer::from_vocab_file(&vocab, false).expect("vocab"),
            Tokenizer::from_vocab_file(&vocab, true).expect("vocab"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let [flags, max, text @ ..] = data else {
        return;
    };
    let tok = &tokenizers()[usize::from(flags & 1)];
    let Ok(text) = tok
        .tokenize_bytes(text)
        .map(|_| std::str::from_utf8(text).unwrap())
    else {
        return;
    };
    let (a, b) = match (flags & 2 != 0, text.split_once('\t')) {
        (true, Some((a, b))) => (a, Some(b)),
        _ => (text, None),
    };
    let full = EncodeOptions {
        max_seq_length: None,
        padding: Padding::None,
    };
    let cut = EncodeOptions {
        max_seq_length: Some(usize::from(*max)),
        padding: Padding::None,
    };
    let whole = tok.encode(a, b, &full).expect("encode without truncation");
    match tok.encode(a, b, &cut) {
        Ok(e) => {
            // The truncated encoding keeps a prefix of each text's tokens.
            let ids_a: Vec<u32> = tok.tokenize(a).iter().map(|t| t.id).collect();
            let got_a: Vec<u32> = e
                .ids
                .iter()
                .zip(&e.type_ids)
                .zip(&e.special_tokens_mask)
                .filter(|((_, &t), &s)| t == 0 && s == 0)
                .map(|((&id, _), _)| id)
                .collect();
            assert_eq!(got_a[..], ids_a[..got_a.len()]);
            assert!(e.len() <= usize::from(*max));
            assert!(e.len() <= whole.len());
        }
        Err(_) => assert!(usize::from(*max) < if b.is_some() { 3 } else { 2 }),
    }
});
