//! Layer-2 announcements: the frames equal keepalived 2.2.7's captured ones, and on the
//! namespace lab a gratuitous ARP / unsolicited NA from the new holder of a VIP moves the
//! client's neighbour entry to the new MAC without the client sending anything.
//!
//! The lab tests need root (network namespaces); `scripts/test` runs them as root. Every frame
//! is sent from a dedicated thread that has joined a lab host's network namespace, never from
//! the test process's own namespace.

#[path = "lab/mod.rs"]
mod lab;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::thread;
use std::time::{Duration, Instant};

use lab::{Host, Lab};
use nix::sched::{setns, CloneFlags};
use vipkeeper::net::linux::announce::{garp_frame, unsolicited_na_frame, AnnounceError, Announcer};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vectors/keepalived-2.2.7.jsonl"
);
const RUN: Duration = Duration::from_secs(5);
const PING_WAIT: Duration = Duration::from_secs(1);
/// How long the client may take to process the announcement.
const SETTLE: Duration = Duration::from_secs(2);

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("vector is hex"))
        .collect()
}

/// The captured frame whose `capture` text contains `what`, and the address it announces
/// (the last word of `capture`: "... on becoming Master of ADDRESS").
fn vector(what: &str) -> (Vec<u8>, IpAddr) {
    let text = std::fs::read_to_string(VECTORS).expect("vectors readable");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("vector line is JSON");
        let capture = value["capture"].as_str().expect("capture is a string");
        if capture.contains(what) {
            let address = capture
                .split_whitespace()
                .last()
                .and_then(|word| word.parse().ok())
                .expect("capture ends with the address");
            let frame = hex(value["ethernet"].as_str().expect("ethernet is a string"));
            return (frame, address);
        }
    }
    panic!("no vector with {what:?} in {VECTORS}");
}

/// The source MAC of a captured Ethernet frame: the MAC keepalived's interface had.
fn source_mac(frame: &[u8]) -> [u8; 6] {
    frame[6..12]
        .try_into()
        .expect("frame has an Ethernet header")
}

#[test]
fn garp_equals_keepalived_capture() {
    let (captured, address) = vector("gratuitous ARP");
    let IpAddr::V4(address) = address else {
        panic!("GARP vector announces {address}")
    };
    assert_eq!(garp_frame(source_mac(&captured), address), captured);
}

#[test]
fn unsolicited_na_equals_keepalived_capture() {
    let (captured, address) = vector("neighbour advertisement");
    let IpAddr::V6(address) = address else {
        panic!("NA vector announces {address}")
    };
    assert_eq!(
        unsolicited_na_frame(source_mac(&captured), address),
        captured
    );
}

#[test]
fn open_on_a_missing_interface_names_it() {
    let err = Announcer::open("vk-missing7").expect_err("interface does not exist");
    assert!(matches!(err, AnnounceError::NoInterface { .. }), "{err:?}");
    assert!(err.to_string().contains("vk-missing7"), "{err}");
}

/// Runs `work` on a fresh thread inside the network namespace of `host`; the thread ends with
/// it, so no other code ever runs in that namespace by accident.
fn in_netns<T: Send + 'static>(host: &Host, work: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{}", host.netns());
    thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(ns, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        work()
    })
    .join()
    .expect("namespace thread did not panic")
}

/// `ip` inside `host`, failing the test on a non-zero exit.
fn ip(host: &Host, args: &[&str]) -> String {
    let mut argv = vec!["ip"];
    argv.extend_from_slice(args);
    host.run_ok(&argv, RUN)
        .unwrap_or_else(|e| panic!("{}: {e}", host.name()))
}

fn link_mac(host: &Host) -> String {
    let out = ip(host, &["-j", "link", "show", "dev", "eth0"]);
    let links: serde_json::Value = serde_json::from_str(&out).expect("ip -j link is JSON");
    links[0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no MAC in {out}", host.name()))
        .to_owned()
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The client's neighbour entry for `address`: link-layer address (if any) and states.
fn neighbour(client: &Host, address: IpAddr) -> (Option<String>, String) {
    let target = address.to_string();
    let out = ip(client, &["-j", "neigh", "show", &target, "dev", "eth0"]);
    let entries: serde_json::Value = serde_json::from_str(&out).expect("ip -j neigh is JSON");
    let entry = &entries[0];
    (
        entry["lladdr"].as_str().map(str::to_owned),
        entry["state"].to_string(),
    )
}

/// Waits up to [`SETTLE`] for the client's entry for `address` to carry `mac`.
fn wait_for_neighbour(client: &Host, address: IpAddr, mac: &str) -> (Option<String>, String) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let entry = neighbour(client, address);
        if entry.0.as_deref() == Some(mac) || Instant::now() >= deadline {
            return entry;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The VIP moves from node 1 to node 2 behind the client's back; only node 2's announcement
/// can tell the client, and it does.
fn vip_moves_with_announcement(test: &str, vip: IpAddr) {
    let lab = Lab::builder(test).nodes(2).build().expect("lab builds");
    let (a, b, client) = (lab.node(1), lab.node(2), lab.client());
    let (mac_a, mac_b) = (link_mac(a), link_mac(b));
    assert_ne!(mac_a, mac_b);
    let (prefix, nodad): (&str, &[&str]) = match vip {
        IpAddr::V4(_) => ("32", &[]),
        IpAddr::V6(_) => ("128", &["nodad"]),
    };
    let cidr = format!("{vip}/{prefix}");
    // ARP updates within locktime (default 1 s) of the last one are ignored: lower it so the
    // test need not wait. NA with the override flag is not subject to it.
    client
        .run_ok(
            &["sysctl", "-q", "-w", "net.ipv4.neigh.eth0.locktime=0"],
            RUN,
        )
        .expect("sysctl locktime");

    // The client learns VIP -> A.
    let mut add = vec!["addr", "add", &cidr, "dev", "eth0"];
    add.extend_from_slice(nodad);
    ip(a, &add);
    assert!(
        client.ping(vip, PING_WAIT).expect("ping runs"),
        "VIP on A answers"
    );
    let (learned, state) = neighbour(client, vip);
    assert_eq!(
        learned.as_deref(),
        Some(mac_a.as_str()),
        "learned A ({state})"
    );

    // The VIP moves to B; nothing tells the client yet.
    ip(a, &["addr", "del", &cidr, "dev", "eth0"]);
    ip(b, &add);
    thread::sleep(Duration::from_millis(200));
    let (before, state) = neighbour(client, vip);
    assert_eq!(
        before.as_deref(),
        Some(mac_a.as_str()),
        "nothing but the announcement may move the entry ({state})"
    );

    // B announces it once, from inside its namespace.
    let announced_mac = in_netns(b, move || {
        let mut announcer = Announcer::open("eth0")?;
        announcer.announce(vip)?;
        Ok::<_, AnnounceError>(announcer.mac())
    })
    .expect("announce from B");
    assert_eq!(mac_text(announced_mac), mac_b, "announcer reads B's MAC");

    let (after, state) = wait_for_neighbour(client, vip, &mac_b);
    assert_eq!(
        after.as_deref(),
        Some(mac_b.as_str()),
        "moved to B ({state})"
    );
    // And the client reaches the VIP at its new home.
    assert!(
        client.ping(vip, PING_WAIT).expect("ping runs"),
        "VIP on B answers"
    );
}

#[test]
fn garp_moves_the_clients_arp_entry() {
    vip_moves_with_announcement("announce_v4", IpAddr::V4(VIP4));
}

#[test]
fn unsolicited_na_moves_the_clients_neighbour_entry() {
    vip_moves_with_announcement("announce_v6", IpAddr::V6(VIP6));
}

/// Failures come back as errors naming the interface: no MAC on `lo`, and a send on an
/// interface that is down.
#[test]
fn errors_name_the_interface() {
    let lab = Lab::builder("announce_err")
        .nodes(1)
        .client(false)
        .build()
        .expect("lab builds");
    let node = lab.node(1);
    let no_mac = in_netns(node, || Announcer::open("lo").map(|_| ()));
    let err = no_mac.expect_err("lo has no MAC");
    assert!(matches!(err, AnnounceError::NoMac { .. }), "{err:?}");
    assert!(err.to_string().contains("lo"), "{err}");

    ip(node, &["link", "set", "eth0", "down"]);
    let down = in_netns(node, || {
        let mut announcer = Announcer::open("eth0")?;
        announcer.announce(IpAddr::V4(VIP4))
    });
    let err = down.expect_err("eth0 is down");
    assert!(matches!(err, AnnounceError::Send { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("eth0") && text.contains("192.0.2.50"),
        "{text}"
    );
}

/// What reaches the client is exactly [`garp_frame`] / [`unsolicited_na_frame`], and having
/// an announcer open does not put the interface into promiscuous mode.
#[test]
fn frames_arrive_byte_exact_and_the_interface_stays_unpromiscuous() {
    use pnet_datalink::{Channel, Config};
    use std::sync::mpsc;

    let lab = Lab::builder("announce_wire")
        .nodes(1)
        .build()
        .expect("lab builds");
    let (node, client) = (lab.node(1), lab.client());
    let mac = link_mac(node);

    // The client listens (in its own namespace) for frames from the node's MAC.
    let (ready_tx, ready_rx) = mpsc::channel();
    let client_ns = format!("/run/netns/{}", client.netns());
    let node_mac = mac.clone();
    let capture = thread::spawn(move || {
        let ns = File::open(&client_ns).unwrap_or_else(|e| panic!("open {client_ns}: {e}"));
        setns(ns, CloneFlags::CLONE_NEWNET).expect("setns client");
        let eth0 = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == "eth0")
            .expect("client has eth0");
        let config = Config {
            read_timeout: Some(Duration::from_millis(50)),
            promiscuous: false,
            ..Config::default()
        };
        let Ok(Channel::Ethernet(_, mut rx)) = pnet_datalink::channel(&eth0, config) else {
            panic!("client capture channel")
        };
        ready_tx.send(()).expect("test waits");
        let mut frames = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while frames.len() < 2 && Instant::now() < deadline {
            if let Ok(frame) = rx.next() {
                // Only the two announcements: ARP or ICMPv6 type 136 from the node's MAC
                // (the node also sends its own IPv6 housekeeping, e.g. MLD reports).
                let from_node = mac_text(source_mac(frame)) == node_mac;
                let arp = frame[12..14] == [0x08, 0x06];
                let na = frame.len() > 54 && frame[12..14] == [0x86, 0xdd] && frame[54] == 136;
                if from_node && (arp || na) {
                    frames.push(frame.to_vec());
                }
            }
        }
        frames
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("capture opens");

    let (sent_mac, promiscuity) = in_netns(node, {
        let node_name = node.netns().to_owned();
        move || {
            let mut announcer = Announcer::open("eth0").expect("open on the node");
            let flags = std::process::Command::new("ip")
                .args(["-n", &node_name, "-j", "-d", "link", "show", "dev", "eth0"])
                .output()
                .expect("ip link runs");
            announcer.announce(IpAddr::V4(VIP4)).expect("GARP sent");
            announcer.announce(IpAddr::V6(VIP6)).expect("NA sent");
            let links: serde_json::Value =
                serde_json::from_slice(&flags.stdout).expect("ip -j link is JSON");
            (announcer.mac(), links[0]["promiscuity"].as_u64())
        }
    });
    assert_eq!(
        promiscuity,
        Some(0),
        "the announcer must not enable promiscuous mode"
    );

    let frames = capture.join().expect("capture thread");
    assert_eq!(
        frames,
        vec![
            garp_frame(sent_mac, VIP4),
            unsolicited_na_frame(sent_mac, VIP6)
        ]
    );
}
