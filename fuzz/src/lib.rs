//! What the fuzz targets share: the shared data directory and a scratch file for the loaders
//! that read paths (TF checkpoints, ONNX, the training state).

use std::path::PathBuf;

/// `shared/` beside the repository (as the tests find it), or `$LIBBERT_SHARED`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("LIBBERT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// A per-process directory in memory (`/dev/shm` when there is one) for inputs that a loader
/// reads from files; created once.
pub fn scratch_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = PathBuf::from("/dev/shm");
        let base = if base.is_dir() {
            base
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("bert-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
    .clone()
}

/// Splits `data` at a little-endian u32 length prefix: `(first, rest)`; `None` if too short.
pub fn split_prefixed(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let rest = &data[4..];
    (n <= rest.len()).then(|| rest.split_at(n))
}

/// The inverse of [`split_prefixed`] (for the seed maker).
pub fn join_prefixed(first: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = (first.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(first);
    out.extend_from_slice(rest);
    out
}
