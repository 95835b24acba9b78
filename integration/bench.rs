//! The benchmark (`scripts/bench`): how long an HAProxy pair takes to move the VIP when the
//! Master's haproxy dies.
//!
//! Each run builds a fresh namespace lab (the demo's pair, `integration/pair`): haproxy on
//! the backend, lb1 and lb2, a VRRP daemon on lb1 (priority 150) and lb2 (100), VRRP v3
//! with 100 ms adverts, and the client asking for `http://192.0.2.50/` every 10 ms. Once lb1
//! serves, after a random pause (so the kill falls at any phase of adverts and probes), the
//! bench SIGKILLs lb1's haproxy and measures the time until the first client request answered
//! by lb2 (`X-Served-By: lb2`) completes. Scenarios alternate run by run.
//!
//! Usage: `bench PATH/TO/vipkeeper [--runs N] [--out docs/benchmarks.md] [--commit TEXT]`
//! (as root; `scripts/bench` builds and runs it). Prints a per-run log and a markdown table,
//! and rewrites everything below the marker line of the `--out` file.
//!
//! Nothing runs in the root network namespace: daemons run inside lab hosts, the client
//! thread only sends after its `setns` into the client's namespace worked.

#[path = "lab/mod.rs"]
mod lab;
#[path = "pair/mod.rs"]
mod pair;

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::{Lab, Signal};
use pair::{
    install_signal_handlers, ip_netns_list, log_events, ms, now_us, pause, transitions,
    vipkeeper_config, wait_until, Client, Daemons, ADVERT, LBS, PRIORITIES, VIP, VRID,
};

/// Bound on the start of a run: haproxy up, lb1 elected and serving the client.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);
/// lb1 must have answered every request for this long before the kill.
const SERVING: Duration = Duration::from_millis(300);
/// Then the bench waits this long plus a random part of RANDOM_PHASE.
const SETTLE: Duration = Duration::from_millis(300);
const RANDOM_PHASE: Duration = Duration::from_millis(1000);
/// Bound on the wait for lb2's first answer after the kill.
const FAILOVER_LIMIT: Duration = Duration::from_secs(8);

const KEEPALIVED_CONFIG: &str = "/run/keepalived.conf";
/// VRRP only, in the foreground, logging to the console, no respawn: the lab tracks it.
const KEEPALIVED_ARGV: &str = "keepalived -n -l -D -G -P -R -f /run/keepalived.conf \
    -p /run/keepalived.pid -r /run/keepalived_vrrp.pid";
/// Everything below this line of the output file is written by the bench, up to
/// NEXT_MARKER (bench_resources' section), which stays as it is.
const MARKER: &str = "<!-- scripts/bench writes everything below this line; edit above it -->";
const NEXT_MARKER: &str =
    "<!-- scripts/bench (bench_resources) writes everything below this line; edit above it -->";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// vipkeeper, `haproxy` stats-socket probe every 100 ms, fast_preempt off.
    HaproxySocket,
    /// vipkeeper, `haproxy` stats-socket probe every 100 ms, fast_preempt on.
    HaproxySocketFastPreempt,
    /// vipkeeper, `process` probe (pidfd), fast_preempt off.
    Process,
    /// vipkeeper, `process` probe (pidfd), fast_preempt on.
    ProcessFastPreempt,
    /// keepalived with `killall -0 haproxy` every second, fall 2: the orientation baseline.
    Keepalived,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario::HaproxySocket,
    Scenario::HaproxySocketFastPreempt,
    Scenario::Process,
    Scenario::ProcessFastPreempt,
    Scenario::Keepalived,
];

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::HaproxySocket => "vipkeeper, haproxy socket probe 100ms, fast_preempt off",
            Scenario::HaproxySocketFastPreempt => {
                "vipkeeper, haproxy socket probe 100ms, fast_preempt on"
            }
            Scenario::Process => "vipkeeper, process probe, fast_preempt off",
            Scenario::ProcessFastPreempt => "vipkeeper, process probe, fast_preempt on",
            Scenario::Keepalived => {
                "keepalived 2.2.7, killall -0 haproxy every 1s, fall 2 (orientation baseline)"
            }
        }
    }

    fn short(self) -> &'static str {
        match self {
            Scenario::HaproxySocket => "haproxy-socket",
            Scenario::HaproxySocketFastPreempt => "haproxy-socket+fast",
            Scenario::Process => "process",
            Scenario::ProcessFastPreempt => "process+fast",
            Scenario::Keepalived => "keepalived",
        }
    }

    /// The vipkeeper configuration of a node, `None` for keepalived.
    fn vipkeeper(self, name: &str, priority: u8) -> Option<String> {
        let socket = format!(
            "type = \"haproxy\"\nsocket = \"{}\"\ninterval = \"100ms\"\n",
            pair::HAPROXY_SOCKET
        );
        let process = "type = \"process\"\nname = \"haproxy\"\n".to_owned();
        let (fast, check) = match self {
            Scenario::HaproxySocket => (false, socket),
            Scenario::HaproxySocketFastPreempt => (true, socket),
            Scenario::Process => (false, process),
            Scenario::ProcessFastPreempt => (true, process),
            Scenario::Keepalived => return None,
        };
        Some(vipkeeper_config(
            name,
            priority,
            &format!("fast_preempt = {fast}\ntrack = [{{ check = \"haproxy\", weight = -60 }}]\n"),
            &format!("\n[check.haproxy]\n{check}"),
        ))
    }
}

/// keepalived's configuration on a node: the same pair, the common `killall -0` script.
fn keepalived_config(name: &str, priority: u8) -> String {
    format!(
        r#"global_defs {{
    router_id {name}
    script_user root
}}

vrrp_script chk_haproxy {{
    script "/usr/bin/killall -0 haproxy"
    interval 1
    weight -60
    fall 2
    rise 1
}}

vrrp_instance web {{
    state BACKUP
    interface eth0
    virtual_router_id {VRID}
    version 3
    priority {priority}
    advert_int {:.1}
    virtual_ipaddress {{
        {VIP}/24 dev eth0
    }}
    track_script {{
        chk_haproxy
    }}
}}
"#,
        f64::from(ADVERT.get()) / 100.0
    )
}

struct Args {
    bin: PathBuf,
    runs: usize,
    out: Option<PathBuf>,
    commit: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut bin = None;
    let mut runs = 5;
    let mut out = None;
    let mut commit = String::from("unknown");
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--runs" => {
                runs = value("--runs")?
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or("--runs: a number from 1 to 100")?;
            }
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--commit" => commit = value("--commit")?,
            _ if bin.is_none() && !arg.starts_with('-') => bin = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    let bin = bin.ok_or("the vipkeeper binary is required")?;
    let bin = fs::canonicalize(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    Ok(Args {
        bin,
        runs,
        out,
        commit,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench: {e}\nusage: bench PATH/TO/vipkeeper [--runs N] [--out FILE] [--commit TEXT]");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = install_signal_handlers() {
        eprintln!("bench: cannot install signal handlers: {e}");
        return ExitCode::from(2);
    }
    match bench(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            println!("\nInterrupted: the lab has been removed.");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("\nbench failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// What one run measured.
struct Outcome {
    /// kill -9 to the completion of lb2's first answer, ms.
    failover_ms: f64,
    /// The per-run log line's details.
    details: String,
}

fn bench(args: &Args) -> io::Result<bool> {
    let started = Instant::now();
    let mut versions = String::new();
    let mut results: Vec<(Scenario, Vec<f64>, usize)> =
        SCENARIOS.iter().map(|s| (*s, Vec::new(), 0)).collect();
    println!(
        "vipkeeper bench: kill -9 of the Master's haproxy -> first client answer from the peer\n\
         {} runs per scenario, alternating; VRRP v3, adverts every {} ms, priorities {}/{}, weight -60\n",
        args.runs,
        u32::from(ADVERT.get()) * 10,
        PRIORITIES[0],
        PRIORITIES[1],
    );
    for run in 0..args.runs {
        // Rotate the order too, so no scenario always follows the same one.
        for k in 0..SCENARIOS.len() {
            let scenario = SCENARIOS[(run + k) % SCENARIOS.len()];
            let lab = Lab::builder("bench")
                .nodes(2)
                .client(true)
                .backend(true)
                // If this process is SIGKILLed, the hosts still stop on their own.
                .max_lifetime(Duration::from_secs(60))
                .build()
                .map_err(|e| io::Error::new(e.kind(), format!("building the lab: {e}")))?;
            let namespaces = lab.namespaces();
            if versions.is_empty() {
                versions = tool_versions(&lab);
            }
            let mut daemons = Daemons { list: Vec::new() };
            let outcome = one_run(&lab, &args.bin, scenario, &mut daemons);
            let prefix = format!("run {}/{} {:<19}", run + 1, args.runs, scenario.short());
            let entry = results
                .iter_mut()
                .find(|(s, _, _)| *s == scenario)
                .expect("every scenario has an entry");
            match &outcome {
                Ok(o) => {
                    println!("{prefix} {:>7.1} ms   {}", o.failover_ms, o.details);
                    entry.1.push(o.failover_ms);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    println!("{prefix}  FAILED: {e}");
                    entry.2 += 1;
                    eprintln!("--- lab diagnostics ---\n{}", lab.diagnostics());
                }
            }
            drop(daemons);
            drop(lab);
            let left: Vec<String> = ip_netns_list()
                .into_iter()
                .filter(|ns| namespaces.contains(ns))
                .collect();
            if !left.is_empty() {
                return Err(io::Error::other(format!(
                    "cleanup left namespaces behind: {left:?}"
                )));
            }
            outcome.map(|_| ()).or_else(|e| match e.kind() {
                io::ErrorKind::Interrupted => Err(e),
                _ => Ok(()),
            })?;
        }
    }
    let table = table(&results);
    println!("\n{table}");
    println!(
        "{} runs in {:.0} s; every lab removed.",
        args.runs * SCENARIOS.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(out) = &args.out {
        write_doc(out, &table, &machine(args, &versions))?;
        println!("wrote {}", out.display());
    }
    Ok(results.iter().all(|(_, _, failed)| *failed == 0))
}

fn one_run(
    lab: &Lab,
    bin: &Path,
    scenario: Scenario,
    daemons: &mut Daemons,
) -> io::Result<Outcome> {
    let bin = bin
        .to_str()
        .ok_or_else(|| io::Error::other("binary path"))?;
    daemons.start_haproxies(lab)?;
    if scenario == Scenario::Keepalived {
        for (i, (name, priority)) in LBS.into_iter().zip(PRIORITIES).enumerate() {
            let host = lab.node(i + 1);
            host.write_file(
                Path::new(KEEPALIVED_CONFIG),
                keepalived_config(name, priority).as_bytes(),
            )?;
            let argv: Vec<&str> = KEEPALIVED_ARGV.split(' ').collect();
            daemons.spawn(host, name, "keepalived", &argv, &[])?;
        }
    } else {
        daemons.start_vipkeepers(lab, bin, |name, priority| {
            scenario
                .vipkeeper(name, priority)
                .expect("a vipkeeper scenario")
        })?;
    }
    let mut client = Client::start(lab.client())?;

    // lb1 elected and serving every request for a while.
    let serving = wait_until(STARTUP_LIMIT, daemons, &mut client, |samples, _| {
        let now = now_us();
        let recent: Vec<_> = samples
            .iter()
            .filter(|s| s.sent >= now - SERVING.as_micros() as i64 - 200_000)
            .collect();
        samples
            .first()
            .is_some_and(|s| s.sent < now - SERVING.as_micros() as i64)
            && recent.len() >= 10
            && recent.iter().all(|s| s.by("lb1"))
    })?;
    if serving.is_none() {
        return Err(io::Error::other(format!(
            "lb1 did not serve the client steadily within {STARTUP_LIMIT:?}"
        )));
    }
    pause(SETTLE + random_below(RANDOM_PHASE))?;
    if !client.samples().iter().rev().take(5).all(|s| s.by("lb1")) {
        return Err(io::Error::other("lb1 stopped serving before the kill"));
    }

    let killed = now_us();
    daemons.kill("lb1", "haproxy", Signal::Kill)?;
    daemons.forget("lb1", "haproxy");
    let answered = wait_until(FAILOVER_LIMIT, daemons, &mut client, |samples, _| {
        samples.iter().any(|s| s.sent >= killed && s.by("lb2"))
    })?;
    client.finish()?;
    if answered.is_none() {
        return Err(io::Error::other(format!(
            "lb2 did not answer within {FAILOVER_LIMIT:?} of the kill"
        )));
    }
    let samples = client.samples();
    let first = samples
        .iter()
        .filter(|s| s.sent >= killed && s.by("lb2"))
        .min_by_key(|s| s.done)
        .expect("an answer from lb2");
    let failed = samples
        .iter()
        .filter(|s| s.sent >= killed && s.sent < first.sent && !s.ok())
        .count();

    // Where the time went, from vipkeeper's logs (keepalived's console log has no times).
    let mut steps = Vec::new();
    if scenario != Scenario::Keepalived {
        let lb1 = daemons.vipkeeper_log("lb1");
        let after = |events: Vec<(i64, String)>| events.into_iter().find(|(at, _)| *at >= killed);
        if let Some((at, _)) = after(log_events(&lb1, "check changed")) {
            steps.push(format!("lb1 check down +{}", ms(killed, at)));
        }
        if let Some((at, text)) = after(log_events(&lb1, "effective priority changed")) {
            let to = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix("to="))
                .map(|v| v.trim_start_matches("Value(").trim_end_matches(')'))
                .unwrap_or("?");
            steps.push(format!("priority {to} +{}", ms(killed, at)));
        }
        if let Some(t) = transitions("lb2", &daemons.vipkeeper_log("lb2"))
            .into_iter()
            .find(|t| t.at >= killed && t.to == "MASTER")
        {
            steps.push(format!("lb2 MASTER +{}", ms(killed, t.at)));
        }
    }
    steps.push(format!("first lb2 answer sent +{}", ms(killed, first.sent)));
    steps.push(format!("{failed} requests failed"));
    Ok(Outcome {
        failover_ms: (first.done - killed) as f64 / 1000.0,
        details: steps.join(", "),
    })
}

/// A pseudo-random duration in [0, limit), from the clock's sub-second digits.
fn random_below(limit: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Mix the bits a little: the low digits of the clock are not evenly spread.
    let mixed = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    Duration::from_micros(mixed % limit.as_micros().max(1) as u64)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The markdown table: scenario | runs | min | median | max (ms).
fn table(results: &[(Scenario, Vec<f64>, usize)]) -> String {
    let mut text = String::from(
        "| scenario | runs | min (ms) | median (ms) | max (ms) |\n|---|---:|---:|---:|---:|\n",
    );
    for (scenario, times, failed) in results {
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let runs = if *failed > 0 {
            format!("{} ({failed} failed)", sorted.len())
        } else {
            sorted.len().to_string()
        };
        if sorted.is_empty() {
            let _ = writeln!(text, "| {} | {runs} | - | - | - |", scenario.label());
        } else {
            let _ = writeln!(
                text,
                "| {} | {runs} | {:.0} | {:.0} | {:.0} |",
                scenario.label(),
                sorted[0],
                median(&sorted),
                sorted[sorted.len() - 1],
            );
        }
    }
    text
}

/// haproxy's and keepalived's versions, asked inside a lab node (never run in the root
/// namespace, not even for `-v`).
fn tool_versions(lab: &Lab) -> String {
    let node = lab.node(1);
    let first_line = |argv: &[&str]| {
        node.run(argv, Duration::from_secs(2))
            .ok()
            .and_then(|out| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                text.lines().next().map(str::to_owned)
            })
            .unwrap_or_else(|| "unknown".into())
    };
    format!(
        "{}; {}",
        first_line(&["haproxy", "-v"]),
        first_line(&["keepalived", "-v"])
    )
}

fn machine(args: &Args, versions: &str) -> String {
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let profile = if args.bin.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else if args.bin.components().any(|c| c.as_os_str() == "debug") {
        "debug"
    } else {
        "unknown profile"
    };
    format!(
        "- CPUs (`nproc`): {nproc} ({cpu}), shared with other work\n\
         - memory: {memory}\n\
         - kernel: {}\n\
         - vipkeeper: {profile} build, commit {}\n\
         - {versions}\n",
        read("/proc/sys/kernel/osrelease").trim(),
        args.commit,
    )
}

/// Rewrites everything between MARKER and NEXT_MARKER in `out` (the hand-written intro
/// above MARKER and bench_resources' section from NEXT_MARKER on stay).
fn write_doc(out: &Path, table: &str, machine: &str) -> io::Result<()> {
    let existing = fs::read_to_string(out).unwrap_or_default();
    let intro = match existing.find(MARKER) {
        Some(at) => existing[..at].to_owned(),
        None => "# Benchmarks\n\n".to_owned(),
    };
    let rest = match existing.find(NEXT_MARKER) {
        Some(at) => format!("\n{}", &existing[at..]),
        None => String::new(),
    };
    let date = {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        civil_date(secs)
    };
    let text = format!(
        "{intro}{MARKER}\n\n\
         ## Failover after `kill -9` of the Master's haproxy\n\n\
         Measured {date} by `scripts/bench`.\n\n\
         {table}\n\
         Machine:\n\n\
         {machine}\n\
         Method: each run builds a fresh namespace lab (docs/lab.md): haproxy on a backend and on\n\
         lb1 and lb2, the VRRP daemon on lb1 (priority 150) and lb2 (100), VRRP v3, VRID {VRID},\n\
         adverts every {} ms, the tracked check weighing -60 (lb1 drops to 90 when its haproxy\n\
         dies). A client in its own namespace sends `GET http://{VIP}/` every 10 ms (connect\n\
         timeout 50 ms, request timeout 200 ms). Once lb1 has answered every request for 300 ms,\n\
         the bench waits 300 ms plus a random 0-1000 ms (so the kill falls at any phase of the\n\
         adverts and of the probes), SIGKILLs lb1's haproxy (by pid, the lab's process handle)\n\
         and takes the time from just before the kill to the completion of the first request\n\
         answered by lb2 (`X-Served-By: lb2`). The client's 10 ms period bounds the resolution.\n\
         Scenarios alternate run by run (the order rotates each round); a run that fails to\n\
         elect lb1 or to fail over within 8 s is counted as failed, not timed.\n{rest}",
        u32::from(ADVERT.get()) * 10
    );
    fs::write(out, text)
}

/// `YYYY-MM-DD` (UTC) of a Unix time (Howard Hinnant's civil_from_days).
fn civil_date(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
