//! The journal's tables, and how a file written by an older build is brought up to them.
//!
//! A journal outlives the build that wrote it (a resume may run a newer hfmigrate), so each
//! version's tables are one constant and [`migrate`] applies the missing ones in order.

use rusqlite::Connection;

/// The schema this build writes. Bump it and add a step to `migrate` when tables change.
pub(crate) const SCHEMA_VERSION: i64 = 4;
/// Marks the file as ours (`hfmj`), so a random SQLite file is not mistaken for a journal.
pub(super) const APPLICATION_ID: i64 = 0x6866_6d6a;

const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE inputs (
    path   TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    mtime  INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    tool_version TEXT NOT NULL,
    outcome      TEXT
);
CREATE TABLE batches (
    id          INTEGER PRIMARY KEY,
    run         INTEGER NOT NULL,
    state       TEXT NOT NULL,
    members     INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER,
    finished_at INTEGER
);
CREATE INDEX batches_state ON batches(state);
CREATE TABLE records (
    id           INTEGER PRIMARY KEY,
    source_id    TEXT NOT NULL UNIQUE,
    file         TEXT NOT NULL,
    line         INTEGER,
    payload_hash TEXT,
    state        TEXT NOT NULL,
    happyfox_id  INTEGER,
    display_id   TEXT,
    stage        TEXT,
    last_error   TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    batch        INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- Partial indexes: an entry exists only while a record waits (pending) or is in flight
-- (sending), so the two state changes of every ticket touch as little index as possible.
CREATE INDEX records_pending ON records(id) WHERE state = 'pending';
-- Payloads live apart from records so that the state changes written for every ticket
-- rewrite small rows, not kilobytes of payload (a record has a payload exactly when its
-- payload_hash is set).
CREATE TABLE payloads (
    record_id INTEGER PRIMARY KEY,
    payload   TEXT NOT NULL
);
CREATE INDEX records_in_flight ON records(batch) WHERE state = 'sending';
CREATE TABLE messages (
    id                 INTEGER PRIMARY KEY,
    ticket_source_id   TEXT NOT NULL,
    position           INTEGER NOT NULL,
    kind               TEXT NOT NULL,
    author             TEXT,
    author_name        TEXT,
    payload            TEXT,
    payload_hash       TEXT,
    state              TEXT NOT NULL,
    happyfox_update_id INTEGER,
    last_error         TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    updated_at         INTEGER NOT NULL,
    UNIQUE (ticket_source_id, position)
);
CREATE INDEX messages_state ON messages(state);
CREATE TABLE contacts (
    email TEXT PRIMARY KEY,
    id    INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 2: attachments that could not be sent (missing, too large, a failing URL)
/// while their ticket or message was. They are not a state of the ticket, which exists,
/// but the user must see them in `results`. `position` is the message's (0: the ticket's
/// own first message); a re-run that fails the same file again replaces its row.
const SCHEMA_V2: &str = "
CREATE TABLE attachment_failures (
    ticket_source_id TEXT NOT NULL,
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    error            TEXT NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (ticket_source_id, position, name)
) WITHOUT ROWID;
";

/// Version 3: when each write may still land. A request put on the wire by a run that
/// then died can reach HappyFox until its client-side deadline (the request timeout) has
/// passed, so a later run must not conclude "not created" before `deadline`. The running
/// process keeps pushing `deadline` to `now + lease` for its own requests in flight
/// ([`super::Journal::heartbeat`]), which covers time spent waiting for a pacing token or
/// retrying. `messages.run` says whose heartbeat a message's deadline follows.
const SCHEMA_V3: &str = "
ALTER TABLE batches ADD COLUMN deadline INTEGER;
ALTER TABLE batches ADD COLUMN lease INTEGER;
ALTER TABLE messages ADD COLUMN run INTEGER;
ALTER TABLE messages ADD COLUMN sent_at INTEGER;
ALTER TABLE messages ADD COLUMN deadline INTEGER;
ALTER TABLE messages ADD COLUMN lease INTEGER;
";

/// Version 4: delta runs. A message is known by its entry's key in the source (or a hash
/// of it), not by its position, so a newer export's new entries are told from old ones
/// whatever their order; `content_hash` tells an entry changed in the source. Rows of
/// older journals have neither and are recognised by the hash of their stored body.
/// `delta_findings` lists what a newer export changed that the import does not apply
/// (an entry removed or edited in the source, a record deleted there); `run_counts`
/// says what each run did, for `status`.
const SCHEMA_V4: &str = "
ALTER TABLE messages ADD COLUMN entry_key TEXT;
ALTER TABLE messages ADD COLUMN content_hash TEXT;
CREATE UNIQUE INDEX messages_entry_key ON messages(ticket_source_id, entry_key)
    WHERE entry_key IS NOT NULL;
CREATE TABLE delta_findings (
    ticket_source_id TEXT NOT NULL,
    entry_key        TEXT NOT NULL,
    finding          TEXT NOT NULL,
    detail           TEXT NOT NULL,
    run              INTEGER NOT NULL,
    PRIMARY KEY (ticket_source_id, entry_key, finding)
) WITHOUT ROWID;
CREATE TABLE run_counts (
    run           INTEGER PRIMARY KEY,
    delta         INTEGER NOT NULL,
    new_tickets   INTEGER NOT NULL,
    new_entries   INTEGER NOT NULL,
    out_of_order  INTEGER NOT NULL,
    state_updates INTEGER NOT NULL,
    removed       INTEGER NOT NULL,
    changed       INTEGER NOT NULL,
    deleted       INTEGER NOT NULL
);
";

/// Brings a journal of an older version up to [`SCHEMA_VERSION`], one step per version,
/// inside the caller's transaction.
pub(super) fn migrate(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    if from < 1 {
        conn.execute_batch(SCHEMA_V1)?;
    }
    if from < 2 {
        conn.execute_batch(SCHEMA_V2)?;
    }
    if from < 3 {
        conn.execute_batch(SCHEMA_V3)?;
    }
    if from < 4 {
        conn.execute_batch(SCHEMA_V4)?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(())
}
