//! The `haproxy` probe against a real HAProxy 2.6 in a lab node, and against stats sockets
//! that misbehave.
//!
//! The lab: node1 runs the HAProxy under test (`-db`, foreground) with its stats socket at
//! `/run/haproxy.sock` in the node's private /run and a backend `be_web` of three servers on
//! the lab's backend host; the backend host runs one tiny HAProxy per server (`http-request
//! return status 200`), so one can be killed alone. The probe runs in the test process and
//! reaches the socket through the node's root path (unix sockets are found through the file
//! system whatever the network namespace). Nothing listens outside the lab's namespaces.
//!
//! Needs root (namespaces) and `/usr/sbin/haproxy` (`scripts/install-deps`).

#[path = "lab/mod.rs"]
mod lab;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab::{Host, Lab, LabProcess, Signal};
use vipkeeper::health::haproxy::{probe, HaproxySettings, Judge, StatsTarget};
use vipkeeper::health::ProbeOutcome;

const HAPROXY: &str = "/usr/sbin/haproxy";
const TIMEOUT: Duration = Duration::from_millis(500);
/// Bound of every wait for HAProxy's checks to notice a change (inter 100ms, fall/rise 2:
/// about 300 ms are needed).
const SETTLE: Duration = Duration::from_secs(5);

fn web_server_cfg(port: u16) -> String {
    format!(
        "global\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend web\n    bind 198.51.100.200:{port}\n    http-request return status 200\n"
    )
}

const LB_CFG: &str = "global
    stats socket /run/haproxy.sock mode 600 level admin
    stats timeout 5s
defaults
    mode http
    timeout connect 200ms
    timeout check 200ms
    timeout client 5s
    timeout server 5s
frontend fe_web
    bind 192.0.2.11:80
    default_backend be_web
backend be_web
    option httpchk GET /
    server web1 198.51.100.200:8081 check inter 100ms fall 2 rise 2
    server web2 198.51.100.200:8082 check inter 100ms fall 2 rise 2
    server web3 198.51.100.200:8083 check inter 100ms fall 2 rise 2
";

fn start_web(backend: &Host, port: u16) -> LabProcess {
    let cfg = format!("/run/web{port}.cfg");
    backend
        .write_file(Path::new(&cfg), web_server_cfg(port).as_bytes())
        .expect("write web cfg");
    backend
        .spawn(&[HAPROXY, "-db", "-f", &cfg], &[])
        .expect("spawn web server")
}

fn settings(socket: &Path, backend: Option<&str>, judge: Judge) -> HaproxySettings {
    HaproxySettings {
        target: StatsTarget::Unix(socket.to_path_buf()),
        backend: backend.map(str::to_owned),
        judge,
    }
}

/// Polls until `want` holds, at most `SETTLE`; returns the last outcome and the time taken.
async fn wait_for(
    s: &HaproxySettings,
    want: impl Fn(&ProbeOutcome) -> bool,
) -> (ProbeOutcome, Duration) {
    let started = Instant::now();
    loop {
        let outcome = probe(s, TIMEOUT).await;
        if want(&outcome) || started.elapsed() > SETTLE {
            return (outcome, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One admin command on the stats socket (the test's own client, not the probe).
fn admin(socket: &Path, command: &str) -> String {
    let mut conn = UnixStream::connect(socket).expect("admin connect");
    conn.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    conn.write_all(format!("{command}\n").as_bytes())
        .expect("admin send");
    let mut reply = String::new();
    conn.read_to_string(&mut reply).expect("admin read");
    reply
}

fn fraction(outcome: &ProbeOutcome) -> Option<f64> {
    match outcome {
        ProbeOutcome::Graded { fraction, .. } => Some(*fraction),
        _ => None,
    }
}

fn reason(outcome: &ProbeOutcome) -> &str {
    match outcome {
        ProbeOutcome::Down { reason } => reason,
        _ => "",
    }
}

#[tokio::test]
async fn real_haproxy_backend_states() {
    let lab = Lab::builder("hap-probe")
        .nodes(1)
        .backend(true)
        .build()
        .expect("lab");
    let node = lab.node(1);
    let backend = lab.backend();
    let _web1 = start_web(backend, 8081);
    let mut web2 = start_web(backend, 8082);
    let _web3 = start_web(backend, 8083);
    node.write_file(Path::new("/run/haproxy.cfg"), LB_CFG.as_bytes())
        .expect("write cfg");
    let mut lb = node
        .spawn(&[HAPROXY, "-db", "-f", "/run/haproxy.cfg"], &[])
        .expect("spawn haproxy");
    let socket: PathBuf = node.root_path(Path::new("/run/haproxy.sock"));

    let min3 = settings(&socket, Some("be_web"), Judge::MinUp(3));
    let graded = settings(&socket, Some("be_web"), Judge::Graded);

    // All three up (servers start `UP 1/2`-ish until checked; wait for the checks).
    let (outcome, took) = wait_for(&min3, |o| *o == ProbeOutcome::Up).await;
    assert_eq!(
        outcome,
        ProbeOutcome::Up,
        "after {took:?}; lb stderr: {}\n{}",
        lb.stderr(),
        lab.diagnostics()
    );
    eprintln!("all up after {took:?}");
    assert_eq!(fraction(&probe(&graded, TIMEOUT).await), Some(1.0));
    let alone = settings(&socket, None, Judge::MinUp(1));
    assert_eq!(probe(&alone, TIMEOUT).await, ProbeOutcome::Up);
    let missing = settings(&socket, Some("be_x"), Judge::MinUp(1));
    assert_eq!(
        probe(&missing, TIMEOUT).await,
        ProbeOutcome::down("no backend be_x in show stat")
    );
    // A frontend is not a backend.
    let frontend = settings(&socket, Some("fe_web"), Judge::MinUp(1));
    assert_eq!(
        probe(&frontend, TIMEOUT).await,
        ProbeOutcome::down("no backend fe_web in show stat")
    );

    // Stop web2's real server: once its checks fail, 2 of 3.
    let stopped = Instant::now();
    web2.kill(Signal::Kill).expect("kill web2");
    let (outcome, _) = wait_for(&min3, |o| *o != ProbeOutcome::Up).await;
    let noticed = stopped.elapsed();
    eprintln!("web2 stop noticed after {noticed:?}: {outcome:?}");
    assert_eq!(
        reason(&outcome),
        "be_web: 2 of 3 servers usable (web2 DOWN)",
        "{outcome:?}"
    );
    let g = probe(&graded, TIMEOUT).await;
    let f = fraction(&g).expect("graded");
    assert!((f - 2.0 / 3.0).abs() < 1e-9, "{g:?}");
    assert_eq!(
        probe(&settings(&socket, Some("be_web"), Judge::MinUp(2)), TIMEOUT).await,
        ProbeOutcome::Up
    );

    // web2 back; then web2 in maintenance and web3 drained by the admin socket.
    let _web2 = start_web(backend, 8082);
    let (outcome, took) = wait_for(&min3, |o| *o == ProbeOutcome::Up).await;
    assert_eq!(
        outcome,
        ProbeOutcome::Up,
        "web2 did not rise within {took:?}"
    );
    assert_eq!(admin(&socket, "disable server be_web/web2").trim(), "");
    assert_eq!(
        admin(&socket, "set server be_web/web3 state drain").trim(),
        ""
    );
    let min2 = settings(&socket, Some("be_web"), Judge::MinUp(2));
    let outcome = probe(&min2, TIMEOUT).await;
    assert_eq!(
        reason(&outcome),
        "be_web: 1 of 3 servers usable (web2 MAINT, web3 DRAIN)"
    );
    let g = probe(&graded, TIMEOUT).await;
    assert!(
        (fraction(&g).expect("graded") - 1.0 / 3.0).abs() < 1e-9,
        "{g:?}"
    );
    // And back to ready: usable again at once (admin state, no check needed).
    admin(&socket, "enable server be_web/web2");
    admin(&socket, "set server be_web/web3 state ready");
    let (outcome, _) = wait_for(&min3, |o| *o == ProbeOutcome::Up).await;
    assert_eq!(outcome, ProbeOutcome::Up);

    // HAProxy killed: Down at once, saying the socket is refused or gone.
    lb.kill(Signal::Kill).expect("kill haproxy");
    lb.wait_timeout(Duration::from_secs(2))
        .expect("haproxy exits");
    let started = Instant::now();
    let outcome = probe(&min3, TIMEOUT).await;
    let took = started.elapsed();
    let r = reason(&outcome);
    assert!(
        r.starts_with(&format!("haproxy stats socket unix:{}: ", socket.display()))
            && (r.contains("connection refused") || r.contains("socket file absent")),
        "{outcome:?}"
    );
    assert!(took < Duration::from_millis(100), "took {took:?}");
    eprintln!("haproxy dead: {r} ({took:?})");
}

/// A stats socket that accepts and never answers (a plain listener made here): Down within
/// the timeout, never later than timeout + 100 ms.
#[tokio::test]
async fn silent_stats_socket_times_out() {
    let dir = std::env::temp_dir().join(format!("vk-hap-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("stats.sock");
    let unix = tokio::net::UnixListener::bind(&path).expect("bind unix");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind tcp");
    let tcp_addr = tcp.local_addr().expect("addr");
    // Accept and hold the connections so the peer stays open and silent.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut held_tcp = Vec::new();
        for _ in 0..2 {
            tokio::select! {
                Ok((c, _)) = unix.accept() => held.push(c),
                Ok((c, _)) = tcp.accept() => held_tcp.push(c),
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop((held, held_tcp));
    });
    let limit = Duration::from_millis(300);
    for target in [StatsTarget::Unix(path.clone()), StatsTarget::Tcp(tcp_addr)] {
        let s = HaproxySettings {
            target: target.clone(),
            backend: Some("be_web".into()),
            judge: Judge::Graded,
        };
        let started = Instant::now();
        let outcome = probe(&s, limit).await;
        let took = started.elapsed();
        eprintln!("silent {target}: {outcome:?} after {took:?}");
        assert!(
            took >= limit && took <= limit + Duration::from_millis(100),
            "{target}: took {took:?}"
        );
        assert_eq!(
            reason(&outcome),
            format!(
                "haproxy stats socket {target}: no complete reply within 300 ms \
                 (waiting for the reply to end)"
            )
        );
    }
    holder.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
