//! Configuration: the TOML file, its validation into typed settings, and error reporting.
//!
//! The pipeline, after sozu's: text → `file::FileConfig` (serde mirror, spans kept) →
//! `validate` (defaults, every rule, all errors at once) → [`Config`]. Errors and
//! warnings read `FILE:LINE:COL: key: what`, with `key` a dotted path counted from 0
//! (`instance[0].vips[1].label`). This module owns the toml crate and must not open
//! sockets, ask the kernel anything or contain VRRP logic; reading the file and, when
//! `node_name` is not set, the hostname is all the I/O it does.

mod address;
pub mod diff;
mod duration;
mod effective;
mod error;
mod file;
pub mod keepalived;
mod names;
pub mod secret;
mod source;
mod validate;

use std::path::Path;

pub use address::AddressError;
pub use duration::DurationError;
pub use effective::effective_settings;
pub use error::{ConfigError, ConfigErrors, Diagnostic, Location, Problem, Warning};
pub use validate::{
    family_name, Check, CheckKind, Config, Garp, Global, Group, Instance, TrackRef, Vip,
    DEFAULT_CONTROL_SOCKET, DEFAULT_PRIORITY, MAX_PREEMPT_DELAY, MAX_VIPS, MULTICAST_GROUP_V4,
    MULTICAST_GROUP_V6,
};

pub use names::NameError;

use source::Source;

/// Where `vipkeeper` looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/vipkeeper/vipkeeper.toml";

/// Read, parse and validate the file at `path`. Errors name the path as given.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Unreadable {
        path: name.clone(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, &name),
        Err(not_utf8) => {
            let valid = not_utf8.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&not_utf8.as_bytes()[..valid]);
            let error = ConfigError::Invalid {
                at: Source::new(&name, &prefix).locate(valid),
                key: file::SYNTAX_KEY.to_owned(),
                problem: Problem::NotUtf8,
            };
            Err(error.into())
        }
    }
}

/// Parse and validate `text`; `file_name` is only used in error positions.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    parse_with_hostname(text, file_name, system_hostname)
}

/// [`parse`], with the hostname lookup (used when `node_name` is not set) passed in.
pub fn parse_with_hostname(
    text: &str,
    file_name: &str,
    hostname: impl FnOnce() -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let source = Source::new(file_name, text);
    let file = file::read(&source).map_err(ConfigErrors::new)?;
    validate::validate(file, &source, hostname)
}

/// The kernel's hostname, else /etc/hostname; `None` when neither gives a usable name.
fn system_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .into_iter()
        .find_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let name = text
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty() && !line.starts_with('#'))?;
            // "(none)" is what the kernel reports before anything set a hostname.
            (name != "(none)").then(|| name.to_owned())
        })
}

/// A valid `text`, for unit tests; panics with the error lines otherwise. The hostname is
/// fixed so results do not depend on the machine.
#[cfg(test)]
fn parse_valid(text: &str) -> Config {
    match parse_with_hostname(text, "t.toml", || Some("testhost".into())) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    }
}
