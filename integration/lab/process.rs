//! Processes the lab starts inside a host: their handles, signals and bounded waits.
//!
//! A process is started as `nsenter ... -- argv`; nsenter forks once more to enter the PID
//! namespace, so our `Child` is nsenter and the program is its only child. The program's host
//! pid is looked up in `/proc/<nsenter>/task/<nsenter>/children`. nsenter exits with the
//! program's status (re-raising its signal), so waiting on nsenter waits on the program.
//! Signals are sent by pid only after checking that the pid's parent is still our nsenter:
//! a pid whose parent changed has been reaped and may belong to someone else.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use super::command;

/// The signals tests send. A closed set, so no caller can smuggle arguments into `kill`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    Int,
    Hup,
    Usr1,
    Usr2,
    /// Freezes the process (a hung daemon); `Cont` resumes it.
    Stop,
    Cont,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// The parent pid of `pid` as the host sees it, `None` if `pid` is gone.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .map(|i| stat[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Sends `signal` to `pid` if it is still the child of `parent` (a process we own and have
/// not reaped, so `pid` cannot have been recycled yet). Returns whether it was sent.
pub fn signal_child_of(parent: u32, pid: u32, signal: Signal) -> io::Result<bool> {
    if parent_of(pid) != Some(parent) {
        return Ok(false);
    }
    let mut kill = Command::new("kill");
    kill.args(["-s", signal.name(), &pid.to_string()]);
    command::checked(kill, b"").map(|_| true)
}

/// The first child of `child` (for nsenter and unshare: the only one), waiting up to
/// `timeout` for the fork to happen. `Ok(None)` if `child` exited first.
pub fn first_child_pid(child: &mut Child, timeout: Duration) -> io::Result<Option<u32>> {
    let path = format!("/proc/{0}/task/{0}/children", child.id());
    let deadline = Instant::now() + timeout;
    loop {
        let text = fs::read_to_string(&path).unwrap_or_default();
        if let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
            return Ok(Some(pid));
        }
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("process {} did not fork within {timeout:?}", child.id()),
            ));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Waits up to `timeout` until `pid`, forked by `launcher`, has exec'd its program, so that
/// a signal sent right after [`super::Host::spawn`] returns reaches the program, not the
/// launcher's fork. The fork shows the launcher's command line until the exec is complete
/// (an exec in progress shows an empty one). Returns early if either process is gone.
pub fn wait_for_exec(launcher: u32, pid: u32, timeout: Duration) -> io::Result<()> {
    let Ok(launcher_cmdline) = fs::read(format!("/proc/{launcher}/cmdline")) else {
        return Ok(());
    };
    let deadline = Instant::now() + timeout;
    loop {
        match fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(cmdline) if cmdline == launcher_cmdline => {}
            // Empty: mid-exec, or a zombie the launcher has yet to reap.
            Ok(cmdline) if cmdline.is_empty() && !is_zombie(pid) => {}
            // Exec'd, or gone (then there is nothing left to wait for).
            _ => return Ok(()),
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("process {pid} did not exec within {timeout:?}"),
            ));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// A program started in a lab host with [`super::Host::spawn`]. Dropping it kills the
/// program if it still runs.
pub struct LabProcess {
    label: String,
    nsenter: Child,
    pid: Option<u32>,
    status: Option<ExitStatus>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl LabProcess {
    pub(super) fn new(
        label: String,
        nsenter: Child,
        pid: Option<u32>,
        stdout: PathBuf,
        stderr: PathBuf,
    ) -> Self {
        LabProcess {
            label,
            nsenter,
            pid,
            status: None,
            stdout,
            stderr,
        }
    }

    /// `host.seq.program`, also the stem of its log files.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The program's pid in the root PID namespace (`None` if it exited before it could be
    /// read). Inside its host it has another, small pid. When `spawn` returns, the program
    /// has been exec'd under this pid.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub fn stdout_path(&self) -> &Path {
        &self.stdout
    }

    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// What the program wrote to stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What the program wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `signal` to the program. `Ok(false)` if it has already exited.
    pub fn kill(&mut self, signal: Signal) -> io::Result<bool> {
        match (self.try_wait()?, self.pid) {
            (None, Some(pid)) => signal_child_of(self.nsenter.id(), pid, signal),
            _ => Ok(false),
        }
    }

    /// The exit status if the program has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.nsenter.try_wait()?;
        }
        Ok(self.status)
    }

    /// Waits up to `timeout` for the program to exit; `Ok(None)` if it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = command::wait_within(&mut self.nsenter, timeout)?;
        }
        Ok(self.status)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if !self.is_running() {
            return;
        }
        let _ = self.kill(Signal::Kill);
        if let Ok(None) = self.wait_timeout(Duration::from_secs(2)) {
            // The program is unkillable (D state?): let nsenter go; the node's PID namespace
            // teardown still takes the program down.
            let _ = self.nsenter.kill();
            let _ = command::wait_within(&mut self.nsenter, Duration::from_secs(1));
        }
    }
}
