//! `/metrics` and `/healthz` over real TCP: the server runs as the daemon runs it (a
//! current-thread runtime on a `LocalSet`, on its own thread here), bound to 127.0.0.1:0;
//! the test scrapes it with a plain `std::net::TcpStream` HTTP/1.1 GET and parses the
//! exposition text with the small parser below. Nothing leaves the loopback interface.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use vipkeeper::control::metrics;
use vipkeeper::control::status::{
    CheckStatus, GroupStatus, Histogram, HookStatus, InstanceCounters, InstanceStatus,
    ReloadStatus, Status, TrackStatus, TransitionStatus, LATENCY_BOUNDS, LATENESS_BOUNDS,
};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response read; a scrape of this snapshot is a few KiB.
const MAX_RESPONSE: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------
// The server on its own thread, stopped (and joined) on drop.
// ---------------------------------------------------------------------------------------

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(status: watch::Receiver<Status>) -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                tokio::select! {
                    result = metrics::serve_listener(listener, status) => {
                        panic!("the metrics server ended: {result:?}")
                    }
                    _ = stopped => {}
                }
            });
        });
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = self.thread.take().unwrap().join();
        if !std::thread::panicking() {
            result.expect("server thread panicked");
        }
    }
}

// ---------------------------------------------------------------------------------------
// A plain HTTP/1.1 client.
// ---------------------------------------------------------------------------------------

struct HttpResponse {
    code: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

fn request(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: metrics-test\r\n\r\n"
    )
    .unwrap();
    // The server serves one request per connection and closes it.
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .expect("read the response");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header end");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut words = status_line.split(' ');
    assert_eq!(words.next(), Some("HTTP/1.1"), "{status_line}");
    let code = words.next().unwrap().parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    if method != "HEAD" {
        let length: usize = headers["content-length"].parse().unwrap();
        assert_eq!(body.len(), length, "Content-Length");
    }
    HttpResponse {
        code,
        headers,
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path)
}

// ---------------------------------------------------------------------------------------
// A small exposition-format parser.
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

struct Scrape {
    /// Family name to TYPE.
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => text
            .parse()
            .unwrap_or_else(|_| panic!("bad value {text:?}")),
    }
}

/// One sample line: `name{k="v",...} value`, label values with `\\`, `\"`, `\n` escapes.
fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).expect("a name");
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        loop {
            let (start, c) = chars.next().expect("unterminated labels");
            if c == '}' {
                rest = &after_brace[start + 1..];
                break;
            }
            if c == ',' {
                continue;
            }
            let mut key = String::from(c);
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
            let mut value = String::new();
            loop {
                match chars.next().expect("unterminated label value").1 {
                    '"' => break,
                    '\\' => match chars.next().expect("dangling escape").1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => panic!("unknown escape \\{other} in {line}"),
                    },
                    c => value.push(c),
                }
            }
            assert!(labels.insert(key, value).is_none(), "label twice: {line}");
        }
    }
    let value = rest.strip_prefix(' ').expect("a space before the value");
    Sample {
        name,
        labels,
        value: parse_value(value),
    }
}

/// Parses and checks the structure: HELP then TYPE once per family, the family's samples
/// right after it, no series twice.
fn parse(text: &str) -> Scrape {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    let mut family = String::new();
    let mut series = BTreeSet::new();
    let mut last_help = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            last_help = Some(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(last_help.as_deref(), Some(name), "HELP before TYPE");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{name} twice"
            );
            family = name.to_owned();
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let sample = parse_sample(line);
            let base = if types[&family] == "histogram" {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| sample.name.strip_suffix(s))
                    .unwrap_or(&sample.name)
            } else {
                &sample.name
            };
            assert_eq!(base, family, "a sample outside its family: {line}");
            if types[&family] == "counter" {
                assert!(family.ends_with("_total"), "{family}");
            }
            assert!(
                series.insert((sample.name.clone(), sample.labels.clone())),
                "series twice: {line}"
            );
            samples.push(sample);
        }
    }
    Scrape { types, samples }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Scrape {
    fn series(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    fn find(&self, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        let wanted = labels(pairs);
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// The value of the one series `name{pairs}` (exactly these labels).
    fn value(&self, name: &str, pairs: &[(&str, &str)]) -> f64 {
        self.find(name, pairs)
            .unwrap_or_else(|| panic!("no series {name}{pairs:?}"))
    }

    /// Every histogram: ascending `le`, non-decreasing buckets, `+Inf` equal to `_count`,
    /// a `_sum`. Returns how many histogram series were checked.
    fn check_histograms(&self) -> usize {
        let mut checked = 0;
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let mut by_series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> =
                BTreeMap::new();
            for sample in self.series(&format!("{family}_bucket")) {
                let mut labels = sample.labels.clone();
                let le = parse_value(&labels.remove("le").expect("an le label"));
                by_series
                    .entry(labels)
                    .or_default()
                    .push((le, sample.value));
            }
            for (labels, buckets) in by_series {
                for pair in buckets.windows(2) {
                    assert!(
                        pair[0].0 < pair[1].0,
                        "{family}{labels:?}: le not ascending"
                    );
                    assert!(
                        pair[0].1 <= pair[1].1,
                        "{family}{labels:?}: buckets decrease"
                    );
                }
                let (last_le, last_count) = *buckets.last().unwrap();
                assert_eq!(last_le, f64::INFINITY, "{family}{labels:?}: no +Inf bucket");
                let pairs: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(
                    self.value(&format!("{family}_count"), &pairs),
                    last_count,
                    "{family}{labels:?}: +Inf != count"
                );
                self.value(&format!("{family}_sum"), &pairs);
                checked += 1;
            }
        }
        checked
    }
}

// ---------------------------------------------------------------------------------------
// A realistic snapshot: web MASTER with 2 VIPs, db FAULT by a weight-0 check.
// ---------------------------------------------------------------------------------------

fn histogram(bounds: &[f64], observations: &[f64]) -> Histogram {
    let mut histogram = Histogram::with_bounds(bounds);
    for seconds in observations {
        histogram.observe(*seconds);
    }
    histogram
}

fn snapshot() -> Status {
    let dropped: BTreeMap<String, u64> = [
        ("length_mismatch", 1),
        ("too_short", 2),
        ("interval_mismatch", 3),
        ("ttl_not_255", 4),
        ("bad_type", 5),
        ("auth_mismatch", 6),
        ("own_advert", 7),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let web = InstanceStatus {
        name: "web".into(),
        interface: "eth0".into(),
        vrid: 51,
        family: "IPv4".into(),
        version: 3,
        state: "MASTER".into(),
        base_priority: 100,
        effective_priority: Some(110),
        tracks: vec![TrackStatus {
            check: "haproxy".into(),
            weight: 10,
            reverse: false,
            contribution: Some(10),
        }],
        master_address: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11))),
        vips: vec!["192.0.2.50/24".into(), "192.0.2.51/24".into()],
        holds_vips: true,
        last_transition: Some(TransitionStatus {
            from: "BACKUP".into(),
            to: "MASTER".into(),
            reason: "master down".into(),
            at_unix_ms: 1_764_000_000_250,
        }),
        held_back: false,
        counters: InstanceCounters {
            adverts_sent: 3600,
            adverts_received: 12,
            became_master: 2,
            released_master: 1,
            priority_zero_sent: 1,
            priority_zero_received: 1,
            transitions: 4,
            dropped,
        },
        advert_lateness: histogram(LATENESS_BOUNDS, &[0.00005, 0.0003, 0.0003, 0.004, 2.0]),
    };
    let db = InstanceStatus {
        name: "db".into(),
        interface: "eth1".into(),
        vrid: 52,
        family: "IPv4".into(),
        version: 2,
        state: "FAULT".into(),
        base_priority: 90,
        effective_priority: None,
        tracks: vec![TrackStatus {
            check: "mysql".into(),
            weight: 0,
            reverse: false,
            contribution: None,
        }],
        master_address: None,
        vips: vec!["198.51.100.60/24".into()],
        holds_vips: false,
        last_transition: None,
        held_back: false,
        counters: InstanceCounters {
            adverts_received: 40,
            transitions: 1,
            ..InstanceCounters::default()
        },
        advert_lateness: Histogram::with_bounds(LATENESS_BOUNDS),
    };
    Status {
        node: "lb1".into(),
        version: "0.1.0".into(),
        uptime_seconds: 3600,
        maintenance: false,
        instances: vec![web, db],
        groups: vec![GroupStatus {
            name: "front".into(),
            instances: vec!["web".into()],
            state: "MASTER".into(),
        }],
        checks: vec![
            CheckStatus {
                name: "haproxy".into(),
                kind: "haproxy".into(),
                state: "up".into(),
                last_result: Some("2/2 servers up".into()),
                fraction: Some(1.0),
                value: None,
                latency: histogram(LATENCY_BOUNDS, &[0.002, 0.002, 0.03, 0.3]),
                runs: 4,
                failures: 0,
            },
            CheckStatus {
                name: "mysql".into(),
                kind: "mysql".into(),
                state: "down".into(),
                last_result: Some("connection refused".into()),
                fraction: None,
                value: None,
                latency: histogram(LATENCY_BOUNDS, &[0.0005, 12.0]),
                runs: 2,
                failures: 2,
            },
            CheckStatus {
                name: "maintenance_flag".into(),
                kind: "file".into(),
                state: "up".into(),
                last_result: None,
                fraction: None,
                value: Some(-3),
                latency: Histogram::default(),
                runs: 1,
                failures: 0,
            },
        ],
        hooks: vec![
            HookStatus {
                scope: "INSTANCE".into(),
                owner: "web".into(),
                state: "MASTER".into(),
                hook: "haproxy_reload".into(),
                ok: true,
                detail: "reloaded".into(),
                duration_seconds: 0.125,
                at_unix_ms: 1_764_000_000_500,
                succeeded: 3,
                failed: 0,
            },
            HookStatus {
                scope: "INSTANCE".into(),
                owner: "db".into(),
                state: "FAULT".into(),
                hook: "notify \"pager\"".into(),
                ok: false,
                detail: "exit status 1".into(),
                duration_seconds: 1.5,
                at_unix_ms: 1_764_000_001_000,
                succeeded: 1,
                failed: 2,
            },
        ],
        reloads: ReloadStatus {
            succeeded: 2,
            failed: 1,
            last_error: Some("instance[0].vrid: 0 is not allowed".into()),
        },
        unmatched_dropped: Default::default(),
    }
}

const WEB: [(&str, &str); 3] = [("iname", "web"), ("intf", "eth0"), ("vrid", "51")];
const DB: [(&str, &str); 3] = [("iname", "db"), ("intf", "eth1"), ("vrid", "52")];

fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(extra).copied().collect()
}

fn scrape(addr: SocketAddr) -> Scrape {
    let response = get(addr, "/metrics");
    assert_eq!(response.code, 200);
    assert_eq!(
        response.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse(&response.body)
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn metrics_keepalived_exporter_names_labels_and_states() {
    let (_tx, rx) = watch::channel(snapshot());
    let server = Server::start(rx);
    let scrape = scrape(server.addr);

    assert_eq!(scrape.value("keepalived_up", &[]), 1.0);

    // One state series per VIP: 2 for web's VIPs (MASTER), 3 for db (FAULT).
    assert_eq!(scrape.series("keepalived_vrrp_state").len(), 3);
    for vip in ["192.0.2.50/24", "192.0.2.51/24"] {
        let labels = with(&WEB, &[("ip_address", vip)]);
        assert_eq!(scrape.value("keepalived_vrrp_state", &labels), 2.0, "{vip}");
    }
    let labels = with(&DB, &[("ip_address", "198.51.100.60/24")]);
    assert_eq!(scrape.value("keepalived_vrrp_state", &labels), 3.0);
    assert_eq!(scrape.types["keepalived_vrrp_state"], "gauge");

    for (name, web, db) in [
        ("keepalived_advertisements_sent_total", 3600.0, 0.0),
        ("keepalived_advertisements_received_total", 12.0, 40.0),
        ("keepalived_become_master_total", 2.0, 0.0),
        ("keepalived_release_master_total", 1.0, 0.0),
        ("keepalived_priority_zero_sent_total", 1.0, 0.0),
        ("keepalived_priority_zero_received_total", 1.0, 0.0),
        // length_mismatch 1 + too_short 2.
        ("keepalived_packet_length_errors_total", 3.0, 0.0),
        ("keepalived_advertisements_interval_errors_total", 3.0, 0.0),
        ("keepalived_ip_ttl_errors_total", 4.0, 0.0),
        ("keepalived_invalid_type_received_total", 5.0, 0.0),
        ("keepalived_authentication_mismatch_total", 6.0, 0.0),
        ("keepalived_authentication_invalid_total", 0.0, 0.0),
    ] {
        assert_eq!(scrape.types[name], "counter", "{name}");
        assert_eq!(scrape.value(name, &WEB), web, "{name} web");
        assert_eq!(scrape.value(name, &DB), db, "{name} db");
    }
    // Not counted by vipkeeper (accepted with a warning): not exported at all.
    assert!(!scrape
        .types
        .contains_key("keepalived_address_list_errors_total"));

    assert_eq!(
        scrape.value("keepalived_script_status", &[("name", "haproxy")]),
        1.0
    );
    assert_eq!(
        scrape.value("keepalived_script_status", &[("name", "mysql")]),
        0.0
    );
}

#[test]
fn metrics_vipkeeper_families() {
    let (_tx, rx) = watch::channel(snapshot());
    let server = Server::start(rx);
    let scrape = scrape(server.addr);

    let build = [("version", "0.1.0"), ("node", "lb1")];
    assert_eq!(scrape.value("vipkeeper_build_info", &build), 1.0);
    assert_eq!(scrape.value("vipkeeper_uptime_seconds", &[]), 3600.0);
    assert_eq!(scrape.value("vipkeeper_maintenance", &[]), 0.0);

    // Priorities: db has no effective priority while mysql (weight 0) holds it in FAULT.
    assert_eq!(
        scrape.value("vipkeeper_instance_base_priority", &WEB),
        100.0
    );
    assert_eq!(
        scrape.value("vipkeeper_instance_effective_priority", &WEB),
        110.0
    );
    assert_eq!(scrape.value("vipkeeper_instance_base_priority", &DB), 90.0);
    assert_eq!(
        scrape.find("vipkeeper_instance_effective_priority", &DB),
        None
    );
    let haproxy = with(&WEB, &[("check", "haproxy")]);
    assert_eq!(scrape.value("vipkeeper_track_contribution", &haproxy), 10.0);
    assert_eq!(scrape.series("vipkeeper_track_contribution").len(), 1);

    assert_eq!(scrape.value("vipkeeper_instance_state", &WEB), 2.0);
    assert_eq!(scrape.value("vipkeeper_instance_state", &DB), 3.0);
    let info = with(&DB, &[("family", "IPv4"), ("version", "2")]);
    assert_eq!(scrape.value("vipkeeper_instance_info", &info), 1.0);
    assert_eq!(scrape.value("vipkeeper_instance_holds_vips", &WEB), 1.0);
    assert_eq!(scrape.value("vipkeeper_instance_holds_vips", &DB), 0.0);
    assert_eq!(scrape.value("vipkeeper_instance_held_back", &WEB), 0.0);
    assert_eq!(
        scrape.value("vipkeeper_instance_transitions_total", &WEB),
        4.0
    );
    assert_eq!(
        scrape.value("vipkeeper_instance_transitions_total", &DB),
        1.0
    );
    let at = "vipkeeper_instance_last_transition_timestamp_seconds";
    assert_eq!(scrape.value(at, &WEB), 1_764_000_000.25);
    assert_eq!(scrape.find(at, &DB), None);
    assert_eq!(
        scrape.value("vipkeeper_group_state", &[("group", "front")]),
        2.0
    );

    // Every drop reason, including those keepalived has no counter for.
    let dropped = scrape.series("vipkeeper_adverts_dropped_total");
    assert_eq!(dropped.len(), 7);
    let own = with(&WEB, &[("reason", "own_advert")]);
    assert_eq!(scrape.value("vipkeeper_adverts_dropped_total", &own), 7.0);

    // Advert lateness: 0.00005, 0.0003 ×2, 0.004, 2.0 (beyond the last bound).
    let lateness = "vipkeeper_advert_send_lateness_seconds";
    assert_eq!(scrape.types[lateness], "histogram");
    let bucket = |le| with(&WEB, &[("le", le)]);
    let name = format!("{lateness}_bucket");
    assert_eq!(scrape.value(&name, &bucket("0.0001")), 1.0);
    assert_eq!(scrape.value(&name, &bucket("0.0005")), 3.0);
    assert_eq!(scrape.value(&name, &bucket("0.005")), 4.0);
    assert_eq!(scrape.value(&name, &bucket("1")), 4.0);
    assert_eq!(scrape.value(&name, &bucket("+Inf")), 5.0);
    assert_eq!(scrape.value(&format!("{lateness}_count"), &WEB), 5.0);
    let sum = scrape.value(&format!("{lateness}_sum"), &WEB);
    assert!((sum - 2.00465).abs() < 1e-9, "{sum}");
    assert_eq!(scrape.value(&format!("{lateness}_count"), &DB), 0.0);

    // Checks.
    let check = |name, kind| [("check", name), ("type", kind)];
    assert_eq!(
        scrape.value("vipkeeper_check_up", &check("haproxy", "haproxy")),
        1.0
    );
    assert_eq!(
        scrape.value("vipkeeper_check_up", &check("mysql", "mysql")),
        0.0
    );
    let flag = check("maintenance_flag", "file");
    assert_eq!(scrape.value("vipkeeper_check_up", &flag), 1.0);
    assert_eq!(scrape.value("vipkeeper_check_value", &flag), -3.0);
    let mysql = check("mysql", "mysql");
    assert_eq!(scrape.value("vipkeeper_check_runs_total", &mysql), 2.0);
    assert_eq!(scrape.value("vipkeeper_check_failures_total", &mysql), 2.0);
    let haproxy = check("haproxy", "haproxy");
    assert_eq!(scrape.value("vipkeeper_check_fraction", &haproxy), 1.0);
    let latency = "vipkeeper_check_latency_seconds_bucket";
    let le = |le| with(&mysql, &[("le", le)]);
    assert_eq!(scrape.value(latency, &le("0.001")), 1.0);
    assert_eq!(scrape.value(latency, &le("10")), 1.0);
    assert_eq!(scrape.value(latency, &le("+Inf")), 2.0);
    let le = |le| with(&haproxy, &[("le", le)]);
    assert_eq!(scrape.value(latency, &le("0.005")), 2.0);
    assert_eq!(scrape.value(latency, &le("0.05")), 3.0);
    assert_eq!(scrape.value(latency, &le("0.5")), 4.0);
    // The file check is not polled: no latency histogram.
    let flag_latency = with(&flag, &[("le", "+Inf")]);
    assert_eq!(scrape.find(latency, &flag_latency), None);

    // Histograms: web and db lateness, haproxy and mysql latency.
    assert_eq!(scrape.check_histograms(), 4);

    // Hooks (label values escaped and unescaped back) and reloads.
    let reload = [
        ("scope", "INSTANCE"),
        ("owner", "web"),
        ("state", "MASTER"),
        ("hook", "haproxy_reload"),
    ];
    let pager = [
        ("scope", "INSTANCE"),
        ("owner", "db"),
        ("state", "FAULT"),
        ("hook", "notify \"pager\""),
    ];
    let runs = "vipkeeper_hook_runs_total";
    assert_eq!(scrape.value(runs, &with(&reload, &[("result", "ok")])), 3.0);
    assert_eq!(
        scrape.value(runs, &with(&reload, &[("result", "failed")])),
        0.0
    );
    assert_eq!(scrape.value(runs, &with(&pager, &[("result", "ok")])), 1.0);
    assert_eq!(
        scrape.value(runs, &with(&pager, &[("result", "failed")])),
        2.0
    );
    assert_eq!(scrape.value("vipkeeper_hook_last_success", &reload), 1.0);
    assert_eq!(scrape.value("vipkeeper_hook_last_success", &pager), 0.0);
    assert_eq!(
        scrape.value("vipkeeper_hook_last_duration_seconds", &pager),
        1.5
    );
    let reloads = "vipkeeper_reloads_total";
    assert_eq!(scrape.value(reloads, &[("result", "ok")]), 2.0);
    assert_eq!(scrape.value(reloads, &[("result", "failed")]), 1.0);
}

#[test]
fn healthz_unknown_paths_and_methods() {
    let (_tx, rx) = watch::channel(snapshot());
    let server = Server::start(rx);

    let health = get(server.addr, "/healthz");
    assert_eq!((health.code, health.body.as_str()), (200, "ok"));
    assert_eq!(get(server.addr, "/").code, 404);
    assert_eq!(get(server.addr, "/metricsx").code, 404);
    assert_eq!(get(server.addr, "/metrics?name=keepalived_up").code, 200);
    let post = request(server.addr, "POST", "/metrics");
    assert_eq!(post.code, 405);
    assert_eq!(post.headers["allow"], "GET, HEAD");
    let head = request(server.addr, "HEAD", "/healthz");
    assert_eq!((head.code, head.body.as_str()), (200, ""));
}

#[test]
fn a_snapshot_update_shows_in_the_next_scrape() {
    let (tx, rx) = watch::channel(snapshot());
    let server = Server::start(rx);
    let before = scrape(server.addr);
    let vip = with(&WEB, &[("ip_address", "192.0.2.50/24")]);
    assert_eq!(before.value("keepalived_vrrp_state", &vip), 2.0);

    tx.send_modify(|status| {
        let web = &mut status.instances[0];
        web.state = "BACKUP".into();
        web.holds_vips = false;
        web.counters.released_master += 1;
        web.counters.transitions += 1;
        web.advert_lateness.observe(0.0002);
        status.reloads.succeeded += 1;
    });

    let after = scrape(server.addr);
    assert_eq!(after.value("keepalived_vrrp_state", &vip), 1.0);
    assert_eq!(after.value("vipkeeper_instance_holds_vips", &WEB), 0.0);
    assert_eq!(after.value("keepalived_release_master_total", &WEB), 2.0);
    assert_eq!(
        after.value("vipkeeper_instance_transitions_total", &WEB),
        5.0
    );
    let count = "vipkeeper_advert_send_lateness_seconds_count";
    assert_eq!(after.value(count, &WEB), 6.0);
    assert_eq!(
        after.value("vipkeeper_reloads_total", &[("result", "ok")]),
        3.0
    );
    after.check_histograms();
}

#[test]
fn an_idle_connection_does_not_hold_up_a_scrape() {
    let (_tx, rx) = watch::channel(snapshot());
    let server = Server::start(rx);
    // Connected, nothing sent: the server waits for its headers on another task.
    let idle = TcpStream::connect_timeout(&server.addr, IO_TIMEOUT).unwrap();
    let mut partial = TcpStream::connect_timeout(&server.addr, IO_TIMEOUT).unwrap();
    partial.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    assert_eq!(scrape(server.addr).value("keepalived_up", &[]), 1.0);
    assert_eq!(get(server.addr, "/healthz").code, 200);
    drop((idle, partial));
}

#[test]
fn a_closed_snapshot_channel_reports_down() {
    let (tx, rx) = watch::channel(snapshot());
    let server = Server::start(rx);
    assert_eq!(get(server.addr, "/healthz").code, 200);
    drop(tx);

    let health = get(server.addr, "/healthz");
    assert_eq!(health.code, 503);
    let scrape = scrape(server.addr);
    assert_eq!(scrape.value("keepalived_up", &[]), 0.0);
    assert_eq!(scrape.samples.len(), 1, "{:?}", scrape.samples);
}
