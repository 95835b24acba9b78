//! The `exec` probe: run a command, exit status 0 = Up (keepalived's `vrrp_script`).
//!
//! Owns one run of the command: spawning it in its own process group, capturing the tail
//! of its output for the Down reason, enforcing the timeout on the whole group, and reaping
//! it. It must not run a shell unless asked (`shell = true`), must not leave a zombie, and
//! must not block the runtime thread (the daemon's adverts share it).
//!
//! "A run still in flight is not started twice": this function does not track runs across
//! calls; the guarantee comes from the runner awaiting `probe` to completion before it
//! starts the next one (probes are run sequentially per check). A run never outlives its
//! `probe` future: if the future is dropped mid-run, the process group is SIGKILLed and the
//! leader reaped on a short-lived thread.
//!
//! Timeout: SIGTERM to the group, SIGKILL to the group after [`TERM_GRACE`], then the
//! leader is reaped; the outcome is Down "timed out after 1s" (a timeout counts as a
//! failure, as in keepalived). The leader is watched with a pidfd (Linux 5.3+), which says
//! "exited" without reaping it: while the leader is an unreaped zombie its pid, and so the
//! process group id, cannot be reused, so signalling the group can never hit a stranger.
//!
//! When the command exits by itself, processes it left running in the background are left
//! alone (as keepalived does); only a timeout kills the group.
//!
//! The process-group pieces ([`group_command`], [`Run`], [`kill_group`], [`describe_exit`],
//! [`read_some`]) are shared with the hook runner (`notify::runner`), which runs operators'
//! commands under the same rules but streams their output to the log.

use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::unix::pipe;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecSettings {
    /// Program and arguments; with `shell`, one string run by `/bin/sh -c`.
    pub argv: Vec<String>,
    pub shell: bool,
}

/// How much of each of stdout and stderr is kept (the end of it) for the Down reason.
const KEEP_OUTPUT: usize = 512;
/// Between SIGTERM and SIGKILL on timeout.
pub(crate) const TERM_GRACE: Duration = Duration::from_millis(100);
/// How long to wait for the leader after SIGKILL before handing it to a reaper thread
/// (a process in uninterruptible sleep cannot die at once).
const KILL_WAIT: Duration = Duration::from_secs(1);
/// After the leader exits, how long to keep reading output that a background child may
/// still hold open: we want the last words, not to wait for the background child.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_millis(50);
/// Removed from the command's environment, as keepalived does: the daemon's own loader
/// settings and field separator must not leak into operator scripts.
/// keepalived's three, plus systemd's notify variables: a hook must not be able to tell
/// systemd the daemon is ready or alive.
const SCRUBBED_ENV: [&str; 6] = [
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "IFS",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
];

/// Runs the command once and tells how it ended. See the module documentation.
pub async fn probe(settings: &ExecSettings, timeout: Duration) -> ProbeOutcome {
    let mut command = match group_command(&settings.argv, settings.shell, "vipkeeper-exec") {
        Ok(command) => command,
        Err(reason) => return ProbeOutcome::down(reason),
    };
    let program = command.get_program().to_string_lossy().into_owned();
    let (mut run, pidfd) = match Run::spawn(&mut command) {
        Ok(spawned) => spawned,
        Err(reason) => return ProbeOutcome::down(reason),
    };
    let deadline = Instant::now() + timeout;

    let mut output = Output::new(&mut run);
    let exited = tokio::select! {
        biased;
        _ = wait_exit(&pidfd) => true,
        _ = async {
            output.read_until(deadline).await;
            // Pipes closed early (or none): the deadline still stands for the process.
            sleep_until(deadline).await;
        } => false,
    };
    if exited {
        // Background children may hold the pipes open; take what is there and move on.
        let _ = timeout_at(Instant::now() + DRAIN_GRACE, output.read_until(deadline)).await;
        return match run.reap() {
            Some(status) => verdict(status, &output),
            None => ProbeOutcome::down(format!("{program}: lost track of the process")),
        };
    }

    kill_group(&mut run, &pidfd, TERM_GRACE).await;
    ProbeOutcome::down(format!("timed out after {timeout:?}"))
}

/// SIGTERM to the group, SIGKILL to the group after `grace`, then the leader is reaped (or,
/// if it does not die within [`KILL_WAIT`], reaped on a thread when `run` is dropped).
pub(crate) async fn kill_group(run: &mut Run, pidfd: &AsyncFd<OwnedFd>, grace: Duration) {
    run.signal_group(Signal::SIGTERM);
    let _ = timeout_at(Instant::now() + grace, wait_exit(pidfd)).await;
    // Unconditionally: grandchildren may ignore SIGTERM even when the leader did not. The
    // leader is not reaped yet, so the group id is still ours.
    run.signal_group(Signal::SIGKILL);
    if timeout_at(Instant::now() + KILL_WAIT, wait_exit(pidfd))
        .await
        .is_ok()
    {
        run.reap();
    }
    // Otherwise `run`'s drop reaps it on a thread.
}

/// The command for `argv` (or `/bin/sh -c argv[0] arg0 argv[1..]` with `shell`), in a
/// process group of its own, stdin null, stdout and stderr piped, loader variables and IFS
/// removed. Callers add arguments and environment before spawning it with [`Run::spawn`].
pub(crate) fn group_command(
    argv: &[String],
    shell: bool,
    arg0: &str,
) -> Result<Command, &'static str> {
    let Some((first, rest)) = argv.split_first() else {
        return Err("empty command");
    };
    let mut command = if shell {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(first);
        // Extra words (here or added by the caller) become the script's positional
        // parameters; $0 is conventional.
        command.arg(arg0).args(rest);
        command
    } else {
        let mut command = Command::new(first);
        command.args(rest);
        command
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout can kill everything it started.
        .process_group(0);
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    Ok(command)
}

/// A spawned command, until reaped. Dropping it unreaped kills the group and reaps off the
/// runtime thread, so neither a cancelled probe nor a stuck process leaves anything behind.
pub(crate) struct Run {
    child: Child,
    reaped: bool,
    pgid: Pid,
}

impl Run {
    /// Spawns `command` (from [`group_command`]) and opens the pidfd that tells when the
    /// leader exited. Errors name the program.
    pub(crate) fn spawn(command: &mut Command) -> Result<(Run, AsyncFd<OwnedFd>), String> {
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .spawn()
            .map_err(|error| format!("cannot run {program}: {error}"))?;
        let run = Run::new(child);
        // On error `run` is dropped, which kills and reaps what was started.
        let pidfd = run
            .pidfd()
            .map_err(|reason| format!("{program}: {reason}"))?;
        Ok((run, pidfd))
    }

    /// The leader's stdout and stderr pipes, as async receivers (once; then None).
    pub(crate) fn take_output(&mut self) -> (Option<pipe::Receiver>, Option<pipe::Receiver>) {
        let receiver =
            |fd: Option<OwnedFd>| fd.and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok());
        (
            receiver(self.child.stdout.take().map(OwnedFd::from)),
            receiver(self.child.stderr.take().map(OwnedFd::from)),
        )
    }

    fn new(child: Child) -> Run {
        // With process_group(0) the group id is the leader's pid.
        let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
        Run {
            child,
            reaped: false,
            pgid,
        }
    }

    fn pidfd(&self) -> Result<AsyncFd<OwnedFd>, String> {
        let pid = rustix::process::Pid::from_child(&self.child);
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|error| format!("pidfd_open: {error}"))?;
        // tokio 1.54 deprecates the safe constructors because an arbitrary `T: AsRawFd` may
        // close or swap its descriptor; `OwnedFd` cannot, which is the whole contract of the
        // unsafe replacement, so the deprecated safe one is sound here.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE)
            .map_err(|error| format!("registering the pidfd: {error}"))?;
        Ok(fd)
    }

    fn signal_group(&self, signal: Signal) {
        // Only while the leader is unreaped: then the group id cannot belong to anyone else.
        if !self.reaped && self.pgid.as_raw() > 0 {
            // ESRCH (all gone) is fine.
            let _ = killpg(self.pgid, signal);
        }
    }

    /// Reaps the leader; call only once it has exited (pidfd readable), so it never blocks.
    pub(crate) fn reap(&mut self) -> Option<ExitStatus> {
        let status = self.child.wait().ok();
        self.reaped = true;
        status
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        self.signal_group(Signal::SIGKILL);
        // Reaping may block (uninterruptible sleep): never on the runtime thread.
        let pgid = self.pgid;
        let reaper = std::thread::Builder::new().name("exec-reaper".into());
        let _ = reaper.spawn(move || {
            let _ = nix::sys::wait::waitpid(pgid, None);
        });
    }
}

/// Resolves when the process behind the pidfd has exited (it is not reaped).
pub(crate) async fn wait_exit(pidfd: &AsyncFd<OwnedFd>) {
    // A pidfd polls readable once the process has exited and stays so; an error from the
    // reactor is treated as exited so the probe ends (the reap then tells the truth).
    let _ = pidfd.readable().await;
}

/// The command's stdout and stderr pipes and the kept tails.
struct Output {
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    stdout_tail: Vec<u8>,
    stderr_tail: Vec<u8>,
}

impl Output {
    fn new(run: &mut Run) -> Output {
        let (stdout, stderr) = run.take_output();
        Output {
            stdout,
            stderr,
            stdout_tail: Vec::new(),
            stderr_tail: Vec::new(),
        }
    }

    /// Reads both pipes until both are closed or the deadline.
    /// Cancel-safe: every chunk read is kept before the next await.
    async fn read_until(&mut self, deadline: Instant) {
        let mut out = [0u8; 1024];
        let mut err = [0u8; 1024];
        loop {
            if self.stdout.is_none() && self.stderr.is_none() {
                return;
            }
            tokio::select! {
                read = read_some(&mut self.stdout, &mut out) => {
                    keep(&mut self.stdout, &mut self.stdout_tail, read, &out);
                }
                read = read_some(&mut self.stderr, &mut err) => {
                    keep(&mut self.stderr, &mut self.stderr_tail, read, &err);
                }
                _ = sleep_until(deadline) => return,
            }
        }
    }

    /// The last non-empty line of stderr, else of stdout.
    fn last_line(&self) -> Option<String> {
        [&self.stderr_tail, &self.stdout_tail]
            .into_iter()
            .find_map(|tail| last_line(tail))
    }
}

/// Reads from the pipe, or never resolves once it is gone (for use in `select!`).
pub(crate) async fn read_some(
    pipe: &mut Option<pipe::Receiver>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

fn keep(
    pipe: &mut Option<pipe::Receiver>,
    tail: &mut Vec<u8>,
    read: std::io::Result<usize>,
    buf: &[u8],
) {
    match read {
        Ok(n) if n > 0 => {
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > KEEP_OUTPUT {
                tail.drain(..tail.len() - KEEP_OUTPUT);
            }
        }
        // EOF or a read error: stop reading this pipe.
        _ => *pipe = None,
    }
}

fn last_line(tail: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(tail);
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(str::to_owned)
}

fn verdict(status: ExitStatus, output: &Output) -> ProbeOutcome {
    if status.success() {
        return ProbeOutcome::Up;
    }
    let what = describe_exit(status);
    match output.last_line() {
        Some(line) => ProbeOutcome::down(format!("{what}: {line}")),
        None => ProbeOutcome::down(what),
    }
}

/// How a command ended, in a few words: "exit 3", "killed by SIGSEGV".
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit {code}")
    } else if let Some(signal) = status.signal() {
        match Signal::try_from(signal) {
            Ok(signal) => format!("killed by {}", signal.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        }
    } else {
        format!("ended with {status}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str], shell: bool, timeout: Duration) -> ProbeOutcome {
        let settings = ExecSettings {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            shell,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(probe(&settings, timeout))
    }

    #[test]
    fn last_line_skips_blank_lines_and_keeps_only_the_tail() {
        assert_eq!(last_line(b"one\ntwo\n\n  \n"), Some("two".to_owned()));
        assert_eq!(last_line(b"\n \n"), None);
    }

    #[test]
    fn exit_code_and_stderr_make_the_reason() {
        let outcome = run(
            &["echo out; echo first >&2; echo 'last words' >&2; exit 3"],
            true,
            Duration::from_secs(5),
        );
        assert_eq!(outcome, ProbeOutcome::down("exit 3: last words"));
    }

    #[test]
    fn stdout_is_used_when_stderr_is_silent() {
        let outcome = run(&["echo said; exit 1"], true, Duration::from_secs(5));
        assert_eq!(outcome, ProbeOutcome::down("exit 1: said"));
    }

    #[test]
    fn killed_by_a_signal_is_named() {
        let outcome = run(&["kill -SEGV $$"], true, Duration::from_secs(5));
        assert_eq!(outcome, ProbeOutcome::down("killed by SIGSEGV"));
    }

    #[test]
    fn long_output_is_bounded() {
        let outcome = run(
            &["head -c 100000 /dev/zero | tr '\\0' x; echo; echo tail >&2; exit 2"],
            true,
            Duration::from_secs(5),
        );
        assert_eq!(outcome, ProbeOutcome::down("exit 2: tail"));
        let outcome = run(
            &["head -c 100000 /dev/zero | tr '\\0' x; exit 2"],
            true,
            Duration::from_secs(5),
        );
        match outcome {
            ProbeOutcome::Down { reason } => assert!(reason.len() <= 8 + KEEP_OUTPUT, "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn environment_is_scrubbed() {
        // The test process may not have them set; the child must not see them either way.
        let outcome = run(
            &["test -z \"${LD_PRELOAD+x}${LD_LIBRARY_PATH+x}\""],
            true,
            Duration::from_secs(5),
        );
        assert_eq!(outcome, ProbeOutcome::Up);
    }

    #[test]
    fn shell_extra_words_are_positional_parameters() {
        let outcome = run(&["test \"$1\" = a", "a"], true, Duration::from_secs(5));
        assert_eq!(outcome, ProbeOutcome::Up);
    }

    #[test]
    fn a_quick_command_is_not_held_up_by_the_drain_grace() {
        let started = std::time::Instant::now();
        for _ in 0..5 {
            assert_eq!(
                run(&["true"], false, Duration::from_secs(5)),
                ProbeOutcome::Up
            );
        }
        // Five runs, each of which would wait DRAIN_GRACE (50 ms) if the closed pipes
        // were not noticed; generous for a loaded machine.
        assert!(
            started.elapsed() < 5 * DRAIN_GRACE,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn empty_command_is_down() {
        assert_eq!(
            run(&[], false, Duration::from_secs(1)),
            ProbeOutcome::down("empty command")
        );
    }

    #[test]
    fn background_child_holding_stdout_does_not_delay_the_verdict() {
        let started = std::time::Instant::now();
        // The background sleep keeps stdout open; it is killed by its own timeout.
        let outcome = run(&["sleep 2 & exit 0"], true, Duration::from_secs(5));
        assert_eq!(outcome, ProbeOutcome::Up);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
