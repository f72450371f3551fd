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
    // AVX-512 and AVX-VNNI intrinsics and `target_feature`s are stable from Rust 1.89; the
    // crate's MSRV is older, so the int8 VNNI kernels are compiled only where the compiler
    // has them (older compilers fall back to the AVX2 kernel at run time).
    // The f32 AVX-512 micro-kernels (`bert_avx512`) likewise.
    println!("cargo:rustc-check-cfg=cfg(bert_vnni)");
    println!("cargo:rustc-check-cfg=cfg(bert_avx512)");
    // `RUSTFLAGS="--cfg bert_portable"` makes every kernel choice (`Isa::detect`,
    // `Int8Path::detect`, the row kernels' `Path::Auto`) the portable one: a build that
    // measures the portable path on a CPU with SIMD (scripts/test_arm.sh counts the
    // instructions of each path under QEMU). Never set by default.
    println!("cargo:rustc-check-cfg=cfg(bert_portable)");
    if rustc_minor().is_some_and(|m| m >= 89) {
        println!("cargo:rustc-cfg=bert_vnni");
        println!("cargo:rustc-cfg=bert_avx512");
    }
}

/// The minor version of the compiler building us (`rustc 1.89.0 (…)` -> 89).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC")?;
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    if parts.next()? != "1" {
        return None;
    }
    parts.next()?.parse().ok()
}

fn env(key: &str) -> u32 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
