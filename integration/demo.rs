//! The demo (`scripts/demo`): an HAProxy pair held by vipkeeper fails over, live.
//!
//! A namespace lab (integration/lab, docs/lab.md) with two load balancers (haproxy and
//! vipkeeper each), one backend (haproxy returning a fixed answer) and one client that asks
//! for `http://192.0.2.50/` every 10 ms from a thread that has entered the client's network
//! namespace. The demo elects lb1, pulls lb1's cable, prints the timeline of the failover
//! (client requests and the daemons' own `transition` log lines) and the client-visible
//! outage, plugs lb1 back, shows the preemption, and removes everything.
//!
//! Usage: `demo PATH/TO/vipkeeper` (as root; `scripts/demo` builds and runs it). Exit 0 only
//! if lb2 served during the outage and lb1 served again after the preemption.
//!
//! Nothing runs in the root network namespace: daemons run inside lab hosts, and the client
//! thread refuses to send anything unless its `setns` into the client's namespace worked.

#[path = "lab/mod.rs"]
mod lab;
#[path = "pair/mod.rs"]
mod pair;

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::Lab;
use pair::{
    fmt_duration, install_signal_handlers, ip_netns_list, ms, now_us, pause, vipkeeper_config,
    wait_until, Client, Clock, Daemons, Sample, Transition, ADVERT, LB1_PRIORITY, LB2_PRIORITY,
    VIP, VRID,
};
use vipkeeper::vrrp::{Timers, Version};

/// How long the pair runs undisturbed before and after each event.
const STEADY: Duration = Duration::from_millis(1000);
/// Bound on each wait for the pair to do something (election, takeover, preemption).
const PHASE_LIMIT: Duration = Duration::from_secs(5);
/// Bound on the first election, which includes haproxy starting.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let Some(bin) = std::env::args().nth(1) else {
        eprintln!("usage: demo PATH/TO/vipkeeper   (scripts/demo builds and runs it)");
        return ExitCode::from(2);
    };
    let bin = match fs::canonicalize(&bin) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("demo: {bin}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = install_signal_handlers() {
        eprintln!("demo: cannot install signal handlers: {e}");
        return ExitCode::from(2);
    }
    match run(&bin) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            println!("\nInterrupted: the lab has been removed.");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("\ndemo failed: {e}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Printing.

fn header() {
    let timers = Timers::compute(Version::V3, LB2_PRIORITY, ADVERT);
    println!(
        r#"vipkeeper demo: an HAProxy pair loses its Master, live
======================================================

          client 192.0.2.100: GET http://{VIP}/ every 10 ms
                 |
   --------------+-- switch, front 192.0.2.0/24 ---+----------------
                 |                                  |
          lb1 192.0.2.11                      lb2 192.0.2.12
          haproxy :80                         haproxy :80
          vipkeeper priority {LB1_PRIORITY}              vipkeeper priority {LB2_PRIORITY}
                 |                                  |
   --------------+-- switch, back 198.51.100.0/24 -+----------------
                 |
          backend 198.51.100.200: haproxy :8080, "hello from the backend"

   VIP {VIP}: VRRP v3, VRID {VRID}, an advert every {} ms; the Master holds it.
   lb2 declares a silent Master dead after {} (Master_Down_Interval).

Plan: elect lb1, pull lb1's cable (its link goes down, as a dead node's would), watch
lb2 take over, plug lb1 back, watch it preempt. Everything runs in network namespaces
that this demo creates and removes; nothing touches the machine's own network.
"#,
        ADVERT.get() as u32 * 10,
        fmt_duration(timers.master_down_interval),
    );
}

fn timeline(title: &str, mut rows: Vec<(i64, String)>) {
    rows.sort_by_key(|(at, _)| *at);
    println!("\n  {title}");
    for (at, text) in rows {
        println!("    {at:>+7} ms  {text}");
    }
}

fn transition_row(t: &Transition, origin: i64) -> (i64, String) {
    (
        ms(origin, t.at),
        format!(
            "{}  {} -> {}  ({}; vipkeeper log)",
            t.node, t.from, t.to, t.reason
        ),
    )
}

// ---------------------------------------------------------------------------------------
// The demo.

fn run(bin: &Path) -> io::Result<bool> {
    header();
    let clock = Clock(Instant::now());
    let lab = Lab::builder("demo")
        .nodes(2)
        .client(true)
        .backend(true)
        // If this process is SIGKILLed, the hosts still stop on their own.
        .max_lifetime(Duration::from_secs(120))
        .build()
        .map_err(|e| io::Error::new(e.kind(), format!("building the lab: {e}")))?;
    let namespaces = lab.namespaces();
    clock.say(&format!(
        "lab up: {} network namespaces (switch, lb1, lb2, client, backend)",
        namespaces.len()
    ));
    let mut daemons = Daemons { list: Vec::new() };
    let mut result = demo(&lab, bin, &clock, &mut daemons);
    match &result {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(_) | Ok(false) => {
            if let Err(e) = &result {
                println!("\nFAIL: {e}");
                result = Ok(false);
            }
            eprintln!("\n--- what the lab looked like (lab diagnostics) ---");
            for node in ["lb1", "lb2"] {
                eprintln!("--- {node} vipkeeper log\n{}", daemons.vipkeeper_log(node));
            }
            eprintln!("{}", lab.diagnostics());
        }
        Ok(true) => {}
    }
    drop(daemons);
    drop(lab);
    let left: Vec<String> = ip_netns_list()
        .into_iter()
        .filter(|ns| namespaces.contains(ns))
        .collect();
    if left.is_empty() {
        clock.say("cleaned up: every process stopped, every namespace removed");
    } else {
        eprintln!("cleanup left namespaces behind: {left:?}");
    }
    result
}

fn demo(lab: &Lab, bin: &Path, clock: &Clock, daemons: &mut Daemons) -> io::Result<bool> {
    let bin = bin
        .to_str()
        .ok_or_else(|| io::Error::other("binary path"))?;
    daemons.start_haproxies(lab)?;
    let started = now_us();
    daemons.start_vipkeepers(lab, bin, |name, priority| {
        vipkeeper_config(name, priority, "", "")
    })?;
    clock.say("started haproxy on backend, lb1 and lb2, then vipkeeper on lb1 and lb2");
    let mut client = Client::start(lab.client())?;

    // 1. Election: lb1 (priority 150) becomes Master and the client gets lb1's answers.
    let elected = wait_until(STARTUP_LIMIT, daemons, &mut client, |samples, log| {
        let steady = samples.iter().rev().take(5);
        samples.len() >= 5
            && steady.clone().all(|s| s.by("lb1"))
            && log.iter().any(|t| t.node == "lb1" && t.to == "MASTER")
    })?;
    if elected.is_none() {
        return Err(io::Error::other(format!(
            "lb1 did not become Master and serve the client within {STARTUP_LIMIT:?}"
        )));
    }
    let log = daemons.transitions();
    let lb1_master = log
        .iter()
        .find(|t| t.node == "lb1" && t.to == "MASTER")
        .map(|t| t.at)
        .unwrap_or(started);
    let first_lb1 = client
        .samples()
        .iter()
        .filter(|s| s.by("lb1"))
        .map(|s| s.done)
        .min()
        .unwrap_or(started);
    clock.say(&format!(
        "lb1 is MASTER after {} ms ({});\n           the client's first answer from lb1 arrived at {} ms",
        ms(started, lb1_master),
        log.iter()
            .find(|t| t.node == "lb1" && t.to == "MASTER")
            .map(|t| format!("{} -> {}: {}", t.from, t.to, t.reason))
            .unwrap_or_default(),
        ms(started, first_lb1),
    ));

    // 2. Steady state.
    let steady_from = now_us();
    pause(STEADY)?;
    daemons.check()?;
    let steady: Vec<Sample> = client
        .samples()
        .into_iter()
        .filter(|s| s.sent >= steady_from)
        .collect();
    clock.say(&format!(
        "steady: {} requests in {} ms, {} served by lb1, {} failed",
        steady.len(),
        STEADY.as_millis(),
        steady.iter().filter(|s| s.by("lb1")).count(),
        steady.iter().filter(|s| !s.ok()).count(),
    ));

    // 3. Pull lb1's cable, at a random moment between two of its adverts: the election
    // fixed their phase, and a fixed pause would always pull at the same point of it.
    let interval = u64::from(ADVERT.get()) * 10;
    let jitter = u64::from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_micros()),
    ) % (interval * 1000);
    pause(Duration::from_micros(jitter))?;
    clock.say("pulling lb1's cable (its switch ports go down)");
    let pulled = now_us();
    lab.node(1).set_link(false)?;
    let pull_took = ms(pulled, now_us());
    let took_over = wait_until(PHASE_LIMIT, daemons, &mut client, |samples, _| {
        samples.iter().any(|s| s.sent >= pulled && s.by("lb2"))
    })?;
    if took_over.is_some() {
        let answered = client
            .samples()
            .iter()
            .filter(|s| s.sent >= pulled && s.by("lb2"))
            .map(|s| s.done)
            .min()
            .unwrap_or(pulled);
        clock.say(&format!(
            "lb2 answers the client ({} ms after the pull); letting it run",
            ms(pulled, answered)
        ));
        pause(STEADY)?;
    } else {
        clock.say(&format!(
            "lb2 did not answer within {} s",
            PHASE_LIMIT.as_secs()
        ));
    }

    // 4. Plug it back: lb1 preempts after its own Master_Down_Interval.
    clock.say("plugging lb1's cable back in");
    let plugged = now_us();
    lab.node(1).set_link(true)?;
    let preempted = wait_until(PHASE_LIMIT, daemons, &mut client, |samples, log| {
        samples.iter().any(|s| s.sent >= plugged && s.by("lb1"))
            && log
                .iter()
                .any(|t| t.at >= plugged && t.node == "lb2" && t.from == "MASTER")
    })?;
    if preempted.is_some() {
        clock.say("lb1 answers the client again; letting it run");
        pause(STEADY)?;
    } else {
        clock.say(&format!(
            "lb1 did not take the VIP back within {} s",
            PHASE_LIMIT.as_secs()
        ));
    }
    let ended = now_us();
    client.finish()?;
    daemons.check()?;
    clock.say("client stopped");

    Ok(report(
        &client.samples(),
        &daemons.transitions(),
        Marks {
            started,
            steady_from,
            pulled,
            pull_took,
            plugged,
            ended,
        },
    ))
}

struct Marks {
    started: i64,
    steady_from: i64,
    pulled: i64,
    pull_took: i64,
    plugged: i64,
    ended: i64,
}

/// Prints the timelines and the summary; whether the demo passed.
fn report(samples: &[Sample], log: &[Transition], m: Marks) -> bool {
    let timers = Timers::compute(Version::V3, LB2_PRIORITY, ADVERT);
    let lb1_timers = Timers::compute(Version::V3, LB1_PRIORITY, ADVERT);
    let mut failures = Vec::new();

    // Failover: from the last answer before the gap to lb2's first answer.
    let failover: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= m.steady_from && s.sent < m.plugged)
        .collect();
    let first_lb2 = failover
        .iter()
        .find(|s| s.sent >= m.pulled && s.by("lb2"))
        .copied();
    let mut outage = None;
    let mut rows = vec![(
        0,
        format!(
            "lb1's cable pulled (the `ip link set down` took {} ms)",
            m.pull_took
        ),
    )];
    let in_window = |t: &&Transition| t.at >= m.pulled && t.at < m.plugged;
    rows.extend(
        log.iter()
            .filter(in_window)
            .map(|t| transition_row(t, m.pulled)),
    );
    // lb2 became Master one Master_Down_Interval after the last advert it heard.
    if let Some(takeover) = log
        .iter()
        .filter(in_window)
        .find(|t| t.node == "lb2" && t.to == "MASTER" && t.reason.starts_with("master down"))
    {
        let heard = takeover.at - timers.master_down_interval.as_micros() as i64;
        rows.push((
            ms(m.pulled, heard),
            format!(
                "lb1's last advert heard by lb2 (its takeover minus Master_Down_Interval {})",
                fmt_duration(timers.master_down_interval)
            ),
        ));
    }
    if let Some(first_lb2) = first_lb2 {
        let last_ok = failover
            .iter()
            .rev()
            .find(|s| s.sent < first_lb2.sent && s.ok())
            .copied();
        let origin = last_ok.map_or(m.pulled, |s| s.sent);
        let gap: Vec<&Sample> = failover
            .iter()
            .filter(|s| s.sent > origin && s.sent < first_lb2.sent)
            .copied()
            .collect();
        let failed = gap.iter().filter(|s| !s.ok()).count();
        if let Some(last_ok) = last_ok {
            rows.push((
                ms(m.pulled, last_ok.sent),
                format!(
                    "last request answered before the gap (by {})",
                    last_ok.served_by.as_deref().unwrap_or("?")
                ),
            ));
        }
        if let Some(first_fail) = gap.iter().find(|s| !s.ok()) {
            rows.push((
                ms(m.pulled, first_fail.sent),
                format!(
                    "first failed request ({})",
                    first_fail.error.as_deref().unwrap_or("?")
                ),
            ));
        }
        rows.push((
            ms(m.pulled, first_lb2.sent),
            format!(
                "first request answered by lb2 (answered in {:.1} ms)",
                (first_lb2.done - first_lb2.sent) as f64 / 1000.0
            ),
        ));
        outage = Some((ms(origin, first_lb2.sent), failed));
    } else {
        failures.push("lb2 never answered the client while lb1's cable was out".to_owned());
    }
    timeline("Failover timeline (ms after the cable pull)", rows);
    let down = timers.master_down_interval;
    // lb1's last advert left at most one interval before the pull.
    let earliest = down.saturating_sub(Duration::from_millis(u64::from(ADVERT.get()) * 10));
    let expected = format!(
        "{:.1}-{}",
        earliest.as_secs_f64() * 1000.0,
        fmt_duration(down)
    );
    println!(
        "\n  Client-visible outage: {}",
        match outage {
            Some((gap, failed)) => format!(
                "{gap} ms (last answer before the gap to lb2's first answer), {failed} request{} failed",
                if failed == 1 { "" } else { "s" }
            ),
            None => "lb2 never answered".to_owned(),
        }
    );
    println!(
        "  Protocol expectation: Master_Down_Interval at priority {LB2_PRIORITY} with {} ms adverts\n    = 3 x {} ms + Skew_Time {} = {},\n    counted from lb1's last advert, which left 0-{} ms before the pull:\n    lb2 takes over {} after the pull, then announces the VIP (gratuitous ARP).",
        ADVERT.get() as u32 * 10,
        ADVERT.get() as u32 * 10,
        fmt_duration(timers.skew_time),
        fmt_duration(down),
        ADVERT.get() as u32 * 10,
        expected,
    );

    // Preemption: lb1 is back after its own Master_Down_Interval.
    let back: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= m.plugged && s.sent < m.ended)
        .collect();
    let first_lb1 = back.iter().find(|s| s.by("lb1")).copied();
    let mut rows = vec![(0, "lb1's cable plugged back in".to_owned())];
    rows.extend(
        log.iter()
            .filter(|t| t.at >= m.plugged)
            .map(|t| transition_row(t, m.plugged)),
    );
    let back_failed = back.iter().filter(|s| !s.ok()).count();
    if let Some(first_lb1) = first_lb1 {
        rows.push((
            ms(m.plugged, first_lb1.sent),
            format!(
                "first request answered by lb1 again (answered in {:.1} ms)",
                (first_lb1.done - first_lb1.sent) as f64 / 1000.0
            ),
        ));
    } else {
        failures.push("lb1 did not answer the client again after its cable came back".to_owned());
    }
    if let Some(fail) = back.iter().find(|s| !s.ok()) {
        rows.push((
            ms(m.plugged, fail.sent),
            format!(
                "first failed request ({})",
                fail.error.as_deref().unwrap_or("?")
            ),
        ));
    }
    timeline("Preemption timeline (ms after the cable is back)", rows);
    println!(
        "\n  lb1 (priority {LB1_PRIORITY}) waits its own Master_Down_Interval, {}, hearing lb2's\n  lower-priority adverts, then preempts. Requests failed during the move back: {back_failed}.",
        fmt_duration(lb1_timers.master_down_interval)
    );

    // Summary.
    let counted: Vec<&Sample> = samples.iter().filter(|s| s.sent >= m.steady_from).collect();
    let by = |node: &str| counted.iter().filter(|s| s.by(node)).count();
    let lb2_during = failover.iter().filter(|s| s.by("lb2")).count();
    let lb1_master = log
        .iter()
        .find(|t| t.node == "lb1" && t.to == "MASTER")
        .map(|t| format!("{} ms after start", ms(m.started, t.at)))
        .unwrap_or_else(|| "never".into());
    println!("\n  Summary");
    println!("    {:<34} {lb1_master}", "lb1 elected MASTER");
    println!(
        "    {:<34} {}",
        "failover outage (client-visible)",
        outage.map_or("no failover".to_owned(), |(gap, failed)| format!(
            "{gap} ms, {failed} requests failed"
        ))
    );
    println!(
        "    {:<34} lb2 takes over {expected} after the pull",
        "protocol expectation"
    );
    println!(
        "    {:<34} {lb2_during} requests",
        "answered by lb2 while lb1 was out"
    );
    println!(
        "    {:<34} {}",
        "preemption, lb1 answers again",
        first_lb1.map_or("never".to_owned(), |s| format!(
            "{} ms after the plug, {back_failed} failed requests",
            ms(m.plugged, s.sent)
        ))
    );
    println!(
        "    {:<34} {} sent, {} by lb1, {} by lb2, {} failed",
        "requests (from steady state on)",
        counted.len(),
        by("lb1"),
        by("lb2"),
        counted.iter().filter(|s| !s.ok()).count()
    );
    if lb2_during == 0 && first_lb2.is_some() {
        failures.push("lb2 did not serve during the outage".to_owned());
    }
    println!();
    if failures.is_empty() {
        println!("PASS: lb2 took over while lb1 was off the network, and lb1 took the VIP back.");
        true
    } else {
        let mut text = String::from("FAIL:");
        for failure in &failures {
            let _ = write!(text, "\n  - {failure}");
        }
        println!("{text}");
        false
    }
}
