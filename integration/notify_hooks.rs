//! The hook runner against real processes, and script security against real files.
//!
//! Every hook is a script this test writes into a directory of its own (under cargo's
//! target tmp dir, whose parents are root-owned 0755, so script security can say yes),
//! removed on success and failure. The only processes signalled by the test itself are
//! ones its hooks started and named in a pid file (`Sleeper`); everything else is killed
//! by the runner under test. Waits are bounded; timings are printed (`--nocapture`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use vipkeeper::notify::runner::Notifier;
use vipkeeper::notify::security::{check_path, SecurityError};
use vipkeeper::notify::{
    CommandHook, Hook, HookReport, HookSet, HookState, Notification, QueuePolicy, Scope,
};

/// A directory of its own, removed on drop (so also when a test panics).
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "notify-hooks-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create the temporary directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A 0755 `/bin/sh` script; `OUT` in the body is this directory.
    fn script(&self, name: &str, body: &str) -> String {
        let path = self.path(name);
        let text = format!("#!/bin/sh\nexport OUT='{}'\n{body}\n", self.0.display());
        fs::write(&path, text).expect("write the script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod the script");
        path.to_string_lossy().into_owned()
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A process a hook started and wrote to a pid file; killed on drop if still alive (only
/// if it is still our `sleep 37`, so a recycled pid is never hit).
struct Sleeper(Option<i32>);

impl Sleeper {
    const SECONDS: &'static str = "37";

    fn read(path: &Path) -> Sleeper {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Ok(pid) = fs::read_to_string(path).unwrap_or_default().trim().parse() {
                return Sleeper(Some(pid));
            }
            assert!(Instant::now() < deadline, "no pid in {}", path.display());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn alive(&self) -> bool {
        let Some(pid) = self.0 else { return false };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let ours = cmdline == format!("sleep\0{}\0", Self::SECONDS).as_bytes();
        // A killed process not reaped yet by its new parent is a zombie: dead.
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        ours && !zombie
    }

    fn wait_dead(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while self.alive() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        if let (true, Some(pid)) = (self.alive(), self.0) {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status();
        }
    }
}

fn command(program: String, timeout: Duration) -> Hook {
    Hook::Command(CommandHook {
        argv: vec![program],
        shell: false,
        timeout,
    })
}

fn notification(name: &str, state: HookState) -> Notification {
    Notification {
        scope: Scope::Instance,
        name: name.to_owned(),
        state,
        prev_state: "BACKUP".to_owned(),
        priority: 100,
        vips: vec!["192.0.2.10/24".to_owned(), "192.0.2.11/24".to_owned()],
        reason: "peer advert with priority 0".to_owned(),
    }
}

/// The same hooks for master, backup and fault.
fn on_every_state(hooks: Vec<Hook>, queue: QueuePolicy) -> Arc<HookSet> {
    Arc::new(HookSet {
        master: hooks.clone(),
        backup: hooks.clone(),
        fault: hooks,
        queue,
        ..HookSet::default()
    })
}

fn start() -> (Notifier, UnboundedReceiver<HookReport>) {
    init_log();
    let (tx, rx) = unbounded_channel();
    (Notifier::start(tx).expect("start the notifier"), rx)
}

/// The next report, or a panic after `bound`.
fn next_report(rx: &mut UnboundedReceiver<HookReport>, bound: Duration) -> HookReport {
    let deadline = Instant::now() + bound;
    loop {
        if let Ok(report) = rx.try_recv() {
            println!("{report:?}");
            return report;
        }
        assert!(Instant::now() < deadline, "no report within {bound:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

const BURST: [HookState; 5] = [
    HookState::Master,
    HookState::Backup,
    HookState::Fault,
    HookState::Master,
    HookState::Backup,
];

#[test]
fn a_burst_runs_in_exact_transition_order() {
    let dir = TempDir::new("order");
    // The sleep makes the transitions pile up behind the first.
    let hook = dir.script(
        "record",
        "sleep 0.05; echo \"$VIPKEEPER_STATE\" >> \"$OUT/states\"",
    );
    let hooks = on_every_state(
        vec![command(hook, Duration::from_secs(5))],
        QueuePolicy::All,
    );
    let (notifier, mut rx) = start();
    for state in BURST {
        notifier.notify(Arc::clone(&hooks), notification("vi_1", state));
    }
    notifier.drain(Duration::from_secs(10));
    assert_eq!(
        dir.read("states"),
        "MASTER\nBACKUP\nFAULT\nMASTER\nBACKUP\n"
    );
    let states: Vec<_> = (0..5)
        .map(|_| next_report(&mut rx, Duration::from_secs(1)))
        .inspect(|report| assert_eq!(report.result, Ok("exit 0".to_owned())))
        .map(|report| report.state)
        .collect();
    assert_eq!(states, BURST);
}

#[test]
fn latest_policy_keeps_the_running_and_the_newest_transition() {
    let dir = TempDir::new("latest");
    let hook = dir.script(
        "record",
        "sleep 0.3; echo \"$VIPKEEPER_STATE\" >> \"$OUT/states\"",
    );
    let hooks = on_every_state(
        vec![command(hook, Duration::from_secs(5))],
        QueuePolicy::Latest,
    );
    let (notifier, mut rx) = start();
    for state in BURST {
        notifier.notify(Arc::clone(&hooks), notification("vi_1", state));
    }
    notifier.drain(Duration::from_secs(10));
    assert_eq!(dir.read("states"), "MASTER\nBACKUP\n");
    assert_eq!(
        next_report(&mut rx, Duration::from_secs(1)).state,
        HookState::Master
    );
    assert_eq!(
        next_report(&mut rx, Duration::from_secs(1)).state,
        HookState::Backup
    );
    assert!(rx.try_recv().is_err(), "only two transitions ran");
}

#[test]
fn any_hook_gets_keepalived_arguments_and_all_hooks_the_environment() {
    let dir = TempDir::new("args");
    let own = dir.script("own", "echo own >> \"$OUT/order\"");
    let any = dir.script(
        "generic",
        "echo any >> \"$OUT/order\"\n\
         printf '%s|%s|%s|%s|%s\\n' \"$#\" \"$1\" \"$2\" \"$3\" \"$4\" > \"$OUT/args\"\n\
         env | grep '^VIPKEEPER_' | sort > \"$OUT/env\"",
    );
    // The same through a shell: the four arguments are the script's $1..$4.
    let shell_any = Hook::Command(CommandHook {
        argv: vec![format!(
            "printf '%s %s %s %s' \"$1\" \"$2\" \"$3\" \"$4\" > '{}'",
            dir.path("shell_args").display()
        )],
        shell: true,
        timeout: Duration::from_secs(5),
    });
    let hooks = Arc::new(HookSet {
        master: vec![command(own, Duration::from_secs(5))],
        any: vec![command(any, Duration::from_secs(5)), shell_any],
        ..HookSet::default()
    });
    let (notifier, mut rx) = start();
    notifier.notify(hooks, notification("vi_web", HookState::Master));
    notifier.drain(Duration::from_secs(10));
    for _ in 0..3 {
        assert!(next_report(&mut rx, Duration::from_secs(1)).result.is_ok());
    }
    assert_eq!(dir.read("order"), "own\nany\n");
    assert_eq!(dir.read("args"), "4|INSTANCE|vi_web|MASTER|100\n");
    assert_eq!(dir.read("shell_args"), "INSTANCE vi_web MASTER 100");
    assert_eq!(
        dir.read("env"),
        "VIPKEEPER_INSTANCE=vi_web\n\
         VIPKEEPER_PREV_STATE=BACKUP\n\
         VIPKEEPER_PRIORITY=100\n\
         VIPKEEPER_REASON=peer advert with priority 0\n\
         VIPKEEPER_STATE=MASTER\n\
         VIPKEEPER_VIPS=192.0.2.10/24 192.0.2.11/24\n"
    );
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_grandchildren() {
    let dir = TempDir::new("timeout");
    // The grandchild ignores SIGTERM: only the group SIGKILL ends it.
    let hook = dir.script(
        "hang",
        &format!(
            "sh -c 'trap \"\" TERM; sleep {} & echo $! > \"$OUT/pid\"; wait'",
            Sleeper::SECONDS
        ),
    );
    let timeout = Duration::from_millis(300);
    let hooks = on_every_state(vec![command(hook, timeout)], QueuePolicy::All);
    let (notifier, mut rx) = start();
    let started = Instant::now();
    notifier.notify(hooks, notification("vi_1", HookState::Master));
    let sleeper = Sleeper::read(&dir.path("pid"));
    let report = next_report(&mut rx, Duration::from_secs(3));
    let took = started.elapsed();
    println!("timed out and reported after {took:?}");
    assert_eq!(
        report.result,
        Err("timed out after 300ms; process group killed".to_owned())
    );
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    assert!(
        sleeper.wait_dead(Duration::from_secs(1)),
        "the grandchild survived"
    );
}

#[test]
fn a_failing_hook_is_reported_and_the_next_one_still_runs() {
    let dir = TempDir::new("fail");
    let fail = dir.script("fail", "echo 'something broke' >&2; exit 3");
    let next = dir.script("next", "touch \"$OUT/ran\"");
    let missing = dir.path("missing").to_string_lossy().into_owned();
    let hooks = on_every_state(
        vec![
            command(fail, Duration::from_secs(5)),
            command(missing.clone(), Duration::from_secs(5)),
            command(next, Duration::from_secs(5)),
        ],
        QueuePolicy::All,
    );
    let (notifier, mut rx) = start();
    notifier.notify(Arc::clone(&hooks), notification("vi_1", HookState::Master));
    notifier.notify(hooks, notification("vi_1", HookState::Backup));
    notifier.drain(Duration::from_secs(10));
    for state in [HookState::Master, HookState::Backup] {
        let failed = next_report(&mut rx, Duration::from_secs(1));
        assert_eq!((failed.state, failed.hook.as_str()), (state, "fail"));
        assert_eq!(failed.result, Err("exit 3".to_owned()));
        let spawn = next_report(&mut rx, Duration::from_secs(1));
        let reason = spawn.result.expect_err("a missing program fails");
        assert!(
            reason.starts_with(&format!("cannot run {missing}")),
            "{reason}"
        );
        let ran = next_report(&mut rx, Duration::from_secs(1));
        assert_eq!(
            (ran.hook.as_str(), ran.result),
            ("next", Ok("exit 0".to_owned()))
        );
    }
    assert!(dir.path("ran").exists());
}

#[test]
fn a_hanging_owner_does_not_delay_another() {
    let dir = TempDir::new("owners");
    let hang = dir.script("hang", "exec sleep 20");
    let quick = dir.script("quick", "touch \"$OUT/b_done\"");
    let a_hooks = on_every_state(
        vec![command(hang, Duration::from_secs(20))],
        QueuePolicy::All,
    );
    let b_hooks = on_every_state(
        vec![command(quick, Duration::from_secs(5))],
        QueuePolicy::All,
    );
    let (notifier, mut rx) = start();
    let started = Instant::now();
    notifier.notify(a_hooks, notification("vi_a", HookState::Master));
    notifier.notify(b_hooks, notification("vi_b", HookState::Master));
    let report = next_report(&mut rx, Duration::from_secs(2));
    println!("owner b done after {:?}", started.elapsed());
    assert_eq!(
        (report.owner.as_str(), report.result),
        ("vi_b", Ok("exit 0".to_owned()))
    );
    assert!(dir.path("b_done").exists());

    // Shutdown while A still hangs: drain keeps to its budget and A's hook is killed.
    let budget = Duration::from_millis(500);
    let draining = Instant::now();
    notifier.drain(budget);
    let took = draining.elapsed();
    println!("drain with a hanging hook returned after {took:?}");
    assert!(took <= budget + Duration::from_millis(50), "{took:?}");
    let report = next_report(&mut rx, Duration::from_secs(1));
    assert_eq!(report.owner, "vi_a");
    let reason = report.result.expect_err("a killed hook failed");
    assert!(reason.contains("shutdown budget"), "{reason}");
}

#[test]
fn dropping_the_notifier_kills_running_hooks() {
    let dir = TempDir::new("drop");
    let hang = dir.script(
        "hang",
        &format!("echo $$ > \"$OUT/pid\"; exec sleep {}", Sleeper::SECONDS),
    );
    let hooks = on_every_state(
        vec![command(hang, Duration::from_secs(20))],
        QueuePolicy::All,
    );
    let (notifier, _rx) = start();
    notifier.notify(hooks, notification("vi_1", HookState::Master));
    let sleeper = Sleeper::read(&dir.path("pid"));
    // The exec may not have happened yet when the pid is read; wait for our sleep.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !sleeper.alive() {
        assert!(Instant::now() < deadline, "the hook never became `sleep`");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(notifier);
    assert!(
        sleeper.wait_dead(Duration::from_secs(1)),
        "the hook survived the notifier"
    );
}

#[test]
fn drain_returns_once_queued_hooks_finished() {
    let dir = TempDir::new("drain");
    let hook = dir.script(
        "record",
        "sleep 0.1; echo \"$VIPKEEPER_STATE\" >> \"$OUT/states\"",
    );
    let mut hooks = HookSet {
        stop: vec![command(hook, Duration::from_secs(5))],
        ..HookSet::default()
    };
    hooks.master = hooks.stop.clone();
    let hooks = Arc::new(hooks);
    let (notifier, mut rx) = start();
    let started = Instant::now();
    notifier.notify(Arc::clone(&hooks), notification("vi_1", HookState::Master));
    notifier.notify(Arc::clone(&hooks), notification("vi_1", HookState::Stop));
    notifier.notify(hooks, notification("vi_2", HookState::Stop));
    notifier.drain(Duration::from_secs(10));
    let took = started.elapsed();
    println!("drain after three 100 ms hooks (two owners): {took:?}");
    // vi_1 runs two in a row; vi_2 in parallel with them.
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let lines = dir.read("states");
    assert_eq!(lines.lines().filter(|l| *l == "STOP").count(), 2, "{lines}");
    for _ in 0..3 {
        assert!(next_report(&mut rx, Duration::from_millis(100))
            .result
            .is_ok());
    }
    // Nothing queued: returns at once.
    let idle = Instant::now();
    notifier.drain(Duration::from_secs(10));
    assert!(idle.elapsed() < Duration::from_millis(50));
}

#[test]
fn output_lines_are_logged_with_the_hook_name() {
    let dir = TempDir::new("log");
    let hook = dir.script(
        "talker",
        "echo 'first line from talker'; echo 'complaint from talker' >&2; printf 'no newline'",
    );
    let hooks = on_every_state(
        vec![command(hook, Duration::from_secs(5))],
        QueuePolicy::All,
    );
    let (notifier, mut rx) = start();
    notifier.notify(hooks, notification("vi_log", HookState::Master));
    notifier.drain(Duration::from_secs(10));
    assert!(next_report(&mut rx, Duration::from_secs(1)).result.is_ok());
    let log = logged();
    let line_of = |text: &str| {
        log.lines()
            .find(|line| line.contains(text))
            .unwrap_or_else(|| panic!("{text:?} not logged:\n{log}"))
            .to_owned()
    };
    for (text, stream) in [
        ("first line from talker", "stdout"),
        ("complaint from talker", "stderr"),
        ("no newline", "stdout"),
    ] {
        let line = line_of(text);
        // The fmt subscriber quotes string fields.
        let fields = format!("hook=\"talker\" owner=\"vi_log\" stream=\"{stream}\"");
        assert!(line.contains(&fields), "{line}");
    }
}

/// Script security, as root (the test host runs as root; otherwise there is nothing to
/// protect and check_path accepts everything, which is checked instead).
#[test]
fn script_security_refuses_paths_non_root_users_can_change() {
    let dir = TempDir::new("security");
    let script = PathBuf::from(dir.script("hook.sh", "exit 0"));
    if !rustix_is_root() {
        assert_eq!(check_path(&script), Ok(()));
        return;
    }
    assert_eq!(check_path(&script), Ok(()));

    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).expect("chmod 0777");
    assert_eq!(
        check_path(&script),
        Err(SecurityError::WorldWritable {
            path: dir.0.clone()
        })
    );
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).expect("chmod 0755");

    chown(&script, Some(1000), None).expect("chown the script");
    let error = check_path(&script).expect_err("owned by uid 1000");
    assert_eq!(
        error,
        SecurityError::NotRootOwned {
            path: script.clone(),
            uid: 1000
        }
    );
    println!("{error}");
    chown(&script, Some(0), None).expect("chown back");

    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o775)).expect("chmod 0775");
    chown(&dir.0, None, Some(1000)).expect("chgrp 1000");
    let error = check_path(&script).expect_err("group-writable by gid 1000");
    assert_eq!(
        error.to_string(),
        format!("{} is writable by group 1000", dir.0.display())
    );
    chown(&dir.0, None, Some(0)).expect("chgrp root");
    // Group-writable by root's group is fine.
    assert_eq!(check_path(&script), Ok(()));

    let missing = dir.path("missing.sh");
    assert_eq!(
        check_path(&missing),
        Err(SecurityError::Missing {
            path: missing.clone()
        })
    );
}

fn rustix_is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Everything logged by any test of this binary (the hook thread logs through the global
/// subscriber, so one buffer for all; tests look for their own unique lines).
static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_log() {
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(Arc::clone(&buffer));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
}

fn logged() -> String {
    let buffer = LOG.get().expect("init_log ran");
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}
