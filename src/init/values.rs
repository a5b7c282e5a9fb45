//! The values an export actually holds: each value-mapped field of the preset evaluated on
//! every record read (exactly as the mapping will see it, side files included), and the
//! source's own custom fields and columns with their fill and example values.

use indexmap::IndexMap;
use minijinja::value::{Value, ValueKind};
use serde_json::Value as Json;

use crate::mapping::Plan;
use crate::mapping::template::{RecordInput, Sides, value_to_string};

/// The distinct values of one field, most frequent first once [`Counts::sorted`].
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    /// Records (or list items) per value, in first-seen order.
    pub values: IndexMap<String, u64>,
    /// Records where the field rendered empty.
    pub empty: u64,
    /// Records where it rendered something.
    pub filled: u64,
    /// Records whose template failed.
    pub failed: u64,
}

/// Distinct values kept per field: beyond this a field is free text, not an enumeration.
pub(crate) const MAX_DISTINCT: usize = 200;

impl Counts {
    fn add(&mut self, items: Vec<String>) {
        let items: Vec<String> = items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            self.empty += 1;
            return;
        }
        self.filled += 1;
        for i in items {
            if let Some(n) = self.values.get_mut(&i) {
                *n += 1;
            } else if self.values.len() < MAX_DISTINCT {
                self.values.insert(i, 1);
            }
        }
    }

    /// Values by count, then first seen.
    pub(crate) fn sorted(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.values.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.1));
        v
    }

    /// Up to `n` example values, most frequent first, quoted and cut for a comment.
    pub(crate) fn examples(&self, n: usize) -> String {
        self.sorted()
            .iter()
            .take(n)
            .map(|(v, _)| {
                let short: String = v.chars().take(40).collect();
                let short = short.replace('\n', " ");
                if short.chars().count() < v.chars().count() {
                    format!("{:?}", format!("{short}…"))
                } else {
                    format!("{short:?}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What was learnt from the records read.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub records: u64,
    pub unreadable: u64,
    /// Per plan field name (`ticket.priority`, `ticket.custom_fields.Product`).
    pub fields: IndexMap<String, Counts>,
    /// Per source custom field or column key, as [`SourceFields`] names them.
    pub source: IndexMap<String, Counts>,
    /// CSV: how many times each column's header repeats (1 for most).
    pub repeats: IndexMap<String, usize>,
}

/// How a preset finds the custom fields of one record in the source's own shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceFields {
    /// Zendesk: `custom_fields: [{id, value}]`.
    IdValueList,
    /// Freshdesk: `custom_fields: {cf_name: value}`.
    NamedObject,
    /// CSV: every column.
    Columns,
}

impl SourceFields {
    /// The template a mapping reads one source field with.
    pub(crate) fn template(self, key: &str) -> String {
        match self {
            SourceFields::IdValueList => format!("{{{{ custom_fields | field({key}) }}}}"),
            SourceFields::NamedObject => format!("{{{{ custom_fields.{key} }}}}"),
            SourceFields::Columns => format!("{{{{ row[{}] }}}}", quote_single(key)),
        }
    }

    /// What marks the field as read in a mapping's text.
    pub(crate) fn reference(self, key: &str) -> Vec<String> {
        match self {
            SourceFields::IdValueList => vec![format!("field({key})")],
            SourceFields::NamedObject => vec![
                format!("custom_fields.{key} "),
                format!("custom_fields.{key}}}"),
                format!("custom_fields.{key} |"),
            ],
            SourceFields::Columns => vec![
                format!("row[{}]", quote_single(key)),
                format!("row[{key:?}]"),
            ],
        }
    }

    fn each(self, record: &Json, mut f: impl FnMut(String, Vec<String>, usize)) {
        match self {
            SourceFields::IdValueList => {
                for item in record
                    .get("custom_fields")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(id) = item.get("id").and_then(crate::source::key_string) {
                        f(id, json_items(item.get("value").unwrap_or(&Json::Null)), 1);
                    }
                }
            }
            SourceFields::NamedObject => {
                for (k, v) in record
                    .get("custom_fields")
                    .and_then(Json::as_object)
                    .into_iter()
                    .flatten()
                {
                    f(k.clone(), json_items(v), 1);
                }
            }
            SourceFields::Columns => {
                for (k, v) in record.as_object().into_iter().flatten() {
                    let repeats = v.as_array().map_or(1, Vec::len);
                    f(k.clone(), json_items(v), repeats);
                }
            }
        }
    }
}

fn quote_single(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn json_items(v: &Json) -> Vec<String> {
    match v {
        Json::Null => vec![],
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().flat_map(json_items).collect(),
        other => vec![other.to_string()],
    }
}

fn value_items(v: &Value) -> Vec<String> {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => vec![],
        ValueKind::Seq => v
            .try_iter()
            .map(|it| it.map(|x| value_to_string(&x)).collect())
            .unwrap_or_default(),
        _ => vec![value_to_string(v)],
    }
}

impl Seen {
    /// Counts the value-mapped and custom fields of one record.
    pub(crate) fn add(
        &mut self,
        plan: &Plan,
        sides: &std::sync::Arc<Sides>,
        fields: SourceFields,
        record: &Json,
    ) {
        self.records += 1;
        let input = RecordInput::new(record, sides);
        for field in plan.fields() {
            if field.name.starts_with("conversation") || field.name.starts_with("source") {
                continue;
            }
            let counts = self.fields.entry(field.name.clone()).or_default();
            match field.expr.eval_record(&input) {
                Ok(v) => counts.add(value_items(&v)),
                Err(_) => counts.failed += 1,
            }
        }
        fields.each(record, |key, items, repeats| {
            self.source.entry(key.clone()).or_default().add(items);
            let r = self.repeats.entry(key).or_insert(1);
            *r = (*r).max(repeats);
        });
    }
}
