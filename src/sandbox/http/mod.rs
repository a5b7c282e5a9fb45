//! The HTTP face of the sandbox: routing, Basic auth, rate limit, faults, body parsing.
//!
//! One dispatcher handles every request so that the order HappyFox applies is explicit:
//! auth, then the method (GET or POST), then the `_sandbox/` endpoints (which skip the
//! rest), then the rate limit, then (for ticket writes) overlap tracking, then latency,
//! then a 500 fault, then the work, then possibly a dropped connection. Connections are
//! accepted through [`KillableListener`] so that a "dropped after commit" fault can close
//! the socket before a single byte of the response is written.

mod body;
mod conn;
mod edit;
mod respond;
mod route;
mod tickets;
mod users;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::SandboxConfig;
use super::limits::{FaultDice, MethodClass, RateLimiter, Verdict};
use super::stats::Stats;
use super::store::Store;
use crate::schema::Schema;
use body::{drain, query_pairs};
pub(crate) use conn::{ConnHandle, KillableListener};
use respond::{json_response, method_not_allowed, not_found, ok, plain, unauthorized};
use route::{Endpoint, route};
use tickets::{
    delete_ticket, get_ticket, inline_attachment, list_tickets, post_tickets, ticket_action,
};
use users::{get_user, list_users, post_users};

/// Attachments of one request may total 25 MB.
pub(crate) const MAX_ATTACHMENTS: u64 = crate::happyfox::MAX_REQUEST_BYTES;
/// A request body may be a little larger than that (form fields, multipart framing).
pub(crate) const MAX_BODY: usize = 27 * 1024 * 1024;
/// Bulk creates take at most this many items.
pub(crate) const MAX_BULK: usize = crate::happyfox::MAX_BULK_CREATE;

/// Everything the handlers share.
pub(crate) struct Shared {
    pub schema: Schema,
    auth_header: String,
    pub base_url: String,
    pub store: Mutex<Store>,
    limiter: Mutex<RateLimiter>,
    dice: Mutex<FaultDice>,
    pub stats: Mutex<Stats>,
    inflight: Mutex<HashMap<u64, u32>>,
    reject_overlaps: bool,
    /// Largest body a request may carry.
    max_body: usize,
    /// When each ticket created under a search lag becomes searchable; empty without one.
    searchable_at: Mutex<HashMap<u64, Instant>>,
    search_lag: Option<std::time::Duration>,
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
            max_body: config.max_body_bytes,
            searchable_at: Mutex::new(HashMap::new()),
            search_lag: config.faults.search_lag,
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

    /// Starts a new ticket's search lag, if the sandbox has one.
    pub(crate) fn created(&self, ticket: u64) {
        if let Some(lag) = self.search_lag {
            lock(&self.searchable_at).insert(ticket, Instant::now() + lag);
        }
    }

    /// Whether search already finds `ticket` (always, without a search lag).
    pub(crate) fn searchable(&self, ticket: u64, now: Instant) -> bool {
        let mut map = lock(&self.searchable_at);
        match map.get(&ticket) {
            Some(at) if *at > now => false,
            Some(_) => {
                map.remove(&ticket);
                true
            }
            None => true,
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.trim() == self.auth_header)
    }
}

// ---------------------------------------------------------------------------------------
// The dispatcher.

/// Decrements a ticket's in-flight write count when the request ends, however it ends.
struct InflightGuard<'a> {
    shared: &'a Shared,
    ticket: u64,
}

impl<'a> InflightGuard<'a> {
    /// Counts a write on `ticket` as in flight until the guard drops, and an overlap in the
    /// stats when another write on it already is. The flag says whether to refuse this one.
    fn enter(shared: &'a Shared, ticket: u64) -> (InflightGuard<'a>, bool) {
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
        (guard, reject)
    }
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

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    req: Request,
) -> Response {
    let endpoint = route(req.uri().path());
    let method = req.method().clone();
    let label = format!("{} {}", method, endpoint.label());
    // A real server finishes a request whose client went away (a killed importer's
    // create still lands); hyper drops the handler with the connection, so the work runs
    // on a task of its own.
    let work = tokio::spawn(async move {
        let (response, dropped) = dispatch(&shared, &endpoint, req).await;
        let status = if dropped {
            conn.0.store(true, Ordering::Release);
            "dropped".to_string()
        } else {
            response.status().as_u16().to_string()
        };
        lock(&shared.stats).count(&label, &status);
        response
    });
    work.await.unwrap_or_else(|_| {
        plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error (sandbox handler panicked)",
        )
    })
}

/// Applies the checks in the order the module header gives; the flag is whether to drop
/// the connection instead of sending the response.
async fn dispatch(shared: &Shared, endpoint: &Endpoint, req: Request) -> (Response, bool) {
    if !shared.authorized(req.headers()) {
        return (unauthorized(), false);
    }
    let method = req.method().clone();
    let is_post = method == Method::POST;
    if !is_post && method != Method::GET {
        return (method_not_allowed(), false);
    }
    if let Some(response) = sandbox_endpoint(shared, endpoint, is_post) {
        return (response, false);
    }
    if let Some(retry_after) = rate_limited(shared, is_post) {
        drain(req).await;
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "Too many requests"}),
        );
        if let Some(wait) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, wait.as_secs().into());
        }
        return (response, false);
    }
    let _guard = match endpoint.write_target().filter(|_| is_post) {
        Some(ticket) => {
            let (guard, reject) = InflightGuard::enter(shared, ticket);
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

/// The `_sandbox/` endpoints, answered before the rate limit and the faults so that a test
/// reading its counters or resetting is never throttled or failed by what it set up.
fn sandbox_endpoint(shared: &Shared, endpoint: &Endpoint, is_post: bool) -> Option<Response> {
    match endpoint {
        Endpoint::Stats if !is_post => Some(ok(&json!(shared.stats()))),
        Endpoint::Reset if is_post => {
            lock(&shared.store).clear();
            *lock(&shared.stats) = Stats::default();
            lock(&shared.limiter).reset();
            shared.dirty.store(true, Ordering::Release);
            Some(ok(&json!({"reset": true})))
        }
        Endpoint::DeleteUpdate(n, u) if is_post => Some(edit::delete_update(shared, *n, *u)),
        Endpoint::Stats | Endpoint::Reset | Endpoint::DeleteUpdate(..) => {
            Some(method_not_allowed())
        }
        _ => None,
    }
}

/// Counts the request against its method's limit; a refusal is counted in the stats and
/// comes with the `Retry-After` to send, if any.
fn rate_limited(shared: &Shared, is_post: bool) -> Option<Option<std::time::Duration>> {
    let class = if is_post {
        MethodClass::Post
    } else {
        MethodClass::Get
    };
    let verdict = lock(&shared.limiter).check(class, Instant::now());
    let Verdict::Limited {
        started_lockout,
        retry_after,
    } = verdict
    else {
        return None;
    };
    let mut stats = lock(&shared.stats);
    stats.rate_limited += 1;
    if started_lockout {
        stats.lockouts += 1;
    }
    Some(retry_after)
}

async fn work(shared: &Shared, endpoint: &Endpoint, method: Method, req: Request) -> Response {
    let schema = &shared.schema;
    let is_get = method == Method::GET;
    match endpoint {
        Endpoint::Reference(name) if is_get => ok(&reference(schema, name)),
        Endpoint::Users if is_get => list_users(shared, &query_pairs(req.uri())),
        Endpoint::Users => post_users(shared, req).await,
        Endpoint::User(who) if is_get => get_user(shared, who),
        Endpoint::Tickets if is_get => list_tickets(shared, &query_pairs(req.uri())),
        Endpoint::Tickets => post_tickets(shared, req).await,
        Endpoint::Ticket(n) if is_get => get_ticket(shared, *n, &query_pairs(req.uri())),
        Endpoint::TicketAction(n, action, _) if !is_get => {
            ticket_action(shared, *n, *action, req).await
        }
        Endpoint::TicketDelete(n) if !is_get => delete_ticket(shared, *n, req).await,
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
