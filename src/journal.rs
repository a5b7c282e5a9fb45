//! The SQLite journal that makes re-runs safe (to be implemented).
