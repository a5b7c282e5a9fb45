//! What HappyFox's API allows, as the reference states it, in one place.
//!
//! The importer sizes its requests and pacing by these, the dry run estimates with them
//! and the sandbox enforces them, so a rehearsal fails where the real account would.

use std::time::Duration;

/// Tickets per bulk create (`POST tickets/` with a list).
pub(crate) const MAX_BULK_CREATE: usize = 100;

/// What HappyFox accepts per request: all attachments of a create, reply or note
/// together, and the one image of an inline upload. Taken as 25 MiB; HappyFox does not
/// say whether its "25 MB" is binary or decimal.
pub const MAX_REQUEST_BYTES: u64 = 25 * 1024 * 1024;

/// The account-wide rate limits, per minute.
pub(crate) const POST_PER_MIN: u32 = 300;
pub(crate) const GET_PER_MIN: u32 = 500;

/// How long HappyFox refuses every request after the limit is exceeded.
pub(crate) const LOCKOUT: Duration = Duration::from_secs(600);

/// The importer's default ceilings: 80% of the limits, leaving room for whatever else
/// uses the account (agents' apps, integrations) so the run never triggers a lockout.
pub(crate) const DEFAULT_POST_CEILING: u32 = POST_PER_MIN * 4 / 5;
pub(crate) const DEFAULT_GET_CEILING: u32 = GET_PER_MIN * 4 / 5;

/// Staff permissions (`staff/` lists them per agent). The reference shows `permissions`
/// only as a list of strings without naming these; they are the names this tool and its
/// sandbox use. An account administrator has every permission.
pub(crate) const PERMISSION_MANAGE_TICKETS: &str = "manage_tickets";
pub(crate) const PERMISSION_DELETE_TICKETS: &str = "delete_tickets";
