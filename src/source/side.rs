//! Side files joined by key (to be implemented).
use super::{ReadOptions, SourceError};
use serde_json::Value;
use std::path::PathBuf;

/// A side file: users to resolve ids to names, comments joined to tickets by ticket id.
#[derive(Debug, Clone)]
pub struct SideSpec {
    /// The name templates use (`users`, `comments`).
    pub name: String,
    pub path: PathBuf,
    pub read: ReadOptions,
    /// Dotted path of the key in each record (before `explode`).
    pub key: String,
    /// Dotted path of an array in each record whose items become the entries.
    pub explode: Option<String>,
    /// Dotted path (in an entry) that orders the entries of one key.
    pub order_by: Option<String>,
}

/// An on-disk index of a side file: key -> entries in order.
pub struct SideIndex;

impl SideIndex {
    pub fn get(&self, _key: &str) -> Result<Vec<Value>, SourceError> {
        Ok(vec![])
    }
}
