//! VRRP time units and the one function that derives the protocol timers.
//!
//! Owns: [`Centis`], the wire unit of advertisement intervals, and [`Timers`], the
//! RFC 5798 §6.1 derived values (Skew_Time, Master_Down_Interval). Every other module asks
//! [`Timers::compute`] instead of doing timer arithmetic of its own, so keepalived's exact
//! rounding lives in one place. Pure: no clock, no I/O.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Version;

/// An interval in centiseconds, the unit of the VRRPv3 `Max Adver Int` field (12 bits).
///
/// VRRPv2 carries whole seconds on the wire; the codec converts, so a v2 interval of 1 s is
/// `Centis(100)` everywhere above the codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Centis(u16);

impl Centis {
    /// The largest value the 12-bit v3 field can carry: 40.95 s.
    pub const MAX_V3: Centis = Centis(0x0fff);
    /// keepalived's default `advert_int`: 1 s.
    pub const ONE_SECOND: Centis = Centis(100);

    pub const fn new(centis: u16) -> Self {
        Centis(centis)
    }

    pub const fn get(self) -> u16 {
        self.0
    }

    /// Whole seconds, for the VRRPv2 `Adver Int` field; `None` when not a whole second.
    pub const fn whole_seconds(self) -> Option<u16> {
        if self.0 % 100 == 0 {
            Some(self.0 / 100)
        } else {
            None
        }
    }

    pub const fn from_seconds(seconds: u8) -> Self {
        Centis(seconds as u16 * 100)
    }

    /// Exact conversion: `None` unless `duration` is a multiple of 10 ms that fits in 16 bits.
    pub fn from_duration(duration: Duration) -> Option<Self> {
        let nanos = duration.as_nanos();
        if nanos % 10_000_000 != 0 {
            return None;
        }
        u16::try_from(nanos / 10_000_000).ok().map(Centis)
    }

    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
    }

    const fn as_micros(self) -> u64 {
        self.0 as u64 * 10_000
    }
}

impl fmt::Display for Centis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}cs", self.0)
    }
}

/// How many missed adverts make a Backup declare the Master down (RFC 5798 §6.1: 3).
pub const DOWN_TIMER_ADVERTS: u64 = 3;

/// The derived protocol timers of one virtual router (RFC 5798 §6.1, RFC 3768 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Skew_Time: how much later a lower priority Backup declares the Master down.
    pub skew_time: Duration,
    /// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time.
    pub master_down_interval: Duration,
}

impl Timers {
    /// The single place timer values are computed.
    ///
    /// `priority` is the *effective* priority (255 for an address owner), as in keepalived's
    /// `VRRP_TIMER_SKEW`. The arithmetic is keepalived's, in microseconds with integer
    /// division, so our Backup times out on the same microsecond as a keepalived Backup:
    /// - v2 (RFC 3768 §6.1): Skew_Time = (256 − Priority) / 256 s, independent of the
    ///   interval, and Master_Down_Interval uses the configured Advertisement_Interval.
    /// - v3 (RFC 5798 §6.1): Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256,
    ///   with Master_Adver_Interval learned from the Master's adverts.
    pub fn compute(version: Version, priority: u8, master_adver_interval: Centis) -> Timers {
        let weight = 256 - u64::from(priority);
        let skew_micros = match version {
            Version::V2 => weight * 1_000_000 / 256,
            Version::V3 => weight * master_adver_interval.as_micros() / 256,
        };
        let down_micros = DOWN_TIMER_ADVERTS * master_adver_interval.as_micros() + skew_micros;
        Timers {
            skew_time: Duration::from_micros(skew_micros),
            master_down_interval: Duration::from_micros(down_micros),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_skew_ignores_the_interval() {
        let timers = Timers::compute(Version::V2, 100, Centis::from_seconds(3));
        assert_eq!(
            timers.skew_time,
            Duration::from_micros(156 * 1_000_000 / 256)
        );
        assert_eq!(
            timers.master_down_interval,
            Duration::from_micros(9_609_375)
        );
    }

    #[test]
    fn v3_skew_scales_with_the_interval() {
        // keepalived: prio 251 at 1 s gives 5/256 s, "about 20 ms".
        let timers = Timers::compute(Version::V3, 251, Centis::ONE_SECOND);
        assert_eq!(timers.skew_time, Duration::from_micros(19_531));
        // At 100 ms and priority 100 the Backup waits 300 ms + 60.9 ms.
        let timers = Timers::compute(Version::V3, 100, Centis::new(10));
        assert_eq!(timers.skew_time, Duration::from_micros(60_937));
        assert_eq!(timers.master_down_interval, Duration::from_micros(360_937));
    }

    #[test]
    fn owner_priority_gives_the_smallest_skew() {
        let owner = Timers::compute(Version::V3, 255, Centis::ONE_SECOND);
        let backup = Timers::compute(Version::V3, 254, Centis::ONE_SECOND);
        assert!(owner.skew_time < backup.skew_time);
    }

    #[test]
    fn centis_conversions_are_exact() {
        assert_eq!(
            Centis::from_duration(Duration::from_millis(100)),
            Some(Centis::new(10))
        );
        assert_eq!(Centis::from_duration(Duration::from_millis(105)), None);
        assert_eq!(Centis::from_duration(Duration::from_secs(1000)), None);
        assert_eq!(Centis::new(250).whole_seconds(), None);
        assert_eq!(Centis::new(300).whole_seconds(), Some(3));
    }
}
