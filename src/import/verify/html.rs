//! `verify.html`: the summary for people, rendered by minijinja with HTML escaping on for
//! every value (ticket text is user data, and a subject may hold markup).

use minijinja::{AutoEscape, Environment, context};

use super::summary::FieldSummary;

const TEMPLATE: &str = include_str!("verify.html");

/// The page for `summary`.
pub fn render(summary: &FieldSummary) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("verify.html", TEMPLATE)?;
    let full = crate::duration::format(std::time::Duration::from_secs(summary.full_verify_seconds));
    env.get_template("verify.html")?
        .render(context! { s => summary, full_verify => full })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::verify::{Check, TicketReport, Verification};

    #[test]
    fn ticket_text_is_escaped_and_tickets_link_to_the_agent_portal() {
        let s = FieldSummary {
            version: 1,
            target: "https://acme.happyfox.com".into(),
            created: 1,
            compared: 1,
            resumed: 0,
            matching: 0,
            sample: None,
            fields: vec![],
            messages_marked_missing: 0,
            get_per_min: 400,
            full_verify_seconds: 1,
            markers: Verification::default(),
            source: None,
            differing: vec![TicketReport {
                source_id: "ZD-1".into(),
                ticket_id: 7,
                display_id: "#SUP00000007".into(),
                checks: vec![Check {
                    field: "subject".into(),
                    ok: false,
                    expected: Some("<script>alert(1)</script>".into()),
                    actual: Some("x".into()),
                    changed_after_import_by: None,
                }],
                ..TicketReport::default()
            }],
        };
        let html = render(&s).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let decoded = html_escape::decode_html_entities(&html);
        assert!(
            decoded.contains("href=\"https://acme.happyfox.com/staff/ticket/7\""),
            "{decoded}"
        );
    }
}
