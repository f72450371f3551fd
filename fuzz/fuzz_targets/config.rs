//! `bert_config.json` / `config.json` parsing, both flavors and the guess.
#![no_main]

use bert::config::{BertConfig, ConfigFlavor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for flavor in [
        None,
        Some(ConfigFlavor::Google),
        Some(ConfigFlavor::HuggingFace),
    ] {
        if let Ok(c) = BertConfig::from_json(text, flavor) {
            let again = BertConfig::from_json(&c.to_google_json(), Some(ConfigFlavor::Google));
            assert_eq!(again.ok().as_ref(), Some(&c), "to_google_json round trip");
        }
    }
});
