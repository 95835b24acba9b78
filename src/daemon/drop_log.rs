//! Rate-limited warnings about dropped packets, so an operator at the default `info` level
//! learns about an attack (or a misconfigured peer) without the log being flooded.
//!
//! Owns only the decision "warn now, and with which count": the first drop of a reason is
//! reported at once, later ones are summed and reported at most once per `period` per
//! reason. It does not count for status or metrics (that is `counters`) and does not log
//! itself: the loop writes the line, so the module is testable with plain `Instant`s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often each drop reason may produce a warning line.
pub const PERIOD: Duration = Duration::from_secs(10);

/// A warning due now: `count` drops of `reason` since the previous warning for it.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub reason: &'static str,
    pub count: u64,
}

#[derive(Debug)]
struct PerReason {
    last_warned: Instant,
    unreported: u64,
}

#[derive(Debug)]
pub struct DropLog {
    period: Duration,
    reasons: BTreeMap<&'static str, PerReason>,
}

impl Default for DropLog {
    fn default() -> Self {
        DropLog::new(PERIOD)
    }
}

impl DropLog {
    pub fn new(period: Duration) -> DropLog {
        DropLog {
            period,
            reasons: BTreeMap::new(),
        }
    }

    /// Records one drop of `reason` at `now`; a summary when a warning is due.
    pub fn record(&mut self, reason: &'static str, now: Instant) -> Option<Summary> {
        match self.reasons.get_mut(reason) {
            None => {
                // The first drop of a kind is news: say so at once.
                self.reasons.insert(
                    reason,
                    PerReason {
                        last_warned: now,
                        unreported: 0,
                    },
                );
                Some(Summary { reason, count: 1 })
            }
            Some(entry) => {
                entry.unreported += 1;
                if now.saturating_duration_since(entry.last_warned) < self.period {
                    return None;
                }
                let count = std::mem::take(&mut entry.unreported);
                entry.last_warned = now;
                Some(Summary { reason, count })
            }
        }
    }

    /// Summaries for drops still unreported whose period is over (call it from a timer,
    /// so the tail of an attack is reported even if no further packet arrives).
    pub fn flush(&mut self, now: Instant) -> Vec<Summary> {
        let period = self.period;
        self.reasons
            .iter_mut()
            .filter(|(_, entry)| {
                entry.unreported > 0 && now.saturating_duration_since(entry.last_warned) >= period
            })
            .map(|(reason, entry)| {
                entry.last_warned = now;
                Summary {
                    reason,
                    count: std::mem::take(&mut entry.unreported),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_drop_of_a_reason_is_reported_at_once() {
        let mut log = DropLog::new(10 * SECOND);
        let start = Instant::now();
        assert_eq!(
            log.record("bad_checksum", start),
            Some(Summary {
                reason: "bad_checksum",
                count: 1
            })
        );
        assert_eq!(
            log.record("ttl_not_255", start),
            Some(Summary {
                reason: "ttl_not_255",
                count: 1
            })
        );
    }

    #[test]
    fn a_flood_gives_one_line_per_period_with_the_count_since_the_last() {
        let mut log = DropLog::new(10 * SECOND);
        let start = Instant::now();
        let mut lines = Vec::new();
        // 50,000 drops a second for 25 s.
        for i in 0..(25 * 50_000u64) {
            let now = start + Duration::from_micros(i * 20);
            if let Some(summary) = log.record("bad_checksum", now) {
                lines.push(summary.count);
            }
        }
        // At 0 s (the first), 10 s and 20 s.
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], 1);
        // Every drop is reported exactly once: 1 + 500,000 + 500,000 + the tail.
        assert_eq!(lines[1], 500_000);
        assert_eq!(lines[2], 500_000);
        let tail = log.flush(start + 30 * SECOND);
        assert_eq!(
            tail,
            vec![Summary {
                reason: "bad_checksum",
                count: 250_000 - 1
            }]
        );
    }

    #[test]
    fn reasons_are_limited_separately() {
        let mut log = DropLog::new(10 * SECOND);
        let start = Instant::now();
        assert!(log.record("bad_type", start).is_some());
        assert!(log.record("bad_type", start + SECOND).is_none());
        assert!(log.record("bad_version", start + SECOND).is_some());
        assert!(log.record("bad_version", start + 2 * SECOND).is_none());
    }

    #[test]
    fn flush_reports_only_what_is_unreported_and_due() {
        let mut log = DropLog::new(10 * SECOND);
        let start = Instant::now();
        log.record("too_short", start);
        assert!(
            log.flush(start + 20 * SECOND).is_empty(),
            "nothing unreported"
        );
        log.record("too_short", start + SECOND);
        assert!(log.flush(start + 5 * SECOND).is_empty(), "not due yet");
        assert_eq!(log.flush(start + 11 * SECOND).len(), 1);
        assert!(
            log.flush(start + 30 * SECOND).is_empty(),
            "reported already"
        );
    }
}
