//! The status snapshot: everything `vipkeeper status` shows and `/metrics` exports.
//!
//! Owns the shape only (serde, stable field names: the JSON of `status --json` is an
//! interface). The daemon fills it; the control socket and the metrics server read the
//! latest one from a `tokio::sync::watch` channel.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    /// vipkeeper's version.
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_seconds: u64,
    /// `vipkeeper maintenance on`: every instance hands over and stays Backup.
    pub maintenance: bool,
    pub instances: Vec<InstanceStatus>,
    pub groups: Vec<GroupStatus>,
    pub checks: Vec<CheckStatus>,
    /// The last run of each hook (per owner, state and hook).
    pub hooks: Vec<HookStatus>,
    pub reloads: ReloadStatus,
    /// Received packets dropped before they could be matched to an instance (a VRID not
    /// configured here, unreadable or too short to name a VRID), by reason. Drops that
    /// name one of our instances are in that instance's `counters.dropped`.
    #[serde(default)]
    pub unmatched_dropped: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// "IPv4" or "IPv6".
    pub family: String,
    pub version: u8,
    /// "INIT", "BACKUP", "MASTER" or "FAULT".
    pub state: String,
    pub base_priority: u8,
    /// `None` while a weight-0 check holds the instance in FAULT.
    pub effective_priority: Option<u8>,
    pub tracks: Vec<TrackStatus>,
    /// The current Master's address, ours when Master.
    pub master_address: Option<IpAddr>,
    pub vips: Vec<String>,
    /// The VIPs are configured on this node.
    pub holds_vips: bool,
    pub last_transition: Option<TransitionStatus>,
    /// A switchover handed this instance over and holds it back from preempting.
    pub held_back: bool,
    pub counters: InstanceCounters,
    /// How late adverts were sent compared to their schedule, in seconds.
    pub advert_lateness: Histogram,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackStatus {
    pub check: String,
    pub weight: i32,
    pub reverse: bool,
    /// What the track adds to the priority now; `None` when it puts the instance in FAULT.
    pub contribution: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TransitionStatus {
    pub from: String,
    pub to: String,
    pub reason: String,
    /// Unix time in milliseconds.
    pub at_unix_ms: u64,
}

/// keepalived's per-instance statistics, named as mehdy/keepalived-exporter exports them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceCounters {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub became_master: u64,
    pub released_master: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub transitions: u64,
    /// Adverts dropped, by reason (codec and router reasons).
    pub dropped: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    pub instances: Vec<String>,
    pub state: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    /// The check's `type`.
    pub kind: String,
    /// "up", "down" or "unknown".
    pub state: String,
    /// Why it is down, or the latest graded detail.
    pub last_result: Option<String>,
    pub fraction: Option<f64>,
    pub value: Option<i64>,
    /// Probe latency in seconds (polled checks only).
    pub latency: Histogram,
    pub runs: u64,
    pub failures: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HookStatus {
    /// "INSTANCE" or "GROUP".
    pub scope: String,
    pub owner: String,
    pub state: String,
    pub hook: String,
    pub ok: bool,
    /// The note on success, the reason on failure.
    pub detail: String,
    pub duration_seconds: f64,
    pub at_unix_ms: u64,
    /// Runs of this hook by result.
    pub succeeded: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadStatus {
    pub succeeded: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

/// A Prometheus-style cumulative histogram.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending; the last bucket (+Inf) is `count`.
    pub bounds: Vec<f64>,
    /// Cumulative counts, one per bound.
    pub cumulative: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (seconds, ascending).
    pub fn with_bounds(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            cumulative: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, seconds: f64) {
        for (bound, count) in self.bounds.iter().zip(self.cumulative.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Bounds for advert lateness: 100 µs to 1 s.
pub const LATENESS_BOUNDS: &[f64] = &[0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1.0];
/// Bounds for probe latency: 1 ms to 10 s.
pub const LATENCY_BOUNDS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
