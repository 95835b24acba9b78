//! examples/haproxy-pair run as shipped: both nodes' vipkeeper.toml and the shared
//! haproxy.cfg, unchanged, in the namespace lab (whose nodes are 192.0.2.11 and .12, the
//! example's addresses), with the backend at 198.51.100.200:8080.
//!
//! What moves the VIPs away from lb1, each in its own lab: HAProxy killed (`process`
//! check), lb1 alone losing its backend (`haproxy` check, via HAProxy's own health checks),
//! and lb1's only server put in MAINT through the admin socket. A client request through
//! the VIP tells which node answers (`X-Served-By`, the answering host's name). The bounds are generous: with
//! fast_preempt the move takes milliseconds; `scripts/bench` measures it.

#[path = "pair/example.rs"]
mod example;
#[path = "lab/mod.rs"]
mod lab;

use std::time::Duration;

use example::{Example, Pair};
use lab::{Segment, Signal};

const VIP: &str = "192.0.2.50";

fn example() -> Example {
    Example::verbatim("haproxy-pair", "haproxy-pair/haproxy.cfg")
}

/// lb1 holds the VIP and answers through it.
fn elected(pair: &Pair) {
    pair.expect_serves(1, VIP, true, Duration::from_secs(10), "election");
}

/// The VIP moved to lb2 and lb2 answers through it.
fn moved_to_lb2(pair: &Pair, what: &str) {
    pair.expect_serves(2, VIP, true, Duration::from_secs(8), what);
}

#[test]
fn killing_haproxy_on_the_master_moves_the_vip() {
    let mut pair = Pair::start("exkill", &example());
    elected(&pair);
    pair.haproxy[0]
        .as_mut()
        .expect("haproxy on lb1")
        .kill(Signal::Kill)
        .expect("kill -9 haproxy on lb1");
    moved_to_lb2(&pair, "haproxy killed");
    let log = pair.log(1);
    assert!(log.contains("check=haproxy_running"), "{log}");
    let log = pair.log(2);
    assert!(
        log.contains("(fast_preempt)"),
        "lb2 took over at once: {log}"
    );
    pair.stop();
}

#[test]
fn the_master_losing_its_backend_alone_moves_the_vip() {
    let pair = Pair::start("exback", &example());
    elected(&pair);
    // Only lb1's cable to the backend segment: lb2 still reaches web1.
    pair.node(1)
        .set_segment_link(Segment::Back, false)
        .expect("cut lb1 from the backend");
    moved_to_lb2(&pair, "backend lost");
    let log = pair.log(1);
    assert!(log.contains("be_web: 0 of 1 servers usable"), "{log}");
    pair.stop();
}

#[test]
fn maintenance_on_the_masters_server_moves_the_vip() {
    let pair = Pair::start("exmaint", &example());
    elected(&pair);
    let reply = pair.admin(1, "disable server be_web/web1");
    assert!(reply.trim().is_empty(), "haproxy refused: {reply}");
    moved_to_lb2(&pair, "server in MAINT");
    let log = pair.log(1);
    assert!(log.contains("web1 MAINT"), "{log}");
    pair.stop();
}
