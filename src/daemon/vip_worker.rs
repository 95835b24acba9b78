//! The VIP worker task: applies VIP changes through netlink, strictly in request order.
//!
//! Owns the [`Netlink`] handle. The loop never waits for the kernel: it queues commands
//! here and hears back through `Event::VipsChanged`. Announcement commands travel through
//! the same queue and are forwarded to the announcer only once the VIP changes queued
//! before them are done, so a gratuitous ARP never precedes its address, and a Stop never
//! overtakes the Start it cancels. Must not touch routers.

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::{info, warn};

use std::rc::Rc;
use std::sync::Arc;

use super::announcer::AnnounceCommand;
use super::event::{Event, InstanceId};
use crate::config::Vip;
use crate::net::linux::netlink::Netlink;
use crate::notify::runner::Notifier;
use crate::notify::{HookSet, Notification};

#[derive(Debug)]
pub enum VipCommand {
    Add {
        instance: InstanceId,
        vips: Vec<Vip>,
    },
    Remove {
        instance: InstanceId,
        vips: Vec<Vip>,
    },
    /// Passed on to the announcer after everything queued before it.
    Announce(AnnounceCommand),
    /// Hooks for a transition, started once the VIP changes queued before them are done:
    /// a MASTER hook finds its VIPs configured, a STOP hook finds them gone (keepalived
    /// adds the VIPs before notify_master too).
    Notify(Arc<HookSet>, Notification),
}

pub async fn run(
    netlink: Netlink,
    mut commands: UnboundedReceiver<VipCommand>,
    announcer: UnboundedSender<AnnounceCommand>,
    notifier: Rc<Notifier>,
    events: UnboundedSender<Event>,
) {
    while let Some(command) = commands.recv().await {
        match command {
            VipCommand::Add { instance, vips } => {
                let mut failures = Vec::new();
                for vip in &vips {
                    match netlink.add_vip(vip).await {
                        Ok(()) => info!(vip = %vip, iface = %vip.dev, "VIP added"),
                        Err(error) => {
                            warn!(vip = %vip, iface = %vip.dev, %error, "cannot add VIP");
                            failures.push(format!("{vip} on {}: {error}", vip.dev));
                        }
                    }
                }
                let _ = events.send(Event::VipsChanged {
                    instance,
                    added: true,
                    failures,
                });
            }
            VipCommand::Remove { instance, vips } => {
                let mut failures = Vec::new();
                for vip in &vips {
                    match netlink.del_vip(vip).await {
                        Ok(()) => info!(vip = %vip, iface = %vip.dev, "VIP removed"),
                        Err(error) => {
                            warn!(vip = %vip, iface = %vip.dev, %error, "cannot remove VIP");
                            failures.push(format!("{vip} on {}: {error}", vip.dev));
                        }
                    }
                }
                let _ = events.send(Event::VipsChanged {
                    instance,
                    added: false,
                    failures,
                });
            }
            VipCommand::Notify(hooks, notification) => notifier.notify(hooks, notification),
            VipCommand::Announce(command) => {
                // The announcer only stops with the daemon; a failed send means we are
                // shutting down and announcements no longer matter.
                let _ = announcer.send(command);
            }
        }
    }
}
