//! Configuration: the TOML file, its validation into typed settings, and error reporting.
//!
//! SKELETON: filled in by the config work.
