//! The HappyFox HTTP client (to be implemented).
