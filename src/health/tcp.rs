//! STUB (issue 4): the `tcp` probe: a connection within the timeout is Up.
//!
//! Fixed signatures (the daemon and config are written against them):
//! `TcpSettings { address: SocketAddr }`, `async fn probe(settings: &TcpSettings,
//! timeout: Duration) -> ProbeOutcome`.

use std::net::SocketAddr;
use std::time::Duration;

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSettings {
    pub address: SocketAddr,
}

pub async fn probe(settings: &TcpSettings, timeout: Duration) -> ProbeOutcome {
    let _ = (settings, timeout);
    ProbeOutcome::down("the tcp probe is not built yet")
}
