//! The schema pull: the account's reference data, read (GET only) into a schema
//! snapshot that mappings are checked against. A 404 on one of these endpoints means
//! the URL is not a HappyFox API, not a missing record, so the request loop classifies
//! GETs of [`REFERENCE_ENDPOINTS`] apart from all others.

use super::{Client, ClientError};
use crate::schema::Schema;

/// The reference endpoints `schema pull` reads; a 404 on one of them means a wrong URL.
pub(crate) const REFERENCE_ENDPOINTS: [&str; 7] = [
    "categories/",
    "statuses/",
    "priorities/",
    "staff/",
    "ticket_custom_fields/",
    "user_custom_fields/",
    "contact_groups/",
];

/// Reads the account's reference data (GET only) into a schema snapshot, for
/// `hfmigrate schema pull` and for checking mappings against the live account.
pub async fn pull_schema(client: &Client) -> Result<Schema, ClientError> {
    async fn list<T: serde::de::DeserializeOwned>(
        client: &Client,
        path: &str,
    ) -> Result<Vec<T>, ClientError> {
        let value = client.get_json(path, &[]).await?;
        serde_json::from_value(value).map_err(|e| ClientError::Unexpected {
            path: path.into(),
            detail: format!("not a list of the expected shape: {e}"),
        })
    }
    let (categories, statuses, priorities, staff) = futures::try_join!(
        list(client, "categories/"),
        list(client, "statuses/"),
        list(client, "priorities/"),
        list(client, "staff/"),
    )?;
    let (ticket_custom_fields, user_custom_fields, contact_groups) = futures::try_join!(
        list(client, "ticket_custom_fields/"),
        list(client, "user_custom_fields/"),
        list(client, "contact_groups/"),
    )?;
    Ok(Schema {
        source: Some(client.target().account_url()),
        pulled_at: Some(
            jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        ),
        categories,
        statuses,
        priorities,
        staff,
        ticket_custom_fields,
        user_custom_fields,
        contact_groups,
    })
}
