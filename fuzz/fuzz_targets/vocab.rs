//! `vocab.txt` parsing on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = bert::tokenizer::Vocab::from_bytes(data) {
        if let Ok(t) = bert::tokenizer::Tokenizer::new(v, true) {
            let _ = t.tokenize("hello, world [UNK]");
        }
    }
});
