//! Interoperability with keepalived (Debian's 2.2.7) on the namespace lab.
//!
//! For VRRP v2 over IPv4 (auth PASS), v3 over IPv4 and v3 over IPv6, in both roles:
//! - the other side stays Backup while the Master advertises (so it accepts our adverts:
//!   format, checksum, password), for two of its Master_Down_Intervals;
//! - a graceful stop of the Master (priority 0) hands over within Skew_Time + slack;
//! - the stopped side comes back with the higher priority and preempts (so it is heard);
//! - kill -9 of the Master hands over within Master_Down_Interval + slack.
//!
//! Plus equal priorities (both sides Master while isolated, then the higher address keeps
//! the VIP on both implementations) and a v2 password mismatch (neither accepts the other).

#[path = "lab/mod.rs"]
mod lab;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use lab::{Host, Lab, LabProcess, Signal};
use vipkeeper::vrrp::{Centis, Timers, Version};

const BIN: &str = env!("CARGO_BIN_EXE_vipkeeper");
const SLACK: Duration = Duration::from_millis(800);

/// One protocol variant of the matrix.
#[derive(Clone, Copy)]
struct Variant {
    version: Version,
    ipv6: bool,
    /// v2 simple password.
    password: Option<&'static str>,
}

const V2_AUTH: Variant = Variant {
    version: Version::V2,
    ipv6: false,
    password: Some("secret12"),
};
const V3_IPV4: Variant = Variant {
    version: Version::V3,
    ipv6: false,
    password: None,
};
const V3_IPV6: Variant = Variant {
    version: Version::V3,
    ipv6: true,
    password: None,
};

impl Variant {
    fn interval(self) -> Centis {
        match self.version {
            Version::V2 => Centis::ONE_SECOND,
            Version::V3 => Centis::new(10),
        }
    }

    fn vip(self) -> (IpAddr, &'static str) {
        if self.ipv6 {
            ("2001:db8::50".parse().unwrap(), "2001:db8::50/64")
        } else {
            ("192.0.2.50".parse().unwrap(), "192.0.2.50/24")
        }
    }

    fn master_down(self, priority: u8) -> Duration {
        Timers::compute(self.version, priority, self.interval()).master_down_interval
    }

    fn skew(self, priority: u8) -> Duration {
        Timers::compute(self.version, priority, self.interval()).skew_time
    }
}

enum Kind {
    Vipkeeper,
    Keepalived,
}

/// A VRRP speaker on a lab node: vipkeeper or keepalived.
struct Speaker<'a> {
    host: &'a Host,
    kind: Kind,
    process: Option<LabProcess>,
}

impl<'a> Speaker<'a> {
    fn vipkeeper(host: &'a Host, variant: Variant, priority: u8, password: Option<&str>) -> Self {
        let (_, vip) = variant.vip();
        let version = variant.version.number();
        let interval = match variant.version {
            Version::V2 => "1s",
            Version::V3 => "100ms",
        };
        let auth = password
            .map(|password| format!("auth_pass = \"{password}\"\n"))
            .unwrap_or_default();
        let config = format!(
            "[global]\nnode_name = \"{}\"\ngarp_master_delay = \"0s\"\n\n[[instance]]\n\
             name = \"web\"\ninterface = \"eth0\"\nvrid = 51\nversion = {version}\n\
             priority = {priority}\nadvert_interval = \"{interval}\"\nvips = [\"{vip}\"]\n{auth}",
            host.name()
        );
        host.write_file(Path::new("/run/vipkeeper.toml"), config.as_bytes())
            .expect("write vipkeeper.toml");
        Speaker {
            host,
            kind: Kind::Vipkeeper,
            process: None,
        }
    }

    fn keepalived(host: &'a Host, variant: Variant, priority: u8, password: Option<&str>) -> Self {
        let (_, vip) = variant.vip();
        let interval = match variant.version {
            Version::V2 => "1",
            Version::V3 => "0.1",
        };
        let auth = password
            .map(|password| {
                format!("    authentication {{\n        auth_type PASS\n        auth_pass {password}\n    }}\n")
            })
            .unwrap_or_default();
        let config = format!(
            "global_defs {{\n    router_id {name}\n    vrrp_garp_master_delay 0\n}}\n\
             vrrp_instance web {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id 51\n    version {version}\n    priority {priority}\n    \
             advert_int {interval}\n{auth}    virtual_ipaddress {{\n        {vip} dev eth0\n    }}\n}}\n",
            name = host.name(),
            version = variant.version.number(),
        );
        host.write_file(Path::new("/run/keepalived.conf"), config.as_bytes())
            .expect("write keepalived.conf");
        Speaker {
            host,
            kind: Kind::Keepalived,
            process: None,
        }
    }

    fn start(&mut self) {
        let argv: &[&str] = match self.kind {
            Kind::Vipkeeper => &[BIN, "run", "-c", "/run/vipkeeper.toml"],
            // VRRP only, in the foreground, to the console, no respawn: the lab tracks it.
            Kind::Keepalived => &[
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-G",
                "-P",
                "-R",
                "-f",
                "/run/keepalived.conf",
                "-p",
                "/run/keepalived.pid",
                "-r",
                "/run/keepalived_vrrp.pid",
            ],
        };
        let process = self
            .host
            .spawn(argv, &[("VIPKEEPER_LOG", "debug")])
            .expect("start the speaker");
        self.process = Some(process);
    }

    /// Graceful stop: SIGTERM (keepalived's parent forwards it to its VRRP child).
    fn stop(&mut self) {
        if let Some(process) = self.process.as_mut() {
            process.kill(Signal::Term).expect("SIGTERM");
            let status = process.wait_timeout(Duration::from_secs(8)).expect("wait");
            assert!(
                status.is_some(),
                "{} did not stop\n{}",
                self.host.name(),
                self.log()
            );
        }
    }

    /// kill -9 of every process of the speaker: no priority 0, VIPs left behind.
    fn crash(&mut self) {
        if let Kind::Keepalived = self.kind {
            // The VRRP child sends priority 0 if it outlives its parent, so it dies first.
            let pid = self
                .host
                .read_file(Path::new("/run/keepalived_vrrp.pid"))
                .expect("keepalived's VRRP pid file");
            let pid = String::from_utf8_lossy(&pid).trim().to_owned();
            self.host
                .run_ok(&["kill", "-KILL", &pid], Duration::from_secs(5))
                .expect("kill -9 the VRRP child");
        }
        if let Some(process) = self.process.as_mut() {
            process.kill(Signal::Kill).expect("kill -9");
            let _ = process.wait_timeout(Duration::from_secs(5));
        }
    }

    fn holds(&self, vip: IpAddr) -> bool {
        let output = self
            .host
            .run_ok(
                &["ip", "-o", "addr", "show", "dev", "eth0"],
                Duration::from_secs(5),
            )
            .expect("ip addr");
        output.contains(&format!(" {vip}/"))
    }

    fn log(&self) -> String {
        self.process
            .as_ref()
            .map(|process| format!("{}{}", process.stdout(), process.stderr()))
            .unwrap_or_default()
    }
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `condition` holds at every check for `duration`.
fn holds_for(duration: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < duration {
        if !condition() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn explain(lab: &Lab, speakers: &[&Speaker]) -> String {
    let logs: Vec<String> = speakers
        .iter()
        .map(|speaker| format!("--- {}\n{}", speaker.host.name(), speaker.log()))
        .collect();
    format!("{}\n{}", logs.join("\n"), lab.diagnostics())
}

/// `master` (priority 150) on node 1, `backup` (priority 100) on node 2.
fn roles(variant: Variant, keepalived_is_master: bool) {
    let tag = format!(
        "ka{}v{}{}",
        if keepalived_is_master { "m" } else { "b" },
        variant.version.number(),
        if variant.ipv6 { 6 } else { 4 }
    );
    let lab = Lab::builder(&tag)
        .nodes(2)
        .client(false)
        .build()
        .expect("lab");
    let (vip, _) = variant.vip();
    let password = variant.password;
    let (mut master, mut backup) = if keepalived_is_master {
        (
            Speaker::keepalived(lab.node(1), variant, 150, password),
            Speaker::vipkeeper(lab.node(2), variant, 100, password),
        )
    } else {
        (
            Speaker::vipkeeper(lab.node(1), variant, 150, password),
            Speaker::keepalived(lab.node(2), variant, 100, password),
        )
    };
    backup.start();
    master.start();

    // The Backup hears the Master and stays Backup.
    let elected = wait_for(variant.master_down(150) + SLACK, || {
        master.holds(vip) && !backup.holds(vip)
    });
    assert!(
        elected,
        "no election\n{}",
        explain(&lab, &[&master, &backup])
    );
    let stays = holds_for(variant.master_down(100) * 2, || !backup.holds(vip));
    assert!(
        stays,
        "the Backup ignored the Master's adverts\n{}",
        explain(&lab, &[&master, &backup])
    );

    // Graceful stop: priority 0, the Backup takes over after Skew_Time.
    master.stop();
    let handover = wait_for(variant.skew(100) + SLACK, || backup.holds(vip));
    assert!(
        handover,
        "no fast handover\n{}",
        explain(&lab, &[&master, &backup])
    );
    assert!(!master.holds(vip), "the stopped Master kept the VIP");

    // The Master comes back and preempts: the Backup (now Master) hears its adverts.
    master.start();
    let back = wait_for(variant.master_down(150) + SLACK, || {
        master.holds(vip) && !backup.holds(vip)
    });
    assert!(
        back,
        "no preemption\n{}",
        explain(&lab, &[&master, &backup])
    );

    // Crash: the Backup takes over after Master_Down_Interval.
    master.crash();
    let takeover = wait_for(variant.master_down(100) + SLACK, || backup.holds(vip));
    assert!(
        takeover,
        "no takeover after a crash\n{}",
        explain(&lab, &[&master, &backup])
    );
    backup.stop();
}

#[test]
fn keepalived_master_vipkeeper_backup_v2_auth() {
    roles(V2_AUTH, true);
}

#[test]
fn vipkeeper_master_keepalived_backup_v2_auth() {
    roles(V2_AUTH, false);
}

#[test]
fn keepalived_master_vipkeeper_backup_v3_ipv4() {
    roles(V3_IPV4, true);
}

#[test]
fn vipkeeper_master_keepalived_backup_v3_ipv4() {
    roles(V3_IPV4, false);
}

#[test]
fn keepalived_master_vipkeeper_backup_v3_ipv6() {
    roles(V3_IPV6, true);
}

#[test]
fn vipkeeper_master_keepalived_backup_v3_ipv6() {
    roles(V3_IPV6, false);
}

/// Cut the two nodes off from each other without touching carrier: bridge port isolation.
fn isolate(lab: &Lab, on: bool) {
    for node in 1..=2 {
        let port = format!("node{node}-eth0");
        let state = if on { "on" } else { "off" };
        let status = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                lab.switch_netns(),
                "bridge",
                "link",
                "set",
                "dev",
            ])
            .args([port.as_str(), "isolated", state])
            .status()
            .expect("bridge link set");
        assert!(status.success(), "isolating {port}");
    }
}

/// Equal priorities: both sides Master while isolated; rejoined, RFC 5798 §6.4.3 keeps the
/// higher primary address (node 2, 192.0.2.12) on both implementations.
fn equal_priorities(keepalived_on_higher_address: bool) {
    let tag = if keepalived_on_higher_address {
        "tiekh"
    } else {
        "tievh"
    };
    let lab = Lab::builder(tag)
        .nodes(2)
        .client(false)
        .build()
        .expect("lab");
    let (vip, _) = V3_IPV4.vip();
    let (mut lower, mut higher) = if keepalived_on_higher_address {
        (
            Speaker::vipkeeper(lab.node(1), V3_IPV4, 100, None),
            Speaker::keepalived(lab.node(2), V3_IPV4, 100, None),
        )
    } else {
        (
            Speaker::keepalived(lab.node(1), V3_IPV4, 100, None),
            Speaker::vipkeeper(lab.node(2), V3_IPV4, 100, None),
        )
    };
    isolate(&lab, true);
    lower.start();
    higher.start();
    let both = wait_for(V3_IPV4.master_down(100) + SLACK, || {
        lower.holds(vip) && higher.holds(vip)
    });
    assert!(
        both,
        "isolated, both should be Master\n{}",
        explain(&lab, &[&lower, &higher])
    );
    isolate(&lab, false);
    let resolved = wait_for(Duration::from_secs(3), || {
        higher.holds(vip) && !lower.holds(vip)
    });
    assert!(
        resolved,
        "the higher address did not win\n{}",
        explain(&lab, &[&lower, &higher])
    );
    let stable = holds_for(V3_IPV4.master_down(100) * 2, || {
        higher.holds(vip) && !lower.holds(vip)
    });
    assert!(
        stable,
        "the tie flapped\n{}",
        explain(&lab, &[&lower, &higher])
    );
    lower.stop();
    higher.stop();
}

#[test]
fn equal_priorities_keepalived_on_the_higher_address_wins() {
    equal_priorities(true);
}

#[test]
fn equal_priorities_vipkeeper_on_the_higher_address_wins() {
    equal_priorities(false);
}

/// RFC 3768 §7.1: a different password makes each side drop the other's adverts, so both
/// become Master (that is what a mismatch looks like in production, and why it is logged).
#[test]
fn v2_password_mismatch_means_neither_hears_the_other() {
    let lab = Lab::builder("authmis")
        .nodes(2)
        .client(false)
        .build()
        .expect("lab");
    let (vip, _) = V2_AUTH.vip();
    let mut keepalived = Speaker::keepalived(lab.node(1), V2_AUTH, 150, Some("secret12"));
    let mut vipkeeper = Speaker::vipkeeper(lab.node(2), V2_AUTH, 100, Some("other123"));
    keepalived.start();
    vipkeeper.start();
    let both = wait_for(V2_AUTH.master_down(100) + SLACK, || {
        keepalived.holds(vip) && vipkeeper.holds(vip)
    });
    assert!(
        both,
        "both should be Master\n{}",
        explain(&lab, &[&keepalived, &vipkeeper])
    );
    assert!(
        vipkeeper.log().contains("AuthMismatch"),
        "vipkeeper logs why it dropped the adverts\n{}",
        vipkeeper.log()
    );
    keepalived.stop();
    vipkeeper.stop();
}
