//! What a field-by-field verify found, summed up: the match rate of every field, the
//! tickets that differ, and what the journal was told to post again. Versioned, because
//! scripts read it (`--json`, `verify.json`).

use serde::Serialize;

use super::Verification;
use super::compare::TicketReport;
use super::source::SourceCheck;

/// The JSON layout's version; bump it when a field changes meaning or goes away.
pub const SUMMARY_VERSION: u32 = 1;

/// One field over every ticket it was checked on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldRate {
    pub field: String,
    pub checked: u64,
    pub matched: u64,
    /// `matched / checked` in percent, one decimal.
    pub percent: f64,
    /// Of the differences, how many came from a change after the import.
    pub changed_after_import: u64,
}

/// How the tickets to read were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub size: usize,
    pub seed: u64,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldSummary {
    pub version: u32,
    /// The account's URL (for the portal links).
    pub target: String,
    /// Records the journal calls created.
    pub created: u64,
    /// Tickets compared (all, or the sample).
    pub compared: u64,
    /// Of those, compared by an earlier, stopped verify and not read again.
    pub resumed: u64,
    /// Tickets with no difference at all.
    pub matching: u64,
    pub sample: Option<Sample>,
    pub fields: Vec<FieldRate>,
    /// Posted messages HappyFox does not show, put back to pending in the journal so
    /// the next `hfmigrate import` posts them.
    pub messages_marked_missing: u64,
    /// The GET ceiling this verify ran under, and how long reading every created ticket
    /// takes at it.
    pub get_per_min: u32,
    pub full_verify_seconds: u64,
    /// The marker check: each created record exactly one ticket.
    pub markers: Verification,
    /// With `--input`: the export re-rendered through the mapping, next to the journal.
    pub source: Option<SourceCheck>,
    /// Every ticket with a difference, in journal order.
    pub differing: Vec<TicketReport>,
}

impl FieldSummary {
    /// Whether everything matched (exit 0).
    pub fn is_clean(&self) -> bool {
        self.differing.is_empty()
            && self.markers.is_clean()
            && self.source.as_ref().is_none_or(SourceCheck::is_clean)
    }
}

/// The running totals of a verify: per-field counts and the differing tickets only, so
/// memory grows with the differences, not with the account.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub rates: Vec<FieldRate>,
    pub differing: Vec<TicketReport>,
    pub compared: u64,
    pub matching: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, r: TicketReport) {
        self.compared += 1;
        for c in &r.checks {
            let i = match self.rates.iter().position(|f| f.field == c.field) {
                Some(i) => i,
                None => {
                    self.rates.push(FieldRate {
                        field: c.field.clone(),
                        checked: 0,
                        matched: 0,
                        percent: 0.0,
                        changed_after_import: 0,
                    });
                    self.rates.len() - 1
                }
            };
            let f = &mut self.rates[i];
            f.checked += 1;
            f.matched += u64::from(c.ok);
            f.changed_after_import += u64::from(!c.ok && c.changed_after_import_by.is_some());
        }
        if r.is_clean() {
            self.matching += 1;
        } else {
            self.differing.push(r);
        }
    }

    /// The field rates in reading order, with their percentages.
    pub(crate) fn fields(&mut self) -> Vec<FieldRate> {
        let mut rates = std::mem::take(&mut self.rates);
        for f in &mut rates {
            f.percent = percent(f.matched, f.checked);
        }
        rates.sort_by_key(|f| rank(&f.field));
        rates
    }
}

/// Fields in the order a ticket reads: its own fields, the contact's, the custom fields,
/// the final state, then the conversation (a stable sort keeps custom fields in the order
/// they were first seen).
fn rank(field: &str) -> usize {
    const ORDER: [&str; 15] = [
        "subject",
        "first message",
        "contact name",
        "contact email",
        "contact field",
        "category",
        "priority",
        "assignee",
        "tags",
        "due date",
        "created at",
        "ticket field",
        "status",
        "conversation",
        "attachments",
    ];
    ORDER
        .iter()
        .position(|o| field == *o || field.starts_with(&format!("{o} ")))
        .unwrap_or(ORDER.len())
}

/// `part / whole` in percent with one decimal, never 100.0 unless they are equal.
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 || part >= whole {
        return 100.0;
    }
    let p = (part as f64 * 1000.0 / whole as f64).floor() / 10.0;
    p.min(99.9)
}

/// Seconds to read `tickets` tickets (and list the account for the marker check, 50 per
/// page) at `get_per_min` GETs a minute.
pub fn full_verify_seconds(tickets: u64, get_per_min: u32) -> u64 {
    let gets = tickets + tickets.div_ceil(50);
    (gets * 60).div_ceil(u64::from(get_per_min.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_only_100_when_everything_matched() {
        assert_eq!(percent(1, 1), 100.0);
        assert_eq!(percent(9999, 10000), 99.9);
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(0, 0), 100.0);
    }

    #[test]
    fn a_thousand_tickets_take_two_and_a_half_minutes_at_the_default_ceiling() {
        // 1,000 ticket reads + 20 list pages at 400 GET/min.
        assert_eq!(full_verify_seconds(1000, 400), 153);
    }
}
