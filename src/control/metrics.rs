//! Prometheus metrics: `/metrics` (text exposition format 0.0.4) and `/healthz`.
//!
//! Owns the rendering of a [`Status`] snapshot into metric families and a small HTTP/1
//! server. It only reads the latest snapshot the daemon published on its
//! `tokio::sync::watch` channel (`borrow().clone()`, then render outside the borrow), so a
//! scrape never makes the daemon loop wait.
//!
//! Two name spaces (see docs/metrics.md):
//! - `keepalived_*`: the names, labels and 0..3 state encoding of mehdy/keepalived-exporter,
//!   so its Grafana dashboards keep working after keepalived is replaced;
//! - `vipkeeper_*`: what keepalived has no counterpart for (effective priority, advert
//!   lateness, checks, hooks, reloads).
//!
//! The server runs on the caller's current-thread runtime and spawns one task per
//! connection with `spawn_local`: [`serve`] and [`serve_listener`] must be polled inside a
//! `tokio::task::LocalSet` (the daemon's). Connections are bounded: at most
//! [`MAX_CONNECTIONS`] at once, request headers within [`HEADER_READ_TIMEOUT`], the whole
//! exchange within [`CONNECTION_DEADLINE`], one request per connection, bodies never read.
//! Dropping the serve future aborts the connections still open.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::status::{Histogram, InstanceStatus, Status};

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Connections served at once; further ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;
/// Time for a client to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole connection (one request and its response).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (out of file descriptors, ...) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// hyper's read buffer (its minimum): a scrape request is a few hundred bytes.
const MAX_BUF_SIZE: usize = 8192;

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

/// keepalived's error counters we can fill, and the drop reasons (`InstanceCounters::
/// dropped` keys) each one sums. Emitted as 0 when no such drop happened yet.
/// `keepalived_address_list_errors_total` is left out: vipkeeper accepts an advert whose
/// address list differs (and logs a warning) without counting it, so there is nothing
/// honest to export. `authentication_failure` and `gratuitous_arp_delay` have no
/// counterpart either.
pub const KEEPALIVED_ERROR_COUNTERS: &[(&str, &str, &[&str])] = &[
    (
        "keepalived_packet_length_errors_total",
        "Adverts dropped for a wrong length (vipkeeper reasons length_mismatch, too_short).",
        &["length_mismatch", "too_short"],
    ),
    (
        "keepalived_advertisements_interval_errors_total",
        "Adverts dropped for an advert interval other than ours (interval_mismatch).",
        &["interval_mismatch"],
    ),
    (
        "keepalived_ip_ttl_errors_total",
        "Adverts dropped for an IP TTL / hop limit other than 255 (ttl_not_255).",
        &["ttl_not_255"],
    ),
    (
        "keepalived_invalid_type_received_total",
        "Packets dropped for a VRRP type other than advertisement (bad_type).",
        &["bad_type"],
    ),
    (
        "keepalived_authentication_invalid_total",
        "v2 adverts dropped for an unsupported auth type (unsupported_auth_type).",
        &["unsupported_auth_type"],
    ),
    (
        "keepalived_authentication_mismatch_total",
        "v2 adverts dropped for an auth type or password other than ours (auth_mismatch).",
        &["auth_mismatch"],
    ),
];

/// mehdy/keepalived-exporter's state encoding: 0=INIT 1=BACKUP 2=MASTER 3=FAULT.
pub fn state_code(state: &str) -> Option<u8> {
    match state {
        "INIT" => Some(0),
        "BACKUP" => Some(1),
        "MASTER" => Some(2),
        "FAULT" => Some(3),
        _ => None,
    }
}

/// The `ip_address` and `intf` labels of one VIP of `keepalived_vrrp_state`: the VIP's
/// first word (the address as configured, `192.0.2.50/24`), and the word after `dev` if
/// the VIP names its own device, else the instance's interface (keepalived-exporter takes
/// both from keepalived's VIP lines, `192.0.2.50/24 dev eth1 scope global`).
pub fn vip_labels<'a>(vip: &'a str, instance_interface: &'a str) -> (&'a str, &'a str) {
    let mut words = vip.split_whitespace();
    let address = words.next().unwrap_or("");
    let mut interface = instance_interface;
    while let Some(word) = words.next() {
        if word == "dev" {
            if let Some(dev) = words.next() {
                interface = dev;
            }
        }
    }
    (address, interface)
}

/// The snapshot in the Prometheus text exposition format 0.0.4.
pub fn render(status: &Status) -> String {
    let mut out = Exposition::default();
    render_keepalived(&mut out, status);
    render_daemon(&mut out, status);
    render_instances(&mut out, status);
    render_checks(&mut out, status);
    render_hooks(&mut out, status);
    out.text
}

/// What `/metrics` shows once the daemon's snapshot channel is closed: only the up gauge,
/// at 0, as keepalived-exporter does when it cannot read keepalived's statistics.
pub fn render_down() -> String {
    let mut out = Exposition::default();
    out.family("keepalived_up", "gauge", UP_HELP);
    out.sample("keepalived_up", &[], 0u64);
    out.text
}

const UP_HELP: &str = "1 while the vipkeeper daemon publishes its status, 0 once it stopped.";

fn instance_labels(instance: &InstanceStatus) -> [(&str, String); 3] {
    [
        ("iname", instance.name.clone()),
        ("intf", instance.interface.clone()),
        ("vrid", instance.vrid.to_string()),
    ]
}

/// Borrowed label pairs from owned ones.
fn borrowed<'a>(labels: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(extra).copied().collect()
}

fn render_keepalived(out: &mut Exposition, status: &Status) {
    out.family("keepalived_up", "gauge", UP_HELP);
    out.sample("keepalived_up", &[], 1u64);

    out.family(
        "keepalived_vrrp_state",
        "gauge",
        "VRRP state per VIP: 0=INIT 1=BACKUP 2=MASTER 3=FAULT (ip_address=\"\" without VIPs).",
    );
    for instance in &status.instances {
        let Some(code) = state_code(&instance.state) else {
            continue;
        };
        let vrid = instance.vrid.to_string();
        if instance.vips.is_empty() {
            let labels = [
                ("iname", instance.name.as_str()),
                ("intf", instance.interface.as_str()),
                ("vrid", vrid.as_str()),
                ("ip_address", ""),
            ];
            out.sample("keepalived_vrrp_state", &labels, code);
        }
        for vip in &instance.vips {
            let (address, interface) = vip_labels(vip, &instance.interface);
            let labels = [
                ("iname", instance.name.as_str()),
                ("intf", interface),
                ("vrid", vrid.as_str()),
                ("ip_address", address),
            ];
            out.sample("keepalived_vrrp_state", &labels, code);
        }
    }

    type Get = fn(&InstanceStatus) -> u64;
    let plain: [(&str, &str, Get); 6] = [
        (
            "keepalived_advertisements_received_total",
            "Adverts received for this instance.",
            |i| i.counters.adverts_received,
        ),
        (
            "keepalived_advertisements_sent_total",
            "Adverts sent by this instance.",
            |i| i.counters.adverts_sent,
        ),
        (
            "keepalived_become_master_total",
            "Transitions to MASTER.",
            |i| i.counters.became_master,
        ),
        (
            "keepalived_release_master_total",
            "Transitions from MASTER to another state.",
            |i| i.counters.released_master,
        ),
        (
            "keepalived_priority_zero_received_total",
            "Adverts received with priority 0 (a Master resigning).",
            |i| i.counters.priority_zero_received,
        ),
        (
            "keepalived_priority_zero_sent_total",
            "Adverts sent with priority 0 (resigning as Master).",
            |i| i.counters.priority_zero_sent,
        ),
    ];
    for (name, help, get) in plain {
        out.family(name, "counter", help);
        for instance in &status.instances {
            let labels = instance_labels(instance);
            out.sample(name, &borrowed(&labels), get(instance));
        }
    }
    for (name, help, reasons) in KEEPALIVED_ERROR_COUNTERS {
        out.family(name, "counter", help);
        for instance in &status.instances {
            let labels = instance_labels(instance);
            let dropped = &instance.counters.dropped;
            let value: u64 = reasons.iter().filter_map(|r| dropped.get(*r)).sum();
            out.sample(name, &borrowed(&labels), value);
        }
    }

    out.family(
        "keepalived_script_status",
        "gauge",
        "Health check status as keepalived's tracked scripts: 0=BAD (down) 1=GOOD (up).",
    );
    for check in &status.checks {
        if let Some(up) = check_up(&check.state) {
            out.sample("keepalived_script_status", &[("name", &check.name)], up);
        }
    }
}

fn check_up(state: &str) -> Option<u64> {
    match state {
        "up" => Some(1),
        "down" => Some(0),
        _ => None,
    }
}

fn render_daemon(out: &mut Exposition, status: &Status) {
    out.family(
        "vipkeeper_build_info",
        "gauge",
        "Always 1; the labels name the vipkeeper version and node.",
    );
    out.sample(
        "vipkeeper_build_info",
        &[("version", &status.version), ("node", &status.node)],
        1u64,
    );
    out.family(
        "vipkeeper_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    out.sample("vipkeeper_uptime_seconds", &[], status.uptime_seconds);
    out.family(
        "vipkeeper_maintenance",
        "gauge",
        "1 while maintenance mode holds every instance in BACKUP.",
    );
    out.sample("vipkeeper_maintenance", &[], u64::from(status.maintenance));

    out.family(
        "vipkeeper_reloads_total",
        "counter",
        "Configuration reloads by result (ok, failed).",
    );
    out.sample(
        "vipkeeper_reloads_total",
        &[("result", "ok")],
        status.reloads.succeeded,
    );
    out.sample(
        "vipkeeper_reloads_total",
        &[("result", "failed")],
        status.reloads.failed,
    );

    out.family(
        "vipkeeper_group_state",
        "gauge",
        "Sync group state: 0=INIT 1=BACKUP 2=MASTER 3=FAULT.",
    );
    for group in &status.groups {
        if let Some(code) = state_code(&group.state) {
            out.sample("vipkeeper_group_state", &[("group", &group.name)], code);
        }
    }
}

fn render_instances(out: &mut Exposition, status: &Status) {
    let instances = &status.instances;

    out.family(
        "vipkeeper_instance_info",
        "gauge",
        "Always 1; the labels name the instance's address family and VRRP version.",
    );
    for instance in instances {
        let labels = instance_labels(instance);
        let version = instance.version.to_string();
        let extra = [("family", instance.family.as_str()), ("version", &version)];
        out.sample(
            "vipkeeper_instance_info",
            &with(&borrowed(&labels), &extra),
            1u64,
        );
    }

    out.family(
        "vipkeeper_instance_state",
        "gauge",
        "VRRP state per instance: 0=INIT 1=BACKUP 2=MASTER 3=FAULT.",
    );
    for instance in instances {
        if let Some(code) = state_code(&instance.state) {
            let labels = instance_labels(instance);
            out.sample("vipkeeper_instance_state", &borrowed(&labels), code);
        }
    }

    out.family(
        "vipkeeper_instance_base_priority",
        "gauge",
        "The configured priority.",
    );
    for instance in instances {
        let labels = instance_labels(instance);
        let value = u64::from(instance.base_priority);
        out.sample(
            "vipkeeper_instance_base_priority",
            &borrowed(&labels),
            value,
        );
    }

    out.family(
        "vipkeeper_instance_effective_priority",
        "gauge",
        "The priority after tracked checks; absent while a weight-0 check holds the instance in FAULT.",
    );
    for instance in instances {
        if let Some(priority) = instance.effective_priority {
            let labels = instance_labels(instance);
            let name = "vipkeeper_instance_effective_priority";
            out.sample(name, &borrowed(&labels), u64::from(priority));
        }
    }

    out.family(
        "vipkeeper_track_contribution",
        "gauge",
        "What a tracked check adds to the priority now; absent when it puts the instance in FAULT.",
    );
    for instance in instances {
        let labels = instance_labels(instance);
        for track in &instance.tracks {
            if let Some(contribution) = track.contribution {
                let labels = with(&borrowed(&labels), &[("check", &track.check)]);
                out.sample("vipkeeper_track_contribution", &labels, contribution);
            }
        }
    }

    out.family(
        "vipkeeper_instance_holds_vips",
        "gauge",
        "1 while the instance's VIPs are configured on this node.",
    );
    for instance in instances {
        let labels = instance_labels(instance);
        let value = u64::from(instance.holds_vips);
        out.sample("vipkeeper_instance_holds_vips", &borrowed(&labels), value);
    }

    out.family(
        "vipkeeper_instance_held_back",
        "gauge",
        "1 while a switchover holds the instance back from preempting.",
    );
    for instance in instances {
        let labels = instance_labels(instance);
        let value = u64::from(instance.held_back);
        out.sample("vipkeeper_instance_held_back", &borrowed(&labels), value);
    }

    out.family(
        "vipkeeper_instance_transitions_total",
        "counter",
        "VRRP state transitions of the instance.",
    );
    for instance in instances {
        let labels = instance_labels(instance);
        let value = instance.counters.transitions;
        let name = "vipkeeper_instance_transitions_total";
        out.sample(name, &borrowed(&labels), value);
    }

    out.family(
        "vipkeeper_instance_last_transition_timestamp_seconds",
        "gauge",
        "Unix time of the instance's last state transition; absent before the first.",
    );
    for instance in instances {
        if let Some(transition) = &instance.last_transition {
            let labels = instance_labels(instance);
            let value = transition.at_unix_ms as f64 / 1000.0;
            let name = "vipkeeper_instance_last_transition_timestamp_seconds";
            out.sample(name, &borrowed(&labels), value);
        }
    }

    out.family(
        "vipkeeper_adverts_dropped_total",
        "counter",
        "Received packets dropped, by reason (every reason; keepalived_*_errors_total sum some).",
    );
    for instance in instances {
        let labels = instance_labels(instance);
        for (reason, count) in &instance.counters.dropped {
            let labels = with(&borrowed(&labels), &[("reason", reason)]);
            out.sample("vipkeeper_adverts_dropped_total", &labels, *count);
        }
    }

    out.family(
        "vipkeeper_unmatched_packets_dropped_total",
        "counter",
        "Received packets dropped before matching an instance (unknown_vrid, ...), by reason.",
    );
    for (reason, count) in &status.unmatched_dropped {
        let name = "vipkeeper_unmatched_packets_dropped_total";
        out.sample(name, &[("reason", reason.as_str())], *count);
    }

    out.family(
        "vipkeeper_advert_send_lateness_seconds",
        "histogram",
        "How late adverts were sent compared to their schedule.",
    );
    for instance in instances {
        let labels = instance_labels(instance);
        let name = "vipkeeper_advert_send_lateness_seconds";
        out.histogram(name, &borrowed(&labels), &instance.advert_lateness);
    }
}

fn render_checks(out: &mut Exposition, status: &Status) {
    let checks = &status.checks;
    let labels = |check: &'_ super::status::CheckStatus| {
        [("check", check.name.clone()), ("type", check.kind.clone())]
    };

    out.family(
        "vipkeeper_check_up",
        "gauge",
        "1 while the health check is up, 0 while down; absent while not graded yet.",
    );
    for check in checks {
        if let Some(up) = check_up(&check.state) {
            out.sample("vipkeeper_check_up", &borrowed(&labels(check)), up);
        }
    }

    out.family(
        "vipkeeper_check_runs_total",
        "counter",
        "Probes run by the health check.",
    );
    for check in checks {
        let value = check.runs;
        out.sample(
            "vipkeeper_check_runs_total",
            &borrowed(&labels(check)),
            value,
        );
    }

    out.family(
        "vipkeeper_check_failures_total",
        "counter",
        "Probes of the health check that failed.",
    );
    for check in checks {
        let value = check.failures;
        let name = "vipkeeper_check_failures_total";
        out.sample(name, &borrowed(&labels(check)), value);
    }

    out.family(
        "vipkeeper_check_fraction",
        "gauge",
        "The graded fraction of a check that has one (0..1, e.g. HAProxy servers up).",
    );
    for check in checks {
        if let Some(fraction) = check.fraction {
            let name = "vipkeeper_check_fraction";
            out.sample(name, &borrowed(&labels(check)), fraction);
        }
    }

    out.family(
        "vipkeeper_check_value",
        "gauge",
        "The value of a check that reads one (file checks).",
    );
    for check in checks {
        if let Some(value) = check.value {
            out.sample("vipkeeper_check_value", &borrowed(&labels(check)), value);
        }
    }

    out.family(
        "vipkeeper_check_latency_seconds",
        "histogram",
        "Probe latency of polled health checks (others have no series).",
    );
    for check in checks {
        let latency = &check.latency;
        if latency.bounds.is_empty() && latency.count == 0 {
            continue;
        }
        let name = "vipkeeper_check_latency_seconds";
        out.histogram(name, &borrowed(&labels(check)), latency);
    }
}

fn render_hooks(out: &mut Exposition, status: &Status) {
    let hooks = &status.hooks;
    let labels = |hook: &'_ super::status::HookStatus| {
        [
            ("scope", hook.scope.clone()),
            ("owner", hook.owner.clone()),
            ("state", hook.state.clone()),
            ("hook", hook.hook.clone()),
        ]
    };

    out.family(
        "vipkeeper_hook_runs_total",
        "counter",
        "Runs of a notify hook by result (ok, failed).",
    );
    for hook in hooks {
        let labels = labels(hook);
        let base = borrowed(&labels);
        let name = "vipkeeper_hook_runs_total";
        out.sample(name, &with(&base, &[("result", "ok")]), hook.succeeded);
        out.sample(name, &with(&base, &[("result", "failed")]), hook.failed);
    }

    out.family(
        "vipkeeper_hook_last_success",
        "gauge",
        "1 if the hook's last run succeeded, 0 if it failed.",
    );
    for hook in hooks {
        let value = u64::from(hook.ok);
        out.sample(
            "vipkeeper_hook_last_success",
            &borrowed(&labels(hook)),
            value,
        );
    }

    out.family(
        "vipkeeper_hook_last_duration_seconds",
        "gauge",
        "How long the hook's last run took.",
    );
    for hook in hooks {
        let value = hook.duration_seconds;
        let name = "vipkeeper_hook_last_duration_seconds";
        out.sample(name, &borrowed(&labels(hook)), value);
    }

    out.family(
        "vipkeeper_hook_last_run_timestamp_seconds",
        "gauge",
        "Unix time of the hook's last run.",
    );
    for hook in hooks {
        let value = hook.at_unix_ms as f64 / 1000.0;
        let name = "vipkeeper_hook_last_run_timestamp_seconds";
        out.sample(name, &borrowed(&labels(hook)), value);
    }
}

/// A sample value: integers print exactly, floats in Prometheus' spelling.
enum Value {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(value: u64) -> Value {
        Value::Unsigned(value)
    }
}
impl From<u8> for Value {
    fn from(value: u8) -> Value {
        Value::Unsigned(value.into())
    }
}
impl From<i32> for Value {
    fn from(value: i32) -> Value {
        Value::Signed(value.into())
    }
}
impl From<i64> for Value {
    fn from(value: i64) -> Value {
        Value::Signed(value)
    }
}
impl From<f64> for Value {
    fn from(value: f64) -> Value {
        Value::Float(value)
    }
}

/// `+Inf`, `-Inf`, `NaN`, or Rust's shortest round-tripping decimal (never an exponent).
pub fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text with `\` and newlines escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.text.push_str(name);
        self.labels(labels);
        self.text.push(' ');
        match value.into() {
            Value::Unsigned(v) => {
                let _ = write!(self.text, "{v}");
            }
            Value::Signed(v) => {
                let _ = write!(self.text, "{v}");
            }
            Value::Float(v) => self.text.push_str(&format_float(v)),
        }
        self.text.push('\n');
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.text.push('{');
        for (index, (key, value)) in labels.iter().enumerate() {
            if index > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{key}=\"{}\"", escape_label_value(value));
        }
        self.text.push('}');
    }

    /// `_bucket` per finite bound, `+Inf` = count, `_sum`, `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
        let bucket = format!("{name}_bucket");
        for (bound, cumulative) in histogram.bounds.iter().zip(&histogram.cumulative) {
            if !bound.is_finite() {
                continue;
            }
            let le = format_float(*bound);
            self.sample(&bucket, &with(labels, &[("le", &le)]), *cumulative);
        }
        self.sample(&bucket, &with(labels, &[("le", "+Inf")]), histogram.count);
        self.sample(&format!("{name}_sum"), labels, histogram.sum);
        self.sample(&format!("{name}_count"), labels, histogram.count);
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

/// Binds `listen` and serves `/metrics` and `/healthz` until dropped. Must run inside a
/// `LocalSet` (see the module doc). Fails only if `listen` cannot be bound.
pub async fn serve(listen: SocketAddr, status: watch::Receiver<Status>) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    serve_on(listener, status).await
}

/// [`serve`] on a listener bound by the caller (tests bind `127.0.0.1:0` and read the
/// port first). Must run inside a `LocalSet`.
pub async fn serve_listener(
    listener: std::net::TcpListener,
    status: watch::Receiver<Status>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    serve_on(TcpListener::from_std(listener)?, status).await
}

async fn serve_on(listener: TcpListener, status: watch::Receiver<Status>) -> io::Result<()> {
    // Owned here so that dropping the serve future aborts the connections still open.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            connections.join_next().await;
            continue;
        }
        match listener.accept().await {
            Ok((stream, peer)) => {
                connections.spawn_local(connection(stream, peer, status.clone()));
            }
            Err(error) => {
                warn!(%error, "metrics: accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, status: watch::Receiver<Status>) {
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(request.method(), request.uri().path(), &status);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_BUF_SIZE)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_DEADLINE, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(%peer, %error, "metrics: connection failed"),
        Err(_) => debug!(%peer, "metrics: connection closed at its deadline"),
    }
}

/// The response to one request; only reads the latest snapshot.
fn respond(method: &Method, path: &str, status: &watch::Receiver<Status>) -> Response<Full<Bytes>> {
    if path != "/metrics" && path != "/healthz" {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        let allow = HeaderValue::from_static("GET, HEAD");
        response.headers_mut().insert(header::ALLOW, allow);
        return response;
    }
    // `has_changed` fails once the daemon dropped its sender.
    let open = status.has_changed().is_ok();
    if path == "/healthz" {
        return if open {
            text(StatusCode::OK, "ok")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "status channel closed\n")
        };
    }
    let body = if open {
        // Clone under the borrow, render after releasing it.
        let snapshot = status.borrow().clone();
        render(&snapshot)
    } else {
        render_down()
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let content_type = HeaderValue::from_static(CONTENT_TYPE);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

fn text(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = code;
    let content_type = HeaderValue::from_static("text/plain; charset=utf-8");
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::status::{CheckStatus, HookStatus, LATENCY_BOUNDS};

    fn instance(name: &str, state: &str, vips: &[&str]) -> InstanceStatus {
        InstanceStatus {
            name: name.to_owned(),
            interface: "eth0".to_owned(),
            vrid: 51,
            family: "IPv4".to_owned(),
            version: 3,
            state: state.to_owned(),
            base_priority: 100,
            effective_priority: Some(110),
            vips: vips.iter().map(|v| v.to_string()).collect(),
            ..InstanceStatus::default()
        }
    }

    fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn state_codes_follow_keepalived_exporter() {
        assert_eq!(state_code("INIT"), Some(0));
        assert_eq!(state_code("BACKUP"), Some(1));
        assert_eq!(state_code("MASTER"), Some(2));
        assert_eq!(state_code("FAULT"), Some(3));
        assert_eq!(state_code("master"), None);
    }

    #[test]
    fn vip_labels_take_the_address_and_an_own_device() {
        assert_eq!(
            vip_labels("192.0.2.50/24", "eth0"),
            ("192.0.2.50/24", "eth0")
        );
        assert_eq!(
            vip_labels("192.0.2.51/24 dev eth1 scope global", "eth0"),
            ("192.0.2.51/24", "eth1")
        );
        assert_eq!(
            vip_labels("2001:db8::1/64 dev", "eth0"),
            ("2001:db8::1/64", "eth0")
        );
        assert_eq!(vip_labels("", "eth0"), ("", "eth0"));
    }

    #[test]
    fn one_state_series_per_vip_and_an_empty_address_without_vips() {
        let status = Status {
            instances: vec![
                instance(
                    "web",
                    "MASTER",
                    &["192.0.2.50/24", "192.0.2.51/24 dev eth1"],
                ),
                instance("bare", "BACKUP", &[]),
                instance("odd", "WEIRD", &["192.0.2.60/24"]),
            ],
            ..Status::default()
        };
        let text = render(&status);
        assert_eq!(
            lines_of(&text, "keepalived_vrrp_state{"),
            [
                "keepalived_vrrp_state{iname=\"web\",intf=\"eth0\",vrid=\"51\",ip_address=\"192.0.2.50/24\"} 2",
                "keepalived_vrrp_state{iname=\"web\",intf=\"eth1\",vrid=\"51\",ip_address=\"192.0.2.51/24\"} 2",
                "keepalived_vrrp_state{iname=\"bare\",intf=\"eth0\",vrid=\"51\",ip_address=\"\"} 1",
            ]
        );
        // An unknown state string has no code: no state series rather than a wrong one.
        assert!(!text.contains("vipkeeper_instance_state{iname=\"odd\""));
    }

    #[test]
    fn error_counters_sum_their_reasons_and_default_to_zero() {
        let mut web = instance("web", "BACKUP", &["192.0.2.50/24"]);
        web.counters.dropped.insert("length_mismatch".into(), 2);
        web.counters.dropped.insert("too_short".into(), 3);
        web.counters.dropped.insert("ttl_not_255".into(), 7);
        web.counters.dropped.insert("own_advert".into(), 9);
        let status = Status {
            instances: vec![web],
            ..Status::default()
        };
        let text = render(&status);
        let labels = "{iname=\"web\",intf=\"eth0\",vrid=\"51\"}";
        for (name, value) in [
            ("keepalived_packet_length_errors_total", 5),
            ("keepalived_ip_ttl_errors_total", 7),
            ("keepalived_advertisements_interval_errors_total", 0),
            ("keepalived_authentication_mismatch_total", 0),
        ] {
            assert!(
                text.contains(&format!("\n{name}{labels} {value}\n")),
                "{name}"
            );
        }
        assert!(text.contains(
            "vipkeeper_adverts_dropped_total{iname=\"web\",intf=\"eth0\",vrid=\"51\",reason=\"own_advert\"} 9\n"
        ));
        assert!(!text.contains("keepalived_address_list_errors_total"));
    }

    #[test]
    fn drops_matching_no_instance_have_a_family_of_their_own() {
        let mut status = Status::default();
        status.unmatched_dropped.insert("unknown_vrid".into(), 4);
        let text = render(&status);
        assert!(text.contains("# TYPE vipkeeper_unmatched_packets_dropped_total counter\n"));
        assert!(text
            .contains("\nvipkeeper_unmatched_packets_dropped_total{reason=\"unknown_vrid\"} 4\n"));
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
        let status = Status {
            checks: vec![CheckStatus {
                name: "we\"ird\\name\n".to_owned(),
                kind: "exec".to_owned(),
                state: "up".to_owned(),
                ..CheckStatus::default()
            }],
            ..Status::default()
        };
        let text = render(&status);
        assert!(
            text.contains("vipkeeper_check_up{check=\"we\\\"ird\\\\name\\n\",type=\"exec\"} 1\n")
        );
    }

    #[test]
    fn histograms_have_buckets_inf_sum_and_count() {
        let mut latency = Histogram::with_bounds(LATENCY_BOUNDS);
        latency.observe(0.003);
        latency.observe(0.2);
        latency.observe(30.0);
        let status = Status {
            checks: vec![
                CheckStatus {
                    name: "haproxy".to_owned(),
                    kind: "haproxy".to_owned(),
                    state: "up".to_owned(),
                    latency,
                    ..CheckStatus::default()
                },
                // Not polled: no latency series at all.
                CheckStatus {
                    name: "flag".to_owned(),
                    kind: "file".to_owned(),
                    state: "unknown".to_owned(),
                    ..CheckStatus::default()
                },
            ],
            ..Status::default()
        };
        let text = render(&status);
        let buckets = lines_of(&text, "vipkeeper_check_latency_seconds_bucket{");
        assert_eq!(buckets.len(), LATENCY_BOUNDS.len() + 1);
        assert_eq!(
            buckets[0],
            "vipkeeper_check_latency_seconds_bucket{check=\"haproxy\",type=\"haproxy\",le=\"0.001\"} 0"
        );
        assert_eq!(
            buckets[1],
            "vipkeeper_check_latency_seconds_bucket{check=\"haproxy\",type=\"haproxy\",le=\"0.005\"} 1"
        );
        assert!(buckets.contains(
            &"vipkeeper_check_latency_seconds_bucket{check=\"haproxy\",type=\"haproxy\",le=\"10\"} 2"
        ));
        assert_eq!(
            buckets[LATENCY_BOUNDS.len()],
            "vipkeeper_check_latency_seconds_bucket{check=\"haproxy\",type=\"haproxy\",le=\"+Inf\"} 3"
        );
        assert!(text.contains(
            "vipkeeper_check_latency_seconds_sum{check=\"haproxy\",type=\"haproxy\"} 30.203\n"
        ));
        assert!(text.contains(
            "vipkeeper_check_latency_seconds_count{check=\"haproxy\",type=\"haproxy\"} 3\n"
        ));
        assert!(!text.contains("check=\"flag\",type=\"file\",le="));
        // Not graded yet: no up/down series either.
        assert!(!text.contains("vipkeeper_check_up{check=\"flag\""));
    }

    #[test]
    fn hooks_export_runs_by_result() {
        let status = Status {
            hooks: vec![HookStatus {
                scope: "INSTANCE".to_owned(),
                owner: "web".to_owned(),
                state: "MASTER".to_owned(),
                hook: "haproxy_reload".to_owned(),
                ok: false,
                succeeded: 4,
                failed: 1,
                duration_seconds: 0.25,
                at_unix_ms: 1_700_000_000_500,
                ..HookStatus::default()
            }],
            ..Status::default()
        };
        let text = render(&status);
        let labels = "scope=\"INSTANCE\",owner=\"web\",state=\"MASTER\",hook=\"haproxy_reload\"";
        assert!(text.contains(&format!(
            "vipkeeper_hook_runs_total{{{labels},result=\"ok\"}} 4\n"
        )));
        assert!(text.contains(&format!(
            "vipkeeper_hook_runs_total{{{labels},result=\"failed\"}} 1\n"
        )));
        assert!(text.contains(&format!("vipkeeper_hook_last_success{{{labels}}} 0\n")));
        assert!(text.contains(&format!(
            "vipkeeper_hook_last_run_timestamp_seconds{{{labels}}} 1700000000.5\n"
        )));
    }

    #[test]
    fn every_family_has_help_and_type_once_and_its_samples_follow() {
        let status = Status {
            instances: vec![instance("web", "MASTER", &["192.0.2.50/24"])],
            ..Status::default()
        };
        let text = render(&status);
        let mut seen = std::collections::BTreeSet::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_owned();
                assert!(seen.insert(name.clone()), "{name} twice");
                current = name;
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| *f == current))
                    .unwrap_or(name);
                assert_eq!(family, current, "{line}");
            }
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn floats_use_prometheus_spelling() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
    }

    #[test]
    fn down_shows_only_keepalived_up_zero() {
        let text = render_down();
        assert_eq!(lines_of(&text, "keepalived"), ["keepalived_up 0"]);
    }
}
