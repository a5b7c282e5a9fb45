//! The draft itself: read the export, count, match, edit the preset's text, check the
//! result compiles against the account, and write one test case from the first record.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::matching::How;
use super::preset::{self, Definition, Preset};
use super::render::{self, Edit, block_end, comment_out, draft_map, indent_of, key, q, tickets};
use super::values::{Seen, SourceFields};
use super::{InitError, InitOptions, csv};
use crate::mapping::{self, Field, Plan};
use crate::payload::RecordOutcome;
use crate::schema::{FieldType, Schema};
use crate::source;

/// The drafted mapping, its tests file and what to tell the user.
#[derive(Debug)]
pub struct Draft {
    pub mapping: String,
    pub tests: String,
    pub summary: Summary,
}

/// What `init` found, for stdout.
#[derive(Debug, Default)]
pub struct Summary {
    /// Which records were read.
    pub read: String,
    pub matched: Vec<String>,
    /// Values and fields a person must decide on (each a TODO in the mapping).
    pub decide: Vec<String>,
    /// What the export has that the account lacks: create it in HappyFox before the run.
    pub lacking: Vec<String>,
    pub todos: usize,
    /// The `--side` arguments init read with, which the dry run and import need too.
    pub side_args: String,
}

impl Summary {
    pub fn render(&self, out: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.read);
        for (title, list) in [
            ("matched", &self.matched),
            ("needs a decision (a # TODO in the mapping)", &self.decide),
            (
                "in the export but not in the account (create before the import, or leave out)",
                &self.lacking,
            ),
        ] {
            let _ = writeln!(
                s,
                "{title}:{}",
                if list.is_empty() { " nothing" } else { "" }
            );
            for l in list {
                render::bullet(&mut s, l);
            }
        }
        let _ = writeln!(
            s,
            "{}: {} TODO line{}; then run `hfmigrate check` and `hfmigrate dry-run` on it",
            out.display(),
            self.todos,
            if self.todos == 1 { "" } else { "s" }
        );
        if !self.side_args.is_empty() {
            let _ = writeln!(
                s,
                "side files were read from outside the export: pass{} to dry-run, import and verify too",
                self.side_args
            );
        }
        s
    }
}

/// Where a value-mapped field's names come from in the account.
fn target_names<'s>(schema: &'s Schema, field: &str) -> Option<(Vec<&'s str>, String)> {
    let names = |v: Vec<&'s str>, what: &str| Some((v, what.to_string()));
    match field {
        "ticket.category" => names(
            schema
                .categories
                .iter()
                .filter(|c| c.public)
                .map(|c| c.name.as_str())
                .collect(),
            "public category",
        ),
        "ticket.priority" => names(
            schema.priorities.iter().map(|p| p.name.as_str()).collect(),
            "priority",
        ),
        "final.status" => names(
            schema.statuses.iter().map(|p| p.name.as_str()).collect(),
            "status",
        ),
        f => {
            let (list, name) = if let Some(n) = f.strip_prefix("ticket.contact.custom_fields.") {
                (
                    schema
                        .user_custom_fields
                        .iter()
                        .find(|x| crate::schema::same_name(&x.name, n))
                        .map(|x| (x.kind.clone(), x.choices.as_deref())),
                    n,
                )
            } else if let Some(n) = f
                .strip_prefix("ticket.custom_fields.")
                .or_else(|| f.strip_prefix("final.custom_fields."))
            {
                (
                    schema
                        .ticket_custom_fields
                        .iter()
                        .find(|x| crate::schema::same_name(&x.name, n))
                        .map(|x| (x.kind.clone(), x.choices.as_deref())),
                    n,
                )
            } else {
                return None;
            };
            match list? {
                (FieldType::Choice | FieldType::MultipleChoice, choices) => names(
                    choices
                        .unwrap_or(&[])
                        .iter()
                        .map(|c| c.text.as_str())
                        .collect(),
                    &format!("choice of {name:?}"),
                ),
                _ => None,
            }
        }
    }
}

/// The custom field a plan field writes, and whether it is a contact field.
fn custom_field_name(field: &str) -> Option<(&str, bool)> {
    field
        .strip_prefix("ticket.contact.custom_fields.")
        .map(|n| (n, true))
        .or_else(|| {
            field
                .strip_prefix("ticket.custom_fields.")
                .map(|n| (n, false))
        })
}

fn account_has(schema: &Schema, name: &str, contact: bool) -> bool {
    if contact {
        schema
            .user_custom_fields
            .iter()
            .any(|f| crate::schema::same_name(&f.name, name))
    } else {
        schema
            .ticket_custom_fields
            .iter()
            .any(|f| crate::schema::same_name(&f.name, name))
    }
}

/// The line of a field's key in the preset text (0-based): a scalar or an inline
/// `{ value, map }` sits on its key's line, a block map starts the line after.
fn key_line(lines: &[&str], field: &Field) -> Option<usize> {
    let at = (field.pos.line as usize).checked_sub(1)?;
    let line = lines.get(at)?;
    let t = line.trim_start();
    if t.starts_with("value:") {
        at.checked_sub(1)
    } else {
        Some(at)
    }
}

pub(super) fn draft(preset: &'static Preset, opts: &InitOptions) -> Result<Draft, InitError> {
    let path = Path::new("mappings").join(format!("{}.yaml", preset.name));
    let spec = mapping::parse(&path, preset.mapping)
        .map_err(|e| InitError::Preset(preset.name, e.to_string()))?;
    let plan = mapping::compile(&spec, None)
        .map_err(|e| InitError::Preset(preset.name, format!("{e:?}")))?;
    let files = source::resolve_inputs(&opts.inputs, &plan.source.file)?;
    let (sides, _) = crate::pipeline::build_sides(&plan, &opts.inputs, &opts.sides)?;
    let mut seen = Seen::default();
    let mut first: Option<Json> = None;
    let mut read_files = vec![];
    let mut skipped = 0u64;
    let mut unreadable: Vec<String> = vec![];
    'files: for file in &files {
        read_files.push(file.display().to_string());
        for item in source::read(file, &plan.source.read)? {
            if opts.sample.is_some_and(|n| seen.records + skipped >= n) {
                break 'files;
            }
            match item {
                Ok(r) => {
                    // Drafting reads a sample, not the export: plain JSON is simplest here.
                    let value = r.value.into_json();
                    let input = crate::mapping::template::RecordInput::new(&value, &sides);
                    let skip = plan
                        .source
                        .skip_if
                        .as_ref()
                        .is_some_and(|s| s.expr.eval_record(&input).is_ok_and(|v| v.is_true()));
                    if skip {
                        skipped += 1;
                        continue;
                    }
                    seen.add(&plan, &sides, preset.fields, &value);
                    first.get_or_insert(value);
                }
                Err(e) => {
                    seen.unreadable += 1;
                    if unreadable.len() < 5 {
                        unreadable.push(format!("unreadable record, not counted: {e}"));
                    }
                }
            }
        }
    }
    let root = source::export_root(&opts.inputs);
    let defs = match &preset.definitions {
        Some(d) => preset::definitions(d, &root)?.map(|(defs, _)| (d.file, defs)),
        None => None,
    };
    let groups = match &preset.groups {
        Some(g) => preset::definitions(g, &root)?.map(|(groups, _)| (g.file, groups)),
        None => None,
    };
    let mut summary = Summary {
        read: format!(
            "read {} ticket record{}{} from {}{}",
            seen.records,
            if seen.records == 1 { "" } else { "s" },
            match opts.sample {
                Some(n) if seen.records + skipped >= n =>
                    format!(" (of the first {n}, --sample {n})"),
                _ => " (all)".into(),
            },
            read_files.join(", "),
            if seen.unreadable > 0 {
                format!("; {} unreadable, not counted", seen.unreadable)
            } else {
                String::new()
            },
        ) + &if skipped > 0 {
            format!("; {skipped} more skipped by source.skip_if, not counted")
        } else {
            String::new()
        },
        side_args: side_args(opts),
        ..Summary::default()
    };
    if seen.unreadable > unreadable.len() as u64 {
        let more = seen.unreadable - unreadable.len() as u64;
        unreadable.push(format!("and {more} more unreadable records"));
    }
    summary.decide.extend(unreadable);
    if let Some((file, g)) = &groups {
        summary.matched.push(format!(
            "{} group names read from {file}: categories matched by group name",
            g.len()
        ));
    }
    if let Some((file, d)) = &defs {
        summary.matched.push(format!(
            "{} field definitions read from {file}: custom fields matched by name",
            d.len()
        ));
    }
    let mut text = mapping_text(
        preset,
        &plan,
        groups.as_ref().map(|(_, g)| g),
        &seen,
        defs.as_ref().map(|(_, d)| d),
        opts,
        &mut summary,
    );
    if preset.fields == SourceFields::Columns {
        text = with_profile(&text, &seen);
    }
    let compiled = mapping::compile(
        &mapping::parse(&opts.out, &text).map_err(InitError::Draft)?,
        Some(opts.schema.clone()),
    )
    .map_err(|e| InitError::Draft(crate::mapping::MappingErrors::new(&opts.out, &text, e)))?;
    let tests = tests_text(&compiled, opts.schema.clone(), first.as_ref(), opts)?;
    summary.todos = render::todo_count(&text);
    Ok(Draft {
        mapping: text,
        tests,
        summary,
    })
}

#[allow(clippy::too_many_arguments)]
fn mapping_text(
    preset: &Preset,
    plan: &Plan,
    groups: Option<&IndexMap<String, Definition>>,
    seen: &Seen,
    defs: Option<&IndexMap<String, Definition>>,
    opts: &InitOptions,
    summary: &mut Summary,
) -> String {
    let schema = &opts.schema;
    let lines: Vec<&str> = preset.mapping.lines().collect();
    let mut edits = vec![];
    let mut mapped_fields: Vec<(String, bool)> = vec![];
    let mut route: Option<CategoryRoute> = None;
    let hints_of = |name: &str| -> IndexMap<String, String> {
        plan.fields()
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.map.as_ref())
            .map(|m| {
                m.entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    for field in plan.fields() {
        if field.name.starts_with("conversation") || field.name.starts_with("source") {
            continue;
        }
        let Some(at) = key_line(&lines, field) else {
            continue;
        };
        let end = block_end(&lines, at);
        let counts = seen.fields.get(&field.name).cloned().unwrap_or_default();
        if preset.fields == SourceFields::Columns && seen.records > 0 {
            let missing: Vec<String> = column_refs(&field.source)
                .into_iter()
                .filter(|c| !seen.source.contains_key(c))
                .collect();
            if !missing.is_empty() && custom_field_name(&field.name).is_none() {
                let pad = " ".repeat(indent_of(lines[at]));
                let columns: Vec<String> = seen.source.keys().map(|c| q(c)).collect();
                edits.push(Edit {
                    start: at,
                    end: at,
                    lines: vec![format!(
                        "{pad}# TODO the export has no column {}; its columns: {}",
                        missing.iter().map(|c| q(c)).collect::<Vec<_>>().join(", "),
                        columns.join(", ")
                    )],
                });
                summary.decide.push(format!(
                    "{}: no column {} in the export",
                    field.name,
                    missing.join(", ")
                ));
            }
        }
        let custom = custom_field_name(&field.name);
        if let Some((name, contact)) = custom {
            if !account_has(schema, name, contact) {
                let what = if contact { "contact" } else { "ticket" };
                edits.push(Edit { start: at, end, lines: comment_out(&lines[at..end], &format!("the account has no {what} custom field {name:?} ({} have a value): create it in HappyFox, or leave this out", tickets(counts.filled))) });
                summary.lacking.push(format!(
                    "{what} custom field {name:?} ({} have a value)",
                    tickets(counts.filled)
                ));
                continue;
            }
            if counts.filled == 0 && seen.records > 0 {
                edits.push(Edit { start: at, end, lines: comment_out(&lines[at..end], &format!("no record read has a value for {name:?} here: find the field in your export, or leave this out")) });
                summary.decide.push(format!(
                    "{name:?}: the preset's source ({}) is empty in every record read",
                    field.source
                ));
                continue;
            }
            mapped_fields.push((name.to_string(), contact));
        }
        if field.expr.is_const() {
            continue;
        }
        let Some((names, what)) = target_names(schema, &field.name) else {
            continue;
        };
        let default = field.map.as_ref().and_then(|m| m.default.clone());
        let ind = " ".repeat(indent_of(lines[at]) + 2);
        let key_text = lines[at]
            .trim_start()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        let hints = hints_of(&field.name);
        let hint = |v: &str| {
            hints.get(v).cloned().or_else(|| {
                hints
                    .iter()
                    .find(|(k, _)| k.to_lowercase() == v.to_lowercase())
                    .map(|(_, t)| t.clone())
            })
        };
        let named = |v: &str| {
            (field.name == "ticket.category")
                .then_some(groups)
                .flatten()
                .and_then(|g| g.get(v))
                .map(|d| d.label.clone())
        };
        let mut d = draft_map(&ind, &counts, &hint, &named, &names, &what);
        if field.name == "ticket.category" {
            let default = default.as_deref().and_then(|def| {
                super::matching::best(def, None, &names).map(|(n, _)| n.to_string())
            });
            route = Some(CategoryRoute {
                source: field.source.clone(),
                values: d
                    .matched
                    .iter()
                    .map(|(v, n, _)| (v.clone(), n.clone()))
                    .collect(),
                default,
            });
            // A private category is the account's, but no ticket can be created in it.
            for l in &mut d.lines {
                for c in schema.categories.iter().filter(|c| !c.public) {
                    let todo = format!("# TODO {} (", q(&c.name));
                    let suggested = format!("(the preset's {:?} is not one)", c.name);
                    if l.trim_start().starts_with(&todo)
                        && let Some(i) = l.find("): ")
                    {
                        l.replace_range(i + 3.., "a private category: HappyFox creates no ticket in it through the API; map it to a public one");
                    } else if let Some(i) = l.find(&suggested) {
                        l.replace_range(
                            i..i + suggested.len(),
                            &format!("(the preset's {:?} is private: HappyFox creates no ticket in it through the API; map it to a public one)", c.name),
                        );
                    }
                }
            }
        }
        // A default beside a map with no entry would map every value to it, which
        // `check` refuses: it waits, commented, until the user decides an entry.
        let has_entries = d.lines.iter().any(|l| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with("map:")
        });
        let mut block = vec![format!("{}{}:", " ".repeat(indent_of(lines[at])), key_text)];
        block.push(format!("{ind}value: {}", q(&field.source)));
        block.extend(d.lines);
        match &default {
            Some(def) if !has_entries => block.push(format!(
                "{ind}# default: {}  (uncomment once the map has an entry: alone it would replace every value)",
                q(def)
            )),
            Some(def)
                if def.is_empty() || names.iter().any(|n| crate::schema::same_name(n, def)) =>
            {
                block.push(format!("{ind}default: {}", q(def)))
            }
            Some(def) => {
                let fixed = super::matching::best(def, None, &names);
                match fixed {
                    Some((n, _)) => {
                        block.push(format!("{ind}default: {}  # the preset's {def:?}", q(n)))
                    }
                    None => {
                        block.push(format!("{ind}# TODO default: the preset's {def:?} is not a {what} of the account; closest: {}", super::matching::closest(def, &names).join(", ")));
                        summary
                            .decide
                            .push(format!("{}: a default for unmapped values", field.name));
                    }
                }
            }
            None => {}
        }
        if counts.empty > 0 {
            let then = if block.iter().any(|l| l.trim_start().starts_with("default:")) {
                "the default"
            } else {
                "left empty"
            };
            block.push(format!(
                "{ind}# without a value: {} ({then})",
                tickets(counts.empty)
            ));
        }
        let how = |h: How| d.matched.iter().filter(|m| m.2 == h).count();
        summary.matched.push(format!(
            "{}: {} value{} ({} exact, {} same name, {} preset, {} close: check)",
            field.name,
            d.matched.len(),
            if d.matched.len() == 1 { "" } else { "s" },
            how(How::Exact),
            how(How::Normal),
            how(How::Preset),
            how(How::Close)
        ));
        for v in &d.todo {
            let n = counts.values.get(v).copied().unwrap_or(0);
            summary
                .decide
                .push(format!("{}: {} ({})", field.name, q(v), tickets(n)));
        }
        edits.push(Edit {
            start: at,
            end,
            lines: block,
        });
    }
    edits.extend(account_specific(plan, &lines, schema, summary));
    let extra = extra_fields(
        preset,
        seen,
        defs,
        schema,
        route.as_ref(),
        &mut mapped_fields,
        summary,
    );
    if !extra.is_empty()
        && let Some(at) = lines.iter().position(|l| *l == "  custom_fields:")
    {
        let end = block_end(&lines, at);
        edits.push(Edit {
            start: end,
            end,
            lines: extra,
        });
    }
    let mut text = render::apply(preset.mapping, edits);
    text = text.replacen(
        "# yaml-language-server: $schema=mapping.schema.json\n#\n",
        "",
        1,
    );
    let header = format!(
        "# Drafted by `hfmigrate init --from {}` from {}{} and {}.\n# Every value map holds the values read, with their counts; `# TODO` lines need a\n# decision. Then: hfmigrate check --mapping THIS --schema SCHEMA, and a dry run.\n#\n",
        preset.name,
        opts.inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        side_args(opts),
        opts.schema
            .source
            .as_deref()
            .unwrap_or("the account schema"),
    );
    text.insert_str(0, &header);
    text.push_str(&unmapped_account_fields(schema, &mapped_fields));
    text
}

/// The preset's account-specific names (the marker field, the fallback agent) replaced
/// when the account lacks them, each with a TODO, so the draft still compiles.
fn account_specific(
    plan: &Plan,
    lines: &[&str],
    schema: &Schema,
    summary: &mut Summary,
) -> Vec<Edit> {
    let mut edits = vec![];
    if let Some(crate::mapping::Marker::CustomField { field, value }) = &plan.marker {
        let usable = schema.ticket_custom_fields.iter().any(|f| {
            crate::schema::same_name(&f.name, &field.name)
                && matches!(f.kind, FieldType::Text | FieldType::Textarea)
        });
        if !usable && let Some(at) = lines.iter().position(|l| l.starts_with("marker:")) {
            let tag = value
                .as_ref()
                .map_or("{{ id }}".to_string(), |v| v.source.clone());
            edits.push(Edit {
                start: at,
                end: at + 1,
                lines: vec![
                    format!("# TODO the account has no text field {:?} to mark migrated tickets with: create one (visible to staff only) and use `marker: {{ custom_field: {}, value: ... }}`, or keep this tag", field.name, key(&field.name)),
                    format!("marker: {{ tag: {} }}", q(&tag)),
                ],
            });
            summary.lacking.push(format!(
                "ticket field {:?} (text) for the marker; a tag is used meanwhile",
                field.name
            ));
        }
    }
    if let Some(agent) = plan
        .conversation
        .as_ref()
        .and_then(|c| c.fallback_agent.as_deref())
    {
        let known = schema.staff.iter().any(|s| {
            s.active
                && (crate::schema::same_name(&s.email, agent)
                    || crate::schema::same_name(&s.name, agent))
        });
        if !known
            && let Some(at) = lines
                .iter()
                .position(|l| l.trim_start().starts_with("fallback_agent:"))
        {
            let pad = " ".repeat(indent_of(lines[at]));
            let pick = schema
                .staff
                .iter()
                .filter(|s| s.active)
                .min_by_key(|s| !s.is_account_admin);
            let why = "replies whose author is no active HappyFox agent are posted as this agent";
            let new = match pick {
                Some(s) => vec![
                    format!(
                        "{pad}# TODO check: {why} (the preset's {agent:?} is not an agent of the account)"
                    ),
                    format!("{pad}fallback_agent: {}", q(&s.email)),
                ],
                None => vec![format!(
                    "{pad}# TODO the account has no active agent; {why}: fallback_agent: AGENT-EMAIL"
                )],
            };
            edits.push(Edit {
                start: at,
                end: at + 1,
                lines: new,
            });
            summary.decide.push(format!(
                "conversation.fallback_agent: the preset's {agent:?} is not an active agent of the account"
            ));
        }
    }
    edits
}

/// The CSV columns a template names as `row['X']` or `row["X"]`.
fn column_refs(source: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = source;
    while let Some(i) = rest.find("row[") {
        rest = &rest[i + 4..];
        let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        if let Some(end) = rest[1..].find(quote) {
            out.push(rest[1..1 + end].to_string());
        }
    }
    out
}

/// Source custom fields (or columns) the preset does not read, matched by name to the
/// account's ticket fields not yet mapped: a live entry when matched, a TODO otherwise.
fn extra_fields(
    preset: &Preset,
    seen: &Seen,
    defs: Option<&IndexMap<String, Definition>>,
    schema: &Schema,
    route: Option<&CategoryRoute>,
    mapped: &mut Vec<(String, bool)>,
    summary: &mut Summary,
) -> Vec<String> {
    let mut out = vec![];
    for (k, counts) in &seen.source {
        if preset.fields.read_by(preset.mapping, k) || counts.filled == 0 {
            continue;
        }
        let def = defs.and_then(|d| d.get(k));
        let label = match def {
            Some(d) => d.label.clone(),
            None => preset.fields.label(k),
        };
        let unnamed = def.is_none() && preset.fields.needs_definition(k);
        let free: Vec<&str> = schema
            .ticket_custom_fields
            .iter()
            .filter(|f| {
                !mapped
                    .iter()
                    .any(|(m, c)| !c && crate::schema::same_name(m, &f.name))
            })
            .map(|f| f.name.as_str())
            .collect();
        let shape = seen.shapes.get(k).copied().unwrap_or_default();
        let template = preset.fields.template(k, shape);
        let by_name = if unnamed {
            None
        } else {
            super::matching::best(&label, None, &free)
        };
        let Some((hf, how)) = by_name else {
            let why = if unnamed {
                format!(
                    "no definition (export {} to match it by name)",
                    preset.definitions.map_or("the field list", |d| d.file)
                )
            } else if free.is_empty() {
                format!(
                    "no ticket field of the account is named like {label:?}, and every one is written above"
                )
            } else {
                format!(
                    "no ticket field of the account is named like {label:?}; closest: {}",
                    super::matching::closest(&label, &free).join(", ")
                )
            };
            out.push(format!(
                "    # TODO source field {} ({}, e.g. {}): {why}",
                q(k),
                tickets(counts.filled),
                counts.examples(3)
            ));
            out.push(format!("    # {}: {}", key(&label), q(&template)));
            summary.lacking.push(format!(
                "source field {k:?} ({label}, {}): no HappyFox field",
                tickets(counts.filled)
            ));
            continue;
        };
        mapped.push((hf.to_string(), false));
        let field = schema.ticket_custom_fields.iter().find(|f| f.name == hf);
        let choices: Option<Vec<&str>> = field.and_then(|f| match f.kind {
            FieldType::Choice | FieldType::MultipleChoice => Some(
                f.choices
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .map(|c| c.text.as_str())
                    .collect(),
            ),
            _ => None,
        });
        let sep = if preset.fields == SourceFields::Columns {
            csv::role(counts, 1)
        } else {
            String::new()
        };
        let template = match sep.split('\'').nth(1) {
            Some(s) if sep.starts_with("list") => {
                template.replace(" }}", &format!(" | split('{s}') }}}}"))
            }
            _ => template,
        };
        // A field limited to some categories rejects a ticket of another one that has a
        // value: the draft reads it only for tickets routed to its categories.
        let limited = field.and_then(|f| only_in(schema, f));
        let template = match (&limited, route) {
            (None, _) => template,
            (Some(allowed), Some(r)) => match r.guard(allowed) {
                Some(guard) => {
                    let inner = template
                        .trim_start_matches("{{")
                        .trim_end_matches("}}")
                        .trim();
                    format!("{{{{ ({inner}) if {guard} }}}}")
                }
                None => template,
            },
            (Some(_), None) => template,
        };
        if let Some(allowed) = &limited {
            let how = if route.and_then(|r| r.guard(allowed)).is_some() {
                "read only for tickets routed there, a value on another ticket is left out"
            } else {
                "a ticket of another category with a value is rejected"
            };
            out.push(format!(
                "    # TODO {hf:?} applies only to {}: {how}; keep, or route those tickets there",
                allowed.join(", ")
            ));
            summary.decide.push(format!(
                "ticket.custom_fields.{hf}: applies only to {}",
                allowed.join(", ")
            ));
        }
        summary.matched.push(format!(
            "source field {k:?} ({label}) → {hf:?} ({})",
            how.label()
        ));
        match choices {
            None => out.push(format!(
                "    {}: {}  # from {} ({}), {}",
                key(hf),
                q(&template),
                q(k),
                tickets(counts.filled),
                how.label()
            )),
            Some(names) => {
                out.push(format!(
                    "    {}:  # from {} ({}), {}",
                    key(hf),
                    q(k),
                    tickets(counts.filled),
                    how.label()
                ));
                out.push(format!("      value: {}", q(&template)));
                let options = def.map(|d| d.options.clone()).unwrap_or_default();
                let named = |v: &str| options.get(v).cloned();
                let d = draft_map(
                    "      ",
                    counts,
                    &|_| None,
                    &named,
                    &names,
                    &format!("choice of {hf:?}"),
                );
                for v in &d.todo {
                    summary
                        .decide
                        .push(format!("ticket.custom_fields.{hf}: {}", q(v)));
                }
                out.extend(d.lines);
            }
        }
    }
    out
}

/// How the draft routes tickets to categories: the category's template and its drafted
/// map, so a field limited to some categories can be read only for those tickets.
struct CategoryRoute {
    source: String,
    /// Export value → account category, as drafted.
    values: Vec<(String, String)>,
    /// The category of values the map does not hold.
    default: Option<String>,
}

impl CategoryRoute {
    /// A template test true exactly for tickets routed to one of `allowed`; `None` when
    /// the route is no single expression.
    fn guard(&self, allowed: &[String]) -> Option<String> {
        let expr = self.source.trim();
        let inner = expr.strip_prefix("{{")?.strip_suffix("}}")?.trim();
        if inner.is_empty() || inner.contains("{{") || inner.contains("{%") {
            return None;
        }
        let list = |keep: bool| {
            let v: Vec<String> = self
                .values
                .iter()
                .filter(|(_, n)| allowed.contains(n) == keep)
                .map(|(v, _)| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
                .collect();
            format!("[{}]", v.join(", "))
        };
        let to_default = self.default.as_ref().is_some_and(|d| allowed.contains(d));
        Some(if to_default {
            format!("(({inner}) | string) not in {}", list(false))
        } else {
            format!("(({inner}) | string) in {}", list(true))
        })
    }
}

/// The public categories a field applies to, when it does not apply to all of them.
fn only_in(schema: &Schema, field: &crate::schema::TicketCustomField) -> Option<Vec<String>> {
    let public: Vec<&crate::schema::Category> =
        schema.categories.iter().filter(|c| c.public).collect();
    let allowed: Vec<String> = public
        .iter()
        .filter(|c| field.applies_to(c.id))
        .map(|c| c.name.clone())
        .collect();
    (allowed.len() < public.len()).then_some(allowed)
}

/// The account's fields no entry writes, compulsory ones first, as a closing comment.
fn unmapped_account_fields(schema: &Schema, mapped: &[(String, bool)]) -> String {
    let mut ticket: Vec<(bool, String)> = schema
        .ticket_custom_fields
        .iter()
        .filter(|f| {
            !mapped
                .iter()
                .any(|(m, c)| !c && crate::schema::same_name(m, &f.name))
        })
        .map(|f| {
            let must = f.required || f.compulsory_on_completed || f.compulsory_on_move;
            let note = if f.required {
                ", required"
            } else if f.compulsory_on_completed {
                ", compulsory on completion"
            } else if f.compulsory_on_move {
                ", compulsory on move"
            } else {
                ""
            };
            (
                !must,
                format!("#   ticket field {:?} ({}{note})", f.name, f.kind.as_str()),
            )
        })
        .collect();
    ticket.sort_by_key(|t| t.0);
    let contact: Vec<String> = schema
        .user_custom_fields
        .iter()
        .filter(|f| {
            !mapped
                .iter()
                .any(|(m, c)| *c && crate::schema::same_name(m, &f.name))
        })
        .map(|f| {
            format!(
                "#   contact field {:?} ({}{})",
                f.name,
                f.kind.as_str(),
                if f.required { ", required" } else { "" }
            )
        })
        .collect();
    if ticket.is_empty() && contact.is_empty() {
        return String::new();
    }
    let mut s =
        String::from("\n# HappyFox fields no entry above writes (compulsory ones first):\n");
    for (_, l) in ticket {
        s.push_str(&l);
        s.push('\n');
    }
    for l in contact {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// The CSV columns with fill rate, examples and guessed role, after the header comment.
fn with_profile(text: &str, seen: &Seen) -> String {
    let mut p = String::from(
        "# Columns of the export (filled / records read, examples, what they look like):\n",
    );
    for (col, c) in &seen.source {
        let pct = (c.filled * 100).checked_div(seen.records).unwrap_or(0);
        let role = csv::role(c, seen.repeats.get(col).copied().unwrap_or(1));
        let _ = writeln!(
            p,
            "#   {}: {pct}% ({}/{}), e.g. {}{}",
            q(col),
            c.filled,
            seen.records,
            c.examples(3),
            if role.is_empty() {
                String::new()
            } else {
                format!("; {role}")
            }
        );
    }
    p.push_str("#\n");
    match text.find("\nsource:") {
        Some(i) => format!("{}{}{}", &text[..i + 1], p, &text[i + 1..]),
        None => format!("{p}{text}"),
    }
}

/// ` --side NAME=PATH` for each side file the user placed, in the order given.
fn side_args(opts: &InitOptions) -> String {
    opts.sides
        .iter()
        .map(|(name, path)| format!(" --side {name}={}", path.display()))
        .collect()
}

/// A tests file with one case: the first record read, the side-file records that belong
/// to it, and what the drafted mapping makes of it now.
fn tests_text(
    plan: &Plan,
    schema: Arc<Schema>,
    first: Option<&Json>,
    opts: &InitOptions,
) -> Result<String, InitError> {
    let mut s = format!(
        "# Unit tests of {}: hfmigrate test --mapping {} --schema SCHEMA\n# Drafted by `hfmigrate init` from the first record read; edit the expectations to\n# what the ticket must become, and add cases (a rejected record, a reply, a note).\ncases:\n",
        opts.out.display(),
        opts.out.display()
    );
    let Some(ticket) = first else {
        s.push_str("  []\n");
        return Ok(s);
    };
    let mut side: IndexMap<String, Vec<Json>> = IndexMap::new();
    let mut scalars = vec![];
    collect_scalars(ticket, &mut scalars, 0);
    let sides_ctx = Arc::new(crate::mapping::template::Sides::default());
    let paths = crate::pipeline::side_paths(plan, &opts.inputs, &opts.sides)?;
    for (sp, (_, files)) in plan.source.sides.iter().zip(paths) {
        let join_key = sp.join.as_ref().and_then(|e| {
            e.eval_record_string(&crate::mapping::template::RecordInput::new(
                ticket, &sides_ctx,
            ))
            .ok()
        });
        let mut entries = vec![];
        for path in &files {
            for item in source::read(path, &sp.read)?.flatten() {
                let value = item.value.into_json();
                let Some(k) = source::get_path(&value, &sp.key).and_then(source::key_string) else {
                    continue;
                };
                let belongs = match &join_key {
                    Some(j) => &k == j,
                    None => scalars.contains(&k),
                };
                if belongs && entries.len() < 50 {
                    entries.push(value);
                }
            }
        }
        if !entries.is_empty() {
            side.insert(sp.name.clone(), entries);
        }
    }
    let dir = tempfile::tempdir().map_err(|source| InitError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let outcome = crate::mapping_tests::build(plan, schema, dir.path(), 0, ticket, &side);
    let json = |v: &Json| serde_json::to_string(v).unwrap_or_default();
    let _ = writeln!(s, "  - name: the first record read");
    let _ = writeln!(s, "    ticket: {}", json(ticket));
    if !side.is_empty() {
        let _ = writeln!(s, "    side:");
        for (name, entries) in &side {
            let _ = writeln!(s, "      {}:", key(name));
            for e in entries {
                let _ = writeln!(s, "        - {}", json(e));
            }
        }
    }
    let _ = writeln!(s, "    expect:");
    match outcome {
        Ok(RecordOutcome::Valid { plan, warnings }) => {
            let _ = writeln!(s, "      outcome: valid");
            let mut frag = serde_json::Map::new();
            for k in ["category", "subject", "priority", "email"] {
                if let Some(v) = plan.payload.get(k) {
                    frag.insert(k.to_string(), v.clone());
                }
            }
            let _ = writeln!(s, "      payload: {}", json(&Json::Object(frag)));
            let _ = writeln!(s, "      problems: [{}]", problems(&warnings));
        }
        Ok(RecordOutcome::Rejected { problems: p, .. }) => {
            let _ = writeln!(s, "      outcome: rejected");
            let _ = writeln!(s, "      problems: [{}]", problems(&p));
        }
        Ok(RecordOutcome::Skipped { .. }) => {
            let _ = writeln!(s, "      outcome: skipped");
        }
        Err(e) => {
            let _ = writeln!(
                s,
                "      # TODO the drafted mapping cannot build this record yet: {}",
                e.replace('\n', " ")
            );
            let _ = writeln!(s, "      outcome: valid");
        }
    }
    Ok(s)
}

fn problems(list: &[crate::problem::Problem]) -> String {
    list.iter()
        .map(|p| {
            let kind = serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{{ kind: {kind}, field: {} }}", q(&p.field))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn collect_scalars(v: &Json, out: &mut Vec<String>, depth: usize) {
    if depth > 4 || out.len() > 500 {
        return;
    }
    match v {
        Json::Object(m) => m.values().for_each(|x| collect_scalars(x, out, depth + 1)),
        Json::Array(a) => a.iter().for_each(|x| collect_scalars(x, out, depth + 1)),
        other => out.extend(source::key_string(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(default: Option<&str>) -> CategoryRoute {
        CategoryRoute {
            source: "{{ group_id }}".into(),
            values: vec![
                ("1".into(), "Support".into()),
                ("2".into(), "Billing".into()),
                ("3".into(), "Sales".into()),
            ],
            default: default.map(str::to_string),
        }
    }

    #[test]
    fn a_guard_holds_for_exactly_the_tickets_routed_to_the_fields_categories() {
        let allowed = ["Billing".to_string(), "Sales".to_string()];
        assert_eq!(
            route(Some("Support")).guard(&allowed).as_deref(),
            Some("((group_id) | string) in ['2', '3']")
        );
        // Unmapped values go to the default, which the field applies to.
        assert_eq!(
            route(Some("Billing")).guard(&allowed).as_deref(),
            Some("((group_id) | string) not in ['1']")
        );
        let mut templated = route(None);
        templated.source = "{% if x %}1{% endif %}".into();
        assert_eq!(templated.guard(&allowed), None);
    }
}
