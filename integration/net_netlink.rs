//! The rtnetlink module against the real kernel, inside lab namespaces: VIPs are added with
//! prefix, label, broadcast, our IFA_PROTO tag and (IPv6) without DAD, adding and deleting
//! are idempotent, stale-VIP cleanup removes only tagged addresses, the monitor reports link
//! and address changes, and a missing interface is an error naming it.
//!
//! Every test builds its own one-node lab, because `remove_stale_vips` acts on the whole
//! namespace. Netlink code runs on a thread that has entered the node's network namespace
//! (sockets bind in the namespace of the thread that creates them). Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::fs::File;
use std::future::Future;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use nix::sched::{setns, CloneFlags};
use serde_json::Value;
use vipkeeper::config::Vip;
use vipkeeper::net::linux::netlink::{
    AddressKind, Netlink, NetlinkError, NetlinkEvent, VIPKEEPER_ADDRESS_PROTO,
};

use lab::Lab;

/// How long the monitor may take to report a change.
const EVENT_WAIT: Duration = Duration::from_secs(5);

fn one_node(test: &str) -> Lab {
    Lab::builder(test)
        .nodes(1)
        .client(false)
        .build()
        .expect("lab builds (needs root)")
}

/// Runs `f` to completion on a fresh thread inside network namespace `netns`, on a
/// current-thread runtime of its own; a panic in `f` is the caller's panic.
fn in_netns<F, Fut, T>(netns: &str, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let path = format!("/run/netns/{netns}");
    let thread = std::thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(ns, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f())
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// `ip -n netns args...`; panics with its stderr unless it succeeds. Returns stdout.
fn ip(netns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .arg("-n")
        .arg(netns)
        .args(args)
        .output()
        .expect("ip runs");
    assert!(
        out.status.success(),
        "ip -n {netns} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `addr_info` entries of `dev` from `ip -j addr show`.
fn ip_addrs(netns: &str, dev: &str) -> Vec<Value> {
    let out = ip(netns, &["-j", "addr", "show", "dev", dev]);
    let links: Vec<Value> = serde_json::from_str(&out).expect("ip -j addr is JSON");
    links
        .iter()
        .filter_map(|l| l.get("addr_info").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect()
}

fn ip_addr(netns: &str, dev: &str, address: &str) -> Option<Value> {
    ip_addrs(netns, dev)
        .into_iter()
        .find(|a| a.get("local").and_then(Value::as_str) == Some(address))
}

fn vip(address: &str, prefix_len: u8, dev: &str, label: Option<&str>) -> Vip {
    Vip {
        address: address.parse().expect("test address"),
        prefix_len,
        dev: dev.to_owned(),
        label: label.map(str::to_owned),
    }
}

#[test]
fn ipv4_vip_has_prefix_label_broadcast_and_tag_and_add_del_are_idempotent() {
    let lab = one_node("nl-ipv4");
    let ns = lab.node(1).netns().to_owned();
    let v = vip("192.0.2.50", 24, "eth0", Some("eth0:vip"));

    let ours = {
        let v = v.clone();
        in_netns(&ns, move || async move {
            let nl = Netlink::connect().expect("connect");
            nl.add_vip(&v).await.expect("add");
            nl.add_vip(&v).await.expect("adding again is success");
            nl.addresses("eth0", AddressKind::V4).await.expect("dump")
        })
    };
    let mine = ours
        .iter()
        .find(|a| a.address == v.address)
        .expect("own dump shows the VIP");
    assert_eq!(mine.prefix_len, 24);
    assert_eq!(mine.label.as_deref(), Some("eth0:vip"));
    assert_eq!(mine.protocol, Some(VIPKEEPER_ADDRESS_PROTO));

    let shown = ip_addr(&ns, "eth0", "192.0.2.50").expect("ip shows the VIP");
    assert_eq!(shown["prefixlen"], 24, "{shown}");
    assert_eq!(shown["label"], "eth0:vip", "{shown}");
    assert_eq!(shown["broadcast"], "192.0.2.255", "brd +: {shown}");
    // iproute2 prints IFA_PROTO only from 6.x on; our own dump checked it above anyway.
    if let Some(proto) = shown.get("protocol") {
        assert_eq!(
            proto,
            &Value::from(format!("{VIPKEEPER_ADDRESS_PROTO:#x}")),
            "{shown}"
        );
    }

    in_netns(&ns, move || async move {
        let nl = Netlink::connect().expect("connect");
        nl.del_vip(&v).await.expect("del");
        nl.del_vip(&v).await.expect("deleting again is success");
    });
    assert_eq!(ip_addr(&ns, "eth0", "192.0.2.50"), None, "VIP removed");
    // The lab's own address is untouched.
    assert!(ip_addr(&ns, "eth0", "192.0.2.11").is_some());
}

#[test]
fn ipv6_vip_is_usable_at_once_with_nodad() {
    let lab = one_node("nl-ipv6");
    let ns = lab.node(1).netns().to_owned();
    // Lab hosts turn DAD off; turn it back on for eth0, or nothing would be tentative.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.eth0.accept_dad=1",
        ])
        .output()
        .expect("sysctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The control: an address added without NODAD is tentative while DAD runs.
    ip(&ns, &["addr", "add", "2001:db8::51/64", "dev", "eth0"]);
    let control = ip_addr(&ns, "eth0", "2001:db8::51").expect("control address");
    assert_eq!(
        control.get("tentative"),
        Some(&Value::Bool(true)),
        "{control}"
    );
    let v = vip("2001:db8::50", 64, "eth0", None);

    let ours = {
        let v = v.clone();
        in_netns(&ns, move || async move {
            let nl = Netlink::connect().expect("connect");
            nl.add_vip(&v).await.expect("add");
            nl.add_vip(&v).await.expect("adding again is success");
            nl.addresses("eth0", AddressKind::V6).await.expect("dump")
        })
    };
    let mine = ours
        .iter()
        .find(|a| a.address == v.address)
        .expect("own dump shows the VIP");
    assert_eq!(mine.prefix_len, 64);
    assert!(mine.nodad && !mine.tentative, "{mine:?}");
    assert_eq!(mine.protocol, Some(VIPKEEPER_ADDRESS_PROTO));

    // eth0 is up with carrier, so without NODAD the address would be tentative for a second.
    let shown = ip_addr(&ns, "eth0", "2001:db8::50").expect("ip shows the VIP");
    assert_eq!(shown["prefixlen"], 64, "{shown}");
    assert_eq!(shown.get("nodad"), Some(&Value::Bool(true)), "{shown}");
    assert_eq!(shown.get("tentative"), None, "{shown}");

    in_netns(&ns, move || async move {
        let nl = Netlink::connect().expect("connect");
        nl.del_vip(&v).await.expect("del");
        nl.del_vip(&v).await.expect("deleting again is success");
    });
    assert_eq!(ip_addr(&ns, "eth0", "2001:db8::50"), None, "VIP removed");
}

#[test]
fn remove_stale_vips_removes_only_tagged_addresses() {
    let lab = one_node("nl-stale");
    let ns = lab.node(1).netns().to_owned();
    // A second interface, made inside the node's namespace (gone with it).
    ip(
        &ns,
        &[
            "link", "add", "ext0", "type", "veth", "peer", "name", "ext1",
        ],
    );
    // The operator's: one of its own, and the same IP as a VIP on another interface.
    ip(&ns, &["addr", "add", "192.0.2.61/32", "dev", "eth0"]);
    ip(&ns, &["addr", "add", "192.0.2.60/32", "dev", "ext0"]);
    ip(
        &ns,
        &["addr", "add", "2001:db8::60/128", "dev", "ext0", "nodad"],
    );

    let (removed, again) = in_netns(&ns, move || async move {
        let nl = Netlink::connect().expect("connect");
        nl.add_vip(&vip("192.0.2.60", 32, "eth0", Some("eth0:1")))
            .await
            .expect("add v4");
        nl.add_vip(&vip("2001:db8::60", 128, "eth0", None))
            .await
            .expect("add v6");
        let removed = nl.remove_stale_vips().await.expect("remove stale");
        let again = nl.remove_stale_vips().await.expect("remove stale again");
        (removed, again)
    });
    let mut removed = removed;
    removed.sort();
    let want: Vec<IpAddr> = vec![
        "192.0.2.60".parse().expect("ip"),
        "2001:db8::60".parse().expect("ip"),
    ];
    assert_eq!(removed, want);
    assert_eq!(again, Vec::<IpAddr>::new(), "nothing tagged is left");

    assert_eq!(ip_addr(&ns, "eth0", "192.0.2.60"), None);
    assert_eq!(ip_addr(&ns, "eth0", "2001:db8::60"), None);
    for (dev, address) in [
        ("eth0", "192.0.2.61"),
        ("eth0", "192.0.2.11"),
        ("ext0", "192.0.2.60"),
        ("ext0", "2001:db8::60"),
    ] {
        assert!(
            ip_addr(&ns, dev, address).is_some(),
            "operator's {address} on {dev} survives"
        );
    }
}

#[test]
fn monitor_reports_link_down_up_and_an_address_removed_by_hand() {
    let lab = one_node("nl-monitor");
    let ns = lab.node(1).netns().to_owned();
    let ns_thread = ns.clone();

    in_netns(&ns, move || async move {
        let ns = ns_thread;
        let nl = Netlink::connect().expect("connect");
        let eth0 = nl.link("eth0").await.expect("eth0");
        assert!(eth0.up, "lab eth0 starts up: {eth0:?}");
        let mut events = Netlink::monitor().expect("monitor");

        // Waits for the first event `want` accepts; every other one is skipped.
        async fn expect_event(
            events: &mut (impl futures::Stream<Item = NetlinkEvent> + Unpin),
            what: &str,
            want: impl Fn(&NetlinkEvent) -> bool,
        ) -> NetlinkEvent {
            let wait = async {
                while let Some(e) = events.next().await {
                    if want(&e) {
                        return Some(e);
                    }
                }
                None
            };
            match tokio::time::timeout(EVENT_WAIT, wait).await {
                Ok(Some(e)) => e,
                Ok(None) => panic!("monitor stream ended waiting for {what}"),
                Err(_) => panic!("no {what} within {EVENT_WAIT:?}"),
            }
        }

        ip(&ns, &["link", "set", "eth0", "down"]);
        let e = expect_event(
            &mut events,
            "eth0 down",
            |e| matches!(e, NetlinkEvent::Link { name, up: false, .. } if name == "eth0"),
        )
        .await;
        assert!(matches!(e, NetlinkEvent::Link { index, .. } if index == eth0.index));
        assert!(!nl.link("eth0").await.expect("eth0").up);

        ip(&ns, &["link", "set", "eth0", "up"]);
        expect_event(
            &mut events,
            "eth0 up",
            |e| matches!(e, NetlinkEvent::Link { name, up: true, .. } if name == "eth0"),
        )
        .await;

        let hand: IpAddr = "192.0.2.70".parse().expect("ip");
        ip(&ns, &["addr", "add", "192.0.2.70/32", "dev", "eth0"]);
        expect_event(&mut events, "192.0.2.70 added", |e| {
            *e == NetlinkEvent::AddressAdded {
                index: eth0.index,
                address: hand,
                prefix_len: 32,
            }
        })
        .await;
        ip(&ns, &["addr", "del", "192.0.2.70/32", "dev", "eth0"]);
        expect_event(&mut events, "192.0.2.70 removed", |e| {
            *e == NetlinkEvent::AddressRemoved {
                index: eth0.index,
                address: hand,
                prefix_len: 32,
            }
        })
        .await;

        // IPv6 goes through its own multicast group.
        let hand6: IpAddr = "2001:db8::70".parse().expect("ip");
        ip(
            &ns,
            &["addr", "add", "2001:db8::70/128", "dev", "eth0", "nodad"],
        );
        ip(&ns, &["addr", "del", "2001:db8::70/128", "dev", "eth0"]);
        expect_event(&mut events, "2001:db8::70 removed", |e| {
            *e == NetlinkEvent::AddressRemoved {
                index: eth0.index,
                address: hand6,
                prefix_len: 128,
            }
        })
        .await;
    });
}

#[test]
fn link_reads_state_and_a_missing_interface_is_named() {
    let lab = one_node("nl-link");
    let ns = lab.node(1).netns().to_owned();
    let shown: Vec<Value> =
        serde_json::from_str(&ip(&ns, &["-j", "link", "show", "dev", "eth0"])).expect("JSON");
    let want_mac = shown
        .first()
        .and_then(|l| l.get("address"))
        .and_then(Value::as_str)
        .expect("eth0 has an address")
        .to_owned();
    let want_index = shown
        .first()
        .and_then(|l| l.get("ifindex"))
        .and_then(Value::as_u64)
        .expect("eth0 has an index");

    let (eth0, missing, add_missing) = in_netns(&ns, move || async move {
        let nl = Netlink::connect().expect("connect");
        let eth0 = nl.link("eth0").await.expect("eth0");
        let missing = nl.link("nosuch0").await;
        let add_missing = nl.add_vip(&vip("192.0.2.80", 32, "nosuch0", None)).await;
        (eth0, missing, add_missing)
    });
    assert_eq!(u64::from(eth0.index), want_index);
    assert!(eth0.up);
    let mac = eth0.mac.expect("eth0 MAC");
    let mac = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(mac, want_mac);

    for result in [missing.map(drop), add_missing] {
        let err = result.expect_err("nosuch0 does not exist");
        assert!(
            matches!(&err, NetlinkError::NoSuchInterface { name } if name == "nosuch0"),
            "{err:?}"
        );
        assert!(err.to_string().contains("nosuch0"), "{err}");
    }
}
