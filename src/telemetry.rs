//! Logging: tracing-subscriber writing text lines to stderr.
//!
//! Owns the subscriber setup and nothing else; every other module logs through `tracing`
//! macros with structured fields (`instance`, `vrid`, `iface`, `from`, `to`, `reason`). The
//! level comes from `VIPKEEPER_LOG` (an env-filter directive such as `debug` or
//! `vipkeeper=debug`), default `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Called once, by `vipkeeper run`.
pub fn init() {
    let filter =
        EnvFilter::try_from_env("VIPKEEPER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into journald or a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
