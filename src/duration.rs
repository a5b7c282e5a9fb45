//! Durations as people write them in flags and read them in summaries.
//!
//! Parsing is jiff's "friendly" format (`50ms`, `2s`, `1.5s`, `10m`, `1h30m`, `2 hours`), so
//! every flag of every subcommand (and the sandbox's) accepts the same spellings; and every
//! duration the program prints (progress, plan, report, status) goes through [`format`],
//! in that same format, so one screen never writes `2m05s` where another writes `2m 05s`,
//! and what is printed can be pasted back into a flag.

use std::time::Duration;

/// Why a flag's value is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (write it like 50ms, 2s, 10m or 1h)")]
pub struct BadDuration(pub String);

/// A non-negative duration with a unit: `50ms`, `2s`, `1.5s`, `10m`, `1h30m`. A bare
/// number is refused: `10` could be seconds or minutes.
pub fn parse(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(text.to_string());
    let t = text.trim();
    if t.is_empty() || t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let d: jiff::SignedDuration = t.parse().map_err(|_| bad())?;
    Duration::try_from(d).map_err(|_| bad())
}

/// A duration for people, to the two largest units that matter: `1h 2m`, `2m 5s`, `12s`
/// (hours, not days, past a day: a migration's ETA is compared with a shift, not a week).
pub fn format(d: Duration) -> String {
    use jiff::fmt::friendly::SpanPrinter;
    static PRINTER: SpanPrinter = SpanPrinter::new();
    let secs = d.as_secs_f64().round() as u64;
    let shown = if secs >= 3600 {
        // Rounded to the minute: seconds are noise beside hours.
        (secs + 30) / 60 * 60
    } else {
        secs
    };
    PRINTER.unsigned_duration_to_string(&Duration::from_secs(shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_it_parses() {
        for (secs, text) in [
            (0, "0s"),
            (9, "9s"),
            (125, "2m 5s"),
            (3725, "1h 2m"),
            (3 * 3600 + 5 * 60 + 40, "3h 6m"),
            (30 * 3600, "30h"),
        ] {
            assert_eq!(format(Duration::from_secs(secs)), text, "{secs}");
            let back = parse(text).unwrap().as_secs();
            assert!(back.abs_diff(secs) < 60, "{text} parses back to {back}");
        }
        assert_eq!(format(Duration::from_millis(1_600)), "2s");
    }

    #[test]
    fn units_as_flags_are_written() {
        assert_eq!(parse("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("10min"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for text in ["", "10", "1.5", "ms", "5 parsecs", "-5s", "soon"] {
            assert_eq!(parse(text), Err(BadDuration(text.into())), "{text:?}");
        }
    }
}
