//! The field-by-field verify: read each created ticket back (`GET ticket/<n>/`, paced by
//! the client under the GET ceiling), compare it, store the comparison in the journal at
//! once (so a stopped verify continues with the next ticket) and mark posted messages
//! HappyFox does not show so that the next import posts them.

use std::collections::HashMap;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value};

use super::compare::{TicketReport, compare};
use super::expected::Expected;
use super::source::{Export, render};
use super::summary::{FieldSummary, SUMMARY_VERSION, Sample, Tally, full_verify_seconds};
use super::{VerifyError, verify};
use crate::client::{Client, ClientError};
use crate::journal::{Journal, JournaledMessage};

/// The journal note of a verify in progress: what it was asked, so that only the same
/// question resumes (`sample=<n|all> seed=<s>`); `done` once it finished.
const PROGRESS_NOTE: &str = "verify";
/// Created records read from the journal per query.
const PAGE: usize = 1_000;

/// What to verify.
#[derive(Debug, Clone, Copy, Default)]
pub struct FieldOptions {
    /// Compare a random `n` of the created tickets instead of all.
    pub sample: Option<usize>,
    /// The sample's seed; random (and printed) when absent.
    pub seed: Option<u64>,
    pub get_per_min: u32,
}

/// A created ticket to compare.
struct Target {
    source_id: String,
    ticket_id: u64,
    display_id: String,
}

fn question(sample: Option<usize>, seed: u64, runs: u64) -> String {
    // An import since the stopped verify (a new run) may have changed what it compared:
    // then it starts over.
    match sample {
        Some(n) => format!("sample={n} seed={seed} runs={runs}"),
        None => format!("sample=all runs={runs}"),
    }
}

/// The seed of an unfinished verify of the same sample size, to resume it.
fn unfinished_seed(note: Option<&str>, sample: Option<usize>) -> Option<u64> {
    let note = note?;
    let n = sample?;
    let rest = note.strip_prefix(&format!("sample={n} seed="))?;
    rest.split(' ').next()?.parse().ok()
}

/// How far a verify is, for the progress lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyProgress {
    pub compared: u64,
    pub total: u64,
    pub differing: u64,
}

/// Runs the whole verify; `interrupted` is polled between tickets (Ctrl-C: stop, keep
/// what was compared, exit 4) and `progress` told after each one.
pub async fn verify_fields(
    journal: &mut Journal,
    client: &Client,
    opts: FieldOptions,
    export: Option<&Export>,
    scratch: &Path,
    interrupted: &(dyn Fn() -> bool + Sync),
    progress: &(dyn Fn(VerifyProgress) + Sync),
) -> Result<FieldSummary, VerifyError> {
    let markers = verify(journal, client, scratch).await?;
    let note = journal.note(PROGRESS_NOTE)?;
    let seed = opts
        .seed
        .or_else(|| unfinished_seed(note.as_deref(), opts.sample))
        .unwrap_or_else(rand::random);
    let asked = question(opts.sample, seed, journal.summary()?.runs);
    let mut stored: HashMap<String, TicketReport> = HashMap::new();
    if note.as_deref() == Some(asked.as_str()) {
        for (source_id, json) in journal.verified()? {
            if let Ok(r) = serde_json::from_str::<TicketReport>(&json) {
                stored.insert(source_id, r);
            }
        }
    } else {
        journal.clear_verified()?;
        journal.set_note(PROGRESS_NOTE, &asked)?;
    }
    let mut targets: Vec<Target> = vec![];
    let mut after = 0;
    loop {
        let page = journal.created_records(after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.row;
        targets.extend(page.into_iter().map(|r| Target {
            source_id: r.source_id,
            ticket_id: r.happyfox_id,
            display_id: r.display_id,
        }));
    }
    let created = targets.len() as u64;
    let (source, mut rendered) = match export {
        Some(export) => {
            let ids = targets.iter().map(|t| t.source_id.clone()).collect();
            let (check, differs) = render(journal, export, &ids)?;
            (Some(check), differs)
        }
        None => (None, HashMap::new()),
    };
    if let Some(n) = opts.sample.filter(|n| *n < targets.len()) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut keep: Vec<usize> = (0..targets.len())
            .collect::<Vec<_>>()
            .choose_multiple(&mut rng, n)
            .copied()
            .collect();
        keep.sort_unstable();
        let mut all: Vec<Option<Target>> = targets.into_iter().map(Some).collect();
        targets = keep.into_iter().filter_map(|i| all[i].take()).collect();
    }
    let failed_files = journal.attachment_failures()?;
    let reposted = journal.reposted_messages()?;
    let resumed = targets
        .iter()
        .filter(|t| stored.contains_key(&t.source_id))
        .count() as u64;
    let mut tally = Tally::default();
    let total = targets.len() as u64;
    // Messages marked by an earlier, stopped run count too: the next import posts them.
    let mut marked = 0;
    for t in &targets {
        if let Some(r) = stored.remove(&t.source_id) {
            marked += r.missing_messages.len() as u64;
            tally.add(r);
            continue;
        }
        if interrupted() {
            return Err(VerifyError::Interrupted {
                compared: tally.compared,
                total,
            });
        }
        let report = TicketReport {
            source_id: t.source_id.clone(),
            ticket_id: t.ticket_id,
            display_id: t.display_id.clone(),
            ..TicketReport::default()
        };
        let report = match client
            .get_json(&format!("ticket/{}/", t.ticket_id), &[])
            .await
        {
            Ok(ticket) => {
                let mut payload = journal.payload(&t.source_id)?;
                let mut messages = journal.ticket_messages(&t.source_id)?;
                if let Some(r) = rendered.remove(&t.source_id) {
                    messages = as_journaled(r.messages.clone(), &messages);
                    payload = Some(r.payload);
                }
                let payload: Map<String, Value> = payload
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default();
                let files: Vec<(i64, String)> = failed_files
                    .iter()
                    .filter(|f| f.0 == t.source_id)
                    .map(|f| (f.1, f.2.clone()))
                    .collect();
                let mut expected = Expected::build(&payload, &messages, &files);
                for m in &mut expected.messages {
                    m.reposted = reposted.contains(&m.id);
                }
                compare(report, &expected, &ticket)
            }
            Err(ClientError::Rejected { error, .. }) if error.status == 404 => TicketReport {
                unreadable: Some(format!(
                    "HappyFox has no ticket {} (deleted after the import?)",
                    t.ticket_id
                )),
                ..report
            },
            Err(e) => return Err(e.into()),
        };
        for id in &report.missing_messages {
            marked += u64::from(journal.mark_message_missing(*id)?);
        }
        let json = serde_json::to_string(&report).unwrap_or_default();
        journal.set_verified(&t.source_id, &json)?;
        tally.add(report);
        progress(VerifyProgress {
            compared: tally.compared,
            total,
            differing: tally.differing.len() as u64,
        });
    }
    journal.set_note(PROGRESS_NOTE, "done")?;
    let fields = tally.fields();
    Ok(FieldSummary {
        version: SUMMARY_VERSION,
        target: client.target().account_url(),
        created,
        compared: tally.compared,
        resumed,
        matching: tally.matching,
        sample: opts.sample.map(|size| Sample { size, seed }),
        fields,
        messages_marked_missing: marked,
        get_per_min: opts.get_per_min,
        full_verify_seconds: full_verify_seconds(created, opts.get_per_min),
        markers,
        source,
        differing: tally.differing,
    })
}

/// A new rendering's messages with the journal's state of each position (a position the
/// journal lacks was never posted).
fn as_journaled(
    messages: Vec<crate::journal::NewMessage>,
    journaled: &[JournaledMessage],
) -> Vec<JournaledMessage> {
    messages
        .into_iter()
        .map(|m| {
            let j = journaled.iter().find(|j| j.position == m.position);
            JournaledMessage {
                id: j.map_or(-1, |j| j.id),
                position: m.position,
                kind: m.kind,
                author: m.author,
                author_name: m.author_name,
                payload: m.payload,
                state: j.map_or_else(|| "not journaled".to_owned(), |j| j.state.clone()),
                update_id: j.and_then(|j| j.update_id),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_question_resumes() {
        let note = question(Some(5), 42, 3);
        assert_eq!(unfinished_seed(Some(&note), Some(5)), Some(42));
        assert_eq!(unfinished_seed(Some(&note), Some(6)), None);
        assert_eq!(unfinished_seed(Some("done"), Some(5)), None);
        assert_ne!(
            question(None, 1, 3),
            question(None, 1, 4),
            "an import in between"
        );
    }
}
