//! The side files a mapping names, found in the export (or given with `--side`) and
//! indexed before the first record is read, with the figures the report shows for each.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::Value;

use super::{PipelineError, SideFileStats};
use crate::mapping::compile::SidePlan;
use crate::mapping::template::value_to_string;
use crate::mapping::template::{SideTable, Sides};
use crate::mapping::{MappingError, Plan};
use crate::problem::{Problem, ProblemKind, Sampled};
use crate::source::{self, ComputeKey, SideIndex, SideKey, SideSpec};

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
        let files = chosen_files(sp, &root, overrides)?;
        let (table, stats) = open_side(sp, files)?;
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

/// The files each side file of the mapping is read from, as `build_sides` reads them
/// (`--side` first, else the export's file or glob matches); empty when there are none.
/// For readers that need the entries themselves, not an index (`init`'s tests file).
pub(crate) fn side_paths(
    plan: &Plan,
    inputs: &[PathBuf],
    overrides: &[(String, PathBuf)],
) -> Result<Vec<(String, Vec<PathBuf>)>, PipelineError> {
    check_overrides(plan, overrides)?;
    let root = source::export_root(inputs);
    let mut out = vec![];
    for sp in &plan.source.sides {
        let paths = match chosen_files(sp, &root, overrides)? {
            SideFiles::One(p) if p.is_file() => vec![p],
            SideFiles::Matches { files, .. } => files,
            SideFiles::One(_) | SideFiles::NoMatch(_) => vec![],
        };
        out.push((sp.name.clone(), paths));
    }
    Ok(out)
}

/// The `--side` path given for `sp`, which must exist, else what its `file:` names in
/// the export.
fn chosen_files(
    sp: &SidePlan,
    root: &Path,
    overrides: &[(String, PathBuf)],
) -> Result<SideFiles, PipelineError> {
    let Some((name, p)) = overrides.iter().find(|(n, _)| n == &sp.name) else {
        return side_files(sp, root);
    };
    // A file the user named must exist, optional or not: a typo there would otherwise
    // drop every entry of the side file without a word.
    if !p.is_file() {
        return Err(PipelineError::Side {
            name: name.clone(),
            message: format!(
                "--side {name}={} names no file; check the path",
                p.display()
            ),
        });
    }
    Ok(SideFiles::One(p.clone()))
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

/// Where a side file's entries are read from.
enum SideFiles {
    /// A file name (or `--side` path), which may not exist.
    One(PathBuf),
    /// The matches of a glob, in path order (at least one); `shown` names them.
    Matches { files: Vec<PathBuf>, shown: String },
    /// A glob that matches nothing, and why (folder, pattern, what the folder holds).
    NoMatch(String),
}

/// The files a side file's `file:` names in the export: the one file, or every match of a
/// glob (`sys_journal_field*.json`).
fn side_files(sp: &SidePlan, root: &Path) -> Result<SideFiles, PipelineError> {
    if !source::is_pattern(&sp.file) {
        return Ok(SideFiles::One(root.join(&sp.file)));
    }
    match source::find_files(root, &sp.file) {
        Ok(files) => Ok(SideFiles::Matches {
            shown: format!(
                "{} ({} file{})",
                root.join(&sp.file).display(),
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            ),
            files,
        }),
        Err(e @ source::SourceError::NoMatch { .. }) => Ok(SideFiles::NoMatch(e.to_string())),
        // The pattern's folder does not exist: nothing matches either.
        Err(source::SourceError::Open { path, source })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(SideFiles::NoMatch(format!(
                "no file matches `{}`: the folder {} does not exist",
                sp.file,
                path.display()
            )))
        }
        Err(e) => Err(PipelineError::Side {
            name: sp.name.clone(),
            message: e.to_string(),
        }),
    }
}

/// One side file as the templates see it: indexed when the file exists (or the glob
/// matches), without an index (every lookup finds nothing) when it is missing and
/// `optional`, and an error when a required file is missing.
fn open_side(sp: &SidePlan, files: SideFiles) -> Result<(SideTable, SideFileStats), PipelineError> {
    let missing = match files {
        SideFiles::One(path) if path.is_file() => {
            let shown = path.display().to_string();
            return index_side(sp, vec![path], shown);
        }
        SideFiles::Matches { files, shown } => return index_side(sp, files, shown),
        SideFiles::One(path) => format!("{} does not exist", path.display()),
        SideFiles::NoMatch(why) => why,
    };
    if sp.optional {
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
    Err(PipelineError::Side {
        name: sp.name.clone(),
        message: format!(
            "{missing}; pass --side {}=PATH, or mark it `optional: true` in the mapping",
            sp.name
        ),
    })
}

/// How the index finds each record's key: the dotted path, or the `key:` template
/// evaluated on the record (its fields at the top level, as `keep_if` sees an entry).
fn side_key(sp: &SidePlan) -> SideKey {
    let Some(expr) = sp.key_template.clone() else {
        return SideKey::Path(sp.key.clone());
    };
    let eval: ComputeKey = Arc::new(move |record: &serde_json::Value| {
        expr.eval(&Value::from_serialize(record))
            .map(|v| value_to_string(&v))
            .map_err(|e| e.detail().map_or_else(|| e.to_string(), str::to_string))
    });
    SideKey::Computed {
        source: sp.key.clone(),
        eval,
    }
}

/// Indexes a side file that exists, keeping the entries its `keep_if` accepts; records
/// that cannot be read, have no key or fail `keep_if` are per-record problems with their
/// location. A file none of whose records has the key is the mapping's error (a typo in
/// `key`): every entry would be lost.
fn index_side(
    sp: &SidePlan,
    files: Vec<PathBuf>,
    shown: String,
) -> Result<(SideTable, SideFileStats), PipelineError> {
    let spec = SideSpec {
        name: sp.name.clone(),
        files,
        read: sp.read.clone(),
        key: side_key(sp),
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
            Some(s) if sp.key_template.is_none() => format!("did you mean `{s}`?"),
            _ if fields.is_empty() => {
                "`key` is the dotted path of the key in each record, such as `ticket_id`, or a template computing it".into()
            }
            _ => format!("the first record's fields are: {}", fields.join(", ")),
        };
        return Err(PipelineError::Mapping(vec![
            MappingError::at(
                sp.pos,
                if sp.key_template.is_some() {
                    format!(
                        "side file `{}`: `key: {}` gives no key for any of the {} records of {} (it failed or rendered empty), so every entry would be lost",
                        sp.name,
                        sp.key,
                        index.records_read(),
                        shown,
                    )
                } else {
                    format!(
                        "side file `{}`: none of the {} records of {} has a value at `key: {}`, so every entry would be lost",
                        sp.name,
                        index.records_read(),
                        shown,
                        sp.key
                    )
                },
            )
            .help(help),
        ]));
    }
    let stats = SideFileStats {
        name: sp.name.clone(),
        path: Some(shown),
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
