//! What changed between two validated configurations: the plan of a reload.
//!
//! Owns the comparison only (sozu's `diff`): instances are matched by **name**, so
//! swapping VRIDs or moving a VIP between instances does not lose addresses the way
//! keepalived's VRID-and-interface matching does (its issues #2364, #1854). Each kept
//! instance's change is classified as something the daemon can apply live (priority, VIPs,
//! preemption, timing, announcements, tracks, hooks) or as needing that instance restarted
//! (what identifies it on the wire: interface, VRID, version, family, unicast peers, auth,
//! checksum). Must not apply anything.

use super::validate::{Check, Config, Instance, Vip};
use crate::vrrp::OWNER_PRIORITY;

/// The plan for one reload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Instances in both files (by name): index in the old and in the new configuration.
    pub kept: Vec<KeptInstance>,
    /// Indices (in the new configuration) of instances to start.
    pub added: Vec<usize>,
    /// Indices (in the old configuration) of instances to stop gracefully.
    pub removed: Vec<usize>,
    /// Names of checks that are new or whose settings changed (their state starts over).
    pub checks_changed: Vec<String>,
    /// Names of checks no longer defined.
    pub checks_removed: Vec<String>,
    /// Sync groups differ (membership, tracks or hooks).
    pub groups_changed: bool,
    /// `[global]` keys that only take effect on a restart of the daemon.
    pub needs_daemon_restart: Vec<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptInstance {
    pub old: usize,
    pub new: usize,
    pub change: InstanceChange,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceChange {
    Unchanged,
    /// Applied to the running router: state, timers and untouched VIPs carry on.
    Live(LiveChange),
    /// The instance is stopped (make before break) and started again; `why` names the key.
    Restart {
        why: &'static str,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveChange {
    pub priority: bool,
    pub vips_added: Vec<Vip>,
    pub vips_removed: Vec<Vip>,
    /// preempt, preempt_delay, fast_preempt, advert_interval, garp.
    pub behaviour: bool,
    pub tracks: bool,
    pub hooks: bool,
}

impl LiveChange {
    fn is_empty(&self) -> bool {
        *self == LiveChange::default()
    }
}

/// Compare two validated configurations.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut plan = ConfigDiff::default();
    for (new_index, instance) in new.instances.iter().enumerate() {
        match old.instances.iter().position(|o| o.name == instance.name) {
            Some(old_index) => plan.kept.push(KeptInstance {
                old: old_index,
                new: new_index,
                change: instance_change(&old.instances[old_index], instance),
            }),
            None => plan.added.push(new_index),
        }
    }
    for (old_index, instance) in old.instances.iter().enumerate() {
        if !new.instances.iter().any(|n| n.name == instance.name) {
            plan.removed.push(old_index);
        }
    }
    for check in &new.checks {
        let same = old.checks.iter().any(|o| same_check(o, check));
        if !same {
            plan.checks_changed.push(check.name.clone());
        }
    }
    for check in &old.checks {
        if !new.checks.iter().any(|n| n.name == check.name) {
            plan.checks_removed.push(check.name.clone());
        }
    }
    plan.groups_changed = old.groups != new.groups;
    let (old_global, new_global) = (&old.global, &new.global);
    if old_global.control_socket != new_global.control_socket {
        plan.needs_daemon_restart.push("control_socket");
    }
    if old_global.metrics_listen != new_global.metrics_listen {
        plan.needs_daemon_restart.push("metrics_listen");
    }
    plan
}

fn same_check(old: &Check, new: &Check) -> bool {
    old == new
}

fn instance_change(old: &Instance, new: &Instance) -> InstanceChange {
    // What identifies the virtual router on the wire or its socket: no live change.
    let identity: [(&'static str, bool); 8] = [
        ("interface", old.interface != new.interface),
        ("vrid", old.vrid != new.vrid),
        ("version", old.version != new.version),
        ("family", old.family != new.family),
        ("unicast_source", old.unicast_source != new.unicast_source),
        ("unicast_peers", old.unicast_peers != new.unicast_peers),
        ("auth_pass", old.auth != new.auth),
        ("v3_checksum_as_v2", old.checksum_mode != new.checksum_mode),
    ];
    if let Some((why, _)) = identity.iter().find(|(_, changed)| *changed) {
        return InstanceChange::Restart { why };
    }
    // An address owner follows other rules (always Master, fixed priority).
    if (old.priority == OWNER_PRIORITY) != (new.priority == OWNER_PRIORITY) {
        return InstanceChange::Restart {
            why: "priority (address owner)",
        };
    }
    let change = LiveChange {
        priority: old.priority != new.priority,
        vips_added: new
            .vips
            .iter()
            .filter(|vip| !old.vips.contains(vip))
            .cloned()
            .collect(),
        vips_removed: old
            .vips
            .iter()
            .filter(|vip| !new.vips.contains(vip))
            .cloned()
            .collect(),
        behaviour: old.preempt != new.preempt
            || old.preempt_delay != new.preempt_delay
            || old.fast_preempt != new.fast_preempt
            || old.advert_interval != new.advert_interval
            || old.garp != new.garp,
        tracks: old.tracks != new.tracks,
        hooks: old.notify != new.notify,
    };
    if change.is_empty() {
        InstanceChange::Unchanged
    } else {
        InstanceChange::Live(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn config(extra: &str, web: &str) -> Config {
        let text = format!(
            "[global]\nnode_name = \"lb1\"\n{extra}\n[[instance]]\nname = \"web\"\n\
             interface = \"eth0\"\nvrid = 51\npriority = 150\nvips = [\"192.0.2.50/24\"]\n{web}\n"
        );
        parse(&text, "test.toml").expect("valid")
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let plan = diff(&config("", ""), &config("", ""));
        assert_eq!(plan.kept.len(), 1);
        assert_eq!(plan.kept[0].change, InstanceChange::Unchanged);
        assert!(plan.added.is_empty() && plan.removed.is_empty());
    }

    #[test]
    fn priority_and_vips_change_live() {
        let old = config("", "");
        let new = parse(
            "[global]\nnode_name = \"lb1\"\n[[instance]]\nname = \"web\"\ninterface = \"eth0\"\n\
             vrid = 51\npriority = 90\nvips = [\"192.0.2.50/24\", \"192.0.2.52/24\"]\n",
            "new.toml",
        )
        .expect("valid");
        let plan = diff(&old, &new);
        let InstanceChange::Live(change) = &plan.kept[0].change else {
            panic!("{plan:?}");
        };
        assert!(change.priority);
        assert_eq!(change.vips_added.len(), 1);
        assert!(change.vips_removed.is_empty());
    }

    #[test]
    fn a_new_vrid_restarts_the_instance_and_instances_match_by_name() {
        let old = config("", "");
        let text = "[global]\nnode_name = \"lb1\"\n[[instance]]\nname = \"api\"\n\
                    interface = \"eth0\"\nvrid = 52\nvips = [\"192.0.2.60/24\"]\n\
                    [[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 53\n\
                    priority = 150\nvips = [\"192.0.2.50/24\"]\n";
        let new = parse(text, "new.toml").expect("valid");
        let plan = diff(&old, &new);
        assert_eq!(plan.added, vec![0], "api is new");
        assert_eq!(
            plan.kept,
            vec![KeptInstance {
                old: 0,
                new: 1,
                change: InstanceChange::Restart { why: "vrid" }
            }]
        );
    }

    #[test]
    fn removed_instances_and_daemon_level_keys_are_reported() {
        let old = config("", "");
        let new = parse(
            "[global]\nnode_name = \"lb1\"\nmetrics_listen = \"off\"\n[[instance]]\nname = \"api\"\n\
             interface = \"eth0\"\nvrid = 52\nvips = [\"192.0.2.60/24\"]\n",
            "new.toml",
        )
        .expect("valid");
        let plan = diff(&old, &new);
        assert_eq!(plan.removed, vec![0]);
        assert_eq!(plan.needs_daemon_restart, vec!["metrics_listen"]);
    }
}
