//! Value templates: minijinja with the filters a migration needs.
//!
//! Templates are compiled once when the mapping loads (syntax errors are mapping errors
//! with a position) and evaluated per record (failures are that record's problems). A
//! template that is exactly one `{{ expression }}` is compiled as an expression so it keeps
//! its type: `"{{ tags }}"` stays a list, `"{{ status == 'deleted' }}"` a boolean.
//!
//! Records are seen through [`RecordCtx`], which adds the side files: lookup tables by
//! index (`users[requester_id].email`) and per-ticket joined lists (`comments[0]`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::fast::Fast;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, fmt::strtime};
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Environment, Error, ErrorKind, Expression, State, Template, UndefinedBehavior};

use crate::source::{SideIndex, key_string};

/// Message prefixes that let the payload stage classify a failed template.
pub const INVALID_DATE: &str = "invalid date";
pub const INVALID_NUMBER: &str = "invalid number";

/// The template environment of one compiled mapping.
pub struct Engine {
    env: &'static Environment<'static>,
    /// The default zone, for date filters compiled onto the fast path.
    tz: TimeZone,
}

/// A compiled value.
pub enum Expr {
    Const(Value),
    Template(Template<'static, 'static>),
    Expression(Expression<'static, 'static>),
    /// A template in the subset [`Fast`] evaluates on the record directly, with its
    /// minijinja compilation for contexts other than a plain record and for fallbacks.
    Fast(Box<FastExpr>),
}

/// A template with both compilations.
#[derive(Debug)]
pub struct FastExpr {
    pub fast: Fast,
    pub slow: Expr,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(v) => write!(f, "Const({v:?})"),
            Expr::Template(t) => write!(f, "Template({:?})", t.source()),
            Expr::Expression(_) => write!(f, "Expression"),
            Expr::Fast(e) => write!(f, "Fast({:?})", e.slow),
        }
    }
}

impl Engine {
    /// An environment whose date filters read timestamps without an offset in `tz`.
    ///
    /// The environment is leaked on purpose: compiled templates borrow it, a mapping is
    /// compiled once per process run, and this keeps `Plan` free of self-references.
    pub fn new(tz: TimeZone) -> Engine {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_keep_trailing_newline(true);
        env.add_global("__tz", Value::from_object(Zone(tz.clone())));
        env.add_filter("datetime", filter_datetime);
        env.add_filter("date", filter_date);
        env.add_filter("format_datetime", filter_format_datetime);
        env.add_filter("split", filter_split);
        env.add_filter("html_to_text", |v: String| html_to_text(&v));
        env.add_filter("text_to_html", |v: String| text_to_html(&v));
        env.add_filter("field", filter_field);
        env.add_filter("lookup", filter_lookup);
        env.add_filter("email_address", |v: String| email_address(&v).to_string());
        env.add_filter("email_name", |v: String| email_name(&v).to_string());
        env.add_filter("number", filter_number);
        env.add_filter("adf_to_text", |v: Value| adf_to_text(&v));
        Engine {
            env: Box::leak(Box::new(env)),
            tz,
        }
    }

    /// The filters templates can use, for "did you mean" hints.
    pub fn filter_names() -> &'static [&'static str] {
        &[
            "datetime",
            "date",
            "format_datetime",
            "split",
            "html_to_text",
            "text_to_html",
            "field",
            "lookup",
            "email_address",
            "email_name",
            "number",
            "adf_to_text",
        ]
    }

    /// Compiles a template string; plain text without `{{`/`{%` is a constant.
    pub fn compile(&self, source: &str) -> Result<Expr, Error> {
        if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
            return Ok(Expr::Const(Value::from(source)));
        }
        let single = single_expression(source);
        let slow = match single {
            Some(inner) => Expr::Expression(self.env.compile_expression_owned(inner.to_string())?),
            None => {
                let leaked: &'static str = Box::leak(source.to_string().into_boxed_str());
                Expr::Template(self.env.template_from_str(leaked)?)
            }
        };
        Ok(match Fast::compile(source, single, &self.tz) {
            Some(fast) => Expr::Fast(Box::new(FastExpr { fast, slow })),
            None => slow,
        })
    }

    pub fn constant(v: Value) -> Expr {
        Expr::Const(v)
    }
}

/// The inner expression of a template that is exactly `{{ expr }}`.
fn single_expression(source: &str) -> Option<&str> {
    let t = source.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

impl Expr {
    /// Evaluates against a context; templates give strings, expressions keep types.
    pub fn eval(&self, ctx: &Value) -> Result<Value, Error> {
        match self {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Template(t) => t.render(ctx).map(Value::from),
            Expr::Expression(e) => e.eval(ctx),
            Expr::Fast(e) => e.slow.eval(ctx),
        }
    }

    /// Evaluates against a source record: on the fast path when the template allows,
    /// else through minijinja with the record's full context (built once, on first need).
    pub fn eval_record(&self, input: &RecordInput<'_>) -> Result<Value, Error> {
        match self {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Fast(e) => match e.fast.eval(input.json, input.sides) {
                Some(v) => Ok(v),
                None => e.slow.eval(input.value()),
            },
            other => other.eval(input.value()),
        }
    }

    /// [`Expr::eval_record`] rendered as a payload string ([`value_to_string`]), without a
    /// detour through a minijinja value on the fast path.
    pub fn eval_record_string(&self, input: &RecordInput<'_>) -> Result<String, Error> {
        match self {
            Expr::Fast(e) => match e.fast.eval_string(input.json, input.sides) {
                Some(s) => Ok(s),
                None => e.slow.eval(input.value()).map(|v| value_to_string(&v)),
            },
            other => other.eval_record(input).map(|v| value_to_string(&v)),
        }
    }

    /// [`Expr::eval_record`] as a list of strings ([`value_to_list`]), without a detour
    /// through minijinja values on the fast path.
    pub fn eval_record_list(&self, input: &RecordInput<'_>) -> Result<Vec<String>, Error> {
        match self {
            Expr::Fast(e) => match e.fast.eval_list(input.json, input.sides) {
                Some(l) => Ok(l),
                None => e.slow.eval(input.value()).map(|v| value_to_list(&v)),
            },
            other => other.eval_record(input).map(|v| value_to_list(&v)),
        }
    }

    /// The names a template reads from its context (for checking CSV columns).
    pub fn variables(&self) -> Vec<String> {
        let mut v: Vec<String> = match self {
            Expr::Const(_) => return vec![],
            Expr::Template(t) => t.undeclared_variables(false).into_iter().collect(),
            Expr::Expression(e) => e.undeclared_variables(false).into_iter().collect(),
            Expr::Fast(e) => return e.slow.variables(),
        };
        v.sort();
        v
    }

    pub fn is_const(&self) -> bool {
        matches!(self, Expr::Const(_))
    }
}

/// Renders a value the way it would appear in a payload string: undefined and none are
/// empty, lists are comma-joined.
pub fn value_to_string(v: &Value) -> String {
    if v.is_undefined() || v.is_none() {
        return String::new();
    }
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    if v.kind() == minijinja::value::ValueKind::Seq
        && let Ok(iter) = v.try_iter()
    {
        return iter
            .map(|x| value_to_string(&x))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",");
    }
    v.to_string()
}

/// A value as a list of strings: lists item by item, strings split on commas.
pub fn value_to_list(v: &Value) -> Vec<String> {
    if v.is_undefined() || v.is_none() {
        return vec![];
    }
    if v.kind() == minijinja::value::ValueKind::Seq
        && let Ok(iter) = v.try_iter()
    {
        return iter
            .map(|x| value_to_string(&x).trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    value_to_string(v)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Contexts

/// The side files of a run, by name.
#[derive(Default)]
pub struct Sides {
    pub tables: HashMap<String, Arc<SideTable>>,
    /// Joined side files with the expression that gives a ticket's key.
    pub joins: HashMap<String, (Arc<SideTable>, Arc<Expr>)>,
}

impl fmt::Debug for Sides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sides")
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .field("joins", &self.joins.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A side file seen from templates. `None` index: an optional file that is absent.
///
/// [`SideIndex`] locks internally, so one table is shared by all builder threads as it is.
pub struct SideTable {
    pub name: String,
    pub index: Option<SideIndex>,
}

impl fmt::Debug for SideTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<side file {}>", self.name)
    }
}

impl SideTable {
    fn first(&self, key: &str) -> Value {
        let Some(index) = &self.index else {
            return Value::UNDEFINED;
        };
        match index.first(key) {
            Ok(Some(v)) => Value::from_serialize(&v),
            _ => Value::UNDEFINED,
        }
    }

    pub(crate) fn all(&self, key: &str) -> Value {
        let Some(index) = &self.index else {
            return Value::from(Vec::<Value>::new());
        };
        match index.get(key) {
            Ok(list) => Value::from_serialize(&list),
            Err(_) => Value::from(Vec::<Value>::new()),
        }
    }
}

impl Object for SideTable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let json = serde_json::to_value(key).ok()?;
        let key = key_string(&json)?;
        let v = self.first(&key);
        if v.is_undefined() { None } else { Some(v) }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}

/// A source record about to be built: the record as read, and its template context,
/// created only if a template off the fast path needs it (converting the whole record into
/// a minijinja value is the largest single cost of a record otherwise).
pub struct RecordInput<'a> {
    json: &'a serde_json::Value,
    sides: &'a Arc<Sides>,
    full: std::sync::OnceLock<Value>,
}

impl<'a> RecordInput<'a> {
    pub fn new(json: &'a serde_json::Value, sides: &'a Arc<Sides>) -> Self {
        RecordInput {
            json,
            sides,
            full: std::sync::OnceLock::new(),
        }
    }

    /// The record as templates see it (with `row` and the side files).
    pub fn value(&self) -> &Value {
        self.full.get_or_init(|| {
            Value::from_dyn_object(RecordCtx::new(
                Value::from_serialize(self.json),
                self.sides.clone(),
            ))
        })
    }
}

/// One source record plus the side files, as templates see it.
pub struct RecordCtx {
    record: Value,
    sides: Arc<Sides>,
    extra: Vec<(String, Value)>,
    joined: Mutex<HashMap<String, Value>>,
}

impl fmt::Debug for RecordCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.record)
    }
}

impl RecordCtx {
    pub fn new(record: Value, sides: Arc<Sides>) -> Arc<RecordCtx> {
        Arc::new(RecordCtx {
            record,
            sides,
            extra: vec![],
            joined: Mutex::new(HashMap::new()),
        })
    }

    /// A context whose own fields are `record`, with extra names (`ticket`, `author`).
    pub fn with_extra(
        record: Value,
        sides: Arc<Sides>,
        extra: Vec<(String, Value)>,
    ) -> Arc<RecordCtx> {
        Arc::new(RecordCtx {
            record,
            sides,
            extra,
            joined: Mutex::new(HashMap::new()),
        })
    }

    pub fn record(&self) -> &Value {
        &self.record
    }

    fn joined(&self, name: &str) -> Option<Value> {
        let (table, key_expr) = self.sides.joins.get(name)?;
        if let Ok(cache) = self.joined.lock()
            && let Some(v) = cache.get(name)
        {
            return Some(v.clone());
        }
        // The join key is read from the record alone (with `row`), never from other side
        // files, so joins cannot recurse.
        let plain = Value::from_dyn_object(RecordCtx::new(
            self.record.clone(),
            Arc::new(Sides::default()),
        ));
        let key = key_expr.eval(&plain).ok()?;
        let key = value_to_string(&key);
        let list = if key.is_empty() {
            Value::from(Vec::<Value>::new())
        } else {
            table.all(&key)
        };
        if let Ok(mut cache) = self.joined.lock() {
            cache.insert(name.to_string(), list.clone());
        }
        Some(list)
    }
}

impl Object for RecordCtx {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if name == "row" || name == "record" {
            return Some(self.record.clone());
        }
        if let Some((_, v)) = self.extra.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        if let Some(v) = self.joined(name) {
            return Some(v);
        }
        if let Some(t) = self.sides.tables.get(name) {
            return Some(Value::from_dyn_object(t.clone()));
        }
        self.record
            .get_attr(name)
            .ok()
            .filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = self
            .extra
            .iter()
            .map(|(k, _)| Value::from(k.as_str()))
            .collect();
        if let Ok(iter) = self.record.try_iter() {
            keys.extend(iter);
        }
        Enumerator::Values(keys)
    }
}

// ---------------------------------------------------------------------------------------
// Dates

#[derive(Debug)]
struct Zone(TimeZone);

impl Object for Zone {}

fn default_zone(state: &State) -> TimeZone {
    state
        .lookup("__tz")
        .and_then(|v| v.downcast_object_ref::<Zone>().map(|z| z.0.clone()))
        .unwrap_or(TimeZone::UTC)
}

fn zone_named(name: Option<String>, state: &State) -> Result<TimeZone, Error> {
    match name {
        None => Ok(default_zone(state)),
        Some(n) => TimeZone::get(&n).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("unknown time zone {n:?} (use an IANA name such as Europe/Berlin)"),
            )
        }),
    }
}

/// Named input formats; anything else is a strftime pattern.
fn named_format(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "iso8601" | "rfc3339" | "iso" => &[],
        "sql" | "mysql" => &["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"],
        "jira" => &["%d/%b/%y %I:%M %p", "%d/%b/%Y %I:%M %p", "%d/%b/%y %H:%M"],
        "twitter" => &["%a %b %d %H:%M:%S %z %Y"],
        "us" => &[
            "%m/%d/%Y %H:%M:%S",
            "%m/%d/%Y %H:%M",
            "%m/%d/%Y %I:%M %p",
            "%m/%d/%Y",
        ],
        "eu" => &[
            "%d/%m/%Y %H:%M:%S",
            "%d/%m/%Y %H:%M",
            "%d.%m.%Y %H:%M",
            "%d/%m/%Y",
            "%d.%m.%Y",
        ],
        "unix" | "unix_ms" => &[],
        _ => return None,
    })
}

/// Parses a timestamp in one of the shapes exports use; `format` is a named format or a
/// strftime pattern, `None` tries the common shapes.
pub fn parse_instant(
    input: &str,
    format: Option<&str>,
    tz: &TimeZone,
) -> Result<Timestamp, String> {
    let s = input.trim();
    let fail = || {
        let how = match format {
            Some(f) => format!("format {f:?}"),
            None => "ISO 8601, 'yyyy-mm-dd hh:mm:ss', a date, Unix seconds or Twitter style".into(),
        };
        format!("{INVALID_DATE}: cannot read {s:?} as a date/time (tried {how})")
    };
    match format {
        Some("unix") => {
            return s
                .parse::<i64>()
                .ok()
                .and_then(|n| Timestamp::from_second(n).ok())
                .ok_or_else(fail);
        }
        Some("unix_ms") => {
            return s
                .parse::<i64>()
                .ok()
                .and_then(|n| Timestamp::from_millisecond(n).ok())
                .ok_or_else(fail);
        }
        Some(f) if named_format(f).is_some_and(|p| !p.is_empty()) => {
            for pattern in named_format(f).unwrap_or(&[]) {
                if let Some(ts) = with_pattern(s, pattern, tz) {
                    return Ok(ts);
                }
            }
            return Err(fail());
        }
        Some(f) if named_format(f).is_none() => {
            return with_pattern(s, f, tz).ok_or_else(fail);
        }
        _ => {}
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Some(ts) = with_pattern(s, "%Y-%m-%dT%H:%M:%S%.f%z", tz) {
        return Ok(ts);
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return tz.to_zoned(dt).map(|z| z.timestamp()).map_err(|_| fail());
    }
    if let Ok(d) = s.parse::<Date>() {
        return tz
            .to_zoned(d.to_datetime(jiff::civil::Time::midnight()))
            .map(|z| z.timestamp())
            .map_err(|_| fail());
    }
    if format.is_none()
        && (9..=11).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = s.parse::<i64>()
    {
        return Timestamp::from_second(n).map_err(|_| fail());
    }
    if let Some(ts) = with_pattern(s, "%a %b %d %H:%M:%S %z %Y", tz) {
        return Ok(ts);
    }
    Err(fail())
}

fn with_pattern(s: &str, pattern: &str, tz: &TimeZone) -> Option<Timestamp> {
    let bdt = strtime::parse(pattern, s).ok()?;
    if bdt.offset().is_some() {
        return bdt.to_timestamp().ok();
    }
    let dt = bdt.to_datetime().ok().or_else(|| {
        bdt.to_date()
            .ok()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    })?;
    tz.to_zoned(dt).ok().map(|z| z.timestamp())
}

fn is_empty(v: &Value) -> bool {
    v.is_undefined() || v.is_none() || v.as_str().is_some_and(|s| s.trim().is_empty())
}

fn input_string(v: &Value) -> String {
    match v.as_i64() {
        Some(n) => n.to_string(),
        None => value_to_string(v),
    }
}

/// `created_at | datetime` or `| datetime('%d/%m/%Y %H:%M', 'Europe/Paris')`: to UTC
/// `yyyy-mm-ddThh:mm:ss`, the form HappyFox's `created_at` takes.
fn filter_datetime(
    state: &State,
    value: Value,
    format: Option<String>,
    tz: Option<String>,
) -> Result<Value, Error> {
    datetime_value(&value, format.as_deref(), || zone_named(tz, state))
}

/// The `datetime` filter with its zone passed in (resolved only when the value is not
/// empty, so an empty value never reports a bad zone); shared with the fast path.
pub(crate) fn datetime_value(
    value: &Value,
    format: Option<&str>,
    tz: impl FnOnce() -> Result<TimeZone, Error>,
) -> Result<Value, Error> {
    if is_empty(value) {
        return Ok(Value::UNDEFINED);
    }
    let tz = tz()?;
    let ts = parse_instant(&input_string(value), format, &tz)
        .map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
    Ok(Value::from(utc_seconds(ts)))
}

/// `ts` in UTC as `yyyy-mm-ddThh:mm:ss` (strftime `%Y-%m-%dT%H:%M:%S`), written directly
/// for four-digit years: every record's `created_at` goes through here.
fn utc_seconds(ts: Timestamp) -> String {
    let dt = ts.to_zoned(TimeZone::UTC).datetime();
    if (0..=9999).contains(&dt.year()) {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    } else {
        ts.to_zoned(TimeZone::UTC)
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string()
    }
}

/// `due_at | date`: `yyyy-mm-dd` in the default zone (dates without time stay as they are).
fn filter_date(
    state: &State,
    value: Value,
    format: Option<String>,
    tz: Option<String>,
) -> Result<Value, Error> {
    date_value(&value, format.as_deref(), || zone_named(tz, state))
}

/// The `date` filter with its zone passed in; shared with the fast path.
pub(crate) fn date_value(
    value: &Value,
    format: Option<&str>,
    tz: impl FnOnce() -> Result<TimeZone, Error>,
) -> Result<Value, Error> {
    if is_empty(value) {
        return Ok(Value::UNDEFINED);
    }
    let s = input_string(value);
    if format.is_none()
        && let Ok(d) = s.trim().parse::<Date>()
        && s.trim().len() == 10
    {
        return Ok(Value::from(d.to_string()));
    }
    let tz = tz()?;
    let ts =
        parse_instant(&s, format, &tz).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
    Ok(Value::from(
        ts.to_zoned(tz).strftime("%Y-%m-%d").to_string(),
    ))
}

/// `created_at | format_datetime('%d %b %Y %H:%M')`: for headers shown to people, in the
/// default zone unless one is given.
fn filter_format_datetime(
    state: &State,
    value: Value,
    pattern: String,
    tz: Option<String>,
) -> Result<Value, Error> {
    if is_empty(&value) {
        return Ok(Value::UNDEFINED);
    }
    let zone = zone_named(tz, state)?;
    let ts = parse_instant(&input_string(&value), None, &default_zone(state))
        .map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
    let zoned = ts.to_zoned(zone);
    let mut out = String::new();
    jiff::fmt::strtime::format(pattern.as_str(), &zoned)
        .map(|s| out.push_str(&s))
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("bad date pattern {pattern:?}: {e}"),
            )
        })?;
    Ok(Value::from(out))
}

/// `"a; b;c" | split(';')` → `["a", "b", "c"]` (trimmed, empty parts dropped);
/// `split(';', 2)` splits at most twice (Jira's `date;author;body` comment cells).
fn filter_split(value: Value, sep: Option<String>, max: Option<usize>) -> Value {
    split_value(&value, sep.as_deref(), max)
}

/// The `split` filter; shared with the fast path.
pub(crate) fn split_value(value: &Value, sep: Option<&str>, max: Option<usize>) -> Value {
    if value.kind() == minijinja::value::ValueKind::Seq {
        return value.clone();
    }
    Value::from(split_parts(&value_to_string(value), sep, max))
}

/// The parts `split` makes of a string.
pub(crate) fn split_parts(s: &str, sep: Option<&str>, max: Option<usize>) -> Vec<String> {
    let sep = sep.unwrap_or(",");
    match max {
        Some(n) => s.splitn(n + 1, sep).map(|p| p.trim().to_string()).collect(),
        None => s
            .split(sep)
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    }
}

/// `custom_fields | field(360001)`: the value of a Zendesk-style `[{id, value}]` list.
fn filter_field(value: Value, id: Value) -> Value {
    field_value(&value, &value_to_string(&id))
}

/// The `field` filter with the wanted id as a string; shared with the fast path.
pub(crate) fn field_value(value: &Value, want: &str) -> Value {
    if let Ok(iter) = value.try_iter() {
        for item in iter {
            if let Ok(item_id) = item.get_attr("id")
                && value_to_string(&item_id) == want
            {
                return item.get_attr("value").unwrap_or(Value::UNDEFINED);
            }
        }
    }
    Value::UNDEFINED
}

/// `requester_id | lookup('users', 'email')`: a lookup in a side file.
fn filter_lookup(
    state: &State,
    key: Value,
    table: String,
    attr: Option<String>,
) -> Result<Value, Error> {
    let t = state.lookup(&table).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("no side file named {table:?}"),
        )
    })?;
    let found = t.get_item(&key).unwrap_or(Value::UNDEFINED);
    Ok(match attr {
        Some(a) => found.get_attr(&a).unwrap_or(Value::UNDEFINED),
        None => found,
    })
}

/// `"1234.50" | number`, or `"1.234,50" | number(',')` naming the decimal separator.
fn filter_number(value: Value, decimal: Option<String>) -> Result<Value, Error> {
    number_value(&value, decimal.as_deref())
}

/// The `number` filter; shared with the fast path.
pub(crate) fn number_value(value: &Value, decimal: Option<&str>) -> Result<Value, Error> {
    if is_empty(value) {
        return Ok(Value::UNDEFINED);
    }
    if value.as_i64().is_some() || value.kind() == minijinja::value::ValueKind::Number {
        return Ok(value.clone());
    }
    let s = value_to_string(value);
    let decimal = decimal.and_then(|d| d.chars().next()).unwrap_or('.');
    parse_number_with(&s, decimal)
        .map(Value::from)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("{INVALID_NUMBER}: cannot read {s:?} as a number"),
            )
        })
}

/// Parses a plain decimal number (`1234.5`, `-3`, `1e3` is refused): anything else is
/// ambiguous across locales (`1.299` is 1299 in Germany), so other shapes need the
/// `number(',')` filter argument that names the decimal separator.
pub fn parse_number(s: &str) -> Option<f64> {
    parse_number_with(s, '.')
}

/// Parses a number whose decimal separator is `decimal`; the other of `.`/`,` and spaces
/// are taken as thousands separators.
pub fn parse_number_with(s: &str, decimal: char) -> Option<f64> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let thousands = if decimal == ',' { '.' } else { ',' };
    let mut out = String::with_capacity(digits.len() + 1);
    if neg {
        out.push('-');
    }
    let mut seen_decimal = false;
    for c in digits.chars() {
        match c {
            '0'..='9' => out.push(c),
            c if c == decimal && !seen_decimal => {
                seen_decimal = true;
                out.push('.');
            }
            c if (c == thousands || c == ' ' || c == '\u{a0}')
                && !seen_decimal
                && decimal != '.' => {}
            _ => return None,
        }
    }
    if !out.chars().any(|c| c.is_ascii_digit()) || out.ends_with('.') {
        return None;
    }
    out.parse::<f64>().ok().filter(|f| f.is_finite())
}

// ---------------------------------------------------------------------------------------
// Text

/// Plain text from HTML: tags dropped, block ends become line breaks, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if matches!(
            name.as_str(),
            "br" | "p"
                | "div"
                | "li"
                | "tr"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "blockquote"
                | "pre"
        ) && (tag.starts_with('/') || name == "br")
            && !out.ends_with('\n')
        {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let decoded = html_escape::decode_html_entities(&out).to_string();
    let mut lines: Vec<&str> = decoded.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n").trim_start().to_string()
}

/// HTML from plain text: escaped, paragraphs for blank lines, `<br>` for line breaks.
///
/// Written as one pass into one buffer: every ticket body goes through it.
pub fn text_to_html(text: &str) -> String {
    let escaped = html_escape::encode_text(text);
    let text: std::borrow::Cow<'_, str> = if escaped.contains('\r') {
        escaped.replace("\r\n", "\n").into()
    } else {
        escaped
    };
    let mut out = String::with_capacity(text.len() + 64);
    for p in text.split("\n\n") {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        out.push_str("<p>");
        for (i, line) in p.split('\n').enumerate() {
            if i > 0 {
                out.push_str("<br>");
            }
            out.push_str(line);
        }
        out.push_str("</p>");
    }
    out
}

/// `"Rachel <rachel@example.com>"` → `rachel@example.com`.
pub fn email_address(s: &str) -> &str {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if b > a => s[a + 1..b].trim(),
        _ => s.trim(),
    }
}

/// `"Rachel <rachel@example.com>"` → `Rachel`.
pub fn email_name(s: &str) -> &str {
    match s.rfind('<') {
        Some(a) => s[..a].trim().trim_matches('"').trim(),
        None => "",
    }
}

/// Plain text from an Atlassian Document Format body (Jira REST v3 comments).
fn adf_to_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        if let Ok(t) = v.get_attr("text")
            && let Some(s) = t.as_str()
        {
            out.push_str(s);
        }
        let kind = v
            .get_attr("type")
            .ok()
            .and_then(|t| t.as_str().map(str::to_string));
        if kind.as_deref() == Some("hardBreak") {
            out.push('\n');
        }
        if let Ok(content) = v.get_attr("content")
            && let Ok(iter) = content.try_iter()
        {
            for child in iter {
                walk(&child, out);
            }
        }
        if matches!(
            kind.as_deref(),
            Some("paragraph" | "heading" | "listItem" | "codeBlock")
        ) {
            out.push('\n');
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, ctx: serde_json::Value) -> Result<Value, Error> {
        let engine = Engine::new(TimeZone::get("Europe/Berlin").unwrap());
        engine.compile(src)?.eval(&Value::from_serialize(&ctx))
    }

    #[test]
    fn single_expressions_keep_their_type() {
        let v = eval("{{ tags }}", serde_json::json!({"tags": ["a", "b"]})).unwrap();
        assert_eq!(value_to_list(&v), vec!["a", "b"]);
        let v = eval(
            "{{ status == 'deleted' }}",
            serde_json::json!({"status": "deleted"}),
        )
        .unwrap();
        assert!(v.is_true());
        let v = eval("ZD-{{ id }}", serde_json::json!({"id": 7})).unwrap();
        assert_eq!(v.as_str(), Some("ZD-7"));
    }

    #[test]
    fn datetime_shapes_from_real_exports() {
        let utc = |s: &str, f: Option<&str>| {
            let tz = TimeZone::get("Europe/Berlin").unwrap();
            parse_instant(s, f, &tz).map(|t| {
                t.to_zoned(TimeZone::UTC)
                    .strftime("%Y-%m-%dT%H:%M:%S")
                    .to_string()
            })
        };
        assert_eq!(
            utc("2023-09-09T23:52:05Z", None).unwrap(),
            "2023-09-09T23:52:05"
        );
        assert_eq!(
            utc("2014-12-31T12:27:09+10:00", None).unwrap(),
            "2014-12-31T02:27:09"
        );
        assert_eq!(
            utc("2022-06-27T17:12:35.000Z", None).unwrap(),
            "2022-06-27T17:12:35"
        );
        assert_eq!(
            utc("2023-03-23T07:45:29.056+0200", None).unwrap(),
            "2023-03-23T05:45:29"
        );
        assert_eq!(
            utc("2024-03-05 14:22:10", None).unwrap(),
            "2024-03-05T13:22:10"
        );
        assert_eq!(
            utc("2024-07-05 14:22:10", None).unwrap(),
            "2024-07-05T12:22:10"
        );
        assert_eq!(utc("1695052663", None).unwrap(), "2023-09-18T15:57:43");
        assert_eq!(
            utc("Tue Oct 31 22:10:47 +0000 2017", None).unwrap(),
            "2017-10-31T22:10:47"
        );
        assert_eq!(
            utc("23/Mar/23 7:45 AM", Some("jira")).unwrap(),
            "2023-03-23T06:45:00"
        );
        assert_eq!(
            utc("05.03.2024 14:22", Some("%d.%m.%Y %H:%M")).unwrap(),
            "2024-03-05T13:22:00"
        );
        let err = utc("next tuesday", None).unwrap_err();
        assert!(err.starts_with(INVALID_DATE), "{err}");
        assert!(err.contains("next tuesday"));
    }

    #[test]
    fn utc_seconds_matches_strftime() {
        for s in [
            "2024-03-05T13:22:10Z",
            "0001-01-01T00:00:00Z",
            "9999-12-30T21:59:59.999Z",
            "1970-01-01T00:00:00.5+01:00",
        ] {
            let ts: Timestamp = s.parse().unwrap();
            let want = ts
                .to_zoned(TimeZone::UTC)
                .strftime("%Y-%m-%dT%H:%M:%S")
                .to_string();
            assert_eq!(utc_seconds(ts), want, "{s}");
        }
    }

    #[test]
    fn date_filters() {
        let v = eval(
            "{{ d | datetime }}",
            serde_json::json!({"d": "2024-03-05 14:22:10"}),
        )
        .unwrap();
        assert_eq!(v.as_str(), Some("2024-03-05T13:22:10"));
        let v = eval("{{ d | date }}", serde_json::json!({"d": "2024-03-05"})).unwrap();
        assert_eq!(v.as_str(), Some("2024-03-05"));
        let v = eval("{{ d | datetime }}", serde_json::json!({"d": ""})).unwrap();
        assert!(v.is_undefined());
        let e = eval("{{ d | datetime }}", serde_json::json!({"d": "soon"})).unwrap_err();
        assert!(e.to_string().contains(INVALID_DATE), "{e}");
        let v = eval(
            "{{ d | format_datetime('%d %b %Y %H:%M') }}",
            serde_json::json!({"d": "2024-03-05T13:22:10Z"}),
        )
        .unwrap();
        assert_eq!(v.as_str(), Some("05 Mar 2024 14:22"));
    }

    #[test]
    fn text_filters() {
        assert_eq!(
            html_to_text("<p>Hi &amp; bye</p><p>Two<br>lines</p>"),
            "Hi & bye\nTwo\nlines"
        );
        assert_eq!(
            text_to_html("a < b\n\nline1\nline2"),
            "<p>a &lt; b</p><p>line1<br>line2</p>"
        );
        assert_eq!(
            email_address("Rachel <rachel@example.com>"),
            "rachel@example.com"
        );
        assert_eq!(email_name("\"Rachel R\" <rachel@example.com>"), "Rachel R");
        let v = eval(
            "{{ c | split(';', 2) }}",
            serde_json::json!({"c": "2023-01-01;bob;body; with; semis"}),
        )
        .unwrap();
        assert_eq!(
            value_to_list(&v),
            vec!["2023-01-01", "bob", "body; with; semis"]
        );
        let v = eval("{{ cf | field(360001) }}", serde_json::json!({"cf": [{"id": 1, "value": "x"}, {"id": 360001, "value": "widget_pro"}]})).unwrap();
        assert_eq!(v.as_str(), Some("widget_pro"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1234.5"), Some(1234.5));
        assert_eq!(parse_number("-3"), Some(-3.0));
        assert_eq!(parse_number("1.299,00"), None);
        assert_eq!(parse_number("1,234.50"), None);
        assert_eq!(parse_number_with("1.234,50", ','), Some(1234.5));
        assert_eq!(parse_number_with("12,5", ','), Some(12.5));
        assert_eq!(parse_number("1e3"), None);
        assert_eq!(parse_number("twelve"), None);
        assert_eq!(parse_number(""), None);
    }
}
