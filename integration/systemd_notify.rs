//! `vipkeeper::systemd` against fake notify sockets: a `UnixDatagram` bound in a temp dir and
//! one bound to an abstract name, standing in for systemd's. Environment-dependent checks
//! (`SdNotify::from_env`, `watchdog_interval`) run in a child process, this test binary
//! re-executed with `--exact child_probe` and its own environment, because the environment is
//! process-global and tests run in parallel threads. Runs anywhere, as any user.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vipkeeper::systemd::{self, SdNotify};

/// Marks the re-executed child; its value says nothing, the other variables do.
const CHILD_ENV: &str = "VIPKEEPER_SD_CHILD";

/// A directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "vipkeeper-sd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fake service manager's end.
struct Manager {
    socket: UnixDatagram,
    address: String,
    _dir: Option<TempDir>,
}

impl Manager {
    fn path() -> Manager {
        let dir = TempDir::new();
        let path = dir.0.join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        Manager::ready(socket, path.to_str().unwrap().to_owned(), Some(dir))
    }

    fn abstract_name(tag: &str) -> Manager {
        let name = format!("vipkeeper-sd-test-{}-{tag}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        Manager::ready(socket, format!("@{name}"), None)
    }

    fn ready(socket: UnixDatagram, address: String, dir: Option<TempDir>) -> Manager {
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Manager {
            socket,
            address,
            _dir: dir,
        }
    }

    fn notifier(&self) -> SdNotify {
        SdNotify::from_address(&self.address).unwrap()
    }

    fn receive(&self) -> String {
        let mut buffer = [0u8; 4096];
        let length = self
            .socket
            .recv(&mut buffer)
            .expect("no notification within 10 s");
        String::from_utf8(buffer[..length].to_vec()).unwrap()
    }
}

/// CLOCK_MONOTONIC in µs from another implementation than ours, when python3 is there.
fn reference_monotonic_usec() -> Option<u64> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)",
        ])
        .output()
        .ok()?;
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

/// Every message kind, in the order a daemon's life sends them.
fn exchange(manager: &Manager) {
    let notify = manager.notifier();
    assert_eq!(notify.address(), manager.address);

    notify.status("starting: 2 instances").unwrap();
    assert_eq!(manager.receive(), "STATUS=starting: 2 instances");

    notify.ready("vi_web MASTER, vi_db BACKUP").unwrap();
    assert_eq!(
        manager.receive(),
        "READY=1\nSTATUS=vi_web MASTER, vi_db BACKUP"
    );
    notify.ready("").unwrap();
    assert_eq!(manager.receive(), "READY=1");

    let before = reference_monotonic_usec();
    notify.reloading().unwrap();
    let after = reference_monotonic_usec();
    let message = manager.receive();
    let mut lines = message.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{message:?}");
    let stamp: u64 = lines
        .next()
        .and_then(|line| line.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {message:?}"))
        .parse()
        .unwrap();
    assert_eq!(lines.next(), None, "{message:?}");
    match (before, after) {
        // Same clock as clock_gettime(CLOCK_MONOTONIC), read between two readings of it.
        (Some(before), Some(after)) => assert!(
            before <= stamp && stamp <= after,
            "MONOTONIC_USEC={stamp} not within [{before}, {after}]"
        ),
        _ => eprintln!("python3 missing: MONOTONIC_USEC not compared with clock_gettime"),
    }

    notify.watchdog().unwrap();
    assert_eq!(manager.receive(), "WATCHDOG=1");

    notify.status("line one\nREADY=1").unwrap();
    assert_eq!(manager.receive(), "STATUS=line one READY=1");

    notify.stopping().unwrap();
    assert_eq!(manager.receive(), "STOPPING=1");
}

#[test]
fn path_socket_receives_every_message() {
    exchange(&Manager::path());
}

#[test]
fn abstract_socket_receives_every_message() {
    exchange(&Manager::abstract_name("exchange"));
}

#[test]
fn manager_gone_is_an_error_not_a_panic() {
    let manager = Manager::path();
    let notify = manager.notifier();
    let path = manager.address.clone();
    drop(manager); // socket closed, file and directory removed
    let error = notify.ready("up").unwrap_err();
    assert!(error.to_string().contains(&path), "{error}");
    assert!(notify.watchdog().is_err());
}

/// The child's half: prints what it saw of the environment and notifies through it.
#[test]
fn child_probe() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // libtest writes `test child_probe ... ` without a newline before the test's own output.
    println!("\nwatchdog={:?}", systemd::watchdog_interval());
    match SdNotify::from_env() {
        Some(notify) => {
            notify
                .ready(&format!("child {}", std::process::id()))
                .unwrap();
            println!("notify={}", notify.address());
        }
        None => println!("notify=none"),
    }
    // Left set: a second look finds the same socket.
    println!(
        "still_set={}",
        std::env::var_os("NOTIFY_SOCKET").is_some() == SdNotify::from_env().is_some()
    );
}

/// Runs `child_probe` in a child with `env` (and nothing inherited of the systemd variables);
/// `own_watchdog_pid` makes the shell set WATCHDOG_PID to the child's own pid before `exec`.
fn run_child(env: &[(&str, &str)], own_watchdog_pid: bool) -> (String, u32) {
    let exe = std::env::current_exe().unwrap();
    let mut command = if own_watchdog_pid {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@""#)
            .arg(&exe);
        command
    } else {
        Command::new(&exe)
    };
    command
        .args(["--exact", "child_probe", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "child_probe did not run: {stdout}"
    );
    (stdout, pid)
}

fn value<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {stdout}"))
}

#[test]
fn from_env_path_and_watchdog_without_pid() {
    let manager = Manager::path();
    let (stdout, pid) = run_child(
        &[
            ("NOTIFY_SOCKET", &manager.address),
            ("WATCHDOG_USEC", "30000000"),
        ],
        false,
    );
    assert_eq!(value(&stdout, "watchdog"), "Some(30s)");
    assert_eq!(value(&stdout, "notify"), manager.address);
    assert_eq!(value(&stdout, "still_set"), "true");
    assert_eq!(manager.receive(), format!("READY=1\nSTATUS=child {pid}"));
}

#[test]
fn from_env_abstract_and_watchdog_for_own_pid() {
    let manager = Manager::abstract_name("env");
    let (stdout, pid) = run_child(
        &[
            ("NOTIFY_SOCKET", &manager.address),
            ("WATCHDOG_USEC", "2500000"),
        ],
        true,
    );
    assert_eq!(value(&stdout, "watchdog"), "Some(2.5s)");
    assert_eq!(value(&stdout, "notify"), manager.address);
    // The shell exec'd the test binary: same pid, so WATCHDOG_PID was the child's own.
    assert_eq!(manager.receive(), format!("READY=1\nSTATUS=child {pid}"));
}

#[test]
fn watchdog_for_another_pid_is_ignored() {
    // What a hook sees when it inherits the daemon's variables.
    let parent = std::process::id().to_string();
    let (stdout, _) = run_child(
        &[("WATCHDOG_USEC", "30000000"), ("WATCHDOG_PID", &parent)],
        false,
    );
    assert_eq!(value(&stdout, "watchdog"), "None");
    assert_eq!(value(&stdout, "notify"), "none");
}

#[test]
fn nothing_set_means_no_notify_and_no_watchdog() {
    let (stdout, _) = run_child(&[("NOTIFY_SOCKET", "")], false);
    assert_eq!(value(&stdout, "watchdog"), "None");
    assert_eq!(value(&stdout, "notify"), "none");
    let (stdout, _) = run_child(&[("WATCHDOG_USEC", "0")], false);
    assert_eq!(value(&stdout, "watchdog"), "None");
}
