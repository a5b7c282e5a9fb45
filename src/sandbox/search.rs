//! The `q` search language of `GET tickets/` and `GET users/`.
//!
//! An importer finds what a crashed run already created by searching for its own markers
//! (`"Source ID":"ZD-1"`, `tag:"migrated"`), so the sandbox must read queries exactly as
//! documented: `name:"value"` terms separated by spaces or `+`, multi-word names quoted,
//! no space after the colon, comma-separated alternatives. An unknown field is a 400 here
//! rather than an empty result, so a typo in a reconcile query cannot pass for "nothing
//! was created".

use jiff::civil::Date;

use super::store::{Contact, Seconds, Store, Ticket};
use super::validate::{self as v, CfValue};
use crate::schema::{FieldType, Schema, same_name};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SearchError {
    #[error("unterminated quote in search query")]
    Unterminated,
    #[error("missing value after `{0}:`")]
    MissingValue(String),
    #[error("unknown search field `{0}`")]
    UnknownField(String),
    #[error("`{0}` is not a date in yyyy/mm/dd format")]
    BadDate(String),
    #[error("`{1}` is not a valid value for `{0}`")]
    BadValue(String, String),
}

/// One search term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Term {
    /// `name:value[,value...]`.
    Field { name: String, values: Vec<String> },
    /// A word or quoted phrase without a field name.
    Text(String),
}

fn is_sep(c: char) -> bool {
    c.is_whitespace() || c == '+'
}

/// Reads a quoted string starting after the opening quote; returns it and the rest.
fn quoted(s: &str) -> Result<(&str, &str), SearchError> {
    let end = s.find('"').ok_or(SearchError::Unterminated)?;
    Ok((&s[..end], &s[end + 1..]))
}

/// Splits a query into terms.
pub fn parse(q: &str) -> Result<Vec<Term>, SearchError> {
    let mut terms = Vec::new();
    let mut rest = q;
    loop {
        rest = rest.trim_start_matches(is_sep);
        if rest.is_empty() {
            return Ok(terms);
        }
        let (head, after) = if let Some(r) = rest.strip_prefix('"') {
            quoted(r)?
        } else {
            let end = rest
                .find(|c: char| is_sep(c) || c == ':' || c == '"')
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        let Some(mut r) = after.strip_prefix(':') else {
            if !head.is_empty() {
                terms.push(Term::Text(head.to_string()));
            }
            rest = after;
            continue;
        };
        let mut values = Vec::new();
        loop {
            let (value, after) = if let Some(q) = r.strip_prefix('"') {
                quoted(q)?
            } else {
                let end = r.find(|c: char| is_sep(c) || c == ',').unwrap_or(r.len());
                if end == 0 {
                    return Err(SearchError::MissingValue(head.to_string()));
                }
                (&r[..end], &r[end..])
            };
            values.push(value.to_string());
            match after.strip_prefix(',') {
                Some(more) => r = more,
                None => {
                    r = after;
                    break;
                }
            }
        }
        terms.push(Term::Field {
            name: head.to_string(),
            values,
        });
        rest = r;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateOp {
    On,
    OnOrBefore,
    OnOrAfter,
    Before,
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateField {
    Created,
    LastModified,
    LastStaffReplied,
    LastContactReplied,
    LastClosed,
}

/// A search term resolved against the schema, ready to test tickets.
#[derive(Debug, Clone)]
enum Filter {
    Tags(Vec<String>),
    Statuses(Vec<u64>),
    Priorities(Vec<u64>),
    Contact(Vec<String>),
    Ids(Vec<String>),
    Assignee(Vec<String>),
    HasAttachments(bool),
    Unresponded(bool),
    Date(DateField, DateOp, Date),
    TicketField(u64, FieldType, Vec<String>),
    ContactField(u64, FieldType, Vec<String>),
    Text(String),
}

/// A compiled ticket query: all terms must match.
#[derive(Debug, Clone, Default)]
pub(crate) struct TicketQuery(Vec<Filter>);

fn date_term(name: &str) -> Option<(DateField, DateOp)> {
    let (field, op) = [
        ("created-", DateField::Created),
        ("last-modified-", DateField::LastModified),
        ("last-staff-replied-", DateField::LastStaffReplied),
        ("last-contact-replied-", DateField::LastContactReplied),
        ("last-closed-", DateField::LastClosed),
    ]
    .into_iter()
    .find_map(|(p, f)| name.strip_prefix(p).map(|op| (f, op)))?;
    let op = match op {
        "on" => DateOp::On,
        "on-or-before" => DateOp::OnOrBefore,
        "on-or-after" => DateOp::OnOrAfter,
        "before" => DateOp::Before,
        "after" => DateOp::After,
        _ => return None,
    };
    Some((field, op))
}

fn bool_value(name: &str, values: &[String]) -> Result<bool, SearchError> {
    match values {
        [one] if one == "true" => Ok(true),
        [one] if one == "false" => Ok(false),
        _ => Err(SearchError::BadValue(name.into(), values.join(","))),
    }
}

impl TicketQuery {
    pub(crate) fn compile(schema: &Schema, q: &str) -> Result<TicketQuery, SearchError> {
        let mut filters = Vec::new();
        for term in parse(q)? {
            let (name, values) = match term {
                Term::Text(t) => {
                    filters.push(Filter::Text(t.to_lowercase()));
                    continue;
                }
                Term::Field { name, values } => (name, values),
            };
            let key = name.to_ascii_lowercase();
            let by_names = |names: &[String], all: Vec<(u64, &str)>| -> Vec<u64> {
                all.into_iter()
                    .filter(|(_, n)| names.iter().any(|w| same_name(w, n)))
                    .map(|(id, _)| id)
                    .collect()
            };
            let f = match key.as_str() {
                "tag" | "tags" => Filter::Tags(values),
                "status" => Filter::Statuses(by_names(
                    &values,
                    schema
                        .statuses
                        .iter()
                        .map(|s| (s.id, s.name.as_str()))
                        .collect(),
                )),
                "priority" => Filter::Priorities(by_names(
                    &values,
                    schema
                        .priorities
                        .iter()
                        .map(|s| (s.id, s.name.as_str()))
                        .collect(),
                )),
                "contact" => Filter::Contact(values.iter().map(|s| s.to_lowercase()).collect()),
                "id" => Filter::Ids(values),
                "assignee" => Filter::Assignee(values),
                "has_attachments" => Filter::HasAttachments(bool_value(&key, &values)?),
                "unresponded" => Filter::Unresponded(bool_value(&key, &values)?),
                _ => {
                    if let Some((field, op)) = date_term(&key) {
                        let [value] = values.as_slice() else {
                            return Err(SearchError::BadDate(values.join(",")));
                        };
                        let d = v::parse_search_date(value)
                            .ok_or_else(|| SearchError::BadDate(value.clone()))?;
                        Filter::Date(field, op, d)
                    } else if let Some(f) = schema
                        .ticket_custom_fields
                        .iter()
                        .find(|f| same_name(&f.name, &name))
                    {
                        Filter::TicketField(f.id, f.kind.clone(), values)
                    } else if let Some(f) = schema
                        .user_custom_fields
                        .iter()
                        .find(|f| same_name(&f.name, &name))
                    {
                        Filter::ContactField(f.id, f.kind.clone(), values)
                    } else {
                        return Err(SearchError::UnknownField(name));
                    }
                }
            };
            filters.push(f);
        }
        Ok(TicketQuery(filters))
    }

    pub fn matches(&self, schema: &Schema, store: &Store, t: &Ticket) -> bool {
        self.0.iter().all(|f| filter_matches(f, schema, store, t))
    }
}

fn utc_date(s: Seconds) -> Option<Date> {
    jiff::Timestamp::from_second(s)
        .ok()
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
}

fn date_matches(at: Option<Seconds>, op: DateOp, d: Date) -> bool {
    let Some(day) = at.and_then(utc_date) else {
        return false;
    };
    match op {
        DateOp::On => day == d,
        DateOp::OnOrBefore => day <= d,
        DateOp::OnOrAfter => day >= d,
        DateOp::Before => day < d,
        DateOp::After => day > d,
    }
}

/// Custom-field search: text compares case-insensitively, choices by label, dates as
/// `mm/dd/yyyy` (the reference's example) or `yyyy-mm-dd`, numbers numerically.
fn cf_matches(
    value: Option<&CfValue>,
    kind: &FieldType,
    choices: Option<&[crate::schema::Choice]>,
    wanted: &[String],
) -> bool {
    let Some(value) = value else {
        return false;
    };
    let label = |id: u64| {
        choices
            .unwrap_or_default()
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.text.to_lowercase())
    };
    wanted.iter().any(|w| {
        let w_lower = w.to_lowercase();
        match (value, kind) {
            (CfValue::Text(t), _) => t.to_lowercase() == w_lower,
            (CfValue::Number(n), _) => match (n.as_f64(), w.trim().parse::<f64>()) {
                (Some(a), Ok(b)) => (a - b).abs() < 1e-9,
                _ => false,
            },
            (CfValue::Date(d), _) => {
                let us = w.split('/').collect::<Vec<_>>();
                let iso = match us.as_slice() {
                    [m, dd, y] => format!("{y}-{m}-{dd}"),
                    _ => w.clone(),
                };
                *d == iso
            }
            (CfValue::Choice(id), _) => label(*id).as_deref() == Some(w_lower.as_str()),
            (CfValue::Multi(ids), _) => ids
                .iter()
                .any(|id| label(*id).as_deref() == Some(w_lower.as_str())),
        }
    })
}

fn contact_keywords(c: &Contact, words: &[String]) -> bool {
    words.iter().any(|w| {
        c.email.as_deref().is_some_and(|e| e.to_lowercase() == *w)
            || c.name.to_lowercase() == *w
            || c.phones.iter().any(|p| p.number.to_lowercase() == *w)
    })
}

fn filter_matches(f: &Filter, schema: &Schema, store: &Store, t: &Ticket) -> bool {
    match f {
        Filter::Tags(tags) => tags.iter().any(|w| t.tags.iter().any(|x| x == w)),
        Filter::Statuses(ids) => ids.contains(&t.status),
        Filter::Priorities(ids) => ids.contains(&t.priority),
        Filter::Contact(words) => store
            .contacts
            .get(&t.user)
            .is_some_and(|c| contact_keywords(c, words)),
        Filter::Ids(ids) => ids.iter().any(|w| {
            w.parse::<u64>().is_ok_and(|n| n == t.id)
                || super::render::display_id(schema, t.category, t.id)
                    .trim_start_matches('#')
                    .eq_ignore_ascii_case(w)
        }),
        Filter::Assignee(words) => words.iter().any(|w| match (w.as_str(), t.assignee) {
            ("none", a) => a.is_none(),
            ("any", a) => a.is_some(),
            (w, Some(a)) => schema.staff_member(a).is_some_and(|s| {
                s.email == w
                    || s.name == w
                    || s.name.split_whitespace().next() == Some(w)
                    || s.name.split_whitespace().last() == Some(w)
            }),
            (_, None) => false,
        }),
        Filter::HasAttachments(b) => (t.attachments_count() > 0) == *b,
        Filter::Unresponded(b) => t.unresponded() == *b,
        Filter::Date(field, op, d) => {
            let at = match field {
                DateField::Created => Some(t.created_at),
                DateField::LastModified => Some(t.last_modified),
                DateField::LastStaffReplied => t.last_staff_reply_at,
                DateField::LastContactReplied => t.last_user_reply_at,
                DateField::LastClosed => t.last_closed_at,
            };
            date_matches(at, *op, *d)
        }
        Filter::TicketField(id, kind, wanted) => {
            let choices = schema.ticket_field(*id).and_then(|f| f.choices.as_deref());
            cf_matches(t.cf(*id), kind, choices, wanted)
        }
        Filter::ContactField(id, kind, wanted) => {
            let choices = schema.user_field(*id).and_then(|f| f.choices.as_deref());
            store
                .contacts
                .get(&t.user)
                .is_some_and(|c| cf_matches(c.cf(*id), kind, choices, wanted))
        }
        Filter::Text(needle) => {
            t.subject.to_lowercase().contains(needle)
                || t.updates
                    .iter()
                    .filter_map(|u| u.message.as_ref())
                    .any(|m| m.body.contains_lower(needle))
        }
    }
}

/// A compiled `GET users/?q=` query: `email:`, `name:`, `phone:`, `created_since:`,
/// `updated_since:` and free words (name or email), all ANDed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContactQuery(Vec<(String, String)>);

impl ContactQuery {
    pub(crate) fn compile(q: &str) -> Result<ContactQuery, SearchError> {
        let mut out = Vec::new();
        for term in parse(q)? {
            match term {
                Term::Text(t) => out.push(("".to_string(), t.to_lowercase())),
                Term::Field { name, values } => {
                    let key = name.to_ascii_lowercase();
                    if !matches!(
                        key.as_str(),
                        "email" | "name" | "phone" | "created_since" | "updated_since"
                    ) {
                        return Err(SearchError::UnknownField(name));
                    }
                    let value = values.join(",");
                    if key.ends_with("_since") && since_date(&value).is_none() {
                        return Err(SearchError::BadDate(value));
                    }
                    out.push((key, value.to_lowercase()));
                }
            }
        }
        Ok(ContactQuery(out))
    }

    pub fn matches(&self, c: &Contact) -> bool {
        let email = c.email.as_deref().unwrap_or("").to_lowercase();
        let name = c.name.to_lowercase();
        self.0.iter().all(|(k, w)| match k.as_str() {
            "email" => email == *w,
            "name" => name.contains(w.as_str()),
            "phone" => c.phones.iter().any(|p| p.number.contains(w.as_str())),
            "created_since" => since_date(w)
                .is_some_and(|d| date_matches(Some(c.created_at), DateOp::OnOrAfter, d)),
            "updated_since" => since_date(w)
                .is_some_and(|d| date_matches(Some(c.updated_at), DateOp::OnOrAfter, d)),
            _ => name.contains(w.as_str()) || email.contains(w.as_str()),
        })
    }
}

fn since_date(s: &str) -> Option<Date> {
    v::parse_ymd(s).or_else(|| v::parse_search_date(s))
}

/// Orders tickets for `sort=`; `None` for an unknown sort key.
pub fn sort(schema: &Schema, key: &str, tickets: &mut [&Ticket]) -> Option<()> {
    let status_order = |t: &Ticket| schema.status(t.status).map_or(0, |s| s.order);
    let priority_order = |t: &Ticket| schema.priority(t.priority).map_or(0, |p| p.order);
    let category_name = |t: &Ticket| schema.category(t.category).map(|c| c.name.clone());
    let assignee_name = |t: &Ticket| {
        t.assignee
            .and_then(|a| schema.staff_member(a))
            .map(|s| s.name.clone())
    };
    match key {
        "updated" => tickets.sort_by_key(|t| std::cmp::Reverse((t.last_updated_at, t.id))),
        "updatea" => tickets.sort_by_key(|t| (t.last_updated_at, t.id)),
        "created" => tickets.sort_by_key(|t| std::cmp::Reverse((t.created_at, t.id))),
        "createa" => tickets.sort_by_key(|t| (t.created_at, t.id)),
        "last_modifiedd" => tickets.sort_by_key(|t| std::cmp::Reverse((t.last_modified, t.id))),
        "last_modifieda" => tickets.sort_by_key(|t| (t.last_modified, t.id)),
        "ticketa" => tickets.sort_by_key(|t| t.id),
        "ticketd" => tickets.sort_by_key(|t| std::cmp::Reverse(t.id)),
        "clienta" => tickets.sort_by_key(|t| (t.user, t.id)),
        "clientd" => tickets.sort_by_key(|t| std::cmp::Reverse((t.user, t.id))),
        "statusa" => tickets.sort_by_key(|t| (status_order(t), t.id)),
        "statusd" => tickets.sort_by_key(|t| std::cmp::Reverse((status_order(t), t.id))),
        "prioritya" => tickets.sort_by_key(|t| (priority_order(t), t.id)),
        "priorityd" => tickets.sort_by_key(|t| std::cmp::Reverse((priority_order(t), t.id))),
        "categorya" => tickets.sort_by_key(|t| (category_name(t), t.id)),
        "categoryd" => tickets.sort_by_key(|t| std::cmp::Reverse((category_name(t), t.id))),
        "subjecta" => tickets.sort_by_key(|t| t.subject.to_lowercase()),
        "subjectd" => tickets.sort_by_key(|t| std::cmp::Reverse(t.subject.to_lowercase())),
        "due" => tickets.sort_by_key(|t| (t.due_date.is_none(), t.due_date.clone(), t.id)),
        "unresponded" => {
            tickets.sort_by_key(|t| (!t.unresponded(), std::cmp::Reverse(t.last_updated_at)))
        }
        "assigneea" => tickets.sort_by_key(|t| (assignee_name(t), t.id)),
        "assigneed" => tickets.sort_by_key(|t| std::cmp::Reverse((assignee_name(t), t.id))),
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, values: &[&str]) -> Term {
        Term::Field {
            name: name.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn parses_every_documented_example() {
        assert_eq!(
            parse(r#"tag:"routine_checks""#),
            Ok(vec![field("tag", &["routine_checks"])])
        );
        assert_eq!(
            parse(r#"tag:"routine_checks"+status:"In Progress","New""#),
            Ok(vec![
                field("tag", &["routine_checks"]),
                field("status", &["In Progress", "New"])
            ])
        );
        assert_eq!(
            parse(r#""Enterprise Company Name":"enterprise company""#),
            Ok(vec![field(
                "Enterprise Company Name",
                &["enterprise company"]
            )])
        );
        assert_eq!(
            parse(r#""Country":"finland","germany""#),
            Ok(vec![field("Country", &["finland", "germany"])])
        );
        assert_eq!(
            parse(r#"Field1:"value1" "Field2":"value 2""#),
            Ok(vec![
                field("Field1", &["value1"]),
                field("Field2", &["value 2"])
            ])
        );
        assert_eq!(
            parse(r#"contact:"james@happyfox.com" "Product Name":"Helpdesk""#),
            Ok(vec![
                field("contact", &["james@happyfox.com"]),
                field("Product Name", &["Helpdesk"])
            ])
        );
        assert_eq!(
            parse("id:DC00000001,2"),
            Ok(vec![field("id", &["DC00000001", "2"])])
        );
        assert_eq!(parse(r#""""#), Ok(vec![]));
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(
            parse("email:a@b.com name:adam"),
            Ok(vec![field("email", &["a@b.com"]), field("name", &["adam"])])
        );
        assert_eq!(
            parse(r#"printer "on fire""#),
            Ok(vec![
                Term::Text("printer".into()),
                Term::Text("on fire".into())
            ])
        );
    }

    #[test]
    fn rejects_malformed_queries() {
        assert_eq!(parse(r#"tag:"open"#), Err(SearchError::Unterminated));
        assert_eq!(
            parse("tag: x"),
            Err(SearchError::MissingValue("tag".into()))
        );
        // A multi-word field name must be quoted: `Source ID:"x"` is the word `Source`
        // and a field named `ID`.
        assert_eq!(
            parse(r#"Source ID:"x""#),
            Ok(vec![Term::Text("Source".into()), field("ID", &["x"])])
        );
    }

    #[test]
    fn compiles_against_the_schema() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/happyfox-schema.json");
        let schema = Schema::load(&path).expect("sample schema");
        assert!(TicketQuery::compile(&schema, r#""source id":"ZD-1""#).is_ok());
        assert!(TicketQuery::compile(&schema, r#"created-on-or-after:"2019/01/25""#).is_ok());
        assert_eq!(
            TicketQuery::compile(&schema, r#"created-on-or-after:"2019-01-25""#).err(),
            Some(SearchError::BadDate("2019-01-25".into()))
        );
        assert_eq!(
            TicketQuery::compile(&schema, r#""Source Ident":"x""#).err(),
            Some(SearchError::UnknownField("Source Ident".into()))
        );
        assert!(ContactQuery::compile("email:a@b.com name:adam").is_ok());
        assert!(ContactQuery::compile("shoe:9").is_err());
    }
}
