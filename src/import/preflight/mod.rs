//! The pre-flight check: what the account must offer before a run may start, checked
//! against the schema (a snapshot or the live `staff/`, `categories/` and custom fields)
//! with nothing sent.
//!
//! A migration that fails on its 40,000th ticket because the agent it posts as was
//! deactivated, or because the marker field is missing in one category, has already
//! created 40,000 tickets that cannot be found again safely. These checks find that
//! first:
//!
//! - the *acting agent*, the staff member every write names (`staff` on replies and
//!   notes, `staff_id` on deletes), exists, is active and has the permissions the run
//!   needs. HappyFox has no endpoint that says which agent an API key belongs to, so the
//!   acting agent is the one the run will name: `--staff`, else the mapping's fallback
//!   agent, else the first active account administrator (the same choice the import
//!   makes for its closing notes);
//! - the marker field exists, is a text field and applies to every category the mapping
//!   targets (a ticket in a category without it could never be found again);
//! - every targeted category is public (HappyFox creates tickets through the API only in
//!   public ones) and the acting agent may act in it;
//! - the fallback agent exists and is active.
//!
//! Permissions: the reference documents `permissions` on a staff object only as a list
//! of strings, without naming the ones for creating, closing or deleting tickets. An
//! account administrator may do everything; other agents need the names below.

pub mod canary;

use serde::Serialize;

use crate::mapping::template::Expr;
use crate::mapping::{Field, Marker, Plan};
use crate::schema::{self, FieldType, Schema, Staff};

/// The permission to create, reply to, update and close tickets (the sample account's).
pub const MANAGE_TICKETS: &str = crate::happyfox::PERMISSION_MANAGE_TICKETS;
/// The permission to delete tickets, which `undo` needs.
pub const DELETE_TICKETS: &str = crate::happyfox::PERMISSION_DELETE_TICKETS;

/// What the run will do, and so which permissions it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Create tickets, post their conversations and set their final status.
    Import,
    /// Delete the tickets a journal created.
    Undo,
}

impl Purpose {
    fn permissions(self) -> &'static [&'static str] {
        match self {
            Purpose::Import => &[MANAGE_TICKETS],
            Purpose::Undo => &[DELETE_TICKETS],
        }
    }
}

/// One thing the account lacks, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    #[error("no agent named {name:?} in the account; use the email or name of an existing agent")]
    UnknownStaff { name: String },
    #[error(
        "the account has no active administrator to act as; pass --staff with an active agent's email"
    )]
    NoActingStaff,
    #[error(
        "agent {name} ({email}) is inactive; reactivate them in HappyFox or act as another agent"
    )]
    InactiveStaff { name: String, email: String },
    #[error(
        "agent {name} ({email}) lacks the {permission:?} permission this {purpose} needs; give their role that permission, or act as an administrator with --staff"
    )]
    MissingPermission {
        name: String,
        email: String,
        permission: String,
        purpose: String,
    },
    #[error(
        "agent {name} ({email}) does not belong to category {category:?}, where this run creates tickets; add them to it in HappyFox, or act as another agent"
    )]
    NotInCategory {
        name: String,
        email: String,
        category: String,
    },
    #[error(
        "category {category:?} is private; HappyFox creates tickets through the API only in public categories: make it public or map these tickets elsewhere"
    )]
    PrivateCategory { category: String },
    #[error(
        "the mapping's category {category:?} is not a category of the account; fix ticket.category in the mapping"
    )]
    UnknownCategory { category: String },
    #[error(
        "marker field {field:?} does not exist in the account; create it as a text ticket custom field (visible to staff only) or use `marker: {{ tag: ... }}`"
    )]
    MissingMarkerField { field: String },
    #[error(
        "marker field {field:?} is a {kind} field; the marker needs a text field HappyFox can search: create a text field and name it in `marker:`"
    )]
    MarkerNotText { field: String, kind: String },
    #[error(
        "marker field {field:?} is not used in category {category:?}, so tickets created there could not be found again; add the field to that category in HappyFox"
    )]
    MarkerNotInCategory { field: String, category: String },
    #[error(
        "fallback agent {name:?} (conversation.fallback_agent) is not an agent of the account; name an existing agent's email"
    )]
    UnknownFallback { name: String },
    #[error(
        "fallback agent {name} ({email}) (conversation.fallback_agent) is inactive; reactivate them or name an active agent"
    )]
    InactiveFallback { name: String, email: String },
}

/// The agent a run acts as, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActingStaff {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub is_account_admin: bool,
    /// Why this agent: `--staff`, the fallback agent or the first administrator.
    pub chosen_by: &'static str,
}

/// What the pre-flight found. The run may start only when `problems` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preflight {
    pub purpose: Purpose,
    pub acting: Option<ActingStaff>,
    /// The categories checked, by name.
    pub categories: Vec<String>,
    /// Things worth knowing that do not stop the run.
    pub notes: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Preflight {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why a run does not start: the pre-flight found problems (exit 2).
#[derive(Debug, thiserror::Error)]
#[error(
    "pre-flight check failed ({} problem(s)):\n{}",
    .0.problems.len(),
    .0.problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
)]
pub struct PreflightFailed(pub Preflight);

impl crate::exit::Classify for PreflightFailed {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Usage
    }
}

/// Runs every check. `plan` is the mapping (none for an undo, which needs only the
/// agent); `staff` is `--staff` (an email or name).
pub fn check(
    plan: Option<&Plan>,
    schema: &Schema,
    purpose: Purpose,
    staff: Option<&str>,
) -> Preflight {
    let mut out = Preflight {
        purpose,
        acting: None,
        categories: Vec::new(),
        notes: Vec::new(),
        problems: Vec::new(),
    };
    let fallback = plan
        .and_then(|p| p.conversation.as_ref())
        .and_then(|c| c.fallback_agent.as_deref());
    if let Some(name) = fallback {
        match find_staff(schema, name) {
            None => out
                .problems
                .push(Problem::UnknownFallback { name: name.into() }),
            Some(s) if !s.active => out.problems.push(Problem::InactiveFallback {
                name: s.name.clone(),
                email: s.email.clone(),
            }),
            Some(_) => {}
        }
    }
    let acting = acting_staff(schema, staff, fallback, &mut out.problems);
    if let Some(s) = acting {
        check_staff(s, purpose, &mut out.problems);
    }
    if let Some(plan) = plan {
        let categories = target_categories(plan, schema, &mut out);
        for c in &categories {
            if !c.public {
                out.problems.push(Problem::PrivateCategory {
                    category: c.name.clone(),
                });
            }
            if purpose == Purpose::Import
                && let Some(s) = acting
                && s.active
                && !s.is_account_admin
                && !s.categories.contains(&c.id)
            {
                out.problems.push(Problem::NotInCategory {
                    name: s.name.clone(),
                    email: s.email.clone(),
                    category: c.name.clone(),
                });
            }
        }
        check_marker(plan, schema, &categories, &mut out.problems);
        out.categories = categories.iter().map(|c| c.name.clone()).collect();
    }
    out.acting = acting.map(|s| ActingStaff {
        id: s.id,
        name: s.name.clone(),
        email: s.email.clone(),
        is_account_admin: s.is_account_admin,
        chosen_by: match (staff, fallback) {
            (Some(_), _) => "--staff",
            (None, Some(f)) if find_staff(schema, f).map(|f| f.id) == Some(s.id) => {
                "the mapping's fallback agent"
            }
            _ => "the first active administrator",
        },
    });
    out
}

/// The agent an undo names as `staff_id`: `--staff`, else the first active administrator.
pub fn undo_staff(schema: &Schema, staff: Option<&str>) -> Option<u64> {
    let mut ignored = Vec::new();
    acting_staff(schema, staff, None, &mut ignored).map(|s| s.id)
}

fn find_staff<'a>(schema: &'a Schema, name: &str) -> Option<&'a Staff> {
    schema
        .staff
        .iter()
        .find(|s| schema::same_name(&s.email, name) || schema::same_name(&s.name, name))
}

/// The agent the run will name in its writes (see the module docs).
fn acting_staff<'a>(
    schema: &'a Schema,
    staff: Option<&str>,
    fallback: Option<&str>,
    problems: &mut Vec<Problem>,
) -> Option<&'a Staff> {
    if let Some(name) = staff {
        let found = find_staff(schema, name);
        if found.is_none() {
            problems.push(Problem::UnknownStaff { name: name.into() });
        }
        return found;
    }
    if let Some(s) = fallback
        .and_then(|f| find_staff(schema, f))
        .filter(|s| s.active)
    {
        return Some(s);
    }
    let admin = schema.staff.iter().find(|s| s.active && s.is_account_admin);
    if admin.is_none() {
        problems.push(Problem::NoActingStaff);
    }
    admin
}

fn check_staff(s: &Staff, purpose: Purpose, problems: &mut Vec<Problem>) {
    if !s.active {
        problems.push(Problem::InactiveStaff {
            name: s.name.clone(),
            email: s.email.clone(),
        });
        return;
    }
    if s.is_account_admin {
        return;
    }
    for p in purpose.permissions() {
        if !s.permissions.iter().any(|have| have == p) {
            problems.push(Problem::MissingPermission {
                name: s.name.clone(),
                email: s.email.clone(),
                permission: (*p).into(),
                purpose: match purpose {
                    Purpose::Import => "import".into(),
                    Purpose::Undo => "undo".into(),
                },
            });
        }
    }
}

/// The categories a mapping can put tickets in: its constant, or its value map's targets
/// and default. A category taken from the data as it is could be any of the account's
/// public ones (a private one is rejected per record), so all of those are checked.
fn target_categories<'a>(
    plan: &Plan,
    schema: &'a Schema,
    out: &mut Preflight,
) -> Vec<&'a schema::Category> {
    let field: &Field = &plan.ticket.category;
    let mut names: Vec<String> = Vec::new();
    if let Some(m) = &field.map {
        names.extend(m.entries.values().cloned());
        names.extend(m.default.iter().cloned());
    } else if let Expr::Const(v) = &field.expr
        && let Some(s) = v.as_str()
    {
        names.push(s.to_owned());
    } else {
        out.notes.push(format!(
            "ticket.category comes from the data as it is ({}): every public category was checked",
            field.source
        ));
        return schema.categories.iter().filter(|c| c.public).collect();
    }
    let mut found: Vec<&schema::Category> = Vec::new();
    for name in names.iter().filter(|n| !n.trim().is_empty()) {
        match schema
            .categories
            .iter()
            .find(|c| schema::same_name(&c.name, name))
        {
            // As a map target a private category rejects only the records mapped to it
            // (the dry run lists them); nothing is created there.
            Some(c) if !c.public && field.map.is_some() => {
                let note = format!(
                    "category {:?} is private: records mapped to it are rejected (HappyFox creates tickets through the API only in public categories)",
                    c.name
                );
                if !out.notes.contains(&note) {
                    out.notes.push(note);
                }
            }
            Some(c) if !found.iter().any(|f| f.id == c.id) => found.push(c),
            Some(_) => {}
            None => out.problems.push(Problem::UnknownCategory {
                category: name.clone(),
            }),
        }
    }
    found
}

fn check_marker(
    plan: &Plan,
    schema: &Schema,
    categories: &[&schema::Category],
    problems: &mut Vec<Problem>,
) {
    let Some(Marker::CustomField { field, .. }) = &plan.marker else {
        return;
    };
    let Some(f) = schema
        .ticket_custom_fields
        .iter()
        .find(|f| schema::same_name(&f.name, &field.name))
    else {
        problems.push(Problem::MissingMarkerField {
            field: field.name.clone(),
        });
        return;
    };
    if !matches!(f.kind, FieldType::Text | FieldType::Textarea) {
        problems.push(Problem::MarkerNotText {
            field: f.name.clone(),
            kind: f.kind.as_str().to_owned(),
        });
        return;
    }
    for c in categories {
        if !f.categories.iter().any(|fc| fc.category == c.id) {
            problems.push(Problem::MarkerNotInCategory {
                field: f.name.clone(),
                category: c.name.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(yaml: &str, schema: Option<std::sync::Arc<Schema>>) -> Plan {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, yaml).unwrap();
        crate::mapping::load(&path, schema).unwrap()
    }

    const MAPPING: &str = r#"
source:
  tickets: { file: t.csv }
  id: "{{ row.id }}"
ticket:
  category: { value: "{{ row.cat }}", map: { a: Support, b: Billing } }
  contact: { email: "{{ row.email }}" }
  subject: "{{ row.subject }}"
  html: "{{ row.body }}"
marker: { custom_field: Source ID, value: "X-{{ row.id }}" }
conversation:
  entries: "{{ [] }}"
  kind: staff_reply
  author: "{{ row.a }}"
  html: "{{ row.b }}"
  fallback_agent: alice@acme.example
"#;

    #[test]
    fn the_sample_account_passes_and_each_gap_is_named() {
        let schema = Schema::sample();
        let p = plan(MAPPING, None);
        let ok = check(Some(&p), &schema, Purpose::Import, None);
        assert!(ok.passed(), "{:?}", ok.problems);
        assert_eq!(ok.categories, vec!["Support", "Billing"]);
        assert_eq!(ok.acting.as_ref().unwrap().email, "alice@acme.example");

        // Alice is no administrator and has no delete permission.
        let undo = check(Some(&p), &schema, Purpose::Undo, None);
        assert!(
            matches!(&undo.problems[..], [Problem::MissingPermission { permission, .. }] if permission == DELETE_TICKETS),
            "{:?}",
            undo.problems
        );

        let mut broken = Schema::sample();
        broken
            .ticket_custom_fields
            .retain(|f| f.name != "Source ID");
        for s in &mut broken.staff {
            if s.email == "alice@acme.example" {
                s.active = false;
            }
        }
        let bad = check(Some(&p), &broken, Purpose::Import, None);
        assert!(
            bad.problems.contains(&Problem::MissingMarkerField {
                field: "Source ID".into()
            }),
            "{:?}",
            bad.problems
        );
        assert!(
            bad.problems
                .iter()
                .any(|p| matches!(p, Problem::InactiveFallback { .. })),
            "{:?}",
            bad.problems
        );
        // The inactive fallback is not acted as: the administrator is.
        assert_eq!(
            bad.acting.unwrap().chosen_by,
            "the first active administrator"
        );
    }

    #[test]
    fn a_private_map_target_is_a_note_and_a_private_constant_a_problem() {
        let schema = Schema::sample();
        let mapped = MAPPING.replace("b: Billing", "b: Internal IT");
        let r = check(Some(&plan(&mapped, None)), &schema, Purpose::Import, None);
        assert!(r.passed(), "{:?}", r.problems);
        assert_eq!(r.categories, vec!["Support"]);
        assert!(
            r.notes[0].contains("\"Internal IT\" is private"),
            "{:?}",
            r.notes
        );
        let constant = MAPPING.replace(
            r#"{ value: "{{ row.cat }}", map: { a: Support, b: Billing } }"#,
            "Internal IT",
        );
        let r = check(Some(&plan(&constant, None)), &schema, Purpose::Import, None);
        assert_eq!(
            r.problems[0],
            Problem::PrivateCategory {
                category: "Internal IT".into()
            }
        );
    }

    #[test]
    fn the_marker_must_be_in_every_targeted_category() {
        let mut schema = Schema::sample();
        for f in &mut schema.ticket_custom_fields {
            if f.name == "Source ID" {
                f.categories.retain(|c| c.category != 2);
            }
        }
        let p = plan(MAPPING, None);
        let r = check(Some(&p), &schema, Purpose::Import, None);
        assert_eq!(
            r.problems,
            vec![Problem::MarkerNotInCategory {
                field: "Source ID".into(),
                category: "Billing".into()
            }]
        );
    }
}
