//! The process exit codes, and which errors are the user's to fix.
//!
//! A migration lead scripts around these codes (documented in `--help` and README), so
//! each error type says once, beside its variants, whether changing the command, a file
//! or the setup fixes it ([`Exit::Usage`]) or the run failed on the way ([`Exit::Fatal`]);
//! `main` turns the answer into the code.

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything done.
    Done,
    /// 1: a fatal error; nothing more could be done.
    Fatal,
    /// 2: a usage or configuration error: bad mapping, missing file, no schema, bad
    /// credentials.
    Usage,
    /// 3: finished, but some records were rejected or failed.
    Incomplete,
    /// 4: interrupted; running the same command again resumes.
    Interrupted,
}

impl Exit {
    /// The documented process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Fatal => 1,
            Exit::Usage => 2,
            Exit::Incomplete => 3,
            Exit::Interrupted => 4,
        }
    }

    /// [`Exit::Done`] when nothing was rejected or failed, else [`Exit::Incomplete`].
    pub(crate) fn done_unless(incomplete: bool) -> Exit {
        if incomplete {
            Exit::Incomplete
        } else {
            Exit::Done
        }
    }
}

/// An error that knows which exit code it means.
pub(crate) trait Classify {
    fn exit(&self) -> Exit;
}

/// [`Exit::Usage`] when `usage`, else [`Exit::Fatal`].
pub(crate) fn usage_if(usage: bool) -> Exit {
    if usage { Exit::Usage } else { Exit::Fatal }
}
