//! STUB (issue 4): the `process` check: a process present or not, event driven
//! (pidfd_open + poll, a rescan to find a restarted process).
//!
//! Fixed signatures: the settings below, `async fn watch(settings: ProcessSettings,
//! outcomes: UnboundedSender<ProbeOutcome>)`: reports Up/Down at start and on change.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessMatch {
    /// The process name (`/proc/PID/comm`), e.g. "haproxy".
    Name(String),
    /// A pid file, e.g. "/run/haproxy.pid".
    Pidfile(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSettings {
    pub matcher: ProcessMatch,
    /// While Down, how often to look for the process again.
    pub rescan: Duration,
}

pub async fn watch(settings: ProcessSettings, outcomes: UnboundedSender<ProbeOutcome>) {
    let _ = (
        settings,
        outcomes.send(ProbeOutcome::down("the process check is not built yet")),
    );
}
