//! Table tests of the score (keepalived's effective priority, plus graded weights) and of the
//! rise/fall tracker feeding it. Each row names the rule it checks.

use vipkeeper::health::score::{
    contribution, effective_priority, priority_range, Contribution, PriorityRange, Track,
};
use vipkeeper::health::tracker::{CheckState, CheckView, Tracker};
use vipkeeper::health::ProbeOutcome;
use vipkeeper::vrrp::EffectivePriority;

fn view(state: CheckState) -> CheckView {
    CheckView {
        state,
        fraction: None,
        value: None,
    }
}

fn track(weight: i32, state: CheckState) -> Track {
    Track {
        weight,
        reverse: false,
        view: view(state),
    }
}

use CheckState::{Down, Unknown, Up};
use EffectivePriority::{Fault, Value};

#[test]
fn contributions_follow_keepalived() {
    let graded = |weight, fraction| Track {
        weight,
        reverse: false,
        view: CheckView {
            state: Up,
            fraction: Some(fraction),
            value: None,
        },
    };
    let file = |weight, value| Track {
        weight,
        reverse: false,
        view: CheckView {
            state: Up,
            fraction: None,
            value: Some(value),
        },
    };
    let reversed = |weight, state| Track {
        reverse: true,
        ..track(weight, state)
    };
    let rows: Vec<(&str, Track, Contribution)> = vec![
        (
            "positive weight, up: added",
            track(20, Up),
            Contribution::Points(20),
        ),
        (
            "positive weight, down: nothing",
            track(20, Down),
            Contribution::Points(0),
        ),
        (
            "negative weight, up: nothing",
            track(-60, Up),
            Contribution::Points(0),
        ),
        (
            "negative weight, down: applied",
            track(-60, Down),
            Contribution::Points(-60),
        ),
        ("weight 0, down: FAULT", track(0, Down), Contribution::Fault),
        (
            "weight 0, up: nothing",
            track(0, Up),
            Contribution::Points(0),
        ),
        (
            "no result yet: nothing",
            track(-60, Unknown),
            Contribution::Points(0),
        ),
        (
            "no result yet, weight 0: no FAULT",
            track(0, Unknown),
            Contribution::Points(0),
        ),
        (
            "reverse swaps up and down",
            reversed(-60, Up),
            Contribution::Points(-60),
        ),
        (
            "reverse weight 0: FAULT while up",
            reversed(0, Up),
            Contribution::Fault,
        ),
        (
            "graded negative: w × (1 − f)",
            graded(-60, 0.5),
            Contribution::Points(-30),
        ),
        (
            "graded all usable: nothing lost",
            graded(-60, 1.0),
            Contribution::Points(0),
        ),
        (
            "graded positive: w × f",
            graded(30, 2.0 / 3.0),
            Contribution::Points(20),
        ),
        (
            "file: value × weight",
            file(10, 3),
            Contribution::Points(30),
        ),
        (
            "file: capped at +253",
            file(100, 9),
            Contribution::Points(253),
        ),
        (
            "file: −254 or less is FAULT",
            file(-127, 2),
            Contribution::Fault,
        ),
        (
            "file weight 0: non-zero is FAULT",
            file(0, 1),
            Contribution::Fault,
        ),
        (
            "file weight 0: zero is fine",
            file(0, 0),
            Contribution::Points(0),
        ),
    ];
    for (rule, track, expected) in rows {
        assert_eq!(contribution(&track), expected, "{rule}");
    }
}

#[test]
fn effective_priority_sums_and_clamps() {
    let rows: Vec<(&str, u8, Vec<Track>, EffectivePriority)> = vec![
        ("no tracks: the base", 150, vec![], Value(150)),
        (
            "HAProxy down moves 150 below a 100 peer",
            150,
            vec![track(-60, Down)],
            Value(90),
        ),
        (
            "keepalived's classic +2 on 101/100",
            100,
            vec![track(2, Up)],
            Value(102),
        ),
        ("clamped at 1", 50, vec![track(-100, Down)], Value(1)),
        ("clamped at 254", 250, vec![track(50, Up)], Value(254)),
        (
            "weight 0 down: FAULT",
            150,
            vec![track(-10, Up), track(0, Down)],
            Fault,
        ),
        (
            "owner never changes",
            255,
            vec![track(-100, Down)],
            Value(255),
        ),
        ("owner still faults", 255, vec![track(0, Down)], Fault),
    ];
    for (rule, base, tracks, expected) in rows {
        assert_eq!(effective_priority(base, &tracks), expected, "{rule}");
    }
}

#[test]
fn the_priority_range_explains_the_election() {
    assert_eq!(
        priority_range(150, &[(-60, false), (10, false)]),
        PriorityRange {
            lowest: 90,
            highest: 160,
            can_fault: false,
            has_file_tracks: false
        }
    );
    // keepalived's most common mistake: a weight smaller than the gap to the peer.
    let range = priority_range(101, &[(-2, false)]);
    assert!(range.lowest >= 99, "101 − 2 never drops below a 100 peer");
    let range = priority_range(255, &[(-60, false), (0, false), (5, true)]);
    assert_eq!((range.lowest, range.highest), (255, 255));
    assert!(range.can_fault && range.has_file_tracks);
}

/// A flapping probe behind rise = fall = 2 does not flap the priority.
#[test]
fn rise_and_fall_keep_a_flapping_check_from_moving_the_priority() {
    let mut tracker = Tracker::new(2, 2, false);
    let mut priorities = Vec::new();
    for index in 0..20 {
        let outcome = if index % 2 == 0 {
            ProbeOutcome::Up
        } else {
            ProbeOutcome::down("flap")
        };
        tracker.record(&outcome);
        let tracks = [Track {
            weight: -60,
            reverse: false,
            view: tracker.view(),
        }];
        priorities.push(effective_priority(150, &tracks));
    }
    assert!(
        priorities.iter().all(|p| *p == Value(150)),
        "{priorities:?}"
    );
}
