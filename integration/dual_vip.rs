//! examples/dual-vip run as shipped in the namespace lab: lb1.toml and lb2.toml unchanged,
//! both nodes running examples/haproxy-pair/haproxy.cfg (the example reuses it), the HTTP
//! backend at 198.51.100.200:8080. Each VIP is checked from the client: on its node only,
//! and an HTTP request through it answered by that node's HAProxy (`X-Served-By`).
//!
//! - A dead lb1 (vipkeeper and HAProxy SIGKILLed, its cable pulled): lb2 serves both VIPs.
//!   Recovery as after a reboot (daemons started again, which removes the stale VIPs the
//!   SIGKILL left behind, and the cable back): each VIP returns to its home node.
//! - lb1's HAProxy alone killed (the shared `haproxy_running` check): only lb1's VIP moves;
//!   HAProxy started again, it comes back after the example's preempt_delay (5 s).
//!
//! Bounds: lb2 declares lb1 dead after Master_Down_Interval (3.6 s at 1 s adverts), a
//! return home takes preempt_delay (5 s) plus an advert; the waits allow about twice that.

#[path = "pair/example.rs"]
mod example;
#[path = "lab/mod.rs"]
mod lab;

use std::time::Duration;

use example::{wait_for, Example, Pair};
use lab::Signal;

const VIP_A: &str = "192.0.2.50"; // home: lb1
const VIP_B: &str = "192.0.2.60"; // home: lb2

fn example() -> Example {
    Example::verbatim("dual-vip", "haproxy-pair/haproxy.cfg")
}

/// Each VIP on its home node, each answered by that node.
fn at_home(pair: &Pair, limit: Duration, what: &str) {
    pair.expect_serves(1, VIP_A, true, limit, what);
    pair.expect_serves(2, VIP_B, true, limit, what);
}

#[test]
fn a_dead_node_leaves_both_vips_on_the_survivor_and_recovery_sends_each_home() {
    let mut pair = Pair::start("dualdead", &example());
    at_home(&pair, Duration::from_secs(12), "start");

    // lb1 dies: no vipkeeper to resign, no HAProxy, no link.
    pair.kill_node_daemons(1);
    pair.node(1).set_link(false).expect("pull lb1's cable");
    // lb1's eth0 still has both VIPs (nothing removed them), but its cable is out: only
    // lb2 is on the wire.
    let survivor = pair.node(2).name().to_owned();
    let took_over = wait_for(Duration::from_secs(8), || {
        [VIP_A, VIP_B].iter().all(|vip| {
            pair.holds(2, vip) && pair.served_by(vip).as_deref() == Some(survivor.as_str())
        })
    });
    assert!(
        took_over,
        "lb2 does not serve both VIPs\n{}",
        pair.explain()
    );
    let log = pair.log(2);
    assert!(
        log.contains("instance=web_a vrid=51 iface=eth0 from=BACKUP to=MASTER reason=master down"),
        "lb2 took web_a over when lb1 fell silent: {log}"
    );

    // lb1 boots again: HAProxy, then vipkeeper (which first removes the VIPs the SIGKILL
    // left on eth0), then the cable.
    pair.start_haproxy(1);
    pair.start_vipkeeper(1);
    let cleaned = wait_for(Duration::from_secs(5), || {
        !pair.holds(1, VIP_A) && !pair.holds(1, VIP_B)
    });
    assert!(cleaned, "stale VIPs left on lb1\n{}", pair.explain());
    pair.node(1).set_link(true).expect("plug lb1's cable");
    at_home(&pair, Duration::from_secs(15), "lb1 back");
    pair.stop();
}

#[test]
fn the_shared_haproxy_check_moves_only_the_sick_nodes_vip_and_it_returns() {
    let mut pair = Pair::start("dualhap", &example());
    at_home(&pair, Duration::from_secs(12), "start");

    pair.haproxy[0]
        .as_mut()
        .expect("haproxy on lb1")
        .kill(Signal::Kill)
        .expect("kill -9 haproxy on lb1");
    // fast_preempt: lb2 takes web_a at lb1's first advert at 90.
    pair.expect_serves(2, VIP_A, true, Duration::from_secs(5), "lb1 haproxy dead");
    pair.expect_serves(2, VIP_B, true, Duration::from_secs(1), "lb1 haproxy dead");
    let log = pair.log(1);
    assert!(log.contains("check=haproxy_running"), "{log}");
    let log = pair.log(2);
    assert!(
        log.contains("(fast_preempt)"),
        "lb2 took web_a at once: {log}"
    );

    pair.start_haproxy(1);
    at_home(&pair, Duration::from_secs(15), "lb1 haproxy back");
    pair.stop();
}
