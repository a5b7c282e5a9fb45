//! Value templates: minijinja with the filters a migration needs.
//!
//! Templates are compiled once when the mapping loads (syntax errors are mapping errors
//! with a position) and evaluated per record (failures are that record's problems). A
//! template that is exactly one `{{ expression }}` is compiled as an expression so it keeps
//! its type: `"{{ tags }}"` stays a list, `"{{ status == 'deleted' }}"` a boolean.
//!
//! Records are seen through [`RecordCtx`] (`context`), which adds the side files. The
//! filters live by what they read: `dates`, `numbers`, `text` (HTML, plain text, e-mail
//! addresses, Atlassian documents) and `lists` (split, field, lookup); `value` renders a
//! result into the strings and lists a payload takes.

mod context;
mod dates;
mod lists;
mod numbers;
mod text;
mod value;

use std::fmt;

use super::fast::Fast;

use jiff::tz::TimeZone;
use minijinja::value::Value;
use minijinja::{Environment, Error, Expression, Template, UndefinedBehavior};

pub use context::{RecordCtx, RecordInput, SideTable, Sides};
pub use dates::parse_instant;
use dates::{Zone, filter_date, filter_datetime, filter_format_datetime};
pub(crate) use dates::{date_value, datetime_text, datetime_value};
pub(crate) use lists::{field_value, split_parts, split_value};
use lists::{filter_field, filter_lookup, filter_split};
use numbers::filter_number;
pub(crate) use numbers::number_value;
pub use numbers::{parse_number, parse_number_with};
use text::adf_to_text;
pub use text::{email_address, email_name, html_to_text, text_to_html};
pub use value::{value_to_list, value_to_string};

/// Message prefixes that let the payload stage classify a failed template.
pub const INVALID_DATE: &str = "invalid date";
pub const INVALID_NUMBER: &str = "invalid number";

/// Instructions one evaluation of a template may run. A template that never finishes
/// (nested `range(100000)` loops) would hang the whole run; with this budget it fails for
/// that record, as a per-record problem, in well under a second. Ordinary templates run
/// a few hundred instructions, a loop over a long comment list a few hundred thousand.
pub const TEMPLATE_FUEL: u64 = 2_000_000;

/// The template environment of one compiled mapping.
pub struct Engine {
    env: &'static Environment<'static>,
    /// The default zone, for date filters compiled onto the fast path.
    tz: TimeZone,
}

/// A compiled value.
pub enum Expr {
    Const(Value),
    Template(Template<'static, 'static>),
    Expression(Expression<'static, 'static>),
    /// A template in the subset [`Fast`] evaluates on the record directly, with its
    /// minijinja compilation for contexts other than a plain record and for fallbacks.
    Fast(Box<FastExpr>),
}

/// A template with both compilations.
#[derive(Debug)]
pub struct FastExpr {
    pub fast: Fast,
    pub slow: Expr,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(v) => write!(f, "Const({v:?})"),
            Expr::Template(t) => write!(f, "Template({:?})", t.source()),
            Expr::Expression(_) => write!(f, "Expression"),
            Expr::Fast(e) => write!(f, "Fast({:?})", e.slow),
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}

impl Engine {
    /// An environment whose date filters read timestamps without an offset in `tz`.
    ///
    /// The environment is leaked on purpose: compiled templates borrow it, a mapping is
    /// compiled once per process run, and this keeps `Plan` free of self-references.
    pub fn new(tz: TimeZone) -> Engine {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_keep_trailing_newline(true);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.add_global("__tz", Value::from_object(Zone(tz.clone())));
        env.add_filter("datetime", filter_datetime);
        env.add_filter("date", filter_date);
        env.add_filter("format_datetime", filter_format_datetime);
        env.add_filter("split", filter_split);
        env.add_filter("html_to_text", |v: String| html_to_text(&v));
        env.add_filter("text_to_html", |v: String| text_to_html(&v));
        env.add_filter("field", filter_field);
        env.add_filter("lookup", filter_lookup);
        env.add_filter("email_address", |v: String| email_address(&v).to_string());
        env.add_filter("email_name", |v: String| email_name(&v).to_string());
        env.add_filter("number", filter_number);
        env.add_filter("adf_to_text", |v: Value| adf_to_text(&v));
        env.add_filter("truncate", text::filter_truncate);
        env.add_filter("regex_replace", text::filter_regex_replace);
        Engine {
            env: Box::leak(Box::new(env)),
            tz,
        }
    }

    /// The filters templates can use, for "did you mean" hints.
    pub fn filter_names() -> &'static [&'static str] {
        &[
            "datetime",
            "date",
            "format_datetime",
            "split",
            "html_to_text",
            "text_to_html",
            "field",
            "lookup",
            "email_address",
            "email_name",
            "number",
            "adf_to_text",
            "truncate",
            "regex_replace",
        ]
    }

    /// Compiles a template string; plain text without `{{`/`{%` is a constant.
    pub fn compile(&self, source: &str) -> Result<Expr, Error> {
        if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
            return Ok(Expr::Const(Value::from(source)));
        }
        let single = single_expression(source);
        let slow = match single {
            Some(inner) => Expr::Expression(self.env.compile_expression_owned(inner.to_string())?),
            None => {
                let leaked: &'static str = Box::leak(source.to_string().into_boxed_str());
                Expr::Template(self.env.template_from_str(leaked)?)
            }
        };
        Ok(match Fast::compile(source, single, &self.tz) {
            Some(fast) => Expr::Fast(Box::new(FastExpr { fast, slow })),
            None => slow,
        })
    }

    pub fn constant(v: Value) -> Expr {
        Expr::Const(v)
    }
}

/// The inner expression of a template that is exactly `{{ expr }}`.
fn single_expression(source: &str) -> Option<&str> {
    let t = source.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

impl Expr {
    /// Evaluates against a context; templates give strings, expressions keep types.
    pub fn eval(&self, ctx: &Value) -> Result<Value, Error> {
        match self {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Template(t) => t.render(ctx).map(Value::from),
            Expr::Expression(e) => e.eval(ctx),
            Expr::Fast(e) => e.slow.eval(ctx),
        }
    }

    /// Evaluates against a source record: on the fast path when the template allows,
    /// else through minijinja with the record's full context (built once, on first need).
    pub fn eval_record(&self, input: &RecordInput<'_>) -> Result<Value, Error> {
        match self {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Fast(e) => match e.fast.eval(input.record, input.sides) {
                Some(v) => Ok(v),
                None => e.slow.eval(input.value()),
            },
            other => other.eval(input.value()),
        }
    }

    /// [`Expr::eval_record`] rendered as a payload string ([`value_to_string`]), without a
    /// detour through a minijinja value on the fast path.
    pub fn eval_record_string(&self, input: &RecordInput<'_>) -> Result<String, Error> {
        match self {
            Expr::Fast(e) => match e.fast.eval_string(input.record, input.sides) {
                Some(s) => Ok(s),
                None => e.slow.eval(input.value()).map(|v| value_to_string(&v)),
            },
            other => other.eval_record(input).map(|v| value_to_string(&v)),
        }
    }

    /// [`Expr::eval_record`] as a list of strings ([`value_to_list`]), without a detour
    /// through minijinja values on the fast path.
    pub fn eval_record_list(&self, input: &RecordInput<'_>) -> Result<Vec<String>, Error> {
        match self {
            Expr::Fast(e) => match e.fast.eval_list(input.record, input.sides) {
                Some(l) => Ok(l),
                None => e.slow.eval(input.value()).map(|v| value_to_list(&v)),
            },
            other => other.eval_record(input).map(|v| value_to_list(&v)),
        }
    }

    /// The names a template reads from its context (for checking CSV columns).
    pub fn variables(&self) -> Vec<String> {
        let mut v: Vec<String> = match self {
            Expr::Const(_) => return vec![],
            Expr::Template(t) => t.undeclared_variables(false).into_iter().collect(),
            Expr::Expression(e) => e.undeclared_variables(false).into_iter().collect(),
            Expr::Fast(e) => return e.slow.variables(),
        };
        v.sort();
        v
    }

    pub fn is_const(&self) -> bool {
        matches!(self, Expr::Const(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles and evaluates `src` against `ctx`, as the filters' tests do too.
    pub(super) fn eval(src: &str, ctx: serde_json::Value) -> Result<Value, Error> {
        let engine = Engine::new(TimeZone::get("Europe/Berlin").unwrap());
        engine.compile(src)?.eval(&Value::from_serialize(&ctx))
    }

    #[test]
    fn single_expressions_keep_their_type() {
        let v = eval("{{ tags }}", serde_json::json!({"tags": ["a", "b"]})).unwrap();
        assert_eq!(value_to_list(&v), vec!["a", "b"]);
        let v = eval(
            "{{ status == 'deleted' }}",
            serde_json::json!({"status": "deleted"}),
        )
        .unwrap();
        assert!(v.is_true());
        let v = eval("ZD-{{ id }}", serde_json::json!({"id": 7})).unwrap();
        assert_eq!(v.as_str(), Some("ZD-7"));
    }

    /// A template that would run for hours stops at its fuel budget (issue 11.6).
    #[test]
    fn a_template_that_never_finishes_runs_out_of_fuel() {
        let started = std::time::Instant::now();
        let err = eval(
            "{% for a in range(100000) %}{% for b in range(100000) %}{{ b }}{% endfor %}{% endfor %}",
            serde_json::json!({}),
        )
        .unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::OutOfFuel);
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        // Every evaluation has its own budget: the next one runs.
        let v = eval(
            "{% for a in range(1000) %}{{ a }}{% endfor %}",
            serde_json::json!({}),
        );
        assert!(v.is_ok());
    }
}
