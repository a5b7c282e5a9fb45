//! hfmigrate: move a whole helpdesk export into HappyFox.
//!
//! Data flows one way, and each stage is one module:
//!
//! ```text
//! source ──▶ mapping ──▶ payload ──▶ pipeline ──▶ dryrun/report      (the front half)
//!                                        │
//!                                        └──▶ import ──▶ client ──▶ HappyFox
//!                                               │
//!                                               └──▶ journal (every outcome)
//! ```
//!
//! - [`source`] reads export records (CSV, JSON, NDJSON, side files) with their location;
//! - [`mapping`] compiles the user's YAML into a plan and renders each record;
//! - [`payload`] resolves names to ids against the [`schema`], validates, and plans the
//!   create, the final state and the later conversation ([`payload::conversation`]);
//!   [`attachments`] is what can be planned about files without reading them;
//! - [`pipeline`] runs source → payload over every record on all cores, in input order,
//!   for both [`dryrun`] (which [`report`]s) and [`import`];
//! - [`import`] journals every valid record and sends it: bulk creates
//!   ([`import::send`]), then conversations ([`import::replies`]), reconciling whatever an
//!   earlier run left unknown; [`client`] is HTTP with pacing and retries; [`journal`] is
//!   the SQLite file that makes every re-run resume with nothing sent twice;
//! - the [`sandbox`] speaks the HappyFox API on loopback so all of it can be rehearsed;
//! - shared by all: [`happyfox`] (the API's limits), [`problem`], [`duration`], [`exit`],
//!   [`email`], [`html_text`], [`spreadsheet`].
//!
//! The walls between them are checked by `.ci/walls.py`. `main.rs` only parses arguments
//! and calls [`cli::main`].

pub mod attachments;
pub mod cli;
pub mod client;
pub mod dryrun;
pub mod duration;
pub mod email;
pub mod exit;
pub mod happyfox;
pub mod html_text;
pub mod import;
pub mod init;
pub mod journal;
pub mod mapping;
pub mod mapping_tests;
pub mod payload;
pub mod pipeline;
pub mod problem;
pub mod report;
pub mod sandbox;
pub mod schema;
pub mod source;
pub mod spreadsheet;
pub mod test_fixtures;
