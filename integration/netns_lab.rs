//! The namespace lab itself: the virtual LAN carries IPv4 and IPv6, hosts are isolated like
//! separate machines (PID, mount, UTS namespaces), pulled cables cut a node off, and nothing
//! of a lab survives its drop, a panic in the test, or a crashed earlier owner.
//!
//! Needs root (network namespaces); `scripts/test` runs it as root.

#[path = "lab/mod.rs"]
mod lab;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use lab::{Lab, Segment, Signal};

const PING_WAIT: Duration = Duration::from_millis(500);
const RUN: Duration = Duration::from_secs(5);

fn netns_list() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list runs");
    assert!(
        out.status.success(),
        "ip netns list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Whether a pid exists as a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Asserts that none of `namespaces` is registered and none of `pids` runs.
fn assert_gone(namespaces: &[String], pids: &[u32]) {
    assert!(
        !namespaces.is_empty() && !pids.is_empty(),
        "nothing recorded to check"
    );
    let listed = netns_list();
    for ns in namespaces {
        assert!(!listed.contains(ns), "namespace {ns} survived: {listed:?}");
    }
    for &pid in pids {
        assert!(!alive(pid), "pid {pid} survived");
    }
}

/// Pings until answered, for at most `limit` (a re-plugged link may take a moment).
fn ping_within(host: &lab::Host, addr: IpAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if host.ping(addr, PING_WAIT).expect("ping runs") {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

#[test]
fn client_pings_every_node_and_nodes_ping_each_other() {
    let lab = Lab::builder("pings").nodes(2).build().expect("lab builds");
    let client = lab.client();
    assert_eq!(client.ipv4().to_string(), "192.0.2.100");
    assert_eq!(client.ipv6().to_string(), "2001:db8::100");
    for node in lab.nodes() {
        for addr in node.addresses() {
            assert!(
                client.ping(addr, PING_WAIT).expect("ping runs"),
                "client cannot ping {} at {addr}",
                node.name()
            );
        }
    }
    let (one, two) = (lab.node(1), lab.node(2));
    assert_eq!(
        one.addresses(),
        [
            "192.0.2.11".parse::<IpAddr>().unwrap(),
            "2001:db8::11".parse().unwrap()
        ]
    );
    assert!(one
        .ping(IpAddr::V4(two.ipv4()), PING_WAIT)
        .expect("ping runs"));
    assert!(one
        .ping(IpAddr::V6(two.ipv6()), PING_WAIT)
        .expect("ping runs"));
    // Link-local works too (VRRPv3 over IPv6 advertises from it).
    let ll = two
        .link_local(Segment::Front)
        .expect("node2 has a link-local address");
    let out = one
        .run(
            &[
                "ping",
                "-n",
                "-q",
                "-c",
                "1",
                "-W",
                "0.5",
                &format!("{ll}%eth0"),
            ],
            RUN,
        )
        .expect("ping runs");
    assert!(
        out.status.success(),
        "node1 cannot ping {ll}%eth0: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn backend_sits_on_the_back_segment() {
    let lab = Lab::builder("backend")
        .nodes(1)
        .backend(true)
        .build()
        .expect("lab builds");
    let backend = lab.backend();
    assert_eq!(backend.ipv4().to_string(), "198.51.100.200");
    let node = lab.node(1);
    let back = node
        .leg(Segment::Back)
        .expect("a node has a back leg when there is a backend");
    assert_eq!(
        (back.iface.as_str(), back.ipv4.to_string()),
        ("eth1", "198.51.100.11".to_owned())
    );
    assert!(node
        .ping(IpAddr::V4(backend.ipv4()), PING_WAIT)
        .expect("ping runs"));
    assert!(node
        .ping(IpAddr::V6(backend.ipv6()), PING_WAIT)
        .expect("ping runs"));
    // No router between the segments: the client cannot reach the backend directly.
    let out = lab
        .client()
        .run(
            &["ping", "-n", "-q", "-c", "1", "-W", "0.3", "198.51.100.200"],
            RUN,
        )
        .expect("runs");
    assert!(
        !out.status.success(),
        "client reached the backend without a proxy"
    );
}

#[test]
fn nodes_have_their_own_pid_mount_and_uts_namespaces() {
    let lab = Lab::builder("isolation")
        .nodes(2)
        .client(false)
        .build()
        .expect("lab builds");
    let (one, two) = (lab.node(1), lab.node(2));

    // A unique argument so only our sleep matches, wherever it is looked for.
    let mut sleeper = one.spawn(&["sleep", "37.25"], &[]).expect("spawn on node1");
    let pid = sleeper
        .pid()
        .expect("sleep runs long enough to have its pid read");
    let host_cmdline =
        std::fs::read(format!("/proc/{pid}/cmdline")).expect("pid visible from the host");
    assert_eq!(host_cmdline, b"sleep\x0037.25\x00");

    let on_one = one
        .run(&["pgrep", "-x", "-f", "sleep 37.25"], RUN)
        .expect("pgrep runs");
    assert!(
        on_one.status.success(),
        "node1 does not see its own process"
    );
    let inner_pid: u32 = String::from_utf8_lossy(&on_one.stdout)
        .trim()
        .parse()
        .expect("pgrep prints one pid");
    assert_ne!(inner_pid, pid, "node1 has its own pid numbering");
    let on_two = two
        .run(&["pgrep", "-x", "-f", "sleep 37.25"], RUN)
        .expect("runs");
    assert_eq!(
        on_two.status.code(),
        Some(1),
        "node2 sees node1's process: {:?}",
        on_two.stdout
    );
    let init = two
        .run_ok(&["cat", "/proc/1/comm"], RUN)
        .expect("node2 has a pid 1");
    assert_eq!(init.trim(), "sh", "pid 1 of a node is its lab init");

    // Private /run and /tmp.
    for dir in ["/run", "/tmp"] {
        let probe = format!("{dir}/vipkeeper-lab-probe");
        one.run_ok(&["sh", "-c", &format!("echo node1 > {probe}")], RUN)
            .expect("write on node1");
        assert_eq!(
            one.run_ok(&["cat", &probe], RUN)
                .expect("read back on node1"),
            "node1\n"
        );
        assert_eq!(
            one.read_file(Path::new(&probe))
                .expect("visible through /proc/pid/root"),
            b"node1\n"
        );
        let seen = two.run(&["test", "-e", &probe], RUN).expect("test runs");
        assert!(!seen.status.success(), "node2 sees node1's {probe}");
        assert!(!Path::new(&probe).exists(), "{probe} leaked to the machine");
    }
    two.write_file(Path::new("/run/haproxy.pid"), b"42\n")
        .expect("write into node2");
    assert_eq!(
        two.run_ok(&["cat", "/run/haproxy.pid"], RUN)
            .expect("read in node2"),
        "42\n"
    );
    assert!(
        one.run(&["test", "-e", "/run/haproxy.pid"], RUN)
            .expect("runs")
            .status
            .code()
            == Some(1)
    );

    assert_eq!(
        one.run_ok(&["hostname"], RUN).expect("hostname").trim(),
        "node1"
    );
    assert_eq!(
        two.run_ok(&["hostname"], RUN).expect("hostname").trim(),
        "node2"
    );

    // Signals reach the program itself, and its status comes back through nsenter.
    assert!(sleeper.kill(Signal::Term).expect("signal sent"));
    let status = sleeper
        .wait_timeout(Duration::from_secs(2))
        .expect("wait")
        .expect("sleep exits on TERM");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "{status}");
    assert!(!alive(pid));
    assert!(
        !sleeper
            .kill(Signal::Term)
            .expect("no error on an exited process"),
        "nothing to signal"
    );
}

#[test]
fn spawned_output_goes_to_log_files_and_env_is_passed() {
    let lab = Lab::builder("logs")
        .nodes(1)
        .client(false)
        .build()
        .expect("lab builds");
    let mut p = lab
        .node(1)
        .spawn(
            &["sh", "-c", "echo out=$LAB_PROBE; echo err >&2; exit 3"],
            &[("LAB_PROBE", "xyz")],
        )
        .expect("spawn");
    let status = p
        .wait_timeout(Duration::from_secs(3))
        .expect("wait")
        .expect("exits");
    assert_eq!(status.code(), Some(3));
    assert_eq!(p.stdout(), "out=xyz\n");
    assert_eq!(p.stderr(), "err\n");
    assert!(p.stdout_path().starts_with(lab.dir()));
    assert!(
        lab.diagnostics().contains("out=xyz"),
        "diagnostics include process logs"
    );
    let err = lab
        .node(1)
        .run(&["sleep", "5"], Duration::from_millis(200))
        .expect_err("run is bounded");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn pulled_cable_makes_a_node_unreachable_until_plugged_back() {
    let lab = Lab::builder("link").nodes(2).build().expect("lab builds");
    let (client, one, two) = (lab.client(), lab.node(1), lab.node(2));
    for addr in one.addresses() {
        assert!(
            client.ping(addr, PING_WAIT).expect("ping runs"),
            "{addr} reachable before"
        );
    }
    one.set_link(false).expect("pull node1's cable");
    let carrier = one
        .run_ok(&["cat", "/sys/class/net/eth0/carrier"], RUN)
        .expect("read carrier");
    assert_eq!(carrier.trim(), "0", "node1 sees its link down");
    for addr in one.addresses() {
        assert!(
            !client
                .ping(addr, Duration::from_millis(300))
                .expect("ping runs"),
            "{addr} still answers"
        );
    }
    assert!(
        client
            .ping(IpAddr::V4(two.ipv4()), PING_WAIT)
            .expect("ping runs"),
        "node2 unaffected"
    );
    one.set_link(true).expect("plug node1's cable back");
    for addr in one.addresses() {
        assert!(
            ping_within(client, addr, Duration::from_secs(3)),
            "{addr} not reachable again"
        );
    }
}

#[test]
fn crash_kills_every_process_of_a_node_only() {
    let lab = Lab::builder("crash")
        .nodes(2)
        .client(false)
        .build()
        .expect("lab builds");
    let mut a = lab.node(1).spawn(&["sleep", "30"], &[]).expect("spawn");
    // A daemon that forks away from its starter is still the node's.
    lab.node(1)
        .run_ok(&["sh", "-c", "sleep 31.125 >/dev/null 2>&1 &"], RUN)
        .expect("background sleep");
    let mut b = lab.node(2).spawn(&["sleep", "30"], &[]).expect("spawn");
    let init = lab.node(1).init_pid();
    lab.node(1).crash().expect("crash node1");
    assert!(!lab.node(1).is_up());
    assert!(!alive(init));
    assert!(
        a.wait_timeout(Duration::from_secs(2))
            .expect("wait")
            .is_some(),
        "node1's process died"
    );
    let stray = Command::new("pgrep")
        .args(["-x", "-f", "sleep 31.125"])
        .output()
        .expect("pgrep");
    assert!(!stray.status.success(), "the forked-away process survived");
    assert!(b.is_running(), "node2's process is untouched");
    assert!(lab.node(2).is_up());
}

#[test]
fn dropping_a_lab_removes_its_namespaces_and_processes() {
    let lab = Lab::builder("drop")
        .nodes(2)
        .backend(true)
        .build()
        .expect("lab builds");
    let p = lab.node(1).spawn(&["sleep", "30"], &[]).expect("spawn");
    let _q = lab.client().spawn(&["sleep", "30"], &[]).expect("spawn");
    let namespaces = lab.namespaces();
    assert_eq!(
        namespaces.len(),
        5,
        "switch, 2 nodes, client, backend: {namespaces:?}"
    );
    let listed = netns_list();
    assert!(namespaces.iter().all(|ns| listed.contains(ns)));
    let pids = lab.pids();
    assert_eq!(pids.len(), 4 + 2, "4 inits and 2 processes: {pids:?}");
    let dir = lab.dir().to_owned();
    // The lab goes first, with processes still running: its teardown must not depend on them.
    drop(lab);
    assert_gone(&namespaces, &pids);
    assert!(!dir.exists(), "lab dir {} survived", dir.display());
    drop(p);
}

#[test]
fn a_panicking_test_still_removes_its_lab() {
    let recorded: Mutex<(Vec<String>, Vec<u32>)> = Mutex::new((Vec::new(), Vec::new()));
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::builder("panic").nodes(2).build().expect("lab builds");
        let _p = lab.node(2).spawn(&["sleep", "30"], &[]).expect("spawn");
        *recorded.lock().expect("not poisoned") = (lab.namespaces(), lab.pids());
        panic!("test body fails with a lab alive");
    });
    assert!(result.is_err());
    let (namespaces, pids) = recorded.into_inner().expect("not poisoned");
    assert_gone(&namespaces, &pids);
}

#[test]
fn concurrent_labs_get_distinct_names_and_both_work() {
    let threads: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(|| {
                let lab = Lab::builder("concurrent")
                    .nodes(1)
                    .build()
                    .expect("lab builds");
                let node = lab.node(1);
                assert!(lab
                    .client()
                    .ping(IpAddr::V4(node.ipv4()), PING_WAIT)
                    .expect("ping runs"));
                assert!(lab
                    .client()
                    .ping(IpAddr::V6(node.ipv6()), PING_WAIT)
                    .expect("ping runs"));
                lab.namespaces()
            })
        })
        .collect();
    let names: Vec<Vec<String>> = threads
        .into_iter()
        .map(|t| t.join().expect("lab thread"))
        .collect();
    assert!(names[0].iter().all(|n| !names[1].contains(n)), "{names:?}");
}

#[test]
fn build_removes_namespaces_of_dead_owners_only() {
    // A pid that surely existed and is now gone: a child we reaped.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("reap true");
    assert!(
        !Path::new(&format!("/proc/{dead}")).exists(),
        "pid {dead} reused already"
    );
    let stale = format!("vkl-{dead}-0-stale-sw");
    // Owned by a live process (pid 1) even if it looks like ours: must survive.
    let live = format!("vkl-{}-0-live-sw", std::process::id());
    for ns in [&stale, &live] {
        let out = Command::new("ip")
            .args(["netns", "add", ns])
            .output()
            .expect("ip netns add");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lab = Lab::builder("stale").nodes(1).client(false).build();
    let listed = netns_list();
    let _ = Command::new("ip").args(["netns", "del", &live]).output();
    let _ = Command::new("ip").args(["netns", "del", &stale]).output();
    drop(lab.expect("lab builds"));
    assert!(
        !listed.contains(&stale),
        "stale namespace of dead pid {dead} kept"
    );
    assert!(listed.contains(&live), "namespace of a live owner removed");
}

/// Set in the environment of the helper process of `a_killed_owners_lab_is_removed_by_the_next_build`.
const HELPER_ENV: &str = "VIPKEEPER_LAB_HELPER";

/// Not a test: run by the next test in a child process, which builds a lab, reports it on
/// stdout and waits to be SIGKILLed. Does nothing when run on its own.
#[test]
#[ignore = "helper process for a_killed_owners_lab_is_removed_by_the_next_build"]
fn helper_build_a_lab_and_wait_to_be_killed() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let lab = Lab::builder("orphan")
        .nodes(1)
        .client(false)
        .build()
        .expect("lab builds");
    let _p = lab.node(1).spawn(&["sleep", "30"], &[]).expect("spawn");
    let pids: Vec<String> = lab.pids().iter().map(u32::to_string).collect();
    println!("LAB {} PIDS {}", lab.namespaces().join(","), pids.join(","));
    thread::sleep(Duration::from_secs(20));
}

#[test]
fn a_killed_owners_lab_is_removed_by_the_next_build() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let exe = std::env::current_exe().expect("test binary path");
    let mut helper = Command::new(exe)
        .args([
            "--exact",
            "helper_build_a_lab_and_wait_to_be_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start helper");
    let stdout = helper.stdout.take().expect("piped stdout");
    // The helper prints its report within a second or two; lines are bounded by its exit.
    let report = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take(20)
        .find(|line| line.starts_with("LAB "));
    let Some(report) = report else {
        let _ = helper.kill();
        let _ = helper.wait();
        panic!("helper did not report its lab");
    };
    let mut words = report.split_whitespace().skip(1);
    let namespaces: Vec<String> = words
        .next()
        .expect("namespaces")
        .split(',')
        .map(str::to_owned)
        .collect();
    let pids: Vec<u32> = words
        .nth(1)
        .expect("pids")
        .split(',')
        .map(|p| p.parse().expect("pid"))
        .collect();
    // Checked while the owner lives: once it is dead any parallel build may clean up.
    let listed = netns_list();
    assert!(
        namespaces.iter().all(|ns| listed.contains(ns)),
        "not created: {namespaces:?}"
    );
    assert!(
        pids.iter().all(|&pid| alive(pid)),
        "hosts not running: {pids:?}"
    );
    // SIGKILL: no Drop, no unwinding; the lab is left behind as after a crash or a timeout.
    helper.kill().expect("kill helper");
    helper.wait().expect("reap helper");

    let lab = Lab::builder("after_orphan")
        .nodes(1)
        .client(false)
        .build()
        .expect("lab builds");
    assert_gone(&namespaces, &pids);
    drop(lab);
}
