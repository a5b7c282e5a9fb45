//! How HappyFox reads one field of a payload: ids, dates, numbers, custom-field values.
//!
//! Payloads arrive as JSON, urlencoded forms or multipart (where every value is a string),
//! so each rule takes a `serde_json::Value` and accepts what a Django form would accept
//! from either: `4` or `"4"` for an id, nothing looser. The error texts are HappyFox's
//! (Django's) so that clients parse and show them exactly as they will in production.

use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::schema::{Choice, FieldType};

pub(crate) const REQUIRED: &str = "This field is required.";
pub(crate) const INVALID_CHOICE: &str =
    "Select a valid choice. That choice is not one of the available choices.";
pub(crate) const INVALID_EMAIL: &str = "Enter a valid email address.";
pub(crate) const INVALID_DATE: &str = "Enter a valid date.";
pub(crate) const INVALID_DATETIME: &str = "Enter a valid date/time.";
pub(crate) const INVALID_NUMBER: &str = "Enter a number.";
pub(crate) const INVALID_INTEGER: &str = "Enter a whole number.";
pub(crate) const TWO_DECIMALS: &str = "Ensure that there are no more than 2 decimal places.";
pub(crate) const INVALID_VALUE: &str = "Enter a valid value.";
pub(crate) const INVALID_LIST: &str = "Enter a list of values.";
pub(crate) const UNKNOWN_FIELD: &str = "This custom field does not exist.";
pub(crate) const NOT_IN_CATEGORY: &str =
    "This custom field is not applicable to the category of this ticket.";
pub(crate) const TEXT_OR_HTML: &str = "Either text or html is required.";
pub(crate) const COMPULSORY_ON_COMPLETE: &str =
    "This field should be filled before marking this ticket as completed";

/// Validation errors in HappyFox's `[{field, errors: [...]}]` order: first error first.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct FieldErrors(pub Vec<(String, Vec<String>)>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        match self.0.iter_mut().find(|(f, _)| f == field) {
            Some((_, msgs)) => msgs.push(message),
            None => self.0.push((field.to_string(), vec![message])),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The single-create and bulk-item shape: `[{"field": .., "errors": [..]}]`.
    pub(crate) fn to_list(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|(f, e)| serde_json::json!({"field": f, "errors": e}))
                .collect(),
        )
    }

    /// The ticket-action shape (`staff_update` and friends): `{"field": "message"}`.
    pub(crate) fn to_object(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(f, e)| (f.clone(), Value::String(e.join(" "))))
                .collect(),
        )
    }
}

/// Empty means "not sent" for form fields: `null`, `""`, or absent.
pub(crate) fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

/// An id as a form reads it: a non-negative integer or a string of digits.
pub(crate) fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A text field: strings as they are, numbers as their decimal text (Django's CharField
/// does `str(value)`); lists, objects and booleans are refused.
pub(crate) fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `true`/`false`, also as the strings a form sends.
pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `s` has exactly the shape of `pattern`, where `d` is an ASCII digit and any
/// other byte stands for itself. The reference writes its formats with fixed widths
/// (`yyyy-mm-dd`), while strptime accepts `2019-8-1`: the shape is checked here, the
/// calendar by jiff.
fn shaped(s: &str, pattern: &str) -> bool {
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            p => c == p,
        })
}

/// A date in one fixed-width `shape` read by jiff's strptime `format`.
fn date_as(s: &str, shape: &str, format: &str) -> Option<Date> {
    shaped(s, shape)
        .then(|| Date::strptime(format, s).ok())
        .flatten()
}

/// `yyyy-mm-dd`, the only format for custom-field dates.
pub(crate) fn parse_ymd(s: &str) -> Option<Date> {
    date_as(s, "dddd-dd-dd", "%Y-%m-%d")
}

/// `dd/mm/yyyy`, accepted for `due_date` besides `yyyy-mm-dd`.
pub(crate) fn parse_dmy(s: &str) -> Option<Date> {
    date_as(s, "dd/dd/dddd", "%d/%m/%Y")
}

/// `yyyy/mm/dd`, the date format of search terms.
pub(crate) fn parse_search_date(s: &str) -> Option<Date> {
    date_as(s, "dddd/dd/dd", "%Y/%m/%d")
}

/// `due_date`: `yyyy-mm-dd` or `dd/mm/yyyy`.
pub(crate) fn parse_due_date(s: &str) -> Option<Date> {
    parse_ymd(s.trim()).or_else(|| parse_dmy(s.trim()))
}

/// Ticket `created_at`: `yyyy-mm-ddThh:mm:ss` with optional `.ms` (up to 6 digits), read as
/// UTC. Offsets and `Z` are not documented, so they are refused: a client that sends them
/// would not know how HappyFox reads them.
pub(crate) fn parse_created_at(s: &str) -> Option<i64> {
    let (whole, frac) = match s.split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (s, None),
    };
    if !shaped(whole, "dddd-dd-ddTdd:dd:dd")
        || frac.is_some_and(|f| f.is_empty() || f.len() > 6 || !shaped(f, &"d".repeat(f.len())))
    {
        return None;
    }
    let dt = DateTime::strptime("%Y-%m-%dT%H:%M:%S", whole).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

/// A plausible email address: the same rule as the dry run's ([`crate::email`]).
pub(crate) fn valid_email(s: &str) -> bool {
    crate::email::is_valid(s)
}

/// A comma-separated list of email addresses (`cc`, `bcc`); blank entries are skipped.
pub(crate) fn valid_email_list(s: &str) -> bool {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .all(valid_email)
}

/// A number field: an integer or a number with at most 2 decimals (JSON number or string).
pub(crate) fn parse_number(v: &Value) -> Result<Number, &'static str> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err(INVALID_NUMBER),
    };
    let unsigned = text.strip_prefix('-').unwrap_or(&text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(INVALID_NUMBER);
    }
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(INVALID_NUMBER);
        }
        if f.trim_end_matches('0').len() > 2 {
            return Err(TWO_DECIMALS);
        }
    }
    serde_json::from_str::<Number>(&text).map_err(|_| INVALID_NUMBER)
}

/// A stored custom-field value, typed by the field it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum CfValue {
    Text(String),
    Number(Number),
    /// `yyyy-mm-dd`, kept as text (jiff's serde support is not enabled in this crate).
    Date(String),
    Choice(u64),
    Multi(Vec<u64>),
}

fn choice_ids(choices: Option<&[Choice]>) -> impl Iterator<Item = u64> + '_ {
    choices.unwrap_or_default().iter().map(|c| c.id)
}

/// The list a multiple-choice field takes: a JSON list of ids, or (from a form) a string
/// holding a JSON list or a single id.
fn id_list(v: &Value) -> Option<Vec<u64>> {
    match v {
        Value::Array(items) => items.iter().map(as_id).collect(),
        Value::String(s) => {
            let s = s.trim();
            if s.starts_with('[') {
                let parsed: Value = serde_json::from_str(s).ok()?;
                id_list(&parsed).filter(|_| parsed.is_array())
            } else {
                as_id(v).map(|id| vec![id])
            }
        }
        _ => None,
    }
}

/// Reads a custom-field value sent for a field of `kind`. `Ok(None)` clears the field
/// (`null` or an empty string or list).
pub(crate) fn parse_cf_value(
    kind: &FieldType,
    choices: Option<&[Choice]>,
    v: &Value,
) -> Result<Option<CfValue>, &'static str> {
    if is_blank(Some(v)) || matches!(v, Value::Array(a) if a.is_empty()) {
        return Ok(None);
    }
    match kind {
        FieldType::Text | FieldType::Textarea | FieldType::Other(_) => as_text(v)
            .map(|t| Some(CfValue::Text(t)))
            .ok_or(INVALID_VALUE),
        FieldType::Number => parse_number(v).map(|n| Some(CfValue::Number(n))),
        FieldType::Date => match v {
            Value::String(s) => parse_ymd(s.trim())
                .map(|d| Some(CfValue::Date(d.to_string())))
                .ok_or(INVALID_DATE),
            _ => Err(INVALID_DATE),
        },
        FieldType::Choice => {
            let id = as_id(v).ok_or(INVALID_CHOICE)?;
            if choice_ids(choices).any(|c| c == id) {
                Ok(Some(CfValue::Choice(id)))
            } else {
                Err(INVALID_CHOICE)
            }
        }
        FieldType::MultipleChoice => {
            let ids = id_list(v).ok_or(INVALID_LIST)?;
            if ids.iter().all(|id| choice_ids(choices).any(|c| c == *id)) {
                let mut ids = ids;
                ids.dedup();
                Ok(Some(CfValue::Multi(ids)))
            } else {
                Err(INVALID_CHOICE)
            }
        }
    }
}

/// Splits a comma-separated tag list, trimming and dropping blanks and repeats.
pub(crate) fn split_tags(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn choices(ids: &[u64]) -> Vec<Choice> {
        ids.iter()
            .map(|id| Choice {
                id: *id,
                text: format!("c{id}"),
                dependant_fields: vec![],
            })
            .collect()
    }

    #[test]
    fn ids_accept_integers_and_digit_strings_only() {
        assert_eq!(as_id(&json!(4)), Some(4));
        assert_eq!(as_id(&json!("4")), Some(4));
        assert_eq!(as_id(&json!(-4)), None);
        assert_eq!(as_id(&json!(4.5)), None);
        assert_eq!(as_id(&json!("four")), None);
        assert_eq!(as_id(&json!([4])), None);
    }

    #[test]
    fn created_at_takes_only_the_documented_formats() {
        assert_eq!(parse_created_at("1970-01-01T00:01:00"), Some(60));
        assert_eq!(
            parse_created_at("2019-08-13T08:59:11.123"),
            parse_created_at("2019-08-13T08:59:11")
        );
        assert!(parse_created_at("2019-08-13 08:59:11").is_none());
        assert!(parse_created_at("2019-08-13T08:59:11Z").is_none());
        assert!(parse_created_at("2019-08-13T08:59:11+02:00").is_none());
        assert!(parse_created_at("2019-02-30T08:59:11").is_none());
        assert!(parse_created_at("2019-08-13T8:59:11").is_none());
        assert!(parse_created_at("2019-08-13").is_none());
        assert!(parse_created_at("2019-08-13T24:00:00").is_none());
        assert!(parse_created_at("2019-08-13T08:59:11.").is_none());
        assert!(parse_created_at("2019-08-13T08:59:11.1234567").is_none());
        assert!(parse_created_at("2019-08-13T08:59:11.12a").is_none());
    }

    #[test]
    fn due_dates_take_both_documented_formats() {
        assert_eq!(parse_due_date("2019-08-16"), parse_due_date("16/08/2019"));
        assert!(parse_due_date("2019-08-16").is_some());
        assert!(parse_due_date("08/16/2019").is_none());
        assert!(parse_due_date("2019/08/16").is_none());
        assert!(parse_due_date("16-08-2019").is_none());
    }

    #[test]
    fn numbers_allow_two_decimals() {
        assert!(parse_number(&json!(200)).is_ok());
        assert!(parse_number(&json!(12.5)).is_ok());
        assert!(parse_number(&json!("12.50")).is_ok());
        assert!(parse_number(&json!(-3)).is_ok());
        assert_eq!(parse_number(&json!(1.234)), Err(TWO_DECIMALS));
        assert_eq!(parse_number(&json!("12,5")), Err(INVALID_NUMBER));
        assert_eq!(parse_number(&json!("1e3")), Err(INVALID_NUMBER));
        assert_eq!(parse_number(&json!(true)), Err(INVALID_NUMBER));
    }

    #[test]
    fn custom_field_values_follow_their_type() {
        let c = choices(&[11, 12]);
        assert_eq!(
            parse_cf_value(&FieldType::Choice, Some(&c), &json!(11)),
            Ok(Some(CfValue::Choice(11)))
        );
        assert_eq!(
            parse_cf_value(&FieldType::Choice, Some(&c), &json!("Widget Pro")),
            Err(INVALID_CHOICE),
            "labels are not ids"
        );
        assert_eq!(
            parse_cf_value(&FieldType::Choice, Some(&c), &json!(13)),
            Err(INVALID_CHOICE)
        );
        assert_eq!(
            parse_cf_value(&FieldType::MultipleChoice, Some(&c), &json!([11, 12])),
            Ok(Some(CfValue::Multi(vec![11, 12])))
        );
        assert_eq!(
            parse_cf_value(&FieldType::MultipleChoice, Some(&c), &json!("[11,12]")),
            Ok(Some(CfValue::Multi(vec![11, 12])))
        );
        assert_eq!(
            parse_cf_value(&FieldType::MultipleChoice, Some(&c), &json!([11, 99])),
            Err(INVALID_CHOICE)
        );
        assert_eq!(
            parse_cf_value(&FieldType::MultipleChoice, Some(&c), &json!({"a": 1})),
            Err(INVALID_LIST)
        );
        assert_eq!(
            parse_cf_value(&FieldType::Date, None, &json!("20/12/2019")),
            Err(INVALID_DATE)
        );
        assert!(matches!(
            parse_cf_value(&FieldType::Date, None, &json!("2019-12-20")),
            Ok(Some(CfValue::Date(_)))
        ));
        assert_eq!(
            parse_cf_value(&FieldType::Text, None, &json!(["x"])),
            Err(INVALID_VALUE)
        );
        assert_eq!(parse_cf_value(&FieldType::Text, None, &json!("")), Ok(None));
        assert_eq!(
            parse_cf_value(&FieldType::Text, None, &Value::Null),
            Ok(None)
        );
    }

    #[test]
    fn emails_and_tags() {
        assert!(valid_email("james@example.com"));
        assert!(!valid_email("james@example"));
        assert!(!valid_email("james example.com"));
        assert!(!valid_email("@example.com"));
        assert!(valid_email_list("a@x.io, b@y.io,"));
        // What the dry run refuses, the sandbox refuses too.
        assert!(!valid_email("a,b@x.io"));
        assert!(!valid_email("<r@x.com>"));
        assert!(!valid_email_list("a@x.io, nope"));
        assert_eq!(split_tags(" a, b ,a,, c"), vec!["a", "b", "c"]);
    }

    #[test]
    fn errors_render_in_both_happyfox_shapes() {
        let mut e = FieldErrors::default();
        e.add("category", REQUIRED);
        e.add("t-cf-2", COMPULSORY_ON_COMPLETE);
        assert_eq!(
            e.to_list(),
            json!([{"field": "category", "errors": [REQUIRED]}, {"field": "t-cf-2", "errors": [COMPULSORY_ON_COMPLETE]}])
        );
        assert_eq!(
            e.to_object(),
            json!({"category": REQUIRED, "t-cf-2": COMPULSORY_ON_COMPLETE})
        );
    }
}
