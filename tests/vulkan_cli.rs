//! `bert classify --backend vulkan --do_train`: training on a back end the command cannot
//! train on is a clear error before any data or model is read, never a panic; with or
//! without the `vulkan` feature.

use std::process::Command;

#[test]
fn classify_refuses_to_train_on_a_back_end_it_cannot_train_on() {
    let dir = std::env::temp_dir().join(format!("bert-vulkan-cli-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_bert"))
        .args([
            "classify",
            "--task_name=tsv",
            "--data_dir=/nonexistent",
            &format!("--output_dir={}", dir.display()),
            "--do_train",
            "--backend=vulkan",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--backend vulkan --do_train"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
