//! A newer export of the same migration, ticket by ticket: which entries are new, which
//! the source removed or edited, and what final state changed.
//!
//! HappyFox cannot edit, delete or backdate an update, so a delta only ever adds: the
//! entries whose key the journal has not seen, posted after what is there (an entry older
//! than one already posted keeps its original time in its header and is counted as out
//! of order), and one private note carrying only the state that changed. What it cannot
//! apply (an entry removed or edited in the source, a record deleted there) is reported
//! with its ticket and entry, never silently dropped.
//!
//! A ticket HappyFox cannot hold yet (never created) simply takes the newer export's
//! conversation in place of the old one.

use serde_json::{Map, Value as Json, json};

use crate::journal::{Finding, FindingKind, KnownMessage, KnownTicket, NewMessage, TicketDelta};
use crate::payload::conversation::{FINAL_NOTE_KEY, MessageKind, message_content, short_hash};
use crate::payload::{ATTACHMENTS_KEY, TicketPlan};
use crate::schema::Schema;

/// The fields of a ticket's state a delta compares: set at creation or by a later post.
fn is_state_key(k: &str) -> bool {
    matches!(k, "status" | "priority" | "assignee" | "tags") || k.starts_with("t-cf-")
}

/// Entry kinds the source has; the migration's own notes are not reported as removed.
fn is_entry_kind(kind: &str) -> bool {
    matches!(kind, "staff_reply" | "private_note" | "contact_reply")
}

/// The state the newer export wants the ticket in.
pub(crate) fn wanted_state(t: &TicketPlan, schema: &Schema) -> Map<String, Json> {
    let mut w: Map<String, Json> = t
        .payload
        .iter()
        .filter(|(k, _)| is_state_key(k))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if let Some(status) = t
        .final_state
        .status
        .or_else(|| schema.default_status().map(|s| s.id))
    {
        w.insert("status".into(), json!(status));
    }
    for (k, v) in &t.final_state.custom_fields {
        w.insert(k.clone(), v.clone());
    }
    w
}

/// The state the journal's posts leave the ticket in: its create payload, the default
/// status, then every post that has not failed, in order.
fn applied_state<'a>(
    created: &str,
    default_status: Option<u64>,
    posts: impl Iterator<Item = &'a str>,
) -> Map<String, Json> {
    fn overlay(state: &mut Map<String, Json>, payload: &str) {
        if let Ok(Json::Object(p)) = serde_json::from_str::<Json>(payload) {
            for (k, v) in p {
                if is_state_key(&k) {
                    state.insert(k, v);
                }
            }
        }
    }
    let mut state = Map::new();
    overlay(&mut state, created);
    if let Some(s) = default_status {
        state.entry("status").or_insert(json!(s));
    }
    for p in posts {
        overlay(&mut state, p);
    }
    state
}

/// What one ticket's delta amounts to, for the run's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tally {
    pub new_entries: u64,
    pub out_of_order: u64,
    pub state_updates: u64,
    pub removed: u64,
    pub changed: u64,
}

/// Everything a ticket's delta needs besides the journal's rows.
pub(crate) struct Wanted<'a> {
    pub source_id: &'a str,
    /// The newer export's messages, positions 1..n in posting order.
    pub planned: Vec<NewMessage>,
    pub state: Map<String, Json>,
    pub default_status: Option<u64>,
    /// The agent who signs the state note.
    pub closing_staff: Option<u64>,
}

fn known_content(m: &KnownMessage) -> String {
    match &m.content {
        Some(c) => c.clone(),
        None => match serde_json::from_str::<Json>(&m.payload) {
            Ok(Json::Object(body)) => message_content(&m.kind, &m.author, &body),
            _ => String::new(),
        },
    }
}

/// Decides what to write for one ticket.
pub(crate) fn plan_ticket(known: &KnownTicket, w: Wanted<'_>) -> (TicketDelta, Tally) {
    let mut tally = Tally::default();
    // Only a conversation none of whose posts may have left is replaced; anything else is
    // merged, whatever the record's state says.
    let unsent = known
        .messages
        .iter()
        .all(|m| matches!(m.state.as_str(), "pending" | "failed"));
    if !known.may_exist() && unsent {
        let delta = TicketDelta {
            replace: !known.messages.is_empty(),
            insert: w.planned,
            ..TicketDelta::default()
        };
        return (delta, tally);
    }
    let mut delta = TicketDelta::default();
    // For each planned message, the known row it is (by key, then by content).
    let mut matched: Vec<Option<usize>> = vec![None; w.planned.len()];
    let mut taken = vec![false; known.messages.len()];
    for (i, p) in w.planned.iter().enumerate() {
        let by_key = known
            .messages
            .iter()
            .position(|m| m.key.as_deref() == Some(p.key.as_str()));
        if let Some(j) = by_key.filter(|&j| !taken[j]) {
            matched[i] = Some(j);
            taken[j] = true;
        }
    }
    let contents: Vec<String> = known.messages.iter().map(known_content).collect();
    for (i, p) in w.planned.iter().enumerate() {
        if matched[i].is_some() {
            continue;
        }
        if let Some(j) = (0..known.messages.len()).find(|&j| !taken[j] && contents[j] == p.content)
        {
            matched[i] = Some(j);
            taken[j] = true;
            delta
                .rekey
                .push((known.messages[j].id, p.key.clone(), p.content.clone()));
        }
    }
    for (i, p) in w.planned.iter().enumerate() {
        if let Some(j) = matched[i] {
            let m = &known.messages[j];
            let compared = is_entry_kind(&m.kind) || m.kind == MessageKind::Transcript.name();
            if compared && contents[j] != p.content {
                tally.changed += 1;
                delta.findings.push(Finding {
                    ticket: w.source_id.to_string(),
                    entry: p.key.clone(),
                    kind: FindingKind::Changed,
                    detail: format!(
                        "this {} says something else in the newer export; HappyFox keeps the text that was posted",
                        m.kind.replace('_', " ")
                    ),
                });
            }
        }
    }
    for (j, m) in known.messages.iter().enumerate() {
        if taken[j] || !is_entry_kind(&m.kind) {
            continue;
        }
        tally.removed += 1;
        let posted = match m.state.as_str() {
            "created" => "HappyFox keeps it",
            "sending" => "it may already be in HappyFox, which keeps it",
            _ => "it was never posted and will still be posted, as the journal planned",
        };
        delta.findings.push(Finding {
            ticket: w.source_id.to_string(),
            entry: m.key.clone().unwrap_or_else(|| format!("#{}", m.position)),
            kind: FindingKind::Removed,
            detail: format!(
                "this {} is not in the newer export; {posted}",
                m.kind.replace('_', " ")
            ),
        });
    }
    // New messages go after everything the ticket has, in the export's order. The closing
    // note is the old plan's business: a changed state gets its own note below.
    // The closing note always comes last: only entries say what is out of order.
    let last_matched = (0..w.planned.len())
        .filter(|&i| matched[i].is_some() && is_entry_kind(&w.planned[i].kind))
        .max();
    let mut next = known.messages.iter().map(|m| m.position).max().unwrap_or(0) + 1;
    for (i, p) in w.planned.iter().enumerate() {
        if matched[i].is_some() || p.key == FINAL_NOTE_KEY {
            continue;
        }
        if is_entry_kind(&p.kind) {
            tally.new_entries += 1;
            if last_matched.is_some_and(|l| l > i) {
                tally.out_of_order += 1;
            }
        }
        let mut m = p.clone();
        m.position = next;
        next += 1;
        delta.insert.push(m);
    }
    let created = known
        .record
        .as_ref()
        .map(|(_, p)| p.as_str())
        .unwrap_or("{}");
    let posts = known
        .messages
        .iter()
        .filter(|m| m.state != "failed")
        .map(|m| m.payload.as_str())
        .chain(delta.insert.iter().map(|m| m.payload.as_str()));
    let applied = applied_state(created, w.default_status, posts);
    let mut changed: Map<String, Json> = w
        .state
        .iter()
        .filter(|(k, v)| applied.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if applied.contains_key("assignee") && !w.state.contains_key("assignee") {
        // The documented way to leave a ticket unassigned.
        changed.insert("assignee".into(), Json::Null);
    }
    if !changed.is_empty() {
        let names: Vec<&str> = changed.keys().map(String::as_str).collect();
        match w.closing_staff {
            Some(staff) => {
                let mut body = changed.clone();
                body.insert("staff".into(), json!(staff));
                body.insert(
                    "html".into(),
                    json!(format!(
                        "<p><i>Updated by hfmigrate from a newer export of the old helpdesk: {}.</i></p>",
                        names.join(", ")
                    )),
                );
                let key = format!(
                    "state:{}",
                    short_hash(&[&Json::Object(changed.clone()).to_string()])
                );
                let content = message_content("final_note", "", &body);
                debug_assert!(!body.contains_key(ATTACHMENTS_KEY));
                tally.state_updates += 1;
                delta.insert.push(NewMessage {
                    position: next,
                    key,
                    content,
                    kind: "final_note".into(),
                    author: String::new(),
                    author_name: String::new(),
                    payload: Json::Object(body).to_string(),
                });
            }
            None => delta.findings.push(Finding {
                ticket: w.source_id.to_string(),
                entry: "-".into(),
                kind: FindingKind::StateNotApplied,
                detail: format!(
                    "{} changed in the newer export, but no active agent can sign the update that would apply it",
                    names.join(", ")
                ),
            }),
        }
    }
    (delta, tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::conversation::TRANSCRIPT_KEY;

    fn planned(key: &str, text: &str, position: i64) -> NewMessage {
        let body = json!({"staff": 1, "html": text});
        let Json::Object(map) = &body else {
            unreachable!()
        };
        NewMessage {
            position,
            key: key.into(),
            content: message_content("staff_reply", "a@x.co", map),
            kind: "staff_reply".into(),
            author: "a@x.co".into(),
            author_name: String::new(),
            payload: body.to_string(),
        }
    }

    fn known(m: &NewMessage, id: i64, state: &str, legacy: bool) -> KnownMessage {
        KnownMessage {
            id,
            position: m.position,
            key: (!legacy).then(|| m.key.clone()),
            content: (!legacy).then(|| m.content.clone()),
            kind: m.kind.clone(),
            author: m.author.clone(),
            payload: m.payload.clone(),
            state: state.into(),
        }
    }

    fn created(messages: Vec<KnownMessage>) -> KnownTicket {
        KnownTicket {
            record: Some(("created".into(), r#"{"priority":1}"#.into())),
            messages,
        }
    }

    fn wanted(planned: Vec<NewMessage>, status: u64) -> Wanted<'static> {
        let mut state = Map::new();
        state.insert("priority".into(), json!(1));
        state.insert("status".into(), json!(status));
        Wanted {
            source_id: "T1",
            planned,
            state,
            default_status: Some(1),
            closing_staff: Some(9),
        }
    }

    #[test]
    fn only_entries_with_new_keys_are_added_after_the_known_ones() {
        let a = planned("id:1", "<p>a</p>", 1);
        let b = planned("id:2", "<p>b</p>", 2);
        let ticket = created(vec![
            known(&a, 10, "created", false),
            known(&b, 11, "created", false),
        ]);
        let older = planned("id:0", "<p>older</p>", 1);
        let newer = planned("id:3", "<p>newer</p>", 4);
        let mut closing = planned(FINAL_NOTE_KEY, "<p>closing</p>", 5);
        closing.kind = "final_note".into();
        let mut ticket = ticket;
        ticket.messages.push(known(&closing, 12, "created", false));
        let new_plan = vec![
            older,
            planned("id:1", "<p>a</p>", 2),
            planned("id:2", "<p>b</p>", 3),
            newer,
            closing,
        ];
        let (d, t) = plan_ticket(&ticket, wanted(new_plan, 1));
        let keys: Vec<(&str, i64)> = d
            .insert
            .iter()
            .map(|m| (m.key.as_str(), m.position))
            .collect();
        assert_eq!(keys, [("id:0", 6), ("id:3", 7)]);
        assert_eq!(
            (t.new_entries, t.out_of_order, t.removed, t.changed),
            (2, 1, 0, 0)
        );
        assert!(!d.replace);
    }

    #[test]
    fn the_same_export_again_adds_nothing() {
        let a = planned("id:1", "<p>a</p>", 1);
        let ticket = created(vec![known(&a, 10, "created", false)]);
        let (d, t) = plan_ticket(&ticket, wanted(vec![a], 1));
        assert_eq!(d, TicketDelta::default());
        assert_eq!(t, Tally::default());
    }

    #[test]
    fn rows_of_an_older_journal_are_recognised_by_their_content() {
        let a = planned("h:abc", "<p>a</p>", 1);
        let ticket = created(vec![known(&a, 10, "created", true)]);
        let (d, t) = plan_ticket(&ticket, wanted(vec![planned("id:1", "<p>a</p>", 1)], 1));
        assert!(d.insert.is_empty(), "{d:?}");
        assert_eq!(d.rekey, [(10, "id:1".to_string(), a.content.clone())]);
        assert_eq!(t, Tally::default());
    }

    #[test]
    fn removed_and_edited_entries_are_reported_not_posted() {
        let a = planned("id:1", "<p>a</p>", 1);
        let b = planned("id:2", "<p>b</p>", 2);
        let ticket = created(vec![
            known(&a, 10, "created", false),
            known(&b, 11, "created", false),
        ]);
        let (d, t) = plan_ticket(
            &ticket,
            wanted(vec![planned("id:1", "<p>a, edited</p>", 1)], 1),
        );
        assert!(d.insert.is_empty(), "{d:?}");
        let found: Vec<(&str, FindingKind)> = d
            .findings
            .iter()
            .map(|f| (f.entry.as_str(), f.kind))
            .collect();
        assert_eq!(
            found,
            [
                ("id:1", FindingKind::Changed),
                ("id:2", FindingKind::Removed)
            ]
        );
        assert_eq!((t.changed, t.removed), (1, 1));
    }

    #[test]
    fn a_transcript_whose_entries_changed_is_reported_not_posted_again() {
        let transcript = |text: &str| {
            let mut m = planned(TRANSCRIPT_KEY, text, 1);
            m.kind = MessageKind::Transcript.name().into();
            m.content = {
                let Ok(Json::Object(body)) = serde_json::from_str(&m.payload) else {
                    unreachable!()
                };
                message_content(&m.kind, &m.author, &body)
            };
            m
        };
        let posted = transcript("<p>a</p>");
        let ticket = created(vec![known(&posted, 10, "created", false)]);
        let (d, t) = plan_ticket(&ticket, wanted(vec![transcript("<p>a</p><p>b</p>")], 1));
        assert!(d.insert.is_empty(), "{d:?}");
        assert_eq!(t.changed, 1);
        assert_eq!(d.findings[0].kind, FindingKind::Changed);
        assert!(
            d.findings[0].detail.contains("transcript"),
            "{:?}",
            d.findings
        );
    }

    #[test]
    fn a_changed_status_is_one_note_carrying_only_what_changed() {
        let a = planned("id:1", "<p>a</p>", 1);
        let ticket = created(vec![known(&a, 10, "created", false)]);
        let (d, t) = plan_ticket(&ticket, wanted(vec![a.clone()], 5));
        assert_eq!(t.state_updates, 1);
        let [note] = d.insert.as_slice() else {
            panic!("{d:?}")
        };
        let body: Json = serde_json::from_str(&note.payload).unwrap();
        assert_eq!(body["status"], json!(5));
        assert!(
            body.get("priority").is_none(),
            "unchanged priority resent: {body}"
        );
        assert_eq!((note.kind.as_str(), note.position), ("final_note", 2));
        // Applied once: the journal now holds the note, so the same export adds nothing.
        let mut again = ticket.clone();
        again.messages.push(known(note, 12, "created", false));
        let (d, _) = plan_ticket(&again, wanted(vec![a], 5));
        assert_eq!(d, TicketDelta::default());
    }

    #[test]
    fn a_ticket_never_created_takes_the_newer_conversation_whole() {
        let a = planned("id:1", "<p>a</p>", 1);
        let ticket = KnownTicket {
            record: Some(("pending".into(), "{}".into())),
            messages: vec![known(&a, 10, "pending", false)],
        };
        let b = planned("id:2", "<p>b</p>", 1);
        let (d, _) = plan_ticket(&ticket, wanted(vec![b.clone()], 1));
        assert!(d.replace);
        assert_eq!(d.insert, std::slice::from_ref(&b));
        // A post that may have left is never replaced, whatever the record says.
        let mut sent = ticket.clone();
        sent.messages[0].state = "sending".into();
        let (d, _) = plan_ticket(&sent, wanted(vec![b.clone()], 1));
        assert!(!d.replace);
        assert_eq!(d.insert[0].key, b.key);
        assert_eq!(d.insert[0].position, 2, "after the row that may be posted");
    }
}
