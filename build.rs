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
    #[cfg(feature = "vulkan")]
    shaders::compile();
}

/// The Vulkan back end's compute shaders: WGSL in `src/backend/vulkan/shaders/`, parsed,
/// validated and written as SPIR-V into `OUT_DIR` by naga (pure Rust: no C++ shader compiler
/// to build). A shader that does not validate fails the build with naga's message.
#[cfg(feature = "vulkan")]
mod shaders {
    use std::path::{Path, PathBuf};

    const DIR: &str = "src/backend/vulkan/shaders";
    /// Helpers every shader may call (activations, the linear invocation index); WGSL has
    /// no `#include`, so they are prepended.
    const COMMON: &str = "common.wgsl";
    /// A line naming a `.wgsli` file of the directory, replaced by its text: pieces only
    /// some shaders want (they rely on names the includer declares, so not in COMMON).
    const INCLUDE: &str = "// include: ";

    pub fn compile() {
        let dir = Path::new(DIR);
        println!("cargo:rerun-if-changed={DIR}");
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        let common = read(&dir.join(COMMON));
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("the shader directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
            .filter(|p| p.file_name().is_some_and(|n| n != COMMON))
            .collect();
        names.sort();
        for path in names {
            println!("cargo:rerun-if-changed={}", path.display());
            let source = format!("{common}\n{}", expand(dir, &read(&path)));
            let words = spirv(&path, &source);
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a file name");
            std::fs::write(out.join(format!("{name}.spv")), bytes).expect("writing SPIR-V");
        }
    }

    /// `source` with each [`INCLUDE`] line replaced by the file it names.
    fn expand(dir: &Path, source: &str) -> String {
        source
            .lines()
            .map(|line| match line.strip_prefix(INCLUDE) {
                Some(name) => read(&dir.join(name.trim())),
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn spirv(path: &Path, source: &str) -> Vec<u32> {
        use naga::back::spv;
        use naga::valid::{Capabilities, ValidationFlags, Validator};
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(source)));
        let info = Validator::new(ValidationFlags::all(), Capabilities::PUSH_CONSTANT)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(source)));
        let options = spv::Options {
            lang_version: (1, 0),
            // Each shader writes every element it owns before reading it back: zeroing
            // workgroup memory first would only cost time.
            zero_initialize_workgroup_memory: spv::ZeroInitializeWorkgroupMemoryMode::None,
            ..Default::default()
        };
        spv::write_vec(&module, &info, &options, None)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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
