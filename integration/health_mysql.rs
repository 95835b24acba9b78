//! The `mysql` probe against a real MariaDB that each test starts for itself
//! (`support/mariadb.rs`: its own datadir, port and socket, killed and removed on drop;
//! the packaged service is never involved).
//!
//! Needs `mariadbd` and `mariadb-install-db` (`scripts/install-deps` installs
//! `mariadb-server` without starting it).

#[path = "support/mariadb.rs"]
mod mariadb;

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mariadb::{run_within, Mariadb, PASSWORD, USER};

use vipkeeper::health::mysql::{probe, MysqlConnection, MysqlError, MysqlSettings, QueryOutcome};
use vipkeeper::health::ProbeOutcome;

fn reason(outcome: &ProbeOutcome) -> &str {
    match outcome {
        ProbeOutcome::Down { reason } => reason,
        other => panic!("expected Down, got {other:?}"),
    }
}

const TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn login_ping_queries_wrong_password_and_stopped_server() {
    let mut server = Mariadb::start(&[]);

    // Right password: Up.
    let outcome = probe(&server.settings(PASSWORD), TIMEOUT).await;
    assert_eq!(outcome, ProbeOutcome::Up, "server log:\n{}", server.log());

    // The connection API a mysql_admin action builds on.
    let mut connection =
        MysqlConnection::connect(server.address(), USER, PASSWORD.as_bytes(), TIMEOUT)
            .await
            .expect("login");
    assert!(connection.server_version().contains("MariaDB"));
    assert!(connection.connection_id() > 0);
    connection.ping().await.expect("COM_PING");
    assert_eq!(
        connection
            .query("SELECT 1 UNION SELECT 2")
            .await
            .expect("query"),
        QueryOutcome::Rows {
            columns: 1,
            rows: 2
        }
    );
    assert_eq!(
        connection.query("DO 1").await.expect("query"),
        QueryOutcome::Ok {
            affected: 0,
            info: String::new()
        }
    );
    match connection.query("SELEC oops").await.expect("query") {
        QueryOutcome::Err(error) => {
            assert_eq!(error.code, 1064);
            assert_eq!(error.name(), Some("ER_PARSE_ERROR"));
            assert_eq!(error.state.as_deref(), Some("42000"));
        }
        other => panic!("expected ERR 1064, got {other:?}"),
    }
    // No grants on `mysql`: 1044, and the connection goes on after an ERR.
    match connection.query("USE mysql").await.expect("query") {
        QueryOutcome::Err(error) => assert_eq!(error.name(), Some("ER_DBACCESS_DENIED_ERROR")),
        other => panic!("expected ERR 1044, got {other:?}"),
    }
    connection.ping().await.expect("COM_PING after an ERR");
    connection.quit().await.expect("COM_QUIT");

    // Wrong password: Down with 1045, and the reason never contains a password.
    let outcome = probe(&server.settings("not the password"), TIMEOUT).await;
    let text = reason(&outcome);
    assert!(
        text.contains("ERR 1045 access denied"),
        "unexpected reason: {text}"
    );
    assert!(!text.contains("not the password") && !text.contains(PASSWORD));

    // An unreadable password file is Down, naming the file.
    let mut missing = server.settings(PASSWORD);
    missing.password_file = server.dir().join("no-such-file");
    let outcome = probe(&missing, TIMEOUT).await;
    assert!(reason(&outcome).contains("no-such-file"), "{outcome:?}");

    // Server stopped: refused, at once.
    let settings = server.settings(PASSWORD);
    server.stop();
    let started = Instant::now();
    let outcome = probe(&settings, TIMEOUT).await;
    let text = reason(&outcome);
    assert!(text.contains("refused"), "unexpected reason: {text}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn too_many_connections_is_down_with_1040() {
    // 10 is MariaDB's minimum max_connections.
    let server = Mariadb::start(&["--max-connections=10"]);
    let settings = server.settings(PASSWORD);
    assert_eq!(probe(&settings, TIMEOUT).await, ProbeOutcome::Up);

    // Fill every ordinary slot with logged-in, idle, unprivileged connections.
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(
            MysqlConnection::connect(server.address(), USER, PASSWORD.as_bytes(), TIMEOUT)
                .await
                .expect("login while filling the slots"),
        );
    }
    // The next one gets the slot reserved for SUPER users, a greeting, and 1040 at login.
    let outcome = probe(&settings, TIMEOUT).await;
    let text = reason(&outcome);
    assert!(
        text.contains("ERR 1040 too many connections"),
        "unexpected reason: {text}"
    );

    // With that extra slot taken too, 1040 comes instead of the greeting. The server frees
    // the slot of the probe just refused a moment after its 1040: retry until greeted.
    let deadline = Instant::now() + Duration::from_secs(5);
    let extra = loop {
        let mut stream = TcpStream::connect(server.address()).expect("connect");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        let mut first = [0u8; 5];
        stream.read_exact(&mut first).expect("first packet");
        if first[4] == 0x0a {
            break stream;
        }
        assert!(Instant::now() < deadline, "the extra slot never greeted");
        std::thread::sleep(Duration::from_millis(50));
    };
    let outcome = probe(&settings, TIMEOUT).await;
    let text = reason(&outcome);
    assert!(
        text.contains("ERR 1040 too many connections") && !text.contains('#'),
        "expected 1040 without SQL state (sent instead of the greeting): {text}"
    );

    // Free the slots: Up again.
    drop(extra);
    for connection in held {
        connection.quit().await.expect("COM_QUIT");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let outcome = probe(&settings, TIMEOUT).await;
        if outcome == ProbeOutcome::Up {
            break;
        }
        assert!(Instant::now() < deadline, "still down: {outcome:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The checker's address inside the private namespace (TEST-NET-1, seen nowhere else).
const CHECKER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// MariaDB never counts connection errors from 127.0.0.1 or ::1 (sql/hostname.cc: "Do not
/// count connect errors from localhost"), so proving that the probe does not get its source
/// blocked needs another address. This test runs on a thread of its own that has unshared
/// its network namespace (a fresh one, seen by nothing else and gone with the thread and
/// the server): there the server listens on [`CHECKER_IP`] on `lo`, and the probe connects
/// from that same address.
///
/// The error count also needs a definite answer from name resolution (NXDOMAIN or a name):
/// a resolver that cannot be reached is a transient error, after which MariaDB keeps no
/// count. So the nameservers of /etc/resolv.conf are given to `lo` in the namespace and
/// answered by [`NxdomainResolver`]. Needs root (unshare); skipped without it.
#[test]
fn probes_never_get_the_checker_blocked() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root for a private network namespace");
        return;
    }
    let result = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare the network namespace");
        ip(&["link", "set", "lo", "up"]);
        ip(&["addr", "add", &format!("{CHECKER_IP}/32"), "dev", "lo"]);
        let _resolver = NxdomainResolver::start();
        let server = Mariadb::start_on(CHECKER_IP, &["--max-connect-errors=3"]);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(never_blocked(&server));
    })
    .join();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn never_blocked(server: &Mariadb) {
    let settings = server.settings(PASSWORD);
    for round in 0..20 {
        let outcome = probe(&settings, TIMEOUT).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Up,
            "probe {round}:\n{}",
            server.log()
        );
    }
    // Failed logins are not connection errors either.
    let wrong = server.settings("wrong");
    for _ in 0..5 {
        let outcome = probe(&wrong, TIMEOUT).await;
        assert!(reason(&outcome).contains("1045"), "{outcome:?}");
    }
    assert_eq!(probe(&settings, TIMEOUT).await, ProbeOutcome::Up);

    // Control: a greeting-only check (read the greeting, hang up) does get blocked in this
    // very setup, and the probe then reports 1129. The server counts an abort when it
    // notices it, so poll instead of assuming it happens by the fourth connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut greeting_only = 0;
    loop {
        let mut stream = TcpStream::connect(server.address()).expect("connect");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        let mut first = [0u8; 5];
        stream.read_exact(&mut first).expect("first packet");
        drop(stream);
        if first[4] == 0xff {
            break;
        }
        greeting_only += 1;
        assert!(
            Instant::now() < deadline,
            "a greeting-only client was never blocked:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        greeting_only >= 3,
        "blocked after {greeting_only} greeting-only clients"
    );
    let outcome = probe(&settings, TIMEOUT).await;
    let text = reason(&outcome);
    assert!(
        text.contains("ERR 1129 host blocked"),
        "unexpected reason: {text}"
    );
}

/// Runs `ip ARGS` in the calling thread's network namespace.
fn ip(args: &[&str]) {
    let (ok, output) = run_within(Command::new("ip").args(args), Duration::from_secs(10));
    assert!(ok, "ip {args:?}: {output}");
}

/// Answers every DNS query with NXDOMAIN on the IPv4 nameservers of /etc/resolv.conf, in
/// the private namespace of the thread that starts it. Stops when dropped.
struct NxdomainResolver {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl NxdomainResolver {
    fn start() -> NxdomainResolver {
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut servers: Vec<Ipv4Addr> = conf
            .lines()
            .filter_map(|line| line.strip_prefix("nameserver"))
            .filter_map(|rest| rest.trim().parse().ok())
            .collect();
        if servers.is_empty() {
            servers.push(Ipv4Addr::LOCALHOST); // glibc's default
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for server in servers {
            if !server.is_loopback() {
                ip(&["addr", "add", &format!("{server}/32"), "dev", "lo"]);
            }
            // Bound here, so the socket lives in this thread's namespace whichever thread
            // reads it.
            let socket = UdpSocket::bind((server, 53)).expect("bind the fake resolver");
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .expect("read timeout");
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut buffer = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((length, from)) = socket.recv_from(&mut buffer) else {
                        continue;
                    };
                    if length < 12 {
                        continue;
                    }
                    // The query echoed with QR, RD, RA and RCODE 3 (NXDOMAIN), no answers.
                    let mut reply = buffer[..length].to_vec();
                    reply[2] = 0x81;
                    reply[3] = 0x83;
                    reply[6..12].fill(0);
                    let _ = socket.send_to(&reply, from);
                }
            }));
        }
        NxdomainResolver { stop, threads }
    }
}

impl Drop for NxdomainResolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn a_silent_listener_is_down_within_the_timeout() {
    // Accepts (the kernel does) and never sends a greeting.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dir = std::env::temp_dir().join(format!("vk-mysql-silent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let password_file = dir.join("password");
    std::fs::write(&password_file, "x\n").expect("password file");
    let settings = MysqlSettings {
        address: listener.local_addr().expect("address"),
        user: USER.to_string(),
        password_file,
    };
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let outcome = probe(&settings, timeout).await;
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    let text = reason(&outcome);
    assert!(text.contains("greeting"), "unexpected reason: {text}");
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_millis(100),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn garbage_instead_of_a_greeting_is_a_protocol_error() {
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        // An HTTP server answering on the wrong port, then a 16 MiB length claim.
        for reply in [
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            b"\xff\xff\xff\x00",
        ] {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let _ = stream.write_all(reply).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    for _ in 0..2 {
        match MysqlConnection::connect(address, USER, b"x", TIMEOUT).await {
            Err(MysqlError::Protocol(message)) => {
                assert!(message.contains("limit"), "{message}")
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }
    server.await.expect("fake server");
}
