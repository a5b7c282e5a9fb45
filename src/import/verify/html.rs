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
    let full =
        crate::import::progress::human(std::time::Duration::from_secs(summary.full_verify_seconds));
    env.get_template("verify.html")?
        .render(context! { s => summary, full_verify => full })
}
