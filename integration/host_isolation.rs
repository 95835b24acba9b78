//! No packet of the lab reaches the host's own interfaces.
//!
//! A passive sniffer listens on every interface of the root network namespace (promiscuous
//! mode off: it changes nothing on them and sends nothing) while a dual-stack vipkeeper pair
//! elects, fails over with kill -9 and stops gracefully in the lab: VRRP multicast,
//! gratuitous ARP, unsolicited NA and client traffic all happen. Any VRRP packet, or any
//! frame carrying a lab address (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32), seen on a
//! host interface fails the test. A positive control proves the sniffer would have seen it:
//! one protocol-112 packet sent to 127.0.0.1 on the host's loopback must be caught.

#[path = "lab/mod.rs"]
mod lab;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lab::{Lab, Signal};
use pnet_datalink::{Channel, Config};

const BIN: &str = env!("CARGO_BIN_EXE_vipkeeper");
/// A payload no real packet carries, to recognise the control packet.
const CONTROL_MARK: &[u8] = b"vipkeeper-host-isolation-control";

#[derive(Default, Debug)]
struct Seen {
    /// Frames that belong to the lab, described.
    leaked: Vec<String>,
    control: usize,
    frames: usize,
}

fn lab_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100)
}

fn lab_v6(address: Ipv6Addr) -> bool {
    let segments = address.segments();
    segments[0] == 0x2001 && segments[1] == 0x0db8
}

fn v4_at(frame: &[u8], at: usize) -> Option<Ipv4Addr> {
    let bytes: [u8; 4] = frame.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(bytes))
}

fn v6_at(frame: &[u8], at: usize) -> Option<Ipv6Addr> {
    let bytes: [u8; 16] = frame.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(bytes))
}

/// Classify one Ethernet frame (loopback frames carry a zeroed Ethernet header too).
fn classify(interface: &str, frame: &[u8], seen: &mut Seen) {
    seen.frames += 1;
    let Some(ethertype) = frame.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        return;
    };
    let ip = 14;
    match ethertype {
        0x0800 => {
            let (Some(&protocol), Some(src), Some(dst)) = (
                frame.get(ip + 9),
                v4_at(frame, ip + 12),
                v4_at(frame, ip + 16),
            ) else {
                return;
            };
            if protocol == 112 && frame.windows(CONTROL_MARK.len()).any(|w| w == CONTROL_MARK) {
                seen.control += 1;
            } else if protocol == 112 || lab_v4(src) || lab_v4(dst) {
                seen.leaked
                    .push(format!("{interface}: IPv4 proto {protocol} {src} -> {dst}"));
            }
        }
        0x86dd => {
            let (Some(&next), Some(src), Some(dst)) = (
                frame.get(ip + 6),
                v6_at(frame, ip + 8),
                v6_at(frame, ip + 24),
            ) else {
                return;
            };
            if next == 112 || lab_v6(src) || lab_v6(dst) {
                seen.leaked
                    .push(format!("{interface}: IPv6 next {next} {src} -> {dst}"));
            }
        }
        0x0806 => {
            let (Some(sender), Some(target)) = (v4_at(frame, ip + 14), v4_at(frame, ip + 24))
            else {
                return;
            };
            if lab_v4(sender) || lab_v4(target) {
                seen.leaked
                    .push(format!("{interface}: ARP {sender} -> {target}"));
            }
        }
        _ => {}
    }
}

/// Sniff every root-namespace interface until `stop` is set.
fn sniff(stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    for interface in pnet_datalink::interfaces() {
        let config = Config {
            read_timeout: Some(Duration::from_millis(20)),
            // Passive: never change the host interface's flags.
            promiscuous: false,
            ..Config::default()
        };
        let mut rx = match pnet_datalink::channel(&interface, config) {
            Ok(Channel::Ethernet(_tx, rx)) => rx,
            Ok(_) => continue,
            Err(error) => panic!("cannot sniff {}: {error}", interface.name),
        };
        let stop = Arc::clone(&stop);
        let seen = Arc::clone(&seen);
        let name = interface.name.clone();
        threads.push(std::thread::spawn(move || {
            // Bounded by the stop flag, set by the test within a minute at most.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok(frame) = rx.next() {
                    let mut seen = seen.lock().expect("lock");
                    classify(&name, frame, &mut seen);
                }
            }
        }));
    }
    threads
}

/// One protocol-112 packet to 127.0.0.1: loopback only, the positive control.
fn send_control_packet() {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))
        .expect("raw socket for the control packet");
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    socket
        .send_to(CONTROL_MARK, &to.into())
        .expect("send the control packet on loopback");
}

fn holds(host: &lab::Host, vip: &str) -> bool {
    host.run_ok(&["ip", "-o", "addr"], Duration::from_secs(5))
        .map(|output| output.contains(&format!(" {vip}/")))
        .unwrap_or(false)
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn lab_traffic_never_reaches_the_host_interfaces() {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sniffers = sniff(Arc::clone(&stop), Arc::clone(&seen));
    assert!(!sniffers.is_empty(), "no host interface to sniff");
    // Let every sniffer start reading before anything happens.
    std::thread::sleep(Duration::from_millis(100));

    {
        let lab = Lab::builder("isolation").nodes(2).build().expect("lab");
        let config = |name: &str, priority: u8| {
            format!(
                "[global]\nnode_name = \"{name}\"\n\n\
                 [[instance]]\nname = \"v4\"\ninterface = \"eth0\"\nvrid = 51\n\
                 priority = {priority}\nadvert_interval = \"100ms\"\nvips = [\"192.0.2.50/24\"]\n\n\
                 [[instance]]\nname = \"v6\"\ninterface = \"eth0\"\nvrid = 52\n\
                 priority = {priority}\nadvert_interval = \"100ms\"\nvips = [\"2001:db8::50/64\"]\n"
            )
        };
        let mut daemons = Vec::new();
        for (index, priority) in [(1, 150), (2, 100)] {
            let host = lab.node(index);
            let text = config(host.name(), priority);
            host.write_file(Path::new("/run/vipkeeper.toml"), text.as_bytes())
                .expect("config");
            daemons.push(
                host.spawn(&[BIN, "run", "-c", "/run/vipkeeper.toml"], &[])
                    .expect("vipkeeper"),
            );
        }
        let node1 = lab.node(1);
        let node2 = lab.node(2);
        assert!(
            wait_for(Duration::from_secs(3), || holds(node1, "192.0.2.50")
                && holds(node1, "2001:db8::50")),
            "no election\n{}",
            lab.diagnostics()
        );
        let client = lab.client();
        assert!(client
            .ping(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50)),
                Duration::from_millis(500)
            )
            .expect("ping"));
        daemons[0].kill(Signal::Kill).expect("kill -9 lb1");
        assert!(
            wait_for(Duration::from_secs(3), || holds(node2, "192.0.2.50")
                && holds(node2, "2001:db8::50")),
            "no takeover\n{}",
            lab.diagnostics()
        );
        daemons[1].kill(Signal::Term).expect("stop lb2");
        let _ = daemons[1].wait_timeout(Duration::from_secs(5));
    }

    send_control_packet();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for sniffer in sniffers {
        sniffer.join().expect("sniffer thread");
    }
    let seen = seen.lock().expect("lock");
    assert!(
        seen.control >= 1,
        "the sniffer missed the control packet on loopback, so it proves nothing: {seen:?}"
    );
    assert!(
        seen.leaked.is_empty(),
        "lab traffic on host interfaces:\n{}",
        seen.leaked.join("\n")
    );
}
