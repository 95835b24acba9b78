//! The demo (`scripts/demo`): an HAProxy pair held by vipkeeper fails over, live.
//!
//! A namespace lab (integration/lab, docs/lab.md) with two load balancers (haproxy and
//! vipkeeper each), one backend (haproxy returning a fixed answer) and one client that asks
//! for `http://192.0.2.50/` every 10 ms from a thread that has entered the client's network
//! namespace. The demo elects lb1, pulls lb1's cable, prints the timeline of the failover
//! (client requests and the daemons' own `transition` log lines) and the client-visible
//! outage, plugs lb1 back, shows the preemption, and removes everything.
//!
//! Usage: `demo PATH/TO/vipkeeper` (as root; `scripts/demo` builds and runs it). Exit 0 only
//! if lb2 served during the outage and lb1 served again after the preemption.
//!
//! Nothing runs in the root network namespace: daemons run inside lab hosts, and the client
//! thread refuses to send anything unless its `setns` into the client's namespace worked.

#[path = "lab/mod.rs"]
mod lab;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::{Host, Lab, LabProcess};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vipkeeper::vrrp::{Centis, Timers, Version};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const VRID: u8 = 51;
const LB1_PRIORITY: u8 = 150;
const LB2_PRIORITY: u8 = 100;
const ADVERT: Centis = Centis::new(10);
const VIPKEEPER_CONFIG: &str = "/run/vipkeeper.toml";
const HAPROXY_CONFIG: &str = "/run/haproxy.cfg";

/// The client sends one request every PERIOD, each bounded by these timeouts.
const PERIOD: Duration = Duration::from_millis(10);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(50);
const REQUEST_TIMEOUT: Duration = Duration::from_millis(200);
/// The client stops on its own after this long, whatever happens to the demo.
const CLIENT_LIFETIME: Duration = Duration::from_secs(60);

/// How long the pair runs undisturbed before and after each event.
const STEADY: Duration = Duration::from_millis(1000);
/// Bound on each wait for the pair to do something (election, takeover, preemption).
const PHASE_LIMIT: Duration = Duration::from_secs(5);
/// Bound on the first election, which includes haproxy starting.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// Set by SIGINT/SIGTERM; every wait checks it, so the lab is dropped on Ctrl-C.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() -> io::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [signal::Signal::SIGINT, signal::Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { signal::sigaction(sig, &action) }.map_err(io::Error::from)?;
    }
    Ok(())
}

fn check_interrupted() -> io::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"))
    } else {
        Ok(())
    }
}

/// Sleeps `d` in small steps, returning early (as an error) on Ctrl-C.
fn pause(d: Duration) -> io::Result<()> {
    let end = Instant::now() + d;
    loop {
        check_interrupted()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        thread::sleep((end - now).min(Duration::from_millis(10)));
    }
}

/// Wall-clock microseconds since the epoch: the daemons log wall-clock time, so the client
/// samples and the demo's own events use the same clock.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let Some(bin) = std::env::args().nth(1) else {
        eprintln!("usage: demo PATH/TO/vipkeeper   (scripts/demo builds and runs it)");
        return ExitCode::from(2);
    };
    let bin = match fs::canonicalize(&bin) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("demo: {bin}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = install_signal_handlers() {
        eprintln!("demo: cannot install signal handlers: {e}");
        return ExitCode::from(2);
    }
    match run(&bin) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            println!("\nInterrupted: the lab has been removed.");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("\ndemo failed: {e}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configuration of the lab hosts.

fn vipkeeper_config(name: &str, priority: u8) -> String {
    format!(
        r#"[global]
node_name = "{name}"

[[instance]]
name = "web"
interface = "eth0"
vrid = {VRID}
version = 3
priority = {priority}
advert_interval = "{}ms"
vips = ["{VIP}/24"]
"#,
        u32::from(ADVERT.get()) * 10
    )
}

fn haproxy_lb_config(name: &str, backend: Ipv4Addr) -> String {
    format!(
        r#"global
    maxconn 1000

defaults
    mode http
    timeout connect 100ms
    timeout client 2s
    timeout server 2s

frontend web
    bind *:80
    http-response set-header X-Served-By {name}
    default_backend app

backend app
    server backend {backend}:8080
"#
    )
}

const HAPROXY_BACKEND_CONFIG: &str = r#"global
    maxconn 1000

defaults
    mode http
    timeout client 2s

frontend app
    bind *:8080
    http-request return status 200 content-type text/plain string "hello from the backend"
"#;

// ---------------------------------------------------------------------------------------
// The client: a thread inside the client's network namespace.

#[derive(Clone, Debug)]
struct Sample {
    /// When the request started (wall clock, µs).
    sent: i64,
    /// When the answer (or the failure) came.
    done: i64,
    /// `X-Served-By` of a 200 answer; `None` for a failure.
    served_by: Option<String>,
    /// Why it failed.
    error: Option<String>,
}

impl Sample {
    fn ok(&self) -> bool {
        self.served_by.is_some()
    }

    fn by(&self, node: &str) -> bool {
        self.served_by.as_deref() == Some(node)
    }
}

struct Client {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Client {
    fn start(host: &Host) -> io::Result<Client> {
        let netns = PathBuf::from(format!("/proc/{}/ns/net", host.init_pid()));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let samples = Arc::clone(&samples);
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("client".into())
                .spawn(move || client_thread(&netns, samples, stop))?
        };
        Ok(Client {
            samples,
            stop,
            thread: Some(thread),
        })
    }

    /// Every sample so far, by send time.
    fn samples(&self) -> Vec<Sample> {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        samples.sort_by_key(|s| s.sent);
        samples
    }

    /// Fails if the client thread has stopped on its own (it could not enter the namespace).
    fn check_alive(&mut self) -> io::Result<()> {
        if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            self.finish()?;
            return Err(io::Error::other("the client thread stopped early"));
        }
        Ok(())
    }

    /// Stops the loop and waits for requests in flight (each is bounded by REQUEST_TIMEOUT).
    fn finish(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the client thread panicked")),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn client_thread(
    netns: &Path,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    // setns changes the network namespace of this thread only. Check it took effect before
    // opening any socket: the client must never send from the machine's own namespace.
    let ns = File::open(netns)?;
    setns(&ns, CloneFlags::CLONE_NEWNET)
        .map_err(|e| io::Error::other(format!("setns {}: {e}", netns.display())))?;
    let mine = fs::read_link("/proc/thread-self/ns/net")?;
    let wanted = fs::read_link(netns)?;
    if mine != wanted {
        return Err(io::Error::other(format!(
            "client thread is in {mine:?}, not the client's {wanted:?}"
        )));
    }
    // A current-thread runtime: every socket is opened on this thread, in the namespace.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let target = SocketAddr::from((VIP, 80));
        let deadline = Instant::now() + CLIENT_LIFETIME;
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut inflight = tokio::task::JoinSet::new();
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            tick.tick().await;
            let samples = Arc::clone(&samples);
            inflight.spawn(async move {
                let sample = request(target).await;
                samples
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(sample);
            });
            while inflight.try_join_next().is_some() {}
        }
        while inflight.join_next().await.is_some() {}
    });
    Ok(())
}

/// One `GET /` with a connect timeout and an overall timeout.
async fn request(target: SocketAddr) -> Sample {
    let sent = now_us();
    let outcome = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target))
                .await
            {
                Err(_) => return Err("connect timeout".to_owned()),
                Ok(Err(e)) => return Err(format!("connect: {}", short_error(&e))),
                Ok(Ok(stream)) => stream,
            };
        let _ = stream.set_nodelay(true);
        let ask = format!("GET / HTTP/1.0\r\nHost: {VIP}\r\nUser-Agent: vipkeeper-demo\r\n\r\n");
        stream
            .write_all(ask.as_bytes())
            .await
            .map_err(|e| format!("send: {}", short_error(&e)))?;
        let mut answer = Vec::with_capacity(512);
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {}", short_error(&e)))?;
        parse_answer(&answer)
    })
    .await;
    let (served_by, error) = match outcome {
        Ok(Ok(node)) => (Some(node), None),
        Ok(Err(error)) => (None, Some(error)),
        Err(_) => (None, Some("no answer in time".to_owned())),
    };
    Sample {
        sent,
        done: now_us(),
        served_by,
        error,
    }
}

fn short_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".into(),
        io::ErrorKind::ConnectionReset => "reset".into(),
        _ => e.to_string(),
    }
}

/// The node named in `X-Served-By` of a 200 answer.
fn parse_answer(answer: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(answer);
    let mut lines = text.lines();
    let status = lines.next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or("none");
    if code != "200" {
        return Err(format!("HTTP status {code}"));
    }
    lines
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-served-by")
                .then(|| value.trim().to_owned())
        })
        .ok_or_else(|| "no X-Served-By header".to_owned())
}

// ---------------------------------------------------------------------------------------
// vipkeeper's transition log lines.

#[derive(Clone, Debug)]
struct Transition {
    at: i64,
    node: &'static str,
    from: String,
    to: String,
    reason: String,
}

/// The `transition` lines of a vipkeeper log:
/// `2025-01-01T12:00:00.123456Z  INFO transition instance=web ... from=BACKUP to=MASTER reason=...`
fn transitions(node: &'static str, log: &str) -> Vec<Transition> {
    log.lines()
        .filter(|line| line.split_whitespace().nth(2) == Some("transition"))
        .filter_map(|line| {
            let at = parse_rfc3339(line.split_whitespace().next()?)?;
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix(key))
                    .map(str::to_owned)
            };
            let reason = line
                .split_once(" reason=")
                .map(|(_, rest)| rest.trim().to_owned())
                .unwrap_or_default();
            Some(Transition {
                at,
                node,
                from: field("from=")?,
                to: field("to=")?,
                reason,
            })
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z` to microseconds since the epoch.
fn parse_rfc3339(stamp: &str) -> Option<i64> {
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>());
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock = clock.split(':').map(|p| p.parse::<i64>());
    let (hour, minute, second) = (
        clock.next()?.ok()?,
        clock.next()?.ok()?,
        clock.next()?.ok()?,
    );
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().chain("000000".chars()).take(6).collect();
        digits.parse().ok()?
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micros)
}

// ---------------------------------------------------------------------------------------
// Printing.

/// Milliseconds between two µs instants, signed, for timelines.
fn ms(from: i64, to: i64) -> i64 {
    (to - from).div_euclid(1000)
}

fn fmt_duration(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn header() {
    let timers = Timers::compute(Version::V3, LB2_PRIORITY, ADVERT);
    println!(
        r#"vipkeeper demo: an HAProxy pair loses its Master, live
======================================================

          client 192.0.2.100: GET http://{VIP}/ every 10 ms
                 |
   --------------+-- switch, front 192.0.2.0/24 ---+----------------
                 |                                  |
          lb1 192.0.2.11                      lb2 192.0.2.12
          haproxy :80                         haproxy :80
          vipkeeper priority {LB1_PRIORITY}              vipkeeper priority {LB2_PRIORITY}
                 |                                  |
   --------------+-- switch, back 198.51.100.0/24 -+----------------
                 |
          backend 198.51.100.200: haproxy :8080, "hello from the backend"

   VIP {VIP}: VRRP v3, VRID {VRID}, an advert every {} ms; the Master holds it.
   lb2 declares a silent Master dead after {} (Master_Down_Interval).

Plan: elect lb1, pull lb1's cable (its link goes down, as a dead node's would), watch
lb2 take over, plug lb1 back, watch it preempt. Everything runs in network namespaces
that this demo creates and removes; nothing touches the machine's own network.
"#,
        ADVERT.get() as u32 * 10,
        fmt_duration(timers.master_down_interval),
    );
}

/// Status lines, stamped with the time since the demo started.
struct Clock(Instant);

impl Clock {
    fn say(&self, text: &str) {
        println!("[{:6.2}s] {text}", self.0.elapsed().as_secs_f64());
    }
}

fn timeline(title: &str, mut rows: Vec<(i64, String)>) {
    rows.sort_by_key(|(at, _)| *at);
    println!("\n  {title}");
    for (at, text) in rows {
        println!("    {at:>+7} ms  {text}");
    }
}

fn transition_row(t: &Transition, origin: i64) -> (i64, String) {
    (
        ms(origin, t.at),
        format!(
            "{}  {} -> {}  ({}; vipkeeper log)",
            t.node, t.from, t.to, t.reason
        ),
    )
}

// ---------------------------------------------------------------------------------------
// The demo.

/// The daemons (host name, program, process), kept alive for as long as the demo runs.
struct Daemons {
    list: Vec<(&'static str, &'static str, LabProcess)>,
}

impl Daemons {
    fn spawn(
        &mut self,
        host: &Host,
        name: &'static str,
        program: &'static str,
        argv: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<()> {
        let process = host
            .spawn(argv, env)
            .map_err(|e| io::Error::new(e.kind(), format!("starting {program} on {name}: {e}")))?;
        self.list.push((name, program, process));
        Ok(())
    }

    fn vipkeeper_log(&self, node: &str) -> String {
        self.list
            .iter()
            .find(|(name, program, _)| *name == node && *program == "vipkeeper")
            .map(|(_, _, p)| p.stderr())
            .unwrap_or_default()
    }

    fn transitions(&self) -> Vec<Transition> {
        let mut all: Vec<Transition> = ["lb1", "lb2"]
            .into_iter()
            .flat_map(|node| transitions(node, &self.vipkeeper_log(node)))
            .collect();
        all.sort_by_key(|t| t.at);
        all
    }

    /// Every daemon still runs; otherwise which one stopped, and its log.
    fn check(&mut self) -> io::Result<()> {
        for (node, program, process) in &mut self.list {
            if let Some(status) = process.try_wait()? {
                return Err(io::Error::other(format!(
                    "{program} on {node} exited ({status}); its stderr:\n{}",
                    process.stderr().trim_end()
                )));
            }
        }
        Ok(())
    }
}

fn run(bin: &Path) -> io::Result<bool> {
    header();
    let clock = Clock(Instant::now());
    let lab = Lab::builder("demo")
        .nodes(2)
        .client(true)
        .backend(true)
        // If this process is SIGKILLed, the hosts still stop on their own.
        .max_lifetime(Duration::from_secs(120))
        .build()
        .map_err(|e| io::Error::new(e.kind(), format!("building the lab: {e}")))?;
    let namespaces = lab.namespaces();
    clock.say(&format!(
        "lab up: {} network namespaces (switch, lb1, lb2, client, backend)",
        namespaces.len()
    ));
    let mut daemons = Daemons { list: Vec::new() };
    let mut result = demo(&lab, bin, &clock, &mut daemons);
    match &result {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(_) | Ok(false) => {
            if let Err(e) = &result {
                println!("\nFAIL: {e}");
                result = Ok(false);
            }
            eprintln!("\n--- what the lab looked like (lab diagnostics) ---");
            for node in ["lb1", "lb2"] {
                eprintln!("--- {node} vipkeeper log\n{}", daemons.vipkeeper_log(node));
            }
            eprintln!("{}", lab.diagnostics());
        }
        Ok(true) => {}
    }
    drop(daemons);
    drop(lab);
    let left: Vec<String> = ip_netns_list()
        .into_iter()
        .filter(|ns| namespaces.contains(ns))
        .collect();
    if left.is_empty() {
        clock.say("cleaned up: every process stopped, every namespace removed");
    } else {
        eprintln!("cleanup left namespaces behind: {left:?}");
    }
    result
}

fn ip_netns_list() -> Vec<String> {
    std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `condition` every 10 ms for at most `limit`; `None` if it never held.
fn wait_until(
    limit: Duration,
    daemons: &mut Daemons,
    client: &mut Client,
    mut condition: impl FnMut(&[Sample], &[Transition]) -> bool,
) -> io::Result<Option<()>> {
    let end = Instant::now() + limit;
    loop {
        check_interrupted()?;
        daemons.check()?;
        client.check_alive()?;
        if condition(&client.samples(), &daemons.transitions()) {
            return Ok(Some(()));
        }
        if Instant::now() >= end {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn demo(lab: &Lab, bin: &Path, clock: &Clock, daemons: &mut Daemons) -> io::Result<bool> {
    let bin = bin
        .to_str()
        .ok_or_else(|| io::Error::other("binary path"))?;
    let backend = lab.backend();
    let backend_ip = backend.ipv4();
    backend.write_file(Path::new(HAPROXY_CONFIG), HAPROXY_BACKEND_CONFIG.as_bytes())?;
    let haproxy = ["haproxy", "-db", "-f", HAPROXY_CONFIG];
    daemons.spawn(backend, "backend", "haproxy", &haproxy, &[])?;
    let nodes = [("lb1", LB1_PRIORITY), ("lb2", LB2_PRIORITY)];
    for (i, (name, _)) in nodes.iter().enumerate() {
        let host = lab.node(i + 1);
        host.write_file(
            Path::new(HAPROXY_CONFIG),
            haproxy_lb_config(name, backend_ip).as_bytes(),
        )?;
        daemons.spawn(host, name, "haproxy", &haproxy, &[])?;
    }
    let started = now_us();
    for (i, (name, priority)) in nodes.iter().enumerate() {
        let host = lab.node(i + 1);
        host.write_file(
            Path::new(VIPKEEPER_CONFIG),
            vipkeeper_config(name, *priority).as_bytes(),
        )?;
        daemons.spawn(
            host,
            name,
            "vipkeeper",
            &[bin, "run", "-c", VIPKEEPER_CONFIG],
            &[("VIPKEEPER_LOG", "info")],
        )?;
    }
    clock.say("started haproxy on backend, lb1 and lb2, then vipkeeper on lb1 and lb2");
    let mut client = Client::start(lab.client())?;

    // 1. Election: lb1 (priority 150) becomes Master and the client gets lb1's answers.
    let elected = wait_until(STARTUP_LIMIT, daemons, &mut client, |samples, log| {
        let steady = samples.iter().rev().take(5);
        samples.len() >= 5
            && steady.clone().all(|s| s.by("lb1"))
            && log.iter().any(|t| t.node == "lb1" && t.to == "MASTER")
    })?;
    if elected.is_none() {
        return Err(io::Error::other(format!(
            "lb1 did not become Master and serve the client within {STARTUP_LIMIT:?}"
        )));
    }
    let log = daemons.transitions();
    let lb1_master = log
        .iter()
        .find(|t| t.node == "lb1" && t.to == "MASTER")
        .map(|t| t.at)
        .unwrap_or(started);
    let first_lb1 = client
        .samples()
        .iter()
        .filter(|s| s.by("lb1"))
        .map(|s| s.done)
        .min()
        .unwrap_or(started);
    clock.say(&format!(
        "lb1 is MASTER after {} ms ({});\n           the client's first answer from lb1 arrived at {} ms",
        ms(started, lb1_master),
        log.iter()
            .find(|t| t.node == "lb1" && t.to == "MASTER")
            .map(|t| format!("{} -> {}: {}", t.from, t.to, t.reason))
            .unwrap_or_default(),
        ms(started, first_lb1),
    ));

    // 2. Steady state.
    let steady_from = now_us();
    pause(STEADY)?;
    daemons.check()?;
    let steady: Vec<Sample> = client
        .samples()
        .into_iter()
        .filter(|s| s.sent >= steady_from)
        .collect();
    clock.say(&format!(
        "steady: {} requests in {} ms, {} served by lb1, {} failed",
        steady.len(),
        STEADY.as_millis(),
        steady.iter().filter(|s| s.by("lb1")).count(),
        steady.iter().filter(|s| !s.ok()).count(),
    ));

    // 3. Pull lb1's cable, at a random moment between two of its adverts: the election
    // fixed their phase, and a fixed pause would always pull at the same point of it.
    let interval = u64::from(ADVERT.get()) * 10;
    let jitter = u64::from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_micros()),
    ) % (interval * 1000);
    pause(Duration::from_micros(jitter))?;
    clock.say("pulling lb1's cable (its switch ports go down)");
    let pulled = now_us();
    lab.node(1).set_link(false)?;
    let pull_took = ms(pulled, now_us());
    let took_over = wait_until(PHASE_LIMIT, daemons, &mut client, |samples, _| {
        samples.iter().any(|s| s.sent >= pulled && s.by("lb2"))
    })?;
    if took_over.is_some() {
        let answered = client
            .samples()
            .iter()
            .filter(|s| s.sent >= pulled && s.by("lb2"))
            .map(|s| s.done)
            .min()
            .unwrap_or(pulled);
        clock.say(&format!(
            "lb2 answers the client ({} ms after the pull); letting it run",
            ms(pulled, answered)
        ));
        pause(STEADY)?;
    } else {
        clock.say(&format!(
            "lb2 did not answer within {} s",
            PHASE_LIMIT.as_secs()
        ));
    }

    // 4. Plug it back: lb1 preempts after its own Master_Down_Interval.
    clock.say("plugging lb1's cable back in");
    let plugged = now_us();
    lab.node(1).set_link(true)?;
    let preempted = wait_until(PHASE_LIMIT, daemons, &mut client, |samples, log| {
        samples.iter().any(|s| s.sent >= plugged && s.by("lb1"))
            && log
                .iter()
                .any(|t| t.at >= plugged && t.node == "lb2" && t.from == "MASTER")
    })?;
    if preempted.is_some() {
        clock.say("lb1 answers the client again; letting it run");
        pause(STEADY)?;
    } else {
        clock.say(&format!(
            "lb1 did not take the VIP back within {} s",
            PHASE_LIMIT.as_secs()
        ));
    }
    let ended = now_us();
    client.finish()?;
    daemons.check()?;
    clock.say("client stopped");

    Ok(report(
        &client.samples(),
        &daemons.transitions(),
        Marks {
            started,
            steady_from,
            pulled,
            pull_took,
            plugged,
            ended,
        },
    ))
}

struct Marks {
    started: i64,
    steady_from: i64,
    pulled: i64,
    pull_took: i64,
    plugged: i64,
    ended: i64,
}

/// Prints the timelines and the summary; whether the demo passed.
fn report(samples: &[Sample], log: &[Transition], m: Marks) -> bool {
    let timers = Timers::compute(Version::V3, LB2_PRIORITY, ADVERT);
    let lb1_timers = Timers::compute(Version::V3, LB1_PRIORITY, ADVERT);
    let mut failures = Vec::new();

    // Failover: from the last answer before the gap to lb2's first answer.
    let failover: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= m.steady_from && s.sent < m.plugged)
        .collect();
    let first_lb2 = failover
        .iter()
        .find(|s| s.sent >= m.pulled && s.by("lb2"))
        .copied();
    let mut outage = None;
    let mut rows = vec![(
        0,
        format!(
            "lb1's cable pulled (the `ip link set down` took {} ms)",
            m.pull_took
        ),
    )];
    let in_window = |t: &&Transition| t.at >= m.pulled && t.at < m.plugged;
    rows.extend(
        log.iter()
            .filter(in_window)
            .map(|t| transition_row(t, m.pulled)),
    );
    // lb2 became Master one Master_Down_Interval after the last advert it heard.
    if let Some(takeover) = log
        .iter()
        .filter(in_window)
        .find(|t| t.node == "lb2" && t.to == "MASTER" && t.reason.starts_with("master down"))
    {
        let heard = takeover.at - timers.master_down_interval.as_micros() as i64;
        rows.push((
            ms(m.pulled, heard),
            format!(
                "lb1's last advert heard by lb2 (its takeover minus Master_Down_Interval {})",
                fmt_duration(timers.master_down_interval)
            ),
        ));
    }
    if let Some(first_lb2) = first_lb2 {
        let last_ok = failover
            .iter()
            .rev()
            .find(|s| s.sent < first_lb2.sent && s.ok())
            .copied();
        let origin = last_ok.map_or(m.pulled, |s| s.sent);
        let gap: Vec<&Sample> = failover
            .iter()
            .filter(|s| s.sent > origin && s.sent < first_lb2.sent)
            .copied()
            .collect();
        let failed = gap.iter().filter(|s| !s.ok()).count();
        if let Some(last_ok) = last_ok {
            rows.push((
                ms(m.pulled, last_ok.sent),
                format!(
                    "last request answered before the gap (by {})",
                    last_ok.served_by.as_deref().unwrap_or("?")
                ),
            ));
        }
        if let Some(first_fail) = gap.iter().find(|s| !s.ok()) {
            rows.push((
                ms(m.pulled, first_fail.sent),
                format!(
                    "first failed request ({})",
                    first_fail.error.as_deref().unwrap_or("?")
                ),
            ));
        }
        rows.push((
            ms(m.pulled, first_lb2.sent),
            format!(
                "first request answered by lb2 (answered in {:.1} ms)",
                (first_lb2.done - first_lb2.sent) as f64 / 1000.0
            ),
        ));
        outage = Some((ms(origin, first_lb2.sent), failed));
    } else {
        failures.push("lb2 never answered the client while lb1's cable was out".to_owned());
    }
    timeline("Failover timeline (ms after the cable pull)", rows);
    let down = timers.master_down_interval;
    // lb1's last advert left at most one interval before the pull.
    let earliest = down.saturating_sub(Duration::from_millis(u64::from(ADVERT.get()) * 10));
    let expected = format!(
        "{:.1}-{}",
        earliest.as_secs_f64() * 1000.0,
        fmt_duration(down)
    );
    println!(
        "\n  Client-visible outage: {}",
        match outage {
            Some((gap, failed)) => format!(
                "{gap} ms (last answer before the gap to lb2's first answer), {failed} request{} failed",
                if failed == 1 { "" } else { "s" }
            ),
            None => "lb2 never answered".to_owned(),
        }
    );
    println!(
        "  Protocol expectation: Master_Down_Interval at priority {LB2_PRIORITY} with {} ms adverts\n    = 3 x {} ms + Skew_Time {} = {},\n    counted from lb1's last advert, which left 0-{} ms before the pull:\n    lb2 takes over {} after the pull, then announces the VIP (gratuitous ARP).",
        ADVERT.get() as u32 * 10,
        ADVERT.get() as u32 * 10,
        fmt_duration(timers.skew_time),
        fmt_duration(down),
        ADVERT.get() as u32 * 10,
        expected,
    );

    // Preemption: lb1 is back after its own Master_Down_Interval.
    let back: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= m.plugged && s.sent < m.ended)
        .collect();
    let first_lb1 = back.iter().find(|s| s.by("lb1")).copied();
    let mut rows = vec![(0, "lb1's cable plugged back in".to_owned())];
    rows.extend(
        log.iter()
            .filter(|t| t.at >= m.plugged)
            .map(|t| transition_row(t, m.plugged)),
    );
    let back_failed = back.iter().filter(|s| !s.ok()).count();
    if let Some(first_lb1) = first_lb1 {
        rows.push((
            ms(m.plugged, first_lb1.sent),
            format!(
                "first request answered by lb1 again (answered in {:.1} ms)",
                (first_lb1.done - first_lb1.sent) as f64 / 1000.0
            ),
        ));
    } else {
        failures.push("lb1 did not answer the client again after its cable came back".to_owned());
    }
    if let Some(fail) = back.iter().find(|s| !s.ok()) {
        rows.push((
            ms(m.plugged, fail.sent),
            format!(
                "first failed request ({})",
                fail.error.as_deref().unwrap_or("?")
            ),
        ));
    }
    timeline("Preemption timeline (ms after the cable is back)", rows);
    println!(
        "\n  lb1 (priority {LB1_PRIORITY}) waits its own Master_Down_Interval, {}, hearing lb2's\n  lower-priority adverts, then preempts. Requests failed during the move back: {back_failed}.",
        fmt_duration(lb1_timers.master_down_interval)
    );

    // Summary.
    let counted: Vec<&Sample> = samples.iter().filter(|s| s.sent >= m.steady_from).collect();
    let by = |node: &str| counted.iter().filter(|s| s.by(node)).count();
    let lb2_during = failover.iter().filter(|s| s.by("lb2")).count();
    let lb1_master = log
        .iter()
        .find(|t| t.node == "lb1" && t.to == "MASTER")
        .map(|t| format!("{} ms after start", ms(m.started, t.at)))
        .unwrap_or_else(|| "never".into());
    println!("\n  Summary");
    println!("    {:<34} {lb1_master}", "lb1 elected MASTER");
    println!(
        "    {:<34} {}",
        "failover outage (client-visible)",
        outage.map_or("no failover".to_owned(), |(gap, failed)| format!(
            "{gap} ms, {failed} requests failed"
        ))
    );
    println!(
        "    {:<34} lb2 takes over {expected} after the pull",
        "protocol expectation"
    );
    println!(
        "    {:<34} {lb2_during} requests",
        "answered by lb2 while lb1 was out"
    );
    println!(
        "    {:<34} {}",
        "preemption, lb1 answers again",
        first_lb1.map_or("never".to_owned(), |s| format!(
            "{} ms after the plug, {back_failed} failed requests",
            ms(m.plugged, s.sent)
        ))
    );
    println!(
        "    {:<34} {} sent, {} by lb1, {} by lb2, {} failed",
        "requests (from steady state on)",
        counted.len(),
        by("lb1"),
        by("lb2"),
        counted.iter().filter(|s| !s.ok()).count()
    );
    if lb2_during == 0 && first_lb2.is_some() {
        failures.push("lb2 did not serve during the outage".to_owned());
    }
    println!();
    if failures.is_empty() {
        println!("PASS: lb2 took over while lb1 was off the network, and lb1 took the VIP back.");
        true
    } else {
        let mut text = String::from("FAIL:");
        for failure in &failures {
            let _ = write!(text, "\n  - {failure}");
        }
        println!("{text}");
        false
    }
}
