//! What a request carries: its body (JSON, urlencoded or multipart) and its query
//! string, read the way HappyFox (a Django application) reads them.

use std::collections::HashMap;

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::super::validate::FieldErrors;
use super::MAX_BODY;

/// A parsed request body: the fields, and the uploaded files (metadata only: the sandbox
/// keeps names and sizes, not contents, so memory stays bounded).
pub(super) struct Input {
    pub(super) value: Value,
    pub(super) files: Vec<Upload>,
}

/// One uploaded file part. The digest lets a test check that the bytes arrived intact
/// without the sandbox keeping them.
pub(super) struct Upload {
    pub(super) field: String,
    pub(super) filename: String,
    pub(super) size: u64,
    /// The first bytes, for image sniffing (only when asked).
    pub(super) head: Vec<u8>,
    pub(super) sha256: String,
}

pub(super) enum BodyError {
    TooLarge,
    Invalid(String),
}

pub(super) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Reads JSON, urlencoded or multipart. Multipart and form values are strings; repeated
/// keys become lists. `keep_bytes` keeps the head of each file (for image sniffing). A
/// body over `limit` bytes is [`BodyError::TooLarge`] (multipart bodies are held to the
/// router's limit, set to the same value).
pub(super) async fn read_input(
    req: Request,
    keep_bytes: bool,
    limit: usize,
) -> Result<Input, BodyError> {
    let ct = content_type(req.headers());
    if ct.starts_with("multipart/form-data") {
        return read_multipart(req, keep_bytes).await;
    }
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| BodyError::TooLarge)?;
    if ct.starts_with("application/x-www-form-urlencoded") {
        let mut fields = Map::new();
        for (k, v) in form_pairs(&bytes) {
            push_field(&mut fields, k, v);
        }
        return Ok(Input {
            value: Value::Object(fields),
            files: Vec::new(),
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Input {
            value: Value::Object(Map::new()),
            files: Vec::new(),
        });
    }
    serde_json::from_slice(&bytes)
        .map(|value| Input {
            value,
            files: Vec::new(),
        })
        .map_err(|e| BodyError::Invalid(format!("Invalid JSON: {e}")))
}

/// Multipart fields become strings; file parts are hashed as they stream by and kept as
/// [`Upload`] metadata.
async fn read_multipart(req: Request, keep_bytes: bool) -> Result<Input, BodyError> {
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| BodyError::Invalid(e.body_text()))?;
    let mut fields = Map::new();
    let mut files = Vec::new();
    loop {
        let next = mp.next_field().await.map_err(multipart_error)?;
        let Some(field) = next else { break };
        let name = field.name().unwrap_or("").to_string();
        if let Some(filename) = field.file_name().map(str::to_string) {
            files.push(read_upload(field, name, filename, keep_bytes).await?);
        } else {
            let text = field
                .text()
                .await
                .map_err(|e| BodyError::Invalid(e.body_text()))?;
            push_field(&mut fields, name, text);
        }
    }
    Ok(Input {
        value: Value::Object(fields),
        files,
    })
}

async fn read_upload(
    mut field: Field<'_>,
    name: String,
    filename: String,
    keep_bytes: bool,
) -> Result<Upload, BodyError> {
    let mut size = 0u64;
    let mut head = Vec::new();
    let mut digest = Sha256::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        size += chunk.len() as u64;
        digest.update(&chunk);
        if keep_bytes && head.len() < 64 {
            head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
        }
    }
    Ok(Upload {
        field: name,
        filename,
        size,
        head,
        sha256: hex::encode(digest.finalize()),
    })
}

/// A part over the body limit is "too large" (413); any other multipart error is invalid
/// input (400).
fn multipart_error(e: MultipartError) -> BodyError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        BodyError::TooLarge
    } else {
        BodyError::Invalid(e.body_text())
    }
}

fn push_field(fields: &mut Map<String, Value>, name: String, text: String) {
    match fields.get_mut(&name) {
        Some(Value::Array(a)) => a.push(Value::String(text)),
        Some(other) => {
            let first = other.take();
            *other = Value::Array(vec![first, Value::String(text)]);
        }
        None => {
            fields.insert(name, Value::String(text));
        }
    }
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte), decoded by
/// the `form_urlencoded` crate that `url` and reqwest use.
fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// The query string as pairs, decoded the way Django decodes them.
pub(super) fn query_pairs(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| form_pairs(q.as_bytes()).into_iter().collect())
        .unwrap_or_default()
}

/// Reads and discards a request body (up to [`MAX_BODY`]) before an early answer. A
/// server that answers before reading an upload and closes the connection makes the client
/// see a broken pipe instead of the answer, which turns a provable "nothing happened" (a
/// 429 or 500 before storing) into an unknown outcome. A buffering front end (nginx's
/// default) reads the whole request before the application answers; whether HappyFox's
/// does is not documented, so the client still treats a broken pipe as unknown.
pub(super) async fn drain(req: Request) {
    use futures::StreamExt as _;
    let mut body = req.into_body().into_data_stream();
    let mut read = 0usize;
    while let Some(Ok(chunk)) = body.next().await {
        read += chunk.len();
        if read > MAX_BODY {
            break;
        }
    }
}

pub(super) fn page_params(q: &HashMap<String, String>) -> Result<(usize, usize), FieldErrors> {
    let mut e = FieldErrors::default();
    let size = match q.get("size") {
        None => 10,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(50),
            _ => {
                e.add("size", "Enter a whole number greater than 0.");
                10
            }
        },
    };
    let page = match q.get("page") {
        None => 1,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                e.add("page", "Enter a whole number greater than 0.");
                1
            }
        },
    };
    if e.is_empty() {
        Ok((size, page))
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_turns_plus_into_space() {
        assert_eq!(
            form_pairs(b"q=status:%22In+Progress%22&size=5"),
            vec![
                ("q".to_string(), "status:\"In Progress\"".to_string()),
                ("size".to_string(), "5".to_string())
            ]
        );
        // An encoded `&` or `=` is data, not a separator; a broken escape stays as sent.
        assert_eq!(
            form_pairs(b"q=a%26b%3Dc&x=100%&&y"),
            vec![
                ("q".to_string(), "a&b=c".to_string()),
                ("x".to_string(), "100%".to_string()),
                ("y".to_string(), String::new())
            ]
        );
    }
}
