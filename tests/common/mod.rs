//! Paths shared by the integration tests: `../shared` beside the checkout (read-only
//! fixtures and data) and the model cache filled by `scripts/setup.sh`.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared` next to the checkout, or `$LIBBERT_SHARED` when set.
pub fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("LIBBERT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    };
    assert!(
        dir.join("data").is_dir(),
        "shared data not found at {} (set LIBBERT_SHARED)",
        dir.display()
    );
    dir
}

/// The all-MiniLM-L6-v2 directory unpacked by `scripts/setup.sh`.
pub fn minilm_dir() -> PathBuf {
    let cache = match std::env::var_os("LIBBERT_CACHE") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/libbert")
        }
    };
    let dir = cache.join("all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// The paraphrase-MiniLM-L3-v2 ONNX export unpacked by `scripts/setup.sh` (one `.onnx` file
/// and the vocab.txt it was tokenized with).
pub fn onnx_l3_dir() -> PathBuf {
    let cache = match std::env::var_os("LIBBERT_CACHE") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/libbert")
        }
    };
    let dir = cache.join("paraphrase-MiniLM-L3-v2-onnx");
    assert!(
        dir.join("paraphrase-MiniLM-L3-v2.onnx").is_file(),
        "paraphrase-MiniLM-L3-v2 (ONNX) not found in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}
