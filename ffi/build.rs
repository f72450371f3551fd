//! Generates `include/bert.h` with cbindgen (config in `ffi/cbindgen.toml`; the header is
//! committed, CI checks it is unchanged) and gives the shared library its soname.
//!
//! The header reads in topic order, one section per source file of `SECTIONS`: cbindgen
//! alone would group all types, then all constants, then all functions. So each section is
//! generated from its file on its own, after one section that declares every opaque handle
//! (so any section may name any handle), and this script puts the pieces together.

use std::path::{Path, PathBuf};

use cbindgen::{Builder, Config, ItemType};

/// The header's sections in reading order: title and source file. Every `#[no_mangle]`
/// function and exported type lives in one of these files (checked below).
const SECTIONS: &[(&str, &str)] = &[
    ("Version and capabilities", "version.rs"),
    ("Errors", "status.rs"),
    ("Logging", "log.rs"),
    ("Model", "model.rs"),
    ("Tokenizer", "tokenizer.rs"),
    ("Context: encode, embed, hidden states", "context.rs"),
    ("Classify", "classifier.rs"),
    ("Question answering", "qa.rs"),
    ("Train", "trainer.rs"),
    ("Pre-train", "pretrain.rs"),
];

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
    let config =
        Config::from_file(crate_dir.join("cbindgen.toml")).expect("ffi/cbindgen.toml is valid");
    let version = format!(
        "/* Version of this header; compare with bert_version_number() at run time. */\n\
         #define BERT_VERSION_MAJOR {major}\n\
         #define BERT_VERSION_MINOR {minor}\n\
         #define BERT_VERSION_PATCH {patch}\n\
         #define BERT_VERSION_NUMBER {}\n",
        major * 10000 + minor * 100 + patch
    );
    match header(&crate_dir, &config, &version) {
        Ok(text) => write_if_changed(&crate_dir.join("../include/bert.h"), &text),
        Err(e) => println!("cargo:warning=cbindgen could not generate include/bert.h: {e}"),
    }
}

/// The whole header: the comment and example of `cbindgen.toml`'s `header`, the guard and
/// includes, the version, the handles, then each section.
fn header(crate_dir: &Path, config: &Config, version: &str) -> Result<String, String> {
    let mut out = String::new();
    if let Some(h) = &config.header {
        out.push_str(h.trim_end());
        out.push_str("\n\n");
    }
    let guard = config.include_guard.as_deref().unwrap_or("BERT_H");
    out.push_str(&format!("#ifndef {guard}\n#define {guard}\n\n"));
    if let Some(w) = &config.autogen_warning {
        out.push_str(&format!("{w}\n\n"));
    }
    for include in &config.sys_includes {
        out.push_str(&format!("#include <{include}>\n"));
    }
    out.push('\n');
    out.push_str(version);
    out.push_str("\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n");

    let src = crate_dir.join("src");
    let handles = generate(
        Builder::new().with_crate(crate_dir),
        config,
        vec![ItemType::OpaqueItems],
    )?;
    out.push_str(&section(
        "Handles (opaque; see LIFETIMES AND THREADS)",
        &handles,
    ));
    let mut seen = String::new();
    for (title, file) in SECTIONS {
        let body = generate(
            Builder::new().with_src(src.join(file)),
            config,
            vec![
                ItemType::Constants,
                ItemType::Typedefs,
                ItemType::Structs,
                ItemType::Enums,
                ItemType::Functions,
            ],
        )?;
        out.push_str(&section(title, &untag(&body)));
        seen.push_str(&body);
    }
    // A function in a file missing from SECTIONS would silently vanish from the header: a
    // build error, not a warning.
    let all = generate(
        Builder::new().with_crate(crate_dir),
        config,
        vec![ItemType::Functions],
    )?;
    let listed = function_names(&seen);
    for name in function_names(&all) {
        assert!(
            listed.contains(&name),
            "{name} is in no section of ffi/build.rs's SECTIONS: add its file"
        );
    }

    out.push_str("\n#ifdef __cplusplus\n}  // extern \"C\"\n#endif\n\n");
    out.push_str(&format!("#endif  /* {guard} */\n"));
    Ok(out)
}

/// The declarations of `item_types` that `builder` finds, without any header furniture.
fn generate(
    builder: Builder,
    config: &Config,
    item_types: Vec<ItemType>,
) -> Result<String, String> {
    let mut c = config.clone();
    c.header = None;
    c.trailer = None;
    c.include_guard = None;
    c.autogen_warning = None;
    c.no_includes = true;
    c.sys_includes = Vec::new();
    c.includes = Vec::new();
    c.after_includes = None;
    c.cpp_compat = false;
    c.export.item_types = item_types;
    let bindings = builder
        .with_config(c)
        .generate()
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    bindings.write(&mut bytes);
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// Names the library's types by their typedefs (`const bert_model *`, as `sqlite3.h` writes
/// `sqlite3 *`) where cbindgen writes `struct bert_model` for the types it parsed with the
/// section; the struct definitions keep their tag (`typedef struct bert_x { ... } bert_x;`).
fn untag(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") || code.starts_with("typedef struct") {
            out.push_str(line);
        } else {
            out.push_str(&line.replace("struct bert_", "bert_"));
        }
        out.push('\n');
    }
    out
}

/// A section: a rule with its title, then its declarations.
fn section(title: &str, body: &str) -> String {
    let rule = "=".repeat(80usize.saturating_sub(title.len()));
    format!("\n\n/* ==== {title} {rule} */\n\n{}\n", body.trim())
}

/// Names of the functions declared in generated text (`name(` at the start of a
/// declaration's parameter list).
fn function_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        if line.starts_with("//") || line.starts_with(' ') || line.starts_with('#') {
            continue;
        }
        if let Some(open) = line.find('(') {
            let before = &line[..open];
            if before.contains("(*") || before.starts_with("typedef") {
                continue;
            }
            if let Some(name) = before
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next_back()
            {
                if name.starts_with("bert_") {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

/// Writes only when the text changes, so the committed header keeps its timestamp.
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        if let Err(e) = std::fs::write(path, text) {
            println!("cargo:warning=cannot write {}: {e}", path.display());
        }
    }
}

fn env(name: &str) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number"))
}
