//! `hfmigrate status` and `hfmigrate results`: what a journal holds, read-only.

use std::io::Write;

use anyhow::Context;

use super::args::{ResultsArgs, StatusArgs};
use super::{Failure, usage};
use crate::exit::Exit;

/// The journal note where `import` keeps how many records the mapping skipped.
pub(super) const SKIPPED_NOTE: &str = "skipped_records";

pub(super) fn status(args: &StatusArgs) -> Result<Exit, Failure> {
    let journal = crate::journal::Journal::open_read_only(&args.journal).map_err(usage)?;
    let s = journal
        .summary()
        .context("cannot read the journal summary")?;
    let skipped: u64 = journal
        .note(SKIPPED_NOTE)
        .context("cannot read the journal")?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::Map::new();
        value.insert("version".into(), super::JSON_VERSION.into());
        value.insert("command".into(), "status".into());
        if let serde_json::Value::Object(fields) =
            serde_json::to_value(&s).context("cannot encode the summary")?
        {
            value.extend(fields);
        }
        if let Some(records) = value.get_mut("records").and_then(|r| r.as_object_mut()) {
            // `total` is what the journal holds; `read` adds what the mapping skipped.
            records.insert("skipped".into(), skipped.into());
            records.insert("read".into(), (s.records.total + skipped).into());
        }
        let text = serde_json::to_string_pretty(&value).context("cannot encode the summary")?;
        let _ = writeln!(out, "{text}");
        return Ok(Exit::Done);
    }
    let r = s.records;
    let _ = writeln!(out, "journal {}", args.journal.display());
    let _ = writeln!(out, "  target:   {}", s.target_url);
    let _ = writeln!(
        out,
        "  runs:     {} (first started {}, last finished {})",
        s.runs,
        s.started_at.as_deref().unwrap_or("-"),
        s.last_finished_at.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  records:  {} read: {} created, {} failed or rejected, {} pending, {} sending, {} skipped by the mapping",
        r.total + skipped,
        r.created,
        r.failed,
        r.pending,
        r.sending,
        skipped
    );
    let m = s.messages;
    let _ = writeln!(
        out,
        "  messages: {} total: {} posted, {} failed, {} pending, {} of unknown outcome (reconciled on the next run)",
        m.total, m.created, m.failed, m.pending, m.sending
    );
    let b = &s.batches;
    let _ = writeln!(
        out,
        "  batches:  {} total, {} finished, {} without an answer{}",
        b.total,
        b.finished,
        b.sending,
        b.mean_seconds
            .map(|m| format!(", {m:.2}s from send to answer on average"))
            .unwrap_or_default()
    );
    if b.sending > 0 {
        let _ = writeln!(
            out,
            "  the next import reconciles the {} batch(es) without an answer before sending anything",
            b.sending
        );
    }
    let history = journal
        .run_history()
        .context("cannot read the journal's runs")?;
    if history.iter().any(|h| h.counts.is_some()) {
        let _ = writeln!(out, "  each run:");
        for h in &history {
            let when = jiff::Timestamp::from_millisecond(h.started_at)
                .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            let did = match h.counts {
                Some(c) if c.delta == 0 => format!("full: {} ticket(s) enqueued", c.new_tickets),
                Some(c) => format!(
                    "delta {}: {} new ticket(s), {} new entr{} ({} out of order), {} state update(s), reported {} removed, {} changed, {} deleted in the source",
                    c.delta,
                    c.new_tickets,
                    c.new_entries,
                    if c.new_entries == 1 { "y" } else { "ies" },
                    c.out_of_order,
                    c.state_updates,
                    c.removed,
                    c.changed,
                    c.deleted
                ),
                None => "resumed sending (export unchanged)".to_string(),
            };
            let _ = writeln!(
                out,
                "    run {} ({when}, {}): {did}",
                h.run,
                h.outcome.as_deref().unwrap_or("not finished")
            );
        }
    }
    let findings = journal
        .delta_findings()
        .context("cannot read the journal")?;
    if !findings.is_empty() {
        let _ = writeln!(
            out,
            "  reported, not applied ({}; HappyFox cannot edit or delete an update):",
            findings.len()
        );
        for f in &findings {
            let _ = writeln!(
                out,
                "    {} entry {}: {}: {}",
                f.ticket, f.entry, f.kind, f.detail
            );
        }
    }
    Ok(Exit::Done)
}

pub(super) fn results(args: &ResultsArgs) -> Result<Exit, Failure> {
    let journal = crate::journal::Journal::open_read_only(&args.journal).map_err(usage)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))
        .map_err(usage)?;
    let w = journal.write_results(&args.out).map_err(usage)?;
    println!(
        "wrote {} ({} tickets created) and {} ({} records to fix)",
        w.success_csv.display(),
        w.successes,
        w.errors_csv.display(),
        w.errors
    );
    Ok(Exit::Done)
}
