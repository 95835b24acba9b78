//! The score, pure: tracked checks and their weights become the effective priority.
//!
//! Owns keepalived's `vrrp_set_effective_priority` arithmetic (reference section 0) plus
//! graded weights:
//! - weight > 0 adds the weight while the check is up; weight < 0 applies it while down;
//!   `reverse` swaps up and down;
//! - weight 0: the instance is in FAULT while the check is down (up, with `reverse`);
//! - a graded check (an HAProxy backend's usable fraction f) scales its weight: a negative
//!   weight applies w × (1 − f), a positive one adds w × f;
//! - a file check adds value × weight (weight 0: any non-zero value is FAULT; a
//!   contribution of −254 or less is FAULT, as keepalived);
//! - the sum is clamped to 1..=254; an owner (255) never changes, only FAULT acts on it;
//! - a check with no result yet contributes nothing.
//!
//! Must not do I/O; knows nothing of probes or routers.

use super::tracker::{CheckState, CheckView};
use crate::vrrp::{EffectivePriority, OWNER_PRIORITY};

/// One track of an instance: a check's current view with its weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Track {
    pub weight: i32,
    pub reverse: bool,
    pub view: CheckView,
}

/// What one track does to the priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contribution {
    Points(i32),
    Fault,
}

/// A file value times its weight below this puts the instance in FAULT (keepalived).
const FILE_FAULT_AT: i64 = -254;
/// keepalived caps a file's contribution at +253.
const FILE_CAP: i64 = 253;

pub fn contribution(track: &Track) -> Contribution {
    let view = track.view;
    if view.state == CheckState::Unknown {
        return Contribution::Points(0);
    }
    if let Some(value) = view.value {
        let value = if track.reverse { -value } else { value };
        if track.weight == 0 {
            return if value != 0 {
                Contribution::Fault
            } else {
                Contribution::Points(0)
            };
        }
        let points = value.saturating_mul(i64::from(track.weight));
        if points <= FILE_FAULT_AT {
            return Contribution::Fault;
        }
        return Contribution::Points(points.min(FILE_CAP) as i32);
    }
    let down = (view.state == CheckState::Down) != track.reverse;
    if track.weight == 0 {
        return if down {
            Contribution::Fault
        } else {
            Contribution::Points(0)
        };
    }
    // The usable share: 0 when down, the graded fraction when up, 1 for plain checks.
    let mut share = if down {
        0.0
    } else {
        view.fraction.unwrap_or(1.0)
    };
    if track.reverse && view.fraction.is_some() && !down {
        share = 1.0 - share;
    }
    let weight = f64::from(track.weight);
    let points = if track.weight > 0 {
        weight * share
    } else {
        weight * (1.0 - share)
    };
    Contribution::Points(points.round() as i32)
}

/// keepalived's effective priority over all the instance's tracks.
pub fn effective_priority(base: u8, tracks: &[Track]) -> EffectivePriority {
    let mut total = i32::from(base);
    for track in tracks {
        match contribution(track) {
            Contribution::Fault => return EffectivePriority::Fault,
            Contribution::Points(points) => total = total.saturating_add(points),
        }
    }
    if base == OWNER_PRIORITY {
        return EffectivePriority::Value(OWNER_PRIORITY);
    }
    EffectivePriority::Value(total.clamp(1, i32::from(OWNER_PRIORITY) - 1) as u8)
}

/// The lowest and highest effective priority a set of weights can produce, and whether a
/// failure can put the instance in FAULT: for `vipkeeper check` to explain the election.
/// File tracks are left out of the range (their value is open-ended) and reported apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriorityRange {
    pub lowest: u8,
    pub highest: u8,
    pub can_fault: bool,
    pub has_file_tracks: bool,
}

/// `weights` are (weight, is_file) pairs.
pub fn priority_range(base: u8, weights: &[(i32, bool)]) -> PriorityRange {
    let mut lowest = i32::from(base);
    let mut highest = i32::from(base);
    let mut can_fault = false;
    let mut has_file_tracks = false;
    for &(weight, is_file) in weights {
        if is_file {
            has_file_tracks = true;
            can_fault |= weight == 0;
            continue;
        }
        match weight {
            0 => can_fault = true,
            w if w > 0 => highest += w,
            w => lowest += w,
        }
    }
    if base == OWNER_PRIORITY {
        return PriorityRange {
            lowest: OWNER_PRIORITY,
            highest: OWNER_PRIORITY,
            can_fault,
            has_file_tracks,
        };
    }
    let clamp = |value: i32| value.clamp(1, i32::from(OWNER_PRIORITY) - 1) as u8;
    PriorityRange {
        lowest: clamp(lowest),
        highest: clamp(highest),
        can_fault,
        has_file_tracks,
    }
}
