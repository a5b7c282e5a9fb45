//! Compiling a mapping spec into a [`Plan`]: templates parsed, names resolved against the
//! account schema, every error collected.
//!
//! The sender only ever sees a compiled plan, so anything that can be checked once is
//! checked here: template syntax, filter names, custom field names, choice labels and
//! category/status/priority names used as constants or as value-map targets. The plan's
//! types are in `plan`; custom fields are resolved in `custom_fields` and filter names
//! checked in `filters`.

mod custom_fields;
mod filters;
mod plan;

use std::sync::Arc;

use jiff::tz::TimeZone;
use minijinja::value::Value;

use super::error::MappingError;
use super::spec::*;
use super::template::{Engine, Expr};
use crate::schema::{self, FieldType, Schema};
use crate::source::{Encoding, Format, ReadOptions};
use filters::unknown_filter;
pub use plan::{
    AttachmentsPlan, ConversationPlan, Field, FieldRef, FinalPlan, Mapped, Marker, Plan, SidePlan,
    SourcePlan, TicketFields, ValueMap,
};

/// The header posted above each migrated reply when the mapping does not set one.
pub const DEFAULT_HEADER: &str = "<p><i>{{ author_name or author }} wrote on {{ created_at | format_datetime('%Y-%m-%d %H:%M UTC', 'UTC') }}:</i></p>";

struct Compiler<'a> {
    engine: Engine,
    schema: Option<&'a Schema>,
    errors: Vec<MappingError>,
}

impl Compiler<'_> {
    fn expr(&mut self, name: &str, pos: Pos, source: &str) -> Option<Expr> {
        match self.engine.compile(source) {
            Ok(e) => {
                self.check_filters(name, pos, source);
                Some(e)
            }
            Err(err) => {
                let mut message =
                    format!("{name}: invalid template: {}", err.detail().unwrap_or(""));
                if err.detail().is_none() {
                    message = format!("{name}: invalid template: {err}");
                }
                let help = unknown_filter(&err.to_string()).and_then(|f| {
                    schema::did_you_mean(&f, Engine::filter_names().iter().copied())
                        .map(|s| format!("did you mean the filter `{s}`?"))
                        .or_else(|| {
                            Some(format!(
                                "available filters: {}, and minijinja's built-ins",
                                Engine::filter_names().join(", ")
                            ))
                        })
                });
                self.errors
                    .push(MappingError::at(pos, message).maybe_help(help));
                None
            }
        }
    }

    fn field(&mut self, name: &str, spec: &Sp<ValueSpec>) -> Option<Field> {
        let pos = spec.pos;
        match &spec.value {
            ValueSpec::Template(s) => Some(Field {
                name: name.to_string(),
                pos,
                expr: self.expr(name, pos, s)?,
                map: None,
                source: s.clone(),
            }),
            ValueSpec::Number(n) => Some(Field {
                name: name.to_string(),
                pos,
                expr: Engine::constant(Value::from(*n)),
                map: None,
                source: String::new(),
            }),
            ValueSpec::Bool(b) => Some(Field {
                name: name.to_string(),
                pos,
                expr: Engine::constant(Value::from(*b)),
                map: None,
                source: String::new(),
            }),
            ValueSpec::Map(m) => Some(Field {
                name: name.to_string(),
                pos,
                expr: self.expr(name, pos, &m.value)?,
                map: Some(ValueMap::new(m.map.clone(), m.default.clone())),
                source: m.value.clone(),
            }),
        }
    }

    fn template(&mut self, name: &str, spec: &Sp<String>) -> Option<Field> {
        Some(Field {
            name: name.to_string(),
            pos: spec.pos,
            expr: self.expr(name, spec.pos, &spec.value)?,
            map: None,
            source: spec.value.clone(),
        })
    }

    fn opt(&mut self, name: &str, spec: &Option<Sp<ValueSpec>>) -> Option<Field> {
        spec.as_ref().and_then(|s| self.field(name, s))
    }

    /// Checks names a field can produce (constants and value-map targets) against a list.
    /// `what` names one item ("status"), `whats` the list ("statuses").
    fn check_names(
        &mut self,
        field: &Field,
        what: &str,
        whats: &str,
        names: &[&str],
        extra_check: impl Fn(&str) -> Option<String>,
    ) {
        let mut produced: Vec<String> = vec![];
        if let Expr::Const(v) = &field.expr
            && field.map.is_none()
            && let Some(s) = v.as_str()
        {
            produced.push(s.to_string());
        }
        if let Some(m) = &field.map {
            produced.extend(m.targets().cloned());
        }
        for name in produced {
            if name.is_empty() {
                continue;
            }
            if !names.iter().any(|n| schema::same_name(n, &name)) {
                let help = schema::did_you_mean(&name, names.iter().copied())
                    .map(|s| format!("did you mean {s:?}?"))
                    .unwrap_or_else(|| format!("{whats}: {}", names.join(", ")));
                self.errors.push(
                    MappingError::at(field.pos, format!("{}: {name:?} is not {what}", field.name))
                        .help(help),
                );
            } else if let Some(problem) = extra_check(&name) {
                self.errors.push(MappingError::at(
                    field.pos,
                    format!("{}: {problem}", field.name),
                ));
            }
        }
    }

    fn attachments(&mut self, section: &str, spec: &AttachmentsSpec) -> Option<AttachmentsPlan> {
        if spec.path.is_none() && spec.url.is_none() {
            self.errors.push(
                MappingError::at(
                    spec.entries.pos,
                    format!("{section}: set `path` (a file in the export folder) or `url`"),
                )
                .help(
                    "e.g. `url: \"{{ content_url }}\"` or `path: \"attachments/{{ file_name }}\"`",
                ),
            );
        }
        let entries = self.template(&format!("{section}.entries"), &spec.entries);
        let name = self.field(&format!("{section}.name"), &spec.name);
        let path = self.opt(&format!("{section}.path"), &spec.path);
        let url = self.opt(&format!("{section}.url"), &spec.url);
        let size = self.opt(&format!("{section}.size"), &spec.size);
        let content_type = self.opt(&format!("{section}.content_type"), &spec.content_type);
        Some(AttachmentsPlan {
            entries: entries?,
            name: name?,
            path,
            url,
            size,
            content_type,
        })
    }
}

fn read_options(file: &FileSpec, pos: Pos, errors: &mut Vec<MappingError>) -> ReadOptions {
    let delimiter = match file.delimiter.as_deref() {
        None => b',',
        Some("\\t") | Some("\t") | Some("tab") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => {
            errors.push(
                MappingError::at(pos, format!("delimiter {d:?} must be one ASCII character"))
                    .help("use \",\", \";\", \"|\" or \"\\t\""),
            );
            b','
        }
    };
    ReadOptions {
        format: file.format.map(|f| match f {
            FormatName::Csv => Format::Csv,
            FormatName::Json => Format::Json,
            FormatName::Ndjson => Format::Ndjson,
        }),
        records: file.records.clone(),
        delimiter,
        encoding: match file.encoding {
            Some(EncodingName::Windows1252) => Encoding::Windows1252,
            _ => Encoding::Utf8,
        },
    }
}

/// Compiles a spec; with a schema, names are resolved to ids and checked.
pub fn compile(spec: &MappingSpec, schema: Option<Arc<Schema>>) -> Result<Plan, Vec<MappingError>> {
    let mut errors = vec![];
    let timezone = match &spec.defaults.timezone {
        None => TimeZone::UTC,
        Some(tz) => match TimeZone::get(&tz.value) {
            Ok(z) => z,
            Err(_) => {
                errors.push(
                    MappingError::at(tz.pos, format!("unknown time zone {:?}", tz.value)).help(
                        "use an IANA zone name such as Europe/Berlin, America/New_York or UTC",
                    ),
                );
                TimeZone::UTC
            }
        },
    };
    let mut c = Compiler {
        engine: Engine::new(timezone.clone()),
        schema: schema.as_deref(),
        errors,
    };

    // Source.
    let tickets_read = read_options(
        &spec.source.tickets.value,
        spec.source.tickets.pos,
        &mut c.errors,
    );
    let id = c.template("source.id", &spec.source.id);
    let skip_if = spec
        .source
        .skip_if
        .as_ref()
        .and_then(|s| c.template("source.skip_if", s));
    let mut sides = vec![];
    for (name, side) in &spec.source.side {
        if matches!(name.as_str(), "row" | "record" | "ticket") {
            c.errors.push(
                MappingError::at(side.pos, format!("side file name {name:?} is reserved"))
                    .help("pick another name, such as `users` or `comments`"),
            );
        }
        let s = &side.value;
        let read = read_options(&s.file_spec(), side.pos, &mut c.errors);
        let join = s.join.as_ref().and_then(|j| {
            c.template(&format!("source.side.{name}.join"), j)
                .map(|f| Arc::new(f.expr))
        });
        let keep_if = s.keep_if.as_ref().and_then(|j| {
            c.template(&format!("source.side.{name}.keep_if"), j)
                .map(|f| f.expr)
        });
        sides.push(SidePlan {
            name: name.clone(),
            pos: side.pos,
            file: s.file.clone(),
            read,
            key: s.key.clone(),
            join,
            explode: s.explode.clone(),
            keep_if,
            order_by: s.order_by.clone(),
            optional: s.optional,
        });
    }

    // Ticket.
    let t = &spec.ticket;
    let category = c.field("ticket.category", &t.category);
    if let (Some(f), Some(s)) = (&category, schema.as_deref()) {
        let names: Vec<&str> = s.categories.iter().map(|c| c.name.as_str()).collect();
        let cats = s.categories.clone();
        // A private category is an error as a constant; as a map target it only rejects
        // the records that map to it, which the dry run reports per record.
        let constant = f.map.is_none();
        c.check_names(f, "a category of the account", "categories", &names, |n| {
            cats.iter()
                .filter(|_| constant)
                .find(|c| schema::same_name(&c.name, n))
                .filter(|c| !c.public)
                .map(|c| format!("category {:?} is private; HappyFox creates tickets through the API only in public categories", c.name))
        });
    }
    let contact_name = c.opt("ticket.contact.name", &t.contact.name);
    let contact_email = c.field("ticket.contact.email", &t.contact.email);
    let contact_phone = c.opt("ticket.contact.phone", &t.contact.phone);
    let contact_fields = c.contact_fields(&t.contact.custom_fields);
    let subject = c.field("ticket.subject", &t.subject);
    let html = c.opt("ticket.html", &t.html);
    let text = c.opt("ticket.text", &t.text);
    if t.html.is_none() && t.text.is_none() {
        c.errors.push(
            MappingError::at(
                t.subject.pos,
                "ticket: one of `html` and `text` is required (the ticket's first message)",
            )
            .help("add `html: \"{{ description }}\"` or `text: ...` under `ticket:`"),
        );
    }
    let priority = c.opt("ticket.priority", &t.priority);
    if let (Some(f), Some(s)) = (&priority, schema.as_deref()) {
        let names: Vec<&str> = s.priorities.iter().map(|p| p.name.as_str()).collect();
        c.check_names(f, "a priority of the account", "priorities", &names, |_| {
            None
        });
    }
    let assignee = c.opt("ticket.assignee", &t.assignee);
    let tags = c.opt("ticket.tags", &t.tags);
    let cc = c.opt("ticket.cc", &t.cc);
    let bcc = c.opt("ticket.bcc", &t.bcc);
    let created_at = c.opt("ticket.created_at", &t.created_at);
    let due_date = c.opt("ticket.due_date", &t.due_date);
    let visible_only_staff = c.opt("ticket.visible_only_staff", &t.visible_only_staff);
    let custom_fields = c.ticket_fields("ticket.custom_fields", &t.custom_fields);
    let attachments = t
        .attachments
        .as_ref()
        .and_then(|a| c.attachments("ticket.attachments", a));

    // Marker.
    let marker = match &spec.marker {
        None => None,
        Some(m) => match (&m.custom_field, &m.tag) {
            (Some(cf), None) => {
                let value = m.value.as_ref().and_then(|v| c.template("marker.value", v));
                let id = match schema.as_deref() {
                    None => None,
                    Some(s) => match s
                        .ticket_custom_fields
                        .iter()
                        .find(|f| schema::same_name(&f.name, &cf.value))
                    {
                        Some(f) if matches!(f.kind, FieldType::Text | FieldType::Textarea) => {
                            Some(f.id)
                        }
                        Some(f) => {
                            c.errors.push(MappingError::at(cf.pos, format!("marker field {:?} is a {} field; the marker needs a text field HappyFox can search", f.name, f.kind.as_str())));
                            None
                        }
                        None => {
                            let names: Vec<&str> = s
                                .ticket_custom_fields
                                .iter()
                                .map(|f| f.name.as_str())
                                .collect();
                            c.errors.push(MappingError::at(cf.pos, format!("unknown ticket custom field {:?} for the marker", cf.value)).maybe_help(
                                schema::did_you_mean(&cf.value, names.iter().copied()).map(|n| format!("did you mean {n:?}?")).or(Some("create a text custom field (e.g. \"Source ID\", visible to staff only) in HappyFox, or use `marker: { tag: ... }`".into())),
                            ));
                            None
                        }
                    },
                };
                Some(Marker::CustomField {
                    field: FieldRef {
                        name: cf.value.clone(),
                        id,
                    },
                    value,
                })
            }
            (None, Some(tag)) => c.template("marker.tag", tag).map(Marker::Tag),
            _ => {
                c.errors.push(MappingError::new(
                    "marker: set exactly one of `custom_field` and `tag`",
                ));
                None
            }
        },
    };

    // Conversation.
    let conversation = spec.conversation.as_ref().and_then(|conv| {
        let entries = c.template("conversation.entries", &conv.entries);
        let keep_if = conv
            .keep_if
            .as_ref()
            .and_then(|k| c.template("conversation.keep_if", k));
        let kind = c.field("conversation.kind", &conv.kind);
        if let Some(k) = &kind {
            c.check_names(
                k,
                "a conversation kind",
                "kinds",
                &["staff_reply", "private_note", "contact_reply"],
                |_| None,
            );
        }
        let author = c.field("conversation.author", &conv.author);
        let author_name = c.opt("conversation.author_name", &conv.author_name);
        let created_at = c.opt("conversation.created_at", &conv.created_at);
        let html = c.opt("conversation.html", &conv.html);
        let text = c.opt("conversation.text", &conv.text);
        if conv.html.is_none() && conv.text.is_none() {
            c.errors.push(MappingError::at(
                conv.entries.pos,
                "conversation: one of `html` and `text` is required",
            ));
        }
        let header_src = conv.header.clone().unwrap_or(Sp {
            value: DEFAULT_HEADER.to_string(),
            pos: conv.entries.pos,
        });
        let header = if header_src.value.is_empty() {
            None
        } else {
            c.template("conversation.header", &header_src)
        };
        let fallback_agent = conv.fallback_agent.as_ref().map(|f| f.value.clone());
        if let (Some(fa), Some(s)) = (&conv.fallback_agent, schema.as_deref()) {
            match s.staff.iter().find(|st| {
                schema::same_name(&st.email, &fa.value) || schema::same_name(&st.name, &fa.value)
            }) {
                Some(st) if !st.active => c.errors.push(MappingError::at(
                    fa.pos,
                    format!("fallback agent {:?} is inactive in HappyFox", fa.value),
                )),
                Some(_) => {}
                None => c.errors.push(
                    MappingError::at(
                        fa.pos,
                        format!("fallback agent {:?} is not a HappyFox agent", fa.value),
                    )
                    .maybe_help(
                        schema::did_you_mean(&fa.value, s.staff.iter().map(|st| st.email.as_str()))
                            .map(|n| format!("did you mean {n:?}?")),
                    ),
                ),
            }
        }
        Some(ConversationPlan {
            entries: entries?,
            skip_first: conv.skip_first,
            keep_if,
            kind: kind?,
            author: author?,
            author_name,
            created_at,
            html,
            text,
            header,
            fallback_agent,
            attachments: conv
                .attachments
                .as_ref()
                .and_then(|a| c.attachments("conversation.attachments", a)),
        })
    });

    // Final state.
    let mut final_state = FinalPlan::default();
    if let Some(f) = &spec.final_state {
        final_state.status = c.opt("final.status", &f.status);
        if let (Some(st), Some(s)) = (&final_state.status, schema.as_deref()) {
            let names: Vec<&str> = s.statuses.iter().map(|x| x.name.as_str()).collect();
            c.check_names(st, "a status of the account", "statuses", &names, |_| None);
        }
        final_state.custom_fields = c.ticket_fields("final.custom_fields", &f.custom_fields);
    }

    let Compiler { engine, errors, .. } = c;
    match (errors.is_empty(), id, category, contact_email, subject) {
        (true, Some(id), Some(category), Some(contact_email), Some(subject)) => Ok(Plan {
            engine,
            timezone,
            schema,
            source: SourcePlan {
                file: spec.source.tickets.value.file.clone(),
                read: tickets_read,
                id,
                skip_if,
                sides,
            },
            ticket: TicketFields {
                category,
                contact_name,
                contact_email,
                contact_phone,
                contact_fields,
                subject,
                html,
                text,
                priority,
                assignee,
                tags,
                cc,
                bcc,
                created_at,
                due_date,
                visible_only_staff,
                custom_fields,
                attachments,
            },
            marker,
            conversation,
            final_state,
        }),
        _ => Err(errors),
    }
}
