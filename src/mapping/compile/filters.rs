//! Filter names checked while the mapping loads.
//!
//! minijinja resolves a filter only when a template runs, so an unknown filter would fail
//! every record; here each filter a template applies is probed once, with a "did you
//! mean" among hfmigrate's filters and minijinja's built-ins.

use minijinja::value::Value;

use super::Compiler;
use crate::mapping::error::MappingError;
use crate::mapping::spec::Pos;
use crate::mapping::template::Engine;
use crate::schema;

impl Compiler<'_> {
    /// minijinja looks filters up when a template runs; find unknown ones now, while the
    /// mapping loads, instead of on the first record.
    pub(super) fn check_filters(&mut self, name: &str, pos: Pos, source: &str) {
        for filter in filter_names_in(source) {
            let probe = format!("none | {filter}");
            let unknown = match self.engine.compile(&format!("{{{{ {probe} }}}}")) {
                Ok(e) => {
                    matches!(e.eval(&Value::UNDEFINED), Err(err) if err.kind() == minijinja::ErrorKind::UnknownFilter)
                }
                Err(err) => err.kind() == minijinja::ErrorKind::UnknownFilter,
            };
            if unknown {
                let help = schema::did_you_mean(&filter, Engine::filter_names().iter().copied().chain(BUILTIN_FILTERS.iter().copied()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("hfmigrate's filters: {}; and minijinja's built-ins (lower, upper, trim, default, join, replace, first, last, ...)", Engine::filter_names().join(", ")));
                self.errors.push(
                    MappingError::at(pos, format!("{name}: unknown filter `{filter}`")).help(help),
                );
            }
        }
    }
}

/// minijinja's built-in filters, for "did you mean" hints.
const BUILTIN_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
];

/// The names after `|` in a template: the filters it applies.
fn filter_names_in(source: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let bytes = source.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'|' => {
                let rest = &source[i + 1..];
                let name: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && !out.contains(&name) {
                    out.push(name);
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// A filter name from minijinja's "unknown filter" error message.
pub(super) fn unknown_filter(message: &str) -> Option<String> {
    if !message.contains("unknown filter") {
        return None;
    }
    let start = message.find("filter")? + "filter".len();
    let rest = message[start..].trim_start_matches([' ', ':', '`', '\'', '"']);
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}
