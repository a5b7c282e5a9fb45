//! Whether the migration fits the window the lead has for it, and if not, the cut-off
//! date that makes it fit: tickets created before it posted as transcripts
//! (`conversation.history: transcript`), the rest with their full history.
//!
//! HappyFox's 300 POSTs a minute is the whole budget, and later entries dominate it; the
//! only lever that trades detail for time is the transcript, and the natural rule is age.
//! The dry run tallies, per day of creation, what each mode would cost; choosing the
//! cut-off is then a walk over days, bounded however large the export.

use std::collections::BTreeMap;

use serde::Serialize;

/// More days than this are folded into the last one kept (over a century of daily
/// buckets; a bad date column cannot grow the tally without bound).
const MAX_DAYS: usize = 40_000;

/// POSTs after creation of the tickets created on one day, in each mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayCost {
    pub tickets: u64,
    /// One post per entry (plus closing and attachment notes).
    pub full: u64,
    /// One transcript note per ticket with entries (plus continuation notes).
    pub transcript: u64,
}

/// The per-day tally, filled while records stream by.
#[derive(Debug, Default)]
pub(crate) struct WindowTally {
    days: BTreeMap<String, DayCost>,
    /// Tickets without a creation date the tally can read: kept with their planned posts.
    undated: DayCost,
    /// The posts after creation the plan makes for dated tickets, as the mapping's rules
    /// have it (a cut-off replaces them by the day's full or transcript cost).
    dated_planned: u64,
}

impl WindowTally {
    /// One valid ticket: its `created_at` (`yyyy-mm-ddT…`), and the posts after creation
    /// the plan makes, would make with full history, and with a transcript.
    pub(crate) fn add(
        &mut self,
        created_at: Option<&str>,
        planned: u64,
        full: u64,
        transcript: u64,
    ) {
        let day = created_at
            .and_then(|d| d.get(..10))
            .filter(|d| d.parse::<jiff::civil::Date>().is_ok())
            .map(str::to_string);
        if day.is_some() {
            self.dated_planned += planned;
        }
        let cost = match day {
            Some(d) if self.days.len() < MAX_DAYS || self.days.contains_key(&d) => {
                self.days.entry(d).or_default()
            }
            Some(_) => match self.days.values_mut().next_back() {
                Some(last) => last,
                None => &mut self.undated,
            },
            None => &mut self.undated,
        };
        cost.tickets += 1;
        cost.full += full;
        cost.transcript += transcript;
    }

    /// The plan against `window_seconds` at `post_per_min`, `total_posts` being the plan's
    /// POSTs (creates and uploads included).
    pub(crate) fn fit(
        &self,
        window_seconds: u64,
        post_per_min: u32,
        total_posts: u64,
    ) -> WindowFit {
        let per_min = u64::from(post_per_min.max(1));
        let seconds = |posts: u64| (posts * 60).div_ceil(per_min);
        let budget = window_seconds * per_min / 60;
        // Everything but the dated tickets' later posts: creates, uploads, undated tickets.
        let fixed = total_posts.saturating_sub(self.dated_planned);
        let days: Vec<(&String, &DayCost)> = self.days.iter().collect();
        // Cut-off i: the days before i as transcripts. i = 0 is full history throughout.
        let posts_at = |i: usize| {
            fixed
                + days[..i].iter().map(|(_, c)| c.transcript).sum::<u64>()
                + days[i..].iter().map(|(_, c)| c.full).sum::<u64>()
        };
        let first_fit = (0..=days.len()).find(|&i| posts_at(i) <= budget);
        let suggestion = match first_fit {
            // Full history fits, or the mapping's own rules do: nothing to suggest.
            _ if total_posts <= budget => None,
            Some(0) => Some(Cutoff {
                before: None,
                transcripts: 0,
                posts: posts_at(0),
                seconds: seconds(posts_at(0)),
            }),
            Some(i) => Some(Cutoff {
                before: Some(day_after(days[i - 1].0)),
                transcripts: days[..i].iter().map(|(_, c)| c.tickets).sum(),
                posts: posts_at(i),
                seconds: seconds(posts_at(i)),
            }),
            None => None,
        };
        let floor = posts_at(days.len());
        WindowFit {
            window_seconds,
            post_per_min,
            budget_posts: budget,
            planned_posts: total_posts,
            planned_seconds: seconds(total_posts),
            fits: total_posts <= budget,
            suggestion,
            all_transcripts_posts: floor,
            all_transcripts_fit: floor <= budget,
            undated_tickets: self.undated.tickets,
            days: self
                .days
                .iter()
                .map(|(d, c)| DayRow {
                    day: d.clone(),
                    cost: *c,
                })
                .collect(),
        }
    }
}

/// The day after `yyyy-mm-dd` (which the tally has parsed already).
fn day_after(day: &str) -> String {
    day.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.tomorrow().ok())
        .map_or_else(|| day.to_string(), |d| d.to_string())
}

/// One day of the tally, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayRow {
    pub day: String,
    #[serde(flatten)]
    pub cost: DayCost,
}

/// Transcripts for tickets created before a date, and what the run then costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cutoff {
    /// `yyyy-mm-dd`; `None` when full history already fits this way (the mapping's own
    /// transcript rule is what overshoots).
    pub before: Option<String>,
    pub transcripts: u64,
    pub posts: u64,
    pub seconds: u64,
}

/// The plan against the window (`--window`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowFit {
    pub window_seconds: u64,
    pub post_per_min: u32,
    /// POSTs the window holds at the ceiling.
    pub budget_posts: u64,
    pub planned_posts: u64,
    pub planned_seconds: u64,
    pub fits: bool,
    /// The latest cut-off that fits, when the plan does not.
    pub suggestion: Option<Cutoff>,
    /// Every dated ticket as a transcript: the least this export can cost.
    pub all_transcripts_posts: u64,
    pub all_transcripts_fit: bool,
    /// Tickets whose creation date could not be read: kept as planned in every figure.
    pub undated_tickets: u64,
    pub days: Vec<DayRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three days of 10 tickets, each with 4 later posts in full or 1 as a transcript;
    /// 30 creates' worth of other posts.
    fn tally() -> WindowTally {
        let mut t = WindowTally::default();
        for day in ["2023-11-30", "2023-12-31", "2024-01-15"] {
            for _ in 0..10 {
                t.add(Some(&format!("{day}T10:00:00")), 4, 4, 1);
            }
        }
        t
    }

    #[test]
    fn the_latest_cutoff_that_fits_is_suggested() {
        let t = tally();
        // 30 + 120 = 150 POSTs planned; at 60/min a 2-minute window holds 120.
        let f = t.fit(120, 60, 150);
        assert!(!f.fits);
        let s = f.suggestion.unwrap();
        // Transcripts for 30 November alone: 30 + 10 + 80 = 120.
        assert_eq!(s.before.as_deref(), Some("2023-12-01"));
        assert_eq!((s.transcripts, s.posts, s.seconds), (10, 120, 120));
        assert_eq!(f.all_transcripts_posts, 60);
        // Across the year boundary.
        let f = t.fit(90, 60, 150);
        assert_eq!(f.suggestion.unwrap().before.as_deref(), Some("2024-01-01"));
    }

    #[test]
    fn a_plan_that_fits_gets_no_suggestion_and_one_that_cannot_says_so() {
        let t = tally();
        let f = t.fit(3600, 60, 150);
        assert!(f.fits && f.suggestion.is_none());
        let f = t.fit(30, 60, 150);
        assert!(!f.fits && f.suggestion.is_none() && !f.all_transcripts_fit);
        assert_eq!(f.all_transcripts_posts, 60);
    }

    #[test]
    fn undated_tickets_keep_their_planned_posts_and_a_bad_date_is_undated() {
        let mut t = tally();
        t.add(None, 4, 4, 1);
        t.add(Some("15/01/2024"), 4, 4, 1);
        let f = t.fit(120, 60, 158);
        assert_eq!(f.undated_tickets, 2);
        assert_eq!(f.all_transcripts_posts, 68);
        assert_eq!(f.days.len(), 3);
    }
}
