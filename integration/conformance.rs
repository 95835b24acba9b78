//! Conformance snapshots: a router driven by a JSONL script, its outputs compared with a
//! recorded JSONL transcript, in the manner of holo's conformance tests.
//!
//! `integration/conformance/NAME.in.jsonl` holds one `{"config": RouterConfig}` line, then
//! steps: `{"input": {"at_us": N, "input": Input}}` or `"fire"` (jump to the router's
//! own deadline). `NAME.out.jsonl` is the transcript: every action, and after each step the
//! state and next deadline. Review a changed transcript like code;
//! `VIPKEEPER_UPDATE_SNAPSHOTS=1 cargo test --test conformance` rewrites them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vipkeeper::vrrp::{Action, Input, RouterConfig, State, VirtualRouter};

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    Config(RouterConfig),
    Input { at_us: u64, input: Input },
    Fire,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Record<'a> {
    Action {
        at_us: u64,
        action: &'a Action,
    },
    State {
        at_us: u64,
        state: State,
        deadline_us: Option<u64>,
    },
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).expect("test times fit in u64")
}

fn transcript(script: &str, case: &Path) -> String {
    let t0 = Instant::now();
    let mut router: Option<VirtualRouter> = None;
    let mut out = String::new();
    for (number, line) in script.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let step: Step = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("{}:{}: {error}", case.display(), number + 1));
        let now = match step {
            Step::Config(config) => {
                router = Some(VirtualRouter::new(config));
                continue;
            }
            Step::Input { at_us, input } => {
                let now = t0 + Duration::from_micros(at_us);
                let router = router.as_mut().expect("config comes first");
                router.handle(input, now);
                now
            }
            Step::Fire => {
                let router = router.as_mut().expect("config comes first");
                let now = router.poll_timeout().expect("fire needs an armed timer");
                router.handle_timeout(now);
                now
            }
        };
        let router = router.as_mut().expect("config comes first");
        let at_us = micros(now - t0);
        while let Some(action) = router.poll_action() {
            let record = Record::Action {
                at_us,
                action: &action,
            };
            out.push_str(&serde_json::to_string(&record).expect("serialisable"));
            out.push('\n');
        }
        let record = Record::State {
            at_us,
            state: router.state(),
            deadline_us: router.poll_timeout().map(|at| micros(at - t0)),
        };
        out.push_str(&serde_json::to_string(&record).expect("serialisable"));
        out.push('\n');
    }
    out
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/conformance");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("integration/conformance exists")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(".in.jsonl"))
        .collect();
    cases.sort();
    cases
}

#[test]
fn transcripts_match() {
    let update = std::env::var_os("VIPKEEPER_UPDATE_SNAPSHOTS").is_some();
    let cases = cases();
    assert!(cases.len() >= 4, "conformance cases missing: {cases:?}");
    let mut mismatched = Vec::new();
    for case in &cases {
        let script = fs::read_to_string(case).expect("readable case");
        let actual = transcript(&script, case);
        let expected_path =
            PathBuf::from(case.to_string_lossy().replace(".in.jsonl", ".out.jsonl"));
        if update {
            fs::write(&expected_path, &actual).expect("writable transcript");
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            mismatched.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(
        mismatched.is_empty(),
        "transcripts differ (VIPKEEPER_UPDATE_SNAPSHOTS=1 to accept):\n{}",
        mismatched.join("\n")
    );
}
