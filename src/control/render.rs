//! What `vipkeeper status` and the other control commands print for a person.
//!
//! Owns the text layout only: plain ASCII, aligned columns, no colours, every line ending
//! in a newline so the CLI can `print!` it. Time is a parameter (`now_unix_ms`) so the
//! output is deterministic under test; `status --json` prints the [`Status`] itself.

use std::fmt::Write;

use super::protocol::Response;
use super::status::{
    CheckStatus, GroupStatus, Histogram, HookStatus, InstanceStatus, ReloadStatus, Status,
    TrackStatus,
};

/// Width of the label column inside an instance block.
const LABEL: usize = 10;

/// The whole status for a person: a header, one block per instance, then groups, checks,
/// hooks and reloads.
pub fn status_text(status: &Status, now_unix_ms: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {}  vipkeeper {}  up {}  maintenance {}",
        or_dash(&status.node),
        or_dash(&status.version),
        duration_text(status.uptime_seconds),
        if status.maintenance {
            "ON (every instance handed over)"
        } else {
            "off"
        }
    );
    if status.instances.is_empty() {
        out.push_str("\nno instances\n");
    }
    for instance in &status.instances {
        out.push('\n');
        instance_block(&mut out, instance, now_unix_ms);
    }
    if !status.groups.is_empty() {
        out.push_str("\ngroups\n");
        groups_table(&mut out, &status.groups);
    }
    if !status.checks.is_empty() {
        out.push_str("\nchecks\n");
        checks_table(&mut out, &status.checks);
    }
    if !status.hooks.is_empty() {
        out.push_str("\nhooks (last run of each)\n");
        hooks_table(&mut out, &status.hooks, now_unix_ms);
    }
    out.push('\n');
    reloads_line(&mut out, &status.reloads);
    out
}

/// The answer to `switchover`, `resume`, `maintenance` and `reload`: the daemon's message,
/// prefixed with "refused: " when it said no.
pub fn command_response_text(response: &Response) -> String {
    let message = response.message.trim();
    match (response.ok, message.is_empty()) {
        (true, true) => "done\n".to_string(),
        (true, false) => format!("{message}\n"),
        (false, true) => "refused\n".to_string(),
        (false, false) => format!("refused: {message}\n"),
    }
}

fn instance_block(out: &mut String, i: &InstanceStatus, now_unix_ms: u64) {
    let _ = writeln!(
        out,
        "instance {}  {}  vrid {}  {} v{}",
        i.name, i.interface, i.vrid, i.family, i.version
    );
    let mut state = i.state.clone();
    if i.held_back {
        state.push_str("  (held back after a switchover; `vipkeeper resume` ends it)");
    }
    label(out, "state", &state);

    let priority = match i.effective_priority {
        Some(p) => format!("{} base -> {p} effective", i.base_priority),
        None => format!(
            "{} base -> none: FAULT while a weight-0 check is down",
            i.base_priority
        ),
    };
    label(out, "priority", &priority);
    tracks(out, &i.tracks);

    let master = match i.master_address {
        Some(addr) if i.state == "MASTER" => format!("{addr} (this node)"),
        Some(addr) => addr.to_string(),
        None => "unknown".to_string(),
    };
    label(out, "master", &master);

    let vips = if i.vips.is_empty() {
        "none configured".to_string()
    } else {
        format!(
            "{}  ({})",
            i.vips.join(", "),
            if i.holds_vips {
                "held here"
            } else {
                "not held"
            }
        )
    };
    label(out, "vips", &vips);

    let last = match &i.last_transition {
        Some(t) => {
            let mut line = format!("{} -> {}  {}", t.from, t.to, ago(t.at_unix_ms, now_unix_ms));
            if !t.reason.is_empty() {
                let _ = write!(line, "  ({})", t.reason);
            }
            line
        }
        None => "none yet".to_string(),
    };
    label(out, "last", &last);

    let c = &i.counters;
    let mut counters = format!(
        "adverts sent {} received {}  became master {}  released {}  prio0 sent {} received {}  transitions {}",
        c.adverts_sent,
        c.adverts_received,
        c.became_master,
        c.released_master,
        c.priority_zero_sent,
        c.priority_zero_received,
        c.transitions
    );
    let dropped: Vec<String> = c
        .dropped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if !dropped.is_empty() {
        let _ = write!(counters, "  dropped: {}", dropped.join(", "));
    }
    label(out, "counters", &counters);

    if i.advert_lateness.count > 0 {
        label(
            out,
            "lateness",
            &format!(
                "p50 {}  p99 {}  max bucket {}  ({} adverts)",
                quantile_text(&i.advert_lateness, 0.5),
                quantile_text(&i.advert_lateness, 0.99),
                quantile_text(&i.advert_lateness, 1.0),
                i.advert_lateness.count
            ),
        );
    }
}

/// The tracks under the priority line, one per line: name, weight, and what it adds now
/// (right-aligned), or FAULT.
fn tracks(out: &mut String, tracks: &[TrackStatus]) {
    let name_width = tracks.iter().map(|t| t.check.len()).max().unwrap_or(0);
    let weights: Vec<String> = tracks
        .iter()
        .map(|t| {
            let mut w = format!("weight {}", t.weight);
            if t.reverse {
                w.push_str(" reverse");
            }
            w
        })
        .collect();
    let weight_width = weights.iter().map(String::len).max().unwrap_or(0);
    let contributions: Vec<String> = tracks
        .iter()
        .map(|t| match t.contribution {
            Some(c) => format!("{c:+}"),
            None => "FAULT".to_string(),
        })
        .collect();
    let contribution_width = contributions.iter().map(String::len).max().unwrap_or(0);
    for ((track, weight), contribution) in tracks.iter().zip(&weights).zip(&contributions) {
        let _ = writeln!(
            out,
            "  {:LABEL$} {:name_width$}  {:weight_width$}  {:>contribution_width$}",
            "", track.check, weight, contribution
        );
    }
}

fn label(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label:LABEL$} {value}");
}

fn groups_table(out: &mut String, groups: &[GroupStatus]) {
    let rows = groups
        .iter()
        .map(|g| vec![g.name.clone(), g.state.clone(), g.instances.join(", ")])
        .collect();
    table(out, &["NAME", "STATE", "INSTANCES"], rows);
}

fn checks_table(out: &mut String, checks: &[CheckStatus]) {
    let rows = checks
        .iter()
        .map(|c| {
            let mut last = c.last_result.clone().unwrap_or_else(|| "-".to_string());
            if let Some(f) = c.fraction {
                let _ = write!(last, "  [fraction {f:.2}]");
            }
            if let Some(v) = c.value {
                let _ = write!(last, "  [value {v}]");
            }
            vec![
                c.name.clone(),
                c.kind.clone(),
                c.state.clone(),
                quantile_text(&c.latency, 0.5),
                c.runs.to_string(),
                c.failures.to_string(),
                last,
            ]
        })
        .collect();
    table(
        out,
        &[
            "NAME",
            "TYPE",
            "STATE",
            "LATENCY p50",
            "RUNS",
            "FAILURES",
            "LAST RESULT",
        ],
        rows,
    );
}

fn hooks_table(out: &mut String, hooks: &[HookStatus], now_unix_ms: u64) {
    let rows = hooks
        .iter()
        .map(|h| {
            vec![
                format!("{} {}", h.scope, h.owner),
                h.state.clone(),
                h.hook.clone(),
                if h.ok { "ok" } else { "FAILED" }.to_string(),
                seconds_text(h.duration_seconds),
                ago(h.at_unix_ms, now_unix_ms),
                format!("{}/{}", h.succeeded, h.failed),
                if h.detail.is_empty() {
                    "-".to_string()
                } else {
                    h.detail.clone()
                },
            ]
        })
        .collect();
    table(
        out,
        &[
            "OWNER",
            "STATE",
            "HOOK",
            "RESULT",
            "TOOK",
            "WHEN",
            "OK/FAILED",
            "DETAIL",
        ],
        rows,
    );
}

fn reloads_line(out: &mut String, reloads: &ReloadStatus) {
    let _ = write!(
        out,
        "reloads   {} succeeded, {} failed",
        reloads.succeeded, reloads.failed
    );
    if let Some(error) = &reloads.last_error {
        let _ = write!(out, "; last error: {error}");
    }
    out.push('\n');
}

/// Left-aligned columns, two spaces apart, indented by two; the last column is not padded.
fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::from(" ");
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            line.push(' ');
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:width$} ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// The bucket bound holding quantile `q`: "<=5ms", ">10s" past the last bound, "-" empty.
fn quantile_text(h: &Histogram, q: f64) -> String {
    match quantile_bound(h, q) {
        None => "-".to_string(),
        Some(Ok(bound)) => format!("<={}", seconds_text(bound)),
        Some(Err(last)) => format!(">{}", seconds_text(last)),
    }
}

/// `Ok(bound)` of the first bucket reaching rank `ceil(q * count)`; `Err(last bound)` when
/// only +Inf does; `None` for an empty histogram.
fn quantile_bound(h: &Histogram, q: f64) -> Option<Result<f64, f64>> {
    if h.count == 0 {
        return None;
    }
    let rank = ((q * h.count as f64).ceil() as u64).clamp(1, h.count);
    for (bound, cumulative) in h.bounds.iter().zip(&h.cumulative) {
        if *cumulative >= rank {
            return Some(Ok(*bound));
        }
    }
    match h.bounds.last() {
        Some(last) => Some(Err(*last)),
        // No buckets at all: the mean is all there is.
        None => Some(Ok(h.sum / h.count as f64)),
    }
}

/// Seconds for a person: "250us", "12ms", "1.5s", "2m 5s".
fn seconds_text(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".to_string();
    }
    if seconds < 0.001 {
        format!("{}us", trim_float(seconds * 1e6))
    } else if seconds < 1.0 {
        format!("{}ms", trim_float(seconds * 1e3))
    } else if seconds < 60.0 {
        format!("{}s", trim_float(seconds))
    } else {
        duration_text(seconds as u64)
    }
}

/// At most one decimal, none when it is zero: 2, 2.5, 0.1.
fn trim_float(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

/// Whole seconds for a person, two units at most: "45s", "2m 5s", "3h 4m", "2d 3h".
fn duration_text(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

fn ago(at_unix_ms: u64, now_unix_ms: u64) -> String {
    if at_unix_ms == 0 {
        return "never".to_string();
    }
    if at_unix_ms > now_unix_ms {
        // The clock stepped back since; say so rather than print a negative age.
        return "in the future (clock stepped)".to_string();
    }
    format!("{} ago", duration_text((now_unix_ms - at_unix_ms) / 1000))
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::status::{
        InstanceCounters, TransitionStatus, LATENCY_BOUNDS, LATENESS_BOUNDS,
    };

    const NOW: u64 = 1_750_000_000_000;

    fn realistic() -> Status {
        let mut lateness = Histogram::with_bounds(LATENESS_BOUNDS);
        for _ in 0..98 {
            lateness.observe(0.00008);
        }
        lateness.observe(0.0015);
        lateness.observe(0.003);
        let mut haproxy_latency = Histogram::with_bounds(LATENCY_BOUNDS);
        for s in [0.002, 0.003, 0.004, 0.02, 0.3] {
            haproxy_latency.observe(s);
        }
        Status {
            node: "lb1".into(),
            version: "0.1.0".into(),
            uptime_seconds: 3 * 86_400 + 4 * 3600 + 120,
            maintenance: false,
            instances: vec![
                InstanceStatus {
                    name: "VI_WEB".into(),
                    interface: "eth0".into(),
                    vrid: 51,
                    family: "IPv4".into(),
                    version: 3,
                    state: "MASTER".into(),
                    base_priority: 150,
                    effective_priority: Some(140),
                    tracks: vec![
                        TrackStatus {
                            check: "haproxy".into(),
                            weight: 20,
                            reverse: false,
                            contribution: Some(0),
                        },
                        TrackStatus {
                            check: "backends_web".into(),
                            weight: -10,
                            reverse: true,
                            contribution: Some(-10),
                        },
                    ],
                    master_address: Some("192.0.2.11".parse().unwrap()),
                    vips: vec!["192.0.2.100/24".into(), "192.0.2.101/24".into()],
                    holds_vips: true,
                    last_transition: Some(TransitionStatus {
                        from: "BACKUP".into(),
                        to: "MASTER".into(),
                        reason: "Master_Down_Interval expired".into(),
                        at_unix_ms: NOW - 125_000,
                    }),
                    held_back: false,
                    counters: InstanceCounters {
                        adverts_sent: 1234,
                        adverts_received: 55,
                        became_master: 2,
                        released_master: 1,
                        priority_zero_sent: 0,
                        priority_zero_received: 1,
                        transitions: 3,
                        dropped: [("auth".to_string(), 2), ("ttl".to_string(), 0)]
                            .into_iter()
                            .collect(),
                    },
                    advert_lateness: lateness,
                },
                InstanceStatus {
                    name: "VI_DB6".into(),
                    interface: "eth1".into(),
                    vrid: 52,
                    family: "IPv6".into(),
                    version: 3,
                    state: "FAULT".into(),
                    base_priority: 100,
                    effective_priority: None,
                    tracks: vec![TrackStatus {
                        check: "mysql".into(),
                        weight: 0,
                        reverse: false,
                        contribution: None,
                    }],
                    master_address: Some("2001:db8::12".parse().unwrap()),
                    vips: vec!["2001:db8::100/64".into()],
                    holds_vips: false,
                    last_transition: Some(TransitionStatus {
                        from: "BACKUP".into(),
                        to: "FAULT".into(),
                        reason: "check mysql down".into(),
                        at_unix_ms: NOW - 3 * 3600 * 1000 - 60_000,
                    }),
                    held_back: true,
                    counters: InstanceCounters::default(),
                    advert_lateness: Histogram::with_bounds(LATENESS_BOUNDS),
                },
            ],
            groups: vec![GroupStatus {
                name: "G_LB".into(),
                instances: vec!["VI_WEB".into(), "VI_DB6".into()],
                state: "FAULT".into(),
            }],
            checks: vec![
                CheckStatus {
                    name: "haproxy".into(),
                    kind: "haproxy".into(),
                    state: "up".into(),
                    last_result: Some("3/3 servers up in be_web".into()),
                    fraction: Some(1.0),
                    value: None,
                    latency: haproxy_latency,
                    runs: 1200,
                    failures: 3,
                },
                CheckStatus {
                    name: "mysql".into(),
                    kind: "mysql".into(),
                    state: "down".into(),
                    last_result: Some("connect: Connection refused".into()),
                    fraction: None,
                    value: None,
                    latency: Histogram::with_bounds(LATENCY_BOUNDS),
                    runs: 40,
                    failures: 40,
                },
            ],
            hooks: vec![HookStatus {
                scope: "INSTANCE".into(),
                owner: "VI_WEB".into(),
                state: "MASTER".into(),
                hook: "haproxy_reload".into(),
                ok: true,
                detail: "reloaded, 1 worker".into(),
                duration_seconds: 0.12,
                at_unix_ms: NOW - 124_000,
                succeeded: 2,
                failed: 0,
            }],
            unmatched_dropped: Default::default(),
            reloads: ReloadStatus {
                succeeded: 3,
                failed: 1,
                last_error: Some("/etc/vipkeeper/vipkeeper.toml:12:5: weight: out of range".into()),
            },
        }
    }

    #[test]
    fn realistic_status_reads_well() {
        let text = status_text(&realistic(), NOW);
        let expected = "\
node lb1  vipkeeper 0.1.0  up 3d 4h  maintenance off

instance VI_WEB  eth0  vrid 51  IPv4 v3
  state      MASTER
  priority   150 base -> 140 effective
             haproxy       weight 20            +0
             backends_web  weight -10 reverse  -10
  master     192.0.2.11 (this node)
  vips       192.0.2.100/24, 192.0.2.101/24  (held here)
  last       BACKUP -> MASTER  2m 5s ago  (Master_Down_Interval expired)
  counters   adverts sent 1234 received 55  became master 2  released 1  prio0 sent 0 received 1  transitions 3  dropped: auth 2
  lateness   p50 <=100us  p99 <=2ms  max bucket <=5ms  (100 adverts)

instance VI_DB6  eth1  vrid 52  IPv6 v3
  state      FAULT  (held back after a switchover; `vipkeeper resume` ends it)
  priority   100 base -> none: FAULT while a weight-0 check is down
             mysql  weight 0  FAULT
  master     2001:db8::12
  vips       2001:db8::100/64  (not held)
  last       BACKUP -> FAULT  3h 1m ago  (check mysql down)
  counters   adverts sent 0 received 0  became master 0  released 0  prio0 sent 0 received 0  transitions 0

groups
  NAME  STATE  INSTANCES
  G_LB  FAULT  VI_WEB, VI_DB6

checks
  NAME     TYPE     STATE  LATENCY p50  RUNS  FAILURES  LAST RESULT
  haproxy  haproxy  up     <=5ms        1200  3         3/3 servers up in be_web  [fraction 1.00]
  mysql    mysql    down   -            40    40        connect: Connection refused

hooks (last run of each)
  OWNER            STATE   HOOK            RESULT  TOOK   WHEN       OK/FAILED  DETAIL
  INSTANCE VI_WEB  MASTER  haproxy_reload  ok      120ms  2m 4s ago  2/0        reloaded, 1 worker

reloads   3 succeeded, 1 failed; last error: /etc/vipkeeper/vipkeeper.toml:12:5: weight: out of range
";
        assert_eq!(text, expected, "got:\n{text}");
    }

    #[test]
    fn empty_status_still_prints_every_section_it_has() {
        let text = status_text(&Status::default(), NOW);
        assert_eq!(
            text,
            "node -  vipkeeper -  up 0s  maintenance off\n\nno instances\n\nreloads   0 succeeded, 0 failed\n"
        );
    }

    #[test]
    fn maintenance_and_unknown_master_and_no_transition() {
        let mut status = realistic();
        status.maintenance = true;
        status.instances[0].master_address = None;
        status.instances[0].last_transition = None;
        status.instances[0].state = "BACKUP".into();
        let text = status_text(&status, NOW);
        assert!(text.contains("maintenance ON"), "{text}");
        assert!(text.contains("  master     unknown\n"), "{text}");
        assert!(text.contains("  last       none yet\n"), "{text}");
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut h = Histogram::with_bounds(&[0.001, 0.01, 0.1]);
        assert_eq!(quantile_text(&h, 0.5), "-");
        h.observe(0.0005);
        h.observe(0.005);
        h.observe(0.05);
        h.observe(5.0);
        assert_eq!(quantile_text(&h, 0.5), "<=10ms");
        assert_eq!(quantile_text(&h, 0.75), "<=100ms");
        assert_eq!(quantile_text(&h, 1.0), ">100ms");
        let bucketless = Histogram {
            bounds: vec![],
            cumulative: vec![],
            sum: 0.3,
            count: 2,
        };
        assert_eq!(quantile_text(&bucketless, 0.5), "<=150ms");
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(59), "59s");
        assert_eq!(duration_text(125), "2m 5s");
        assert_eq!(duration_text(3 * 3600 + 61), "3h 1m");
        assert_eq!(duration_text(2 * 86_400 + 3 * 3600), "2d 3h");
        assert_eq!(seconds_text(0.00025), "250us");
        assert_eq!(seconds_text(1.5), "1.5s");
        assert_eq!(seconds_text(2.0), "2s");
        assert_eq!(ago(NOW - 999, NOW), "0s ago");
        assert_eq!(ago(NOW + 5000, NOW), "in the future (clock stepped)");
        assert_eq!(ago(0, NOW), "never");
    }

    #[test]
    fn command_responses() {
        assert_eq!(
            command_response_text(&Response::ok("VI_WEB hands over to 192.0.2.12")),
            "VI_WEB hands over to 192.0.2.12\n"
        );
        assert_eq!(
            command_response_text(&Response::refused("no instance VI_NOPE")),
            "refused: no instance VI_NOPE\n"
        );
        assert_eq!(command_response_text(&Response::ok("")), "done\n");
        assert_eq!(command_response_text(&Response::refused(" ")), "refused\n");
    }
}
