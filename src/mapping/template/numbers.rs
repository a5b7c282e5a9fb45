//! The `number` filter and the number parser behind it: strict about the decimal
//! separator, because `1.299` is 1299 in Germany.

use minijinja::value::Value;
use minijinja::{Error, ErrorKind};

use super::INVALID_NUMBER;
use super::value::{is_empty, value_to_string};

/// `"1234.50" | number`, or `"1.234,50" | number(',')` naming the decimal separator.
pub(super) fn filter_number(value: Value, decimal: Option<String>) -> Result<Value, Error> {
    number_value(&value, decimal.as_deref())
}

/// The `number` filter; shared with the fast path.
pub(crate) fn number_value(value: &Value, decimal: Option<&str>) -> Result<Value, Error> {
    if is_empty(value) {
        return Ok(Value::UNDEFINED);
    }
    if value.as_i64().is_some() || value.kind() == minijinja::value::ValueKind::Number {
        return Ok(value.clone());
    }
    let s = value_to_string(value);
    let decimal = decimal.and_then(|d| d.chars().next()).unwrap_or('.');
    parse_number_with(&s, decimal)
        .map(Value::from)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("{INVALID_NUMBER}: cannot read {s:?} as a number"),
            )
        })
}

/// Parses a plain decimal number (`1234.5`, `-3`, `1e3` is refused): anything else is
/// ambiguous across locales (`1.299` is 1299 in Germany), so other shapes need the
/// `number(',')` filter argument that names the decimal separator.
pub fn parse_number(s: &str) -> Option<f64> {
    parse_number_with(s, '.')
}

/// Parses a number whose decimal separator is `decimal`; the other of `.`/`,` and spaces
/// are taken as thousands separators.
pub fn parse_number_with(s: &str, decimal: char) -> Option<f64> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let thousands = if decimal == ',' { '.' } else { ',' };
    let mut out = String::with_capacity(digits.len() + 1);
    if neg {
        out.push('-');
    }
    let mut seen_decimal = false;
    for c in digits.chars() {
        match c {
            '0'..='9' => out.push(c),
            c if c == decimal && !seen_decimal => {
                seen_decimal = true;
                out.push('.');
            }
            c if (c == thousands || c == ' ' || c == '\u{a0}')
                && !seen_decimal
                && decimal != '.' => {}
            _ => return None,
        }
    }
    if !out.chars().any(|c| c.is_ascii_digit()) || out.ends_with('.') {
        return None;
    }
    out.parse::<f64>().ok().filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1234.5"), Some(1234.5));
        assert_eq!(parse_number("-3"), Some(-3.0));
        assert_eq!(parse_number("1.299,00"), None);
        assert_eq!(parse_number("1,234.50"), None);
        assert_eq!(parse_number_with("1.234,50", ','), Some(1234.5));
        assert_eq!(parse_number_with("12,5", ','), Some(12.5));
        assert_eq!(parse_number("1e3"), None);
        assert_eq!(parse_number("twelve"), None);
        assert_eq!(parse_number(""), None);
    }
}
