//! The resource benchmark (`scripts/bench`, after the failover one): what vipkeeper and
//! keepalived cost as Master, and how punctual their adverts are.
//!
//! Each run builds a fresh two-node namespace lab and runs the same daemon kind on both
//! nodes, node1 with priority 150 (it becomes Master and hears node2, priority 100), VRRP v3,
//! IPv4, adverts every 100 ms, the same settings for both daemons. Daemons alternate run by
//! run. Per run and daemon:
//!
//! 1. 1 instance (VRID 1, VIP 192.0.2.101): once node1 holds the VIP, the CPU time
//!    (utime+stime of the daemon's processes on node1: the spawned pid and every descendant,
//!    keepalived's vrrp child included) over `--resource-secs` S seconds, shown as % of one
//!    core, and the RSS (sum of VmRSS of those processes) at the end. Meanwhile a thread in
//!    node2's network namespace captures node1's adverts on a raw IPPROTO 112 socket with
//!    kernel receive timestamps (SO_TIMESTAMPNS): lateness = gap - 100 ms between
//!    consecutive VRID 1 adverts, p50/p99/max, "idle".
//! 2. The same capture for S seconds more while a busy loop (`sh -c 'while :; do :; done'`,
//!    pinned to CPU 1 with `taskset` when there is one) runs inside node1: "other core busy".
//! 3. 100 instances (VRIDs 1..=100 on eth0, VIP 192.0.2.(100+i)/24 each): CPU and RSS as in 1.
//!
//! Usage: `bench_resources PATH/TO/vipkeeper [--runs N] [--resource-secs S] [--out FILE]
//! [--commit TEXT]` (as root; default 3 runs, S = 60). Prints a per-run log and a markdown
//! table, and rewrites everything below the marker line `MARKER` of the `--out` file
//! (`bench` writes between its own marker and this one).
//!
//! Nothing runs in the root network namespace: daemons and the busy loop run inside lab
//! hosts, the capture thread opens its socket only after its `setns` into node2 worked.

#[path = "lab/mod.rs"]
mod lab;
#[path = "pair/mod.rs"]
mod pair;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, IoSliceMut};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::{Host, Lab, LabProcess, Signal};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{self, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn};
use nix::sys::time::TimeVal;
use pair::{check_interrupted, install_signal_handlers, ip_netns_list, pause};

/// Everything below this line of the output file is written by this bench.
const MARKER: &str =
    "<!-- scripts/bench (bench_resources) writes everything below this line; edit above it -->";
const ADVERT_MS: f64 = 100.0;
const MANY: u8 = 100;
const KEEPALIVED_CONFIG: &str = "/run/keepalived.conf";
/// VRRP only (parent + vrrp child), in the foreground, logging to the console, no respawn.
const KEEPALIVED_ARGV: &str = "keepalived -n -l -G -P -R -f /run/keepalived.conf \
    -p /run/keepalived.pid -r /run/keepalived_vrrp.pid";
const VIPKEEPER_CONFIG: &str = "/run/vipkeeper.toml";
/// Bound on node1 taking every VIP after the daemons start.
const ELECTION_LIMIT: Duration = Duration::from_secs(20);
/// After the election, before measuring (start-up work, gratuitous ARPs).
const SETTLE: Duration = Duration::from_secs(2);

/// The targets.
const TARGET_RSS_MB: f64 = 13.4;
const TARGET_CPU_100: f64 = 3.2;
const TARGET_P99_BUSY_MS: f64 = 2.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Daemon {
    Vipkeeper,
    Keepalived,
}

const DAEMONS: [Daemon; 2] = [Daemon::Vipkeeper, Daemon::Keepalived];

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Vipkeeper => "vipkeeper",
            Daemon::Keepalived => "keepalived",
        }
    }
}

fn vip(vrid: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 100 + vrid)
}

fn vipkeeper_config(node: &str, priority: u8, instances: u8) -> String {
    let mut text = format!(
        "[global]\nnode_name = \"{node}\"\ncontrol_socket = \"/run/vipkeeper/control.sock\"\n"
    );
    for vrid in 1..=instances {
        let _ = write!(
            text,
            "\n[[instance]]\nname = \"vi{vrid}\"\ninterface = \"eth0\"\nvrid = {vrid}\n\
             version = 3\npriority = {priority}\nadvert_interval = \"100ms\"\n\
             vips = [\"{}/24\"]\n",
            vip(vrid)
        );
    }
    text
}

fn keepalived_config(node: &str, priority: u8, instances: u8) -> String {
    let mut text = format!("global_defs {{\n    router_id {node}\n    vrrp_version 3\n}}\n");
    for vrid in 1..=instances {
        let _ = write!(
            text,
            "\nvrrp_instance vi{vrid} {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id {vrid}\n    version 3\n    priority {priority}\n    \
             advert_int 0.1\n    virtual_ipaddress {{\n        {}/24 dev eth0\n    }}\n}}\n",
            vip(vrid)
        );
    }
    text
}

struct Args {
    bin: PathBuf,
    runs: usize,
    secs: u64,
    out: Option<PathBuf>,
    commit: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut bin, mut runs, mut secs, mut out) = (None, 3, 60, None);
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
            "--resource-secs" => {
                secs = value("--resource-secs")?
                    .parse()
                    .ok()
                    .filter(|n| (5..=3600).contains(n))
                    .ok_or("--resource-secs: a number from 5 to 3600")?;
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
        secs,
        out,
        commit,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "bench_resources: {e}\nusage: bench_resources PATH/TO/vipkeeper [--runs N] \
                 [--resource-secs S] [--out FILE] [--commit TEXT]"
            );
            return ExitCode::from(2);
        }
    };
    if let Err(e) = install_signal_handlers() {
        eprintln!("bench_resources: cannot install signal handlers: {e}");
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
            eprintln!("\nbench_resources failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// The metrics, in table order.
const METRICS: [&str; 10] = [
    "RSS, 1 instance (MB)",
    "CPU, 1 instance (% of a core)",
    "RSS, 100 instances (MB)",
    "CPU, 100 instances (% of a core)",
    "advert lateness p50, idle (ms)",
    "advert lateness p99, idle (ms)",
    "advert lateness max, idle (ms)",
    "advert lateness p50, other core busy (ms)",
    "advert lateness p99, other core busy (ms)",
    "advert lateness max, other core busy (ms)",
];

fn target(metric: usize) -> &'static str {
    match metric {
        0 | 2 => "≤ keepalived (≈ 13.4 MB)",
        1 => "≤ keepalived",
        3 => "≤ keepalived (≈ 3.2 %)",
        8 => "< 2 ms",
        _ => "",
    }
}

/// Per daemon and metric, the values of the runs that succeeded; failed runs per daemon.
struct Results {
    values: Vec<[Vec<f64>; 10]>,
    failed: [usize; 2],
}

fn bench(args: &Args) -> io::Result<bool> {
    let started = Instant::now();
    let mut results = Results {
        values: vec![Default::default(), Default::default()],
        failed: [0, 0],
    };
    let mut keepalived_version = String::new();
    println!(
        "vipkeeper resource bench: {} runs per daemon, alternating; VRRP v3 IPv4, adverts \
         every 100 ms, node1 priority 150 (Master), node2 100; {} s windows\n",
        args.runs, args.secs
    );
    for run in 0..args.runs {
        for k in 0..DAEMONS.len() {
            let index = (run + k) % DAEMONS.len();
            let daemon = DAEMONS[index];
            let prefix = format!("run {}/{} {:<10}", run + 1, args.runs, daemon.name());
            match one_run(args, daemon, &mut keepalived_version) {
                Ok(row) => {
                    println!(
                        "{prefix} 1 inst: {:.1} MB {:.2}%  100 inst: {:.1} MB {:.2}%  \
                         lateness idle p50/p99/max {:.2}/{:.2}/{:.2} ms  busy {:.2}/{:.2}/{:.2} ms",
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        row[5],
                        row[6],
                        row[7],
                        row[8],
                        row[9]
                    );
                    for (m, v) in row.into_iter().enumerate() {
                        results.values[index][m].push(v);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
                Err(e) => {
                    println!("{prefix} FAILED: {e}");
                    results.failed[index] += 1;
                }
            }
        }
    }
    let table = table(&results);
    println!("\n{table}");
    println!(
        "{} runs in {:.0} s; every lab removed.",
        args.runs * DAEMONS.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(out) = &args.out {
        write_doc(out, &table, args, &keepalived_version, &results)?;
        println!("wrote {}", out.display());
    }
    Ok(results.failed.iter().all(|f| *f == 0))
}

/// Builds a lab, starts `daemon` with `instances` on both nodes, waits for node1 to hold
/// every VIP and runs `measure` with the lab and node1's daemon; removes the lab after.
fn with_lab<T>(
    args: &Args,
    daemon: Daemon,
    instances: u8,
    version: &mut String,
    measure: impl FnOnce(&Lab, &LabProcess) -> io::Result<T>,
) -> io::Result<T> {
    let lab = Lab::builder("benchres")
        .nodes(2)
        .client(false)
        .max_lifetime(Duration::from_secs(3 * args.secs + 120))
        .build()
        .map_err(|e| io::Error::new(e.kind(), format!("building the lab: {e}")))?;
    let namespaces = lab.namespaces();
    let outcome = (|| {
        if version.is_empty() && daemon == Daemon::Keepalived {
            let out = lab
                .node(1)
                .run(&["keepalived", "-v"], Duration::from_secs(2))?;
            *version = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .lines()
            .next()
            .unwrap_or("unknown")
            .to_owned();
        }
        let mut procs = Vec::new();
        for (i, priority) in [(1, 150), (2, 100)] {
            let host = lab.node(i);
            let node = format!("node{i}");
            let process = match daemon {
                Daemon::Vipkeeper => {
                    let config = vipkeeper_config(&node, priority, instances);
                    host.write_file(Path::new(VIPKEEPER_CONFIG), config.as_bytes())?;
                    let bin = args.bin.to_str().ok_or(io::Error::other("binary path"))?;
                    host.spawn(&[bin, "run", "-c", VIPKEEPER_CONFIG], &[])?
                }
                Daemon::Keepalived => {
                    let config = keepalived_config(&node, priority, instances);
                    host.write_file(Path::new(KEEPALIVED_CONFIG), config.as_bytes())?;
                    let argv: Vec<&str> = KEEPALIVED_ARGV.split(' ').collect();
                    host.spawn(&argv, &[])?
                }
            };
            procs.push(process);
        }
        wait_master(lab.node(1), &mut procs, instances)?;
        pause(SETTLE)?;
        let result = measure(&lab, &procs[0])?;
        for p in &mut procs {
            if let Some(status) = p.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited during the measurement ({status}): {}",
                    daemon.name(),
                    p.stderr().trim_end()
                )));
            }
        }
        Ok(result)
    })();
    if outcome.is_err() {
        eprintln!("--- lab diagnostics ---\n{}", lab.diagnostics());
    }
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
    outcome
}

/// Waits until node1 holds every VIP (and both daemons still run).
fn wait_master(node1: &Host, procs: &mut [LabProcess], instances: u8) -> io::Result<()> {
    let end = Instant::now() + ELECTION_LIMIT;
    loop {
        check_interrupted()?;
        for p in procs.iter_mut() {
            if let Some(status) = p.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited ({status}): {}",
                    p.label(),
                    p.stderr().trim_end()
                )));
            }
        }
        let addrs = node1.run_ok(
            &["ip", "-4", "-o", "addr", "show", "dev", "eth0"],
            Duration::from_secs(3),
        )?;
        let held = (1..=instances)
            .filter(|v| addrs.contains(&format!("inet {}/", vip(*v))))
            .count();
        if held == usize::from(instances) {
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(io::Error::other(format!(
                "node1 holds {held} of {instances} VIPs after {ELECTION_LIMIT:?}"
            )));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// `pid` and all its descendants (host pids), by walking /proc for PPid.
fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let p: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() && tree.len() < 64 {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// utime+stime of one process (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap_or(0) + 1..]
        .split_whitespace()
        .collect();
    // After comm: state(3) ppid(4) ... utime(14) stime(15), so indexes 11 and 12 here.
    let ticks = |i: usize| -> io::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: no field {i}")))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

fn rss_mb(pid: u32) -> io::Result<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/status: no VmRSS")))?;
    Ok(kib / 1024.0)
}

/// CPU (% of one core) over `secs` and RSS (MB) at the end, of `pid`'s process tree.
/// `during` runs at the start of the window (the capture) and is joined at the end.
fn usage<T>(
    pid: u32,
    secs: u64,
    during: impl FnOnce() -> io::Result<T>,
) -> io::Result<(f64, f64, T)> {
    let tree = process_tree(pid);
    let before: f64 = tree
        .iter()
        .map(|p| cpu_seconds(*p))
        .sum::<io::Result<_>>()?;
    let t0 = Instant::now();
    let extra = during()?;
    let remaining = Duration::from_secs(secs).saturating_sub(t0.elapsed());
    pause(remaining)?;
    let after: f64 = tree
        .iter()
        .map(|p| cpu_seconds(*p))
        .sum::<io::Result<_>>()?;
    let elapsed = t0.elapsed().as_secs_f64();
    let rss: f64 = tree.iter().map(|p| rss_mb(*p)).sum::<io::Result<_>>()?;
    Ok(((after - before) / elapsed * 100.0, rss, extra))
}

fn one_run(args: &Args, daemon: Daemon, version: &mut String) -> io::Result<[f64; 10]> {
    let secs = args.secs;
    let mut row = [0.0; 10];
    let window = Duration::from_secs(secs);
    let (idle, busy, cpu1, rss1) = with_lab(args, daemon, 1, version, |lab, master| {
        let pid = master.pid().ok_or(io::Error::other("no pid"))?;
        let netns = PathBuf::from(format!("/proc/{}/ns/net", lab.node(2).init_pid()));
        let from = lab.node(1).ipv4();
        // The capture runs during the CPU window: both cover the same S seconds.
        let (cpu, rss, idle) = usage(pid, secs, || {
            let netns = netns.clone();
            Ok(thread::spawn(move || capture(&netns, from, window)))
        })?;
        let idle = idle
            .join()
            .map_err(|_| io::Error::other("capture panicked"))??;
        let node1 = lab.node(1);
        let taskset = node1
            .run(&["taskset", "-c", "1", "true"], Duration::from_secs(2))
            .is_ok_and(|o| o.status.success());
        let spin = ["sh", "-c", "while :; do :; done"];
        let argv: Vec<&str> = if taskset {
            ["taskset", "-c", "1"].into_iter().chain(spin).collect()
        } else {
            spin.to_vec()
        };
        let mut busy_loop = node1.spawn(&argv, &[])?;
        let busy = (|| {
            pause(Duration::from_millis(500))?;
            capture(&netns, from, window)
        })();
        busy_loop.kill(Signal::Kill)?;
        let _ = busy_loop.wait_timeout(Duration::from_secs(2));
        Ok((idle, busy?, cpu, rss))
    })?;
    let (cpu100, rss100) = with_lab(args, daemon, MANY, version, |_, master| {
        let pid = master.pid().ok_or(io::Error::other("no pid"))?;
        let (cpu, rss, ()) = usage(pid, secs, || Ok(()))?;
        Ok((cpu, rss))
    })?;
    row[0] = rss1;
    row[1] = cpu1;
    row[2] = rss100;
    row[3] = cpu100;
    row[4..7].copy_from_slice(&lateness(&idle)?);
    row[7..10].copy_from_slice(&lateness(&busy)?);
    Ok(row)
}

/// p50, p99, max of (gap - 100 ms) between consecutive adverts, in ms.
fn lateness(stamps: &[i128]) -> io::Result<[f64; 3]> {
    if stamps.len() < 10 {
        return Err(io::Error::other(format!(
            "only {} adverts of VRID 1 captured",
            stamps.len()
        )));
    }
    let mut late: Vec<f64> = stamps
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e6 - ADVERT_MS)
        .collect();
    late.sort_by(f64::total_cmp);
    let pick = |q: f64| late[((late.len() - 1) as f64 * q).round() as usize];
    Ok([pick(0.5), pick(0.99), late[late.len() - 1]])
}

/// Kernel receive times (ns, CLOCK_REALTIME) of VRRP VRID 1 adverts from `from`, captured
/// for `window` on a raw IPPROTO 112 socket in the network namespace `netns`.
fn capture(netns: &Path, from: Ipv4Addr, window: Duration) -> io::Result<Vec<i128>> {
    let ns = File::open(netns)?;
    setns(&ns, CloneFlags::CLONE_NEWNET)
        .map_err(|e| io::Error::other(format!("setns {}: {e}", netns.display())))?;
    if fs::read_link("/proc/thread-self/ns/net")? != fs::read_link(netns)? {
        return Err(io::Error::other(
            "capture thread is not in node2's namespace",
        ));
    }
    let sock = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::from(nix::libc::SOCK_RAW),
        Some(socket2::Protocol::from(112)),
    )?;
    socket::setsockopt(&sock, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
    socket::setsockopt(&sock, sockopt::ReceiveTimeout, &TimeVal::new(0, 200_000))
        .map_err(io::Error::from)?;
    let mut stamps = Vec::new();
    let end = Instant::now() + window;
    let mut buf = [0u8; 2048];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    while Instant::now() < end && stamps.len() < 1_000_000 {
        check_interrupted()?;
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match socket::recvmsg::<SockaddrIn>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let stamp = msg.cmsgs().map_err(io::Error::from)?.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => {
                Some(i128::from(ts.tv_sec()) * 1_000_000_000 + i128::from(ts.tv_nsec()))
            }
            _ => None,
        });
        let len = msg.bytes;
        let src = msg.address.map(|a| a.ip());
        // IPv4 header, then VRRP: version/type, VRID.
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        if src != Some(from) || len < ihl + 2 || buf[ihl + 1] != 1 {
            continue;
        }
        let stamp = stamp.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128)
        });
        stamps.push(stamp);
    }
    Ok(stamps)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// metric | target | daemon | runs | min | median | max
fn table(results: &Results) -> String {
    let mut text = String::from(
        "| metric | target | daemon | runs | min | median | max |\n\
         |---|---|---|---:|---:|---:|---:|\n",
    );
    for (m, metric) in METRICS.iter().enumerate() {
        for (d, daemon) in DAEMONS.iter().enumerate() {
            let mut sorted = results.values[d][m].clone();
            sorted.sort_by(f64::total_cmp);
            let failed = results.failed[d];
            let runs = if failed > 0 {
                format!("{} ({failed} failed)", sorted.len())
            } else {
                sorted.len().to_string()
            };
            let prec = if m < 4 { 1 } else { 2 };
            let prec = if m == 1 || m == 3 { 2 } else { prec };
            if sorted.is_empty() {
                let _ = writeln!(
                    text,
                    "| {metric} | {} | {} | {runs} | - | - | - |",
                    target(m),
                    daemon.name()
                );
            } else {
                let _ = writeln!(
                    text,
                    "| {metric} | {} | {} | {runs} | {:.prec$} | {:.prec$} | {:.prec$} |",
                    target(m),
                    daemon.name(),
                    sorted[0],
                    median(&sorted),
                    sorted[sorted.len() - 1],
                );
            }
        }
    }
    text
}

/// Whether vipkeeper's median meets each target, as sentences for the doc.
fn verdicts(results: &Results) -> String {
    let med = |d: usize, m: usize| {
        let mut v = results.values[d][m].clone();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| median(&v))
    };
    let mut text = String::new();
    let mut line = |what: &str, ours: Option<f64>, limit: Option<f64>, unit: &str| {
        let verdict = match (ours, limit) {
            (Some(o), Some(l)) if o <= l => format!("met ({o:.2} {unit} ≤ {l:.2} {unit})"),
            (Some(o), Some(l)) => format!("**missed** ({o:.2} {unit} > {l:.2} {unit})"),
            _ => "not measured (runs failed)".to_owned(),
        };
        let _ = writeln!(text, "- {what}: {verdict}");
    };
    line(
        "RSS, 1 instance, ≤ keepalived's",
        med(0, 0),
        med(1, 0),
        "MB",
    );
    line(
        "RSS, 100 instances, ≤ keepalived's (issue: ≈ 13.4 MB)",
        med(0, 2),
        med(1, 2).or(Some(TARGET_RSS_MB)),
        "MB",
    );
    line("CPU, 1 instance, ≤ keepalived's", med(0, 1), med(1, 1), "%");
    line(
        "CPU, 100 instances, ≤ keepalived's (issue: ≈ 3.2 %)",
        med(0, 3),
        med(1, 3).or(Some(TARGET_CPU_100)),
        "%",
    );
    line(
        "advert lateness p99 with the other core busy < 2 ms",
        med(0, 8),
        Some(TARGET_P99_BUSY_MS),
        "ms",
    );
    text
}

/// Rewrites everything below MARKER in `out`, appending the marker if it is missing.
fn write_doc(
    out: &Path,
    table: &str,
    args: &Args,
    keepalived: &str,
    results: &Results,
) -> io::Result<()> {
    let existing = fs::read_to_string(out).unwrap_or_default();
    let intro = match existing.find(MARKER) {
        Some(at) => existing[..at].to_owned(),
        None if existing.is_empty() => "# Benchmarks\n\n".to_owned(),
        None => format!("{}\n\n", existing.trim_end()),
    };
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let nproc = thread::available_parallelism().map_or(0, |n| n.get());
    let text = format!(
        "{intro}{MARKER}\n\n\
         ## Resource use and advert timing as Master\n\n\
         Measured {} by `scripts/bench` ({} runs per daemon, {} s windows).\n\n\
         {table}\n\
         Targets (vipkeeper's median against keepalived's median where the target is\n\
         \"no more than keepalived\"):\n\n\
         {}\n\
         Machine: {nproc} CPUs, shared with other work; kernel {}; vipkeeper release build,\n\
         commit {}; {keepalived}.\n\n\
         Method: each run builds a fresh two-node namespace lab (docs/lab.md) and runs the same\n\
         daemon on both nodes, node1 priority 150 (Master), node2 priority 100, VRRP v3 over\n\
         IPv4, adverts every 100 ms, no tracking, default logging. keepalived runs VRRP only\n\
         (`-P`: parent + vrrp child), vipkeeper with its defaults (metrics listener on\n\
         127.0.0.1:9650, control socket). Once node1 holds every VIP and 2 s have passed:\n\n\
         - CPU: utime+stime from `/proc/PID/stat` of the spawned daemon and all its\n\
           descendants, difference over the window, as % of one core; RSS: the sum of their\n\
           VmRSS at the end of the window. 1 instance (VRID 1), then, in a new lab, 100\n\
           instances (VRIDs 1-100 on eth0, one VIP each, 192.0.2.101-200/24).\n\
         - Advert lateness: during the 1-instance CPU window (\"idle\") and then for another\n\
           window while `sh -c 'while :; do :; done'` runs inside node1 pinned to CPU 1 with\n\
           `taskset` (\"other core busy\"; the daemon is not pinned), a thread in node2's\n\
           namespace receives node1's adverts on a raw IPPROTO 112 socket with kernel receive\n\
           timestamps (SO_TIMESTAMPNS); lateness is the gap between consecutive VRID 1 adverts\n\
           minus 100 ms (negative: early). Percentiles are per run; the table shows min, median\n\
           and max over runs.\n\
         Daemons alternate run by run.\n",
        civil_date(secs),
        args.runs,
        args.secs,
        verdicts(results),
        read("/proc/sys/kernel/osrelease").trim(),
        args.commit,
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
