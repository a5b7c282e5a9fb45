//! Plain text from HTML, one conversion for the whole program.
//!
//! Three places need it and must agree: the mapping's `html_to_text` filter (a text body
//! from an HTML export), the importer's reconciliation (a message is recognised on the
//! ticket by its text, whatever HTML cleaning the server applied) and the sandbox (the
//! text form HappyFox shows of an HTML message). The two hand-written copies this
//! replaces kept `<style>`/`<script>` contents as text, dropped link targets and glued
//! table cells together. `nanohtml2text` (a port of a Go html2text used for e-mail, no
//! dependencies) does all three right; `html2text` was evaluated too: it pulls in html5ever
//! and 16 other crates and writes Markdown (`**bold**`, `[1]` link references, box-drawn
//! tables), which is not what a ticket's plain text should read like.

/// Plain text from HTML: tags dropped (with the contents of `style`, `script` and
/// `head`), paragraphs and blocks separated by a blank line, `<br>` and table cells on
/// their own lines, links as `text (url)`, entities decoded, whitespace collapsed as a
/// browser does; `\n` line ends, no trailing spaces, no leading or trailing blank lines.
pub fn html_to_text(html: &str) -> String {
    let raw = nanohtml2text::html2text(html);
    let mut out = String::with_capacity(raw.len());
    let mut blank = false;
    for line in raw.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank {
                out.push('\n');
            }
        }
        blank = false;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_scripts_links_and_tables() {
        assert_eq!(
            html_to_text("<style>p{color:red}</style><script>alert(1)</script><p>Hi</p>"),
            "Hi"
        );
        assert_eq!(
            html_to_text("<p>See <a href=\"https://kb.example/42\">the article</a>.</p>"),
            "See the article (https://kb.example/42)."
        );
        assert_eq!(
            html_to_text("<table><tr><td>Name</td><td>Value</td></tr></table>"),
            "Name\nValue"
        );
    }

    #[test]
    fn blocks_breaks_and_entities() {
        assert_eq!(
            html_to_text("<p>Hi &amp; bye</p>\n<p>Two<br>lines</p>"),
            "Hi & bye\n\nTwo\nlines"
        );
        assert_eq!(html_to_text("a < b and c > d"), "a < b and c > d");
        assert_eq!(html_to_text("<p>unclosed <b>bold"), "unclosed bold");
        assert_eq!(html_to_text("<div>one</div><div>two</div>"), "one\n\ntwo");
        assert_eq!(html_to_text(""), "");
    }
}
