//! `hfmigrate results`: the journal as two spreadsheets, `success.csv` (what was created,
//! with links) and `errors.csv` (what to fix). Sources carry user text, so every cell a
//! spreadsheet would run as a formula is neutralised.

use crate::spreadsheet::neutralise;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Journal, JournalError};

/// What [`Journal::write_results`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultsWritten {
    pub success_csv: PathBuf,
    pub errors_csv: PathBuf,
    pub successes: u64,
    pub errors: u64,
}

impl Journal {
    /// Writes `success.csv` (source id, ticket id, display id, ticket URL) and `errors.csv`
    /// (file, line, source id, stage, error, attempts) into `dir`, streaming rows. Cells that
    /// a spreadsheet would run as a formula are neutralised.
    pub fn write_results(&self, dir: &Path) -> Result<ResultsWritten, JournalError> {
        let io = |path: &Path, source: std::io::Error| JournalError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let base = self.meta("target_url")?.unwrap_or_default();
        let success_csv = dir.join("success.csv");
        let errors_csv = dir.join("errors.csv");
        let csv_err = |path: &Path, e: csv::Error| io(path, std::io::Error::other(e.to_string()));

        let mut w = csv::Writer::from_path(&success_csv).map_err(|e| csv_err(&success_csv, e))?;
        w.write_record(["source_id", "ticket_id", "display_id", "ticket_url"])
            .map_err(|e| csv_err(&success_csv, e))?;
        let mut successes = 0;
        let mut stmt = self.conn.prepare(
            "SELECT source_id, happyfox_id, coalesce(display_id, '') FROM records
             WHERE state = 'created' ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let source_id: String = row.get(0)?;
            let id: Option<i64> = row.get(1)?;
            let display: String = row.get(2)?;
            let id = id.map(|i| i.to_string()).unwrap_or_default();
            let url = if base.is_empty() || id.is_empty() {
                String::new()
            } else {
                format!("{base}/staff/ticket/{id}")
            };
            w.write_record([
                neutralise(&source_id).as_ref(),
                id.as_str(),
                neutralise(&display).as_ref(),
                neutralise(&url).as_ref(),
            ])
            .map_err(|e| csv_err(&success_csv, e))?;
            successes += 1;
        }
        w.flush().map_err(|e| io(&success_csv, e))?;

        let mut w = csv::Writer::from_path(&errors_csv).map_err(|e| csv_err(&errors_csv, e))?;
        w.write_record(["file", "line", "source_id", "stage", "error", "attempts"])
            .map_err(|e| csv_err(&errors_csv, e))?;
        // Failed records, then conversation messages that failed (under their ticket; the
        // stage says which), then attachments left out of a ticket or message that was
        // posted without them. Every query gives the same six columns.
        const FAILURES: [&str; 3] = [
            "SELECT file, line, source_id, coalesce(stage, ''), coalesce(last_error, ''), attempts
             FROM records WHERE state = 'failed' ORDER BY file, line, id",
            "SELECT coalesce(r.file, ''), r.line, m.ticket_source_id,
                    'conversation #' || m.position || ' (' || m.kind || ')',
                    coalesce(m.last_error, ''), m.attempts
             FROM messages m LEFT JOIN records r ON r.source_id = m.ticket_source_id
             WHERE m.state = 'failed' ORDER BY r.id, m.position",
            "SELECT coalesce(r.file, ''), r.line, a.ticket_source_id, 'attachment', a.error, NULL
             FROM attachment_failures a LEFT JOIN records r ON r.source_id = a.ticket_source_id
             ORDER BY r.id, a.position, a.name",
        ];
        let mut errors = 0;
        for sql in FAILURES {
            let mut stmt = self.conn.prepare(sql)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let file: String = row.get(0)?;
                let line: Option<i64> = row.get(1)?;
                let source_id: String = row.get(2)?;
                let stage: String = row.get(3)?;
                let error: String = row.get(4)?;
                let attempts: Option<i64> = row.get(5)?;
                w.write_record([
                    neutralise(&file).as_ref(),
                    line.map(|l| l.to_string()).unwrap_or_default().as_str(),
                    neutralise(&source_id).as_ref(),
                    neutralise(&stage).as_ref(),
                    neutralise(&error).as_ref(),
                    attempts.map(|a| a.to_string()).unwrap_or_default().as_str(),
                ])
                .map_err(|e| csv_err(&errors_csv, e))?;
                errors += 1;
            }
        }
        w.flush().map_err(|e| io(&errors_csv, e))?;
        Ok(ResultsWritten {
            success_csv,
            errors_csv,
            successes,
            errors,
        })
    }
}
