//! Runs the checks: polled probes on their interval, watchers on their events.
//!
//! Owns the schedule (first run at once, then every interval on a fixed grid, never two runs
//! of one check at a time, so a slow exec script is not started twice), the timeout around
//! each run (a timed-out run is a Down outcome: keepalived counts a timeout as a failure),
//! and the bound on how many probes run at once. Everything runs on a thread of its own
//! with its own runtime: a thousand hung probes, a TLS handshake or a fork cannot delay
//! the VRRP loop, which only receives [`HealthEvent`]s. Knows nothing of VRRP; interface
//! checks are the daemon's (it already watches links).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;
use tokio::task::LocalSet;
use tokio::time::Instant;
use tracing::{error, warn};

use super::http::HttpProbe;
use super::ProbeOutcome;
use crate::config::{Check, CheckKind};

/// How many polled probes may run at the same moment; the others wait their turn.
pub const MAX_CONCURRENT_PROBES: usize = 64;
/// Slack beyond a check's own timeout before the runner gives up on a probe that did not
/// honour it (a probe is expected to stop at its timeout and report why).
const TIMEOUT_GRACE: Duration = Duration::from_millis(200);

/// One result of one check, identified by its index in the configuration's check list.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthEvent {
    pub check: usize,
    pub outcome: ProbeOutcome,
    /// How long the probe took (zero for watched checks).
    pub latency: Duration,
}

/// Start every check except interface checks on a dedicated thread. The thread ends when
/// `events` is closed (the daemon stopped) and the checks notice it.
pub fn start(checks: Vec<Check>, events: UnboundedSender<HealthEvent>) -> std::io::Result<()> {
    if checks
        .iter()
        .all(|check| matches!(check.kind, CheckKind::Interface { .. }))
    {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("vipkeeper-health".to_owned())
        .spawn(move || {
            let local = LocalSet::new();
            let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES));
            for (index, check) in checks.into_iter().enumerate() {
                let events = events.clone();
                let limit = Arc::clone(&limit);
                local.spawn_local(run_check(index, check, events, limit));
            }
            drop(events);
            // Every task returns once the daemon has dropped its receiver.
            local.block_on(&runtime, std::future::pending::<()>());
        })?;
    Ok(())
}

async fn run_check(
    index: usize,
    check: Check,
    events: UnboundedSender<HealthEvent>,
    limit: Arc<Semaphore>,
) {
    match check.kind {
        CheckKind::Interface { .. } => {}
        CheckKind::File(settings) => {
            watch(index, events, |tx| super::file::watch(settings, tx)).await;
        }
        CheckKind::Process(settings) => {
            watch(index, events, |tx| super::process::watch(settings, tx)).await;
        }
        kind => poll(index, check.interval, check.timeout, kind, events, limit).await,
    }
}

/// Forward a watcher's outcomes as events until the daemon stops listening.
async fn watch<F, Fut>(index: usize, events: UnboundedSender<HealthEvent>, watcher: F)
where
    F: FnOnce(UnboundedSender<ProbeOutcome>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_local(watcher(tx));
    while let Some(outcome) = rx.recv().await {
        let event = HealthEvent {
            check: index,
            outcome,
            latency: Duration::ZERO,
        };
        if events.send(event).is_err() {
            return;
        }
    }
    error!(
        check = index,
        "a watcher stopped; its check no longer changes"
    );
}

/// A polled check: run, report, sleep until the next slot on the interval grid.
async fn poll(
    index: usize,
    interval: Duration,
    timeout: Duration,
    kind: CheckKind,
    events: UnboundedSender<HealthEvent>,
    limit: Arc<Semaphore>,
) {
    let http = match &kind {
        CheckKind::Http(settings) => match HttpProbe::new(settings) {
            Ok(probe) => Some(probe),
            Err(error) => {
                warn!(check = index, %error, "the http probe cannot be built; it stays down");
                let outcome = ProbeOutcome::down(format!("cannot build the probe: {error}"));
                let _ = events.send(HealthEvent {
                    check: index,
                    outcome,
                    latency: Duration::ZERO,
                });
                return;
            }
        },
        _ => None,
    };
    let mut next = Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        let Ok(permit) = limit.acquire().await else {
            return;
        };
        let started = Instant::now();
        let run = run_once(&kind, http.as_ref(), timeout);
        let outcome = match tokio::time::timeout(timeout + TIMEOUT_GRACE, run).await {
            Ok(outcome) => outcome,
            Err(_) => ProbeOutcome::down(format!("no answer within {timeout:?}")),
        };
        drop(permit);
        let event = HealthEvent {
            check: index,
            outcome,
            latency: started.elapsed(),
        };
        if events.send(event).is_err() {
            return;
        }
        // Fixed grid; a run longer than the interval skips the missed slots instead of
        // starting runs back to back.
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now + interval;
        }
    }
}

async fn run_once(kind: &CheckKind, http: Option<&HttpProbe>, timeout: Duration) -> ProbeOutcome {
    match kind {
        CheckKind::Haproxy(settings) => super::haproxy::probe(settings, timeout).await,
        CheckKind::Tcp(settings) => super::tcp::probe(settings, timeout).await,
        CheckKind::Http(_) => match http {
            Some(probe) => probe.probe(timeout).await,
            None => ProbeOutcome::down("the http probe was not built"),
        },
        CheckKind::Mysql(settings) => super::mysql::probe(settings, timeout).await,
        CheckKind::Exec(settings) => super::exec::probe(settings, timeout).await,
        CheckKind::Interface { .. } | CheckKind::File(_) | CheckKind::Process(_) => {
            ProbeOutcome::down("not a polled check")
        }
    }
}
