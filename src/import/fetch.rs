//! Attachments from the export to files ready to upload.
//!
//! Reading attachments is where a migration tool can do harm: an export is data from
//! outside (customers wrote those messages), so a path in it must never read anything
//! outside the export folder, and a URL in it must never carry the source helpdesk's
//! credentials anywhere but where they belong. This module resolves each
//! [`AttachmentRef`] the mapping produces into a [`Resolved`] file on disk (the export's
//! own file, or a download streamed to a temp file). Every failure is per attachment: the
//! caller reports it and carries on with the rest. What can be planned without reading
//! (sizes, request groups, inline images) is in [`crate::attachments`].

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use tokio::io::AsyncWriteExt as _;

use crate::attachments::{AttachmentRef, AttachmentSource, MAX_REQUEST_BYTES};
use crate::client::{ATTACHMENTS_FIELD, FilePart};

/// The environment variable holding the header sent with attachment downloads, such as
/// `Authorization: Basic ...` for a Zendesk export. Only the environment, never an
/// argument, so the value stays out of shell history and process listings.
pub(crate) const SOURCE_AUTH_HEADER_VAR: &str = "HFMIGRATE_SOURCE_AUTH_HEADER";
/// Optional comma-separated host names the header may go to; unset means the host of
/// any attachment URL (never the hosts it redirects to).
pub(crate) const SOURCE_AUTH_HOSTS_VAR: &str = "HFMIGRATE_SOURCE_AUTH_HOSTS";

/// Redirects followed per download: enough for a CDN hop or two, not a loop.
const MAX_REDIRECTS: usize = 5;

/// Why one attachment cannot be sent. Messages name the attachment and its path, or its
/// URL without query string or user info (signed URLs carry tokens there); they never hold
/// the source's auth header.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error(
        "attachment {name:?}: {path:?} is absolute; attachment paths are relative to the export folder"
    )]
    Absolute { name: String, path: PathBuf },
    #[error("attachment {name:?}: {path:?} is outside the export folder; it was not read")]
    OutsideExport { name: String, path: PathBuf },
    #[error("attachment {name:?}: file {path:?} not found in the export folder {root:?}")]
    Missing {
        name: String,
        path: PathBuf,
        root: PathBuf,
    },
    #[error("attachment {name:?}: {path:?} is not a regular file")]
    NotAFile { name: String, path: PathBuf },
    #[error("attachment {name:?}: cannot read {path:?}: {detail}")]
    Unreadable {
        name: String,
        path: PathBuf,
        detail: String,
    },
    #[error(
        "attachment {name:?}: {size} bytes is over the {limit} bytes HappyFox accepts per request; not sent"
    )]
    TooLarge { name: String, size: u64, limit: u64 },
    #[error("attachment {name:?}: {url} is not usable: {reason}")]
    BadUrl {
        name: String,
        url: String,
        reason: String,
    },
    #[error("attachment {name:?}: downloading {url} failed: {detail}")]
    Download {
        name: String,
        url: String,
        detail: String,
    },
    #[error("attachment {name:?}: {url} answered HTTP {status}")]
    HttpStatus {
        name: String,
        url: String,
        status: u16,
    },
    #[error("attachment {name:?}: cannot write the download to a temp file: {detail}")]
    TempFile { name: String, detail: String },
}

/// The source's auth header, from [`SOURCE_AUTH_HEADER_VAR`]. Neither `Debug` nor
/// `Display` shows the value.
#[derive(Clone)]
pub struct SourceAuth {
    name: HeaderName,
    value: HeaderValue,
    /// Lower-cased hosts the header may go to; empty: the first host of each download.
    hosts: Vec<String>,
}

impl fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceAuth")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// A header line that cannot be used; the message never contains the value.
#[derive(Debug, thiserror::Error)]
#[error("{var} is not usable: {reason}")]
pub struct BadAuthHeader {
    pub var: &'static str,
    pub reason: String,
}

impl SourceAuth {
    /// Reads [`SOURCE_AUTH_HEADER_VAR`] (and [`SOURCE_AUTH_HOSTS_VAR`]); `None` when unset.
    pub(crate) fn from_env() -> Result<Option<SourceAuth>, BadAuthHeader> {
        let Some(line) = std::env::var(SOURCE_AUTH_HEADER_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        let hosts = std::env::var(SOURCE_AUTH_HOSTS_VAR).unwrap_or_default();
        SourceAuth::parse(&line, &hosts).map(Some)
    }

    /// `line` is `Name: value`; `hosts` a comma-separated list, possibly empty.
    pub fn parse(line: &str, hosts: &str) -> Result<SourceAuth, BadAuthHeader> {
        let bad = |reason: &str| BadAuthHeader {
            var: SOURCE_AUTH_HEADER_VAR,
            reason: reason.into(),
        };
        let (name, value) = line.split_once(':').ok_or_else(|| {
            bad("expected `Header-Name: value`, such as `Authorization: Basic ...`")
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| bad("the part before ':' is not a header name"))?;
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| bad("the value contains characters a header cannot carry"))?;
        if value.is_empty() {
            return Err(bad("the value after ':' is empty"));
        }
        // Keeps the value out of reqwest's own Debug output and HTTP/2 header tables.
        value.set_sensitive(true);
        let hosts = hosts
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Ok(SourceAuth { name, value, hosts })
    }

    /// Replaces the value wherever it appears in `text` (a server may echo it back).
    fn scrub(&self, text: &str) -> String {
        match self.value.to_str() {
            Ok(v) if v.len() >= 4 => {
                let mut out = text.replace(v, "[redacted]");
                // The credential alone, without a scheme such as `Basic `.
                if let Some((_, token)) = v.split_once(' ')
                    && token.len() >= 4
                {
                    out = out.replace(token, "[redacted]");
                }
                out
            }
            _ => text.to_owned(),
        }
    }

    fn applies_to(&self, url: &Url, first: &Url) -> bool {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        if self.hosts.is_empty() {
            url.origin() == first.origin()
        } else {
            self.hosts.contains(&host)
        }
    }
}

/// How downloads behave; [`Default`] suits a real source helpdesk.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub auth: Option<SourceAuth>,
    pub connect_timeout: Duration,
    /// Longest silence while reading an answer.
    pub read_timeout: Duration,
    /// Longest whole download.
    pub timeout: Duration,
    /// Larger downloads are stopped: a single file over HappyFox's per-request limit can
    /// never be sent, so reading it further is wasted.
    pub max_bytes: u64,
    /// Allows `http://` to loopback addresses (tests, a local mirror). Off by default: an
    /// inline image in a customer's message could otherwise make the tool read a service
    /// on the migrating machine and upload the answer to HappyFox.
    pub allow_loopback_http: bool,
    /// Where downloads are written; the system temp dir when `None`.
    pub temp_dir: Option<PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            auth: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(600),
            max_bytes: MAX_REQUEST_BYTES,
            allow_loopback_http: false,
            temp_dir: None,
        }
    }
}

/// An attachment ready to upload. A download lives in a temp file removed when this is
/// dropped, so keep it until the post that sends it has an outcome.
#[derive(Debug)]
pub struct Resolved {
    pub name: String,
    /// The file to send: the export's own file (canonical path) or the temp file.
    pub path: PathBuf,
    pub size: u64,
    pub content_type: Option<String>,
    _temp: Option<tempfile::TempPath>,
}

impl Resolved {
    /// The multipart part that sends it as an attachment (`attachments`); set `field` to
    /// [`crate::client::INLINE_FILE_FIELD`] for an inline image.
    pub fn file_part(&self) -> FilePart {
        FilePart {
            field: ATTACHMENTS_FIELD,
            name: self.name.clone(),
            path: self.path.clone(),
            content_type: self.content_type.clone(),
        }
    }
}

/// Resolves attachments of one export: local files under its folder, URLs by download.
#[derive(Debug)]
pub struct Fetcher {
    root: PathBuf,
    http: reqwest::Client,
    options: FetchOptions,
}

impl Fetcher {
    /// `export_root` is the folder relative paths are read from; it must exist.
    pub fn new(export_root: &Path, options: FetchOptions) -> std::io::Result<Fetcher> {
        let root = export_root.canonicalize()?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            // Followed by hand, so each hop is checked and the auth header stays with
            // its host.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .timeout(options.timeout)
            .user_agent(concat!("hfmigrate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| std::io::Error::other(e.without_url().to_string()))?;
        Ok(Fetcher {
            root,
            http,
            options,
        })
    }

    /// The canonical export folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads or downloads one attachment; every failure is this attachment's alone.
    pub async fn fetch(&self, attachment: &AttachmentRef) -> Result<Resolved, AttachmentError> {
        match &attachment.source {
            AttachmentSource::Path(path) => {
                let (path, size) = resolve_local(&self.root, &attachment.name, path)?;
                if size > self.options.max_bytes {
                    return Err(AttachmentError::TooLarge {
                        name: attachment.name.clone(),
                        size,
                        limit: self.options.max_bytes,
                    });
                }
                Ok(Resolved {
                    name: attachment.name.clone(),
                    path,
                    size,
                    content_type: attachment.content_type.clone(),
                    _temp: None,
                })
            }
            AttachmentSource::Url(url) => self.download(attachment, url).await,
        }
    }

    fn check_url(&self, name: &str, url: &Url) -> Result<(), AttachmentError> {
        let bad = |reason: &str| AttachmentError::BadUrl {
            name: name.into(),
            url: shown(url),
            reason: reason.into(),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("user names or passwords in URLs are not sent"));
        }
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.options.allow_loopback_http && is_loopback(url) => Ok(()),
            "http" => Err(bad("only https:// is downloaded")),
            _ => Err(bad("only https:// is downloaded")),
        }
    }

    async fn download(
        &self,
        attachment: &AttachmentRef,
        raw: &str,
    ) -> Result<Resolved, AttachmentError> {
        let name = attachment.name.as_str();
        let first = Url::parse(raw.trim()).map_err(|e| AttachmentError::BadUrl {
            name: name.into(),
            url: shown_raw(raw),
            reason: e.to_string(),
        })?;
        let (response, url) = self.follow(name, first).await?;
        if let Some(len) = response.content_length()
            && len > self.options.max_bytes
        {
            return Err(self.too_large(name, len));
        }
        let content_type = attachment.content_type.clone().or_else(|| {
            response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let (temp_path, size) = self.save(name, response, &url).await?;
        Ok(Resolved {
            name: name.into(),
            path: temp_path.to_path_buf(),
            size,
            content_type,
            _temp: Some(temp_path),
        })
    }

    /// Requests `first`, following at most [`MAX_REDIRECTS`] redirects by hand so each
    /// hop is checked and the source's auth header goes only where it belongs; the
    /// successful response and the URL it came from.
    async fn follow(
        &self,
        name: &str,
        first: Url,
    ) -> Result<(reqwest::Response, Url), AttachmentError> {
        let mut url = first.clone();
        let mut hops = 0;
        loop {
            self.check_url(name, &url)?;
            let mut request = self.http.get(url.clone());
            if let Some(auth) = &self.options.auth
                && auth.applies_to(&url, &first)
            {
                request = request.header(auth.name.clone(), auth.value.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.transport_error(name, &url, &e))?;
            let status = response.status();
            if status.is_redirection() {
                hops += 1;
                let next = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                let Some(next) = next.filter(|_| hops <= MAX_REDIRECTS) else {
                    return Err(AttachmentError::Download {
                        name: name.into(),
                        url: shown(&url),
                        detail: format!(
                            "HTTP {} without a usable Location, or more than {MAX_REDIRECTS} redirects",
                            status.as_u16()
                        ),
                    });
                };
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(AttachmentError::HttpStatus {
                    name: name.into(),
                    url: shown(&url),
                    status: status.as_u16(),
                });
            }
            return Ok((response, url));
        }
    }

    /// Streams the body to a temp file (removed when the path is dropped), refusing it as
    /// soon as it passes the size limit; the path and the size.
    async fn save(
        &self,
        name: &str,
        mut response: reqwest::Response,
        url: &Url,
    ) -> Result<(tempfile::TempPath, u64), AttachmentError> {
        let temp_error = |e: std::io::Error| AttachmentError::TempFile {
            name: name.into(),
            detail: e.to_string(),
        };
        // The extension is kept so the upload's type can be guessed from the temp file.
        let suffix = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() <= 16 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let mut builder = tempfile::Builder::new();
        builder.prefix("hfmigrate-attachment-").suffix(&suffix);
        let temp = match &self.options.temp_dir {
            Some(dir) => builder.tempfile_in(dir),
            None => builder.tempfile(),
        }
        .map_err(temp_error)?;
        let (file, temp_path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut size = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(name, url, &e))?
        {
            size += chunk.len() as u64;
            if size > self.options.max_bytes {
                return Err(self.too_large(name, size));
            }
            file.write_all(&chunk).await.map_err(temp_error)?;
        }
        file.flush().await.map_err(temp_error)?;
        Ok((temp_path, size))
    }

    fn too_large(&self, name: &str, size: u64) -> AttachmentError {
        AttachmentError::TooLarge {
            name: name.into(),
            size,
            limit: self.options.max_bytes,
        }
    }

    /// A failed download, described without the source's auth header (a server may
    /// echo it) and without the URL's query string.
    fn transport_error(&self, name: &str, url: &Url, e: &reqwest::Error) -> AttachmentError {
        let detail = crate::client::describe(e);
        AttachmentError::Download {
            name: name.into(),
            url: shown(url),
            detail: match &self.options.auth {
                Some(auth) => auth.scrub(&detail),
                None => detail,
            },
        }
    }
}

/// Finds a relative path inside `root` (canonical) and returns its canonical path and
/// size. Absolute paths and `..` that climb above the folder are refused before anything
/// is touched; symlinks are followed and the target must still be inside the folder.
pub(crate) fn resolve_local(
    root: &Path,
    name: &str,
    relative: &Path,
) -> Result<(PathBuf, u64), AttachmentError> {
    let outside = || AttachmentError::OutsideExport {
        name: name.into(),
        path: relative.into(),
    };
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Err(AttachmentError::Absolute {
                    name: name.into(),
                    path: relative.into(),
                });
            }
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1).ok_or_else(outside)?,
            Component::Normal(_) => depth += 1,
        }
    }
    if depth == 0 {
        return Err(AttachmentError::NotAFile {
            name: name.into(),
            path: relative.into(),
        });
    }
    let joined = root.join(relative);
    let canonical = match joined.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink is "missing" too; whether it pointed outside does not
            // matter, since nothing is read.
            return Err(AttachmentError::Missing {
                name: name.into(),
                path: relative.into(),
                root: root.into(),
            });
        }
        Err(e) => {
            return Err(AttachmentError::Unreadable {
                name: name.into(),
                path: relative.into(),
                detail: e.to_string(),
            });
        }
    };
    if !canonical.starts_with(root) {
        return Err(outside());
    }
    let meta = std::fs::metadata(&canonical).map_err(|e| AttachmentError::Unreadable {
        name: name.into(),
        path: relative.into(),
        detail: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(AttachmentError::NotAFile {
            name: name.into(),
            path: relative.into(),
        });
    }
    Ok((canonical, meta.len()))
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A URL for messages: no user info, no query or fragment (signed links carry tokens).
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let hidden = u.query().is_some();
    u.set_query(None);
    u.set_fragment(None);
    if hidden {
        format!("{u}?…")
    } else {
        u.to_string()
    }
}

/// [`shown`] for text that did not parse as a URL.
fn shown_raw(raw: &str) -> String {
    let cut = raw.split(['?', '#']).next().unwrap_or("");
    let cut = match cut.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => cut.to_owned(),
    };
    cut.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_stay_in_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("files")).unwrap();
        std::fs::write(root.join("files/a.txt"), b"hello").unwrap();
        let ok = resolve_local(&root, "a", Path::new("files/./sub/../a.txt"));
        // `sub` does not exist, so canonicalize cannot pass through it.
        assert!(matches!(ok, Err(AttachmentError::Missing { .. })), "{ok:?}");
        let (p, size) = resolve_local(&root, "a", Path::new("files/a.txt")).unwrap();
        assert_eq!((p, size), (root.join("files/a.txt"), 5));
        for (path, want) in [
            ("../a.txt", "outside"),
            ("files/../../a.txt", "outside"),
            ("/etc/passwd", "absolute"),
            ("", "regular file"),
            ("files", "regular file"),
            ("nope.txt", "not found"),
        ] {
            let e = resolve_local(&root, "a", Path::new(path)).unwrap_err();
            assert!(e.to_string().contains(want), "{path}: {e}");
        }
    }

    #[test]
    fn the_auth_header_is_parsed_and_never_printed() {
        let a = SourceAuth::parse("Authorization: Basic c2VjcmV0LXZhbHVl", "").unwrap();
        let text = format!("{a:?}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert_eq!(
            a.scrub("echo Basic c2VjcmV0LXZhbHVl and c2VjcmV0LXZhbHVl"),
            "echo [redacted] and [redacted]"
        );
        for bad in [
            "no colon here",
            "Bad Name: x",
            "X-Key:   ",
            "X-Key: a\u{7}b",
        ] {
            let e = SourceAuth::parse(bad, "").unwrap_err();
            assert!(e.to_string().contains(SOURCE_AUTH_HEADER_VAR), "{e}");
            assert!(!e.to_string().contains("a\u{7}b"), "{e}");
        }
        let first = Url::parse("https://acme.zendesk.com/a").unwrap();
        let cdn = Url::parse("https://cdn.example/x").unwrap();
        assert!(a.applies_to(&first, &first));
        assert!(!a.applies_to(&cdn, &first), "not across redirects");
        let listed = SourceAuth::parse("X-Key: abcdef", "Acme.Zendesk.com, other").unwrap();
        assert!(listed.applies_to(&first, &cdn));
        assert!(!listed.applies_to(&cdn, &cdn), "only listed hosts");
    }

    #[test]
    fn urls_in_messages_hide_tokens() {
        let u = Url::parse("https://user:pw@x.example/f.png?token=SECRET#frag").unwrap();
        assert_eq!(shown(&u), "https://x.example/f.png?…");
        assert_eq!(shown_raw("ht!tp://u:p@x/?token=SECRET"), "ht!tp://x/");
    }
}
