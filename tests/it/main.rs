//! The one integration-test binary: every test runs the real program or the real sandbox.

mod attachments;
mod cli;
mod client;
mod delta;
mod disk_full;
mod dry_run;
mod import;
mod import_attachments;
mod init;
mod journal;
mod mapping_tests;
mod network;
mod posts;
mod preflight;
mod presets;
mod presets2;
mod readers;
mod readme;
mod reliability;
mod replies;
mod report_html;
mod sandbox;
mod support;
mod transcript;
mod undo;
mod verify;
