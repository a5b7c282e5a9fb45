//! The lock file (`<journal>.lock`) that keeps a second import off a journal in use: two
//! writers would each send the same pending records and create tickets twice. SQLite locks
//! per transaction, not per run, so the run holds this one for its whole life.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::JournalError;

pub(super) fn lock_file(path: &Path) -> Result<File, JournalError> {
    let shown = path.display().to_string();
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
