//! How libbert writes a file that a user named: a `.bert` model, a training state, a
//! command's output. One helper, [`write_with`], for all of them:
//!
//! - a regular file, or a path where nothing is yet, is replaced atomically: a temporary file
//!   `NAME.tmpPID` beside it is written, synced and renamed over it, then the directory is
//!   synced, so a reader sees the old file or the new one, never half of one; a failed write
//!   removes the temporary file and leaves the old file as it was. An existing file's
//!   permission bits are kept;
//! - a symbolic link is followed to its target, and the target is replaced so (the link stays
//!   a link);
//! - a special file (a character or block device such as `/dev/null`, a FIFO) is written in
//!   place, as a shell redirection writes it: renaming over it would replace the device node or
//!   the pipe with a regular file;
//! - a directory is an error.
//!
//! A process killed during a save leaves its `NAME.tmpPID` behind (possibly the size of a
//! model). Before writing, temporary files of the same target whose process no longer exists
//! are removed (on Linux, where `/proc` tells; elsewhere they are left alone). A process in
//! another PID namespace writing the same path at the same moment cannot be told apart from a
//! dead one: do not write one output from two containers at once.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Symbolic links followed before giving up (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Writes `path` with what `write` writes, replacing what is there as the module comment says.
/// Errors name `path` (or the link target, when it is a link).
pub fn write_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    // The kind is asked of `path` itself: the system follows every link, `/dev/stdout`'s
    // `/proc/self/fd/1` included, whose text ("pipe:[…]") names no path.
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::io(path, std::io::Error::other("is a directory"))),
        Ok(m) if !m.is_file() => write_in_place(path, write),
        _ => replace(&resolve_links(path)?, write),
    }
}

/// [`write_with`] of a byte string.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

/// Checks that files can be created in `dir`, so that a long run can refuse a read-only output
/// directory before it starts rather than when it saves. Nothing is left behind: a directory
/// that does not exist yet is not created (its nearest existing ancestor is probed), and the
/// probe file is removed.
pub fn check_writable_dir(dir: &Path) -> Result<()> {
    let existing = dir
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::other(format!("{} is not a directory", existing.display())),
        ));
    }
    let probe = existing.join(format!(".libbert-write-test.tmp{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| Error::io(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The temporary file [`write_with`] writes for `target` in process `pid`.
pub fn temporary_path(target: &Path, pid: u32) -> PathBuf {
    let mut name: OsString = target.as_os_str().to_owned();
    name.push(format!(".tmp{pid}"));
    PathBuf::from(name)
}

/// Follows symbolic links to the path that is not one (it may not exist).
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
                // A relative link is relative to the directory holding it.
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::io(
        path,
        std::io::Error::other("too many levels of symbolic links"),
    ))
}

/// A device or FIFO: opened for writing (a FIFO waits for its reader) and written.
fn write_in_place(
    target: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let run = || -> std::io::Result<()> {
        let mut out = BufWriter::new(OpenOptions::new().write(true).open(target)?);
        write(&mut out)?;
        out.flush()
    };
    run().map_err(|e| Error::io(target, e))
}

/// A regular file or nothing: temporary file, sync, rename, sync of the directory.
fn replace(target: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    remove_stale_temporaries(target);
    let tmp = temporary_path(target, std::process::id());
    let run = || -> std::io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        if let Ok(old) = std::fs::metadata(target) {
            // Best effort: the new file keeps the old one's permission bits.
            let _ = file.set_permissions(old.permissions());
        }
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, target)?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Best effort: not every file system lets a directory be opened for fsync.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    };
    run().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(target, e)
    })
}

/// Removes `TARGET.tmpPID` files beside `target` whose process `PID` no longer exists.
fn remove_stale_temporaries(target: &Path) {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{name}.tmp");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u32>().ok())
        else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && pid != std::process::id() && process_is_gone(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` is known not to exist: on Linux `/proc/PID` exists as long as the
/// process does (zombies included). Where that cannot be told, `false`.
fn process_is_gone(pid: u32) -> bool {
    cfg!(target_os = "linux")
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("libbert-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_nothing() {
        let dir = scratch("failed");
        let out = dir.join("out.txt");
        std::fs::write(&out, "old").unwrap();
        let e = write_with(&out, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        write_bytes(&out, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn permissions_and_link_chains() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("links");
        let file = dir.join("model.bert");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&file, dir.join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("b")).unwrap();
        write_bytes(&dir.join("b"), b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(std::fs::symlink_metadata(dir.join("a"))
            .unwrap()
            .file_type()
            .is_symlink());
        // A loop is an error, not a hang.
        std::os::unix::fs::symlink("loop2", dir.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", dir.join("loop2")).unwrap();
        let e = write_bytes(&dir.join("loop1"), b"x").unwrap_err();
        assert!(e.to_string().contains("symbolic links"), "{e}");
        assert!(write_bytes(&dir, b"x")
            .unwrap_err()
            .to_string()
            .contains("directory"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
