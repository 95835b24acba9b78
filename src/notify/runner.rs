//! Runs hooks on a thread of its own, one queue per owner, strictly in transition order.
//!
//! Owns the scheduling of hooks. keepalived's notify scripts are fire-and-forget, so a
//! MASTER script can run after the BACKUP one that followed it, nothing bounds them, and
//! `notify_stop` is killed after 1 s: here every owner (scope + name) has a queue and a
//! worker that runs one transition's hooks at a time, in the order the transitions were
//! notified. Owners are independent: a hook that hangs delays only its own owner. The
//! daemon's side never waits: [`Notifier::notify`] hands the transition over a channel and
//! returns; results come back as [`HookReport`]s.
//!
//! For one transition the state's own hooks run in order, then the `any` hooks with
//! keepalived's four trailing arguments (`INSTANCE|GROUP NAME STATE PRIORITY`). A failing
//! hook is reported and does not stop the next hook or the next transition.
//!
//! Command hooks reuse the exec probe's process handling (`health::exec`): own process
//! group, stdin null, `LD_PRELOAD`/`LD_LIBRARY_PATH`/`IFS` removed, and on timeout SIGTERM
//! then SIGKILL to the whole group. Their stdout and stderr are logged line by line with
//! the hook's label and owner, lines cut at [`MAX_LINE`] bytes.
//!
//! [`Notifier::drain`] is the shutdown path: it blocks the caller until every queued hook
//! finished or the budget ran out; then whatever still runs is killed (process group) and
//! reported, and transitions still queued are dropped (logged). Dropping the [`Notifier`]
//! stops its thread; hooks still running then are SIGKILLed with their groups.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::{watch, Notify};
use tokio::task::LocalSet;
use tokio::time::{sleep_until, timeout_at, Instant};
use tracing::{error, info, warn};

use super::{CommandHook, Hook, HookReport, HookSet, Notification, QueuePolicy, Scope};
use crate::health::exec::{self, Run};

/// Longest logged output line, in bytes; the rest of a longer line is dropped (marked).
pub const MAX_LINE: usize = 1024;
/// The part of a drain budget kept for killing what still runs when the budget is over,
/// so that `drain` returns within its budget.
const KILL_RESERVE: Duration = Duration::from_millis(100);
/// `$0` of shell hooks.
const SHELL_ARG0: &str = "vipkeeper-hook";

/// The hook runner. See the module documentation.
pub struct Notifier {
    jobs: UnboundedSender<Job>,
    pending: Arc<Pending>,
    /// Bumped by `drain` when its budget ran out: jobs of an older generation are killed
    /// (running) or dropped (queued).
    abort: watch::Sender<u64>,
}

/// One notified transition with the hooks to run for it.
struct Job {
    hooks: Arc<HookSet>,
    notification: Notification,
    generation: u64,
}

/// How many notified transitions are not finished yet (queued or running), for `drain`.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    fn done(&self, jobs: usize) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(jobs);
        self.changed.notify_all();
    }

    /// Waits until nothing is pending or the deadline; true when nothing is pending.
    fn wait_idle(&self, deadline: std::time::Instant) -> bool {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            count = self
                .changed
                .wait_timeout(count, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Notifier {
    /// Starts the hook thread. Reports go to `reports` (ignored once it is closed).
    pub fn start(reports: UnboundedSender<HookReport>) -> std::io::Result<Notifier> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (jobs, received) = unbounded_channel();
        let pending = Arc::new(Pending::default());
        let (abort, aborted) = watch::channel(0);
        let context = Context {
            reports,
            pending: Arc::clone(&pending),
            aborted,
        };
        std::thread::Builder::new()
            .name("vipkeeper-hooks".to_owned())
            .spawn(move || {
                let local = LocalSet::new();
                // Returns when the Notifier is dropped; dropping the LocalSet then kills
                // whatever still runs (see `exec::Run`'s drop).
                local.block_on(&runtime, dispatch(received, context));
            })?;
        Ok(Notifier {
            jobs,
            pending,
            abort,
        })
    }

    /// Queues the transition's hooks behind the owner's earlier ones. Never blocks.
    pub fn notify(&self, hooks: Arc<HookSet>, notification: Notification) {
        if hooks.for_state(notification.state).is_empty() && hooks.any.is_empty() {
            return;
        }
        let generation = *self.abort.borrow();
        self.pending.add();
        let job = Job {
            hooks,
            notification,
            generation,
        };
        if let Err(lost) = self.jobs.send(job) {
            self.pending.done(1);
            error!(
                owner = %lost.0.notification.name,
                "the hook thread is gone; hooks of this transition are not run"
            );
        }
    }

    /// Blocks until every queued hook finished or `budget` passed; then kills what still
    /// runs (reported as stopped at shutdown) and drops what is still queued. Returns
    /// within the budget: the last [`KILL_RESERVE`] (at most a quarter of it) is for the
    /// kill.
    pub fn drain(&self, budget: Duration) {
        let started = std::time::Instant::now();
        // An absurd budget (Duration::MAX) means "wait as long as it takes".
        let deadline = started
            .checked_add(budget)
            .unwrap_or_else(|| started + Duration::from_secs(100 * 365 * 86_400));
        let reserve = KILL_RESERVE.min(budget / 4);
        if self.pending.wait_idle(deadline - reserve) {
            return;
        }
        self.abort.send_modify(|generation| *generation += 1);
        if !self.pending.wait_idle(deadline) {
            warn!(
                ?budget,
                "hooks still running after the shutdown budget; leaving them to be killed"
            );
        }
    }
}

/// What the hook thread's tasks share.
#[derive(Clone)]
struct Context {
    reports: UnboundedSender<HookReport>,
    pending: Arc<Pending>,
    aborted: watch::Receiver<u64>,
}

/// One owner's queue. The worker takes jobs from `next` (handed to an idle worker: it
/// counts as started) and then from `queue`; `busy` is true from hand-over to idle.
#[derive(Default)]
struct Owner {
    next: RefCell<Option<Job>>,
    queue: RefCell<VecDeque<Job>>,
    busy: Cell<bool>,
    wake: Notify,
}

impl Owner {
    /// Adds a job; with [`QueuePolicy::Latest`] it replaces the jobs still waiting (not the
    /// running one). Returns how many were dropped.
    fn push(&self, job: Job) -> usize {
        if !self.busy.get() {
            self.busy.set(true);
            *self.next.borrow_mut() = Some(job);
            self.wake.notify_one();
            return 0;
        }
        let mut queue = self.queue.borrow_mut();
        let dropped = if job.hooks.queue == QueuePolicy::Latest {
            let dropped = queue.len();
            for old in queue.drain(..) {
                info!(
                    owner = %old.notification.name,
                    state = %old.notification.state,
                    "queue = latest: a newer transition replaces this one's hooks"
                );
            }
            dropped
        } else {
            0
        };
        queue.push_back(job);
        dropped
    }

    /// The next job, waiting while there is none.
    async fn take(&self) -> Job {
        loop {
            let job = self
                .next
                .borrow_mut()
                .take()
                .or_else(|| self.queue.borrow_mut().pop_front());
            if let Some(job) = job {
                return job;
            }
            self.busy.set(false);
            self.wake.notified().await;
        }
    }
}

async fn dispatch(mut jobs: UnboundedReceiver<Job>, context: Context) {
    let mut owners: HashMap<(Scope, String), Rc<Owner>> = HashMap::new();
    while let Some(job) = jobs.recv().await {
        let key = (job.notification.scope, job.notification.name.clone());
        let owner = owners.entry(key).or_insert_with(|| {
            let owner = Rc::new(Owner::default());
            tokio::task::spawn_local(work(Rc::clone(&owner), context.clone()));
            owner
        });
        let dropped = owner.push(job);
        context.pending.done(dropped);
    }
}

/// One owner's worker: its jobs, one at a time, in order.
async fn work(owner: Rc<Owner>, mut context: Context) {
    loop {
        let job = owner.take().await;
        run_job(&job, &mut context).await;
        context.pending.done(1);
    }
}

fn is_aborted(context: &Context, generation: u64) -> bool {
    *context.aborted.borrow() > generation
}

async fn run_job(job: &Job, context: &mut Context) {
    let notification = &job.notification;
    let env = environment(notification);
    let trailing = [
        notification.scope.to_string(),
        notification.name.clone(),
        notification.state.to_string(),
        notification.priority.to_string(),
    ];
    let own = job.hooks.for_state(notification.state).iter();
    let any = job.hooks.any.iter();
    let steps = own
        .map(|hook| (hook, &[][..]))
        .chain(any.map(|hook| (hook, &trailing[..])));
    for (hook, extra_args) in steps {
        if is_aborted(context, job.generation) {
            warn!(
                owner = %notification.name,
                state = %notification.state,
                hook = %hook.label(),
                "not run: the shutdown budget ran out"
            );
            continue;
        }
        let label = hook.label();
        let started = Instant::now();
        let result = run_hook(
            hook,
            &label,
            notification,
            &env,
            extra_args,
            job.generation,
            context,
        )
        .await;
        let duration = started.elapsed();
        match &result {
            Ok(note) => {
                info!(owner = %notification.name, state = %notification.state, hook = %label, ?duration, "hook done: {note}")
            }
            Err(reason) => {
                warn!(owner = %notification.name, state = %notification.state, hook = %label, ?duration, "hook failed: {reason}")
            }
        }
        let _ = context.reports.send(HookReport {
            scope: notification.scope,
            owner: notification.name.clone(),
            state: notification.state,
            hook: label,
            result,
            duration,
        });
    }
}

/// The six VIPKEEPER_* variables of a command hook.
fn environment(notification: &Notification) -> [(&'static str, String); 6] {
    [
        ("VIPKEEPER_INSTANCE", notification.name.clone()),
        ("VIPKEEPER_STATE", notification.state.to_string()),
        ("VIPKEEPER_PREV_STATE", notification.prev_state.clone()),
        ("VIPKEEPER_PRIORITY", notification.priority.to_string()),
        ("VIPKEEPER_VIPS", notification.vips.join(" ")),
        ("VIPKEEPER_REASON", notification.reason.clone()),
    ]
}

async fn run_hook(
    hook: &Hook,
    label: &str,
    notification: &Notification,
    env: &[(&'static str, String)],
    extra_args: &[String],
    generation: u64,
    context: &mut Context,
) -> Result<String, String> {
    let aborted = async {
        // A closed sender means the Notifier is gone and this task is about to be dropped.
        if context.aborted.wait_for(|g| *g > generation).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match hook {
        Hook::Command(command) => {
            let line = LineLog {
                hook: label,
                owner: &notification.name,
            };
            run_command(command, env, extra_args, line, aborted).await
        }
        Hook::HaproxyReload(settings) => {
            bounded(
                settings.timeout,
                super::haproxy_reload::reload(settings),
                aborted,
            )
            .await
        }
        Hook::MysqlAdmin(settings) => {
            bounded(settings.timeout, super::mysql_admin::run(settings), aborted).await
        }
    }
}

/// A built-in action under its timeout (and the shutdown budget).
async fn bounded(
    timeout: Duration,
    action: impl std::future::Future<Output = Result<String, String>>,
    aborted: impl std::future::Future<Output = ()>,
) -> Result<String, String> {
    tokio::select! {
        result = tokio::time::timeout(timeout, action) => {
            result.unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
        }
        _ = aborted => Err("stopped: the shutdown budget ran out".to_owned()),
    }
}

/// Where a command's output lines go.
#[derive(Clone, Copy)]
struct LineLog<'a> {
    hook: &'a str,
    owner: &'a str,
}

impl LineLog<'_> {
    fn log(&self, stream: &'static str, line: &str) {
        info!(hook = self.hook, owner = self.owner, stream, "{line}");
    }
}

async fn run_command(
    hook: &CommandHook,
    env: &[(&'static str, String)],
    extra_args: &[String],
    log: LineLog<'_>,
    aborted: impl std::future::Future<Output = ()>,
) -> Result<String, String> {
    let mut command = exec::group_command(&hook.argv, hook.shell, SHELL_ARG0)?;
    command.args(extra_args);
    command.envs(env.iter().map(|(name, value)| (name, value)));
    let (mut run, pidfd) = Run::spawn(&mut command)?;
    let (stdout, stderr) = run.take_output();
    let mut output = Streams {
        stdout,
        stderr,
        stdout_lines: LineSplitter::default(),
        stderr_lines: LineSplitter::default(),
        log,
    };
    let deadline = Instant::now() + hook.timeout;
    tokio::pin!(aborted);
    let ended = tokio::select! {
        biased;
        _ = exec::wait_exit(&pidfd) => Ended::Exited,
        _ = async {
            output.pump().await;
            // Pipes closed early: the process still has until the deadline.
            std::future::pending::<()>().await;
        } => unreachable!("pending never resolves"),
        _ = sleep_until(deadline) => Ended::TimedOut,
        _ = &mut aborted => Ended::Aborted,
    };
    match ended {
        Ended::Exited => {
            // Background children may hold the pipes open: take what is there and go on.
            let _ = timeout_at(Instant::now() + exec::DRAIN_GRACE, output.pump()).await;
            output.flush();
            match run.reap() {
                Some(status) if status.success() => Ok("exit 0".to_owned()),
                Some(status) => Err(exec::describe_exit(status)),
                None => Err("lost track of the process".to_owned()),
            }
        }
        Ended::TimedOut => {
            kill(&mut run, &pidfd, exec::TERM_GRACE, &mut output).await;
            Err(format!(
                "timed out after {:?}; process group killed",
                hook.timeout
            ))
        }
        Ended::Aborted => {
            // The budget is over: no grace for SIGTERM.
            kill(&mut run, &pidfd, Duration::ZERO, &mut output).await;
            Err("stopped: the shutdown budget ran out; process group killed".to_owned())
        }
    }
}

enum Ended {
    Exited,
    TimedOut,
    Aborted,
}

async fn kill(run: &mut Run, pidfd: &AsyncFd<OwnedFd>, grace: Duration, output: &mut Streams<'_>) {
    exec::kill_group(run, pidfd, grace).await;
    // The group is dead; what it wrote before dying is still worth logging.
    let _ = timeout_at(Instant::now() + exec::DRAIN_GRACE, output.pump()).await;
    output.flush();
}

/// A command's two output pipes and their line splitters.
struct Streams<'a> {
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    stdout_lines: LineSplitter,
    stderr_lines: LineSplitter,
    log: LineLog<'a>,
}

impl Streams<'_> {
    /// Logs lines until both pipes are closed. Cancel-safe: every chunk read is split (and
    /// its complete lines logged) before the next await.
    async fn pump(&mut self) {
        let mut out = [0u8; 4096];
        let mut err = [0u8; 4096];
        loop {
            if self.stdout.is_none() && self.stderr.is_none() {
                return;
            }
            tokio::select! {
                read = exec::read_some(&mut self.stdout, &mut out) => {
                    let lines = &mut self.stdout_lines;
                    feed(&mut self.stdout, lines, read, &out, "stdout", self.log);
                }
                read = exec::read_some(&mut self.stderr, &mut err) => {
                    let lines = &mut self.stderr_lines;
                    feed(&mut self.stderr, lines, read, &err, "stderr", self.log);
                }
            }
        }
    }

    /// Logs the unterminated last lines (also of pipes a background child still holds).
    fn flush(&mut self) {
        for (lines, name) in [
            (&mut self.stdout_lines, "stdout"),
            (&mut self.stderr_lines, "stderr"),
        ] {
            if let Some(line) = lines.finish() {
                self.log.log(name, &line);
            }
        }
    }
}

fn feed(
    pipe: &mut Option<pipe::Receiver>,
    lines: &mut LineSplitter,
    read: std::io::Result<usize>,
    buf: &[u8],
    name: &'static str,
    log: LineLog<'_>,
) {
    match read {
        Ok(n) if n > 0 => {
            for line in lines.push(&buf[..n]) {
                log.log(name, &line);
            }
        }
        // EOF or a read error: log the unterminated rest and stop reading this pipe.
        _ => {
            if let Some(line) = lines.finish() {
                log.log(name, &line);
            }
            *pipe = None;
        }
    }
}

/// Splits a byte stream into lines for the log: `\n` ends a line (a trailing `\r` is
/// dropped), invalid UTF-8 is replaced, and a line longer than [`MAX_LINE`] bytes is cut
/// there and marked, the rest of it up to the next `\n` discarded, so a hook printing
/// without newlines cannot grow memory or flood one log record.
#[derive(Debug, Default)]
pub struct LineSplitter {
    line: Vec<u8>,
    /// The current line was already cut; skip until its end.
    cut: bool,
}

/// Appended to a line cut at [`MAX_LINE`].
pub const CUT_MARK: &str = " [...]";

impl LineSplitter {
    /// Feeds bytes; returns the lines completed by them.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            let (chunk, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => (&bytes[..end], true),
                None => (bytes, false),
            };
            bytes = if ended {
                &bytes[chunk.len() + 1..]
            } else {
                &[]
            };
            if !self.cut {
                let room = MAX_LINE - self.line.len();
                if chunk.len() > room {
                    self.line.extend_from_slice(&chunk[..room]);
                    let mut text = Self::text(&self.line);
                    text.push_str(CUT_MARK);
                    lines.push(text);
                    self.line.clear();
                    self.cut = true;
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            if ended {
                if !self.cut {
                    lines.push(Self::text(&self.line));
                }
                self.line.clear();
                self.cut = false;
            }
        }
        lines
    }

    /// The unterminated rest, if any (at end of stream).
    pub fn finish(&mut self) -> Option<String> {
        let rest = (!self.line.is_empty()).then(|| Self::text(&self.line));
        self.line.clear();
        self.cut = false;
        rest
    }

    fn text(bytes: &[u8]) -> String {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"one\ntw"), vec!["one"]);
        assert_eq!(splitter.push(b"o\r\n\nthree"), vec!["two", ""]);
        assert_eq!(splitter.finish(), Some("three".to_owned()));
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn long_lines_are_cut_once_and_the_rest_skipped() {
        let mut splitter = LineSplitter::default();
        let long = vec![b'x'; MAX_LINE + 10];
        let lines = splitter.push(&long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE + CUT_MARK.len());
        assert!(lines[0].ends_with(CUT_MARK));
        // More of the same line is dropped, the next line comes through whole.
        assert!(splitter.push(&long).is_empty());
        assert_eq!(splitter.push(b"xx\nnext\n"), vec!["next"]);
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"a\xffb\n"), vec!["a\u{fffd}b"]);
    }
}
