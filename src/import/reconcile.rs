//! Reconciliation: which members of a batch whose answer was lost exist in HappyFox.
//!
//! Each member is searched for by the marker its stored payload carries
//! ([`super::marker`]); the searches run concurrently within the client's GET pacing. A
//! member whose marker cannot be searched for is never assumed absent: sending it again
//! could create it twice.

use super::marker::{self, MarkerKind};
use super::send::Member;
use crate::client::{Client, ClientError};

/// What reconciliation learnt about one member.
#[derive(Debug)]
pub(super) enum Lookup {
    Found(u64, String),
    Absent,
    /// The marker cannot be read or searched: HappyFox must be checked by hand.
    Unsearchable(String),
}

/// Searches for every member's marker, concurrently within the client's GET pacing.
pub(super) async fn lookup_all(
    client: &Client,
    kind: &MarkerKind,
    members: &[Member],
) -> Result<Vec<Lookup>, ClientError> {
    let lookups = futures::future::join_all(members.iter().map(|m| lookup(client, kind, m))).await;
    lookups.into_iter().collect()
}

async fn lookup(client: &Client, kind: &MarkerKind, m: &Member) -> Result<Lookup, ClientError> {
    let Some(value) = kind.value_of(&m.payload) else {
        return Ok(Lookup::Unsearchable(
            "its marker is missing from the stored payload".into(),
        ));
    };
    let Some(q) = kind.query(&value) else {
        return Ok(Lookup::Unsearchable(format!(
            "its marker {value:?} contains a double quote, which a HappyFox search cannot express"
        )));
    };
    let answer = client
        .get_json("tickets/", &[("status", "_all"), ("q", &q), ("size", "50")])
        .await?;
    Ok(match marker::find(kind, &value, &answer) {
        Some((id, display)) => Lookup::Found(id, display),
        None => Lookup::Absent,
    })
}

/// Two searches for the same members: found by either is found (a hit is proof; the
/// later search decides the rest).
pub(super) fn merge(first: Vec<Lookup>, second: Vec<Lookup>) -> Vec<Lookup> {
    first
        .into_iter()
        .zip(second)
        .map(|(a, b)| match a {
            Lookup::Found(..) => a,
            _ => b,
        })
        .collect()
}
