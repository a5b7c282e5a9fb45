//! What a run is (mapping, inputs, target URL, tool version) and how it differs from the
//! run the journal began with, so a re-run with different inputs is noticed before anything
//! is sent. Only fingerprints are stored, never credentials.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use rusqlite::params;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Journal, JournalError, now_ms};

/// A cheap fingerprint of one input file: size, modification time and a SHA-256 over the
/// size, first MiB and last MiB. Hashing whole multi-gigabyte exports on every resume
/// would cost more than the resume itself; record payload hashes catch the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputFingerprint {
    pub path: String,
    pub size: u64,
    /// Seconds since the Unix epoch (0 when the platform does not say).
    pub mtime: i64,
    pub digest: String,
}

/// How much of each end of an input file the fingerprint reads.
const FINGERPRINT_SPAN: u64 = 1 << 20;

impl InputFingerprint {
    pub fn of(path: &Path) -> std::io::Result<InputFingerprint> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let size = meta.len();
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut hasher = Sha256::new();
        hasher.update(size.to_le_bytes());
        let mut buf = Vec::new();
        (&mut file).take(FINGERPRINT_SPAN).read_to_end(&mut buf)?;
        hasher.update(&buf);
        if size > FINGERPRINT_SPAN {
            let tail_start = size.saturating_sub(FINGERPRINT_SPAN).max(FINGERPRINT_SPAN);
            file.seek(SeekFrom::Start(tail_start))?;
            buf.clear();
            file.take(FINGERPRINT_SPAN).read_to_end(&mut buf)?;
            hasher.update(&buf);
        }
        Ok(InputFingerprint {
            path: path.display().to_string(),
            size,
            mtime,
            digest: hex::encode(hasher.finalize()),
        })
    }
}

/// SHA-256 of some bytes, hex: for the mapping fingerprint and payload hashes.
pub fn fingerprint_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What the run is: compared with what the journal recorded when it began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// E.g. [`fingerprint_bytes`] of the mapping file, or of the compiled plan.
    pub mapping_fingerprint: String,
    pub inputs: Vec<InputFingerprint>,
    /// The account URL. Anything that could carry a secret (user info, query) is removed
    /// before it is stored.
    pub target_url: String,
    pub tool_version: String,
}

impl RunInfo {
    pub fn new(
        mapping_fingerprint: impl Into<String>,
        inputs: Vec<InputFingerprint>,
        target_url: impl Into<String>,
    ) -> RunInfo {
        RunInfo {
            mapping_fingerprint: mapping_fingerprint.into(),
            inputs,
            target_url: target_url.into(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Keeps only scheme, host, port and path of a URL; credentials never reach the file.
fn safe_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.as_str().trim_end_matches('/').to_owned()
        }
        // Not a URL at all: keep nothing that follows an '@', where credentials would be.
        Err(_) => url.rsplit('@').next().unwrap_or_default().to_owned(),
    }
}

/// One difference between this run and the journal's record of earlier runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    TargetChanged {
        before: String,
        after: String,
    },
    MappingChanged,
    InputAdded {
        path: String,
    },
    InputRemoved {
        path: String,
    },
    InputModified {
        path: String,
        detail: String,
    },
    /// Same size and content fingerprint; only the modification time moved.
    InputTouched {
        path: String,
    },
    ToolVersionChanged {
        before: String,
        after: String,
    },
}

impl Change {
    /// Whether the caller should refuse to continue without `--allow-changes`: a changed
    /// mapping (or target, which is never resumable). A newer export of the same mapping
    /// is the normal delta of a cut-over, and a touched file or a new tool version is
    /// worth saying but not worth stopping for.
    pub fn is_significant(&self) -> bool {
        matches!(self, Change::MappingChanged | Change::TargetChanged { .. })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::TargetChanged { before, after } => {
                write!(f, "the target account changed from {before} to {after}")
            }
            Change::MappingChanged => f.write_str("the mapping changed"),
            Change::InputAdded { path } => write!(f, "input {path} is new"),
            Change::InputRemoved { path } => write!(f, "input {path} is no longer given"),
            Change::InputModified { path, detail } => write!(f, "input {path} changed ({detail})"),
            Change::InputTouched { path } => write!(
                f,
                "input {path} has a new modification time but the same size and fingerprint"
            ),
            Change::ToolVersionChanged { before, after } => {
                write!(
                    f,
                    "hfmigrate was {before} when the journal began, now {after}"
                )
            }
        }
    }
}

impl Journal {
    pub(super) fn store_info(&mut self, info: &RunInfo, first: bool) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        {
            let mut put =
                tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
            put.execute(params!["target_url", safe_url(&info.target_url)])?;
            put.execute(params!["mapping_fingerprint", info.mapping_fingerprint])?;
            put.execute(params!["tool_version", info.tool_version])?;
            if first {
                put.execute(params!["created_at", now_ms().to_string()])?;
            }
            tx.execute("DELETE FROM inputs", [])?;
            let mut input = tx.prepare_cached(
                "INSERT OR REPLACE INTO inputs (path, size, mtime, digest) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for i in &info.inputs {
                input.execute(params![
                    i.path,
                    i64::try_from(i.size).unwrap_or(i64::MAX),
                    i.mtime,
                    i.digest
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(super) fn diff(&self, info: &RunInfo) -> Result<Vec<Change>, JournalError> {
        let mut changes = Vec::new();
        let before = self.meta("target_url")?.unwrap_or_default();
        let after = safe_url(&info.target_url);
        if before != after {
            changes.push(Change::TargetChanged { before, after });
        }
        if self.meta("mapping_fingerprint")?.as_deref() != Some(&info.mapping_fingerprint) {
            changes.push(Change::MappingChanged);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, size, mtime, digest FROM inputs ORDER BY path")?;
        let recorded = stmt
            .query_map([], |r| {
                Ok(InputFingerprint {
                    path: r.get(0)?,
                    size: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    mtime: r.get(2)?,
                    digest: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for old in &recorded {
            match info.inputs.iter().find(|i| i.path == old.path) {
                None => changes.push(Change::InputRemoved {
                    path: old.path.clone(),
                }),
                Some(new) if new.size != old.size => changes.push(Change::InputModified {
                    path: old.path.clone(),
                    detail: format!("size {} → {} bytes", old.size, new.size),
                }),
                Some(new) if new.digest != old.digest => changes.push(Change::InputModified {
                    path: old.path.clone(),
                    detail: "content differs".into(),
                }),
                Some(new) if new.mtime != old.mtime => changes.push(Change::InputTouched {
                    path: old.path.clone(),
                }),
                Some(_) => {}
            }
        }
        for new in &info.inputs {
            if !recorded.iter().any(|o| o.path == new.path) {
                changes.push(Change::InputAdded {
                    path: new.path.clone(),
                });
            }
        }
        let tool = self.meta("tool_version")?.unwrap_or_default();
        if tool != info.tool_version {
            changes.push(Change::ToolVersionChanged {
                before: tool,
                after: info.tool_version.clone(),
            });
        }
        Ok(changes)
    }

    /// What differs from the run recorded in the journal (empty for a new journal).
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Records `info` as the run's fingerprints, after the user allowed the changes.
    pub fn accept_changes(&mut self, info: &RunInfo) -> Result<(), JournalError> {
        self.store_info(info, false)?;
        self.changes.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_anything_secret() {
        assert_eq!(
            safe_url("https://key:code@acme.happyfox.com/?token=x#y"),
            "https://acme.happyfox.com"
        );
        assert_eq!(safe_url("not a url key:code@host"), "host");
    }
}
