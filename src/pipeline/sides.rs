//! The side files a mapping names, found in the export (or given with `--side`) and
//! indexed before the first record is read, with the figures the report shows for each.

use std::path::PathBuf;
use std::sync::Arc;

use minijinja::value::Value;

use super::{PipelineError, SideFileStats};
use crate::mapping::compile::SidePlan;
use crate::mapping::template::{SideTable, Sides};
use crate::mapping::{MappingError, Plan};
use crate::problem::{Problem, ProblemKind, Sampled};
use crate::source::{self, SideIndex, SideSpec};

/// Indexes the side files named in the plan.
pub(crate) fn build_sides(
    plan: &Plan,
    inputs: &[PathBuf],
    overrides: &[(String, PathBuf)],
) -> Result<(Arc<Sides>, Vec<SideFileStats>), PipelineError> {
    check_overrides(plan, overrides)?;
    let root = source::export_root(inputs);
    let mut sides = Sides::default();
    let mut reports = vec![];
    for sp in &plan.source.sides {
        let given = overrides.iter().find(|(n, _)| n == &sp.name);
        let path = given
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| root.join(&sp.file));
        // A file the user named must exist, optional or not: a typo there would
        // otherwise drop every entry of the side file without a word.
        if let Some((name, p)) = given
            && !p.is_file()
        {
            return Err(PipelineError::Side {
                name: name.clone(),
                message: format!(
                    "--side {name}={} names no file; check the path",
                    p.display()
                ),
            });
        }
        let (table, stats) = open_side(sp, path)?;
        reports.push(stats);
        let table = Arc::new(table);
        match &sp.join {
            Some(expr) => {
                sides.joins.insert(sp.name.clone(), (table, expr.clone()));
            }
            None => {
                sides.tables.insert(sp.name.clone(), table);
            }
        }
    }
    Ok((Arc::new(sides), reports))
}

/// Every `--side NAME=PATH` must name a side file of the mapping.
pub(crate) fn check_overrides(
    plan: &Plan,
    overrides: &[(String, PathBuf)],
) -> Result<(), PipelineError> {
    let names: Vec<&str> = plan.source.sides.iter().map(|s| s.name.as_str()).collect();
    for (name, _) in overrides {
        if names.contains(&name.as_str()) {
            continue;
        }
        let known = if names.is_empty() {
            "the mapping has no side files".to_string()
        } else {
            match crate::schema::did_you_mean(name, names.iter().copied()) {
                Some(s) => format!(
                    "did you mean `{s}`? The mapping's side files are: {}",
                    names.join(", ")
                ),
                None => format!("the mapping's side files are: {}", names.join(", ")),
            }
        };
        return Err(PipelineError::Side {
            name: name.clone(),
            message: format!("--side {name}=… names no side file of the mapping; {known}"),
        });
    }
    Ok(())
}

/// One side file as the templates see it: indexed when the file exists, without an index
/// (every lookup finds nothing) when it is missing and `optional`, and an error when a required
/// file is missing.
fn open_side(sp: &SidePlan, path: PathBuf) -> Result<(SideTable, SideFileStats), PipelineError> {
    let exists = path.is_file();
    if !exists && sp.optional {
        let stats = SideFileStats {
            name: sp.name.clone(),
            path: None,
            entries: 0,
            keys: 0,
            unreadable: 0,
            unjoined: 0,
            problems: Sampled::default(),
        };
        let table = SideTable {
            name: sp.name.clone(),
            index: None,
        };
        return Ok((table, stats));
    }
    if !exists {
        return Err(PipelineError::Side {
            name: sp.name.clone(),
            message: format!(
                "{} does not exist; pass --side {}=PATH, or mark it `optional: true` in the mapping",
                path.display(),
                sp.name
            ),
        });
    }
    index_side(sp, path)
}

/// Indexes a side file that exists, keeping the entries its `keep_if` accepts; records
/// that cannot be read, have no key or fail `keep_if` are per-record problems with their
/// location. A file none of whose records has the key is the mapping's error (a typo in
/// `key`): every entry would be lost.
fn index_side(sp: &SidePlan, path: PathBuf) -> Result<(SideTable, SideFileStats), PipelineError> {
    let spec = SideSpec {
        name: sp.name.clone(),
        path: path.clone(),
        read: sp.read.clone(),
        key: sp.key.clone(),
        explode: sp.explode.clone(),
        order_by: sp.order_by.clone(),
    };
    let mut unreadable = 0u64;
    let mut problems = Sampled::default();
    let keep_expr = sp.keep_if.as_ref();
    let mut keep = |v: &serde_json::Value| match keep_expr {
        None => Ok(true),
        Some(e) => e
            .eval(&Value::from_serialize(v))
            .map(|r| r.is_true())
            .map_err(|e| {
                let detail = e.detail().map_or_else(|| e.to_string(), str::to_string);
                format!("`keep_if` failed, entry left out: {detail}")
            }),
    };
    let name = &sp.name;
    let mut on_error = |e: source::RecordError| {
        unreadable += 1;
        problems.add(
            &e.location,
            Problem::error(
                ProblemKind::UnreadableSideEntry,
                format!("source.side.{name}"),
                e.message,
            ),
        );
    };
    let index =
        SideIndex::build(&spec, &mut keep, &mut on_error).map_err(|e| PipelineError::Side {
            name: sp.name.clone(),
            message: e.to_string(),
        })?;
    if index.records_read() > 0 && index.records_without_key() == index.records_read() {
        let fields = index.first_fields();
        let help = match crate::schema::did_you_mean(&sp.key, fields.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None if fields.is_empty() => {
                "`key` is the dotted path of the key in each record, such as `ticket_id`".into()
            }
            None => format!("the first record's fields are: {}", fields.join(", ")),
        };
        return Err(PipelineError::Mapping(vec![
            MappingError::at(
                sp.pos,
                format!(
                    "side file `{}`: none of the {} records of {} has a value at `key: {}`, so every entry would be lost",
                    sp.name,
                    index.records_read(),
                    path.display(),
                    sp.key
                ),
            )
            .help(help),
        ]));
    }
    let stats = SideFileStats {
        name: sp.name.clone(),
        path: Some(path.display().to_string()),
        entries: index.len(),
        keys: index.keys(),
        unreadable,
        unjoined: 0,
        problems,
    };
    let table = SideTable {
        name: sp.name.clone(),
        index: Some(index),
    };
    Ok((table, stats))
}
