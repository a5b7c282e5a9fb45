//! The lock file (`<journal>.lock`) that keeps a second import off a journal in use: two
//! writers would each send the same pending records and create tickets twice. SQLite locks
//! per transaction, not per run, so the run holds this one for its whole life.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::JournalError;

/// The journal's real path: symlinks resolved (for a file not created yet, in its
/// directory), so two names of one journal share one lock and one write-ahead log.
pub(super) fn real_path(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    // A link to a journal not created yet: follow it by hand (SQLite will create the
    // file where it points), a bounded number of hops.
    let mut path = path.to_owned();
    for _ in 0..40 {
        let is_link = path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        let Some(target) = is_link.then(|| std::fs::read_link(&path).ok()).flatten() else {
            break;
        };
        path = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    let path = path.as_path();
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.canonicalize().unwrap_or_else(|_| d.to_owned()),
        None => std::env::current_dir().unwrap_or_default(),
    };
    match path.file_name() {
        Some(name) => dir.join(name),
        None => path.to_owned(),
    }
}

/// Locks `<real path>.lock`; `shown` names the journal as the user gave it.
pub(super) fn lock_file(path: &Path, shown: &str) -> Result<File, JournalError> {
    let shown = shown.to_owned();
    let path = &real_path(path);
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                JournalError::ReadOnly {
                    path: shown.clone(),
                }
            }
            _ => JournalError::CannotOpen {
                path: shown.clone(),
                reason: format!("lock file {}: {e}", lock_path.display()),
            },
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Busy { path: shown }),
        Err(std::fs::TryLockError::Error(e)) => Err(JournalError::CannotOpen {
            path: shown,
            reason: format!("cannot lock {}: {e}", lock_path.display()),
        }),
    }
}
