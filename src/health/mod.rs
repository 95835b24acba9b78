//! Health: probes, their rise/fall trackers, and the score that becomes a priority.
//!
//! Owns everything between "is HAProxy (or a backend, a script, a file, a process) fine?"
//! and the effective priority handed to the router. [`tracker`] and [`score`] are pure; the
//! probe modules do I/O and know nothing of VRRP; the daemon runs probes in their own tasks
//! and feeds the verdicts to the routers, so no probe can delay an advert.
//!
//! Two kinds of checks: polled ones (haproxy, tcp, http, mysql, exec) are run every
//! interval with a timeout and return one [`ProbeOutcome`]; watched ones (interface, file,
//! process) report a [`ProbeOutcome`] whenever what they watch changes.

pub mod exec;
pub mod file;
pub mod haproxy;
pub mod http;
pub mod mysql;
pub mod process;
pub mod runner;
pub mod score;
pub mod tcp;
pub mod tracker;

use serde::{Deserialize, Serialize};

/// The result of one probe run, or of one change seen by a watcher.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    Up,
    /// Down, with why: the operator reads this in logs and status.
    Down {
        reason: String,
    },
    /// Partly usable, e.g. the fraction of a backend's weight that is usable (0.0..=1.0).
    /// A track's weight is scaled by it.
    Graded {
        fraction: f64,
        detail: String,
    },
    /// An integer read from a file (keepalived's track_file): value × weight.
    Value(i64),
}

impl ProbeOutcome {
    pub fn down(reason: impl Into<String>) -> ProbeOutcome {
        ProbeOutcome::Down {
            reason: reason.into(),
        }
    }
}
