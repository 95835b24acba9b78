//! vipkeeper nodes on the namespace lab: real raw sockets, real netlink, real ARP.
//!
//! Each test builds its own lab (two nodes and a client on one bridge), writes a config per
//! node, runs `vipkeeper run` inside the nodes and watches the VIP from the outside: which
//! node has the address configured (`ip addr`), and which MAC the client's neighbour table
//! holds for it after pinging it. Bounds come from the protocol timers (RFC 5798 §6.1) plus a
//! generous slack for scheduling on a loaded 2-core machine: these are correctness bounds,
//! the benchmarks measure the real numbers.

#[path = "lab/mod.rs"]
mod lab;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use lab::{Host, Lab, LabProcess, Segment, Signal};
use vipkeeper::vrrp::{Centis, Timers, Version};

const BIN: &str = env!("CARGO_BIN_EXE_vipkeeper");
const CONFIG: &str = "/run/vipkeeper.toml";
/// Scheduling slack on top of protocol bounds (debug build, 2 shared cores, polling).
const SLACK: Duration = Duration::from_millis(700);
const INTERVAL: Centis = Centis::new(10);

struct Node<'a> {
    host: &'a Host,
    daemon: Option<LabProcess>,
}

fn config(name: &str, priority: u8, vip: &str, extra: &str) -> String {
    format!(
        r#"[global]
node_name = "{name}"
garp_master_delay = "0s"

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
version = 3
priority = {priority}
advert_interval = "100ms"
vips = ["{vip}"]
{extra}
"#
    )
}

impl<'a> Node<'a> {
    fn new(host: &'a Host, config: &str) -> Node<'a> {
        host.write_file(Path::new(CONFIG), config.as_bytes())
            .expect("write the config");
        Node { host, daemon: None }
    }

    fn start(&mut self) {
        self.start_with(&[]);
    }

    fn start_with(&mut self, extra: &[&str]) {
        let mut argv = vec![BIN, "run", "-c", CONFIG];
        argv.extend_from_slice(extra);
        let daemon = self
            .host
            .spawn(&argv, &[("VIPKEEPER_LOG", "debug")])
            .expect("start vipkeeper");
        self.daemon = Some(daemon);
    }

    fn daemon(&mut self) -> &mut LabProcess {
        self.daemon.as_mut().expect("started")
    }

    fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(LabProcess::stderr)
            .unwrap_or_default()
    }

    /// The VIP is configured on eth0.
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

    fn mac(&self) -> String {
        let mac = self
            .host
            .read_file(Path::new("/sys/class/net/eth0/address"))
            .or_else(|_| {
                self.host
                    .run_ok(
                        &["cat", "/sys/class/net/eth0/address"],
                        Duration::from_secs(5),
                    )
                    .map(String::into_bytes)
            })
            .expect("read the MAC");
        String::from_utf8_lossy(&mac).trim().to_owned()
    }
}

/// Poll `condition` every 5 ms until it holds or `limit` passes; how long it took.
fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if condition() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The number after `field` on the "advert counters" line of a daemon's log.
fn counter(log: &str, field: &str) -> Option<u64> {
    let line = log.lines().find(|line| line.contains("advert counters"))?;
    let value = &line[line.find(field)? + field.len()..];
    value
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn master_down(priority: u8) -> Duration {
    Timers::compute(Version::V3, priority, INTERVAL).master_down_interval
}

fn skew(priority: u8) -> Duration {
    Timers::compute(Version::V3, priority, INTERVAL).skew_time
}

/// The MAC the client's neighbour table holds for `vip`, after pinging it.
fn client_sees(lab: &Lab, vip: IpAddr) -> Option<String> {
    let client = lab.client();
    if !client.ping(vip, Duration::from_millis(500)).ok()? {
        return None;
    }
    let neighbour = client
        .run_ok(
            &["ip", "neigh", "show", &vip.to_string()],
            Duration::from_secs(5),
        )
        .ok()?;
    let mut words = neighbour.split_whitespace();
    words.find(|word| *word == "lladdr")?;
    words.next().map(str::to_owned)
}

/// Pings `vip` from the client every 10 ms, `count` times; returns (sent, answered).
fn client_every_10ms(lab: &Lab, vip: IpAddr, count: u32) -> (u32, u32) {
    let count_arg = count.to_string();
    let target = vip.to_string();
    let output = lab
        .client()
        .run(
            &[
                "ping", "-n", "-q", "-i", "0.01", "-W", "1", "-c", &count_arg, &target,
            ],
            Duration::from_millis(u64::from(count) * 10) + Duration::from_secs(5),
        )
        .expect("client ping loop");
    let summary = String::from_utf8_lossy(&output.stdout);
    // "300 packets transmitted, 300 received, 0% packet loss, time 3004ms"
    let number_before = |word: &str| -> u32 {
        summary
            .lines()
            .find(|line| line.contains("packets transmitted"))
            .and_then(|line| {
                line.split(", ")
                    .find(|part| part.ends_with(word))
                    .and_then(|part| part.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or_else(|| panic!("no ping summary in {summary:?}"))
    };
    (
        number_before("packets transmitted"),
        number_before("received"),
    )
}

fn explain(lab: &Lab, nodes: &[&Node]) -> String {
    let logs: Vec<String> = nodes
        .iter()
        .map(|node| format!("--- {} vipkeeper\n{}", node.host.name(), node.log()))
        .collect();
    format!("{}\n{}", logs.join("\n"), lab.diagnostics())
}

/// The full life of a pair: election, kill -9, restart with stale VIP cleanup and
/// preemption, graceful stop with priority 0.
fn pair_lifecycle(family_v6: bool) {
    let lab = Lab::builder(if family_v6 { "pair6" } else { "pair4" })
        .nodes(2)
        .build()
        .expect("lab");
    let (vip, vip_cidr) = if family_v6 {
        ("2001:db8::50".parse::<IpAddr>().unwrap(), "2001:db8::50/64")
    } else {
        ("192.0.2.50".parse::<IpAddr>().unwrap(), "192.0.2.50/24")
    };
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, vip_cidr, ""));
    let mut lb2 = Node::new(lab.node(2), &config("lb2", 100, vip_cidr, ""));
    lb1.start();
    lb2.start();

    // Election: the higher priority ends up holding the VIP, alone.
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        elected.is_some(),
        "lb1 never became Master\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    assert_eq!(
        client_sees(&lab, vip),
        Some(lb1.mac()),
        "{}",
        explain(&lab, &[&lb1, &lb2])
    );

    // kill -9: lb2 takes over within Master_Down_Interval (its own priority) + slack.
    lb1.daemon().kill(Signal::Kill).expect("kill -9");
    let takeover = wait_for(master_down(100) + SLACK, || lb2.holds(vip));
    assert!(
        takeover.is_some(),
        "lb2 did not take over\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    // As with keepalived, a killed node's VIP stays configured until its next start.
    assert!(lb1.holds(vip), "kill -9 cannot have removed lb1's VIP");
    let announced = wait_for(Duration::from_secs(3), || {
        client_sees(&lab, vip) == Some(lb2.mac())
    });
    assert!(
        announced.is_some(),
        "client still goes to lb1\n{}",
        explain(&lab, &[&lb1, &lb2])
    );

    // Restart: the stale VIP goes at once, then lb1 waits Master_Down_Interval and preempts.
    lb1.start();
    let cleaned = wait_for(Duration::from_secs(2), || !lb1.holds(vip));
    assert!(
        cleaned.is_some(),
        "stale VIP not removed\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    let back = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        back.is_some(),
        "lb1 did not preempt back\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    let announced = wait_for(Duration::from_secs(3), || {
        client_sees(&lab, vip) == Some(lb1.mac())
    });
    assert!(
        announced.is_some(),
        "client not moved back\n{}",
        explain(&lab, &[&lb1, &lb2])
    );

    // SIGTERM: priority 0, so lb2 takes over after Skew_Time rather than the full interval,
    // and make before break: lb1 keeps the VIP until it hears lb2, so at every poll one of
    // them holds it. (lb1 is looked at first: if it no longer holds the VIP, lb2 already
    // held it before, and still does when looked at next.)
    lb1.daemon().kill(Signal::Term).expect("SIGTERM");
    let mut never_dropped = true;
    let handover = wait_for(skew(100) + SLACK, || {
        let first = lb1.holds(vip);
        let second = lb2.holds(vip);
        never_dropped &= first || second;
        second && !first
    });
    assert!(
        handover.is_some(),
        "no fast handover\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    assert!(
        never_dropped,
        "the VIP was on neither node\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    let status = lb1
        .daemon()
        .wait_timeout(Duration::from_secs(5))
        .expect("wait")
        .expect("vipkeeper exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", lb1.log());
    assert!(!lb1.holds(vip), "a graceful stop removes the VIP");
    assert!(lb1.log().contains("sent priority 0"), "{}", lb1.log());
    // The stop summary tells the restarted lb1's story: it heard lb2's lower priority
    // while waiting to preempt (discarded, counted), then advertised at least twice as
    // Master (on taking over, and priority 0 on stopping).
    let log = lb1.log();
    assert!(
        counter(&log, "sent=").is_some_and(|sent| sent >= 2),
        "{log}"
    );
    assert!(
        counter(&log, "received=").is_some_and(|received| received >= 1),
        "{log}"
    );
    assert!(
        counter(&log, "\"lower_priority\": ").is_some_and(|n| n >= 1),
        "{log}"
    );
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
}

#[test]
fn ipv4_pair_elects_fails_over_and_preempts_back() {
    pair_lifecycle(false);
}

#[test]
fn ipv6_pair_elects_fails_over_and_preempts_back() {
    pair_lifecycle(true);
}

#[test]
fn unicast_pair_elects_and_fails_over() {
    let lab = Lab::builder("unicast").nodes(2).build().expect("lab");
    let vip: IpAddr = "192.0.2.60".parse().unwrap();
    let peers = |me: &Host, other: &Host| {
        format!(
            "unicast_source = \"{}\"\nunicast_peers = [\"{}\"]",
            me.ipv4(),
            other.ipv4()
        )
    };
    let mut lb1 = Node::new(
        lab.node(1),
        &config(
            "lb1",
            150,
            "192.0.2.60/24",
            &peers(lab.node(1), lab.node(2)),
        ),
    );
    let mut lb2 = Node::new(
        lab.node(2),
        &config(
            "lb2",
            100,
            "192.0.2.60/24",
            &peers(lab.node(2), lab.node(1)),
        ),
    );
    lb1.start();
    lb2.start();
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        elected.is_some(),
        "no election\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    // Stay put for several intervals: the Backup hears the unicast adverts.
    std::thread::sleep(master_down(100) * 2);
    assert!(
        lb1.holds(vip) && !lb2.holds(vip),
        "{}",
        explain(&lab, &[&lb1, &lb2])
    );
    lb1.daemon().kill(Signal::Kill).expect("kill -9");
    let takeover = wait_for(master_down(100) + SLACK, || lb2.holds(vip));
    assert!(
        takeover.is_some(),
        "no takeover\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
}

#[test]
fn master_link_down_means_fault_and_the_vip_moves() {
    let lab = Lab::builder("linkdown").nodes(2).build().expect("lab");
    let vip: IpAddr = "192.0.2.70".parse().unwrap();
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, "192.0.2.70/24", ""));
    let mut lb2 = Node::new(lab.node(2), &config("lb2", 100, "192.0.2.70/24", ""));
    lb1.start();
    lb2.start();
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        elected.is_some(),
        "no election\n{}",
        explain(&lab, &[&lb1, &lb2])
    );

    // The cable is pulled: lb1 sees carrier loss, goes to FAULT and drops the VIP; lb2
    // hears nothing more and takes over after Master_Down_Interval.
    lab.node(1).set_link(false).expect("link down");
    let fault = wait_for(Duration::from_secs(2), || !lb1.holds(vip));
    assert!(
        fault.is_some(),
        "lb1 kept the VIP\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    let takeover = wait_for(master_down(100) + SLACK, || lb2.holds(vip));
    assert!(
        takeover.is_some(),
        "no takeover\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    assert!(lb1.log().contains("to=FAULT"), "{}", lb1.log());

    // Back: lb1 restarts its election as Backup and preempts the lower lb2.
    lab.node(1).set_link(true).expect("link up");
    let back = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        back.is_some(),
        "lb1 did not come back\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    lb1.daemon().kill(Signal::Term).expect("stop lb1");
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
}

#[test]
fn a_vip_deleted_by_hand_on_the_master_is_restored() {
    let lab = Lab::builder("restore").nodes(1).build().expect("lab");
    let vip: IpAddr = "192.0.2.80".parse().unwrap();
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, "192.0.2.80/24", ""));
    lb1.start();
    let elected = wait_for(master_down(150) + SLACK, || lb1.holds(vip));
    assert!(elected.is_some(), "no election\n{}", explain(&lab, &[&lb1]));
    lab.node(1)
        .run_ok(
            &["ip", "addr", "del", "192.0.2.80/24", "dev", "eth0"],
            Duration::from_secs(5),
        )
        .expect("delete the VIP by hand");
    let restored = wait_for(Duration::from_secs(2), || lb1.holds(vip));
    assert!(
        restored.is_some(),
        "VIP not restored\n{}",
        explain(&lab, &[&lb1])
    );
    assert!(
        lb1.log().contains("VIP removed while Master; restoring"),
        "{}",
        lb1.log()
    );
    lb1.daemon().kill(Signal::Term).expect("stop");
}

#[test]
fn a_missing_interface_is_a_clear_runtime_error() {
    let lab = Lab::builder("noiface").nodes(1).build().expect("lab");
    let text = config("lb1", 150, "192.0.2.90/24", "").replace("\"eth0\"", "\"eth9\"");
    let mut lb1 = Node::new(lab.node(1), &text);
    lb1.start();
    let status = lb1
        .daemon()
        .wait_timeout(Duration::from_secs(5))
        .expect("wait")
        .expect("vipkeeper exits");
    assert_eq!(status.code(), Some(2), "{}", lb1.log());
    assert!(
        lb1.log().contains("eth9"),
        "the error names the interface: {}",
        lb1.log()
    );
}

/// The health pipeline end to end: lb1 tracks its backend-side interface (eth1) with
/// weight -60; when that cable is pulled its priority drops from 150 to 90 and it
/// advertises that at once.
fn backend_link_failure(fast_preempt: bool) {
    let tag = if fast_preempt { "hcfast" } else { "hcslow" };
    let lab = Lab::builder(tag)
        .nodes(2)
        .backend(true)
        .build()
        .expect("lab");
    let vip: IpAddr = "192.0.2.90".parse().unwrap();
    let extra = format!(
        "fast_preempt = {fast_preempt}\ntrack = [{{ check = \"backend_link\", weight = -60 }}]\n\n\
         [check.backend_link]\ntype = \"interface\"\ninterface = \"eth1\"\n"
    );
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, "192.0.2.90/24", &extra));
    let mut lb2 = Node::new(lab.node(2), &config("lb2", 100, "192.0.2.90/24", &extra));
    lb1.start();
    lb2.start();
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        elected.is_some(),
        "no election\n{}",
        explain(&lab, &[&lb1, &lb2])
    );

    lab.node(1)
        .set_segment_link(Segment::Back, false)
        .expect("pull lb1's backend cable");
    let moved = wait_for(master_down(100) + SLACK, || {
        lb2.holds(vip) && !lb1.holds(vip)
    });
    assert!(
        moved.is_some(),
        "the VIP did not move\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    assert!(
        lb1.log().contains("effective priority changed") && lb1.log().contains("Value(90)"),
        "{}",
        lb1.log()
    );
    // Which rule moved it: fast_preempt at the first lower advert, or the RFC's
    // Master_Down_Interval while the lower adverts are discarded.
    let expected = if fast_preempt {
        "reason=lower priority 90 from 192.0.2.11 (fast_preempt)"
    } else {
        "reason=master down interval expired"
    };
    assert!(lb2.log().contains(expected), "{}", lb2.log());

    // Cable back: lb1's check recovers, priority 150 again, and it preempts.
    lab.node(1)
        .set_segment_link(Segment::Back, true)
        .expect("plug it back");
    let back = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        back.is_some(),
        "lb1 did not come back\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    lb1.daemon().kill(Signal::Term).expect("stop lb1");
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
}

#[test]
fn a_failed_check_lowers_the_priority_and_fast_preempt_takes_over_at_once() {
    backend_link_failure(true);
}

#[test]
fn a_failed_check_lowers_the_priority_and_the_peer_takes_over_after_master_down() {
    backend_link_failure(false);
}

/// "Probes never delay VRRP": the Master runs 1000 TCP checks against an address where
/// nothing answers (each run hangs until its timeout; 64 run at a time, the rest wait).
/// They are tracked with weight +1, which only adds while a check is up (never, here), so
/// the priority stays 150. For 5 s, 14 of the Backup's Master_Down_Intervals at 100 ms
/// adverts, the Backup must never take over: one advert late by more than 260 ms would
/// make it.
#[test]
fn a_thousand_hung_probes_do_not_delay_adverts() {
    let lab = Lab::builder("hung")
        .nodes(2)
        .backend(true)
        .build()
        .expect("lab");
    let vip: IpAddr = "192.0.2.95".parse().unwrap();
    let mut checks = String::new();
    let mut tracks = Vec::new();
    for index in 0..1000 {
        // 198.51.100.250 has no host on the backend segment: SYNs go unanswered.
        checks.push_str(&format!(
            "[check.hang{index}]\ntype = \"tcp\"\naddress = \"198.51.100.250:{}\"\n\
             interval = \"100ms\"\ntimeout = \"1s\"\n",
            10000 + index
        ));
        tracks.push(format!("{{ check = \"hang{index}\", weight = 1 }}"));
    }
    let extra = format!("track = [{}]\n\n{checks}", tracks.join(", "));
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, "192.0.2.95/24", &extra));
    let mut lb2 = Node::new(lab.node(2), &config("lb2", 100, "192.0.2.95/24", ""));
    lb1.start();
    lb2.start();
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        elected.is_some(),
        "no election\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    // lb1 starts slower (it reads 1000 checks), so lb2 may have been Master for a moment
    // at start-up: what counts is the window after the election.
    let takeovers = |log: &str| log.matches("to=MASTER").count();
    let before = takeovers(&lb2.log());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        assert!(
            !lb2.holds(vip),
            "lb2 took over: an advert from lb1 was late\n{}",
            explain(&lab, &[&lb1, &lb2])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(takeovers(&lb2.log()), before, "{}", lb2.log());
    lb1.daemon().kill(Signal::Term).expect("stop lb1");
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
}

/// A two-instance config with the two instances in one sync group; `web_extra` goes into
/// the web instance (e.g. a track).
fn grouped_config(name: &str, priority: u8, web_extra: &str, checks: &str) -> String {
    format!(
        r#"[global]
node_name = "{name}"
garp_master_delay = "0s"

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = {priority}
advert_interval = "100ms"
vips = ["192.0.2.50/24"]
{web_extra}

[[instance]]
name = "api"
interface = "eth0"
vrid = 52
priority = {priority}
advert_interval = "100ms"
vips = ["192.0.2.51/24"]

[[group]]
name = "front"
instances = ["web", "api"]

{checks}"#
    )
}

/// keepalived's sync group: only web tracks lb1's backend link (weight 0: FAULT), yet
/// when that link goes, the group takes api to FAULT too and lb2 takes both VIPs; when it
/// returns, both come back together.
#[test]
fn a_sync_group_moves_its_instances_together() {
    let lab = Lab::builder("syncgrp")
        .nodes(2)
        .backend(true)
        .build()
        .expect("lab");
    let web: IpAddr = "192.0.2.50".parse().unwrap();
    let api: IpAddr = "192.0.2.51".parse().unwrap();
    let track = "track = [{ check = \"backend_link\" }]";
    let check = "[check.backend_link]\ntype = \"interface\"\ninterface = \"eth1\"\n";
    let mut lb1 = Node::new(lab.node(1), &grouped_config("lb1", 150, track, check));
    let mut lb2 = Node::new(lab.node(2), &grouped_config("lb2", 100, track, check));
    lb1.start();
    lb2.start();
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(web) && lb1.holds(api) && !lb2.holds(web) && !lb2.holds(api)
    });
    assert!(
        elected.is_some(),
        "no election\n{}",
        explain(&lab, &[&lb1, &lb2])
    );

    lab.node(1)
        .set_segment_link(Segment::Back, false)
        .expect("cut lb1's backend link");
    let moved = wait_for(master_down(100) + SLACK, || {
        lb2.holds(web) && lb2.holds(api) && !lb1.holds(web) && !lb1.holds(api)
    });
    assert!(
        moved.is_some(),
        "the group did not move\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    // api has no track of its own: it went to FAULT because its group did.
    assert!(lb1.log().contains("instance=api vrid=52"), "{}", lb1.log());
    assert!(
        lb1.log().contains("to=FAULT reason=sync group"),
        "{}",
        lb1.log()
    );
    assert!(
        lb1.log().contains("sync group changed group=front"),
        "{}",
        lb1.log()
    );

    lab.node(1)
        .set_segment_link(Segment::Back, true)
        .expect("restore it");
    let back = wait_for(master_down(150) + SLACK, || {
        lb1.holds(web) && lb1.holds(api) && !lb2.holds(web) && !lb2.holds(api)
    });
    assert!(
        back.is_some(),
        "the group did not come back\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    lb1.daemon().kill(Signal::Term).expect("stop lb1");
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
}

/// Hooks through the real daemon: keepalived's four arguments and the environment reach
/// an `any` hook, in transition order; a MASTER hook that hangs for 2 s does not delay
/// the adverts (lb2 never takes over meanwhile); STOP hooks run at shutdown.
#[test]
fn hooks_run_in_order_and_a_hanging_hook_does_not_delay_adverts() {
    let lab = Lab::builder("hooks").nodes(2).build().expect("lab");
    let vip: IpAddr = "192.0.2.85".parse().unwrap();
    // Script security: the lab directory is root-owned and not world-writable, unlike a
    // node's /run tmpfs.
    let dir = lab.dir().join("hooks");
    std::fs::create_dir_all(&dir).expect("hook dir");
    let log = dir.join("lb1.log");
    let script = dir.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 $2 $3 $4 env=$VIPKEEPER_STATE prev=$VIPKEEPER_PREV_STATE\" >> {}\n\
             if [ \"$3\" = MASTER ]; then sleep 2; fi\n",
            log.display()
        ),
    )
    .expect("hook script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let notify = format!("\n[instance.notify]\nany = [\"{}\"]\n", script.display());
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, "192.0.2.85/24", &notify));
    let mut lb2 = Node::new(lab.node(2), &config("lb2", 100, "192.0.2.85/24", ""));
    lb1.start();
    lb2.start();
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        elected.is_some(),
        "no election\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    // The MASTER hook sleeps 2 s: adverts go on, lb2 stays Backup throughout.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        assert!(
            !lb2.holds(vip),
            "lb2 took over\n{}",
            explain(&lab, &[&lb1, &lb2])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lb1.daemon().kill(Signal::Term).expect("stop lb1");
    lb1.daemon()
        .wait_timeout(Duration::from_secs(10))
        .expect("wait")
        .expect("lb1 stops");
    let lines = std::fs::read_to_string(&log).expect("the hook log");
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(
        lines,
        vec![
            "INSTANCE web BACKUP 150 env=BACKUP prev=INIT",
            "INSTANCE web MASTER 150 env=MASTER prev=BACKUP",
            "INSTANCE web STOP 150 env=STOP prev=MASTER",
        ],
        "{}",
        lb1.log()
    );
    assert!(lb1.log().contains("hook done"), "{}", lb1.log());
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
}

/// SIGHUP applies the new file as a diff, and an invalid file changes nothing.
#[test]
fn reload_applies_changes_live_and_refuses_an_invalid_file() {
    let lab = Lab::builder("reload").nodes(2).build().expect("lab");
    let vip: IpAddr = "192.0.2.50".parse().unwrap();
    let second: IpAddr = "192.0.2.52".parse().unwrap();
    let api: IpAddr = "192.0.2.53".parse().unwrap();
    let extra = "fast_preempt = true";
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, "192.0.2.50/24", extra));
    let mut lb2 = Node::new(lab.node(2), &config("lb2", 100, "192.0.2.50/24", extra));
    lb1.start();
    lb2.start();
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        elected.is_some(),
        "no election\n{}",
        explain(&lab, &[&lb1, &lb2])
    );

    // 1. A VIP added to the Master: it appears, and the first one never goes away.
    let added = config("lb1", 150, "192.0.2.50/24", extra).replace(
        "vips = [\"192.0.2.50/24\"]",
        "vips = [\"192.0.2.50/24\", \"192.0.2.52/24\"]",
    );
    lab.node(1)
        .write_file(Path::new(CONFIG), added.as_bytes())
        .expect("new config");
    // A client asks the VIP every 10 ms across the reload: every request is answered.
    let (applied, kept, (sent, answered)) = std::thread::scope(|scope| {
        let client = scope.spawn(|| client_every_10ms(&lab, vip, 300));
        std::thread::sleep(Duration::from_millis(500));
        lb1.daemon().kill(Signal::Hup).expect("SIGHUP");
        let mut kept = true;
        let applied = wait_for(Duration::from_secs(2), || {
            kept &= lb1.holds(vip);
            lb1.holds(second)
        });
        (applied, kept, client.join().expect("client thread"))
    });
    assert_eq!(
        (sent, answered),
        (300, 300),
        "requests to the unchanged VIP were lost during the reload\n{}",
        lb1.log()
    );
    assert!(
        applied.is_some(),
        "the new VIP did not appear\n{}",
        lb1.log()
    );
    assert!(
        kept,
        "the unchanged VIP dropped during the reload\n{}",
        lb1.log()
    );
    assert!(
        lb1.log().contains("configuration reloaded"),
        "{}",
        lb1.log()
    );

    // 2. An invalid file: refused, nothing changes.
    lab.node(1)
        .write_file(Path::new(CONFIG), b"[[instance]]\nvrid = 0\n")
        .expect("broken config");
    lb1.daemon().kill(Signal::Hup).expect("SIGHUP");
    let refused = wait_for(Duration::from_secs(3), || {
        lb1.log()
            .contains("reload refused: the running configuration is kept")
    });
    assert!(refused.is_some(), "{}", lb1.log());
    std::thread::sleep(master_down(100));
    assert!(lb1.holds(vip) && lb1.holds(second) && !lb2.holds(vip));

    // 3. A lower priority and a new instance: the VIP moves to lb2 (fast_preempt), and
    //    the new instance starts as its own virtual router.
    let lower = config("lb1", 50, "192.0.2.50/24", extra)
        + "\n[[instance]]\nname = \"api\"\ninterface = \"eth0\"\nvrid = 53\npriority = 150\n\
           advert_interval = \"100ms\"\nvips = [\"192.0.2.53/24\"]\n";
    lab.node(1)
        .write_file(Path::new(CONFIG), lower.as_bytes())
        .expect("new config");
    lb1.daemon().kill(Signal::Hup).expect("SIGHUP");
    let moved = wait_for(master_down(100) + SLACK, || {
        lb2.holds(vip) && !lb1.holds(vip)
    });
    assert!(
        moved.is_some(),
        "the priority change did not move the VIP\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    assert!(
        !lb1.holds(second),
        "the removed VIP went with its instance's step-down"
    );
    let started = wait_for(master_down(150) + SLACK, || lb1.holds(api));
    assert!(
        started.is_some(),
        "the new instance did not start\n{}",
        lb1.log()
    );

    // 4. The instance removed: it stops (make before break: nobody takes over, so after
    //    its Master_Down_Interval) and its VIP goes.
    lab.node(1)
        .write_file(
            Path::new(CONFIG),
            config("lb1", 50, "192.0.2.50/24", extra).as_bytes(),
        )
        .expect("new config");
    lb1.daemon().kill(Signal::Hup).expect("SIGHUP");
    let gone = wait_for(master_down(150) + SLACK, || !lb1.holds(api));
    assert!(
        gone.is_some(),
        "the removed instance kept its VIP\n{}",
        lb1.log()
    );
    assert!(lb1.log().contains("api removed"), "{}", lb1.log());
    lb1.daemon().kill(Signal::Term).expect("stop lb1");
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
}

/// The operator's side, through the real CLI inside the node: status (text and JSON),
/// metrics, switchover with and without a healthy peer, resume, maintenance.
#[test]
fn status_metrics_switchover_and_maintenance_through_the_cli() {
    let lab = Lab::builder("control").nodes(2).build().expect("lab");
    let vip: IpAddr = "192.0.2.50".parse().unwrap();
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, "192.0.2.50/24", ""));
    let mut lb2 = Node::new(lab.node(2), &config("lb2", 100, "192.0.2.50/24", ""));
    lb1.start();
    lb2.start();
    let elected = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        elected.is_some(),
        "no election\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    let cli = |host: &Host, args: &[&str]| {
        let mut argv = vec![BIN];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["-s", "/run/vipkeeper/control.sock"]);
        let output = host
            .run(&argv, Duration::from_secs(10))
            .expect("vipkeeper CLI");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };

    // status, as JSON and as text.
    let (code, json) = cli(lab.node(1), &["status", "--json"]);
    assert_eq!(code, Some(0), "{json}");
    let status: serde_json::Value = serde_json::from_str(&json).expect("status JSON");
    let web = &status["instances"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["state"], "MASTER");
    assert_eq!(web["effective_priority"], 150);
    assert_eq!(web["holds_vips"], true);
    assert!(
        web["counters"]["adverts_sent"].as_u64().unwrap_or(0) > 0,
        "{json}"
    );
    let (code, text) = cli(lab.node(1), &["status"]);
    assert_eq!(code, Some(0));
    assert!(text.contains("MASTER"), "{text}");

    // Metrics on the node's loopback (the snapshot is refreshed every second).
    std::thread::sleep(Duration::from_millis(1200));
    let scrape = "exec 3<>/dev/tcp/127.0.0.1/9650 && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3";
    let metrics = lab
        .node(1)
        .run_ok(
            &["timeout", "3", "bash", "-c", scrape],
            Duration::from_secs(5),
        )
        .expect("scrape");
    let state_line = metrics
        .lines()
        .find(|line| line.starts_with("keepalived_vrrp_state{") && line.contains("192.0.2.50"))
        .unwrap_or_default();
    assert!(
        state_line.ends_with(" 2"),
        "MASTER is 2: {state_line:?}\n{metrics}"
    );
    assert!(
        metrics.contains("vipkeeper_instance_effective_priority{"),
        "{metrics}"
    );

    // switchover: lb2 takes the VIP; lb1 stays Backup (held back) until resume.
    let (code, answer) = cli(lab.node(1), &["switchover", "web"]);
    assert_eq!(code, Some(0), "{answer}");
    assert!(answer.contains("handed over to 192.0.2.12"), "{answer}");
    assert!(
        lb2.holds(vip) && !lb1.holds(vip),
        "{}",
        explain(&lab, &[&lb1, &lb2])
    );
    std::thread::sleep(master_down(150) * 2);
    assert!(
        lb2.holds(vip),
        "lb1 preempted despite the hold\n{}",
        lb1.log()
    );
    let (code, answer) = cli(lab.node(1), &["resume", "web"]);
    assert_eq!(code, Some(0), "{answer}");
    let back = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        back.is_some(),
        "no preemption after resume\n{}",
        explain(&lab, &[&lb1, &lb2])
    );

    // maintenance: the whole node hands over and stays out until `off`.
    let (code, answer) = cli(lab.node(1), &["maintenance", "on"]);
    assert_eq!(code, Some(0), "{answer}");
    let drained = wait_for(skew(100) + SLACK, || lb2.holds(vip) && !lb1.holds(vip));
    assert!(
        drained.is_some(),
        "maintenance did not drain\n{}",
        explain(&lab, &[&lb1, &lb2])
    );
    let (code, answer) = cli(lab.node(1), &["maintenance", "off"]);
    assert_eq!(code, Some(0), "{answer}");
    let back = wait_for(master_down(150) + SLACK, || {
        lb1.holds(vip) && !lb2.holds(vip)
    });
    assert!(
        back.is_some(),
        "no return after maintenance\n{}",
        explain(&lab, &[&lb1, &lb2])
    );

    // No healthy peer: the switchover is refused after Master_Down_Interval, VIP kept.
    lb2.daemon().kill(Signal::Term).expect("stop lb2");
    lb2.daemon()
        .wait_timeout(Duration::from_secs(5))
        .expect("wait")
        .expect("lb2 stops");
    let (code, answer) = cli(lab.node(1), &["switchover", "web"]);
    assert_eq!(code, Some(2), "{answer}");
    assert!(answer.contains("no healthy peer took over"), "{answer}");
    assert!(lb1.holds(vip), "the VIP must survive a refused switchover");
    lb1.daemon().kill(Signal::Term).expect("stop lb1");
}

/// `--log-format json`: one JSON object per line; a transition carries its fields and the
/// instance span's.
#[test]
fn json_logs_carry_the_transition_fields() {
    let lab = Lab::builder("jsonlog").nodes(1).build().expect("lab");
    let vip: IpAddr = "192.0.2.50".parse().unwrap();
    let mut lb1 = Node::new(lab.node(1), &config("lb1", 150, "192.0.2.50/24", ""));
    lb1.start_with(&["--log-format", "json"]);
    let elected = wait_for(master_down(150) + SLACK, || lb1.holds(vip));
    assert!(elected.is_some(), "no election\n{}", lb1.log());
    lb1.daemon().kill(Signal::Term).expect("stop");
    let _ = lb1.daemon().wait_timeout(Duration::from_secs(5));
    let log = lb1.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let master = lines
        .iter()
        .find(|line| line["message"] == "transition" && line["to"] == "MASTER")
        .unwrap_or_else(|| panic!("no transition to MASTER in\n{log}"));
    assert_eq!(master["from"], "BACKUP");
    assert_eq!(master["reason"], "master down interval expired");
    assert_eq!(master["instance"], "web");
    assert_eq!(master["vrid"], 51);
    assert_eq!(master["iface"], "eth0");
    assert_eq!(master["level"], "INFO");
    assert!(master["timestamp"].is_string());
}

/// Under systemd (Type=notify): READY=1 once running, RELOADING=1 then READY=1 around a
/// SIGHUP, STOPPING=1 on SIGTERM, read from a notify socket the test provides.
#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let lab = Lab::builder("sdnotify").nodes(1).build().expect("lab");
    let vip: IpAddr = "192.0.2.50".parse().unwrap();
    let host = lab.node(1);
    // Bound through the node's root: the socket lives in the node's private /run.
    let socket =
        UnixDatagram::bind(host.root_path(Path::new("/run/notify.sock"))).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut lb1 = Node::new(host, &config("lb1", 150, "192.0.2.50/24", ""));
    lb1.daemon = Some(
        host.spawn(
            &[BIN, "run", "-c", CONFIG],
            &[("NOTIFY_SOCKET", "/run/notify.sock")],
        )
        .expect("vipkeeper"),
    );
    let next = || {
        let mut buffer = [0u8; 4096];
        let length = socket.recv(&mut buffer).expect("a notify message");
        String::from_utf8_lossy(&buffer[..length]).into_owned()
    };
    let ready = next();
    assert!(ready.contains("READY=1"), "{ready}");
    let elected = wait_for(master_down(150) + SLACK, || lb1.holds(vip));
    assert!(elected.is_some(), "{}", lb1.log());
    lb1.daemon().kill(Signal::Hup).expect("SIGHUP");
    let reloading = next();
    assert!(reloading.contains("RELOADING=1"), "{reloading}");
    let ready = next();
    assert!(ready.contains("READY=1"), "{ready}");
    lb1.daemon().kill(Signal::Term).expect("SIGTERM");
    let stopping = next();
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
}
