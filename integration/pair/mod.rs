//! The HAProxy pair on the namespace lab, shared by the demo (`integration/demo.rs`) and the
//! benchmark (`integration/bench.rs`): the hosts' configuration files, the client that asks
//! for the VIP every 10 ms from inside the client's network namespace, the daemons kept
//! alive for a run and the parsing of vipkeeper's log, the Ctrl-C flag every wait checks.
//!
//! Included with `#[path = "pair/mod.rs"] mod pair;` next to `#[path = "lab/mod.rs"] mod lab;`
//! (it uses `crate::lab`). Nothing here runs in the root network namespace: daemons run in
//! lab hosts and the client thread refuses to send unless its `setns` worked.

// The demo and the benchmark each use a part of it.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::lab::{Host, Lab, LabProcess, Signal};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vipkeeper::vrrp::Centis;

pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
pub const VRID: u8 = 51;
pub const LB1_PRIORITY: u8 = 150;
pub const LB2_PRIORITY: u8 = 100;
/// The load balancers, lab nodes 1 and 2, and their VRRP priorities.
pub const LBS: [&str; 2] = ["lb1", "lb2"];
pub const PRIORITIES: [u8; 2] = [LB1_PRIORITY, LB2_PRIORITY];
pub const ADVERT: Centis = Centis::new(10);
pub const VIPKEEPER_CONFIG: &str = "/run/vipkeeper.toml";
pub const HAPROXY_CONFIG: &str = "/run/haproxy.cfg";

/// The client sends one request every PERIOD, each bounded by these timeouts.
pub const PERIOD: Duration = Duration::from_millis(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(50);
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(200);
/// The client stops on its own after this long, whatever happens to the demo.
pub const CLIENT_LIFETIME: Duration = Duration::from_secs(60);

/// Set by SIGINT/SIGTERM; every wait checks it, so the lab is dropped on Ctrl-C.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn install_signal_handlers() -> io::Result<()> {
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

pub fn check_interrupted() -> io::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"))
    } else {
        Ok(())
    }
}

/// Sleeps `d` in small steps, returning early (as an error) on Ctrl-C.
pub fn pause(d: Duration) -> io::Result<()> {
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
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Configuration of the lab hosts.

/// The configuration of vipkeeper on a load balancer. `instance_extra` is added to the
/// instance's table (e.g. `fast_preempt`, `track`), `tables` after it (e.g. `[check.NAME]`).
pub fn vipkeeper_config(name: &str, priority: u8, instance_extra: &str, tables: &str) -> String {
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
{instance_extra}{tables}"#,
        u32::from(ADVERT.get()) * 10
    )
}

/// Where each load balancer's haproxy has its admin socket (each lab host has its own /run).
pub const HAPROXY_SOCKET: &str = "/run/haproxy.sock";

pub fn haproxy_lb_config(name: &str, backend: Ipv4Addr) -> String {
    format!(
        r#"global
    maxconn 1000
    stats socket {HAPROXY_SOCKET} mode 600 level admin

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

pub const HAPROXY_BACKEND_CONFIG: &str = r#"global
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
pub struct Sample {
    /// When the request started (wall clock, µs).
    pub sent: i64,
    /// When the answer (or the failure) came.
    pub done: i64,
    /// `X-Served-By` of a 200 answer; `None` for a failure.
    pub served_by: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Sample {
    pub fn ok(&self) -> bool {
        self.served_by.is_some()
    }

    pub fn by(&self, node: &str) -> bool {
        self.served_by.as_deref() == Some(node)
    }
}

pub struct Client {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Client {
    pub fn start(host: &Host) -> io::Result<Client> {
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
    pub fn samples(&self) -> Vec<Sample> {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        samples.sort_by_key(|s| s.sent);
        samples
    }

    /// Fails if the client thread has stopped on its own (it could not enter the namespace).
    pub fn check_alive(&mut self) -> io::Result<()> {
        if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            self.finish()?;
            return Err(io::Error::other("the client thread stopped early"));
        }
        Ok(())
    }

    /// Stops the loop and waits for requests in flight (each is bounded by REQUEST_TIMEOUT).
    pub fn finish(&mut self) -> io::Result<()> {
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

pub fn client_thread(
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
pub async fn request(target: SocketAddr) -> Sample {
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

pub fn short_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".into(),
        io::ErrorKind::ConnectionReset => "reset".into(),
        _ => e.to_string(),
    }
}

/// The node named in `X-Served-By` of a 200 answer.
pub fn parse_answer(answer: &[u8]) -> Result<String, String> {
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
pub struct Transition {
    pub at: i64,
    pub node: &'static str,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// The `transition` lines of a vipkeeper log (the instance's span before the message):
/// `2025-01-01T12:00:00.123456Z  INFO instance{...}: transition instance=web ... from=BACKUP to=MASTER reason=...`
pub fn transitions(node: &'static str, log: &str) -> Vec<Transition> {
    log.lines()
        .filter_map(|line| {
            let (at, message) = timed_message(line)?;
            let line = message.strip_prefix("transition ")?;
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

/// The times (µs) and texts of the lines of a vipkeeper log whose message starts with
/// `message` (`2025-01-01T12:00:00.123456Z  INFO check changed check=chk ...`).
pub fn log_events(log: &str, message: &str) -> Vec<(i64, String)> {
    log.lines()
        .filter_map(|line| {
            let (at, rest) = timed_message(line)?;
            rest.starts_with(message).then(|| (at, rest.to_owned()))
        })
        .collect()
}

/// The time (µs) and the message of one text log line, past the level and any spans:
/// `2025-01-01T12:00:00.1Z  INFO instance{instance=web vrid=51 iface=eth0}: transition ...`
/// gives `transition ...`.
pub fn timed_message(line: &str) -> Option<(i64, &str)> {
    let line = line.trim_start();
    let (stamp, rest) = line.split_once(char::is_whitespace)?;
    let at = parse_rfc3339(stamp)?;
    let (_level, mut rest) = rest.trim_start().split_once(char::is_whitespace)?;
    rest = rest.trim_start();
    // Spans: `name{fields}:` (nested ones are joined by `:`), before the message.
    while let Some((span, after)) = rest.split_once("}: ") {
        let is_span = span
            .split_once('{')
            .is_some_and(|(name, _)| !name.is_empty() && !name.contains(char::is_whitespace));
        if !is_span {
            break;
        }
        rest = after.trim_start();
    }
    Some((at, rest))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z` to microseconds since the epoch.
pub fn parse_rfc3339(stamp: &str) -> Option<i64> {
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

/// Milliseconds between two µs instants, signed, for timelines.
pub fn ms(from: i64, to: i64) -> i64 {
    (to - from).div_euclid(1000)
}

pub fn fmt_duration(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Status lines, stamped with the time since the demo started.
pub struct Clock(pub Instant);

impl Clock {
    pub fn say(&self, text: &str) {
        println!("[{:6.2}s] {text}", self.0.elapsed().as_secs_f64());
    }
}

/// The daemons (host name, program, process), kept alive for as long as the demo runs.
pub struct Daemons {
    pub list: Vec<(&'static str, &'static str, LabProcess)>,
}

impl Daemons {
    pub fn spawn(
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

    pub fn vipkeeper_log(&self, node: &str) -> String {
        self.list
            .iter()
            .find(|(name, program, _)| *name == node && *program == "vipkeeper")
            .map(|(_, _, p)| p.stderr())
            .unwrap_or_default()
    }

    pub fn transitions(&self) -> Vec<Transition> {
        let mut all: Vec<Transition> = ["lb1", "lb2"]
            .into_iter()
            .flat_map(|node| transitions(node, &self.vipkeeper_log(node)))
            .collect();
        all.sort_by_key(|t| t.at);
        all
    }

    /// Sends `signal` to `program` on `node` (the lab signals only its own processes).
    pub fn kill(&mut self, node: &str, program: &str, signal: Signal) -> io::Result<()> {
        let (_, _, process) = self
            .list
            .iter_mut()
            .find(|(name, prog, _)| *name == node && *prog == program)
            .ok_or_else(|| io::Error::other(format!("no {program} on {node}")))?;
        process.kill(signal)?;
        Ok(())
    }

    /// Forgets `program` on `node` (after killing it): `check` no longer counts its exit.
    pub fn forget(&mut self, node: &str, program: &str) {
        self.list
            .retain(|(name, prog, _)| !(*name == node && *prog == program));
    }

    /// haproxy on the backend and on lb1 and lb2 (as `haproxy_lb_config`), in the foreground.
    pub fn start_haproxies(&mut self, lab: &Lab) -> io::Result<()> {
        let backend = lab.backend();
        let backend_ip = backend.ipv4();
        backend.write_file(Path::new(HAPROXY_CONFIG), HAPROXY_BACKEND_CONFIG.as_bytes())?;
        let haproxy = ["haproxy", "-db", "-f", HAPROXY_CONFIG];
        self.spawn(backend, "backend", "haproxy", &haproxy, &[])?;
        for (i, name) in LBS.into_iter().enumerate() {
            let host = lab.node(i + 1);
            host.write_file(
                Path::new(HAPROXY_CONFIG),
                haproxy_lb_config(name, backend_ip).as_bytes(),
            )?;
            self.spawn(host, name, "haproxy", &haproxy, &[])?;
        }
        Ok(())
    }

    /// vipkeeper on lb1 (priority 150) and lb2 (100); `config(name, priority)` writes its
    /// configuration (e.g. `vipkeeper_config`).
    pub fn start_vipkeepers(
        &mut self,
        lab: &Lab,
        bin: &str,
        config: impl Fn(&str, u8) -> String,
    ) -> io::Result<()> {
        for (i, (name, priority)) in LBS.into_iter().zip(PRIORITIES).enumerate() {
            let host = lab.node(i + 1);
            host.write_file(
                Path::new(VIPKEEPER_CONFIG),
                config(name, priority).as_bytes(),
            )?;
            self.spawn(
                host,
                name,
                "vipkeeper",
                &[bin, "run", "-c", VIPKEEPER_CONFIG],
                &[("VIPKEEPER_LOG", "info")],
            )?;
        }
        Ok(())
    }

    /// Every daemon still runs; otherwise which one stopped, and its log.
    pub fn check(&mut self) -> io::Result<()> {
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

pub fn ip_netns_list() -> Vec<String> {
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
pub fn wait_until(
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
