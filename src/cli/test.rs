//! `hfmigrate test`: run a mapping's unit tests and print a diff per failing case.

use std::io::Write;
use std::sync::Arc;

use super::Failure;
use super::account::load_schema_file;
use super::args::TestArgs;
use crate::exit::Exit;
use crate::mapping;
use crate::mapping_tests::{self, TestsError};
use crate::schema::{SAMPLE_NAME, Schema};

pub(super) fn test(args: TestArgs) -> Result<Exit, Failure> {
    let tests = args
        .tests
        .clone()
        .unwrap_or_else(|| mapping_tests::default_tests_path(&args.mapping));
    let named = match &args.schema {
        Some(p) => Some(p.clone()),
        None => mapping_tests::schema_path(&tests).map_err(tests_failure)?,
    };
    let (schema, label) = match named {
        Some(p) => (load_schema_file(&p)?, p.display().to_string()),
        None => (Schema::sample(), format!("{SAMPLE_NAME} (bundled)")),
    };
    let schema = Arc::new(schema);
    let plan = mapping::load(&args.mapping, Some(schema.clone())).map_err(Failure::Mapping)?;
    let report = mapping_tests::run(&plan, schema, &tests).map_err(tests_failure)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "schema: {label}");
    let _ = out.write_all(report.render().as_bytes());
    Ok(Exit::done_unless(report.failed() > 0))
}

fn tests_failure(e: TestsError) -> Failure {
    match e {
        TestsError::Mapping(m) => Failure::Mapping(m),
        other => Failure::of(other),
    }
}
