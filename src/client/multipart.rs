//! Writes as `multipart/form-data`, the only way HappyFox takes files: ticket creates,
//! replies and notes with attachments, and `ticket-inline-attachment`. A form's values
//! are all strings, so this is where JSON values become form text; files are streamed
//! from disk, never held in memory, and reopened for each attempt.

use serde::Serialize;
use serde_json::Value;

use super::ClientError;

/// The multipart field HappyFox reads a ticket's, reply's or note's files from (repeated).
pub(crate) const ATTACHMENTS_FIELD: &str = "attachments";
/// The multipart field of `ticket-inline-attachment` (one image).
pub const INLINE_FILE_FIELD: &str = "file";

/// One file of a multipart write, read from disk when the request is sent (attachments
/// can be large, so they are never held in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// [`ATTACHMENTS_FIELD`] or [`INLINE_FILE_FIELD`].
    pub field: &'static str,
    /// The file name HappyFox shows (not the name on disk, which may be a temp file).
    pub name: String,
    pub path: std::path::PathBuf,
    /// Guessed from `path`'s extension when absent or not a valid MIME type.
    pub content_type: Option<String>,
}

/// The text fields of a multipart write. Multipart values are strings, so numbers and
/// booleans are written as JSON writes them, lists and objects (multiple-choice custom
/// fields) as JSON text, which is what HappyFox's own C# helper sends; a null is left out,
/// which for every HappyFox field means the same as not setting it.
pub(crate) fn form_fields(
    path: &str,
    fields: &impl Serialize,
) -> Result<Vec<(String, String)>, ClientError> {
    let encode = |detail: String| ClientError::Encode {
        path: path.into(),
        detail,
    };
    let value = serde_json::to_value(fields).map_err(|e| encode(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(encode("multipart fields must be an object".into()));
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            list @ (Value::Array(_) | Value::Object(_)) => list.to_string(),
        };
        out.push((name, text));
    }
    Ok(out)
}

/// Builds a fresh form (the files opened again) and the total size of its files.
pub(super) async fn multipart_form(
    path: &str,
    fields: &[(String, String)],
    files: &[FilePart],
) -> Result<(reqwest::multipart::Form, u64), ClientError> {
    let mut form = reqwest::multipart::Form::new();
    for (name, text) in fields {
        form = form.text(name.clone(), text.clone());
    }
    let mut total = 0u64;
    for file in files {
        let unreadable = |e: std::io::Error| ClientError::Encode {
            path: path.into(),
            detail: format!("cannot read attachment {:?}: {e}", file.name),
        };
        let size = tokio::fs::metadata(&file.path)
            .await
            .map_err(unreadable)?
            .len();
        total += size;
        let open = || async { reqwest::multipart::Part::file(&file.path).await };
        let part = open().await.map_err(unreadable)?;
        // The type is guessed from the file's extension; a valid type from the source
        // wins, an invalid one is ignored.
        let part = match &file.content_type {
            Some(mime) => match part.mime_str(mime) {
                Ok(part) => part,
                Err(_) => open().await.map_err(unreadable)?,
            },
            None => part,
        };
        let part = part.file_name(file.name.clone());
        form = form.part(file.field, part);
    }
    Ok((form, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_fields_are_strings_with_lists_as_json() {
        let fields = form_fields(
            "tickets/",
            &serde_json::json!({"subject": "Hi", "category": 1, "update_customer": false,
                "assignee": null, "t-cf-5": [11, 12]}),
        )
        .unwrap();
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("subject", "Hi"),
                ("category", "1"),
                ("update_customer", "false"),
                ("t-cf-5", "[11,12]")
            ]
        );
        assert!(form_fields("tickets/", &serde_json::json!([1])).is_err());
    }
}
