//! Hugging Face safetensors parsing on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bert::weights::safetensors::parse(data, std::path::Path::new("fuzz.safetensors"));
});
