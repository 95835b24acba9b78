//! The `tcp` and `http` probes against real servers in a namespace lab: the probe runs inside
//! node 1's network namespace (a thread that `setns`es into it), the servers run on the
//! backend host (198.51.100.200): haproxy for HTTP and HTTPS, and listeners made by the test
//! itself (a socket bound inside the backend's namespace that never accepts: the kernel
//! completes the handshake, nothing ever answers). Nothing is sent outside the lab.
//!
//! Needs root (network namespaces) and haproxy; the HTTPS part needs `openssl` to make a
//! self-signed certificate and says so when it is missing.

#[path = "lab/mod.rs"]
mod lab;

use std::fs::File;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use lab::{Host, Lab, LabProcess};
use nix::sched::{setns, CloneFlags};
use vipkeeper::health::http::{HttpMethod, HttpProbe, HttpSettings};
use vipkeeper::health::tcp::{self, TcpSettings};
use vipkeeper::health::ProbeOutcome;

const BACKEND: &str = "198.51.100.200";
/// No host has this address on the back segment: a SYN to it waits for an ARP reply that
/// never comes, so connects time out instead of being refused.
const NOBODY: &str = "198.51.100.250";
/// How far past its timeout a probe may return: scheduling on a shared 2-core machine.
const SLACK: Duration = Duration::from_millis(100);

/// Runs `work` on a fresh thread inside `netns` with a current-thread runtime, as the daemon
/// runs probes; the thread ends with it, so nothing else ever runs in that namespace.
fn in_netns<T, F, Fut>(netns: &str, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let path = format!("/run/netns/{netns}");
    let joined = thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(ns, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(work())
    })
    .join();
    joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A listener bound inside the backend's namespace that nobody accepts on: the kernel
/// completes handshakes into the backlog, and no byte ever comes back.
fn silent_listener(backend: &Host, port: u16) -> TcpListener {
    let path = format!("/run/netns/{}", backend.netns());
    thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(ns, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        TcpListener::bind((BACKEND, port)).expect("bind the silent listener")
    })
    .join()
    .expect("listener thread")
}

fn lab(tag: &str) -> Lab {
    Lab::builder(tag)
        .nodes(1)
        .backend(true)
        .build()
        .expect("lab builds")
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

fn settings(url: &str) -> HttpSettings {
    HttpSettings {
        url: url.to_owned(),
        method: HttpMethod::Get,
        expect_status: Vec::new(),
        body_contains: None,
        host: None,
        verify_tls: true,
    }
}

/// Builds the probe and runs it once from node 1; returns the outcome and how long it took.
fn http_from(node: &Host, s: HttpSettings, timeout: Duration) -> (ProbeOutcome, Duration) {
    in_netns(node.netns(), move || async move {
        let probe = HttpProbe::new(&s).expect("probe builds");
        let start = Instant::now();
        let outcome = probe.probe(timeout).await;
        (outcome, start.elapsed())
    })
}

fn tcp_from(node: &Host, address: SocketAddr, timeout: Duration) -> (ProbeOutcome, Duration) {
    in_netns(node.netns(), move || async move {
        let start = Instant::now();
        let outcome = tcp::probe(&TcpSettings { address }, timeout).await;
        (outcome, start.elapsed())
    })
}

fn reason(outcome: &ProbeOutcome) -> &str {
    match outcome {
        ProbeOutcome::Down { reason } => reason,
        other => panic!("expected Down, got {other:?}"),
    }
}

/// Waits (bounded) until `port` on the backend takes connections from node 1.
fn wait_listening(node: &Host, port: u16, server: &mut LabProcess) {
    let ready = in_netns(node.netns(), move || async move {
        for _ in 0..60 {
            if TcpStream::connect_timeout(&addr(BACKEND, port), Duration::from_millis(200)).is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(
        ready,
        "port {port} never opened; server stderr: {}",
        server.stderr()
    );
}

const HAPROXY_CFG: &str = r#"
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend ok
    bind 198.51.100.200:8080
    http-request return status 200 content-type text/plain string "vhost ok" if { hdr(host) -i vhost.example }
    http-request redirect location /elsewhere code 302 if { path /redirect }
    http-request return status 200 content-type text/plain string "ok"

frontend down
    bind 198.51.100.200:8081
    http-request return status 503 content-type text/plain string "down"
"#;

const HAPROXY_TLS: &str = r#"
frontend tls
    bind 198.51.100.200:8443 ssl crt /tmp/site.pem
    http-request return status 200 content-type text/plain string "tls ok"
"#;

fn start_haproxy(backend: &Host, cfg: &str) -> LabProcess {
    backend
        .write_file(Path::new("/tmp/haproxy.cfg"), cfg.as_bytes())
        .expect("write haproxy.cfg");
    backend
        .spawn(&["/usr/sbin/haproxy", "-db", "-f", "/tmp/haproxy.cfg"], &[])
        .expect("haproxy starts")
}

#[test]
fn tcp_up_refused_and_timeout() {
    let lab = lab("netp-tcp");
    let node = lab.node(1);
    let _listener = silent_listener(lab.backend(), 9000);

    let (outcome, _) = tcp_from(node, addr(BACKEND, 9000), Duration::from_secs(1));
    assert_eq!(outcome, ProbeOutcome::Up);

    // Nothing listens on 9001: the backend answers the SYN with a RST at once.
    let (outcome, took) = tcp_from(node, addr(BACKEND, 9001), Duration::from_secs(2));
    assert_eq!(
        outcome,
        ProbeOutcome::down("198.51.100.200:9001: connection refused")
    );
    assert!(took < Duration::from_millis(500), "refusal took {took:?}");

    // No host answers ARP for NOBODY: the SYN is never even sent, the timeout decides.
    let timeout = Duration::from_millis(300);
    let (outcome, took) = tcp_from(node, addr(NOBODY, 80), timeout);
    assert_eq!(
        outcome,
        ProbeOutcome::down("198.51.100.250:80: no answer within 300ms")
    );
    assert!(
        took >= timeout && took < timeout + SLACK,
        "timed out after {took:?}"
    );
}

#[test]
fn http_status_body_head_host_redirect() {
    let lab = lab("netp-http");
    let node = lab.node(1);
    let mut haproxy = start_haproxy(lab.backend(), HAPROXY_CFG);
    wait_listening(node, 8080, &mut haproxy);
    wait_listening(node, 8081, &mut haproxy);
    let t = Duration::from_secs(2);

    // 200 with the expected body.
    let mut s = settings("http://198.51.100.200:8080/health");
    s.body_contains = Some("ok".into());
    assert_eq!(http_from(node, s, t).0, ProbeOutcome::Up);

    // 503 is not expected.
    let (outcome, _) = http_from(node, settings("http://198.51.100.200:8081/"), t);
    assert_eq!(
        reason(&outcome),
        "GET http://198.51.100.200:8081/: status 503, expected 200..399"
    );
    // ... unless the operator says it is.
    let mut s = settings("http://198.51.100.200:8081/");
    s.expect_status = vec![503];
    assert_eq!(http_from(node, s, t).0, ProbeOutcome::Up);

    // The Host header reaches haproxy: only with it does the body say "vhost ok"; without
    // it the same check is a body mismatch.
    let mut s = settings("http://198.51.100.200:8080/");
    s.body_contains = Some("vhost ok".into());
    let (outcome, _) = http_from(node, s.clone(), t);
    let why = reason(&outcome);
    assert!(
        why.starts_with("GET http://198.51.100.200:8080/: status 200, but the body")
            && why.contains("does not contain \"vhost ok\""),
        "{why}"
    );
    s.host = Some("vhost.example".into());
    assert_eq!(http_from(node, s, t).0, ProbeOutcome::Up);

    // HEAD.
    let mut s = settings("http://198.51.100.200:8080/");
    s.method = HttpMethod::Head;
    assert_eq!(http_from(node, s, t).0, ProbeOutcome::Up);
    let mut s = settings("http://198.51.100.200:8081/");
    s.method = HttpMethod::Head;
    assert_eq!(
        reason(&http_from(node, s, t).0),
        "HEAD http://198.51.100.200:8081/: status 503, expected 200..399"
    );

    // A redirect is not followed: the 302 is the answer (Up by default, Down when only 200
    // is expected).
    let s = settings("http://198.51.100.200:8080/redirect");
    assert_eq!(http_from(node, s.clone(), t).0, ProbeOutcome::Up);
    let mut s = s;
    s.expect_status = vec![200];
    assert_eq!(
        reason(&http_from(node, s, t).0),
        "GET http://198.51.100.200:8080/redirect: status 302, expected 200"
    );

    // Refused.
    let (outcome, _) = http_from(node, settings("http://198.51.100.200:9001/"), t);
    let why = reason(&outcome);
    assert!(
        why.starts_with("GET http://198.51.100.200:9001/: ") && why.contains("refused"),
        "{why}"
    );

    assert!(haproxy.is_running(), "haproxy died: {}", haproxy.stderr());
}

#[test]
fn http_silent_server_and_no_host_time_out() {
    let lab = lab("netp-silent");
    let node = lab.node(1);
    let _listener = silent_listener(lab.backend(), 9000);
    let timeout = Duration::from_millis(300);

    // Connected, request sent, no answer ever.
    let (outcome, took) = http_from(node, settings("http://198.51.100.200:9000/"), timeout);
    assert_eq!(
        reason(&outcome),
        "GET http://198.51.100.200:9000/: no answer within 300ms"
    );
    assert!(took >= timeout && took < timeout + SLACK, "took {took:?}");

    // Not even connected.
    let (outcome, took) = http_from(node, settings("http://198.51.100.250/"), timeout);
    assert_eq!(
        reason(&outcome),
        "GET http://198.51.100.250/: no answer within 300ms"
    );
    assert!(took >= timeout && took < timeout + SLACK, "took {took:?}");
}

/// A self-signed certificate for `198.51.100.200` (and `backend.lab`) in haproxy's format
/// (certificate and key in one PEM), or why it could not be made.
fn self_signed(dir: &Path) -> Result<Vec<u8>, String> {
    let (key, cert) = (dir.join("site.key"), dir.join("site.crt"));
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=backend.lab"])
        .args([
            "-addext",
            "subjectAltName=DNS:backend.lab,IP:198.51.100.200",
        ])
        // A leaf, not the CA that `req -x509` makes by default: webpki would then refuse it
        // as "CA used as end entity" before it ever asks who issued it.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "openssl req: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut pem = std::fs::read(&cert).map_err(|e| e.to_string())?;
    pem.extend(std::fs::read(&key).map_err(|e| e.to_string())?);
    Ok(pem)
}

#[test]
fn https_verify_on_and_off() {
    let lab = lab("netp-tls");
    let pem = match self_signed(lab.dir()) {
        Ok(pem) => pem,
        Err(why) => {
            eprintln!("SKIPPED https_verify_on_and_off: no self-signed certificate: {why}");
            return;
        }
    };
    let node = lab.node(1);
    let backend = lab.backend();
    backend
        .write_file(Path::new("/tmp/site.pem"), &pem)
        .expect("write site.pem");
    let mut haproxy = start_haproxy(backend, &format!("{HAPROXY_CFG}{HAPROXY_TLS}"));
    wait_listening(node, 8443, &mut haproxy);
    let t = Duration::from_secs(2);

    // Verification on: nobody vouches for a self-signed certificate.
    let mut s = settings("https://198.51.100.200:8443/");
    s.body_contains = Some("tls ok".into());
    let (outcome, _) = http_from(node, s.clone(), t);
    let why = reason(&outcome);
    assert!(
        why.starts_with("GET https://198.51.100.200:8443/: ") && why.contains("UnknownIssuer"),
        "{why}"
    );

    // Verification off: the same server is Up, the body is read over TLS.
    s.verify_tls = false;
    assert_eq!(http_from(node, s.clone(), t).0, ProbeOutcome::Up);

    // Off means off: a certificate for other names is accepted too.
    s.url = "https://198.51.100.200:8443/".into();
    s.host = Some("not-in-the-cert.example".into());
    assert_eq!(http_from(node, s, t).0, ProbeOutcome::Up);

    // And TLS to a plain-HTTP port is a TLS error, not a hang.
    let mut s = settings("https://198.51.100.200:8080/");
    s.verify_tls = false;
    let (outcome, took) = http_from(node, s, t);
    assert!(
        reason(&outcome).starts_with("GET https://198.51.100.200:8080/: "),
        "{outcome:?}"
    );
    assert!(took < t, "took {took:?}");

    assert!(haproxy.is_running(), "haproxy died: {}", haproxy.stderr());
}
