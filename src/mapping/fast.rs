//! A fast path for the templates almost every mapping is made of.
//!
//! Most mapping values are a lookup (`{{ subject }}`, `{{ requester.email }}`,
//! `{{ row['Ticket ID'] }}`) with a few filters taking literal arguments (`| datetime`,
//! `| text_to_html`, `| field(360001)`), or text around such lookups (`CSV-{{ row['Ticket
//! ID'] }}`). Running those through minijinja costs a VM state per evaluation and, above
//! all, the whole record converted into a minijinja value once per record. Here they are
//! compiled into a path walked directly on the record as read (its JSON object, or its CSV
//! row's cells), and the filters are called as the same Rust functions the minijinja
//! filters use, so results are identical.
//!
//! Anything the fast path is not sure to do exactly as minijinja would (another shape of
//! expression, an unusual input such as indexing a string, any error) makes it give up and
//! the caller evaluates the template with minijinja instead: errors and their messages
//! always come from minijinja.

use jiff::tz::TimeZone;
use minijinja::value::Value;
use serde_json::Value as Json;

use crate::source::{KeyHint, RecordRef, id_text, object_get};

use super::template::{
    self, Expr, Sides, date_value, datetime_text, datetime_value, email_address, email_name,
    field_value, html_to_text, number_value, split_parts, split_value, text_to_html,
};

/// A template that can be evaluated without minijinja.
#[derive(Debug)]
pub enum Fast {
    /// `{{ path | filters }}`: keeps the value's type.
    Expr(FastExpr),
    /// Text and `{{ path | filters }}` parts: renders to a string.
    Template(Vec<Part>),
}

#[derive(Debug)]
pub enum Part {
    Text(String),
    Expr(FastExpr),
}

/// A lookup path followed by filters.
#[derive(Debug)]
pub struct FastExpr {
    /// The first name; `None` for `row`/`record` (the record itself).
    root: Option<String>,
    /// Where the first name was last found in a JSON record.
    hint: KeyHint,
    steps: Vec<Step>,
    filters: Vec<Filter>,
}

#[derive(Debug)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug)]
enum Filter {
    Datetime(Option<String>, TimeZone),
    Date(Option<String>, TimeZone),
    Number(Option<String>),
    Split(Option<String>, Option<usize>),
    Field(FieldId),
    TextToHtml,
    HtmlToText,
    EmailAddress,
    EmailName,
    Lower,
    Upper,
    Trim,
}

/// The id `field(…)` looks for. Ids compare as text (an integer id as its digits), as
/// `field_value` compares them; an integer id is compared as the number the text is
/// instead, without writing its digits: every custom field of every record walks its list.
#[derive(Debug)]
struct FieldId {
    text: String,
    /// The text as an integer, if it is one as an integer's digits are written.
    number: Option<u64>,
}

impl FieldId {
    fn new(text: String) -> FieldId {
        let number = text.parse::<u64>().ok().filter(|n| n.to_string() == text);
        FieldId { text, number }
    }

    /// Whether an item with `id` is the one looked for; `None` for an id that is neither
    /// text nor an integer, which minijinja then handles.
    fn matches(&self, id: Option<&Json>) -> Option<bool> {
        Some(match id {
            None | Some(Json::Null) => self.text.is_empty(),
            Some(Json::Number(n)) if n.is_u64() => n.as_u64() == self.number,
            Some(id) => id_text(id, &mut itoa::Buffer::new())? == self.text,
        })
    }
}

/// Names a template may not read from the record on the fast path: literals, and
/// minijinja's globals, which a record without such a field would fall through to.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "range",
    "dict",
    "debug",
    "namespace",
    "cycler",
    "joiner",
    "lipsum",
    "__tz",
    "loop",
    "self",
    "super",
    "varargs",
    "kwargs",
    "caller",
    "ticket",
    "position",
];

/// A value on its way through the filters: borrowed from the record while it can be.
enum V<'a> {
    Json(&'a Json),
    Undefined,
    /// A string a filter made; kept as a `String` so that string-valued fields are not
    /// copied into a minijinja value and back.
    Str(String),
    /// What `split` made of a string.
    List(Vec<String>),
    Value(Value),
}

impl V<'_> {
    fn into_value(self) -> Value {
        match self {
            V::Json(Json::String(s)) => Value::from(s.as_str()),
            V::Json(j) => Value::from_serialize(j),
            V::Undefined => Value::UNDEFINED,
            V::Str(s) => Value::from(s),
            V::List(l) => Value::from(l),
            V::Value(v) => v,
        }
    }

    /// The value as [`template::value_to_list`] makes it a list.
    fn into_list(self) -> Vec<String> {
        fn parts(s: &str) -> Vec<String> {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        }
        match self {
            V::Undefined | V::Json(Json::Null) => vec![],
            V::Json(Json::String(s)) => parts(s),
            V::Str(s) => parts(&s),
            V::List(l) => l
                .into_iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            V::Json(Json::Array(items))
                if items.iter().all(|i| {
                    matches!(i, Json::String(_) | Json::Null)
                        || matches!(i, Json::Number(n) if n.is_u64() || n.is_i64())
                }) =>
            {
                items
                    .iter()
                    .map(|i| match i {
                        Json::String(s) => s.trim().to_string(),
                        Json::Number(n) => n.to_string(),
                        _ => String::new(),
                    })
                    .filter(|p| !p.is_empty())
                    .collect()
            }
            other => template::value_to_list(&other.into_value()),
        }
    }

    /// The value as [`template::value_to_string`] renders it.
    fn into_string(self) -> String {
        match self {
            V::Json(Json::String(s)) => s.clone(),
            V::Str(s) => s,
            V::Undefined | V::Json(Json::Null) => String::new(),
            // Ids and numbers in ids, written as minijinja writes an integer: converting
            // one into a minijinja value to print it was a fiftieth of an NDJSON dry run.
            V::Json(Json::Number(n)) if n.is_u64() || n.is_i64() => {
                let mut out = String::new();
                push_integer(&mut out, n);
                out
            }
            other => template::value_to_string(&other.into_value()),
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            V::Json(Json::String(s)) => Some(s),
            V::Str(s) => Some(s),
            V::Value(v) => v.as_str(),
            V::List(_) => None,
            _ => None,
        }
    }
}

/// Appends an integer `n` (`is_u64` or `is_i64`) in decimal.
fn push_integer(out: &mut String, n: &serde_json::Number) {
    let mut buf = itoa::Buffer::new();
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => out.push_str(buf.format(u)),
        (None, Some(i)) => out.push_str(buf.format(i)),
        _ => {}
    }
}

impl Fast {
    /// Compiles a template source when every part of it is in the fast subset.
    /// `single` is the inner expression when the template is exactly one `{{ ... }}`.
    pub fn compile(source: &str, single: Option<&str>, tz: &TimeZone) -> Option<Fast> {
        if let Some(inner) = single {
            return parse_expr(inner, tz).map(Fast::Expr);
        }
        let mut parts = vec![];
        let mut rest = source;
        while !rest.is_empty() {
            match rest.find("{{") {
                Some(start) => {
                    let text = &rest[..start];
                    if text.contains("{%") || text.contains("{#") || text.contains("}}") {
                        return None;
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(text.to_string()));
                    }
                    let after = &rest[start + 2..];
                    let end = after.find("}}")?;
                    let inner = &after[..end];
                    if inner.starts_with('-') || inner.ends_with('-') || inner.starts_with('+') {
                        return None;
                    }
                    parts.push(Part::Expr(parse_expr(inner, tz)?));
                    rest = &after[end + 2..];
                }
                None => {
                    if rest.contains("{%") || rest.contains("{#") || rest.contains("}}") {
                        return None;
                    }
                    parts.push(Part::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        Some(Fast::Template(parts))
    }

    /// The value for `record`, or `None` when minijinja must evaluate it.
    pub fn eval(&self, record: RecordRef<'_>, sides: &Sides) -> Option<Value> {
        self.eval_v(record, sides).map(V::into_value)
    }

    /// The value for `record` rendered as a payload string (as
    /// [`template::value_to_string`] would), or `None` when minijinja must evaluate it.
    pub fn eval_string(&self, record: RecordRef<'_>, sides: &Sides) -> Option<String> {
        self.eval_v(record, sides).map(V::into_string)
    }

    /// The value for `record` as a list of strings (as [`template::value_to_list`] would
    /// make it), or `None` when minijinja must evaluate it.
    pub fn eval_list(&self, record: RecordRef<'_>, sides: &Sides) -> Option<Vec<String>> {
        self.eval_v(record, sides).map(V::into_list)
    }

    fn eval_v<'a>(&self, record: RecordRef<'a>, sides: &Sides) -> Option<V<'a>> {
        match self {
            Fast::Expr(e) => e.eval(record, sides),
            Fast::Template(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Expr(e) => match e.eval(record, sides)? {
                            V::Undefined => {}
                            V::Json(Json::Number(n)) if n.is_u64() || n.is_i64() => {
                                push_integer(&mut out, n)
                            }
                            v => out.push_str(v.as_str()?),
                        },
                    }
                }
                Some(V::Str(out))
            }
        }
    }
}

impl FastExpr {
    fn eval<'a>(&self, record: RecordRef<'a>, sides: &Sides) -> Option<V<'a>> {
        let mut steps = &self.steps[..];
        let cur = match &self.root {
            None => match record {
                RecordRef::Json(j) => V::Json(j),
                // A row is no JSON object: its first key is looked up in it, and the whole
                // row (or an index into it) is left to minijinja.
                RecordRef::Row(row) => match steps.split_first() {
                    Some((Step::Key(k), after)) => {
                        steps = after;
                        row.get(k).map_or(V::Undefined, V::Json)
                    }
                    _ => return None,
                },
            },
            Some(name) => {
                if let Some((table, key_expr)) = sides.joins.get(name) {
                    // As `RecordCtx` does it: the key from the record alone, then the
                    // joined rows (an absent optional file joins nothing).
                    let key = match &**key_expr {
                        Expr::Fast(k) => k.fast.eval_string(record, &Sides::default())?,
                        _ => return None,
                    };
                    let rows = if key.is_empty() {
                        Value::from(Vec::<Value>::new())
                    } else {
                        table.all(&key)
                    };
                    return self.rest(V::Value(rows), steps);
                }
                if sides.tables.contains_key(name) {
                    return None;
                }
                match record.get_hinted(name, &self.hint) {
                    Some(v) => V::Json(v),
                    None => V::Undefined,
                }
            }
        };
        self.rest(cur, steps)
    }

    /// The steps and filters after the first name.
    fn rest<'a>(&self, mut cur: V<'a>, steps: &[Step]) -> Option<V<'a>> {
        for step in steps {
            cur = match (cur, step) {
                (V::Json(Json::Object(m)), Step::Key(k)) => {
                    object_get(m, k).map_or(V::Undefined, V::Json)
                }
                (V::Json(Json::Array(a)), Step::Index(i)) => {
                    a.get(*i).map_or(V::Undefined, V::Json)
                }
                // minijinja indexes strings by character; leave that to it.
                (V::Json(Json::String(_)), Step::Index(_)) => return None,
                // Chainable undefined: any other failed lookup is undefined.
                (V::Json(_) | V::Undefined, _) => V::Undefined,
                (V::Value(_) | V::Str(_) | V::List(_), _) => return None,
            };
        }
        for filter in &self.filters {
            cur = filter.apply(cur)?;
        }
        Some(cur)
    }
}

impl Filter {
    /// `None` when minijinja should run the template (errors included, for their messages).
    fn apply<'a>(&self, v: V<'a>) -> Option<V<'a>> {
        Some(match self {
            Filter::Datetime(format, tz) => match v.as_str() {
                Some(s) => match datetime_text(s, format.as_deref(), tz).ok()? {
                    Some(t) => V::Str(t),
                    None => V::Undefined,
                },
                None => V::Value(
                    datetime_value(&v.into_value(), format.as_deref(), || Ok(tz.clone())).ok()?,
                ),
            },
            Filter::Date(format, tz) => {
                V::Value(date_value(&v.into_value(), format.as_deref(), || Ok(tz.clone())).ok()?)
            }
            Filter::Number(decimal) => {
                V::Value(number_value(&v.into_value(), decimal.as_deref()).ok()?)
            }
            Filter::Split(sep, max) => match v.as_str() {
                Some(s) => V::List(split_parts(s, sep.as_deref(), *max)),
                None => V::Value(split_value(&v.into_value(), sep.as_deref(), *max)),
            },
            Filter::Field(want) => match v {
                V::Json(Json::Array(items)) => {
                    for item in items {
                        let Json::Object(m) = item else { return None };
                        if want.matches(object_get(m, "id"))? {
                            return Some(object_get(m, "value").map_or(V::Undefined, V::Json));
                        }
                    }
                    V::Undefined
                }
                V::Undefined | V::Json(Json::Null) => V::Undefined,
                other => V::Value(field_value(&other.into_value(), &want.text)),
            },
            Filter::TextToHtml => V::Str(text_to_html(v.as_str()?)),
            Filter::HtmlToText => V::Str(html_to_text(v.as_str()?)),
            Filter::EmailAddress => V::Str(email_address(v.as_str()?).to_string()),
            Filter::EmailName => V::Str(email_name(v.as_str()?).to_string()),
            Filter::Lower => V::Str(v.as_str()?.to_lowercase()),
            Filter::Upper => V::Str(v.as_str()?.to_uppercase()),
            Filter::Trim => V::Str(v.as_str()?.trim().to_string()),
        })
    }
}

/// A literal filter argument.
enum Arg {
    Str(String),
    Int(i64),
}

struct Cursor<'s> {
    s: &'s str,
    i: usize,
}

impl<'s> Cursor<'s> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with(|c: char| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(c) {
            self.i += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<&'s str> {
        self.ws();
        let rest = &self.s[self.i..];
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.i += len;
        Some(&rest[..len])
    }

    fn arg(&mut self) -> Option<Arg> {
        self.ws();
        let rest = &self.s[self.i..];
        let q = rest.chars().next()?;
        if q == '\'' || q == '"' {
            let end = rest[1..].find(q)?;
            let text = &rest[1..1 + end];
            if text.contains('\\') {
                return None;
            }
            self.i += end + 2;
            return Some(Arg::Str(text.to_string()));
        }
        let len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if len == 0 || len > 18 {
            return None;
        }
        self.i += len;
        rest[..len].parse().ok().map(Arg::Int)
    }

    fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len()
    }
}

/// Parses `path (| filter(literal, ...))*`; `None` for anything else.
fn parse_expr(src: &str, tz: &TimeZone) -> Option<FastExpr> {
    let mut c = Cursor { s: src, i: 0 };
    let root = c.ident()?;
    if RESERVED.contains(&root) {
        return None;
    }
    let root = (root != "row" && root != "record").then(|| root.to_string());
    let mut steps = vec![];
    loop {
        if c.eat('.') {
            // `.0` and the like are not plain attribute names.
            steps.push(Step::Key(c.ident()?.to_string()));
        } else if c.eat('[') {
            steps.push(match c.arg()? {
                Arg::Str(s) => Step::Key(s),
                Arg::Int(i) => Step::Index(usize::try_from(i).ok()?),
            });
            if !c.eat(']') {
                return None;
            }
        } else {
            break;
        }
    }
    let mut filters = vec![];
    while c.eat('|') {
        let name = c.ident()?;
        let mut args = vec![];
        if c.eat('(') && !c.eat(')') {
            loop {
                args.push(c.arg()?);
                if c.eat(')') {
                    break;
                }
                if !c.eat(',') {
                    return None;
                }
            }
        }
        filters.push(filter(name, args, tz)?);
    }
    if !c.at_end() {
        return None;
    }
    Some(FastExpr {
        root,
        hint: KeyHint::default(),
        steps,
        filters,
    })
}

/// A filter of the fast subset with its literal arguments checked.
fn filter(name: &str, args: Vec<Arg>, tz: &TimeZone) -> Option<Filter> {
    let mut args = args.into_iter();
    let next_str = |args: &mut std::vec::IntoIter<Arg>| -> Option<Option<String>> {
        match args.next() {
            None => Some(None),
            Some(Arg::Str(s)) => Some(Some(s)),
            Some(Arg::Int(_)) => None,
        }
    };
    let f = match name {
        "datetime" | "date" => {
            let format = next_str(&mut args)?;
            let zone = match next_str(&mut args)? {
                None => tz.clone(),
                // An unknown zone is an error minijinja reports; leave it to it.
                Some(n) => TimeZone::get(&n).ok()?,
            };
            if name == "datetime" {
                Filter::Datetime(format, zone)
            } else {
                Filter::Date(format, zone)
            }
        }
        "number" => Filter::Number(next_str(&mut args)?),
        "split" => {
            let sep = next_str(&mut args)?;
            let max = match args.next() {
                None => None,
                Some(Arg::Int(n)) => Some(usize::try_from(n).ok()?),
                Some(Arg::Str(_)) => return None,
            };
            Filter::Split(sep, max)
        }
        "field" => match args.next()? {
            Arg::Str(s) => Filter::Field(FieldId::new(s)),
            Arg::Int(n) => Filter::Field(FieldId::new(n.to_string())),
        },
        "text_to_html" => Filter::TextToHtml,
        "html_to_text" => Filter::HtmlToText,
        "email_address" => Filter::EmailAddress,
        "email_name" => Filter::EmailName,
        "lower" => Filter::Lower,
        "upper" => Filter::Upper,
        "trim" => Filter::Trim,
        _ => return None,
    };
    if args.next().is_some() {
        return None;
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::template::{Engine, Expr, RecordCtx};

    /// A CSV row gives what the JSON object of its cells gives, on the fast path; the
    /// whole row, which is no JSON object, is left to minijinja.
    #[test]
    fn a_row_evaluates_as_its_object() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let engine = Engine::new(tz.clone());
        let object = serde_json::json!({
            "Ticket ID": "T-1", "Subject": "Hi", "Tags": "a;b", "Comment": ["x", "y"],
            "Created At": "2024-03-05 14:22:10", "Body": "a < b\n\nc",
        });
        let row = crate::source::Row::from_object(object.as_object().unwrap());
        let sides = Sides::default();
        for src in [
            "{{ row['Ticket ID'] }}",
            "{{ Subject }}",
            "{{ record['Subject'] | upper }}",
            "{{ row['Missing'] }}",
            "{{ Missing.deeper }}",
            "{{ row['Comment'][1] }}",
            "{{ Tags | split(';') }}",
            "{{ row['Created At'] | datetime }}",
            "{{ row['Body'] | text_to_html }}",
            "CSV-{{ row['Ticket ID'] }}-{{ Subject }}",
        ] {
            let Ok(Expr::Fast(f)) = engine.compile(src) else {
                panic!("{src} is not on the fast path")
            };
            let from_row = f.fast.eval(RecordRef::Row(&row), &sides);
            assert!(from_row.is_some(), "{src} fell back on a row");
            let from_json = f.fast.eval(RecordRef::Json(&object), &sides);
            assert_eq!(format!("{from_row:?}"), format!("{from_json:?}"), "{src}");
            assert_eq!(
                f.fast.eval_string(RecordRef::Row(&row), &sides),
                f.fast.eval_string(RecordRef::Json(&object), &sides),
                "{src}"
            );
        }
        for src in ["{{ row }}", "{{ row[0] }}"] {
            if let Ok(Expr::Fast(f)) = engine.compile(src) {
                assert!(f.fast.eval(RecordRef::Row(&row), &sides).is_none(), "{src}");
            }
        }
    }

    /// Every template evaluates to the same value on the fast path as through minijinja.
    #[test]
    fn fast_path_matches_minijinja() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let engine = Engine::new(tz.clone());
        let record = serde_json::json!({
            "id": 42, "subject": "Hi", "Ticket ID": "T-1", "n": null, "f": 1.5,
            "requester": {"name": "Ann", "email": "Ann <ann@x.example>"},
            "tags": ["a", "b"], "body": "a < b\n\nline1\nline2",
            "created_at": "2024-03-05 14:22:10", "d": "2024-03-05", "num": "1234.5",
            "cf": [{"id": 1, "value": "x"}, {"id": 360001, "value": "widget"}, {"id": "7", "value": 3}, {"id": -3, "value": "neg"}],
            "list": "a; b;c", "Mixed": "  MiXed  ", "blank": "  ",
            "big": u64::MAX, "neg": -7, "zero": 0, "yes": true, "huge": 1e20,
        });
        let sources = [
            "{{ id }}",
            "{{ subject }}",
            "{{ row['Ticket ID'] }}",
            "{{ record[\"subject\"] }}",
            "{{ requester.name }}",
            "{{ requester.missing.deeper }}",
            "{{ missing }}",
            "{{ n.x }}",
            "{{ subject.x }}",
            "{{ tags }}",
            "{{ tags[1] }}",
            "{{ tags[5] }}",
            "{{ f }}",
            "{{ n }}",
            "{{ body | text_to_html }}",
            "{{ created_at | datetime }}",
            "{{ created_at | datetime('%Y-%m-%d %H:%M:%S', 'UTC') }}",
            "{{ d | date }}",
            "{{ missing | datetime }}",
            "{{ blank | datetime }}",
            "{{ id | datetime('unix') }}",
            "ZD-{{ blank | datetime }}",
            "{{ num | number }}",
            "{{ list | split(';') }}",
            "{{ list | split(';', 1) }}",
            "{{ tags | split }}",
            "{{ cf | field(360001) }}",
            "{{ cf | field('7') }}",
            "{{ cf | field(9) }}",
            "{{ cf | field('-3') }}",
            "{{ cf | field('360001') }}",
            "{{ cf | field('0360001') }}",
            "{{ cf | field(7) }}",
            "{{ cf | field(1) }}",
            "{{ missing | field(9) }}",
            "{{ requester.email | email_address }}",
            "{{ requester.email | email_name }}",
            "{{ Mixed | lower }}",
            "{{ Mixed | upper | trim }}",
            "CSV-{{ row['Ticket ID'] }}",
            "ZD-{{ id }}-{{ missing }}!",
            "{{ cf | field(360001) | upper }}",
            "{{ big }}",
            "{{ neg }}",
            "{{ zero }}",
            "{{ yes }}",
            "{{ huge }}",
            "{{ cf | field('7') }}-{{ neg }}-{{ big }}",
        ];
        let sides = Sides::default();
        let ctx = Value::from_dyn_object(RecordCtx::new(
            Value::from_serialize(&record),
            std::sync::Arc::new(Sides::default()),
        ));
        for src in sources {
            let expr = engine.compile(src).unwrap();
            let Expr::Fast(f) = &expr else {
                panic!("{src} is not on the fast path")
            };
            let fast = f
                .fast
                .eval(RecordRef::Json(&record), &sides)
                .unwrap_or_else(|| panic!("{src} fell back"));
            let slow = f.slow.eval(&ctx).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{src}");
            let string = f
                .fast
                .eval_string(RecordRef::Json(&record), &sides)
                .unwrap();
            assert_eq!(string, template::value_to_string(&slow), "{src}");
            let list = f.fast.eval_list(RecordRef::Json(&record), &sides).unwrap();
            assert_eq!(list, template::value_to_list(&slow), "{src}");
        }
        // Errors and unusual shapes go to minijinja.
        for src in [
            "{{ subject | datetime }}",
            "{{ subject[0] }}",
            "{{ num | number(',') | missing_filter }}",
        ] {
            if let Ok(Expr::Fast(f)) = engine.compile(src) {
                assert!(
                    f.fast.eval(RecordRef::Json(&record), &sides).is_none(),
                    "{src}"
                );
            }
        }
        for src in [
            "{{ a if b else c }}",
            "{{ a ~ b }}",
            "{{ range }}",
            "{{ x.0 }}",
            "{{ x | default('y') }}",
            "{% if x %}y{% endif %}",
            "a {{- x }}",
        ] {
            assert!(
                !matches!(engine.compile(src), Ok(Expr::Fast(_))),
                "{src} should not be on the fast path"
            );
        }
    }
}
