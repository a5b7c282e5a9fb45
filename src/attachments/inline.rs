//! The inline images of an HTML body: which `<img src>` values must be uploaded to
//! survive the source account's closing, and rewriting them once uploaded.
//!
//! A small tolerant scanner rather than an HTML parser: bodies from helpdesk exports are
//! fragments, often malformed, and only `src` attributes of `img` tags matter.

use std::path::PathBuf;

use reqwest::Url;

use super::{AttachmentRef, AttachmentSource};

/// An `<img>` source to upload through `ticket-inline-attachment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The `src` value, entities decoded: what [`rewrite_src`] matches.
    pub src: String,
    /// Where to read it: a URL (protocol-relative ones as https) or a path relative to the
    /// export folder.
    pub source: AttachmentSource,
    /// A file name for the upload, from the last path segment.
    pub name: String,
}

impl ImageRef {
    /// The attachment to fetch for it.
    pub fn attachment(&self) -> AttachmentRef {
        AttachmentRef {
            name: self.name.clone(),
            source: self.source.clone(),
            size: None,
            content_type: None,
        }
    }
}

/// The images of an HTML body that must be uploaded to survive the source account's
/// closing: `<img src>` values that are http(s) URLs or relative paths, each once, in
/// order of first appearance. `data:` images are already inline, `cid:` references name
/// an e-mail part the export no longer has, and images already on HappyFox (an account
/// host, or a `get_hdp_temporarily_attachment` link) need nothing.
pub fn inline_images(html: &str) -> Vec<ImageRef> {
    let mut out: Vec<ImageRef> = Vec::new();
    for tag in img_tags(html) {
        let Some(src) = tag.src else { continue };
        if out.iter().any(|i| i.src == src.value) {
            continue;
        }
        if let Some(image) = classify_src(&src.value) {
            out.push(image);
        }
    }
    out
}

/// Replaces `<img src>` values equal (entities decoded) to an `old` with its `new`,
/// leaving everything else of the HTML byte for byte as it was.
pub fn rewrite_src(html: &str, replacements: &[(String, String)]) -> String {
    let mut out = String::with_capacity(html.len());
    let mut last = 0;
    for tag in img_tags(html) {
        let Some(src) = tag.src else { continue };
        let Some((_, new)) = replacements.iter().find(|(old, _)| *old == src.value) else {
            continue;
        };
        out.push_str(&html[last..src.start]);
        out.push('"');
        out.push_str(&html_escape::encode_double_quoted_attribute(new));
        out.push('"');
        last = src.end;
    }
    out.push_str(&html[last..]);
    out
}

fn classify_src(src: &str) -> Option<ImageRef> {
    let trimmed = src.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let url = if let Some(rest) = trimmed.strip_prefix("//") {
        Some(format!("https://{rest}"))
    } else {
        let scheme = trimmed
            .split_once(':')
            .map(|(s, _)| s)
            .filter(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                    && !s.contains('/')
            })
            .map(str::to_ascii_lowercase);
        match scheme.as_deref() {
            None => None,
            Some("http" | "https") => Some(trimmed.to_owned()),
            // data:, cid:, file:, javascript: and the rest are never fetched.
            Some(_) => return None,
        }
    };
    match url {
        Some(u) => {
            let parsed = Url::parse(&u).ok()?;
            let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
            if host.ends_with(".happyfox.com")
                || host.ends_with(".happyfox.net")
                || parsed.path().contains("/get_hdp_temporarily_attachment/")
            {
                return None;
            }
            let name = file_name_of(parsed.path());
            Some(ImageRef {
                src: src.to_owned(),
                source: AttachmentSource::Url(u),
                name,
            })
        }
        None => {
            let path = trimmed.split(['?', '#']).next().unwrap_or(trimmed);
            let path = percent_decode(path);
            Some(ImageRef {
                src: src.to_owned(),
                name: file_name_of(&path),
                source: AttachmentSource::Path(PathBuf::from(path)),
            })
        }
    }
}

fn file_name_of(path: &str) -> String {
    let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    let last = percent_decode(last);
    if last.is_empty() {
        "image".into()
    } else {
        last
    }
}

/// Decodes `%XX` escapes in a local path or file name; anything that is not a valid
/// escape stays as written (`u8::from_str_radix` alone would take `%+f` for one), and
/// bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// An attribute value's span in the HTML (quotes included) and its decoded text.
struct AttrSpan {
    start: usize,
    end: usize,
    value: String,
}

struct ImgTag {
    src: Option<AttrSpan>,
}

/// The `<img>` tags of `html`, skipping comments. A small scanner rather than an HTML
/// parser: it only has to find `src` attributes and their exact byte spans, so a rewrite
/// leaves the rest of the body untouched.
fn img_tags(html: &str) -> Vec<ImgTag> {
    let bytes = html.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    // memchr's SIMD search: every body of every record goes through here.
    while let Some(off) = memchr::memchr(b'<', &bytes[i..]) {
        let start = i + off;
        if html[start..].starts_with("<!--") {
            i = html[start..]
                .find("-->")
                .map_or(bytes.len(), |e| start + e + 3);
            continue;
        }
        let name_end = start + 4;
        let is_img = bytes.len() > name_end
            && html.is_char_boundary(name_end)
            && html[start + 1..name_end].eq_ignore_ascii_case("img")
            && (bytes[name_end].is_ascii_whitespace() || bytes[name_end] == b'/');
        if !is_img {
            i = start + 1;
            continue;
        }
        let (src, end) = scan_attributes(html, name_end);
        tags.push(ImgTag { src });
        i = end;
    }
    tags
}

/// Reads attributes from `pos` to the tag's `>`; returns the `src` span and where the
/// tag ends.
fn scan_attributes(html: &str, mut pos: usize) -> (Option<AttrSpan>, usize) {
    let bytes = html.as_bytes();
    let mut src = None;
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'/') {
            pos += 1;
        }
        if pos >= bytes.len() {
            return (src, pos);
        }
        if bytes[pos] == b'>' {
            return (src, pos + 1);
        }
        let name_start = pos;
        while pos < bytes.len()
            && !bytes[pos].is_ascii_whitespace()
            && !b"=>/".contains(&bytes[pos])
        {
            pos += 1;
        }
        let name = &html[name_start..pos];
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() || bytes[pos] != b'=' {
            continue;
        }
        pos += 1;
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let value_start = pos;
        let raw = match bytes.get(pos) {
            Some(&q @ (b'"' | b'\'')) => {
                let close = html[pos + 1..].find(q as char).map(|e| pos + 1 + e);
                let Some(close) = close else {
                    return (src, bytes.len());
                };
                pos = close + 1;
                &html[value_start + 1..close]
            }
            _ => {
                while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                    pos += 1;
                }
                &html[value_start..pos]
            }
        };
        if name.eq_ignore_ascii_case("src") && src.is_none() {
            src = Some(AttrSpan {
                start: value_start,
                end: pos,
                value: html_escape::decode_html_entities(raw).into_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_leaves_malformed_escapes_alone() {
        assert_eq!(percent_decode("shot%201.png"), "shot 1.png");
        assert_eq!(percent_decode("a%+fb.png"), "a%+fb.png");
        assert_eq!(percent_decode("100%.png"), "100%.png");
        assert_eq!(percent_decode("caf%C3%A9.png"), "café.png");
    }

    #[test]
    fn finds_inline_images_to_upload() {
        let html = r#"<p>Hi</p><IMG alt="x" SRC="https://cdn.zendesk.com/a/b/shot%201.png?token=abc&amp;x=1">
            <img src='images/logo.gif'/><img src=data:image/png;base64,AAAA>
            <img src="cid:part1@mail"><img src="https://acme.happyfox.com/x.png">
            <img src="http://127.0.0.1:1/get_hdp_temporarily_attachment/7/">
            <!-- <img src="https://commented.example/out.png"> -->
            <img src="//cdn.example.org/p.jpg"><imgx src="no.png"><img src="images/logo.gif">
            <img src="file:///etc/passwd"><img src="../up.png">"#;
        let found = inline_images(html);
        let srcs: Vec<(&str, &AttachmentSource, &str)> = found
            .iter()
            .map(|i| (i.src.as_str(), &i.source, i.name.as_str()))
            .collect();
        assert_eq!(
            srcs,
            vec![
                (
                    "https://cdn.zendesk.com/a/b/shot%201.png?token=abc&x=1",
                    &AttachmentSource::Url(
                        "https://cdn.zendesk.com/a/b/shot%201.png?token=abc&x=1".into()
                    ),
                    "shot 1.png"
                ),
                (
                    "images/logo.gif",
                    &AttachmentSource::Path("images/logo.gif".into()),
                    "logo.gif"
                ),
                (
                    "//cdn.example.org/p.jpg",
                    &AttachmentSource::Url("https://cdn.example.org/p.jpg".into()),
                    "p.jpg"
                ),
                // Found here, refused by the fetcher as outside the export.
                (
                    "../up.png",
                    &AttachmentSource::Path("../up.png".into()),
                    "up.png"
                ),
            ]
        );
    }

    #[test]
    fn rewrites_only_the_matching_src_attributes() {
        let html = r#"<p title="images/a.png">images/a.png</p><img width=3 src='images/a.png' alt="a"><img src="https://x.example/b.png?a=1&amp;b=2"><img src=images/a.png>"#;
        let out = rewrite_src(
            html,
            &[
                (
                    "images/a.png".into(),
                    "https://acme.happyfox.com/get_hdp_temporarily_attachment/1/".into(),
                ),
                (
                    "https://x.example/b.png?a=1&b=2".into(),
                    "https://h/2/?q=\"&".into(),
                ),
            ],
        );
        assert_eq!(
            out,
            r#"<p title="images/a.png">images/a.png</p><img width=3 src="https://acme.happyfox.com/get_hdp_temporarily_attachment/1/" alt="a"><img src="https://h/2/?q=&quot;&amp;"><img src="https://acme.happyfox.com/get_hdp_temporarily_attachment/1/">"#
        );
        assert_eq!(rewrite_src(html, &[]), html);
        // Broken HTML is left alone rather than mangled.
        assert_eq!(
            rewrite_src("<img src=\"x", &[("x".into(), "y".into())]),
            "<img src=\"x"
        );
        assert!(inline_images("<img").is_empty());
        assert!(inline_images("<img src=>").is_empty());
    }
}
