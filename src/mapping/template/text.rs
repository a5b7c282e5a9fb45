//! Text conversions: HTML to plain text and back, the parts of an e-mail address, plain
//! text from Atlassian Document Format bodies, and cutting or rewriting text (`truncate`,
//! `regex_replace`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use minijinja::value::Value;
use minijinja::{Error, ErrorKind};

/// Plain text from HTML, the program's one conversion (shared with the sandbox).
pub use crate::html_text::html_to_text;

/// HTML from plain text: escaped, paragraphs for blank lines, `<br>` for line breaks.
///
/// Every ticket body goes through it, so each paragraph is escaped straight into the one
/// output buffer (no escaped copy of the whole text), and breaks and the characters to
/// escape are found with memchr rather than byte by byte. Escaping commutes with the
/// trimming and the splitting (it touches neither whitespace nor newlines), which is why
/// they can be done on the unescaped text.
pub fn text_to_html(text: &str) -> String {
    let text: std::borrow::Cow<'_, str> = if memchr::memchr(b'\r', text.as_bytes()).is_some() {
        text.replace("\r\n", "\n").into()
    } else {
        text.into()
    };
    let mut out = String::with_capacity(text.len() + text.len() / 16 + 16);
    // `text.split("\n\n")`: a body has few newlines, most not followed by another.
    let bytes = text.as_bytes();
    let (mut start, mut at) = (0, 0);
    while let Some(i) = memchr::memchr(b'\n', &bytes[at..]) {
        let i = at + i;
        if bytes.get(i + 1) == Some(&b'\n') {
            paragraph_into(&mut out, &text[start..i]);
            start = i + 2;
            at = i + 2;
        } else {
            at = i + 1;
        }
    }
    paragraph_into(&mut out, &text[start..]);
    out
}

/// One paragraph of [`text_to_html`]: trimmed, skipped when empty, escaped, its line
/// breaks as `<br>`.
fn paragraph_into(out: &mut String, p: &str) {
    let p = p.trim();
    if p.is_empty() {
        return;
    }
    out.push_str("<p>");
    // `p.split('\n')`, with the memchr crate's search: the standard library's, which
    // `split` uses, showed in profiles of every body.
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', p.as_bytes()) {
        escape_into(out, &p[start..i]);
        out.push_str("<br>");
        start = i + 1;
    }
    escape_into(out, &p[start..]);
    out.push_str("</p>");
}

/// `&`, `<` and `>` as entities, the rest copied in runs between them.
fn escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for i in memchr::memchr3_iter(b'&', b'<', b'>', s.as_bytes()) {
        let with = match s.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            _ => "&gt;",
        };
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(&s[start..i]);
        out.push_str(with);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// `"Rachel <rachel@example.com>"` → `rachel@example.com`.
pub fn email_address(s: &str) -> &str {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if b > a => s[a + 1..b].trim(),
        _ => s.trim(),
    }
}

/// `"Rachel <rachel@example.com>"` → `Rachel`.
pub fn email_name(s: &str) -> &str {
    match s.rfind('<') {
        Some(a) => s[..a].trim().trim_matches('"').trim(),
        None => "",
    }
}

/// Plain text from an Atlassian Document Format body (Jira REST v3 comments).
pub(super) fn adf_to_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        if let Ok(t) = v.get_attr("text")
            && let Some(s) = t.as_str()
        {
            out.push_str(s);
        }
        let kind = v
            .get_attr("type")
            .ok()
            .and_then(|t| t.as_str().map(str::to_string));
        if kind.as_deref() == Some("hardBreak") {
            out.push('\n');
        }
        if let Ok(content) = v.get_attr("content")
            && let Ok(iter) = content.try_iter()
        {
            for child in iter {
                walk(&child, out);
            }
        }
        if matches!(
            kind.as_deref(),
            Some("paragraph" | "heading" | "listItem" | "codeBlock")
        ) {
            out.push('\n');
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out.trim_end().to_string()
}

/// `truncate(n, end='…')`: at most `n` characters (not bytes: a UTF-8 character is never
/// cut), the last ones replaced by `end` when the text is longer. A subject over
/// HappyFox's limit can be cut on purpose this way instead of being rejected.
pub(super) fn filter_truncate(s: String, n: i64, end: Option<String>) -> Result<String, Error> {
    let n = usize::try_from(n).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("truncate needs a length of 0 or more, not {n}"),
        )
    })?;
    if s.chars().count() <= n {
        return Ok(s);
    }
    let end = end.unwrap_or_else(|| "…".to_string());
    let keep = n.saturating_sub(end.chars().count());
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(&end);
    Ok(out)
}

/// Patterns compiled so far: a mapping has a handful, and records are many.
fn compiled(pattern: &str) -> Result<regex::Regex, Error> {
    static CACHE: OnceLock<Mutex<HashMap<String, regex::Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().ok().and_then(|c| c.get(pattern).cloned()) {
        return Ok(r);
    }
    let r = regex::Regex::new(pattern).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "regex_replace: the pattern {pattern:?} is not a valid regular expression: {e}"
            ),
        )
    })?;
    if let Ok(mut c) = cache.lock() {
        // Patterns come from the mapping, so this stays small; a template building
        // patterns from data must not grow it without bound.
        if c.len() >= 256 {
            c.clear();
        }
        c.insert(pattern.to_string(), r.clone());
    }
    Ok(r)
}

/// `regex_replace(pattern, replacement)`: every match replaced, `$1`/`${name}` naming
/// the pattern's groups (the `regex` crate's syntax), e.g. Zoho Desk's mention markup
/// `zsu[@user:123]zsu` with `regex_replace('zsu\\[@user:(\\d+)\\]zsu', '@$1')`.
/// `\1`..`\9`, the spelling of sed and Python, name groups too (see [`sed_groups`]).
pub(super) fn filter_regex_replace(
    s: String,
    pattern: String,
    replacement: String,
) -> Result<String, Error> {
    Ok(compiled(&pattern)?
        .replace_all(&s, sed_groups(&replacement).as_ref())
        .into_owned())
}

/// A replacement with sed's and Python's group references `\1`..`\9` written as the
/// `regex` crate's `${1}`..`${9}` (braced, so `\1st` stays group 1 followed by `st`), and
/// `\\` as one backslash, as Python reads it. Written `'\1'` in a template, minijinja has
/// already read `\1`..`\7` as the octal characters U+0001..U+0007, which no replacement
/// text means literally: they name groups 1..7 too. Anything else is left as it is.
fn sed_groups(replacement: &str) -> std::borrow::Cow<'_, str> {
    if !replacement.contains([
        '\\', '\u{1}', '\u{2}', '\u{3}', '\u{4}', '\u{5}', '\u{6}', '\u{7}',
    ]) {
        return replacement.into();
    }
    let mut out = String::with_capacity(replacement.len() + 4);
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('\\', Some(d @ '1'..='9')) => {
                chars.next();
                out.push_str("${");
                out.push(d);
                out.push('}');
            }
            ('\u{1}'..='\u{7}', _) => {
                out.push_str("${");
                out.push(char::from(b'0' + c as u8));
                out.push('}');
            }
            ('\\', Some('\\')) => {
                chars.next();
                out.push('\\');
            }
            _ => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::template::tests::eval;
    use crate::mapping::template::value_to_list;

    #[test]
    fn text_filters() {
        assert_eq!(
            html_to_text("<p>Hi &amp; bye</p><p>Two<br>lines</p>"),
            "Hi & bye\n\nTwo\nlines"
        );
        assert_eq!(
            text_to_html("a < b\n\nline1\nline2"),
            "<p>a &lt; b</p><p>line1<br>line2</p>"
        );
        assert_eq!(
            email_address("Rachel <rachel@example.com>"),
            "rachel@example.com"
        );
        assert_eq!(email_name("\"Rachel R\" <rachel@example.com>"), "Rachel R");
        let v = eval(
            "{{ c | split(';', 2) }}",
            serde_json::json!({"c": "2023-01-01;bob;body; with; semis"}),
        )
        .unwrap();
        assert_eq!(
            value_to_list(&v),
            vec!["2023-01-01", "bob", "body; with; semis"]
        );
        let v = eval("{{ cf | field(360001) }}", serde_json::json!({"cf": [{"id": 1, "value": "x"}, {"id": 360001, "value": "widget_pro"}]})).unwrap();
        assert_eq!(v.as_str(), Some("widget_pro"));
    }

    /// The conversion as first written (escape everything, then split): the one-pass
    /// version must agree with it on any text.
    fn text_to_html_reference(text: &str) -> String {
        let escaped = html_escape::encode_text(text).replace("\r\n", "\n");
        let mut out = String::new();
        for p in escaped.split("\n\n") {
            let p = p.trim();
            if !p.is_empty() {
                out.push_str("<p>");
                out.push_str(&p.replace('\n', "<br>"));
                out.push_str("</p>");
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]
        #[test]
        fn text_to_html_agrees_with_the_reference(
            text in "[ab &<>\"'\r\n\t\u{a0}\u{3000}é]{0,40}"
        ) {
            proptest::prop_assert_eq!(text_to_html(&text), text_to_html_reference(&text));
        }
    }

    fn text(src: &str, ctx: serde_json::Value) -> String {
        eval(src, ctx).unwrap().to_string()
    }

    #[test]
    fn truncate_counts_characters_and_keeps_short_text() {
        let s = serde_json::json!({"s": "Grüße aus Köln 日本語 🎉 done"});
        assert_eq!(text("{{ s | truncate(8) }}", s.clone()), "Grüße a…");
        assert_eq!(text("{{ s | truncate(7, '...') }}", s.clone()), "Grüß...");
        assert_eq!(
            text("{{ s | truncate(100) }}", s.clone()),
            "Grüße aus Köln 日本語 🎉 done"
        );
        assert_eq!(
            text("{{ 'ab🎉cd' | truncate(3, '') }}", serde_json::json!({})),
            "ab🎉"
        );
        let e = eval("{{ s | truncate(-1) }}", s).unwrap_err();
        assert!(e.to_string().contains("0 or more, not -1"), "{e}");
    }

    #[test]
    fn regex_replace_rewrites_every_match_with_groups() {
        let body = serde_json::json!({"b": "Hi zsu[@user:12345]zsu and zsu[@user:77]zsu, café"});
        assert_eq!(
            text(
                r"{{ b | regex_replace('zsu\\[@user:(\\d+)\\]zsu', '@$1') }}",
                body
            ),
            "Hi @12345 and @77, café"
        );
        assert_eq!(
            text(
                "{{ 'a1b22' | regex_replace('[0-9]+', '#') }}",
                serde_json::json!({})
            ),
            "a#b#"
        );
        // sed's and Python's `\1`, as a mapping writes it (`'\\1'` in the template).
        assert_eq!(
            text(
                r"{{ u | regex_replace('.*/issue/([^/]+)/c(\\d+)', '\\2@\\1st \\\\1') }}",
                serde_json::json!({"u": "https://x/issue/JSM-7/c42"})
            ),
            r"42@JSM-7st \1"
        );
        assert_eq!(sed_groups(r"a\0\x$1"), r"a\0\x$1");
        // `'\1'` as sed users write it: minijinja reads an octal character, still group 1.
        assert_eq!(
            text(
                r"{{ 'ab' | regex_replace('(a)(b)', '\2\1') }}",
                serde_json::json!({})
            ),
            "ba"
        );
        let e = eval("{{ 'x' | regex_replace('(', '') }}", serde_json::json!({})).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"(\" is not a valid regular expression"),
            "{e}"
        );
    }
}
