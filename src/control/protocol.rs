//! The control socket's protocol: one JSON request per line, one JSON response per line.
//!
//! Owns the message shapes shared by the CLI and the daemon. A request is answered by the
//! daemon loop (through an event); the socket server only moves lines.

use serde::{Deserialize, Serialize};

use super::status::Status;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Planned failover of one instance: hand over to a healthy peer, then hold back.
    Switchover {
        instance: String,
    },
    /// End a switchover's hold-back.
    Resume {
        instance: String,
    },
    /// Drain (on) or undrain (off) the whole node.
    Maintenance {
        on: bool,
    },
    /// Re-read the configuration, as SIGHUP does.
    Reload,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// What was done, or why it was refused.
    pub message: String,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl Response {
    pub fn ok(message: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: message.into(),
            status: None,
        }
    }

    pub fn refused(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            message: message.into(),
            status: None,
        }
    }
}
