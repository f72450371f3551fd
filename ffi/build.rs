//! Generates `include/bert.h` with cbindgen (config in `ffi/cbindgen.toml`; the header is
//! committed, CI checks it is unchanged) and gives the shared library its soname.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let major: u32 = env("CARGO_PKG_VERSION_MAJOR");
    let minor: u32 = env("CARGO_PKG_VERSION_MINOR");
    let patch: u32 = env("CARGO_PKG_VERSION_PATCH");

    // The soname carries the major version: libbert.so.MAJOR (scripts/build_lib.sh installs
    // libbert_ffi.so as libbert.so.MAJOR.MINOR.PATCH with the links).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libbert.so.{major}");
    }

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml is valid");
    config.after_includes = Some(format!(
        "\n/* Version of this header; compare with bert_version_number() at run time. */\n\
         #define BERT_VERSION_MAJOR {major}\n\
         #define BERT_VERSION_MINOR {minor}\n\
         #define BERT_VERSION_PATCH {patch}\n\
         #define BERT_VERSION_NUMBER {}\n",
        major * 10000 + minor * 100 + patch
    ));
    let header = crate_dir.join("../include/bert.h");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        // Writes only when the text changes, so the committed header keeps its timestamp.
        Ok(bindings) => {
            bindings.write_to_file(&header);
        }
        Err(e) => println!("cargo:warning=cbindgen could not generate include/bert.h: {e}"),
    }
}

fn env(name: &str) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number"))
}
