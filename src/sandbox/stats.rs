//! What the sandbox saw, for tests and rehearsals to assert on.
//!
//! A rehearsal passes only if the importer never tripped the rate limit, never wrote to
//! one ticket twice at once and recovered from every injected fault; these counters are
//! how a test (or a person after a rehearsal) checks that. Served at `GET /_sandbox/stats`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Faults injected, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Requests delayed by `--latency`.
    pub latency: u64,
    /// Requests answered 500 before anything was stored (`--fail-rate`).
    pub fail: u64,
    /// Writes stored and then answered by closing the connection (`--drop-rate`).
    pub drop: u64,
}

/// The body of `GET /_sandbox/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// `"METHOD endpoint"` (e.g. `"POST ticket/{n}/staff_update/"`) → status → count.
    /// A dropped connection counts under the status `"dropped"`.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// 429 responses served.
    pub rate_limited: u64,
    /// Times a limit was exceeded and a lockout began.
    pub lockouts: u64,
    pub faults: FaultCounts,
    /// Writes that arrived while another write to the same ticket was in progress.
    pub overlapping_writes: u64,
    /// Ticket id → overlapping writes on it.
    pub overlaps_by_ticket: BTreeMap<u64, u64>,
    /// Overlapping writes refused with 409 (with `reject_overlaps`).
    pub conflicts: u64,
    /// Live tickets, their updates, contacts, and tickets deleted.
    pub tickets: u64,
    pub updates: u64,
    pub contacts: u64,
    pub deleted_tickets: u64,
}

impl Stats {
    pub fn count(&mut self, endpoint: &str, status: &str) {
        *self
            .requests
            .entry(endpoint.to_string())
            .or_default()
            .entry(status.to_string())
            .or_default() += 1;
    }

    /// Requests to `endpoint` answered with `status`.
    pub fn served(&self, endpoint: &str, status: &str) -> u64 {
        self.requests
            .get(endpoint)
            .and_then(|m| m.get(status))
            .copied()
            .unwrap_or(0)
    }
}
