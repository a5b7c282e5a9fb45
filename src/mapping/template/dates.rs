//! Date filters (`datetime`, `date`, `format_datetime`) and the timestamp parser behind
//! them.
//!
//! Exports write dates in every shape (ISO 8601 with or without offset, SQL, Jira's
//! `23/Mar/23 7:45 AM`, Unix seconds, Twitter style); a timestamp without an offset is read
//! in the mapping's default zone, kept by the environment as the `__tz` global.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, fmt::strtime};
use minijinja::value::{Object, Value};
use minijinja::{Error, ErrorKind, State};

use super::INVALID_DATE;
use super::value::{is_empty, value_to_string};

#[derive(Debug)]
pub(super) struct Zone(pub(super) TimeZone);

impl Object for Zone {}

fn default_zone(state: &State) -> TimeZone {
    state
        .lookup("__tz")
        .and_then(|v| v.downcast_object_ref::<Zone>().map(|z| z.0.clone()))
        .unwrap_or(TimeZone::UTC)
}

fn zone_named(name: Option<String>, state: &State) -> Result<TimeZone, Error> {
    match name {
        None => Ok(default_zone(state)),
        Some(n) => TimeZone::get(&n).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("unknown time zone {n:?} (use an IANA name such as Europe/Berlin)"),
            )
        }),
    }
}

/// Named input formats; anything else is a strftime pattern.
fn named_format(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "iso8601" | "rfc3339" | "iso" => &[],
        "sql" | "mysql" => &["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"],
        "jira" => &["%d/%b/%y %I:%M %p", "%d/%b/%Y %I:%M %p", "%d/%b/%y %H:%M"],
        "twitter" => &["%a %b %d %H:%M:%S %z %Y"],
        "us" => &[
            "%m/%d/%Y %H:%M:%S",
            "%m/%d/%Y %H:%M",
            "%m/%d/%Y %I:%M %p",
            "%m/%d/%Y",
        ],
        "eu" => &[
            "%d/%m/%Y %H:%M:%S",
            "%d/%m/%Y %H:%M",
            "%d.%m.%Y %H:%M",
            "%d/%m/%Y",
            "%d.%m.%Y",
        ],
        "unix" | "unix_ms" => &[],
        _ => return None,
    })
}

/// Parses a timestamp in one of the shapes exports use; `format` is a named format or a
/// strftime pattern, `None` tries the common shapes.
pub fn parse_instant(
    input: &str,
    format: Option<&str>,
    tz: &TimeZone,
) -> Result<Timestamp, String> {
    let s = input.trim();
    let fail = || {
        let how = match format {
            Some(f) => format!("format {f:?}"),
            None => "ISO 8601, 'yyyy-mm-dd hh:mm:ss', a date, Unix seconds or Twitter style".into(),
        };
        format!("{INVALID_DATE}: cannot read {s:?} as a date/time (tried {how})")
    };
    match format {
        Some("unix") => {
            return s
                .parse::<i64>()
                .ok()
                .and_then(|n| Timestamp::from_second(n).ok())
                .ok_or_else(fail);
        }
        Some("unix_ms") => {
            return s
                .parse::<i64>()
                .ok()
                .and_then(|n| Timestamp::from_millisecond(n).ok())
                .ok_or_else(fail);
        }
        Some(f) if named_format(f).is_some_and(|p| !p.is_empty()) => {
            for pattern in named_format(f).unwrap_or(&[]) {
                if let Some(ts) = with_pattern(s, pattern, tz) {
                    return Ok(ts);
                }
            }
            return Err(fail());
        }
        Some(f) if named_format(f).is_none() => {
            return with_pattern(s, f, tz).ok_or_else(fail);
        }
        _ => {}
    }
    // Most exports write local times, and each failed attempt costs an error built by jiff.
    if may_have_offset(s) {
        if let Ok(ts) = s.parse::<Timestamp>() {
            return Ok(ts);
        }
        if let Some(ts) = with_pattern(s, "%Y-%m-%dT%H:%M:%S%.f%z", tz) {
            return Ok(ts);
        }
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return tz.to_zoned(dt).map(|z| z.timestamp()).map_err(|_| fail());
    }
    if let Ok(d) = s.parse::<Date>() {
        return tz
            .to_zoned(d.to_datetime(jiff::civil::Time::midnight()))
            .map(|z| z.timestamp())
            .map_err(|_| fail());
    }
    if format.is_none()
        && (9..=11).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = s.parse::<i64>()
    {
        return Timestamp::from_second(n).map_err(|_| fail());
    }
    if let Some(ts) = with_pattern(s, "%a %b %d %H:%M:%S %z %Y", tz) {
        return Ok(ts);
    }
    Err(fail())
}

/// Whether `s` may carry a UTC offset: one starts with `Z`, `z`, a sign or U+2212, after
/// the date (at least 8 bytes). Text without one parses neither as a timestamp nor with
/// `%z`.
fn may_have_offset(s: &str) -> bool {
    s.bytes()
        .skip(8)
        .any(|b| matches!(b, b'Z' | b'z' | b'+' | b'-') || !b.is_ascii())
}

fn with_pattern(s: &str, pattern: &str, tz: &TimeZone) -> Option<Timestamp> {
    let bdt = strtime::parse(pattern, s).ok()?;
    if bdt.offset().is_some() {
        return bdt.to_timestamp().ok();
    }
    let dt = bdt.to_datetime().ok().or_else(|| {
        bdt.to_date()
            .ok()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    })?;
    tz.to_zoned(dt).ok().map(|z| z.timestamp())
}

fn input_string(v: &Value) -> String {
    match v.as_i64() {
        Some(n) => n.to_string(),
        None => value_to_string(v),
    }
}

/// `created_at | datetime` or `| datetime('%d/%m/%Y %H:%M', 'Europe/Paris')`: to UTC
/// `yyyy-mm-ddThh:mm:ss`, the form HappyFox's `created_at` takes.
pub(super) fn filter_datetime(
    state: &State,
    value: Value,
    format: Option<String>,
    tz: Option<String>,
) -> Result<Value, Error> {
    datetime_value(&value, format.as_deref(), || zone_named(tz, state))
}

/// The `datetime` filter with its zone passed in (resolved only when the value is not
/// empty, so an empty value never reports a bad zone); shared with the fast path.
pub(crate) fn datetime_value(
    value: &Value,
    format: Option<&str>,
    tz: impl FnOnce() -> Result<TimeZone, Error>,
) -> Result<Value, Error> {
    if is_empty(value) {
        return Ok(Value::UNDEFINED);
    }
    let tz = tz()?;
    let ts = parse_instant(&input_string(value), format, &tz)
        .map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
    Ok(Value::from(utc_seconds(ts)))
}

/// The `datetime` filter on text, for the fast path: what [`datetime_value`] gives a string
/// value, without converting it to a template value and back. `None` for blank text.
pub(crate) fn datetime_text(
    s: &str,
    format: Option<&str>,
    tz: &TimeZone,
) -> Result<Option<String>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    parse_instant(s, format, tz).map(|ts| Some(utc_seconds(ts)))
}

/// `ts` in UTC as `yyyy-mm-ddThh:mm:ss` (strftime `%Y-%m-%dT%H:%M:%S`), written digit by
/// digit for four-digit years: every record's `created_at` goes through here, and
/// `format!` with padding was a third of the filter's time.
fn utc_seconds(ts: Timestamp) -> String {
    let dt = ts.to_zoned(TimeZone::UTC).datetime();
    if (0..=9999).contains(&dt.year()) {
        let mut out = *b"0000-00-00T00:00:00";
        let mut put = |at: usize, width: usize, mut n: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, dt.year().into());
        put(5, 2, dt.month().into());
        put(8, 2, dt.day().into());
        put(11, 2, dt.hour().into());
        put(14, 2, dt.minute().into());
        put(17, 2, dt.second().into());
        // Only ASCII digits were written into an ASCII template.
        String::from_utf8_lossy(&out).into_owned()
    } else {
        ts.to_zoned(TimeZone::UTC)
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string()
    }
}

/// `due_at | date`: `yyyy-mm-dd` in the default zone (dates without time stay as they are).
pub(super) fn filter_date(
    state: &State,
    value: Value,
    format: Option<String>,
    tz: Option<String>,
) -> Result<Value, Error> {
    date_value(&value, format.as_deref(), || zone_named(tz, state))
}

/// The `date` filter with its zone passed in; shared with the fast path.
pub(crate) fn date_value(
    value: &Value,
    format: Option<&str>,
    tz: impl FnOnce() -> Result<TimeZone, Error>,
) -> Result<Value, Error> {
    if is_empty(value) {
        return Ok(Value::UNDEFINED);
    }
    let s = input_string(value);
    if format.is_none()
        && let Ok(d) = s.trim().parse::<Date>()
        && s.trim().len() == 10
    {
        return Ok(Value::from(d.to_string()));
    }
    let tz = tz()?;
    let ts =
        parse_instant(&s, format, &tz).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
    Ok(Value::from(
        ts.to_zoned(tz).strftime("%Y-%m-%d").to_string(),
    ))
}

/// `created_at | format_datetime('%d %b %Y %H:%M')`: for headers shown to people, in the
/// default zone unless one is given.
pub(super) fn filter_format_datetime(
    state: &State,
    value: Value,
    pattern: String,
    tz: Option<String>,
) -> Result<Value, Error> {
    if is_empty(&value) {
        return Ok(Value::UNDEFINED);
    }
    let zone = zone_named(tz, state)?;
    let ts = parse_instant(&input_string(&value), None, &default_zone(state))
        .map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
    let zoned = ts.to_zoned(zone);
    let mut out = String::new();
    jiff::fmt::strtime::format(pattern.as_str(), &zoned)
        .map(|s| out.push_str(&s))
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("bad date pattern {pattern:?}: {e}"),
            )
        })?;
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::template::tests::eval;

    #[test]
    fn datetime_shapes_from_real_exports() {
        let utc = |s: &str, f: Option<&str>| {
            let tz = TimeZone::get("Europe/Berlin").unwrap();
            parse_instant(s, f, &tz).map(|t| {
                t.to_zoned(TimeZone::UTC)
                    .strftime("%Y-%m-%dT%H:%M:%S")
                    .to_string()
            })
        };
        assert_eq!(
            utc("2023-09-09T23:52:05Z", None).unwrap(),
            "2023-09-09T23:52:05"
        );
        assert_eq!(
            utc("2014-12-31T12:27:09+10:00", None).unwrap(),
            "2014-12-31T02:27:09"
        );
        assert_eq!(
            utc("2022-06-27T17:12:35.000Z", None).unwrap(),
            "2022-06-27T17:12:35"
        );
        assert_eq!(
            utc("2023-03-23T07:45:29.056+0200", None).unwrap(),
            "2023-03-23T05:45:29"
        );
        assert_eq!(
            utc("2024-03-05 14:22:10", None).unwrap(),
            "2024-03-05T13:22:10"
        );
        assert_eq!(
            utc("2024-07-05 14:22:10", None).unwrap(),
            "2024-07-05T12:22:10"
        );
        assert_eq!(utc("1695052663", None).unwrap(), "2023-09-18T15:57:43");
        assert_eq!(
            utc("Tue Oct 31 22:10:47 +0000 2017", None).unwrap(),
            "2017-10-31T22:10:47"
        );
        assert_eq!(
            utc("23/Mar/23 7:45 AM", Some("jira")).unwrap(),
            "2023-03-23T06:45:00"
        );
        assert_eq!(
            utc("05.03.2024 14:22", Some("%d.%m.%Y %H:%M")).unwrap(),
            "2024-03-05T13:22:00"
        );
        let err = utc("next tuesday", None).unwrap_err();
        assert!(err.starts_with(INVALID_DATE), "{err}");
        assert!(err.contains("next tuesday"));
    }

    /// The offset forms are skipped only where they cannot parse: the result is what trying
    /// them first gives, for times with and without offsets and for near misses.
    #[test]
    fn skipping_the_offset_forms_changes_nothing() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let reference = |s: &str| -> Option<Timestamp> {
            let s = s.trim();
            s.parse::<Timestamp>()
                .ok()
                .or_else(|| with_pattern(s, "%Y-%m-%dT%H:%M:%S%.f%z", &tz))
        };
        let mut inputs = vec![
            "2024-03-05 14:22:10",
            "2024-03-05T14:22:10",
            "2024-03-05T14:22:10Z",
            "2024-03-05t14:22:10z",
            "2024-03-05T14:22:10.123+01:00",
            "2024-03-05T14:22:10-0500",
            "2024-03-05T14:22:10+01",
            "2024-03-05T14:22:10\u{2212}05:00",
            "2024-03-05T14:22:10[Europe/Paris]",
            "2024-03-05T14:22:10+01:00[Europe/Paris]",
            "20240305T142210Z",
            "20240305T1422",
            "+002024-03-05T14:22:10Z",
            "2024-03-05",
            "1709648530",
            "Tue Mar 05 14:22:10 +0000 2024",
            "05/03/2024 14:22",
            "",
            "Z",
        ];
        let owned: Vec<String> = inputs
            .iter()
            .flat_map(|s| [format!(" {s} "), s.replace('T', " "), s.replace(':', "")])
            .collect();
        inputs.extend(owned.iter().map(String::as_str));
        // And strings of date-like characters, from a fixed pseudo-random sequence.
        let alphabet = b"0123456789--::TT Z+.";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<String> = (0..5000)
            .map(|i| {
                let mut t = String::from(["2024-03-05", "20240305", "2024-03-05T14"][i % 3]);
                for _ in 0..(i % 17) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    t.push(alphabet[(seed % alphabet.len() as u64) as usize] as char);
                }
                t
            })
            .collect();
        inputs.extend(random.iter().map(String::as_str));
        for s in inputs {
            let got = parse_instant(s, None, &tz);
            if let Some(want) = reference(s) {
                assert_eq!(got, Ok(want), "{s:?}");
            }
            if !may_have_offset(s.trim()) {
                assert_eq!(
                    reference(s),
                    None,
                    "{s:?} parses with an offset but was skipped"
                );
            }
        }
    }

    #[test]
    fn utc_seconds_matches_strftime() {
        for s in [
            "2024-03-05T13:22:10Z",
            "0001-01-01T00:00:00Z",
            "9999-12-30T21:59:59.999Z",
            "1970-01-01T00:00:00.5+01:00",
        ] {
            let ts: Timestamp = s.parse().unwrap();
            let want = ts
                .to_zoned(TimeZone::UTC)
                .strftime("%Y-%m-%dT%H:%M:%S")
                .to_string();
            assert_eq!(utc_seconds(ts), want, "{s}");
        }
    }

    #[test]
    fn date_filters() {
        let v = eval(
            "{{ d | datetime }}",
            serde_json::json!({"d": "2024-03-05 14:22:10"}),
        )
        .unwrap();
        assert_eq!(v.as_str(), Some("2024-03-05T13:22:10"));
        let v = eval("{{ d | date }}", serde_json::json!({"d": "2024-03-05"})).unwrap();
        assert_eq!(v.as_str(), Some("2024-03-05"));
        let v = eval("{{ d | datetime }}", serde_json::json!({"d": ""})).unwrap();
        assert!(v.is_undefined());
        let e = eval("{{ d | datetime }}", serde_json::json!({"d": "soon"})).unwrap_err();
        assert!(e.to_string().contains(INVALID_DATE), "{e}");
        let v = eval(
            "{{ d | format_datetime('%d %b %Y %H:%M') }}",
            serde_json::json!({"d": "2024-03-05T13:22:10Z"}),
        )
        .unwrap();
        assert_eq!(v.as_str(), Some("05 Mar 2024 14:22"));
    }
}
