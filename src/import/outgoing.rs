//! A message's body made ready to post: its files read, its inline images uploaded and
//! pointing at HappyFox, its files grouped into requests of at most 25 MB, and the files
//! beyond the first request carried by continuation notes.
//!
//! Shared by the ticket creates ([`super::send`]) and the conversation
//! ([`super::replies`]): both post bodies the mapping built, with the same attachment
//! key and the same rules for files that cannot be sent.

use serde_json::{Map, Value, json};

use super::fetch::{Fetcher, Resolved};
use crate::attachments::{
    AttachmentRef, MAX_REQUEST_BYTES, inline_images, plan_groups, rewrite_src,
};
use crate::client::{Client, FilePart, INLINE_FILE_FIELD, WriteOutcome};
use crate::journal::{AttachmentFailure, NewMessage};

/// The reserved payload key under which the mapping stores a message's attachments (an
/// array of [`AttachmentRef`]); it is read here and never sent to HappyFox.
pub(crate) use crate::payload::ATTACHMENTS_KEY;

/// The HTML field of a ticket create whose inline images are uploaded.
pub(super) const TICKET_HTML: &[&str] = &["html"];

/// A body ready to post: its fields without [`ATTACHMENTS_KEY`] and with inline images
/// pointing at HappyFox, its files grouped into requests of at most
/// [`MAX_REQUEST_BYTES`] (the first group goes with the post itself), and the files left
/// out.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub fields: Map<String, Value>,
    pub groups: Vec<Vec<(AttachmentRef, Resolved)>>,
    pub failures: Vec<AttachmentFailure>,
    /// Inline images uploaded through `ticket-inline-attachment`.
    pub inline_uploaded: u64,
}

/// Whether a stored payload carries attachments (anything but an empty list or null
/// under [`ATTACHMENTS_KEY`], so a malformed value is reported rather than ignored).
pub(crate) fn has_attachments(payload: &Value) -> bool {
    match payload.get(ATTACHMENTS_KEY) {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// The HTML fields of a conversation message whose inline images are uploaded.
pub(super) const MESSAGE_HTML: &[&str] = &["html", "text"];

/// Whether any of `keys` holds HTML referencing images to upload.
pub(crate) fn has_inline_images(fields: &Map<String, Value>, keys: &[&str]) -> bool {
    keys.iter().any(|k| {
        fields
            .get(*k)
            .and_then(Value::as_str)
            .is_some_and(|html| !inline_images(html).is_empty())
    })
}

/// The uploads [`prepare_outgoing`] makes for a body: one per distinct image across
/// `keys`, as it skips an image already tried.
pub(crate) fn inline_uploads(fields: &Map<String, Value>, keys: &[&str]) -> u64 {
    let mut seen: Vec<String> = Vec::new();
    for key in keys {
        let Some(html) = fields.get(*key).and_then(Value::as_str) else {
            continue;
        };
        for image in inline_images(html) {
            if !seen.contains(&image.src) {
                seen.push(image.src);
            }
        }
    }
    seen.len() as u64
}

pub(super) fn as_fields(payload: &Value) -> Map<String, Value> {
    match payload {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    }
}

/// Reads a body's attachments and uploads its inline images; every failure is one file's
/// alone and ends up in [`Outgoing::failures`], so the body is always sendable.
pub(crate) async fn prepare_outgoing(
    client: &Client,
    fetcher: Option<&Fetcher>,
    mut fields: Map<String, Value>,
    html_keys: &[&str],
) -> Outgoing {
    let mut failures = Vec::new();
    let mut refs = Vec::new();
    match fields.remove(ATTACHMENTS_KEY) {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match serde_json::from_value::<AttachmentRef>(item.clone()) {
                    Ok(r) => refs.push(r),
                    Err(e) => failures.push(AttachmentFailure {
                        name: item
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("(unnamed)")
                            .to_owned(),
                        error: format!("not a usable attachment reference ({e}): {item}"),
                    }),
                }
            }
        }
        Some(other) => failures.push(AttachmentFailure {
            name: "(attachments)".into(),
            error: format!("{ATTACHMENTS_KEY} must be a list of attachments, not {other}"),
        }),
    }
    let Some(fetcher) = fetcher else {
        failures.extend(refs.into_iter().map(|r| AttachmentFailure {
            error: format!(
                "attachment {:?}: no export folder to read it from; not sent",
                r.name
            ),
            name: r.name,
        }));
        return Outgoing {
            fields,
            groups: Vec::new(),
            failures,
            inline_uploaded: 0,
        };
    };

    // Inline images first: the body must point at HappyFox before it is sent.
    let mut replacements: Vec<(String, String)> = Vec::new();
    let mut tried: Vec<String> = Vec::new();
    for key in html_keys {
        let Some(html) = fields.get(*key).and_then(Value::as_str) else {
            continue;
        };
        for image in inline_images(html) {
            if tried.contains(&image.src) {
                continue;
            }
            tried.push(image.src.clone());
            match upload_inline(client, fetcher, &image.attachment()).await {
                Ok(url) => replacements.push((image.src, url)),
                Err(error) => failures.push(AttachmentFailure {
                    name: image.name,
                    error,
                }),
            }
        }
    }
    let inline_uploaded = replacements.len() as u64;
    if !replacements.is_empty() {
        for key in html_keys {
            if let Some(Value::String(html)) = fields.get_mut(*key) {
                *html = rewrite_src(html, &replacements);
            }
        }
    }

    let fetched = futures::future::join_all(refs.iter().map(|r| fetcher.fetch(r))).await;
    let mut resolved: Vec<Option<(AttachmentRef, Resolved)>> = Vec::new();
    for (r, f) in refs.into_iter().zip(fetched) {
        match f {
            Ok(file) => resolved.push(Some((r, file))),
            Err(e) => failures.push(AttachmentFailure {
                name: r.name,
                error: e.to_string(),
            }),
        }
    }
    let sizes: Vec<(&str, u64)> = resolved
        .iter()
        .flatten()
        .map(|(r, f)| (r.name.as_str(), f.size))
        .collect();
    let plan = match plan_groups(&sizes, MAX_REQUEST_BYTES) {
        Ok(groups) => groups,
        Err(over) => {
            failures.extend(over.files.iter().map(|f| AttachmentFailure {
                name: f.name.clone(),
                error: format!(
                    "attachment {:?}: {} bytes is over the {} bytes HappyFox accepts per request; not sent",
                    f.name, f.size, over.limit
                ),
            }));
            over.groups
        }
    };
    let groups = plan
        .into_iter()
        .map(|g| g.into_iter().filter_map(|i| resolved[i].take()).collect())
        .collect();
    Outgoing {
        fields,
        groups,
        failures,
        inline_uploaded,
    }
}

/// Uploads one inline image; the HappyFox URL that replaces its `src`, or why not.
async fn upload_inline(
    client: &Client,
    fetcher: &Fetcher,
    image: &AttachmentRef,
) -> Result<String, String> {
    let file = fetcher
        .fetch(image)
        .await
        .map_err(|e| format!("inline image: {e}"))?;
    let part = FilePart {
        field: INLINE_FILE_FIELD,
        ..file.file_part()
    };
    let failed = |why: String| format!("inline image {:?}: upload failed: {why}", image.name);
    match client
        .post_multipart("ticket-inline-attachment", &json!({}), &[part])
        .await
    {
        Ok(WriteOutcome::Done(v)) => v
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| failed("the answer has no url".into())),
        Ok(WriteOutcome::Rejected(e)) => Err(failed(e.to_string())),
        Ok(WriteOutcome::Unknown(why)) => Err(failed(format!("its outcome is unknown ({why})"))),
        Ok(WriteOutcome::Items(_)) => Err(failed("an unexpected list answer".into())),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// The private notes that carry a message's files beyond its first request, journaled
/// as messages of their own so each is posted exactly once. `of` names the message
/// ("" for the ticket's first message); the numbering makes each note's text unique
/// within its ticket, which is how an unknown post is found again.
pub(crate) fn continuation_notes(
    staff: u64,
    of: &str,
    extra: &[Vec<(AttachmentRef, Resolved)>],
) -> Vec<NewMessage> {
    let total = extra.len() + 1;
    extra
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let refs: Vec<&AttachmentRef> = group.iter().map(|(r, _)| r).collect();
            let body = json!({
                "staff": staff,
                "html": format!("<p>Attachments{of} continued ({}/{total})</p>", i + 2),
                ATTACHMENTS_KEY: refs,
            });
            let Value::Object(map) = &body else {
                unreachable!("json! of an object")
            };
            NewMessage {
                // Before the conversation's first message (position 1), in order.
                position: i as i64 - extra.len() as i64,
                key: format!("first/files{}", i + 2),
                content: crate::payload::conversation::message_content("attachments_note", "", map),
                kind: "attachments_note".into(),
                author: String::new(),
                author_name: String::new(),
                payload: body.to_string(),
            }
        })
        .collect()
}
