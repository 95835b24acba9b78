//! STUB (issue 5): runs hooks on a thread of its own, one queue per owner.
//!
//! Fixed signatures: `Notifier::start(reports: UnboundedSender<HookReport>) ->
//! io::Result<Notifier>`, `Notifier::notify(&self, hooks: Arc<HookSet>, notification:
//! Notification)` (never blocks), `Notifier::drain(&self, budget: Duration)` (blocks the
//! caller until queued hooks finished or the budget ran out; used for STOP hooks at shutdown).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::{HookReport, HookSet, Notification};

pub struct Notifier {
    _reports: UnboundedSender<HookReport>,
}

impl Notifier {
    pub fn start(reports: UnboundedSender<HookReport>) -> std::io::Result<Notifier> {
        Ok(Notifier { _reports: reports })
    }

    pub fn notify(&self, hooks: Arc<HookSet>, notification: Notification) {
        let _ = (hooks, notification);
    }

    pub fn drain(&self, budget: Duration) {
        let _ = budget;
    }
}
