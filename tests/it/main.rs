//! The one integration-test binary: every test runs the real program or the real sandbox.

mod attachments;
mod client;
mod dry_run;
mod import;
mod import_attachments;
mod journal;
mod network;
mod replies;
mod sandbox;
mod support;
