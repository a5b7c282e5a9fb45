//! `hfmigrate init`: a first mapping drafted from the export and the account.
//!
//! A lead's first hour goes into matching *their* export to *their* account: which group
//! is which category, which source field is "Product", which value is which choice. `init`
//! reads the export through the project's own readers (`--sample N` for huge ones), starts
//! from the shipped mapping of that helpdesk ([`preset`]), counts every value its value
//! maps see ([`values`]), matches them to the account's names ([`matching`]) and writes the
//! mapping with a count and a reason on every line, and a `# TODO` wherever a person must
//! decide ([`render`]); CSV columns get a profile ([`csv`]). It never talks to HappyFox:
//! the account is a schema snapshot. It also writes a tests file with one case from the
//! first record read, for `hfmigrate test`.

mod csv;
mod draft;
mod matching;
mod preset;
mod render;
mod update;
mod values;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::exit::{Classify, Exit};
use crate::mapping::MappingErrors;
use crate::schema::Schema;

pub use draft::{Draft, Summary};
pub use update::{update, write};

/// What `init` is asked to do.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The helpdesk (`zendesk`, `freshdesk`, `csv`).
    pub from: String,
    /// Export files or the export folder.
    pub inputs: Vec<PathBuf>,
    pub schema: Arc<Schema>,
    /// Read at most this many ticket records.
    pub sample: Option<u64>,
    /// `--side NAME=PATH`: side files read from where the user says, not the export.
    pub sides: Vec<(String, PathBuf)>,
    /// Where the mapping will be written (the tests file goes beside it).
    pub out: PathBuf,
}

/// Why no draft could be made.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "--from {given}: unknown helpdesk (supported: {supported}); for another system's CSV export use `--from csv`"
    )]
    Unknown { given: String, supported: String },
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    /// The shipped preset does not compile: a bug of the build, not of the user.
    #[error("the shipped {0} preset does not load: {1}")]
    Preset(&'static str, String),
    #[error("the drafted mapping does not compile against the schema (please report this):\n{0}")]
    Draft(MappingErrors),
    #[error("cannot read the mapping to update, {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} exists; pass --update {path} to add newly seen values to it, or choose another --out"
    )]
    Exists { path: PathBuf },
}

impl Classify for InitError {
    fn exit(&self) -> Exit {
        match self {
            InitError::Source(_) | InitError::Pipeline(_) | InitError::Read { .. } => Exit::Usage,
            InitError::Unknown { .. } | InitError::Exists { .. } => Exit::Usage,
            InitError::Preset(..) | InitError::Draft(_) | InitError::Write { .. } => Exit::Fatal,
        }
    }
}

/// Drafts the mapping and its tests file (nothing is written).
pub fn draft(opts: &InitOptions) -> Result<Draft, InitError> {
    let supported = preset::supported();
    let Some(preset) = preset::find(&opts.from) else {
        return Err(InitError::Unknown {
            given: opts.from.clone(),
            supported,
        });
    };
    draft::draft(preset, opts)
}

/// The tests file written beside a mapping.
pub fn tests_path(out: &Path) -> PathBuf {
    crate::mapping_tests::default_tests_path(out)
}
