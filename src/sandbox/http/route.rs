//! Routing: which HappyFox endpoint a request path names.
//!
//! Paths are matched here rather than by axum's router so that every request, known or
//! not, goes through the one dispatcher and its order of checks.

use super::super::ops::Action;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Endpoint {
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
    DeleteUpdate(u64, u64),
    NotFound,
}

impl Endpoint {
    pub(super) fn label(&self) -> String {
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
            Endpoint::DeleteUpdate(..) => "_sandbox/ticket/{n}/update/{id}/delete".into(),
            Endpoint::NotFound => "other".into(),
        }
    }

    pub(super) fn write_target(&self) -> Option<u64> {
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

/// A path segment with its `%XX` escapes decoded (`+` stays `+`: it is a form encoding,
/// not a path one, and common in email addresses).
pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

pub(super) fn route(path: &str) -> Endpoint {
    match path {
        "/_sandbox/stats" | "/_sandbox/stats/" => return Endpoint::Stats,
        "/_sandbox/reset" | "/_sandbox/reset/" => return Endpoint::Reset,
        _ => {}
    }
    if let Some(["ticket", n, "update", u, "delete"]) = path
        .strip_prefix("/_sandbox/")
        .map(|p| p.trim_end_matches('/').split('/').collect::<Vec<_>>())
        .as_deref()
        && let (Ok(n), Ok(u)) = (n.parse(), u.parse())
    {
        return Endpoint::DeleteUpdate(n, u);
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
}
