//! Valid tickets per category, status, priority and assignee: what a lead checks against
//! the old helpdesk's own figures ("Billing had about 2,000 open tickets") before the run.
//!
//! Counted while records stream by, so memory must not follow the export: the values are
//! the account's ids today (a few dozen), but a tally keyed by anything a record supplies
//! could see a new value in every record. So a tally keeps at most [`TRACKED`] distinct
//! values exactly, counts the rest as "other", and the report lists the [`SHOWN`] most
//! frequent with everything else folded into "other".

use std::collections::HashMap;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use serde::Serialize;

/// Distinct values a tally counts one by one; later new values go to "other".
pub(crate) const TRACKED: usize = 1_000;
/// Values each breakdown lists, most frequent first.
pub(crate) const SHOWN: usize = 50;

/// One field's values among the valid tickets.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Breakdown {
    /// The most frequent values, most first (ties by value), at most 50.
    pub values: Vec<BreakdownValue>,
    /// Tickets whose value is not listed (beyond the 50, or never counted one by one).
    pub other: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BreakdownValue {
    pub value: String,
    pub count: u64,
}

/// The valid tickets by the fields a lead recognises.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Breakdowns {
    pub category: Breakdown,
    /// The status each ticket ends in (the account's default when the mapping sets none).
    pub status: Breakdown,
    pub priority: Breakdown,
    pub assignee: Breakdown,
}

/// Counts of values with a bound on how many distinct values it holds.
///
/// FxHash, not SipHash: every valid ticket is counted in four tallies, and their keys
/// are the account's ids, which no export can choose (and at most `limit` are held).
#[derive(Debug)]
pub(crate) struct CappedTally<K> {
    counts: FxHashMap<K, u64>,
    /// Records whose value arrived after `limit` distinct ones were held.
    overflow: u64,
    limit: usize,
}

impl<K> Default for CappedTally<K> {
    fn default() -> Self {
        CappedTally::with_limit(TRACKED)
    }
}

impl<K> CappedTally<K> {
    pub(crate) fn with_limit(limit: usize) -> Self {
        CappedTally {
            counts: FxHashMap::default(),
            overflow: 0,
            limit,
        }
    }
}

impl<K: Hash + Eq> CappedTally<K> {
    pub(crate) fn add(&mut self, key: K) {
        let held = self.counts.len();
        match self.counts.get_mut(&key) {
            Some(n) => *n += 1,
            None if held < self.limit => {
                self.counts.insert(key, 1);
            }
            None => self.overflow += 1,
        }
    }

    /// The `shown` most frequent values named by `name`, the rest as "other". Values
    /// that name alike (two ids of one name) are listed once.
    pub(crate) fn finish(self, shown: usize, name: impl Fn(&K) -> String) -> Breakdown {
        let mut named: HashMap<String, u64> = HashMap::with_capacity(self.counts.len());
        for (key, count) in &self.counts {
            *named.entry(name(key)).or_default() += count;
        }
        let mut values: Vec<BreakdownValue> = named
            .into_iter()
            .map(|(value, count)| BreakdownValue { value, count })
            .collect();
        values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        let other = self.overflow + values.iter().skip(shown).map(|v| v.count).sum::<u64>();
        values.truncate(shown);
        Breakdown { values, other }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tickets counted, listed or not.
    fn total(b: &Breakdown) -> u64 {
        b.values.iter().map(|v| v.count).sum::<u64>() + b.other
    }

    #[test]
    fn most_frequent_first_and_the_rest_as_other() {
        let mut t = CappedTally::with_limit(100);
        for v in ["a", "b", "b", "c", "c", "c", "d"] {
            t.add(v);
        }
        let b = t.finish(2, |k| k.to_string());
        let listed: Vec<(&str, u64)> = b
            .values
            .iter()
            .map(|v| (v.value.as_str(), v.count))
            .collect();
        assert_eq!(listed, [("c", 3), ("b", 2)]);
        assert_eq!(b.other, 2, "a and d");
        assert_eq!(total(&b), 7);
    }

    #[test]
    fn distinct_values_beyond_the_limit_are_counted_as_other_not_held() {
        let mut t = CappedTally::with_limit(3);
        for i in 0..10_000u64 {
            t.add(i % 5_000);
        }
        assert_eq!(t.counts.len(), 3, "memory stays at the limit");
        let b = t.finish(SHOWN, |k| k.to_string());
        // 0, 1 and 2 are held (each seen twice); every other record is "other".
        assert_eq!(b.values.len(), 3);
        assert!(b.values.iter().all(|v| v.count == 2));
        assert_eq!(b.other, 10_000 - 6);
        assert_eq!(total(&b), 10_000);
    }

    #[test]
    fn values_that_name_alike_are_listed_once() {
        let mut t = CappedTally::default();
        for id in [1u64, 2, 2, 3] {
            t.add(Some(id));
        }
        t.add(None);
        let b = t.finish(SHOWN, |k| match k {
            Some(1 | 2) => "Support".into(),
            Some(_) => "Billing".into(),
            None => "none".into(),
        });
        assert_eq!(
            b.values[0],
            BreakdownValue {
                value: "Support".into(),
                count: 3
            }
        );
        assert_eq!(b.values.len(), 3);
        assert_eq!(b.other, 0);
    }
}
