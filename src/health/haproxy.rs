//! STUB (issue 4): the `haproxy` probe over the stats socket (runtime API).
//!
//! Fixed signatures: the settings below, `async fn probe(settings: &HaproxySettings,
//! timeout: Duration) -> ProbeOutcome`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ProbeOutcome;

/// Where the stats socket listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsTarget {
    Unix(PathBuf),
    /// Loopback only (checked by the config).
    Tcp(SocketAddr),
}

/// How a backend is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// Up while at least this many servers are usable.
    MinUp(u32),
    /// Graded: the fraction of the backend's configured weight that is usable.
    Graded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaproxySettings {
    pub target: StatsTarget,
    /// `None`: judge HAProxy itself only (reachable, not stopping).
    pub backend: Option<String>,
    pub judge: Judge,
}

pub async fn probe(settings: &HaproxySettings, timeout: Duration) -> ProbeOutcome {
    let _ = (settings, timeout);
    ProbeOutcome::down("the haproxy probe is not built yet")
}
