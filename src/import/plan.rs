//! What the import will send, counted POST by POST from the journal before the first one,
//! so the plan a lead confirms is the run the account sees: the bulk creates, a multipart
//! create per ticket with files, an upload per inline image, and every later message.

use serde_json::{Map, Value};

use super::outgoing::{MESSAGE_HTML, TICKET_HTML, has_attachments, inline_uploads};
use crate::journal::{Journal, JournalError, Summary, Unsent};
use crate::payload::conversation::MessageKind;

/// The POSTs left to send, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostPlan {
    /// `POST tickets/` with up to a batch of tickets, plus batches of an earlier run that
    /// are reconciled first (and sent again only if absent).
    pub bulk_creates: u64,
    /// Multipart creates of tickets whose first message has files.
    pub single_creates: u64,
    /// `ticket-inline-attachment` uploads of images in first messages and later ones.
    pub inline_uploads: u64,
    /// Replies, notes and final states still to post.
    pub messages: u64,
    /// Of `messages`, the `history: transcript` notes: one per such ticket (more only
    /// when its files exceed a request), in place of a post per entry.
    pub transcripts: u64,
}

impl PostPlan {
    /// Reads every unsent payload once.
    pub(crate) fn count(
        journal: &Journal,
        summary: &Summary,
        batch_size: usize,
    ) -> Result<PostPlan, JournalError> {
        let mut plan = PostPlan {
            bulk_creates: summary.batches.sending,
            ..PostPlan::default()
        };
        let mut bulk_members = 0u64;
        let none = Map::new();
        journal.for_each_unsent(|whose, text| {
            let payload: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            let fields = payload.as_object().unwrap_or(&none);
            match whose {
                Unsent::Ticket => {
                    if has_attachments(&payload) {
                        plan.single_creates += 1;
                    } else {
                        bulk_members += 1;
                    }
                    plan.inline_uploads += inline_uploads(fields, TICKET_HTML);
                }
                Unsent::Message { kind } => {
                    plan.messages += 1;
                    plan.transcripts += u64::from(kind == MessageKind::Transcript.name());
                    plan.inline_uploads += inline_uploads(fields, MESSAGE_HTML);
                }
            }
        })?;
        plan.bulk_creates += bulk_members.div_ceil(batch_size.max(1) as u64);
        Ok(plan)
    }

    pub fn total(&self) -> u64 {
        self.bulk_creates + self.single_creates + self.inline_uploads + self.messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Map<String, Value> {
        super::super::outgoing::as_fields(&serde_json::from_str(text).unwrap_or(Value::Null))
    }

    #[test]
    fn an_image_shown_twice_in_one_body_is_uploaded_once() {
        let fields = parse(
            &json!({"html": "<img src=\"a.png\"><p>x</p><img src='a.png'><img src=\"b.png\">",
                    "text": "<img src=\"b.png\"><img src=\"data:image/png;base64,AA==\">"})
            .to_string(),
        );
        assert_eq!(inline_uploads(&fields, MESSAGE_HTML), 2);
        assert_eq!(inline_uploads(&fields, TICKET_HTML), 2);
        assert_eq!(inline_uploads(&parse("not json"), MESSAGE_HTML), 0);
    }
}
