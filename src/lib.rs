//! hfmigrate: move a whole helpdesk export into HappyFox.
//!
//! Data flows one way: [`source`] reads export records, [`mapping`] compiles the user's
//! YAML into a plan and renders each record, [`payload`] resolves names to ids against the
//! [`schema`] and validates, [`report`] tells the user what would happen; the [`sandbox`]
//! speaks the HappyFox API on loopback so all of it can be rehearsed. `main.rs` only parses
//! arguments and calls [`cli::run`].

pub mod attachments;
pub mod cli;
pub mod client;
pub mod dryrun;
pub mod duration;
pub mod exit;
pub mod happyfox;
pub mod import;
pub mod journal;
pub mod mapping;
pub mod payload;
pub mod pipeline;
pub mod problem;
pub mod report;
pub mod sandbox;
pub mod schema;
pub mod source;
pub mod test_fixtures;
