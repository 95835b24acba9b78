//! The `process` check: a process present or not, event driven (pidfd_open + poll, a
//! rescan to find a restarted process).
//!
//! Owns finding the process(es) and noticing their death. It must not signal, ptrace or
//! otherwise touch the processes it watches, must not poll them at the rescan interval to
//! learn of a death (a pidfd turns readable the moment the process exits, so HAProxy dying
//! is reported within milliseconds), and reports only changes.
//!
//! Why pidfds and not the proc connector: the kernel's proc connector only answers sockets
//! in the initial network namespace; `pidfd_open` + poll works in any namespace (Linux 5.3+).
//!
//! - `Name(n)`: every process whose `/proc/PID/comm` is `n` is watched (HAProxy
//!   master-worker runs several processes named `haproxy`): Up while at least one exists,
//!   Down "no process named haproxy" once the last one exits. The kernel keeps only the
//!   first 15 bytes of a name, so a longer `n` is compared on its first 15 bytes.
//! - `Pidfile(p)`: the first word of the file is the pid. Up while that process exists.
//!   Down "cannot read P: ..." / "no pid in P" / "pid 1234 from P exited" (or "... is not
//!   running" if it was never seen alive). The pidfile's directory is watched with inotify,
//!   so a restart that rewrites the pidfile is seen at once. A stale pidfile whose pid was
//!   reused by an unrelated process reads as Up: there is no sound way to tell (start time
//!   against the file's mtime breaks when the wall clock steps); use `Name` if that matters.
//!
//! Rescans, every `rescan`, in both states: while Down to find a restarted process, while Up
//! to pick up new instances (a reloaded HAProxy's new workers), so that the old ones exiting
//! is not mistaken for "all gone". A rescan also follows every exit seen.
//!
//! Zombies count as gone: a pidfd of an exited but unreaped process is readable at once.
//! A pid found in a scan is checked again after `pidfd_open` (comm re-read), so a pid
//! reused between the scan and the open is not mistaken for the process we looked for.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::{select_all, FutureExt};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc::UnboundedSender;

use super::file::{first_integer, read_head, DirWatch, WatchEvent, RETRY};
use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessMatch {
    /// The process name (`/proc/PID/comm`), e.g. "haproxy".
    Name(String),
    /// A pid file, e.g. "/run/haproxy.pid".
    Pidfile(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSettings {
    pub matcher: ProcessMatch,
    /// While Down, how often to look for the process again.
    pub rescan: Duration,
}

/// The kernel's TASK_COMM_LEN minus the NUL.
const COMM_LEN: usize = 15;

/// Reports Up/Down at start and on change; returns when the receiver is gone.
pub async fn watch(settings: ProcessSettings, outcomes: UnboundedSender<ProbeOutcome>) {
    // A zero rescan would spin; a millisecond is still far below any useful setting.
    let rescan = settings.rescan.max(Duration::from_millis(1));
    let mut tracked: Vec<Tracked> = Vec::new();
    let mut pidfile = PidfileState::default();
    let mut dir_watch: Option<DirWatch> = None;
    let mut last: Option<ProbeOutcome> = None;
    loop {
        tracked.retain(Tracked::alive);
        let outcome = match &settings.matcher {
            ProcessMatch::Name(name) => scan_name(name, &mut tracked),
            ProcessMatch::Pidfile(path) => {
                if dir_watch.is_none() {
                    // Before reading the pidfile, so a rewrite in between is not missed.
                    dir_watch = DirWatch::new(path).ok();
                }
                pidfile.scan(path, &mut tracked)
            }
        };
        if last.as_ref() != Some(&outcome) {
            if outcomes.send(outcome.clone()).is_err() {
                return;
            }
            last = Some(outcome);
        }

        let any_exit = async {
            if tracked.is_empty() {
                std::future::pending::<()>().await;
            }
            select_all(tracked.iter().map(|t| t.exited().boxed())).await;
        };
        let pidfile_changed = async {
            match dir_watch.as_mut() {
                Some(watch) => watch.changed().await,
                None if matches!(settings.matcher, ProcessMatch::Pidfile(_)) => {
                    tokio::time::sleep(RETRY).await;
                    WatchEvent::Changed
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = outcomes.closed() => return,
            _ = any_exit => {}
            event = pidfile_changed => if event == WatchEvent::Lost {
                dir_watch = None;
            },
            _ = tokio::time::sleep(rescan) => {}
        }
    }
}

/// A process being watched: its pid and its pidfd, registered with tokio.
struct Tracked {
    pid: i32,
    pidfd: AsyncFd<OwnedFd>,
}

impl Tracked {
    /// Opens a pidfd for `pid`; None if it is gone, already exited (a zombie), or `check`
    /// (run after the open, so against the process the pidfd pins) says it is not ours.
    fn open(pid: i32, check: impl Fn() -> bool) -> Option<Tracked> {
        let raw = Pid::from_raw(pid)?;
        let fd = match pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(Errno::SRCH) => return None,
            Err(error) => {
                tracing::warn!(pid, %error, "process check: pidfd_open failed");
                return None;
            }
        };
        if has_exited(&fd) || !check() {
            return None;
        }
        // tokio 1.54 deprecates the safe constructors because an arbitrary `T: AsRawFd` may
        // close or swap its descriptor; `OwnedFd` cannot, which is the whole contract of the
        // unsafe replacement, so the deprecated safe one is sound here.
        #[allow(deprecated)]
        let pidfd = match AsyncFd::with_interest(fd, Interest::READABLE) {
            Ok(pidfd) => pidfd,
            Err(error) => {
                tracing::warn!(pid, %error, "process check: cannot register a pidfd");
                return None;
            }
        };
        Some(Tracked { pid, pidfd })
    }

    fn alive(&self) -> bool {
        !has_exited(self.pidfd.get_ref())
    }

    /// Resolves once the process has exited.
    async fn exited(&self) {
        loop {
            match self.pidfd.readable().await {
                Ok(mut guard) => {
                    if has_exited(self.pidfd.get_ref()) {
                        return;
                    }
                    // A spurious wake-up: forget it, or we would spin.
                    guard.clear_ready();
                }
                // Never seen; the rescan still checks the pidfd directly.
                Err(_) => std::future::pending::<()>().await,
            }
        }
    }
}

/// A pidfd is readable once its process has exited.
fn has_exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(n) => n > 0 && !fds[0].revents().is_empty(),
        // Cannot tell; keep it, the next event or rescan will tell.
        Err(_) => false,
    }
}

/// Adds every not yet tracked process named `name`; Up if any is tracked.
fn scan_name(name: &str, tracked: &mut Vec<Tracked>) -> ProbeOutcome {
    let wanted = comm_prefix(name);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if tracked.iter().any(|t| t.pid == pid) || comm(pid).as_deref() != Some(wanted) {
                continue;
            }
            if let Some(found) = Tracked::open(pid, || comm(pid).as_deref() == Some(wanted)) {
                tracked.push(found);
            }
        }
    }
    if tracked.is_empty() {
        ProbeOutcome::down(format!("no process named {name}"))
    } else {
        ProbeOutcome::Up
    }
}

/// What the kernel would keep of `name` as a comm.
fn comm_prefix(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(COMM_LEN)]
}

/// `/proc/PID/comm` without its newline.
fn comm(pid: i32) -> Option<Vec<u8>> {
    let mut comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    Some(comm)
}

#[derive(Default)]
struct PidfileState {
    /// The last pid from the pidfile seen alive, to say "exited" rather than "not running".
    seen_alive: Option<i32>,
}

impl PidfileState {
    fn scan(&mut self, path: &Path, tracked: &mut Vec<Tracked>) -> ProbeOutcome {
        let shown = path.display();
        let text = match read_head(path) {
            Ok(text) => text,
            Err(error) => {
                tracked.clear();
                return ProbeOutcome::down(format!("cannot read {shown}: {error}"));
            }
        };
        let Some(pid) = first_integer(&text)
            .and_then(|pid| i32::try_from(pid).ok())
            .filter(|pid| *pid > 0)
        else {
            tracked.clear();
            return ProbeOutcome::down(format!("no pid in {shown}"));
        };
        // The pidfile now names another process: stop watching the old one.
        tracked.retain(|t| t.pid == pid);
        if tracked.is_empty() {
            if let Some(found) = Tracked::open(pid, || true) {
                tracked.push(found);
            }
        }
        if !tracked.is_empty() {
            self.seen_alive = Some(pid);
            ProbeOutcome::Up
        } else if self.seen_alive == Some(pid) {
            ProbeOutcome::down(format!("pid {pid} from {shown} exited"))
        } else {
            ProbeOutcome::down(format!("pid {pid} from {shown} is not running"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_compared_as_the_kernel_keeps_them() {
        assert_eq!(comm_prefix("haproxy"), b"haproxy");
        assert_eq!(comm_prefix("a-very-long-process-name"), b"a-very-long-pro");
    }

    #[test]
    fn our_own_process_is_found_by_name_and_pidfd() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let name = comm(me).expect("our comm");
        let fd = pidfd_open(Pid::from_raw(me).expect("pid"), PidfdFlags::empty()).expect("pidfd");
        assert!(!has_exited(&fd));
        assert!(!name.is_empty());
    }
}
