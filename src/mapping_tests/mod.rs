//! Mapping unit tests (`hfmigrate test`): small cases of input records with the payload
//! fragments, conversation and problems each must give, kept in a side file beside the
//! mapping (`zendesk.yaml` → `zendesk.tests.yaml`).
//!
//! A mapping is code a lead edits for days; a case pins down what one record must become
//! so an edit that breaks it is caught before the next dry run, as Vector's config unit
//! tests do. Each case is written to temporary export files in the mapping's own format
//! and goes through the real front half ([`crate::pipeline`]: readers, side-file indexes,
//! the payload builder), so a case passes exactly when a dry run would build the same.
//! Nothing here talks to HappyFox.

mod inputs;
mod subset;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::exit::{Classify, Exit};
use crate::mapping::spec::Sp;
use crate::mapping::{MappingErrors, Plan};
use crate::payload::RecordOutcome;
use crate::pipeline::{self, PipelineError, Processed};
use crate::schema::Schema;
pub(crate) use subset::{Difference, differences};

/// A tests file: the cases, and optionally the account they were written against.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestsFile {
    /// A schema snapshot, relative to the tests file; payload ids depend on it.
    #[serde(default)]
    pub schema: Option<String>,
    pub cases: Vec<Sp<Case>>,
}

/// One case: a ticket record, the side-file records it needs, what it must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Case {
    pub name: String,
    /// The ticket record as the export has it (a CSV row: column → value).
    pub ticket: Value,
    /// Records of side files, by the side file's name in the mapping, as the side file
    /// has them (before `explode` and `keep_if`). Side files not named here are empty.
    #[serde(default)]
    pub side: IndexMap<String, Vec<Value>>,
    #[serde(default)]
    pub expect: Expect,
}

/// What a case must give; what is not named is not checked (but `outcome` is).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    /// `valid` (the default), `rejected` or `skipped`.
    #[serde(default)]
    pub outcome: Option<OutcomeName>,
    /// A fragment of the create payload (`POST tickets/`).
    #[serde(default)]
    pub payload: Option<Value>,
    /// The planned later messages: a list with one fragment per entry.
    #[serde(default)]
    pub conversation: Option<Value>,
    /// A fragment of the final state (`status` id, `completed`, `custom_fields`).
    #[serde(default, rename = "final")]
    pub final_state: Option<Value>,
    /// Every problem the record has, by kind (as in report.json) and optionally field and
    /// severity; when given, a problem not listed fails the case too.
    #[serde(default)]
    pub problems: Option<Vec<ExpectedProblem>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OutcomeName {
    Valid,
    Rejected,
    Skipped,
}

impl OutcomeName {
    fn of(outcome: &RecordOutcome) -> OutcomeName {
        match outcome {
            RecordOutcome::Valid { .. } => OutcomeName::Valid,
            RecordOutcome::Rejected { .. } => OutcomeName::Rejected,
            RecordOutcome::Skipped { .. } => OutcomeName::Skipped,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OutcomeName::Valid => "valid",
            OutcomeName::Rejected => "rejected",
            OutcomeName::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectedProblem {
    pub kind: String,
    #[serde(default)]
    pub field: Option<String>,
    /// `error` or `warning`.
    #[serde(default)]
    pub severity: Option<String>,
}

/// Why the tests could not run at all (a failing case is not an error).
#[derive(Debug, thiserror::Error)]
pub enum TestsError {
    #[error("cannot read the tests file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Mapping(MappingErrors),
    #[error("cannot create a temporary folder for the cases: {0}")]
    TempDir(std::io::Error),
}

impl Classify for TestsError {
    fn exit(&self) -> Exit {
        match self {
            TestsError::TempDir(_) => Exit::Fatal,
            _ => Exit::Usage,
        }
    }
}

/// The tests file of a mapping: `name.tests.yaml` beside `name.yaml`.
pub fn default_tests_path(mapping: &Path) -> PathBuf {
    let stem = mapping
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    mapping.with_file_name(format!("{stem}.tests.yaml"))
}

/// Reads and parses a tests file (YAML), with the position of the first error.
pub(crate) fn parse(path: &Path) -> Result<TestsFile, TestsError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
    };
    let file: TestsFile = serde_saphyr::from_str_with_options(&text, options).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let raw = e.to_string();
        let message = raw.lines().next().unwrap_or(&raw).trim();
        let message = message.strip_prefix("error:").unwrap_or(message).trim();
        TestsError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: message.to_string(),
        }
    })?;
    if file.cases.is_empty() {
        return Err(TestsError::Invalid {
            path: path.to_path_buf(),
            message: "`cases` is empty; add at least one case".into(),
        });
    }
    Ok(file)
}

/// The schema a tests file names, relative to the file.
pub fn schema_path(tests: &Path) -> Result<Option<PathBuf>, TestsError> {
    let file = parse(tests)?;
    Ok(file.schema.map(|s| {
        tests
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from(&s), |p| p.join(&s))
    }))
}

/// One case's result.
#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    /// Line of the case in the tests file.
    pub line: u64,
    /// Empty when the case passed.
    pub failures: Vec<String>,
}

/// Every case's result, in file order.
#[derive(Debug)]
pub struct TestsReport {
    pub tests_path: PathBuf,
    pub cases: Vec<CaseResult>,
}

impl TestsReport {
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|c| !c.failures.is_empty()).count()
    }

    /// A line per case, the differences of each failing one under it, and the totals.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let path = self.tests_path.display();
        for c in &self.cases {
            if c.failures.is_empty() {
                let _ = writeln!(out, "ok    {} ({path}:{})", c.name, c.line);
            } else {
                let _ = writeln!(out, "FAIL  {} ({path}:{})", c.name, c.line);
                for f in &c.failures {
                    let _ = writeln!(out, "      {f}");
                }
            }
        }
        let _ = writeln!(
            out,
            "{}: {} cases, {} passed, {} failed",
            path,
            self.cases.len(),
            self.cases.len() - self.failed(),
            self.failed()
        );
        out
    }
}

/// Runs every case of `tests` against the compiled `plan`.
pub fn run(plan: &Plan, schema: Arc<Schema>, tests: &Path) -> Result<TestsReport, TestsError> {
    let file = parse(tests)?;
    for case in &file.cases {
        for name in case.value.side.keys() {
            if !plan.source.sides.iter().any(|s| &s.name == name) {
                let known: Vec<&str> = plan.source.sides.iter().map(|s| s.name.as_str()).collect();
                return Err(TestsError::Parse {
                    path: tests.to_path_buf(),
                    line: case.pos.line,
                    column: case.pos.column,
                    message: format!(
                        "case {:?}: the mapping has no side file {name:?} (it has: {})",
                        case.value.name,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            }
        }
    }
    let mut cases = vec![];
    for (i, case) in file.cases.iter().enumerate() {
        let dir = tempfile::tempdir().map_err(TestsError::TempDir)?;
        let failures = match run_case(plan, schema.clone(), dir.path(), i, &case.value) {
            Ok(f) => f,
            Err(message) => vec![message],
        };
        cases.push(CaseResult {
            name: case.value.name.clone(),
            line: case.pos.line,
            failures,
        });
    }
    Ok(TestsReport {
        tests_path: tests.to_path_buf(),
        cases,
    })
}

/// Builds one case and compares; `Err` when it could not be built at all.
fn run_case(
    plan: &Plan,
    schema: Arc<Schema>,
    dir: &Path,
    index: usize,
    case: &Case,
) -> Result<Vec<String>, String> {
    let outcome = build(plan, schema, dir, index, &case.ticket, &case.side)?;
    Ok(compare(&case.expect, &outcome))
}

/// What the front half makes of one ticket with these side-file records, written to
/// export files in `dir` in the mapping's formats (side files not given are empty).
pub(crate) fn build(
    plan: &Plan,
    schema: Arc<Schema>,
    dir: &Path,
    index: usize,
    ticket: &Value,
    side: &IndexMap<String, Vec<Value>>,
) -> Result<RecordOutcome, String> {
    let ticket = inputs::write_records(
        dir,
        &format!("case-{}", index + 1),
        &plan.source.file,
        &plan.source.read,
        std::slice::from_ref(ticket),
    )?;
    let mut sides = vec![];
    for sp in &plan.source.sides {
        let records = side.get(&sp.name).map(Vec::as_slice).unwrap_or(&[]);
        let path = inputs::write_records(
            dir,
            &format!("side-{}-{}", index + 1, sp.name),
            &sp.file,
            &sp.read,
            records,
        )?;
        sides.push((sp.name.clone(), path));
    }
    let mut got: Vec<Processed> = vec![];
    pipeline::for_each(plan, schema, &[ticket], &sides, |p| {
        got.push(p);
        Ok::<(), std::convert::Infallible>(())
    })
    .map_err(|e: PipelineError| format!("the case cannot be built: {e}"))?;
    let [processed] = <[Processed; 1]>::try_from(got)
        .map_err(|got| format!("the ticket gave {} records, expected 1", got.len()))?;
    Ok(processed.outcome)
}

/// Every way the outcome differs from the expectation, one line each.
fn compare(expect: &Expect, outcome: &RecordOutcome) -> Vec<String> {
    let mut failures = vec![];
    let want = expect.outcome.unwrap_or(OutcomeName::Valid);
    let got = OutcomeName::of(outcome);
    let problems = match outcome {
        RecordOutcome::Valid { warnings, .. } => warnings.as_slice(),
        RecordOutcome::Rejected { problems, .. } => problems.as_slice(),
        RecordOutcome::Skipped { .. } => &[],
    };
    if want != got {
        let mut line = format!("outcome: expected {}, got {}", want.as_str(), got.as_str());
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            let _ = write!(line, " ({})", list.join("; "));
        }
        failures.push(line);
    }
    if let RecordOutcome::Valid { plan, .. } = outcome {
        let to_json = |v: serde_json::Result<Value>| v.unwrap_or(Value::Null);
        let checks = [
            (
                "payload",
                &expect.payload,
                to_json(serde_json::to_value(&plan.payload)),
            ),
            (
                "conversation",
                &expect.conversation,
                to_json(serde_json::to_value(&plan.conversation)),
            ),
            (
                "final",
                &expect.final_state,
                to_json(serde_json::to_value(&plan.final_state)),
            ),
        ];
        for (name, fragment, actual) in checks {
            if let Some(fragment) = fragment {
                failures.extend(differences(name, fragment, &actual).iter().map(describe));
            }
        }
    } else {
        for (name, given) in [
            ("payload", expect.payload.is_some()),
            ("conversation", expect.conversation.is_some()),
            ("final", expect.final_state.is_some()),
        ] {
            if given && want == OutcomeName::Valid && got != want {
                failures.push(format!("{name}: not built, the record is {}", got.as_str()));
            }
        }
    }
    if let Some(expected) = &expect.problems {
        failures.extend(compare_problems(expected, problems));
    }
    failures
}

fn describe(d: &Difference) -> String {
    match &d.actual {
        None => format!("{}: expected {}, missing", d.path, d.expected),
        Some(a) => format!("{}: expected {}, got {}", d.path, d.expected, a),
    }
}

/// Expected problems must all occur, and no other problem may.
fn compare_problems(
    expected: &[ExpectedProblem],
    actual: &[crate::problem::Problem],
) -> Vec<String> {
    let kind_of = |p: &crate::problem::Problem| {
        serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let severity_of = |p: &crate::problem::Problem| if p.is_error() { "error" } else { "warning" };
    let matches = |e: &ExpectedProblem, p: &crate::problem::Problem| {
        e.kind == kind_of(p)
            && e.field.as_ref().is_none_or(|f| f == &p.field)
            && e.severity.as_deref().is_none_or(|s| s == severity_of(p))
    };
    let mut used = vec![false; actual.len()];
    let mut failures = vec![];
    for e in expected {
        match (0..actual.len()).find(|&i| !used[i] && matches(e, &actual[i])) {
            Some(i) => used[i] = true,
            None => failures.push(format!(
                "problems: expected {}{}{}, not found",
                e.kind,
                e.field
                    .as_ref()
                    .map(|f| format!(" on {f}"))
                    .unwrap_or_default(),
                e.severity
                    .as_ref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default(),
            )),
        }
    }
    for (p, used) in actual.iter().zip(used) {
        if !used {
            failures.push(format!("problems: unexpected {} ({p})", kind_of(p)));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_file_sits_beside_the_mapping() {
        assert_eq!(
            default_tests_path(Path::new("mappings/zendesk.yaml")),
            Path::new("mappings/zendesk.tests.yaml")
        );
        assert_eq!(
            default_tests_path(Path::new("my.yaml")),
            Path::new("my.tests.yaml")
        );
    }

    #[test]
    fn a_malformed_file_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.tests.yaml");
        std::fs::write(&p, "cases:\n  - name: a\n    ticket: {}\n    expcet: {}\n").unwrap();
        let err = parse(&p).unwrap_err();
        let TestsError::Parse { line, message, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*line, 4, "{err}");
        assert!(message.contains("expcet"), "{message}");
    }
}
