//! Sandbox contract tests (to be written).
