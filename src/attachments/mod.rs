//! Attachments as the mapping describes them, and how a message's files are split into
//! requests.
//!
//! A migrated ticket keeps its files. This module holds what the front half of the
//! pipeline knows about them before anything is read: each [`AttachmentRef`] the mapping
//! produces (a path in the export or a URL, with the size the export states), how a
//! message's files are split into requests under HappyFox's 25 MB per request
//! ([`plan_groups`]), and the inline images of an HTML body ([`inline`]). Reading and
//! downloading the files is the importer's work (`import::fetch`): the dry run plans
//! attachments without touching the network.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod inline;
pub use inline::{inline_images, rewrite_src};

pub use crate::happyfox::MAX_REQUEST_BYTES;

/// One attachment of a message, as the mapping produces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The file name HappyFox shows.
    pub name: String,
    pub source: AttachmentSource,
    /// The size the export states, if any: used for planning before anything is read
    /// (the dry-run); the real size wins once the file is resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentSource {
    /// Relative to the export folder.
    Path(PathBuf),
    /// Downloaded over https.
    Url(String),
}

// Splitting into requests.

/// A file that can never be sent, since it alone exceeds the per-request limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OversizeFile {
    /// Its index in the planned list.
    pub index: usize,
    pub name: String,
    pub size: u64,
}

/// Files over the limit, plus the plan for the others (which can still be sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} attachment(s) over the {limit} bytes HappyFox accepts per request: {}", files.len(), files.iter().map(|f| format!("{:?} ({} bytes)", f.name, f.size)).collect::<Vec<_>>().join(", "))]
pub struct Oversize {
    pub files: Vec<OversizeFile>,
    pub limit: u64,
    /// The groups of the files that fit, as [`plan_groups`] would return them.
    pub groups: Vec<Vec<usize>>,
}

/// Splits one message's attachments (name, size) into as few requests as first-fit
/// decreasing finds, each totalling at most `limit` bytes. Each group lists indices in
/// their original order, and groups are ordered by their first index, so the message's
/// first attachment goes with its first post. A file over `limit` alone is reported in
/// [`Oversize`] (with the plan for the rest), never sent.
pub fn plan_groups<N: AsRef<str>>(
    items: &[(N, u64)],
    limit: u64,
) -> Result<Vec<Vec<usize>>, Oversize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Stable: equal sizes keep their original order.
    order.sort_by(|&a, &b| items[b].1.cmp(&items[a].1));
    let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
    let mut oversize = Vec::new();
    for i in order {
        let size = items[i].1;
        if size > limit {
            oversize.push(OversizeFile {
                index: i,
                name: items[i].0.as_ref().to_owned(),
                size,
            });
            continue;
        }
        match groups.iter_mut().find(|(used, _)| limit - *used >= size) {
            Some((used, members)) => {
                *used += size;
                members.push(i);
            }
            None => groups.push((size, vec![i])),
        }
    }
    let mut groups: Vec<Vec<usize>> = groups
        .into_iter()
        .map(|(_, mut members)| {
            members.sort_unstable();
            members
        })
        .collect();
    groups.sort_unstable_by_key(|g| g[0]);
    if oversize.is_empty() {
        Ok(groups)
    } else {
        oversize.sort_unstable_by_key(|f| f.index);
        Err(Oversize {
            files: oversize,
            limit,
            groups,
        })
    }
}

// Inline images.
#[cfg(test)]
mod tests {
    use super::*;

    const MB25: u64 = MAX_REQUEST_BYTES;

    fn plan(sizes: &[u64], limit: u64) -> Result<Vec<Vec<usize>>, Oversize> {
        let items: Vec<(String, u64)> = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("f{i}"), *s))
            .collect();
        plan_groups(&items, limit)
    }

    #[test]
    fn a_message_exactly_at_the_limit_is_one_request() {
        assert_eq!(plan(&[MB25], MB25), Ok(vec![vec![0]]));
        assert_eq!(
            plan(&[MB25 - 10, 4, 6], MB25),
            Ok(vec![vec![0, 1, 2]]),
            "together exactly 25 MB"
        );
        assert_eq!(plan(&[], MB25), Ok(vec![]));
        assert_eq!(plan(&[0, 0], MB25), Ok(vec![vec![0, 1]]));
    }

    #[test]
    fn one_byte_over_splits_or_is_reported() {
        assert_eq!(
            plan(&[MB25 - 10, 5, 6], MB25),
            Ok(vec![vec![0, 2], vec![1]]),
            "11 bytes over: the larger small file joins the first request"
        );
        let e = plan(&[10, MB25 + 1, 20], MB25).unwrap_err();
        assert_eq!(
            e.files,
            vec![OversizeFile {
                index: 1,
                name: "f1".into(),
                size: MB25 + 1
            }]
        );
        assert_eq!(e.groups, vec![vec![0, 2]], "the rest can still be sent");
        assert!(e.to_string().contains("\"f1\" (26214401 bytes)"), "{e}");
    }

    #[test]
    fn many_small_files_fill_few_requests_in_order() {
        // 60 files of 1 MB: 25 + 25 + 10.
        let mb = 1024 * 1024;
        let groups = plan(&[mb; 60], MB25).unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0], (0..25).collect::<Vec<_>>());
        assert_eq!(groups[2], (50..60).collect::<Vec<_>>());
        // Decreasing order packs what first-fit in input order would not: 4 + 3 + 3 + 2 +
        // 2 + 1 with limit 5 fits in three requests (4+1, 3+2, 3+2).
        let groups = plan(&[1, 2, 3, 4, 2, 3], 5).unwrap();
        assert_eq!(groups.len(), 3, "{groups:?}");
        for g in &groups {
            assert!(g.windows(2).all(|w| w[0] < w[1]), "order kept: {g:?}");
            let total: u64 = g.iter().map(|&i| [1, 2, 3, 4, 2, 3][i]).sum();
            assert!(total <= 5);
        }
        assert_eq!(groups[0][0], 0, "the first file goes first");
    }

    #[test]
    fn every_file_is_planned_once() {
        let sizes: Vec<u64> = (0..200).map(|i| (i * 7919 % 1000) * 26_000).collect();
        let groups = plan(&sizes, MB25).unwrap();
        let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        let total: u64 = sizes.iter().sum();
        assert!(
            groups.len() as u64 <= total.div_ceil(MB25) + 1,
            "{}",
            groups.len()
        );
    }
}
