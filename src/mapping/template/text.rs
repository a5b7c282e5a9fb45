//! Text conversions: HTML to plain text and back, the parts of an e-mail address, and
//! plain text from Atlassian Document Format bodies.

use minijinja::value::Value;

/// Plain text from HTML, the program's one conversion (shared with the sandbox).
pub use crate::html_text::html_to_text;

/// HTML from plain text: escaped, paragraphs for blank lines, `<br>` for line breaks.
///
/// Written as one pass into one buffer: every ticket body goes through it.
pub fn text_to_html(text: &str) -> String {
    let escaped = html_escape::encode_text(text);
    let text: std::borrow::Cow<'_, str> = if escaped.contains('\r') {
        escaped.replace("\r\n", "\n").into()
    } else {
        escaped
    };
    let mut out = String::with_capacity(text.len() + 64);
    for p in text.split("\n\n") {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        out.push_str("<p>");
        for (i, line) in p.split('\n').enumerate() {
            if i > 0 {
                out.push_str("<br>");
            }
            out.push_str(line);
        }
        out.push_str("</p>");
    }
    out
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
}
