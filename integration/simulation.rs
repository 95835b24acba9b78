//! Deterministic simulation of 2–5 VRRP routers on one segment with a virtual clock.
//!
//! Named scenarios pin down the behaviours an operator relies on (takeover times, fast
//! preemption converging with 2 and 3 nodes, ties). The seeded sweep throws crashes,
//! restarts, graceful stops, partitions, loss, link flaps and priority changes at random
//! configurations and checks after every simulated event:
//! - always: a live router holds its VIPs exactly while it is Master;
//! - once the segment has been quiet for the settle time (Master_Down_Interval at the
//!   slowest interval and lowest skew, plus preempt_delay, plus twice the latency): exactly
//!   one Master per VRID among the routers that can be Master, and no Backup that preempts
//!   has a higher effective priority than it. (Equal priorities do not preempt a Backup:
//!   RFC 5798 §6.4.2 accepts adverts with a priority >= its own; the address tie-break
//!   applies between two Masters, see `equal_priorities_started_together_elect_the_higher_address`.)
//!
//! `VIPKEEPER_SIM_SEEDS=N` sets the sweep size (default 500); `VIPKEEPER_SIM_SEED=N`
//! replays one seed and prints its timeline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use vipkeeper::net::sim::{NodeId, SimNetwork, SimRng};
use vipkeeper::vrrp::packet::Auth;
use vipkeeper::vrrp::{Centis, EffectivePriority, Family, RouterConfig, State, Timers, Version};

const DEFAULT_SEEDS: u64 = 1000;

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn router(vrid: u8, version: Version, family: Family, priority: u8) -> RouterConfig {
    let vip = match family {
        Family::Ipv4 => v4(50 + vrid % 50),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(vrid))),
    };
    RouterConfig {
        vrid,
        version,
        family,
        priority,
        advert_interval: Centis::ONE_SECOND,
        preempt: true,
        preempt_delay: Duration::ZERO,
        fast_preempt: false,
        // Replaced by the node's address in SimNetwork::add_router.
        primary_address: v4(0),
        vips: vec![vip],
        auth: Auth::None,
        sync_member: false,
    }
}

/// A segment of nodes with one v3 router each at 100 ms, as in the benchmarks.
fn pair_v3(priorities: &[u8], fast_preempt: bool, latency: Duration) -> SimNetwork {
    let mut sim = SimNetwork::new(7, (latency, latency));
    for (index, priority) in priorities.iter().enumerate() {
        let node = sim.add_node(&format!("lb{}", index + 1), v4(11 + index as u8));
        let mut config = router(51, Version::V3, Family::Ipv4, *priority);
        config.advert_interval = Centis::new(10);
        config.fast_preempt = fast_preempt;
        sim.add_router(node, config);
    }
    sim.start_all();
    sim
}

fn settle(sim: &mut SimNetwork, duration: Duration) {
    let until = sim.now() + duration;
    sim.run_until(until, SimNetwork::check_vips_follow_state)
        .unwrap_or_else(|error| panic!("{error}\n{}", sim.timeline()));
}

/// Run until `vrid`'s Master is `node`, returning how long it took.
fn time_until_master(sim: &mut SimNetwork, node: NodeId, limit: Duration) -> Duration {
    let start = sim.now();
    let mut reached = None;
    let until = start + limit;
    let result = sim.run_until(until, |sim| {
        sim.check_vips_follow_state()?;
        if reached.is_none() && sim.masters(51) == vec![node] {
            reached = Some(sim.now());
        }
        Ok(())
    });
    result.unwrap_or_else(|error| panic!("{error}\n{}", sim.timeline()));
    match reached {
        Some(at) => at - start,
        None => panic!(
            "{} never became sole Master\n{}",
            sim.node_name(node),
            sim.timeline()
        ),
    }
}

// ===== named scenarios =====

#[test]
fn higher_priority_wins_and_a_crash_moves_the_vip_within_master_down_interval() {
    let latency = Duration::from_millis(1);
    let mut sim = pair_v3(&[150, 100], false, latency);
    settle(&mut sim, Duration::from_secs(2));
    assert_eq!(sim.masters(51), vec![0]);
    assert_eq!(sim.vip_holders(51), vec![0]);

    sim.crash(0);
    let takeover = time_until_master(&mut sim, 1, Duration::from_secs(2));
    let down = Timers::compute(Version::V3, 100, Centis::new(10)).master_down_interval;
    assert!(
        takeover <= down + latency,
        "takeover {takeover:?} > {down:?} + latency"
    );
    assert!(
        takeover >= down - Centis::new(10).as_duration(),
        "too early: {takeover:?}"
    );
    // kill -9 leaves the crashed node's addresses configured, as keepalived does.
    assert_eq!(sim.vip_holders(51), vec![0, 1]);

    // The restarted node removes its stale VIPs, waits Master_Down_Interval and preempts.
    sim.restart(0);
    assert_eq!(sim.vip_holders(51), vec![1]);
    let preempt = time_until_master(&mut sim, 0, Duration::from_secs(2));
    let down = Timers::compute(Version::V3, 150, Centis::new(10)).master_down_interval;
    assert!(preempt <= down + latency, "preempt after {preempt:?}");
    settle(&mut sim, Duration::from_millis(500));
    assert_eq!(sim.vip_holders(51), vec![0]);
}

/// Make before break: the stopping Master keeps the VIPs until it hears lb2, so some node
/// holds them at every moment; lb2 takes over within Skew_Time of the priority 0.
#[test]
fn graceful_stop_moves_the_vip_within_skew_time_and_never_drops_it() {
    let latency = Duration::from_micros(200);
    let mut sim = pair_v3(&[150, 100], false, latency);
    settle(&mut sim, Duration::from_secs(2));
    sim.stop(0);
    assert_eq!(
        sim.vip_holders(51),
        vec![0],
        "priority 0 sent, VIPs kept for now"
    );
    let start = sim.now();
    let mut taken = None;
    let mut never_dropped = true;
    let until = start + Duration::from_secs(1);
    sim.run_until(until, |sim| {
        never_dropped &= !sim.vip_holders(51).is_empty();
        if taken.is_none() && sim.masters(51) == vec![1] {
            taken = Some(sim.now() - start);
        }
        Ok(())
    })
    .expect("run");
    let takeover = taken.expect("lb2 took over");
    let skew = Timers::compute(Version::V3, 100, Centis::new(10)).skew_time;
    // lb2 is sole Master once lb1 heard it: the priority 0 and lb2's advert each cross
    // the wire once.
    assert!(
        takeover <= skew + 2 * latency,
        "takeover {takeover:?}, skew {skew:?}"
    );
    assert!(
        never_dropped,
        "a moment without any holder\n{}",
        sim.timeline()
    );
    assert_eq!(
        sim.vip_holders(51),
        vec![1],
        "lb1 released the VIPs on hearing lb2"
    );
    assert!(!sim.is_alive(0), "lb1 stopped once it heard its successor");
}

#[test]
fn without_fast_preempt_a_degraded_master_is_replaced_after_master_down_interval() {
    let latency = Duration::from_micros(200);
    let mut sim = pair_v3(&[150, 100], false, latency);
    settle(&mut sim, Duration::from_secs(2));
    sim.set_priority(0, 51, EffectivePriority::Value(90));
    let takeover = time_until_master(&mut sim, 1, Duration::from_secs(2));
    let down = Timers::compute(Version::V3, 100, Centis::new(10)).master_down_interval;
    assert!(takeover > down / 2, "took over early: {takeover:?}");
    assert!(takeover <= down + latency, "takeover {takeover:?}");
}

#[test]
fn fast_preempt_replaces_a_degraded_master_at_once_with_two_nodes() {
    let latency = Duration::from_micros(200);
    let mut sim = pair_v3(&[150, 100], true, latency);
    settle(&mut sim, Duration::from_secs(2));
    sim.set_priority(0, 51, EffectivePriority::Value(90));
    let takeover = time_until_master(&mut sim, 1, Duration::from_secs(2));
    // One advert on the wire, then the old Master hears the new one: two latencies.
    assert!(takeover <= 2 * latency, "takeover {takeover:?}");
    settle(&mut sim, Duration::from_secs(2));
    assert_eq!(sim.masters(51), vec![1]);
    assert_eq!(sim.vip_holders(51), vec![1]);
}

#[test]
fn fast_preempt_converges_with_three_nodes() {
    let latency = Duration::from_millis(2);
    let mut sim = pair_v3(&[200, 150, 100], true, latency);
    settle(&mut sim, Duration::from_secs(2));
    assert_eq!(sim.masters(51), vec![0]);
    let transitions_before = sim.stats().transitions;
    // Both Backups hear the lower priority and both take over; §6.4.3 resolves it.
    sim.set_priority(0, 51, EffectivePriority::Value(50));
    let takeover = time_until_master(&mut sim, 1, Duration::from_secs(2));
    assert!(takeover <= 3 * latency, "converged after {takeover:?}");
    settle(&mut sim, Duration::from_secs(3));
    assert_eq!(sim.masters(51), vec![1]);
    assert_eq!(sim.vip_holders(51), vec![1]);
    // No flapping: lb1 M->B, lb2 B->M, lb3 B->M->B at most.
    let transitions = sim.stats().transitions - transitions_before;
    assert!(
        transitions <= 4,
        "{transitions} transitions\n{}",
        sim.timeline()
    );
    // Recovery: lb1 preempts back.
    sim.set_priority(0, 51, EffectivePriority::Value(200));
    time_until_master(&mut sim, 0, Duration::from_secs(2));
}

/// Started together, equal priorities time out together, both advertise as Master, and
/// §6.4.3 keeps the higher address. (With zero latency the first timer processed wins and
/// the others, still Backups, accept an equal priority: §6.4.2.)
#[test]
fn equal_priorities_started_together_elect_the_higher_address() {
    for latency_ms in [1, 5] {
        let latency = Duration::from_millis(latency_ms);
        let mut sim = pair_v3(&[100, 100, 100], false, latency);
        settle(&mut sim, Duration::from_secs(2));
        assert_eq!(
            sim.masters(51),
            vec![2],
            "latency {latency:?}\n{}",
            sim.timeline()
        );
    }
}

#[test]
fn without_preempt_a_returning_higher_priority_stays_backup() {
    let mut sim = SimNetwork::new(3, (Duration::from_millis(1), Duration::from_millis(1)));
    for (index, priority) in [150u8, 100].iter().enumerate() {
        let node = sim.add_node(&format!("lb{}", index + 1), v4(11 + index as u8));
        let mut config = router(51, Version::V2, Family::Ipv4, *priority);
        config.preempt = false;
        sim.add_router(node, config);
    }
    sim.start_all();
    settle(&mut sim, Duration::from_secs(5));
    assert_eq!(sim.masters(51), vec![0]);
    sim.crash(0);
    settle(&mut sim, Duration::from_secs(5));
    assert_eq!(sim.masters(51), vec![1]);
    sim.restart(0);
    settle(&mut sim, Duration::from_secs(10));
    assert_eq!(
        sim.masters(51),
        vec![1],
        "nopreempt keeps the running Master"
    );
    assert_eq!(sim.state(0, 51), Some(State::Backup));
}

#[test]
fn a_healed_partition_leaves_one_master() {
    let mut sim = pair_v3(&[150, 100, 50], false, Duration::from_millis(1));
    settle(&mut sim, Duration::from_secs(1));
    sim.partition(&[0, 1, 1]);
    settle(&mut sim, Duration::from_secs(1));
    assert_eq!(
        sim.masters(51),
        vec![0, 1],
        "each side elects its own Master"
    );
    sim.heal();
    settle(&mut sim, Duration::from_millis(200));
    assert_eq!(sim.masters(51), vec![0]);
    assert_eq!(sim.vip_holders(51), vec![0]);
}

#[test]
fn ipv6_routers_elect_over_the_codec() {
    let mut sim = SimNetwork::new(5, (Duration::from_millis(1), Duration::from_millis(1)));
    for (index, priority) in [100u8, 200].iter().enumerate() {
        let address = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 11 + index as u16));
        let node = sim.add_node(&format!("lb{}", index + 1), address);
        sim.add_router(node, router(51, Version::V3, Family::Ipv6, *priority));
    }
    sim.start_all();
    settle(&mut sim, Duration::from_secs(6));
    assert_eq!(sim.masters(51), vec![1]);
    assert!(sim.stats().delivered > 0);
    assert_eq!(sim.stats().decode_errors, 0);
}

// ===== the seeded sweep =====

/// The knobs of one seed, drawn from the seed itself.
struct Scenario {
    latency_max: Duration,
    max_interval: Duration,
    max_preempt_delay: Duration,
}

fn build(seed: u64) -> (SimNetwork, Scenario) {
    let mut rng = SimRng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let node_count = rng.range(2, 5) as usize;
    let family = if rng.chance(25) {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    let version = if family == Family::Ipv6 || rng.chance(60) {
        Version::V3
    } else {
        Version::V2
    };
    let base_interval = match version {
        Version::V2 => Centis::from_seconds(rng.range(1, 2) as u8),
        Version::V3 => Centis::new(rng.range(5, 100) as u16),
    };
    let vrid_count = rng.range(1, 2) as u8;
    // Latency well below the interval, as on a LAN; up to a quarter interval at most.
    let latency_cap = (base_interval.as_duration() / 4).min(Duration::from_millis(20));
    let latency_max = rng.duration(Duration::ZERO, latency_cap);
    let latency_min = rng.duration(Duration::ZERO, latency_max);
    let mut sim = SimNetwork::new(rng.next_u64(), (latency_min, latency_max));

    let mut max_interval = base_interval;
    let mut max_preempt_delay = Duration::ZERO;
    for index in 0..node_count {
        let address = match family {
            Family::Ipv4 => v4(10 + index as u8),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 10 + index as u16)),
        };
        sim.add_node(&format!("n{index}"), address);
    }
    for vrid in 1..=vrid_count {
        let owner = if rng.chance(10) {
            Some(rng.range(0, node_count as u64 - 1) as usize)
        } else {
            None
        };
        let mut used: Vec<u8> = Vec::new();
        for node in 0..node_count {
            let priority = if owner == Some(node) {
                255
            } else if !used.is_empty() && rng.chance(20) {
                // Ties exercise the address tie-break.
                used[rng.range(0, used.len() as u64 - 1) as usize]
            } else {
                rng.range(1, 254) as u8
            };
            used.push(priority);
            let mut config = router(vrid, version, family, priority);
            config.advert_interval = base_interval;
            if version == Version::V3 && rng.chance(20) {
                // v3 Backups learn the Master's interval (RFC 5798 §6.4.2).
                config.advert_interval = Centis::new(rng.range(5, 100) as u16);
            }
            config.preempt = priority == 255 || rng.chance(80);
            config.fast_preempt = rng.chance(30);
            if config.preempt && rng.chance(15) {
                config.preempt_delay =
                    rng.duration(Duration::ZERO, 2 * base_interval.as_duration());
            }
            max_interval = max_interval.max(config.advert_interval);
            max_preempt_delay = max_preempt_delay.max(config.preempt_delay);
            sim.add_router(node, config);
        }
    }
    let scenario = Scenario {
        latency_max,
        max_interval: max_interval.as_duration(),
        max_preempt_delay,
    };
    (sim, scenario)
}

/// How long after the last disruption the election must have settled.
fn settle_time(sim: &SimNetwork, scenario: &Scenario) -> Duration {
    let interval = Centis::from_duration(scenario.max_interval).unwrap_or(Centis::MAX_V3);
    let mut master_down = Duration::ZERO;
    for node in 0..sim.node_count() {
        for vrid in sim.vrids() {
            if let Some(router) = sim.router(node, vrid) {
                let timers = Timers::compute(
                    router.config().version,
                    router.effective_priority(),
                    interval,
                );
                master_down = master_down.max(timers.master_down_interval);
            }
        }
    }
    let mut settle = master_down + 2 * scenario.latency_max + Duration::from_millis(1);
    if !scenario.max_preempt_delay.is_zero() {
        // The delay starts at the first lower advert heard, and the lower Master may itself
        // be elected only one Master_Down_Interval into the quiet time; after the delay the
        // preempting Backup still waits out its Master_Down_Timer.
        settle += scenario.max_preempt_delay + master_down;
    }
    settle
}

/// The converged-election invariant for every VRID.
fn check_elected(sim: &SimNetwork) -> Result<(), String> {
    sim.check_vips_follow_state()?;
    for vrid in sim.vrids() {
        let candidates: Vec<NodeId> = (0..sim.node_count())
            .filter(|&node| {
                sim.link_up(node)
                    && matches!(sim.state(node, vrid), Some(State::Backup | State::Master))
            })
            .collect();
        let masters = sim.masters(vrid);
        if candidates.is_empty() {
            if !masters.is_empty() {
                return Err(format!(
                    "vrid {vrid}: masters {masters:?} with no candidate"
                ));
            }
            continue;
        }
        let [master] = masters.as_slice() else {
            return Err(format!(
                "vrid {vrid}: masters {masters:?}, want exactly one"
            ));
        };
        let master_priority = sim
            .router(*master, vrid)
            .map(|router| router.effective_priority())
            .unwrap_or(0);
        for &node in &candidates {
            let Some(router) = sim.router(node, vrid) else {
                continue;
            };
            if node != *master
                && router.config().preempt
                && router.effective_priority() > master_priority
            {
                return Err(format!(
                    "vrid {vrid}: {} (priority {}, preempt) is Backup under Master {} \
                     (priority {master_priority})",
                    sim.node_name(node),
                    router.effective_priority(),
                    sim.node_name(*master)
                ));
            }
        }
    }
    Ok(())
}

/// One random disruption.
fn disrupt(sim: &mut SimNetwork) {
    let node_count = sim.node_count();
    let node = sim.rng().range(0, node_count as u64 - 1) as usize;
    match sim.rng().range(0, 8) {
        0 if sim.is_alive(node) => sim.crash(node),
        1 if !sim.is_alive(node) => sim.restart(node),
        2 if sim.is_alive(node) => sim.stop(node),
        3 => {
            let groups: Vec<u32> = (0..node_count)
                .map(|_| sim.rng().range(0, 1) as u32)
                .collect();
            sim.partition(&groups);
        }
        4 => {
            let percent = sim.rng().range(10, 90);
            sim.set_loss(percent);
        }
        5 => {
            let up = !sim.link_up(node);
            sim.set_link(node, up);
        }
        _ => {
            let vrids = sim.vrids();
            let vrid = vrids[sim.rng().range(0, vrids.len() as u64 - 1) as usize];
            let verdict = if sim.rng().chance(15) {
                EffectivePriority::Fault
            } else {
                EffectivePriority::Value(sim.rng().range(1, 254) as u8)
            };
            sim.set_priority(node, vrid, verdict);
        }
    }
}

/// What one seed simulated, summed over the sweep as evidence that it did real work.
#[derive(Default)]
struct Totals {
    simulated: Duration,
    adverts: u64,
    transitions: u64,
    elections_checked: u64,
}

/// Run one seed; on failure, the broken invariant and the segment's timeline.
fn run_seed(seed: u64, totals: &mut Totals) -> Result<(), (String, String)> {
    let (mut sim, scenario) = build(seed);
    sim.start_all();
    let result = drive(&mut sim, &scenario, &mut totals.elections_checked);
    totals.simulated += sim.elapsed();
    totals.adverts += sim.stats().adverts_sent;
    totals.transitions += sim.stats().transitions;
    result.map_err(|error| {
        let report = format!(
            "at {:?}\n{}{}",
            sim.elapsed(),
            sim.describe(),
            sim.timeline()
        );
        (error, report)
    })
}

fn drive(sim: &mut SimNetwork, scenario: &Scenario, checks: &mut u64) -> Result<(), String> {
    let interval = scenario.max_interval;
    for _phase in 0..5 {
        // Disruption: a few events at random moments; only the VIP ledger must hold.
        let events = sim.rng().range(1, 4);
        for _ in 0..events {
            disrupt(sim);
            let pause = sim.rng().duration(Duration::ZERO, 2 * interval);
            let until = sim.now() + pause;
            sim.run_until(until, SimNetwork::check_vips_follow_state)?;
        }
        // Quiet: the segment heals and stays still; links come back half of the time.
        sim.heal();
        sim.set_loss(0);
        if sim.rng().chance(50) {
            for node in 0..sim.node_count() {
                if !sim.link_up(node) {
                    sim.set_link(node, true);
                }
            }
        }
        let settled_at = sim.now() + settle_time(sim, scenario);
        sim.run_until(settled_at, SimNetwork::check_vips_follow_state)?;
        check_elected(sim)?;
        let observe = sim.rng().duration(interval, 3 * interval);
        let until = sim.now() + observe;
        sim.run_until(until, |sim| {
            *checks += 1;
            check_elected(sim)
        })?;
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(number) => Some(number),
        Err(_) => panic!("{name}={value:?} is not a whole number"),
    }
}

#[test]
fn seeded_sweep_converges_to_one_master() {
    if let Some(seed) = env_u64("VIPKEEPER_SIM_SEED") {
        match run_seed(seed, &mut Totals::default()) {
            Ok(()) => println!("seed {seed}: ok"),
            Err((error, timeline)) => panic!("seed {seed}: {error}\ntimeline:\n{timeline}"),
        }
        return;
    }
    let seeds = env_u64("VIPKEEPER_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let mut failures = Vec::new();
    let mut totals = Totals::default();
    for seed in 0..seeds {
        if let Err((error, _timeline)) = run_seed(seed, &mut totals) {
            failures.push(format!(
                "seed {seed}: {error}\n  replay: VIPKEEPER_SIM_SEED={seed} cargo test --test simulation seeded_sweep"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "{seeds} seeds converged: {:.0} s simulated, {} adverts, {} transitions, {} converged \
         states checked",
        totals.simulated.as_secs_f64(),
        totals.adverts,
        totals.transitions,
        totals.elections_checked
    );
    // A sweep that stopped exercising the protocol would pass vacuously.
    assert!(totals.transitions > seeds * 3 && totals.elections_checked > seeds * 10);
}

// ===== health checks in the simulation =====

use vipkeeper::health::score::{effective_priority, Track};
use vipkeeper::health::tracker::Tracker;
use vipkeeper::health::ProbeOutcome;

/// Feed one probe result through the node's tracker and score, as the daemon does, and give
/// the router a new priority only when it changes.
struct SimCheck {
    tracker: Tracker,
    weight: i32,
    base: u8,
    last: EffectivePriority,
}

impl SimCheck {
    fn new(rise: u32, fall: u32, weight: i32, base: u8) -> SimCheck {
        SimCheck {
            tracker: Tracker::new(rise, fall, false),
            weight,
            base,
            last: EffectivePriority::Value(base),
        }
    }

    fn result(&mut self, sim: &mut SimNetwork, node: NodeId, outcome: ProbeOutcome) {
        self.tracker.record(&outcome);
        let track = Track {
            weight: self.weight,
            reverse: false,
            view: self.tracker.view(),
        };
        let priority = effective_priority(self.base, &[track]);
        if priority != self.last {
            self.last = priority;
            sim.set_priority(node, 51, priority);
        }
    }
}

/// A probe alternating up and down every 100 ms on the Master, for `duration`; returns the
/// number of VRRP transitions it caused.
fn flapping_master_check(rise: u32, fall: u32, duration: Duration) -> u64 {
    // fast_preempt on both: the most sensitive setting, a Backup takes over at the first
    // lower advert (without it, flaps shorter than Master_Down_Interval never move the VIP).
    let mut sim = pair_v3(&[150, 100], true, Duration::from_millis(1));
    settle(&mut sim, Duration::from_secs(2));
    assert_eq!(sim.masters(51), vec![0]);
    let mut check = SimCheck::new(rise, fall, -60, 150);
    // Healthy first: keepalived's first result decides the state.
    check.result(&mut sim, 0, ProbeOutcome::Up);
    let before = sim.stats().transitions;
    let steps = duration.as_millis() / 100;
    for step in 0..steps {
        let outcome = if step % 2 == 0 {
            ProbeOutcome::down("flap")
        } else {
            ProbeOutcome::Up
        };
        check.result(&mut sim, 0, outcome);
        settle(&mut sim, Duration::from_millis(100));
    }
    sim.stats().transitions - before
}

#[test]
fn a_flapping_check_does_not_flap_the_vip_with_rise_and_fall_above_one() {
    let transitions = flapping_master_check(2, 2, Duration::from_secs(10));
    assert_eq!(transitions, 0, "the VIP moved on a flapping check");
}

/// The control: without hysteresis the same flapping probe does move the VIP, so the test
/// above has something to prevent.
#[test]
fn without_rise_and_fall_the_same_flapping_check_moves_the_vip() {
    let transitions = flapping_master_check(1, 1, Duration::from_secs(10));
    assert!(
        transitions > 0,
        "expected the flapping check to move the VIP"
    );
}

#[test]
fn a_failing_check_moves_the_vip_once_fall_is_reached_and_back_after_rise() {
    let mut sim = pair_v3(&[150, 100], true, Duration::from_millis(1));
    settle(&mut sim, Duration::from_secs(2));
    let mut check = SimCheck::new(3, 3, -60, 150);
    // Healthy first (keepalived's first result decides), then two failures: within fall.
    check.result(&mut sim, 0, ProbeOutcome::Up);
    for _ in 0..2 {
        check.result(&mut sim, 0, ProbeOutcome::down("HAProxy refused"));
        settle(&mut sim, Duration::from_millis(100));
    }
    assert_eq!(sim.masters(51), vec![0]);
    // The third: priority 90 < 100, lb2 (fast_preempt) takes over at once.
    check.result(&mut sim, 0, ProbeOutcome::down("HAProxy refused"));
    settle(&mut sim, Duration::from_millis(100));
    assert_eq!(sim.masters(51), vec![1], "{}", sim.timeline());
    // Recovery after rise successes: lb1 preempts back (it has fast_preempt too).
    for _ in 0..3 {
        check.result(&mut sim, 0, ProbeOutcome::Up);
        settle(&mut sim, Duration::from_millis(100));
    }
    settle(&mut sim, Duration::from_secs(1));
    assert_eq!(sim.masters(51), vec![0], "{}", sim.timeline());
    assert_eq!(sim.vip_holders(51), vec![0]);
}

// ===== sync groups =====

/// Two nodes, each running VRID 51 and 52 as one sync group: lb1 (150) holds both.
fn grouped_pair() -> SimNetwork {
    let mut sim = SimNetwork::new(11, (Duration::from_millis(1), Duration::from_millis(1)));
    for (index, priority) in [150u8, 100].iter().enumerate() {
        let node = sim.add_node(&format!("lb{}", index + 1), v4(11 + index as u8));
        for vrid in [51, 52] {
            let mut config = router(vrid, Version::V3, Family::Ipv4, *priority);
            config.advert_interval = Centis::new(10);
            sim.add_router(node, config);
        }
        sim.add_group(node, &[51, 52]);
    }
    sim.start_all();
    sim
}

#[test]
fn a_sync_group_comes_up_master_together() {
    let mut sim = grouped_pair();
    settle(&mut sim, Duration::from_secs(2));
    assert_eq!(sim.masters(51), vec![0]);
    assert_eq!(sim.masters(52), vec![0]);
}

#[test]
fn one_member_failing_takes_the_whole_group_to_the_peer() {
    let mut sim = grouped_pair();
    settle(&mut sim, Duration::from_secs(2));
    // Only VRID 51 fails on lb1 (a weight-0 check): its group goes to Fault together,
    // and lb2 becomes Master of both.
    sim.set_priority(0, 51, EffectivePriority::Fault);
    settle(&mut sim, Duration::from_secs(1));
    assert_eq!(sim.state(0, 52), Some(State::Fault), "{}", sim.timeline());
    assert_eq!(sim.masters(51), vec![1]);
    assert_eq!(sim.masters(52), vec![1]);
    // Recovery brings lb1's group back; it preempts both.
    sim.set_priority(0, 51, EffectivePriority::Value(150));
    settle(&mut sim, Duration::from_secs(2));
    assert_eq!(sim.masters(51), vec![0], "{}", sim.timeline());
    assert_eq!(sim.masters(52), vec![0]);
}

/// keepalived's rule: the group is Master only when every member wants Master. lb2's VRID
/// 52 alone outranking lb1 does not move anything while lb2's VRID 51 still accepts lb1.
#[test]
fn a_member_outranking_its_peer_alone_does_not_move_the_group() {
    let mut sim = grouped_pair();
    settle(&mut sim, Duration::from_secs(2));
    sim.set_priority(1, 52, EffectivePriority::Value(200));
    settle(&mut sim, Duration::from_secs(2));
    assert_eq!(sim.masters(51), vec![0], "{}", sim.timeline());
    assert_eq!(sim.masters(52), vec![0], "{}", sim.timeline());
    assert!(sim
        .router(1, 52)
        .is_some_and(|router| router.wants_master()));
}

/// Both groups are Master while partitioned; healed, lb2's VRID 51 hears the higher
/// priority and steps down, and its group takes VRID 52 down with it.
#[test]
fn one_member_stepping_down_takes_the_other_with_it() {
    let mut sim = grouped_pair();
    settle(&mut sim, Duration::from_secs(2));
    sim.partition(&[0, 1]);
    settle(&mut sim, Duration::from_secs(1));
    assert_eq!(sim.masters(51), vec![0, 1]);
    assert_eq!(sim.masters(52), vec![0, 1]);
    sim.heal();
    settle(&mut sim, Duration::from_secs(1));
    assert_eq!(sim.masters(51), vec![0], "{}", sim.timeline());
    assert_eq!(sim.masters(52), vec![0], "{}", sim.timeline());
    assert_eq!(sim.vip_holders(51), vec![0]);
    assert_eq!(sim.vip_holders(52), vec![0]);
    // One of lb2's members heard lb1 first; the other followed through the group.
    assert!(
        sim.timeline().contains("MASTER -> BACKUP (sync group)"),
        "{}",
        sim.timeline()
    );
}
