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
    AttachmentsPlan, ConversationPlan, Field, FieldRef, FinalPlan, FirstMessagePlan, History,
    Mapped, Marker, Plan, SidePlan, SourcePlan, TicketFields, ValueMap,
};

/// The header posted above each migrated reply when the mapping does not set one.
pub const DEFAULT_HEADER: &str = "<p><i>{{ author_name or author }} wrote{% if created_at %} on {{ created_at | format_datetime('%Y-%m-%d %H:%M UTC', 'UTC') }}{% endif %}:</i></p>";

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
            ValueSpec::Map(m) if m.map.is_empty() && m.default.is_some() => {
                self.errors.push(
                    MappingError::at(
                        pos,
                        format!(
                            "`{name}` has a `default` but no `map`: every value would become {:?}",
                            m.default.as_deref().unwrap_or_default()
                        ),
                    )
                    .help("add `map: { source value: HappyFox name, ... }`, or drop `default` and write the value as a template"),
                );
                None
            }
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
    if let Err(why) = crate::source::check_pattern(&file.file) {
        errors.push(
            MappingError::at(pos, format!("file {:?}: {why}", file.file)).help(
                "`*` and `?` match within a folder, `**` any folders, `{a,b}` either name, e.g. `**/tickets*.json`",
            ),
        );
    }
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
    let timezone = timezone(&spec.defaults, &mut errors);
    let mut c = Compiler {
        engine: Engine::new(timezone.clone()),
        schema: schema.as_deref(),
        errors,
    };
    // Section by section; errors without a position, or at the same one, keep this order.
    let source = c.source(&spec.source);
    let ticket = c.ticket(&spec.ticket);
    let marker = spec.marker.as_ref().and_then(|m| c.marker(m));
    let conversation = spec
        .conversation
        .as_ref()
        .and_then(|conv| c.conversation(conv));
    let final_state = spec
        .final_state
        .as_ref()
        .map(|f| c.final_state(f))
        .unwrap_or_default();

    let Compiler { engine, errors, .. } = c;
    match (errors.is_empty(), source, ticket) {
        (true, Some(source), Some(ticket)) => Ok(Plan {
            engine,
            timezone,
            schema,
            source,
            ticket,
            marker,
            conversation,
            final_state,
        }),
        _ => Err(errors),
    }
}

/// `defaults.timezone`, the zone timestamps without an offset are read in; UTC when unset,
/// and after an error for a name that is not an IANA zone, so compiling can go on.
fn timezone(defaults: &Defaults, errors: &mut Vec<MappingError>) -> TimeZone {
    match &defaults.timezone {
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
    }
}

impl Compiler<'_> {
    /// `source:`, where the records come from; `None` when the record id does not compile.
    fn source(&mut self, spec: &SourceSpec) -> Option<SourcePlan> {
        let tickets_read = read_options(&spec.tickets.value, spec.tickets.pos, &mut self.errors);
        let id = self.template("source.id", &spec.id);
        let skip_if = spec
            .skip_if
            .as_ref()
            .and_then(|s| self.template("source.skip_if", s));
        let mut sides = vec![];
        for (name, side) in &spec.side {
            sides.push(self.side(name, side));
        }
        Some(SourcePlan {
            file: spec.tickets.value.file.clone(),
            read: tickets_read,
            id: id?,
            skip_if,
            sides,
        })
    }

    /// One side file; its name becomes a template variable, so it must not hide the names
    /// templates already have (`row`, `record`, `ticket`).
    fn side(&mut self, name: &str, side: &Sp<SideFileSpec>) -> SidePlan {
        if matches!(name, "row" | "record" | "ticket") {
            self.errors.push(
                MappingError::at(side.pos, format!("side file name {name:?} is reserved"))
                    .help("pick another name, such as `users` or `comments`"),
            );
        }
        let s = &side.value;
        // A template key is computed from each record (JSM comments carry their issue
        // only in their `self` URL); a plain one is a dotted path.
        let key_template = (s.key.contains("{{") || s.key.contains("{%")).then(|| {
            let key = Sp {
                value: s.key.clone(),
                pos: side.pos,
            };
            self.template(&format!("source.side.{name}.key"), &key)
                .map(|f| Arc::new(f.expr))
        });
        let read = read_options(&s.file_spec(), side.pos, &mut self.errors);
        let join = s.join.as_ref().and_then(|j| {
            self.template(&format!("source.side.{name}.join"), j)
                .map(|f| Arc::new(f.expr))
        });
        let keep_if = s.keep_if.as_ref().and_then(|j| {
            self.template(&format!("source.side.{name}.keep_if"), j)
                .map(|f| f.expr)
        });
        SidePlan {
            name: name.to_string(),
            pos: side.pos,
            file: s.file.clone(),
            read,
            key: s.key.clone(),
            key_template: key_template.flatten(),
            join,
            explode: s.explode.clone(),
            keep_if,
            order_by: s.order_by.clone(),
            optional: s.optional,
        }
    }

    /// `ticket:`, the ticket-create payload; `None` when a field every ticket needs
    /// (category, contact email, subject) does not compile.
    fn ticket(&mut self, t: &TicketSpec) -> Option<TicketFields> {
        let schema = self.schema;
        let category = self.field("ticket.category", &t.category);
        if let (Some(f), Some(s)) = (&category, schema) {
            self.check_category(f, s);
        }
        let contact_name = self.opt("ticket.contact.name", &t.contact.name);
        let contact_email = self.field("ticket.contact.email", &t.contact.email);
        let contact_phone = self.opt("ticket.contact.phone", &t.contact.phone);
        let contact_fields = self.contact_fields(&t.contact.custom_fields);
        let subject = self.field("ticket.subject", &t.subject);
        let html = self.opt("ticket.html", &t.html);
        let text = self.opt("ticket.text", &t.text);
        if t.html.is_none() && t.text.is_none() {
            self.errors.push(
                MappingError::at(
                    t.subject.pos,
                    "ticket: one of `html` and `text` is required (the ticket's first message)",
                )
                .help("add `html: \"{{ description }}\"` or `text: ...` under `ticket:`"),
            );
        }
        let priority = self.opt("ticket.priority", &t.priority);
        if let (Some(f), Some(s)) = (&priority, schema) {
            let names: Vec<&str> = s.priorities.iter().map(|p| p.name.as_str()).collect();
            self.check_names(f, "a priority of the account", "priorities", &names, |_| {
                None
            });
        }
        let assignee = self.opt("ticket.assignee", &t.assignee);
        let tags = self.opt("ticket.tags", &t.tags);
        let cc = self.opt("ticket.cc", &t.cc);
        let bcc = self.opt("ticket.bcc", &t.bcc);
        let created_at = self.opt("ticket.created_at", &t.created_at);
        let due_date = self.opt("ticket.due_date", &t.due_date);
        let visible_only_staff = self.opt("ticket.visible_only_staff", &t.visible_only_staff);
        let custom_fields = self.ticket_fields("ticket.custom_fields", &t.custom_fields);
        let attachments = t
            .attachments
            .as_ref()
            .and_then(|a| self.attachments("ticket.attachments", a));
        let first_message = t.first_message.as_ref().and_then(|f| {
            let author = self.field("ticket.first_message.author", &f.author);
            let author_name = self.opt("ticket.first_message.author_name", &f.author_name);
            let header = self.header("ticket.first_message.header", &f.header, f.author.pos);
            Some(FirstMessagePlan {
                author: author?,
                author_name,
                header,
            })
        });
        Some(TicketFields {
            first_message,
            category: category?,
            contact_name,
            contact_email: contact_email?,
            contact_phone,
            contact_fields,
            subject: subject?,
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
        })
    }

    /// Category names must be the account's, and a constant one public: HappyFox creates
    /// tickets through the API only in public categories.
    fn check_category(&mut self, f: &Field, s: &Schema) {
        let names: Vec<&str> = s.categories.iter().map(|c| c.name.as_str()).collect();
        let cats = s.categories.clone();
        // A private category is an error as a constant; as a map target it only rejects
        // the records that map to it, which the dry run reports per record.
        let constant = f.map.is_none();
        self.check_names(f, "a category of the account", "categories", &names, |n| {
            cats.iter()
                .filter(|_| constant)
                .find(|c| schema::same_name(&c.name, n))
                .filter(|c| !c.public)
                .map(|c| format!("category {:?} is private; HappyFox creates tickets through the API only in public categories", c.name))
        });
    }

    /// `marker:`, how an imported ticket is found again: exactly one of a custom field
    /// and a tag.
    fn marker(&mut self, m: &MarkerSpec) -> Option<Marker> {
        match (&m.custom_field, &m.tag) {
            (Some(cf), None) => {
                let value = m
                    .value
                    .as_ref()
                    .and_then(|v| self.template("marker.value", v));
                let id = self.marker_field_id(cf);
                Some(Marker::CustomField {
                    field: FieldRef {
                        name: cf.value.clone(),
                        id,
                    },
                    value,
                })
            }
            (None, Some(tag)) => self.template("marker.tag", tag).map(Marker::Tag),
            _ => {
                self.errors.push(MappingError::new(
                    "marker: set exactly one of `custom_field` and `tag`",
                ));
                None
            }
        }
    }

    /// The marker field's id, with a schema: it must be a text field, the kind HappyFox
    /// can search a ticket by.
    fn marker_field_id(&mut self, cf: &Sp<String>) -> Option<u64> {
        let s = self.schema?;
        match s
            .ticket_custom_fields
            .iter()
            .find(|f| schema::same_name(&f.name, &cf.value))
        {
            Some(f) if matches!(f.kind, FieldType::Text | FieldType::Textarea) => Some(f.id),
            Some(f) => {
                self.errors.push(MappingError::at(cf.pos, format!("marker field {:?} is a {} field; the marker needs a text field HappyFox can search", f.name, f.kind.as_str())));
                None
            }
            None => {
                let names: Vec<&str> = s
                    .ticket_custom_fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect();
                self.errors.push(MappingError::at(cf.pos, format!("unknown ticket custom field {:?} for the marker", cf.value)).maybe_help(
                    schema::did_you_mean(&cf.value, names.iter().copied()).map(|n| format!("did you mean {n:?}?")).or(Some("create a text custom field (e.g. \"Source ID\", visible to staff only) in HappyFox, or use `marker: { tag: ... }`".into())),
                ));
                None
            }
        }
    }

    /// `conversation:`, the messages after the first; `None` when its entries, kind or
    /// author do not compile (its attachments are then not compiled either).
    fn conversation(&mut self, conv: &ConversationSpec) -> Option<ConversationPlan> {
        let entries = self.template("conversation.entries", &conv.entries);
        let keep_if = conv
            .keep_if
            .as_ref()
            .and_then(|k| self.template("conversation.keep_if", k));
        let history = match conv.history.as_ref().map(|h| h.value) {
            None | Some(HistoryMode::Full) => {
                if let Some(w) = &conv.history_when {
                    self.errors.push(MappingError::at(
                        w.pos,
                        "conversation.history_when applies only with `history: transcript`",
                    ));
                }
                History::Full
            }
            Some(HistoryMode::Transcript) => History::Transcript {
                when: conv
                    .history_when
                    .as_ref()
                    .and_then(|w| self.template("conversation.history_when", w))
                    .map(Box::new),
            },
        };
        let kind = self.field("conversation.kind", &conv.kind);
        if let Some(k) = &kind {
            self.check_names(
                k,
                "a conversation kind",
                "kinds",
                &["staff_reply", "private_note", "contact_reply"],
                |_| None,
            );
        }
        let author = self.field("conversation.author", &conv.author);
        let author_name = self.opt("conversation.author_name", &conv.author_name);
        let id = self.opt("conversation.id", &conv.id);
        let created_at = self.opt("conversation.created_at", &conv.created_at);
        let html = self.opt("conversation.html", &conv.html);
        let text = self.opt("conversation.text", &conv.text);
        if conv.html.is_none() && conv.text.is_none() {
            self.errors.push(MappingError::at(
                conv.entries.pos,
                "conversation: one of `html` and `text` is required",
            ));
        }
        let header = self.header("conversation.header", &conv.header, conv.entries.pos);
        let fallback_agent = conv.fallback_agent.as_ref().map(|f| f.value.clone());
        if let (Some(fa), Some(s)) = (&conv.fallback_agent, self.schema) {
            self.check_fallback_agent(fa, s);
        }
        let order_by = conv.order_by.as_ref().and_then(|o| self.order_by(o));
        Some(ConversationPlan {
            entries: entries?,
            order_by,
            skip_first: conv.skip_first,
            keep_if,
            history,
            id,
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
                .and_then(|a| self.attachments("conversation.attachments", a)),
        })
    }

    /// A message header template, [`DEFAULT_HEADER`] when the mapping has none (placed at
    /// `default_pos` for errors); `None` when the mapping turned it off with `""`.
    fn header(&mut self, at: &str, header: &Option<Sp<String>>, default_pos: Pos) -> Option<Field> {
        let src = header.clone().unwrap_or(Sp {
            value: DEFAULT_HEADER.to_string(),
            pos: default_pos,
        });
        if src.value.is_empty() {
            None
        } else {
            self.template(at, &src)
        }
    }

    /// `conversation.order_by`: a field path, not a template.
    fn order_by(&mut self, o: &Sp<String>) -> Option<String> {
        let path = o.value.trim();
        if path.is_empty() || path.contains("{{") || path.contains("{%") {
            self.errors.push(
                MappingError::at(
                    o.pos,
                    format!(
                        "conversation.order_by: {:?} is not a field of the entries",
                        o.value
                    ),
                )
                .help("name the field each entry is ordered by, as a dotted path without `{{ }}`, e.g. `order_by: createdAt` or `order_by: _parent.created_at`"),
            );
            return None;
        }
        Some(path.to_owned())
    }

    /// The fallback agent stands in for authors HappyFox does not know as agents, so it
    /// must be an active agent of the account.
    fn check_fallback_agent(&mut self, fa: &Sp<String>, s: &Schema) {
        match s.staff.iter().find(|st| {
            schema::same_name(&st.email, &fa.value) || schema::same_name(&st.name, &fa.value)
        }) {
            Some(st) if !st.active => self.errors.push(MappingError::at(
                fa.pos,
                format!("fallback agent {:?} is inactive in HappyFox", fa.value),
            )),
            Some(_) => {}
            None => self.errors.push(
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

    /// `final:`, the state a ticket ends in, its names checked like the ticket's.
    fn final_state(&mut self, f: &FinalSpec) -> FinalPlan {
        let mut final_state = FinalPlan {
            status: self.opt("final.status", &f.status),
            ..FinalPlan::default()
        };
        if let (Some(st), Some(s)) = (&final_state.status, self.schema) {
            let names: Vec<&str> = s.statuses.iter().map(|x| x.name.as_str()).collect();
            self.check_names(st, "a status of the account", "statuses", &names, |_| None);
        }
        final_state.custom_fields = self.ticket_fields("final.custom_fields", &f.custom_fields);
        final_state
    }
}
