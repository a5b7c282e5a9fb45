//! The HTTP face of the sandbox: routing, Basic auth, rate limit, faults, body parsing.
//!
//! One dispatcher handles every request so that the order HappyFox applies is explicit:
//! auth, then the rate limit, then latency, then (for ticket writes) overlap tracking,
//! then a 500 fault, then the work, then possibly a dropped connection. Connections are
//! accepted through [`KillableListener`] so that a "dropped after commit" fault can close
//! the socket before a single byte of the response is written.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body as AxumBody;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::SandboxConfig;
use super::limits::{FaultDice, MethodClass, RateLimiter, Verdict};
use super::ops::{self, Action, Payload};
use super::render::{self, Detail};
use super::search::{ContactQuery, TicketQuery};
use super::stats::Stats;
use super::store::{Attachment, Store};
use super::validate::FieldErrors;
use crate::schema::{Behavior, Schema};

/// Attachments of one request may total 25 MB.
pub const MAX_ATTACHMENTS: u64 = 25 * 1024 * 1024;
/// A request body may be a little larger than that (form fields, multipart framing).
pub const MAX_BODY: usize = 27 * 1024 * 1024;
/// Bulk creates take at most this many items.
pub const MAX_BULK: usize = 100;

/// Everything the handlers share.
pub struct Shared {
    pub schema: Schema,
    auth_header: String,
    pub base_url: String,
    pub store: Mutex<Store>,
    limiter: Mutex<RateLimiter>,
    dice: Mutex<FaultDice>,
    pub stats: Mutex<Stats>,
    inflight: Mutex<HashMap<u64, u32>>,
    reject_overlaps: bool,
    pub dirty: AtomicBool,
}

/// Locks a mutex even if a previous holder panicked: the data are plain counters and maps
/// that stay consistent between statements.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Shared {
    pub fn new(config: &SandboxConfig, store: Store, base_url: String) -> Shared {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", config.api_key, config.auth_code));
        Shared {
            schema: config.schema.clone(),
            auth_header: format!("Basic {token}"),
            base_url,
            store: Mutex::new(store),
            limiter: Mutex::new(RateLimiter::new(config.limits)),
            dice: Mutex::new(FaultDice::new(config.faults.clone())),
            stats: Mutex::new(Stats::default()),
            inflight: Mutex::new(HashMap::new()),
            reject_overlaps: config.reject_overlaps,
            dirty: AtomicBool::new(false),
        }
    }

    /// Current counters, with the store's counts filled in.
    pub fn stats(&self) -> Stats {
        let mut s = lock(&self.stats).clone();
        let store = lock(&self.store);
        s.tickets = store.tickets.len() as u64;
        s.updates = store.update_count;
        s.contacts = store.contacts.len() as u64;
        s.deleted_tickets = store.deleted_tickets;
        s
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.trim() == self.auth_header)
    }
}

// ---------------------------------------------------------------------------------------
// Connections that a fault can kill before the response is written.

/// Accepts TCP connections wrapped in [`KillableStream`].
pub struct KillableListener(pub TcpListener);

impl axum::serve::Listener for KillableListener {
    type Io = KillableStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let io = KillableStream {
                        inner: stream,
                        kill: Arc::new(AtomicBool::new(false)),
                    };
                    return (io, addr);
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP stream that fails every read and write once its kill switch is set, which makes
/// hyper close the connection without sending anything more.
pub struct KillableStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by fault",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.load(Ordering::Acquire) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.load(Ordering::Acquire) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.load(Ordering::Acquire) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The kill switch of the connection a request came in on.
#[derive(Clone)]
pub struct ConnHandle(Arc<AtomicBool>);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, KillableListener>>
    for ConnHandle
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, KillableListener>) -> Self {
        ConnHandle(stream.io().kill.clone())
    }
}

// ---------------------------------------------------------------------------------------
// Routing.

#[derive(Debug, Clone, PartialEq)]
enum Endpoint {
    Reference(&'static str),
    Users,
    User(String),
    Tickets,
    Ticket(u64),
    TicketAction(u64, Action, &'static str),
    TicketDelete(u64),
    InlineAttachment,
    Stats,
    Reset,
    NotFound,
}

impl Endpoint {
    fn label(&self) -> String {
        match self {
            Endpoint::Reference(name) => format!("{name}/"),
            Endpoint::Users => "users/".into(),
            Endpoint::User(_) => "user/{id}/".into(),
            Endpoint::Tickets => "tickets/".into(),
            Endpoint::Ticket(_) => "ticket/{n}/".into(),
            Endpoint::TicketAction(_, _, name) => format!("ticket/{{n}}/{name}/"),
            Endpoint::TicketDelete(_) => "ticket/{n}/delete/".into(),
            Endpoint::InlineAttachment => "ticket-inline-attachment".into(),
            Endpoint::Stats => "_sandbox/stats".into(),
            Endpoint::Reset => "_sandbox/reset".into(),
            Endpoint::NotFound => "other".into(),
        }
    }

    fn write_target(&self) -> Option<u64> {
        match self {
            Endpoint::TicketAction(n, _, _) | Endpoint::TicketDelete(n) => Some(*n),
            _ => None,
        }
    }
}

const REFERENCE: [&str; 7] = [
    "categories",
    "statuses",
    "priorities",
    "staff",
    "ticket_custom_fields",
    "user_custom_fields",
    "contact_groups",
];

const ACTIONS: [&str; 5] = [
    "staff_update",
    "staff_pvtnote",
    "user_reply",
    "update_tags",
    "update_custom_fields",
];

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(path: &str) -> Endpoint {
    match path {
        "/_sandbox/stats" | "/_sandbox/stats/" => return Endpoint::Stats,
        "/_sandbox/reset" | "/_sandbox/reset/" => return Endpoint::Reset,
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/api/1.1/json/") else {
        return Endpoint::NotFound;
    };
    if rest == "ticket-inline-attachment" || rest == "ticket-inline-attachment/" {
        return Endpoint::InlineAttachment;
    }
    // Every other endpoint ends with a slash, as HappyFox's URLs do.
    let Some(rest) = rest.strip_suffix('/') else {
        return Endpoint::NotFound;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let ticket_no = |s: &str| {
        (!s.is_empty() && s.len() < 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match parts.as_slice() {
        [name] => {
            if let Some(r) = REFERENCE.iter().find(|r| *r == name) {
                Endpoint::Reference(r)
            } else if *name == "users" {
                Endpoint::Users
            } else if *name == "tickets" {
                Endpoint::Tickets
            } else {
                Endpoint::NotFound
            }
        }
        ["user", who] if !who.is_empty() => Endpoint::User(percent_decode(who)),
        ["ticket", n] => ticket_no(n).map_or(Endpoint::NotFound, Endpoint::Ticket),
        ["ticket", n, "delete"] => ticket_no(n).map_or(Endpoint::NotFound, Endpoint::TicketDelete),
        ["ticket", n, action] => match (
            ticket_no(n),
            Action::from_path(action),
            ACTIONS.iter().find(|a| *a == action),
        ) {
            (Some(n), Some(a), Some(name)) => Endpoint::TicketAction(n, a, name),
            _ => Endpoint::NotFound,
        },
        _ => Endpoint::NotFound,
    }
}

// ---------------------------------------------------------------------------------------
// Responses.

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(AxumBody::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "Cannot find the requested object"}),
    )
}

fn bad_request_list(errors: &FieldErrors) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": errors.to_list()}))
}

fn bad_request_object(errors: &FieldErrors) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": errors.to_object()}),
    )
}

fn request_error(message: &str) -> FieldErrors {
    let mut e = FieldErrors::default();
    e.add("__all__", message);
    e
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(AxumBody::from(text));
    *r.status_mut() = status;
    r
}

fn unauthorized() -> Response {
    let mut r = Response::new(AxumBody::empty());
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"HappyFox\""),
    );
    r
}

// ---------------------------------------------------------------------------------------
// Request bodies.

/// A parsed request body: the fields, and the uploaded files (metadata only: the sandbox
/// keeps names and sizes, not contents, so memory stays bounded).
struct Input {
    value: Value,
    files: Vec<Upload>,
}

/// One uploaded file part. The digest lets a test check that the bytes arrived intact
/// without the sandbox keeping them.
struct Upload {
    field: String,
    filename: String,
    size: u64,
    /// The first bytes, for image sniffing (only when asked).
    head: Vec<u8>,
    sha256: String,
}

enum BodyError {
    TooLarge,
    Invalid(String),
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Reads JSON, urlencoded or multipart. Multipart and form values are strings; repeated
/// keys become lists. `keep_bytes` keeps the head of each file (for image sniffing).
async fn read_input(req: Request, keep_bytes: bool) -> Result<Input, BodyError> {
    let ct = content_type(req.headers());
    if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| BodyError::Invalid(e.body_text()))?;
        let mut fields = Map::new();
        let mut files = Vec::new();
        loop {
            let next = mp.next_field().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    BodyError::TooLarge
                } else {
                    BodyError::Invalid(e.body_text())
                }
            })?;
            let Some(mut field) = next else { break };
            let name = field.name().unwrap_or("").to_string();
            if let Some(filename) = field.file_name().map(str::to_string) {
                let mut size = 0u64;
                let mut head = Vec::new();
                let mut digest = Sha256::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        BodyError::TooLarge
                    } else {
                        BodyError::Invalid(e.body_text())
                    }
                })? {
                    size += chunk.len() as u64;
                    digest.update(&chunk);
                    if keep_bytes && head.len() < 64 {
                        head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
                    }
                }
                files.push(Upload {
                    field: name,
                    filename,
                    size,
                    head,
                    sha256: hex::encode(digest.finalize()),
                });
            } else {
                let text = field
                    .text()
                    .await
                    .map_err(|e| BodyError::Invalid(e.body_text()))?;
                push_field(&mut fields, name, text);
            }
        }
        return Ok(Input {
            value: Value::Object(fields),
            files,
        });
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| BodyError::TooLarge)?;
    if ct.starts_with("application/x-www-form-urlencoded") {
        let mut fields = Map::new();
        for (k, v) in form_pairs(&bytes) {
            push_field(&mut fields, k, v);
        }
        return Ok(Input {
            value: Value::Object(fields),
            files: Vec::new(),
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Input {
            value: Value::Object(Map::new()),
            files: Vec::new(),
        });
    }
    serde_json::from_slice(&bytes)
        .map(|value| Input {
            value,
            files: Vec::new(),
        })
        .map_err(|e| BodyError::Invalid(format!("Invalid JSON: {e}")))
}

fn push_field(fields: &mut Map<String, Value>, name: String, text: String) {
    match fields.get_mut(&name) {
        Some(Value::Array(a)) => a.push(Value::String(text)),
        Some(other) => {
            let first = other.take();
            *other = Value::Array(vec![first, Value::String(text)]);
        }
        None => {
            fields.insert(name, Value::String(text));
        }
    }
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// The query string as pairs, decoded the way Django decodes them.
fn query_pairs(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| form_pairs(q.as_bytes()).into_iter().collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The dispatcher.

/// Decrements a ticket's in-flight write count when the request ends, however it ends.
struct InflightGuard<'a> {
    shared: &'a Shared,
    ticket: u64,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        let mut map = lock(&self.shared.inflight);
        if let Some(n) = map.get_mut(&self.ticket) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ticket);
            }
        }
    }
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    req: Request,
) -> Response {
    let endpoint = route(req.uri().path());
    let method = req.method().clone();
    let label = format!("{} {}", method, endpoint.label());
    let (response, dropped) = dispatch(&shared, &endpoint, req).await;
    let status = if dropped {
        conn.0.store(true, Ordering::Release);
        "dropped".to_string()
    } else {
        response.status().as_u16().to_string()
    };
    lock(&shared.stats).count(&label, &status);
    response
}

async fn dispatch(shared: &Shared, endpoint: &Endpoint, req: Request) -> (Response, bool) {
    if !shared.authorized(req.headers()) {
        return (unauthorized(), false);
    }
    let method = req.method().clone();
    let is_post = method == Method::POST;
    if !is_post && method != Method::GET {
        return (
            plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
            false,
        );
    }
    match endpoint {
        Endpoint::Stats if !is_post => return (ok(&json!(shared.stats())), false),
        Endpoint::Reset if is_post => {
            lock(&shared.store).clear();
            *lock(&shared.stats) = Stats::default();
            lock(&shared.limiter).reset();
            shared.dirty.store(true, Ordering::Release);
            return (ok(&json!({"reset": true})), false);
        }
        Endpoint::Stats | Endpoint::Reset => {
            return (
                plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
                false,
            );
        }
        _ => {}
    }
    let class = if is_post {
        MethodClass::Post
    } else {
        MethodClass::Get
    };
    let verdict = lock(&shared.limiter).check(class, Instant::now());
    if let Verdict::Limited { started_lockout } = verdict {
        {
            let mut stats = lock(&shared.stats);
            stats.rate_limited += 1;
            if started_lockout {
                stats.lockouts += 1;
            }
        }
        drain(req).await;
        return (
            json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"error": "Too many requests"}),
            ),
            false,
        );
    }
    let _guard = match endpoint.write_target().filter(|_| is_post) {
        Some(ticket) => {
            let overlapping = {
                let mut map = lock(&shared.inflight);
                let n = map.entry(ticket).or_insert(0);
                *n += 1;
                *n > 1
            };
            let guard = InflightGuard { shared, ticket };
            let reject = overlapping && {
                let mut stats = lock(&shared.stats);
                stats.overlapping_writes += 1;
                *stats.overlaps_by_ticket.entry(ticket).or_default() += 1;
                if shared.reject_overlaps {
                    stats.conflicts += 1;
                }
                shared.reject_overlaps
            };
            if reject {
                drain(req).await;
                return (
                    json_response(
                        StatusCode::CONFLICT,
                        &json!({"error": "Another update to this ticket is in progress"}),
                    ),
                    false,
                );
            }
            Some(guard)
        }
        None => None,
    };
    let draw = lock(&shared.dice).draw(is_post);
    if let Some(delay) = draw.delay {
        lock(&shared.stats).faults.latency += 1;
        tokio::time::sleep(delay).await;
    }
    if draw.fail {
        lock(&shared.stats).faults.fail += 1;
        drain(req).await;
        return (
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            false,
        );
    }
    let response = work(shared, endpoint, method, req).await;
    let stored = is_post && response.status().is_success();
    if stored {
        shared.dirty.store(true, Ordering::Release);
    }
    if stored && draw.drop {
        lock(&shared.stats).faults.drop += 1;
        return (response, true);
    }
    (response, false)
}

/// Reads and discards a request body (up to [`MAX_BODY`]) before an early answer. A
/// server that answers before reading an upload and closes the connection makes the client
/// see a broken pipe instead of the answer, which turns a provable "nothing happened" (a
/// 429 or 500 before storing) into an unknown outcome. A buffering front end (nginx's
/// default) reads the whole request before the application answers; whether HappyFox's
/// does is not documented, so the client still treats a broken pipe as unknown.
async fn drain(req: Request) {
    use futures::StreamExt as _;
    let mut body = req.into_body().into_data_stream();
    let mut read = 0usize;
    while let Some(Ok(chunk)) = body.next().await {
        read += chunk.len();
        if read > MAX_BODY {
            break;
        }
    }
}

fn method_not_allowed() -> Response {
    plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

async fn work(shared: &Shared, endpoint: &Endpoint, method: Method, req: Request) -> Response {
    let schema = &shared.schema;
    let is_get = method == Method::GET;
    match endpoint {
        Endpoint::Reference(name) if is_get => ok(&reference(schema, name)),
        Endpoint::Users if is_get => list_users(shared, &query_pairs(req.uri())),
        Endpoint::Users => post_users(shared, req).await,
        Endpoint::User(who) if is_get => {
            let store = lock(&shared.store);
            let found = match who.parse::<u64>() {
                Ok(id) => store.contacts.get(&id),
                Err(_) => store.contact_by_email(who),
            };
            match found {
                Some(c) => ok(&render::contact(schema, &store, c)),
                None => not_found(),
            }
        }
        Endpoint::Tickets if is_get => list_tickets(shared, &query_pairs(req.uri())),
        Endpoint::Tickets => post_tickets(shared, req).await,
        Endpoint::Ticket(n) if is_get => {
            let q = query_pairs(req.uri());
            let detail = Detail {
                updates: true,
                cf_changes: q.get("show_cf_changes").is_some_and(|v| v == "true"),
            };
            let store = lock(&shared.store);
            match store.tickets.get(n) {
                Some(t) => ok(&render::ticket(schema, &store, &shared.base_url, t, detail)),
                None => not_found(),
            }
        }
        Endpoint::TicketAction(n, action, _) if !is_get => {
            ticket_action(shared, *n, *action, req).await
        }
        Endpoint::TicketDelete(n) if !is_get => {
            if !lock(&shared.store).tickets.contains_key(n) {
                return not_found();
            }
            let input = match read_input(req, false).await {
                Ok(i) => i,
                Err(e) => return body_error(e, false),
            };
            let Value::Object(payload) = input.value else {
                return bad_request_object(&request_error("Expected a JSON object"));
            };
            let mut store = lock(&shared.store);
            match ops::delete_ticket(schema, &mut store, *n, &payload) {
                Ok(t) => {
                    ok(&json!({"deleted_ticket": render::display_id(schema, t.category, t.id)}))
                }
                Err(e) if e.0.iter().any(|(f, _)| f == "ticket") => not_found(),
                Err(e) => bad_request_object(&e),
            }
        }
        Endpoint::InlineAttachment if !is_get => inline_attachment(shared, req).await,
        Endpoint::NotFound | Endpoint::Stats | Endpoint::Reset => not_found(),
        _ => method_not_allowed(),
    }
}

fn reference(schema: &Schema, name: &str) -> Value {
    match name {
        "categories" => json!(schema.categories),
        "statuses" => json!(schema.statuses),
        "priorities" => json!(schema.priorities),
        "staff" => json!(schema.staff),
        "ticket_custom_fields" => json!(schema.ticket_custom_fields),
        "user_custom_fields" => json!(schema.user_custom_fields),
        "contact_groups" => json!(schema.contact_groups),
        _ => json!([]),
    }
}

fn body_error(e: BodyError, list_shape: bool) -> Response {
    match e {
        BodyError::TooLarge => json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": "Request body too large"}),
        ),
        BodyError::Invalid(msg) => {
            let errors = request_error(&msg);
            if list_shape {
                bad_request_list(&errors)
            } else {
                bad_request_object(&errors)
            }
        }
    }
}

/// Turns uploaded `attachments` parts into stored attachment records, or the error when
/// they exceed 25 MB together.
fn take_attachments(store: &mut Store, files: &[Upload]) -> Result<Vec<Attachment>, FieldErrors> {
    let files: Vec<_> = files.iter().filter(|f| f.field == "attachments").collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total > MAX_ATTACHMENTS {
        let mut e = FieldErrors::default();
        e.add(
            "attachments",
            "The total size of all attachments should not exceed 25 MB.",
        );
        return Err(e);
    }
    Ok(files
        .into_iter()
        .map(|f| Attachment {
            id: store.next_attachment_id(),
            filename: f.filename.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
        })
        .collect())
}

fn page_params(q: &HashMap<String, String>) -> Result<(usize, usize), FieldErrors> {
    let mut e = FieldErrors::default();
    let size = match q.get("size") {
        None => 10,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(50),
            _ => {
                e.add("size", "Enter a whole number greater than 0.");
                10
            }
        },
    };
    let page = match q.get("page") {
        None => 1,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                e.add("page", "Enter a whole number greater than 0.");
                1
            }
        },
    };
    if e.is_empty() {
        Ok((size, page))
    } else {
        Err(e)
    }
}

fn list_users(shared: &Shared, q: &HashMap<String, String>) -> Response {
    let (size, page) = match page_params(q) {
        Ok(p) => p,
        Err(e) => return bad_request_list(&e),
    };
    let query = match ContactQuery::compile(q.get("q").map_or("", String::as_str)) {
        Ok(query) => query,
        Err(err) => return bad_request_list(&request_error(&err.to_string())),
    };
    let store = lock(&shared.store);
    let matches: Vec<_> = store
        .contacts
        .values()
        .filter(|c| query.matches(c))
        .collect();
    let items = matches
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|c| render::contact(&shared.schema, &store, c))
        .collect();
    ok(&Value::Object(render::page(
        matches.len(),
        page,
        size,
        items,
    )))
}

fn list_tickets(shared: &Shared, q: &HashMap<String, String>) -> Response {
    let schema = &shared.schema;
    let (size, page) = match page_params(q) {
        Ok(p) => p,
        Err(e) => return bad_request_list(&e),
    };
    let text = q.get("q").map_or("", String::as_str);
    let query = match TicketQuery::compile(schema, text) {
        Ok(query) => query,
        Err(err) => return bad_request_list(&request_error(&err.to_string())),
    };
    // `status` defaults to all tickets, except that a search without it only looks at
    // pending tickets (observed by a third-party client; documented as `status=_all&q=`).
    let status_param = q.get("status").cloned().unwrap_or_else(|| {
        if q.contains_key("q") {
            "_pending".into()
        } else {
            "_all".into()
        }
    });
    let status_filter: Box<dyn Fn(u64) -> bool> = match status_param.as_str() {
        "_all" => Box::new(|_| true),
        "_pending" | "_completed" => {
            let want = if status_param == "_pending" {
                Behavior::Pending
            } else {
                Behavior::Completed
            };
            Box::new(move |s| schema.status(s).is_some_and(|s| s.behavior == want))
        }
        other => match other.parse::<u64>() {
            Ok(id) => Box::new(move |s| s == id),
            Err(_) => {
                return bad_request_list(&request_error(&format!(
                    "`{other}` is not a status id, _all or _pending"
                )));
            }
        },
    };
    let category_param = q.get("category").cloned().unwrap_or_else(|| "_all".into());
    let category: Option<u64> = match category_param.as_str() {
        "_all" => None,
        other => match other.parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return bad_request_list(&request_error(&format!(
                    "`{other}` is not a category id"
                )));
            }
        },
    };
    let sort = q.get("sort").cloned().unwrap_or_else(|| "updated".into());
    let store = lock(&shared.store);
    let mut matches: Vec<_> = store
        .tickets
        .values()
        .filter(|t| status_filter(t.status))
        .filter(|t| category.is_none_or(|c| t.category == c))
        .filter(|t| query.matches(schema, &store, t))
        .collect();
    if super::search::sort(schema, &sort, &mut matches).is_none() {
        return bad_request_list(&request_error(&format!("`{sort}` is not a sort option")));
    }
    let minify = q.get("minify_response").is_some_and(|v| v == "true");
    let detail = Detail {
        updates: q
            .get("show_updates")
            .is_some_and(|v| v == "1" || v == "true"),
        cf_changes: false,
    };
    let fields: Option<Vec<&str>> = q.get("fields").map(|f| {
        f.split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect()
    });
    let items: Vec<Value> = matches
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|t| {
            if minify {
                return json!(t.id);
            }
            let item = render::ticket(schema, &store, &shared.base_url, t, detail);
            match (&fields, item) {
                (Some(fields), Value::Object(map)) => Value::Object(
                    map.into_iter()
                        .filter(|(k, _)| fields.contains(&k.as_str()))
                        .collect(),
                ),
                (_, item) => item,
            }
        })
        .collect();
    let mut out = render::page(matches.len(), page, size, items);
    out.insert(
        "filters".into(),
        json!({"status": status_param, "category": category_param, "q": text, "sort": sort}),
    );
    ok(&Value::Object(out))
}

async fn post_tickets(shared: &Shared, req: Request) -> Response {
    let schema = &shared.schema;
    let input = match read_input(req, false).await {
        Ok(i) => i,
        Err(e) => return body_error(e, true),
    };
    let now = now_seconds();
    match input.value {
        Value::Array(items) => {
            if items.len() > MAX_BULK {
                return bad_request_list(&request_error(
                    "A maximum of 100 tickets can be created in one request.",
                ));
            }
            let mut store = lock(&shared.store);
            let results: Vec<Value> = items
                .iter()
                .map(|item| {
                    let Value::Object(payload) = item else {
                        return json!({"success": false, "error": request_error("Invalid data. Expected a dictionary.").to_list()});
                    };
                    match ops::check_new_ticket(schema, &store, payload) {
                        Ok(t) => {
                            let id = ops::create_ticket(schema, &mut store, t, Vec::new(), now);
                            let category = store.tickets.get(&id).map_or(0, |t| t.category);
                            json!({"display_id": render::display_id(schema, category, id), "id": id, "success": true})
                        }
                        Err(e) => json!({"success": false, "error": e.to_list()}),
                    }
                })
                .collect();
            ok(&Value::Array(results))
        }
        Value::Object(payload) => {
            let mut store = lock(&shared.store);
            let checked = ops::check_new_ticket(schema, &store, &payload);
            let attachments = take_attachments(&mut store, &input.files);
            match (checked, attachments) {
                (Ok(t), Ok(attachments)) => {
                    let id = ops::create_ticket(schema, &mut store, t, attachments, now);
                    match store.tickets.get(&id) {
                        Some(t) => ok(&render::ticket(
                            schema,
                            &store,
                            &shared.base_url,
                            t,
                            Detail {
                                updates: true,
                                cf_changes: false,
                            },
                        )),
                        None => not_found(),
                    }
                }
                (checked, attachments) => {
                    let mut e = FieldErrors::default();
                    if let Err(more) = checked {
                        e.0.extend(more.0);
                    }
                    if let Err(more) = attachments {
                        e.0.extend(more.0);
                    }
                    bad_request_list(&e)
                }
            }
        }
        _ => bad_request_list(&request_error(
            "Expected a JSON object or a list of objects.",
        )),
    }
}

async fn post_users(shared: &Shared, req: Request) -> Response {
    let schema = &shared.schema;
    let input = match read_input(req, false).await {
        Ok(i) => i,
        Err(e) => return body_error(e, true),
    };
    let now = now_seconds();
    match input.value {
        Value::Array(items) => {
            if items.len() > MAX_BULK {
                return bad_request_list(&request_error(
                    "A maximum of 100 contacts can be created in one request.",
                ));
            }
            let mut store = lock(&shared.store);
            let results: Vec<Value> = items
                .iter()
                .map(|item| {
                    let email = item.get("email").cloned().unwrap_or(Value::Null);
                    let Value::Object(payload) = item else {
                        return json!({"email": email, "success": false, "error": request_error("Invalid data. Expected a dictionary.").to_list()});
                    };
                    match ops::check_contact(schema, payload) {
                        Ok(c) => {
                            let id = ops::upsert_contact(&mut store, c, now);
                            json!({"email": email, "success": true, "id": id})
                        }
                        Err(e) => json!({"email": email, "success": false, "error": e.to_list()}),
                    }
                })
                .collect();
            ok(&Value::Array(results))
        }
        Value::Object(payload) => match ops::check_contact(schema, &payload) {
            Ok(c) => {
                let mut store = lock(&shared.store);
                let id = ops::upsert_contact(&mut store, c, now);
                match store.contacts.get(&id) {
                    Some(c) => ok(&render::contact(schema, &store, c)),
                    None => not_found(),
                }
            }
            Err(e) => bad_request_list(&e),
        },
        _ => bad_request_list(&request_error(
            "Expected a JSON object or a list of objects.",
        )),
    }
}

async fn ticket_action(shared: &Shared, n: u64, action: Action, req: Request) -> Response {
    let schema = &shared.schema;
    if !lock(&shared.store).tickets.contains_key(&n) {
        drain(req).await;
        return not_found();
    }
    let input = match read_input(req, false).await {
        Ok(i) => i,
        Err(e) => return body_error(e, false),
    };
    let Value::Object(payload) = input.value else {
        return bad_request_object(&request_error("Expected a JSON object."));
    };
    let payload: Payload = payload;
    let now = now_seconds();
    let mut store = lock(&shared.store);
    let attachments = match take_attachments(&mut store, &input.files) {
        Ok(a) => a,
        Err(e) => return bad_request_object(&e),
    };
    match ops::apply_action(schema, &mut store, n, action, &payload, attachments, now) {
        Ok(()) => match store.tickets.get(&n) {
            Some(t) => ok(&render::ticket(
                schema,
                &store,
                &shared.base_url,
                t,
                Detail {
                    updates: true,
                    cf_changes: false,
                },
            )),
            None => not_found(),
        },
        Err(e) if e.0.iter().any(|(f, _)| f == "ticket") => not_found(),
        Err(e) => bad_request_object(&e),
    }
}

/// Whether the first bytes are an image format Pillow (and so HappyFox) reads.
fn is_image(head: &[u8]) -> bool {
    head.starts_with(b"\x89PNG\r\n\x1a\n")
        || head.starts_with(b"\xff\xd8\xff")
        || head.starts_with(b"GIF87a")
        || head.starts_with(b"GIF89a")
        || head.starts_with(b"BM")
        || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP")
}

async fn inline_attachment(shared: &Shared, req: Request) -> Response {
    if !content_type(req.headers()).starts_with("multipart/form-data") {
        let mut e = FieldErrors::default();
        e.add("file", "The request should be multipart/form-data.");
        return bad_request_list(&e);
    }
    let input = match read_input(req, true).await {
        Ok(i) => i,
        Err(e) => return body_error(e, true),
    };
    let files: Vec<_> = input.files.iter().filter(|f| f.field == "file").collect();
    let mut e = FieldErrors::default();
    match files.as_slice() {
        [] => e.add("file", "This field is required."),
        [Upload { size, head, .. }] => {
            if *size > MAX_ATTACHMENTS {
                e.add("file", "The file should not exceed 25 MB.");
            } else if !is_image(head) {
                e.add(
                    "file",
                    "Upload a valid image. The file you uploaded was either not an image or a corrupted image.",
                );
            }
        }
        _ => e.add("file", "Only one file can be uploaded at a time."),
    }
    if !e.is_empty() {
        return bad_request_list(&e);
    }
    let id = lock(&shared.store).next_attachment_id();
    ok(&json!({"url": format!("{}/get_hdp_temporarily_attachment/{id}/", shared.base_url)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_every_documented_path() {
        assert_eq!(
            route("/api/1.1/json/categories/"),
            Endpoint::Reference("categories")
        );
        assert_eq!(route("/api/1.1/json/categories"), Endpoint::NotFound);
        assert_eq!(route("/api/1.1/json/tickets/"), Endpoint::Tickets);
        assert_eq!(route("/api/1.1/json/ticket/12/"), Endpoint::Ticket(12));
        assert_eq!(route("/api/1.1/json/ticket/DC12/"), Endpoint::NotFound);
        assert_eq!(
            route("/api/1.1/json/ticket/12/staff_pvtnote/"),
            Endpoint::TicketAction(12, Action::PrivateNote, "staff_pvtnote")
        );
        assert_eq!(
            route("/api/1.1/json/ticket/12/delete/"),
            Endpoint::TicketDelete(12)
        );
        assert_eq!(route("/api/1.1/json/ticket/12/move/"), Endpoint::NotFound);
        assert_eq!(
            route("/api/1.1/json/user/a%40b.com/"),
            Endpoint::User("a@b.com".into())
        );
        assert_eq!(
            route("/api/1.1/json/ticket-inline-attachment"),
            Endpoint::InlineAttachment
        );
        assert_eq!(route("/_sandbox/stats"), Endpoint::Stats);
    }

    #[test]
    fn form_decoding_turns_plus_into_space() {
        assert_eq!(
            form_pairs(b"q=status:%22In+Progress%22&size=5"),
            vec![
                ("q".to_string(), "status:\"In Progress\"".to_string()),
                ("size".to_string(), "5".to_string())
            ]
        );
    }

    #[test]
    fn recognises_images_by_content() {
        assert!(is_image(b"\x89PNG\r\n\x1a\n...."));
        assert!(is_image(b"GIF89a..."));
        assert!(!is_image(b"%PDF-1.4"));
    }
}
