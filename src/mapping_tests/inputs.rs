//! A test case's records written as export files in the shape the mapping reads, so a case
//! runs through the same readers, side-file indexes and builder as a real export.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::source::{Format, ReadOptions, format_from_extension};

/// Writes `records` to `dir/name.<ext>` as the mapping's `read` options and `pattern`
/// (the file name the mapping gives) expect; returns the path.
pub(super) fn write_records(
    dir: &Path,
    name: &str,
    pattern: &str,
    read: &ReadOptions,
    records: &[Value],
) -> Result<PathBuf, String> {
    let format = match read.format {
        Some(f) => f,
        None => format_from_extension(Path::new(pattern)).map_err(|e| e.to_string())?,
    };
    let ext = match format {
        Format::Csv => "csv",
        Format::Json => "json",
        Format::Ndjson => "ndjson",
    };
    let path = dir.join(format!("{name}.{ext}"));
    let text = match format {
        Format::Json => json_document(read.records.as_deref(), records)?,
        Format::Ndjson => records.iter().map(|r| format!("{r}\n")).collect::<String>(),
        Format::Csv => csv_text(read.delimiter, records)?,
    };
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// `{"a": {"b": [records]}}` for `records: a.b`, the bare list without a path.
/// `records: .` is one record per file: the record is the document.
fn json_document(records_path: Option<&str>, records: &[Value]) -> Result<String, String> {
    if records_path == Some(".") {
        return match records {
            [one] => Ok(one.to_string()),
            _ => Err(format!(
                "this file is read with `records: .` (one record per file), so a case gives it exactly one record, not {}",
                records.len()
            )),
        };
    }
    let mut doc = Value::Array(records.to_vec());
    if let Some(path) = records_path {
        for part in path.rsplit('.') {
            let mut m = Map::new();
            m.insert(part.to_string(), doc);
            doc = Value::Object(m);
        }
    }
    Ok(doc.to_string())
}

/// A CSV file with one column per key of the records (in first-seen order); a list value
/// repeats its column, as exports with repeated headers do.
fn csv_text(delimiter: u8, records: &[Value]) -> Result<String, String> {
    let mut columns: Vec<(String, usize)> = vec![];
    for r in records {
        let Value::Object(m) = r else {
            return Err("a CSV record must be a mapping of column names to values".into());
        };
        for (k, v) in m {
            let width = match v {
                Value::Array(a) => a.len().max(1),
                _ => 1,
            };
            match columns.iter_mut().find(|(c, _)| c == k) {
                Some((_, w)) => *w = (*w).max(width),
                None => columns.push((k.clone(), width)),
            }
        }
    }
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(vec![]);
    let header: Vec<&str> = columns
        .iter()
        .flat_map(|(c, n)| std::iter::repeat_n(c.as_str(), *n))
        .collect();
    let io = |e: csv::Error| e.to_string();
    if !header.is_empty() {
        w.write_record(&header).map_err(io)?;
    }
    for r in records {
        let mut row = vec![];
        for (c, n) in &columns {
            let cells: Vec<String> = match r.get(c) {
                Some(Value::Array(a)) => a.iter().map(cell).collect(),
                Some(v) => vec![cell(v)],
                None => vec![],
            };
            row.extend((0..*n).map(|i| cells.get(i).cloned().unwrap_or_default()));
        }
        w.write_record(&row).map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_come_back_through_the_readers() {
        let dir = tempfile::tempdir().unwrap();
        let recs = [json!({"id": 1, "s": "a"})];
        for (pattern, records) in [("t.json", Some("data.items")), ("t.ndjson", None)] {
            let read = ReadOptions {
                records: records.map(str::to_string),
                ..ReadOptions::default()
            };
            let p = write_records(dir.path(), "x", pattern, &read, &recs).unwrap();
            let got: Vec<Value> = crate::source::read(&p, &read)
                .unwrap()
                .map(|r| r.unwrap().value.into_json())
                .collect();
            assert_eq!(got, recs, "{pattern}");
        }
        let csv = [json!({"Ticket ID": 7, "Comment": ["a", "b,c"]})];
        let read = ReadOptions::default();
        let p = write_records(dir.path(), "y", "t*.csv", &read, &csv).unwrap();
        let got: Vec<Value> = crate::source::read(&p, &read)
            .unwrap()
            .map(|r| r.unwrap().value.into_json())
            .collect();
        assert_eq!(got, [json!({"Ticket ID": "7", "Comment": ["a", "b,c"]})]);
    }
}
