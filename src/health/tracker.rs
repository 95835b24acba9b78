//! keepalived's rise/fall counter, pure: probe outcomes in, a debounced check state out.
//!
//! Owns the hysteresis of one check (`vrrp_scheduler.c`): a counter runs 0..rise+fall−1 and
//! the check is good while it is ≥ rise. It starts at rise−1, so the first result decides;
//! `init_fail` starts it at 0 (Down) so that `rise` successes are needed. A timeout arrives
//! here as a Down outcome: it counts as a failure, as in keepalived. Graded fractions and
//! file values pass through (the latest one is kept); only Up/Down transitions are
//! debounced. Must not do I/O or read the clock.

use super::ProbeOutcome;

/// A check's debounced state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckState {
    /// No result yet: the check neither adds nor removes anything.
    Unknown,
    Up,
    Down,
}

/// What the score needs to know of a check: its state and its latest measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckView {
    pub state: CheckState,
    /// The latest graded fraction (0.0..=1.0), for graded probes.
    pub fraction: Option<f64>,
    /// The latest integer, for file checks.
    pub value: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Tracker {
    rise: u32,
    fall: u32,
    counter: u32,
    view: CheckView,
}

impl Tracker {
    /// `rise` and `fall` are at least 1 (the config guarantees it; 0 is taken as 1).
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Tracker {
        let rise = rise.max(1);
        let fall = fall.max(1);
        let (counter, state) = if init_fail {
            (0, CheckState::Down)
        } else {
            (rise - 1, CheckState::Unknown)
        };
        Tracker {
            rise,
            fall,
            counter,
            view: CheckView {
                state,
                fraction: None,
                value: None,
            },
        }
    }

    pub fn view(&self) -> CheckView {
        self.view
    }

    /// Record one outcome; true when the view changed (the score must be recomputed).
    pub fn record(&mut self, outcome: &ProbeOutcome) -> bool {
        let before = self.view;
        match outcome {
            ProbeOutcome::Up => self.success(),
            ProbeOutcome::Down { .. } => self.failure(),
            ProbeOutcome::Graded { fraction, .. } => {
                let fraction = if fraction.is_finite() {
                    fraction.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                self.view.fraction = Some(fraction);
                // Nothing usable at all is a failure; any capacity keeps the check up and
                // scales its weight instead.
                if fraction > 0.0 {
                    self.success();
                } else {
                    self.failure();
                }
            }
            // A file's value is a measure, not a pass/fail result: keepalived applies it at
            // once, without rise/fall.
            ProbeOutcome::Value(value) => {
                self.view.value = Some(*value);
                self.view.state = CheckState::Up;
            }
        }
        self.view != before
    }

    /// keepalived: below rise−1 count up; at rise−1 or above, jump to the top (good).
    fn success(&mut self) {
        let top = self.rise + self.fall - 1;
        if self.counter < self.rise - 1 {
            self.counter += 1;
        } else {
            self.counter = top;
            self.view.state = CheckState::Up;
        }
    }

    /// keepalived: above rise count down; at rise or below, drop to 0 (bad).
    fn failure(&mut self) {
        if self.counter > self.rise {
            self.counter -= 1;
        } else {
            self.counter = 0;
            self.view.state = CheckState::Down;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tracker: &mut Tracker, outcomes: &str) -> Vec<CheckState> {
        outcomes
            .chars()
            .map(|c| {
                let outcome = match c {
                    '+' => ProbeOutcome::Up,
                    _ => ProbeOutcome::down("x"),
                };
                tracker.record(&outcome);
                tracker.view().state
            })
            .collect()
    }

    use CheckState::{Down as D, Unknown as U, Up as P};

    #[test]
    fn the_first_result_decides() {
        assert_eq!(run(&mut Tracker::new(3, 3, false), "+"), vec![P]);
        assert_eq!(run(&mut Tracker::new(3, 3, false), "-"), vec![D]);
        assert_eq!(Tracker::new(3, 3, false).view().state, U);
    }

    #[test]
    fn fall_failures_take_it_down_and_rise_successes_bring_it_back() {
        let mut tracker = Tracker::new(2, 3, false);
        assert_eq!(
            run(&mut tracker, "+--+---++"),
            vec![P, P, P, P, P, P, D, D, P]
        );
    }

    #[test]
    fn init_fail_needs_rise_successes() {
        let mut tracker = Tracker::new(3, 1, true);
        assert_eq!(tracker.view().state, D);
        assert_eq!(run(&mut tracker, "+++"), vec![D, D, P]);
    }

    #[test]
    fn alternating_results_do_not_flap_with_rise_and_fall_above_one() {
        let mut tracker = Tracker::new(2, 2, false);
        run(&mut tracker, "+");
        let states = run(&mut tracker, "-+-+-+-+");
        assert!(states.iter().all(|state| *state == P), "{states:?}");
    }

    #[test]
    fn graded_outcomes_keep_the_fraction_and_zero_is_a_failure() {
        let mut tracker = Tracker::new(1, 1, false);
        let graded = |fraction| ProbeOutcome::Graded {
            fraction,
            detail: String::new(),
        };
        assert!(tracker.record(&graded(0.5)));
        assert_eq!(tracker.view().fraction, Some(0.5));
        assert_eq!(tracker.view().state, P);
        assert!(!tracker.record(&graded(0.5)), "no change, no recompute");
        tracker.record(&graded(0.0));
        assert_eq!(tracker.view().state, D);
        tracker.record(&graded(f64::NAN));
        assert_eq!(tracker.view().fraction, Some(0.0));
    }

    #[test]
    fn file_values_apply_at_once() {
        let mut tracker = Tracker::new(5, 5, true);
        assert!(tracker.record(&ProbeOutcome::Value(-3)));
        assert_eq!(tracker.view().value, Some(-3));
        assert_eq!(tracker.view().state, P);
    }
}
