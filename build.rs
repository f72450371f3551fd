//! Build script of the core crate.
//!
//! Records the crate version parts as compile-time environment so that the CLI and the
//! C ABI report the same numbers (`BERT_VERSION_NUMBER = major * 10000 + minor * 100 + patch`).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let major: u32 = env("CARGO_PKG_VERSION_MAJOR");
    let minor: u32 = env("CARGO_PKG_VERSION_MINOR");
    let patch: u32 = env("CARGO_PKG_VERSION_PATCH");
    println!(
        "cargo:rustc-env=BERT_VERSION_NUMBER={}",
        major * 10000 + minor * 100 + patch
    );
}

fn env(key: &str) -> u32 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
