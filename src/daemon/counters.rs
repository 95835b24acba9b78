//! What the loop counts about the adverts it sends and receives.
//!
//! Owns the counters only: every dropped packet is counted under a stable reason name
//! (the codec's `DecodeError::kind`, the router's `DiscardReason::kind`, or one of the
//! socket-level checks below), never fatal. Status and metrics read them; today the loop
//! logs a summary when it stops.
//! Rate-limited warnings about drops are `drop_log`'s.

use std::collections::BTreeMap;

/// Socket-level reasons, checked by the loop before the router sees an advert.
pub const UNREADABLE: &str = "unreadable_ip_packet";
pub const UNKNOWN_VRID: &str = "unknown_vrid";
pub const TTL_NOT_255: &str = "ttl_not_255";
pub const NOT_TO_GROUP: &str = "multicast_instance_got_unicast";
pub const UNLISTED_PEER: &str = "unlisted_unicast_peer";

#[derive(Debug, Default)]
pub struct Counters {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub send_failures: u64,
    /// Dropped received packets by reason, all of them (the stop summary).
    pub dropped: BTreeMap<&'static str, u64>,
    /// The part of `dropped` that matched no instance (unknown VRID, unreadable, malformed
    /// beyond the VRID byte); instances count their own drops.
    pub unmatched: BTreeMap<&'static str, u64>,
}

/// One more drop for `reason` in an instance's counters (keyed by `String` for status).
/// Allocates the key only the first time: a flood of bad packets must not cost an
/// allocation each.
pub fn count_instance_drop(dropped: &mut BTreeMap<String, u64>, reason: &str) {
    match dropped.get_mut(reason) {
        Some(count) => *count += 1,
        None => {
            dropped.insert(reason.to_owned(), 1);
        }
    }
}

impl Counters {
    pub fn drop(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_default() += 1;
    }
}
