//! The local health checks against real processes and files: `exec` (a command),
//! `file` (keepalived's track_file) and `process` (by name and by pidfile).
//!
//! Every process here is one this test starts (process checks match a copy of `sleep`
//! under a unique name, so no other process on the host can match), every file is in a
//! temporary directory removed on success and failure. Timings are printed (`--nocapture`)
//! and asserted with generous bounds: the checks are event driven, the bounds only catch a
//! watcher that fell back to waiting for a rescan or a poll.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use vipkeeper::health::exec::{self, ExecSettings};
use vipkeeper::health::file::{self, FileSettings};
use vipkeeper::health::process::{self, ProcessMatch, ProcessSettings};
use vipkeeper::health::ProbeOutcome;

/// How long an event-driven report may take before the test calls it missing.
const BOUND: Duration = Duration::from_secs(1);

/// A directory of its own, removed on drop (so also when a test panics).
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vipkeeper-health-local-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create the temporary directory");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child this test started; killed (by its own handle, so only it) and reaped on drop.
struct Started(Child);

impl Started {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, without reaping: the checks must see the death, not our wait.
    fn kill(&mut self) {
        self.0.kill().expect("kill our child");
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A copy of `sleep` with a name nothing else on the host has, started as `name 30`.
struct Sleeper {
    program: PathBuf,
    name: String,
}

impl Sleeper {
    fn new(dir: &TempDir, tag: &str) -> Sleeper {
        // comm keeps 15 bytes: "vk" + tag (1) + pid (≤ 7) + counter fits.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "vk{tag}{}{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        assert!(name.len() <= 15, "{name}");
        let program = dir.path(&name);
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("a sleep binary");
        fs::copy(sleep, &program).expect("copy sleep");
        Sleeper { program, name }
    }

    fn start(&self) -> Started {
        Started(
            Command::new(&self.program)
                .arg("30")
                .spawn()
                .expect("start the sleeper"),
        )
    }
}

/// The next outcome and how long it took, or a panic after [`BOUND`].
async fn next(rx: &mut UnboundedReceiver<ProbeOutcome>, what: &str) -> (ProbeOutcome, Duration) {
    let started = Instant::now();
    match tokio::time::timeout(BOUND, rx.recv()).await {
        Ok(Some(outcome)) => {
            let took = started.elapsed();
            println!("{what}: {outcome:?} after {took:?}");
            (outcome, took)
        }
        Ok(None) => panic!("{what}: the watcher stopped"),
        Err(_) => panic!("{what}: nothing reported within {BOUND:?}"),
    }
}

/// Asserts nothing is reported for a while (no duplicates, no spurious changes).
async fn quiet(rx: &mut UnboundedReceiver<ProbeOutcome>, what: &str) {
    if let Ok(outcome) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("{what}: unexpected {outcome:?}");
    }
}

fn down_reason(outcome: &ProbeOutcome) -> &str {
    match outcome {
        ProbeOutcome::Down { reason } => reason,
        other => panic!("expected Down, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// exec

fn settings(argv: &[&str], shell: bool) -> ExecSettings {
    ExecSettings {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        shell,
    }
}

#[tokio::test]
async fn exec_true_is_up() {
    let outcome = exec::probe(&settings(&["true"], false), Duration::from_secs(5)).await;
    assert_eq!(outcome, ProbeOutcome::Up);
}

#[tokio::test]
async fn exec_arguments_are_not_shell_words() {
    // Without a shell, `$HOME` and `;` reach the program as they are.
    let outcome = exec::probe(
        &settings(&["test", "$HOME;", "=", "$HOME;"], false),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(outcome, ProbeOutcome::Up);
}

#[tokio::test]
async fn exec_exit_code_is_down() {
    let outcome = exec::probe(&settings(&["exit 3"], true), Duration::from_secs(5)).await;
    assert_eq!(outcome, ProbeOutcome::down("exit 3"));
    let outcome = exec::probe(
        &settings(&["echo 'backend down' >&2; exit 3"], true),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(outcome, ProbeOutcome::down("exit 3: backend down"));
}

#[tokio::test]
async fn exec_missing_program_is_down_naming_it() {
    let outcome = exec::probe(
        &settings(&["/nonexistent/vipkeeper-no-such-check"], false),
        Duration::from_secs(5),
    )
    .await;
    let reason = down_reason(&outcome);
    assert!(
        reason.contains("/nonexistent/vipkeeper-no-such-check"),
        "{reason}"
    );
}

#[tokio::test]
async fn exec_not_executable_is_down_naming_it() {
    let dir = TempDir::new("exec");
    let script = dir.path("not-executable");
    fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write the script");
    let outcome = exec::probe(
        &settings(&[script.to_str().expect("utf-8 path")], false),
        Duration::from_secs(5),
    )
    .await;
    let reason = down_reason(&outcome);
    assert!(reason.contains("not-executable"), "{reason}");
}

#[tokio::test]
async fn exec_timeout_kills_the_whole_group() {
    let dir = TempDir::new("exec");
    let pidfile = dir.path("grandchild.pid");
    // The inner shell is a child of the probe's shell; its background sleep a grandchild.
    let script = format!(
        "sh -c 'sleep 30 & echo $! > {}; sleep 30'; sleep 10",
        pidfile.display()
    );
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let outcome = exec::probe(&settings(&[&script], true), timeout).await;
    let took = started.elapsed();
    println!("exec timeout {timeout:?}: {outcome:?} after {took:?}");
    assert_eq!(outcome, ProbeOutcome::down("timed out after 300ms"));
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");

    let text = fs::read_to_string(&pidfile).expect("the script wrote the grandchild's pid");
    let grandchild: u32 = text.trim().parse().expect("a pid");
    let deadline = Instant::now() + BOUND;
    while !dead(grandchild) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        dead(grandchild),
        "grandchild {grandchild} survived the timeout"
    );
}

#[tokio::test]
async fn exec_cancelled_probe_leaves_nothing_running() {
    // The runner may drop a probe future (shutdown, reload): its processes go with it.
    let dir = TempDir::new("exec");
    let pidfile = dir.path("child.pid");
    let script = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
    let command = settings(&[&script], true);
    let probe = exec::probe(&command, Duration::from_secs(30));
    let cancelled = tokio::time::timeout(Duration::from_millis(300), probe).await;
    assert!(cancelled.is_err(), "the probe should still be running");

    let text = fs::read_to_string(&pidfile).expect("the script wrote its child's pid");
    let child: u32 = text.trim().parse().expect("a pid");
    let deadline = Instant::now() + BOUND;
    while !dead(child) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(dead(child), "{child} survived the cancelled probe");
}

/// Gone, or a zombie left for whoever inherited it to reap.
fn dead(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

// ---------------------------------------------------------------------------------------
// file

#[tokio::test]
async fn file_values_follow_writes_renames_and_deletes() {
    let dir = TempDir::new("file");
    let path = dir.path("weight");
    fs::write(&path, "5\n").expect("write");
    let (tx, mut rx) = unbounded_channel();
    let watcher = tokio::spawn(file::watch(FileSettings { path: path.clone() }, tx));

    assert_eq!(
        next(&mut rx, "file initial").await.0,
        ProbeOutcome::Value(5)
    );

    fs::write(&path, "7\n").expect("write");
    let (outcome, took) = next(&mut rx, "file write").await;
    assert_eq!(outcome, ProbeOutcome::Value(7));
    assert!(took < BOUND);

    // The same value again is not reported.
    fs::write(&path, " 7 ").expect("write");
    quiet(&mut rx, "file same value").await;

    let staging = dir.path(".weight.new");
    fs::write(&staging, "-20").expect("write");
    fs::rename(&staging, &path).expect("rename over");
    let (outcome, _) = next(&mut rx, "file atomic rename").await;
    assert_eq!(outcome, ProbeOutcome::Value(-20));

    fs::remove_file(&path).expect("delete");
    let (outcome, _) = next(&mut rx, "file delete").await;
    assert_eq!(outcome, ProbeOutcome::Value(0), "missing counts as 0");

    fs::write(&path, "12\n").expect("recreate");
    let (outcome, _) = next(&mut rx, "file recreate").await;
    assert_eq!(outcome, ProbeOutcome::Value(12));

    fs::write(&path, "twelve\n").expect("write");
    let (outcome, _) = next(&mut rx, "file not an integer").await;
    assert_eq!(
        outcome,
        ProbeOutcome::Value(0),
        "not an integer counts as 0"
    );

    // Other files in the directory are none of its business.
    fs::write(dir.path("other"), "99").expect("write");
    quiet(&mut rx, "file other name").await;

    drop(rx);
    tokio::time::timeout(BOUND, watcher)
        .await
        .expect("the watcher returns once the receiver is gone")
        .expect("the watcher did not panic");
}

#[tokio::test]
async fn file_in_a_missing_directory_is_zero_until_it_appears() {
    let dir = TempDir::new("file");
    let sub = dir.path("later");
    let path = sub.join("weight");
    let (tx, mut rx) = unbounded_channel();
    let _watcher = tokio::spawn(file::watch(FileSettings { path: path.clone() }, tx));
    assert_eq!(next(&mut rx, "file no dir").await.0, ProbeOutcome::Value(0));
    fs::create_dir(&sub).expect("mkdir");
    fs::write(&path, "3").expect("write");
    // Found by the retry (1 s), not by inotify: allow for it.
    let outcome = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await;
    assert_eq!(outcome, Ok(Some(ProbeOutcome::Value(3))));
    // From now on the directory is watched: changes are immediate again.
    fs::write(&path, "4").expect("write");
    assert_eq!(
        next(&mut rx, "file after dir").await.0,
        ProbeOutcome::Value(4)
    );
}

// ---------------------------------------------------------------------------------------
// process

fn by_name(name: &str) -> ProcessSettings {
    ProcessSettings {
        matcher: ProcessMatch::Name(name.to_owned()),
        rescan: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn process_by_name_death_and_restart() {
    let dir = TempDir::new("proc");
    let sleeper = Sleeper::new(&dir, "n");
    let (tx, mut rx) = unbounded_channel();
    let watcher = tokio::spawn(process::watch(by_name(&sleeper.name), tx));
    let missing = ProbeOutcome::down(format!("no process named {}", sleeper.name));
    assert_eq!(next(&mut rx, "process absent").await.0, missing);

    let mut first = sleeper.start();
    assert_eq!(next(&mut rx, "process started").await.0, ProbeOutcome::Up);
    quiet(&mut rx, "process steady").await;

    first.kill();
    let (outcome, took) = next(&mut rx, "process killed").await;
    assert_eq!(outcome, missing);
    println!("process death reported after {took:?}");
    assert!(took < BOUND);
    drop(first);

    let _second = sleeper.start();
    let (outcome, took) = next(&mut rx, "process restarted").await;
    assert_eq!(outcome, ProbeOutcome::Up);
    assert!(took < BOUND, "found by the 100 ms rescan");

    drop(rx);
    tokio::time::timeout(BOUND, watcher)
        .await
        .expect("the watcher returns once the receiver is gone")
        .expect("the watcher did not panic");
}

#[tokio::test]
async fn process_by_name_is_up_while_any_instance_lives() {
    // HAProxy master-worker: several processes share the name.
    let dir = TempDir::new("proc");
    let sleeper = Sleeper::new(&dir, "m");
    let mut master = sleeper.start();
    let mut worker = sleeper.start();
    let (tx, mut rx) = unbounded_channel();
    let _watcher = tokio::spawn(process::watch(by_name(&sleeper.name), tx));
    assert_eq!(next(&mut rx, "instances").await.0, ProbeOutcome::Up);

    worker.kill();
    quiet(&mut rx, "one instance left").await;

    // A new instance appears (a reload) and the old one goes: still Up throughout.
    let mut reloaded = sleeper.start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    master.kill();
    quiet(&mut rx, "reloaded").await;

    reloaded.kill();
    let (outcome, took) = next(&mut rx, "last instance killed").await;
    assert_eq!(
        outcome,
        ProbeOutcome::down(format!("no process named {}", sleeper.name))
    );
    assert!(took < BOUND);
}

#[tokio::test]
async fn process_by_pidfile_death_and_restart() {
    let dir = TempDir::new("proc");
    let sleeper = Sleeper::new(&dir, "p");
    let pidfile = dir.path("sleeper.pid");
    let shown = pidfile.display().to_string();
    let (tx, mut rx) = unbounded_channel();
    let settings = ProcessSettings {
        matcher: ProcessMatch::Pidfile(pidfile.clone()),
        // Long: the restart below must be seen through the pidfile's inotify watch.
        rescan: Duration::from_secs(30),
    };
    let _watcher = tokio::spawn(process::watch(settings, tx));
    let (outcome, _) = next(&mut rx, "pidfile missing").await;
    assert!(
        down_reason(&outcome).starts_with(&format!("cannot read {shown}")),
        "{outcome:?}"
    );

    let mut first = sleeper.start();
    fs::write(&pidfile, format!("{}\n", first.pid())).expect("write the pidfile");
    let (outcome, took) = next(&mut rx, "pidfile written").await;
    assert_eq!(outcome, ProbeOutcome::Up);
    assert!(took < BOUND);

    first.kill();
    let (outcome, took) = next(&mut rx, "pidfile process killed").await;
    assert_eq!(
        outcome,
        ProbeOutcome::down(format!("pid {} from {shown} exited", first.pid()))
    );
    println!("pidfile process death reported after {took:?}");
    assert!(took < BOUND);
    drop(first);

    // A restart: a new process, the pidfile replaced atomically.
    let second = sleeper.start();
    let staging = dir.path("sleeper.pid.new");
    fs::write(&staging, format!("{}\n", second.pid())).expect("write");
    fs::rename(&staging, &pidfile).expect("rename over");
    let (outcome, took) = next(&mut rx, "pidfile restarted").await;
    assert_eq!(outcome, ProbeOutcome::Up);
    assert!(took < BOUND);

    fs::write(&pidfile, "garbage").expect("write");
    let (outcome, _) = next(&mut rx, "pidfile garbage").await;
    assert_eq!(outcome, ProbeOutcome::down(format!("no pid in {shown}")));
}

/// CPU time (user + system, in clock ticks, usually 10 ms) of the calling thread, which is
/// the one running the current-thread runtime and so every watcher spawned on it.
fn thread_cpu_ticks() -> u64 {
    let stat = fs::read_to_string("/proc/thread-self/stat").expect("our thread's stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat format");
    // After the comm: state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields[n - 3].parse::<u64>().expect("a tick count");
    field(14) + field(15)
}

#[tokio::test]
async fn idle_watchers_do_not_spin() {
    let dir = TempDir::new("idle");
    let sleeper = Sleeper::new(&dir, "i");
    let running = sleeper.start();
    let path = dir.path("weight");
    fs::write(&path, "1").expect("write");
    let pidfile = dir.path("sleeper.pid");
    fs::write(&pidfile, format!("{}", running.pid())).expect("write");

    let (tx, mut rx) = unbounded_channel();
    let _file = tokio::spawn(file::watch(FileSettings { path }, tx.clone()));
    let _name = tokio::spawn(process::watch(by_name(&sleeper.name), tx.clone()));
    let _pidfile = tokio::spawn(process::watch(
        ProcessSettings {
            matcher: ProcessMatch::Pidfile(pidfile),
            rescan: Duration::from_millis(100),
        },
        tx,
    ));
    for what in ["idle 1", "idle 2", "idle 3"] {
        next(&mut rx, what).await;
    }
    let before = thread_cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = thread_cpu_ticks() - before;
    println!("three idle watchers (two rescanning every 100 ms) used {used} ticks in 1 s");
    // A spinning watcher would use ~100 ticks; rescans cost a few.
    assert!(used < 30, "{used} ticks");
    quiet(&mut rx, "idle").await;
}
