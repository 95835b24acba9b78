//! STUB (issue 4): the `file` check: an integer in a file (keepalived's track_file),
//! watched with inotify.
//!
//! Fixed signatures: the settings below, `async fn watch(settings: FileSettings, outcomes:
//! UnboundedSender<ProbeOutcome>)`: reports `ProbeOutcome::Value` at start and on change.

use std::path::PathBuf;

use tokio::sync::mpsc::UnboundedSender;

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSettings {
    pub path: PathBuf,
}

pub async fn watch(settings: FileSettings, outcomes: UnboundedSender<ProbeOutcome>) {
    let _ = (
        settings,
        outcomes.send(ProbeOutcome::down("the file check is not built yet")),
    );
}
