//! Durations as people write them in flags and read them in summaries.
//!
//! Parsing is jiff's "friendly" format (`50ms`, `2s`, `1.5s`, `10m`, `1h30m`, `2 hours`), so
//! every flag of every subcommand (and the sandbox's) accepts the same spellings.

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

#[cfg(test)]
mod tests {
    use super::*;

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
