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
    /// How each source field's values are shaped, from the records that hold one.
    pub shapes: IndexMap<String, Shape>,
}

/// How a preset finds the custom fields of one record in the source's own shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceFields {
    /// Zendesk: `custom_fields: [{id, value}]`.
    IdValueList,
    /// An object of fields by API name, at a dotted path (`""`: the record itself), its
    /// keys starting with `prefix`: Freshdesk `custom_fields` (`cf_`), Zoho `cf` (`cf_`),
    /// Jira `fields` (`customfield_`), ServiceNow's own `u_` columns, Intercom
    /// `custom_attributes`.
    Object {
        at: &'static str,
        prefix: &'static str,
    },
    /// Help Scout: `customFields: [{name, text}]`, `text` being a drop-down's label.
    NameList { at: &'static str },
    /// CSV: every column.
    Columns,
}

/// How the values of one source field are shaped, so the drafted template reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The values are objects whose label is this attribute (Jira options `{value}`).
    pub attr: Option<&'static str>,
    /// The values are lists (multi-selects).
    pub list: bool,
}

/// The attributes that name an object value: Jira options and users, ServiceNow
/// display values.
const LABEL_ATTRS: [&str; 4] = ["value", "name", "displayName", "display_value"];

impl SourceFields {
    /// The template a mapping reads one source field with.
    pub(crate) fn template(self, key: &str, shape: Shape) -> String {
        match self {
            SourceFields::IdValueList => format!("{{{{ custom_fields | field({key}) }}}}"),
            SourceFields::Object { at, .. } => {
                let path = path_to(at, key);
                match shape {
                    Shape {
                        attr: Some(a),
                        list: true,
                    } => {
                        format!("{{{{ {path} | map(attribute='{a}') | list if {path} else [] }}}}")
                    }
                    Shape {
                        attr: Some(a),
                        list: false,
                    } => format!("{{{{ {path}.{a} }}}}"),
                    Shape { attr: None, .. } => format!("{{{{ {path} }}}}"),
                }
            }
            SourceFields::NameList { at } => format!(
                "{{{{ {at} | selectattr('name', 'eq', {}) | map(attribute='text') | first if {at} }}}}",
                quote_single(key)
            ),
            SourceFields::Columns => format!("{{{{ row[{}] }}}}", quote_single(key)),
        }
    }

    /// Whether the mapping's text reads the source field `key`.
    pub(crate) fn read_by(self, mapping: &str, key: &str) -> bool {
        match self {
            SourceFields::IdValueList => mapping.contains(&format!("field({key})")),
            SourceFields::Object { at: "", .. } => word_in(mapping, key),
            SourceFields::Object { at, .. } => {
                word_in(mapping, &format!("{at}.{key}"))
                    || mapping.contains(&format!("{at}[{}]", quote_single(key)))
                    || mapping.contains(&format!("{at}[{key:?}]"))
            }
            SourceFields::NameList { .. } => {
                mapping.contains(&format!("'eq', {}", quote_single(key)))
                    || mapping.contains(&format!("\"eq\", {key:?}"))
            }
            SourceFields::Columns => {
                mapping.contains(&format!("row[{}]", quote_single(key)))
                    || mapping.contains(&format!("row[{key:?}]"))
            }
        }
    }

    /// A name for the key when the export defines none: its API name without the
    /// system's prefix, `_` as spaces (`cf_order_value` → `order value`).
    pub(crate) fn label(self, key: &str) -> String {
        match self {
            SourceFields::Object { prefix, .. } => {
                let k = key.strip_prefix(prefix).unwrap_or(key);
                let k = k.strip_prefix("cf_").unwrap_or(k);
                k.replace('_', " ")
            }
            _ => key.to_string(),
        }
    }

    /// Whether a key is only a number without a definition (Zendesk ids, Jira
    /// `customfield_10050`): matching it by name would match nothing real.
    pub(crate) fn needs_definition(self, key: &str) -> bool {
        match self {
            SourceFields::IdValueList => true,
            SourceFields::Object { .. } => {
                let l = self.label(key);
                !l.is_empty() && l.chars().all(|c| c.is_ascii_digit())
            }
            _ => false,
        }
    }

    fn each(self, record: &Json, mut f: impl FnMut(String, Vec<String>, usize, Shape)) {
        match self {
            SourceFields::IdValueList => {
                for item in record
                    .get("custom_fields")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(id) = item.get("id").and_then(crate::source::key_string) {
                        let v = item.get("value").unwrap_or(&Json::Null);
                        f(id, json_items(v), 1, shape_of(v));
                    }
                }
            }
            SourceFields::Object { at, prefix } => {
                let object = if at.is_empty() {
                    Some(record)
                } else {
                    at.split('.').try_fold(record, |v, k| v.get(k))
                };
                for (k, v) in object.and_then(Json::as_object).into_iter().flatten() {
                    if k.starts_with(prefix) {
                        f(k.clone(), json_items(v), 1, shape_of(v));
                    }
                }
            }
            SourceFields::NameList { at } => {
                for item in record
                    .get(at)
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = item.get("name").and_then(Json::as_str) {
                        let v = item.get("text").unwrap_or(&Json::Null);
                        f(name.to_string(), json_items(v), 1, Shape::default());
                    }
                }
            }
            SourceFields::Columns => {
                for (k, v) in record.as_object().into_iter().flatten() {
                    let repeats = v.as_array().map_or(1, Vec::len);
                    f(k.clone(), json_items(v), repeats, Shape::default());
                }
            }
        }
    }
}

/// `at.key`, or `key` for the record itself; `at['key']` when the key is no identifier.
fn path_to(at: &str, key: &str) -> String {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_alphanumeric() || c == '_');
    match (at.is_empty(), ident) {
        (true, _) => key.to_string(),
        (false, true) => format!("{at}.{key}"),
        (false, false) => format!("{at}[{}]", quote_single(key)),
    }
}

/// Whether `word` occurs in `text` with no identifier character (or `.`) right before
/// it and none right after it.
fn word_in(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| ident(c) || c == '.') && !after.is_some_and(ident)
    })
}

fn shape_of(v: &Json) -> Shape {
    let label = |o: &Json| {
        LABEL_ATTRS
            .into_iter()
            .find(|a| o.get(*a).is_some_and(Json::is_string))
    };
    match v {
        Json::Object(_) => Shape {
            attr: label(v),
            list: false,
        },
        Json::Array(a) => Shape {
            attr: a.iter().find_map(label),
            list: true,
        },
        _ => Shape::default(),
    }
}

fn quote_single(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The values one source field holds, as text: an object by its label attribute.
fn json_items(v: &Json) -> Vec<String> {
    match v {
        Json::Null => vec![],
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().flat_map(json_items).collect(),
        Json::Object(_) => match LABEL_ATTRS.into_iter().find_map(|a| v.get(a)) {
            Some(Json::String(s)) => vec![s.clone()],
            _ => vec![v.to_string()],
        },
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
        fields.each(record, |key, items, repeats, shape| {
            let seen = self.shapes.entry(key.clone()).or_default();
            seen.attr = seen.attr.or(shape.attr);
            seen.list |= shape.list;
            self.source.entry(key.clone()).or_default().add(items);
            let r = self.repeats.entry(key).or_insert(1);
            *r = (*r).max(repeats);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JIRA: SourceFields = SourceFields::Object {
        at: "fields",
        prefix: "customfield_",
    };
    const SERVICENOW: SourceFields = SourceFields::Object {
        at: "",
        prefix: "u_",
    };

    fn each(fields: SourceFields, record: &str) -> Vec<(String, Vec<String>, Shape)> {
        let record: Json = serde_json::from_str(record).unwrap();
        let mut out = vec![];
        fields.each(&record, |k, items, _, shape| out.push((k, items, shape)));
        out
    }

    #[test]
    fn jira_options_are_read_by_their_value_and_only_custom_fields_count() {
        let got = each(
            JIRA,
            r#"{"fields": {"summary": "x", "customfield_1": {"value": "Gold", "id": "7"},
                "customfield_2": [{"value": "A"}, {"value": "B"}], "customfield_3": null}}"#,
        );
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].1, ["Gold"]);
        assert_eq!(
            JIRA.template("customfield_1", got[0].2),
            "{{ fields.customfield_1.value }}"
        );
        assert_eq!(got[1].1, ["A", "B"]);
        assert_eq!(
            JIRA.template("customfield_2", got[1].2),
            "{{ fields.customfield_2 | map(attribute='value') | list if fields.customfield_2 else [] }}"
        );
        assert!(JIRA.needs_definition("customfield_3"));
    }

    #[test]
    fn a_field_is_read_by_a_mapping_only_as_a_whole_name() {
        let mapping = "Product: \"{{ u_product }}\"\nx: \"{{ fields.customfield_10 | date }}\"";
        assert!(SERVICENOW.read_by(mapping, "u_product"));
        assert!(!SERVICENOW.read_by(mapping, "u_prod"));
        assert!(JIRA.read_by(mapping, "customfield_10"));
        assert!(!JIRA.read_by(mapping, "customfield_1"));
        assert_eq!(SERVICENOW.label("u_order_value"), "order value");
        let intercom = SourceFields::Object {
            at: "custom_attributes",
            prefix: "",
        };
        assert_eq!(
            intercom.template("Order Value", Shape::default()),
            "{{ custom_attributes['Order Value'] }}"
        );
        assert!(intercom.read_by("{{ custom_attributes['Order Value'] }}", "Order Value"));
    }

    #[test]
    fn help_scout_fields_are_read_by_name_and_label() {
        let hs = SourceFields::NameList { at: "customFields" };
        let got = each(
            hs,
            r#"{"customFields": [{"name": "Plan", "value": "61", "text": "Gold"}]}"#,
        );
        assert_eq!(got[0].0, "Plan");
        assert_eq!(got[0].1, ["Gold"]);
        let t = hs.template("Plan", Shape::default());
        assert!(hs.read_by(&t, "Plan"), "{t}");
    }
}
