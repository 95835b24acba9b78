//! The control socket against a fake daemon: a thread running the server on a
//! current-thread runtime inside a LocalSet (as the daemon does), answering requests from
//! the channel. Sockets live in fresh directories under the temp dir; the only processes
//! are the children forked here to act as another uid (root only; skipped otherwise).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Uid};
use tokio::sync::mpsc::unbounded_channel;
use tokio::task::LocalSet;
use vipkeeper::control::protocol::{Request, Response};
use vipkeeper::control::socket::{
    bind, request, serve_with, ClientError, ControlListener, Limits, Pending, MAX_REQUEST_BYTES,
};
use vipkeeper::control::status::{
    CheckStatus, Histogram, InstanceStatus, Status, TrackStatus, TransitionStatus, LATENCY_BOUNDS,
    LATENESS_BOUNDS,
};

const TIMEOUT: Duration = Duration::from_secs(5);
const NOBODY: u32 = 65534;

struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vk-ctl-{}-{}-{what}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("control.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    Answer,
    /// Takes requests and never answers (keeps the reply senders).
    Silent,
}

/// The server on its own thread, as the daemon runs it; stops (and joins) on drop.
struct FakeDaemon {
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDaemon {
    fn start(listener: ControlListener, limits: Limits, behaviour: Behaviour) -> FakeDaemon {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let recorded = Arc::clone(&seen);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            LocalSet::new().block_on(&runtime, async move {
                let (requests, mut incoming) = unbounded_channel::<Pending>();
                tokio::task::spawn_local(serve_with(listener, requests, limits));
                let mut unanswered = Vec::new();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        Some((request, reply)) = incoming.recv() => {
                            recorded.lock().unwrap().push(request.clone());
                            match behaviour {
                                Behaviour::Answer => {
                                    let _ = reply.send(answer(&request));
                                }
                                Behaviour::Silent => unanswered.push(reply),
                            }
                        }
                    }
                }
                // Dropping `incoming` here ends `serve_with`, which removes the socket.
                drop(incoming);
                tokio::task::yield_now().await;
            });
        });
        FakeDaemon {
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(request: &Request) -> Response {
    match request {
        Request::Status => Response {
            ok: true,
            message: String::new(),
            status: Some(sample_status()),
        },
        Request::Switchover { instance } => {
            Response::ok(format!("{instance} hands over to 192.0.2.12"))
        }
        Request::Resume { instance } => Response::refused(format!("{instance} is not held back")),
        Request::Maintenance { on } => Response::ok(format!("maintenance {on}")),
        Request::Reload => Response::ok("reloaded"),
    }
}

fn sample_status() -> Status {
    let mut lateness = Histogram::with_bounds(LATENESS_BOUNDS);
    for s in [0.00003, 0.0004, 0.0021, 0.3] {
        lateness.observe(s);
    }
    let mut latency = Histogram::with_bounds(LATENCY_BOUNDS);
    latency.observe(0.0042);
    Status {
        node: "lb1".into(),
        version: "0.1.0".into(),
        uptime_seconds: 98_765,
        maintenance: false,
        instances: vec![InstanceStatus {
            name: "VI_WEB".into(),
            interface: "eth0".into(),
            vrid: 51,
            family: "IPv6".into(),
            version: 3,
            state: "MASTER".into(),
            base_priority: 150,
            effective_priority: None,
            tracks: vec![TrackStatus {
                check: "haproxy".into(),
                weight: -30,
                reverse: true,
                contribution: Some(-30),
            }],
            master_address: Some("2001:db8::11".parse().unwrap()),
            vips: vec!["2001:db8::100/64".into()],
            holds_vips: true,
            last_transition: Some(TransitionStatus {
                from: "BACKUP".into(),
                to: "MASTER".into(),
                reason: "preempted 2001:db8::12 (priority 100 < 150)".into(),
                at_unix_ms: 1_750_000_000_123,
            }),
            held_back: true,
            counters: Default::default(),
            advert_lateness: lateness,
        }],
        groups: vec![],
        checks: vec![CheckStatus {
            name: "haproxy".into(),
            kind: "haproxy".into(),
            state: "up".into(),
            last_result: Some("2/3 servers up \"be_web\" ✓".into()),
            fraction: Some(2.0 / 3.0),
            value: Some(-7),
            latency,
            runs: 10,
            failures: 1,
        }],
        hooks: vec![],
        reloads: Default::default(),
        unmatched_dropped: Default::default(),
    }
}

fn limits() -> Limits {
    Limits {
        read_timeout: Duration::from_millis(500),
        answer_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

fn serve(dir: &TempDir, behaviour: Behaviour) -> FakeDaemon {
    FakeDaemon::start(bind(&dir.socket()).unwrap(), limits(), behaviour)
}

/// Writes `bytes` as they are (then half-closes when asked) and reads one response line.
fn raw_exchange_with(path: &Path, bytes: &[u8], half_close: bool) -> Response {
    let stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    (&stream).write_all(bytes).unwrap();
    if half_close {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    assert!(line.ends_with('\n'), "response not a whole line: {line:?}");
    serde_json::from_str(&line).unwrap()
}

fn raw_exchange(path: &Path, bytes: &[u8]) -> Response {
    raw_exchange_with(path, bytes, false)
}

#[test]
fn status_round_trip_keeps_the_whole_snapshot() {
    let dir = TempDir::new("status");
    let daemon = serve(&dir, Behaviour::Answer);
    let response = request(&dir.socket(), &Request::Status, TIMEOUT).unwrap();
    assert!(response.ok, "{response:?}");
    assert_eq!(response.status, Some(sample_status()));
    assert_eq!(daemon.seen(), vec![Request::Status]);
}

#[test]
fn commands_reach_the_handler_with_their_arguments() {
    let dir = TempDir::new("switchover");
    let daemon = serve(&dir, Behaviour::Answer);
    let switchover = Request::Switchover {
        instance: "VI_WEB".into(),
    };
    let response = request(&dir.socket(), &switchover, TIMEOUT).unwrap();
    assert_eq!(response, Response::ok("VI_WEB hands over to 192.0.2.12"));
    let resume = Request::Resume {
        instance: "VI_DB".into(),
    };
    let response = request(&dir.socket(), &resume, TIMEOUT).unwrap();
    assert_eq!(response, Response::refused("VI_DB is not held back"));
    let maintenance = Request::Maintenance { on: true };
    request(&dir.socket(), &maintenance, TIMEOUT).unwrap();
    assert_eq!(daemon.seen(), vec![switchover, resume, maintenance]);
}

#[test]
fn malformed_requests_are_refused_and_never_reach_the_daemon() {
    let dir = TempDir::new("malformed");
    let daemon = serve(&dir, Behaviour::Answer);
    for line in [
        &b"{not json\n"[..],
        b"{\"command\":\"explode\"}\n",
        b"{\"command\":\"switchover\"}\n",
        b"\xff\xfe\n",
    ] {
        let response = raw_exchange(&dir.socket(), line);
        assert!(!response.ok, "{response:?}");
        assert!(
            response.message.starts_with("bad request: "),
            "{:?} -> {response:?}",
            String::from_utf8_lossy(line)
        );
    }
    // A request without its newline, closed by the client, is still one request.
    let response = raw_exchange_with(&dir.socket(), b"{\"command\":\"reload\"}", true);
    assert_eq!(response, Response::ok("reloaded"));
    assert_eq!(daemon.seen(), vec![Request::Reload]);
}

#[test]
fn a_request_line_is_bounded_at_64_kib() {
    let dir = TempDir::new("oversized");
    let daemon = serve(&dir, Behaviour::Answer);

    // Exactly the limit (newline excluded) is accepted.
    let prefix = r#"{"command":"switchover","instance":""#;
    let suffix = r#""}"#;
    let name = "x".repeat(MAX_REQUEST_BYTES - prefix.len() - suffix.len());
    let exact = format!("{prefix}{name}{suffix}\n");
    assert_eq!(exact.len(), MAX_REQUEST_BYTES + 1);
    let response = raw_exchange(&dir.socket(), exact.as_bytes());
    assert!(response.ok, "{response:?}");

    // One byte more is refused, with or without a newline after it.
    let over = format!("{prefix}{name}x{suffix}\n");
    let response = raw_exchange(&dir.socket(), over.as_bytes());
    assert_eq!(
        response,
        Response::refused(format!(
            "bad request: longer than {MAX_REQUEST_BYTES} bytes"
        ))
    );
    let response = raw_exchange(&dir.socket(), &vec![b'{'; 100 * 1024]);
    assert!(response.message.starts_with("bad request: longer than"));
    assert_eq!(daemon.seen().len(), 1);
}

#[test]
fn a_daemon_that_never_answers_is_reported_busy_within_the_bound() {
    let dir = TempDir::new("busy");
    let daemon = serve(&dir, Behaviour::Silent);
    let started = Instant::now();
    let response = request(&dir.socket(), &Request::Reload, TIMEOUT).unwrap();
    let took = started.elapsed();
    assert!(!response.ok);
    assert!(response.message.starts_with("daemon busy"), "{response:?}");
    assert!(
        took >= limits().answer_timeout && took < limits().answer_timeout + Duration::from_secs(2),
        "answered after {took:?}"
    );
    assert_eq!(daemon.seen(), vec![Request::Reload]);
}

#[test]
fn a_client_that_sends_nothing_is_cut_off() {
    let dir = TempDir::new("silent-client");
    let daemon = serve(&dir, Behaviour::Answer);
    let started = Instant::now();
    let response = raw_exchange(&dir.socket(), b"");
    assert!(!response.ok);
    assert!(
        response
            .message
            .starts_with("bad request: no request line within"),
        "{response:?}"
    );
    assert!(started.elapsed() < limits().read_timeout + Duration::from_secs(2));
    assert!(daemon.seen().is_empty());
}

#[test]
fn the_client_times_out_on_its_own_bound() {
    let dir = TempDir::new("client-timeout");
    let daemon = serve(&dir, Behaviour::Silent);
    let started = Instant::now();
    let err = request(&dir.socket(), &Request::Status, Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("timed out after 100ms"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(daemon);
}

#[test]
fn socket_is_0600_in_a_0700_directory_and_removed_when_serving_stops() {
    let dir = TempDir::new("modes");
    let path = dir.0.join("run").join("vipkeeper").join("control.sock");
    let daemon = FakeDaemon::start(bind(&path).unwrap(), limits(), Behaviour::Answer);
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.0.join("run")), 0o700);
    // Nothing is left of the staging directory.
    let mut entries: Vec<String> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["control.sock", "control.sock.lock"]);
    assert!(request(&path, &Request::Status, TIMEOUT).unwrap().ok);
    drop(daemon);
    assert!(!path.exists(), "socket left behind");
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = TempDir::new("stale");
    drop(StdUnixListener::bind(dir.socket()).unwrap());
    let err = request(&dir.socket(), &Request::Status, TIMEOUT).unwrap_err();
    assert!(matches!(err, ClientError::NotListening { .. }), "{err:?}");
    let _daemon = serve(&dir, Behaviour::Answer);
    assert!(
        request(&dir.socket(), &Request::Status, TIMEOUT)
            .unwrap()
            .ok
    );
}

#[test]
fn a_live_socket_is_never_taken_over() {
    let dir = TempDir::new("live");
    let _daemon = serve(&dir, Behaviour::Answer);
    let err = bind(&dir.socket()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        err.to_string().contains("in use: another vipkeeper holds"),
        "{err}"
    );
    // The first daemon still answers on the same file.
    assert!(
        request(&dir.socket(), &Request::Status, TIMEOUT)
            .unwrap()
            .ok
    );

    // A listener that does not hold the lock (an older daemon, anything) is left alone too.
    let other = TempDir::new("foreign");
    let _foreign = StdUnixListener::bind(other.socket()).unwrap();
    let err = bind(&other.socket()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains("something is listening"), "{err}");
    assert!(UnixStream::connect(other.socket()).is_ok());

    // And a regular file is not a socket to replace.
    let file = TempDir::new("file");
    fs::write(file.socket(), "keep me").unwrap();
    let err = bind(&file.socket()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read_to_string(file.socket()).unwrap(), "keep me");
}

#[test]
fn a_missing_socket_asks_whether_vipkeeper_runs() {
    let dir = TempDir::new("missing");
    let err = request(&dir.socket(), &Request::Status, TIMEOUT).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "is vipkeeper running? no socket at {}",
            dir.socket().display()
        )
    );
}

/// What the forked child saw, as its exit code.
const CHILD_EACCES: i32 = 10;
const CHILD_REFUSED_PERMISSION: i32 = 11;
const CHILD_OTHER: i32 = 12;
const CHILD_SETUP_FAILED: i32 = 13;

/// Forks a child that drops to nobody (65534) and runs `request` on `path`; returns its
/// exit code. The child only calls the client and exits (glibc keeps malloc usable after
/// fork; the child prints nothing).
fn as_nobody(path: &Path) -> Option<i32> {
    if !Uid::effective().is_root() {
        eprintln!("skipped: needs root to drop to uid {NOBODY}");
        return None;
    }
    let path = path.to_path_buf();
    // SAFETY: the child runs only the client below and exits; it never returns into the
    // test harness.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(|| {
                let gid = Gid::from_raw(NOBODY);
                if nix::unistd::setgroups(&[gid]).is_err()
                    || nix::unistd::setgid(gid).is_err()
                    || nix::unistd::setuid(Uid::from_raw(NOBODY)).is_err()
                {
                    return CHILD_SETUP_FAILED;
                }
                match request(&path, &Request::Status, TIMEOUT) {
                    Err(ClientError::PermissionDenied { .. }) => CHILD_EACCES,
                    Ok(r) if !r.ok && r.message.starts_with("permission denied: uid 65534") => {
                        CHILD_REFUSED_PERMISSION
                    }
                    _ => CHILD_OTHER,
                }
            })
            .unwrap_or(CHILD_OTHER);
            std::process::exit(code);
        }
        ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, code) => Some(code),
            other => panic!("child {child}: {other:?}"),
        },
    }
}

/// Lets every uid traverse the directory, so EACCES can only come from the socket's mode.
fn traversable(dir: &TempDir) {
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o711)).unwrap();
}

#[test]
fn another_uid_cannot_even_connect() {
    let dir = TempDir::new("uid-mode");
    traversable(&dir);
    let daemon = serve(&dir, Behaviour::Answer);
    if let Some(code) = as_nobody(&dir.socket()) {
        assert_eq!(code, CHILD_EACCES, "the child must get EACCES from connect");
        assert!(daemon.seen().is_empty());
    }
}

#[test]
fn another_uid_that_can_connect_is_refused_by_its_peer_credentials() {
    let dir = TempDir::new("uid-cred");
    traversable(&dir);
    let daemon = serve(&dir, Behaviour::Answer);
    // Opened up on purpose so the uid check itself is what refuses.
    fs::set_permissions(dir.socket(), fs::Permissions::from_mode(0o666)).unwrap();
    if let Some(code) = as_nobody(&dir.socket()) {
        assert_eq!(
            code, CHILD_REFUSED_PERMISSION,
            "the child must connect and be refused \"permission denied\""
        );
        assert!(
            daemon.seen().is_empty(),
            "a refused peer reached the daemon"
        );
    }
    // Root still gets through.
    assert!(
        request(&dir.socket(), &Request::Status, TIMEOUT)
            .unwrap()
            .ok
    );
}
