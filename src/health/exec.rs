//! STUB (issue 4): the `exec` probe: a command, exit status 0 = Up.
//!
//! Fixed signatures: the settings below, `async fn probe(settings: &ExecSettings, timeout:
//! Duration) -> ProbeOutcome` (on timeout the whole process group is killed).

use std::time::Duration;

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecSettings {
    /// Program and arguments; with `shell`, one string run by `/bin/sh -c`.
    pub argv: Vec<String>,
    pub shell: bool,
}

pub async fn probe(settings: &ExecSettings, timeout: Duration) -> ProbeOutcome {
    let _ = (settings, timeout);
    ProbeOutcome::down("the exec probe is not built yet")
}
