//! Network-namespace test lab: a virtual LAN of namespaced hosts on which tests, the demo and
//! benchmarks run real daemons (vipkeeper, keepalived, haproxy).
//!
//! A lab is a switch namespace holding bridges, N VRRP nodes, an optional client on the
//! front segment and an optional backend on a back segment:
//!
//! ```text
//!   front br0  192.0.2.0/24    2001:db8::/64    node i: .10+i / ::10+i (eth0)  client: .100 / ::100
//!   back  br1  198.51.100.0/24 2001:db8:1::/64  node i: .10+i / ::10+i (eth1)  backend: .200 / ::200
//! ```
//!
//! Each host has its own network, PID, mount (private /run and /tmp), UTS and IPC namespaces
//! (see `host.rs`). The lab owns every namespace, process and file it creates and removes
//! them all when dropped, also while a test panics; a build that fails half-way cleans up
//! what it made. Namespace names carry the owner pid (see `names.rs`), so parallel tests
//! and test processes never collide and a later build removes leftovers of dead owners.
//!
//! It must not: create, change or delete anything in the root network namespace (veth pairs
//! are created inside the switch namespace with their far end placed directly in the host
//! namespace), use addresses outside the documentation prefixes, signal a process it did not
//! start, or panic in Drop.
//!
//! Included by test targets with `#[path = "lab/mod.rs"] mod lab;`. Needs root, `ip`,
//! `unshare`/`nsenter` (util-linux), `ping` (iputils-ping), `ps` (procps). docs/lab.md has
//! a walkthrough.

// Each test target uses a different part of the lab (and of its re-exports).
#![allow(dead_code, unused_imports)]

mod command;
mod host;
mod names;
mod process;

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use host::{Host, Leg};
pub use process::{LabProcess, Signal};

/// The two lab segments, each a bridge in the switch namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// `br0`: the nodes' VRRP/VIP segment, where the client sits.
    Front,
    /// `br1`: between the nodes and the backend, present only with a backend.
    Back,
}

impl Segment {
    fn bridge(self) -> &'static str {
        match self {
            Segment::Front => "br0",
            Segment::Back => "br1",
        }
    }

    /// The host's interface name for this segment.
    fn iface(self) -> &'static str {
        match self {
            Segment::Front => "eth0",
            Segment::Back => "eth1",
        }
    }

    /// The address of host number `host` (10+i for node i, 100 client, 200 backend).
    pub fn ipv4(self, host: u8) -> Ipv4Addr {
        match self {
            Segment::Front => Ipv4Addr::new(192, 0, 2, host),
            Segment::Back => Ipv4Addr::new(198, 51, 100, host),
        }
    }

    /// The global IPv6 address of host number `host`: the same digits as the IPv4 one,
    /// written in hex (node 1: `2001:db8::11`).
    pub fn ipv6(self, host: u8) -> Ipv6Addr {
        let hextet = u16::from_str_radix(&host.to_string(), 16).unwrap_or(u16::from(host));
        match self {
            Segment::Front => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, hextet),
            Segment::Back => Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, hextet),
        }
    }
}

/// Host number of the client and backend on their segment.
const CLIENT_HOST: u8 = 100;
const BACKEND_HOST: u8 = 200;
/// Node i is host 10+i; two digits keep `2001:db8::1i` readable.
pub const MAX_NODES: usize = 20;

/// A process a host started, kept for diagnostics and for teardown checks.
#[derive(Clone, Debug)]
pub struct ProcRecord {
    pub label: String,
    pub pid: Option<u32>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

pub struct LabBuilder {
    test_name: String,
    nodes: usize,
    client: bool,
    backend: bool,
    max_lifetime: Duration,
}

impl LabBuilder {
    /// Number of VRRP nodes, 1 to [`MAX_NODES`] (default 2).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// A client host on the front segment (default on).
    pub fn client(mut self, on: bool) -> Self {
        self.client = on;
        self
    }

    /// A backend host on a back segment that every node also joins (default off).
    pub fn backend(mut self, on: bool) -> Self {
        self.backend = on;
        self
    }

    /// Hosts stop on their own after this long even if the lab is never dropped (its owner
    /// was SIGKILLed). Default one hour; benchmarks may want more.
    pub fn max_lifetime(mut self, d: Duration) -> Self {
        self.max_lifetime = d;
        self
    }

    pub fn build(self) -> io::Result<Lab> {
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(io::Error::other(format!(
                "lab: {} nodes, want 1..={MAX_NODES}",
                self.nodes
            )));
        }
        if !is_root() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "lab: network namespaces need root",
            ));
        }
        let base = dir_base();
        names::remove_stale(&base);
        let id = names::next_lab_id(&self.test_name);
        let dir = base.join(&id);
        fs::create_dir_all(&dir)?;
        // From here on, every early return drops `lab`, which removes what exists so far.
        let mut lab = Lab {
            id: id.clone(),
            switch_netns: format!("{id}-sw"),
            dir,
            nodes: Vec::new(),
            client: None,
            backend: None,
            created: Vec::new(),
            registry: Arc::new(Mutex::new(Vec::new())),
        };
        lab.add_netns(lab.switch_netns.clone())?;
        // The switch is a pure layer-2 device: no IPv6 on its ports, so it sends nothing.
        let mut sysctl = Command::new("ip");
        sysctl.args(["netns", "exec", &lab.switch_netns, "sysctl", "-q", "-w"]);
        sysctl.args([
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        command::checked(sysctl, b"")?;

        let mut switch = String::new();
        let mut segments = vec![Segment::Front];
        if self.backend {
            segments.push(Segment::Back);
        }
        for seg in &segments {
            // No STP (ports forward at once) and no multicast snooping (VRRP adverts to
            // 224.0.0.18 / ff02::12 always reach every port).
            let _ = writeln!(
                switch,
                "link add {} type bridge stp_state 0 mcast_snooping 0",
                seg.bridge()
            );
            let _ = writeln!(switch, "link set {} up", seg.bridge());
        }

        let mut hosts: Vec<(String, Vec<(Segment, u8)>)> = (1..=self.nodes)
            .map(|i| {
                (
                    format!("node{i}"),
                    segments.iter().map(|&s| (s, 10 + i as u8)).collect(),
                )
            })
            .collect();
        if self.client {
            hosts.push(("client".into(), vec![(Segment::Front, CLIENT_HOST)]));
        }
        if self.backend {
            hosts.push(("backend".into(), vec![(Segment::Back, BACKEND_HOST)]));
        }

        let mut started = Vec::new();
        for (name, legs) in hosts {
            let netns = format!("{id}-{name}");
            lab.add_netns(netns.clone())?;
            let mut host = Host::start(
                &name,
                &netns,
                &lab.switch_netns,
                &lab.dir,
                self.max_lifetime,
                Arc::clone(&lab.registry),
            )?;
            let mut config = String::new();
            for (index, (segment, number)) in legs.into_iter().enumerate() {
                // A host's only leg is eth0 whatever the segment; a node's back leg is eth1.
                let iface = if index == 0 { "eth0" } else { segment.iface() };
                let leg = Leg {
                    segment,
                    iface: iface.to_owned(),
                    switch_side: format!("{name}-{iface}"),
                    ipv4: segment.ipv4(number),
                    ipv6: segment.ipv6(number),
                };
                let _ = writeln!(
                    switch,
                    "link add {} type veth peer name {} netns {netns}",
                    leg.switch_side, leg.iface
                );
                let _ = writeln!(
                    switch,
                    "link set {} master {} up",
                    leg.switch_side,
                    segment.bridge()
                );
                let _ = writeln!(config, "addr add {}/24 dev {}", leg.ipv4, leg.iface);
                let _ = writeln!(config, "addr add {}/64 dev {} nodad", leg.ipv6, leg.iface);
                let _ = writeln!(config, "link set {} up", leg.iface);
                host.add_leg(leg);
            }
            started.push((host, config));
        }
        // The switch batch first: it creates the veths whose far ends the hosts configure.
        ip_batch(&lab.switch_netns, &switch)?;
        for (host, config) in started {
            let netns = host.netns().to_owned();
            let name = host.name().to_owned();
            match name.as_str() {
                "client" => lab.client = Some(host),
                "backend" => lab.backend = Some(host),
                _ => lab.nodes.push(host),
            }
            ip_batch(&netns, &config)?;
        }
        Ok(lab)
    }
}

/// Runs an `ip -batch` script inside `netns`, failing on its first error.
fn ip_batch(netns: &str, script: &str) -> io::Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(["-n", netns, "-batch", "-"]);
    command::checked(cmd, script.as_bytes())
        .map(drop)
        .map_err(|e| io::Error::other(format!("{e}\nscript:\n{script}")))
}

fn is_root() -> bool {
    // No libc: the effective uid is in /proc/self/status (`Uid: real effective ...`).
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// Where lab directories live: the cargo target tmp dir for test targets (visible from the
/// hosts, unlike /tmp, which each host has its own of), the system temp dir otherwise.
fn dir_base() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// A running lab. Dropping it stops every host and process, deletes the namespaces and the
/// lab directory (kept if `VIPKEEPER_LAB_KEEP=1`), and prints [`Lab::diagnostics`] first if
/// the thread is panicking.
pub struct Lab {
    id: String,
    switch_netns: String,
    dir: PathBuf,
    nodes: Vec<Host>,
    client: Option<Host>,
    backend: Option<Host>,
    /// Every namespace created, in order, including those of a half-built lab.
    created: Vec<String>,
    registry: Arc<Mutex<Vec<ProcRecord>>>,
}

impl Lab {
    /// A builder; `test_name` goes into the namespace names (cut to 16 characters).
    pub fn builder(test_name: &str) -> LabBuilder {
        LabBuilder {
            test_name: test_name.to_owned(),
            nodes: 2,
            client: true,
            backend: false,
            max_lifetime: Duration::from_secs(3600),
        }
    }

    fn add_netns(&mut self, name: String) -> io::Result<()> {
        names::add_netns(&name)?;
        self.created.push(name);
        Ok(())
    }

    /// `vkl-<pid>-<n>-<test>`: the prefix of all of this lab's namespaces.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Node `i`, counted from 1 as in its name and address.
    pub fn node(&self, i: usize) -> &Host {
        match i.checked_sub(1).and_then(|index| self.nodes.get(index)) {
            Some(node) => node,
            None => panic!(
                "lab {} has nodes 1..={}, not {i}",
                self.id,
                self.nodes.len()
            ),
        }
    }

    pub fn nodes(&self) -> &[Host] {
        &self.nodes
    }

    pub fn client(&self) -> &Host {
        self.client
            .as_ref()
            .unwrap_or_else(|| panic!("lab {} was built without a client", self.id))
    }

    pub fn backend(&self) -> &Host {
        self.backend
            .as_ref()
            .unwrap_or_else(|| panic!("lab {} was built without a backend", self.id))
    }

    /// All hosts: nodes, then client and backend if present.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.nodes
            .iter()
            .chain(self.client.as_ref())
            .chain(self.backend.as_ref())
    }

    /// The switch namespace (bridges `br0`, `br1` and the switch-side legs), e.g. for tcpdump.
    pub fn switch_netns(&self) -> &str {
        &self.switch_netns
    }

    /// Every network namespace of the lab.
    pub fn namespaces(&self) -> Vec<String> {
        self.created.clone()
    }

    /// Host pids of the hosts' inits and of every process spawned so far.
    pub fn pids(&self) -> Vec<u32> {
        let spawned: Vec<u32> = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|r| r.pid)
            .collect();
        self.hosts().map(Host::init_pid).chain(spawned).collect()
    }

    /// The lab directory: process logs (`<host>.<n>.<program>.stdout|stderr`) and init logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The switch's ports, each host's addresses and processes, and the last lines of every
    /// process log: what a failure report needs.
    pub fn diagnostics(&self) -> String {
        let mut text = format!("=== lab {} (dir {})\n", self.id, self.dir.display());
        let mut bridge = Command::new("bridge");
        bridge.args(["-n", &self.switch_netns, "link"]);
        text.push_str(&host::command_text(bridge));
        for host in self.hosts() {
            text.push_str(&host.diagnostics());
        }
        let records = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for record in records {
            for path in [&record.stdout, &record.stderr] {
                let content = fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = content.lines().collect();
                let tail = &lines[lines.len().saturating_sub(20)..];
                let _ = writeln!(
                    text,
                    "--- {} (pid {:?}): {}",
                    record.label,
                    record.pid,
                    path.display()
                );
                for line in tail {
                    let _ = writeln!(text, "  {line}");
                }
            }
        }
        text
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        // Hosts first: their Drop kills each PID namespace, so no process still holds a
        // namespace when its name goes.
        self.nodes.clear();
        self.client = None;
        self.backend = None;
        for netns in self.created.iter().rev() {
            if let Err(e) = names::del_netns(netns) {
                eprintln!("lab: cannot delete namespace {netns}: {e}");
            }
        }
        if std::env::var_os("VIPKEEPER_LAB_KEEP").is_some_and(|v| v == "1") {
            eprintln!("lab: keeping {}", self.dir.display());
        } else if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("lab: cannot remove {}: {e}", self.dir.display());
        }
    }
}
