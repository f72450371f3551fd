//! The fine-tuning training state (`training_state.safetensors`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = bert_fuzz::scratch_dir().join("training_state.safetensors");
    std::fs::write(&path, data).expect("scratch write");
    let _ = bert::classifier::checkpoint::load(&path);
});
