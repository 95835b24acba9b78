//! STUB (issue 4): the `mysql` probe: a real login, COM_PING, COM_QUIT.
//!
//! Fixed signatures: the settings below, `async fn probe(settings: &MysqlSettings, timeout:
//! Duration) -> ProbeOutcome`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MysqlSettings {
    pub address: SocketAddr,
    pub user: String,
    /// Read at every probe, so a rotated password is picked up; never logged.
    pub password_file: PathBuf,
}

pub async fn probe(settings: &MysqlSettings, timeout: Duration) -> ProbeOutcome {
    let _ = (settings, timeout);
    ProbeOutcome::down("the mysql probe is not built yet")
}
