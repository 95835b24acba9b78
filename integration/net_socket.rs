//! Raw VRRP sockets with real packets, inside a namespace lab (node1 and node2 on one
//! switch): multicast and unicast over IPv4 and IPv6, TTL / hop limit 255, loop off, the
//! codec's checksums surviving the kernel, and keepalived's adverts read by our socket.
//!
//! Needs root (network namespaces). The sockets are opened from a dedicated thread that has
//! entered a node's network namespace; a socket stays in the namespace it was created in, so
//! one thread can open node1's socket, enter node2 and open node2's.

#[path = "lab/mod.rs"]
mod lab;

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lab::{Lab, Segment, Signal};
use nix::sched::{setns, CloneFlags};
use vipkeeper::net::linux::vrrp_socket::{Received, SocketError, VrrpSocket};
use vipkeeper::vrrp::packet::{self, Advertisement, Auth, ChecksumMode, Endpoints};
use vipkeeper::vrrp::{Centis, Family, Version};

const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
const WAIT: Duration = Duration::from_secs(2);

/// Runs `body` on a fresh thread with its own current-thread runtime, so that entering a
/// namespace never affects the test harness's threads.
fn on_thread<T, F>(body: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(body())
    })
    .join()
    .expect("test thread panicked")
}

/// Moves the calling thread into the network namespace `netns` (an `ip netns` name).
fn enter(netns: &str) {
    let file = File::open(format!("/run/netns/{netns}")).expect("namespace file opens");
    setns(&file, CloneFlags::CLONE_NEWNET).expect("setns into the lab namespace");
}

fn open_in(netns: &str, family: Family, source: Option<IpAddr>) -> VrrpSocket {
    enter(netns);
    VrrpSocket::open("eth0", family, source).expect("VRRP socket opens on eth0")
}

async fn recv_within(socket: &VrrpSocket, wait: Duration) -> Option<Received> {
    match tokio::time::timeout(wait, socket.recv()).await {
        Ok(received) => Some(received.expect("recv")),
        Err(_elapsed) => None,
    }
}

fn advert(version: Version, addresses: Vec<IpAddr>) -> Advertisement {
    Advertisement {
        version,
        vrid: 51,
        priority: 150,
        max_adver_int: Centis::new(100),
        addresses,
        auth: Auth::None,
    }
}

fn encode(adv: &Advertisement, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    packet::encode(adv, Endpoints { src, dst }, ChecksumMode::PseudoHeader).expect("encodes")
}

fn decode(received: &Received) -> Advertisement {
    packet::decode(
        &received.payload,
        Endpoints {
            src: received.src,
            dst: received.dst,
        },
        ChecksumMode::PseudoHeader,
    )
    .expect("received advert decodes, checksum included")
}

fn two_nodes(name: &str) -> Lab {
    Lab::builder(name)
        .nodes(2)
        .client(false)
        .build()
        .expect("lab builds")
}

#[test]
fn open_on_a_missing_interface_names_it() {
    let lab = Lab::builder("sock-missing")
        .nodes(1)
        .client(false)
        .build()
        .expect("lab builds");
    let netns = lab.node(1).netns().to_owned();
    let message = on_thread(move || async move {
        enter(&netns);
        match VrrpSocket::open("nosuch0", Family::Ipv4, None) {
            Ok(socket) => panic!("opened a socket on a missing interface: {socket:?}"),
            Err(e) => {
                assert!(
                    matches!(e, SocketError::NoInterface { .. }),
                    "wrong error: {e:?}"
                );
                assert!(!e.is_packet_error());
                e.to_string()
            }
        }
    });
    assert!(message.contains("nosuch0"), "{message}");
}

#[test]
fn ipv4_multicast_reaches_the_peer_with_ttl_255_and_not_the_sender() {
    let lab = two_nodes("sock-v4-mcast");
    let (a, b) = (lab.node(1), lab.node(2));
    let (na, nb, a_ip) = (a.netns().to_owned(), b.netns().to_owned(), a.ipv4());
    on_thread(move || async move {
        let sa = open_in(&na, Family::Ipv4, None);
        let sb = open_in(&nb, Family::Ipv4, None);
        assert_eq!(sa.source(), IpAddr::V4(a_ip), "default source: first IPv4");
        for version in [Version::V2, Version::V3] {
            let adv = advert(version, vec!["192.0.2.250".parse().unwrap()]);
            let bytes = encode(&adv, a_ip.into(), GROUP_V4.into());
            sa.send(&bytes, GROUP_V4.into()).expect("send");
            let got = recv_within(&sb, WAIT).await.expect("node2 receives");
            assert_eq!(got.src, IpAddr::V4(a_ip));
            assert_eq!(got.dst, IpAddr::V4(GROUP_V4));
            assert_eq!(got.ttl, 255);
            assert_eq!(got.payload, bytes);
            assert_eq!(decode(&got), adv);
        }
        // Loop off: the sender's own socket saw none of it.
        assert_eq!(
            recv_within(&sa, Duration::from_millis(300)).await,
            None,
            "node1 received its own multicast"
        );
    });
}

#[test]
fn ipv6_multicast_comes_from_the_link_local_with_hop_limit_255() {
    let lab = two_nodes("sock-v6-mcast");
    let (a, b) = (lab.node(1), lab.node(2));
    let a_ll = a.link_local(Segment::Front).expect("node1 link-local");
    let (na, nb) = (a.netns().to_owned(), b.netns().to_owned());
    on_thread(move || async move {
        let sa = open_in(&na, Family::Ipv6, None);
        let sb = open_in(&nb, Family::Ipv6, None);
        assert_eq!(sa.source(), IpAddr::V6(a_ll), "default source: link-local");
        let adv = advert(Version::V3, vec!["2001:db8::250".parse().unwrap()]);
        let bytes = encode(&adv, a_ll.into(), GROUP_V6.into());
        sa.send(&bytes, GROUP_V6.into()).expect("send");
        let got = recv_within(&sb, WAIT).await.expect("node2 receives");
        assert_eq!(got.src, IpAddr::V6(a_ll));
        assert_eq!(got.dst, IpAddr::V6(GROUP_V6));
        assert_eq!(got.ttl, 255);
        assert_eq!(got.payload, bytes, "the kernel did not touch the checksum");
        assert_eq!(decode(&got), adv);
        assert_eq!(
            recv_within(&sa, Duration::from_millis(300)).await,
            None,
            "node1 received its own multicast"
        );
    });
}

#[test]
fn unicast_reaches_the_peer_address_over_ipv4_and_ipv6() {
    let lab = two_nodes("sock-unicast");
    let (a, b) = (lab.node(1), lab.node(2));
    let b_ll = b.link_local(Segment::Front).expect("node2 link-local");
    let (na, nb, a_ip, b_ip, b_ip6) = (
        a.netns().to_owned(),
        b.netns().to_owned(),
        a.ipv4(),
        b.ipv4(),
        b.ipv6(),
    );
    on_thread(move || async move {
        let sa4 = open_in(&na, Family::Ipv4, Some(a_ip.into()));
        let sa6 = open_in(&na, Family::Ipv6, None);
        let sb4 = open_in(&nb, Family::Ipv4, None);
        let sb6 = open_in(&nb, Family::Ipv6, None);

        let adv = advert(Version::V3, vec!["192.0.2.250".parse().unwrap()]);
        let bytes = encode(&adv, a_ip.into(), b_ip.into());
        sa4.send(&bytes, b_ip.into()).expect("send v4 unicast");
        let got = recv_within(&sb4, WAIT).await.expect("node2 receives v4");
        assert_eq!((got.src, got.dst, got.ttl), (a_ip.into(), b_ip.into(), 255));
        assert_eq!(decode(&got), adv);

        // To a link-local peer (needs the scope id) and to a global one.
        let adv6 = advert(Version::V3, vec!["2001:db8::250".parse().unwrap()]);
        for dst in [IpAddr::V6(b_ll), IpAddr::V6(b_ip6)] {
            let bytes = encode(&adv6, sa6.source(), dst);
            sa6.send(&bytes, dst).expect("send v6 unicast");
            let got = recv_within(&sb6, WAIT).await.expect("node2 receives v6");
            assert_eq!((got.src, got.dst, got.ttl), (sa6.source(), dst, 255));
            assert_eq!(decode(&got), adv6);
        }

        // A destination of the other family is refused, not sent.
        let wrong = sa4
            .send(&bytes, b_ip6.into())
            .expect_err("v6 dst on a v4 socket");
        assert!(
            matches!(wrong, SocketError::DestinationFamily { .. }),
            "{wrong:?}"
        );
    });
}

#[test]
fn keepalived_adverts_are_received_and_decode() {
    if Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: keepalived is not installed (scripts/test installs it)");
        return;
    }
    let lab = two_nodes("sock-keepalived");
    let (a, b) = (lab.node(1), lab.node(2));
    let config = "global_defs {\n  router_id node1\n  vrrp_version 3\n}\n\
        vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n\
        \x20 priority 200\n  advert_int 0.1\n  virtual_ipaddress {\n    192.0.2.250/24\n  }\n}\n";
    // /tmp is the node's own tmpfs.
    a.write_file(Path::new("/tmp/keepalived.conf"), config.as_bytes())
        .expect("config written");
    let mut keepalived = a
        .spawn(
            &[
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
                "-f",
                "/tmp/keepalived.conf",
                "-p",
                "/tmp/keepalived.pid",
                "-r",
                "/tmp/keepalived-vrrp.pid",
            ],
            &[],
        )
        .expect("keepalived starts");
    let (nb, a_ip) = (b.netns().to_owned(), a.ipv4());
    let got = on_thread(move || async move {
        let sb = open_in(&nb, Family::Ipv4, None);
        // keepalived goes Master after about 3 intervals (0.3 s) plus skew.
        recv_within(&sb, Duration::from_secs(5)).await
    });
    let _ = keepalived.kill(Signal::Term);
    let _ = keepalived.wait_timeout(Duration::from_secs(3));
    let got = got.unwrap_or_else(|| {
        panic!(
            "no advert from keepalived; stderr: {}\nstdout: {}",
            keepalived.stderr(),
            keepalived.stdout()
        )
    });
    assert_eq!(got.src, IpAddr::V4(a_ip));
    assert_eq!(got.dst, IpAddr::V4(GROUP_V4));
    assert_eq!(got.ttl, 255);
    let adv = decode(&got);
    assert_eq!(adv.version, Version::V3);
    assert_eq!(adv.vrid, 51);
    assert_eq!(adv.priority, 200);
    assert_eq!(
        adv.addresses,
        vec!["192.0.2.250".parse::<IpAddr>().unwrap()]
    );
}
