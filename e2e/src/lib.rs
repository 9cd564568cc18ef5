//! Helpers for multi-cluster end-to-end tests that drive the real binaries.
