//! Which agent may do what, as the sandbox enforces it: HappyFox answers a write made as
//! an agent whose role lacks the permission with a refusal, so a rehearsal must too.
//!
//! The reference lists `permissions` per staff object without naming them; the names are
//! the ones in [`crate::happyfox`]. An account administrator may do everything.

use crate::schema::Staff;

/// Whether this agent may delete tickets.
pub(crate) fn may_delete(staff: &Staff) -> bool {
    staff.is_account_admin
        || staff
            .permissions
            .iter()
            .any(|p| p == crate::happyfox::PERMISSION_DELETE_TICKETS)
}
