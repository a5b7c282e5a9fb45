//! Mapping errors with positions, rendered the way compilers render them.

use std::fmt;
use std::path::{Path, PathBuf};

use super::spec::Pos;

/// One thing wrong with a mapping file.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingError {
    pub pos: Option<Pos>,
    pub message: String,
    /// A hint: "did you mean ...", or what to do.
    pub help: Option<String>,
}

impl MappingError {
    pub fn at(pos: Pos, message: impl Into<String>) -> Self {
        MappingError {
            pos: Some(pos),
            message: message.into(),
            help: None,
        }
    }

    pub fn new(message: impl Into<String>) -> Self {
        MappingError {
            pos: None,
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// All the errors of one mapping file, rendered together with source snippets.
#[derive(Debug, Clone, thiserror::Error)]
pub struct MappingErrors {
    pub path: PathBuf,
    pub source_text: String,
    pub errors: Vec<MappingError>,
}

impl MappingErrors {
    pub fn new(path: &Path, source_text: &str, mut errors: Vec<MappingError>) -> Self {
        errors.sort_by_key(|e| e.pos);
        MappingErrors {
            path: path.to_path_buf(),
            source_text: source_text.to_string(),
            errors,
        }
    }
}

impl fmt::Display for MappingErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.source_text.lines().collect();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "error: {}", e.message)?;
            match e.pos {
                Some(pos) => {
                    writeln!(
                        f,
                        "  --> {}:{}:{}",
                        self.path.display(),
                        pos.line,
                        pos.column
                    )?;
                    if let Some(text) = lines.get((pos.line as usize).saturating_sub(1)) {
                        let gutter = pos.line.to_string().len();
                        writeln!(f, "{:gutter$} |", "")?;
                        writeln!(f, "{} | {}", pos.line, text)?;
                        let col = (pos.column as usize).saturating_sub(1);
                        let prefix: String = text
                            .chars()
                            .take(col)
                            .map(|c| if c == '\t' { '\t' } else { ' ' })
                            .collect();
                        writeln!(f, "{:gutter$} | {}^", "", prefix)?;
                    }
                }
                None => writeln!(f, "  --> {}", self.path.display())?,
            }
            if let Some(h) = &e.help {
                writeln!(f, "  = help: {h}")?;
            }
        }
        let n = self.errors.len();
        write!(
            f,
            "\n{} error{} in {}",
            n,
            if n == 1 { "" } else { "s" },
            self.path.display()
        )
    }
}
