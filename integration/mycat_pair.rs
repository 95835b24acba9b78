//! examples/mycat run in the namespace lab: HAProxy in TCP mode on both load balancers in
//! front of a MariaDB on the backend host (198.51.100.200:3306), standing in for MyCat or
//! MySQL; each vipkeeper tracks a real MySQL login through its own HAProxy and runs the
//! `master` hooks (logger, then `mysql_admin`) when it becomes Master.
//!
//! What the test changes in the example's TOML, and why:
//! - the password files move from `/etc/vipkeeper/` to `/run/vipkeeper/` (a lab host's
//!   `/etc` is the machine's; `/run` is the host's own);
//! - `mysql_admin` talks to MariaDB (198.51.100.200:3306) as there is no MyCat manager on
//!   127.0.0.1:9066. On lb1 the statement becomes `DO 1`, which MariaDB answers OK, so lb1
//!   logs `hook done`; lb2 keeps MyCat's `reload @@config_all`, which MariaDB rejects with
//!   ERR 1064, so lb2 logs `hook failed` with that error when it takes over: both reports
//!   of the action are seen, and a failed hook does not stop the failover.
//!
//! The failover: lb1 alone cut from the backend segment, so its login through HAProxy
//! fails and the VIP moves to lb2 (stopping MariaDB instead would fail both nodes' checks
//! alike: both drop by 60 and the VIP stays on lb1, by design). A client logs in through
//! the VIP before and after.
//!
//! Needs root (the lab), haproxy, mariadbd, mariadb-install-db and the mariadb client.

#[path = "pair/example.rs"]
mod example;
#[path = "lab/mod.rs"]
mod lab;
#[path = "support/lab_mariadb.rs"]
mod lab_mariadb;
#[path = "support/mariadb.rs"]
mod mariadb;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use example::{wait_for, Example, Pair};
use lab::{Host, Segment};
use mariadb::{PASSWORD, USER};

const VIP: &str = "192.0.2.70";
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 200);

/// The accounts the example expects besides `vk_check` (created by the shared guard):
/// HAProxy's passwordless check account and the admin account of the `mysql_admin` hook
/// (no grants: `DO 1` needs none; MariaDB refuses `reload @@config_all` as a syntax error
/// before looking at privileges).
fn accounts() -> String {
    format!(
        "CREATE USER 'haproxy_check'@'%'; \
         CREATE USER 'vk_admin'@'%' IDENTIFIED BY '{PASSWORD}';"
    )
}

fn example() -> Example {
    Example {
        dir: "mycat",
        haproxy_cfg: "mycat/haproxy.cfg",
        edit: |node, toml| {
            let toml = toml
                .replace("/etc/vipkeeper/", "/run/vipkeeper/")
                .replace("127.0.0.1:9066", "198.51.100.200:3306");
            if node == "lb1" {
                toml.replace(
                    "statement = \"reload @@config_all\"",
                    "statement = \"DO 1\"",
                )
            } else {
                toml
            }
        },
    }
}

fn start(tag: &str) -> Pair {
    Pair::start_with(tag, &example(), |lab| {
        for node in lab.nodes() {
            node.run_ok(
                &["mkdir", "-m", "0700", "-p", "/run/vipkeeper"],
                Duration::from_secs(5),
            )
            .expect("/run/vipkeeper");
            for file in ["mysql-check.password", "mycat-admin.password"] {
                let path = Path::new("/run/vipkeeper").join(file);
                node.write_file(&path, format!("{PASSWORD}\n").as_bytes())
                    .expect("password file");
            }
        }
        vec![lab_mariadb::start(
            lab.backend(),
            BACKEND,
            3306,
            &[],
            &accounts(),
        )]
    })
}

/// A client login through the VIP (and HAProxy) to the backend: `SELECT 1` answers 1.
fn login_through_vip(client: &Host) -> bool {
    let password = format!("--password={PASSWORD}");
    client
        .run_ok(
            &[
                "mariadb",
                "--no-defaults",
                "--connect-timeout=2",
                "-h",
                VIP,
                "-P",
                "3306",
                "-u",
                USER,
                &password,
                "--batch",
                "--skip-column-names",
                "-e",
                "SELECT 1",
            ],
            Duration::from_secs(5),
        )
        .is_ok_and(|output| output.trim() == "1")
}

/// The line of `log` that reports `hook`, if any, among lines containing `outcome`.
fn hook_line<'a>(log: &'a str, outcome: &str, hook: &str) -> Option<&'a str> {
    log.lines()
        .find(|line| line.contains(outcome) && line.contains(&format!("hook={hook}")))
}

#[test]
fn mysql_front_end_pair_checks_hooks_and_fails_over() {
    let pair = start("mycat");
    let check_up = "check changed check=mysql_through_haproxy state=Up";
    let up = wait_for(Duration::from_secs(15), || {
        pair.log(1).contains(check_up) && pair.log(2).contains(check_up)
    });
    assert!(
        up,
        "the mysql check never came Up on both\n{}",
        pair.explain()
    );
    pair.expect_serves(1, VIP, false, Duration::from_secs(10), "election");
    assert!(
        wait_for(Duration::from_secs(10), || login_through_vip(
            pair.lab.client()
        )),
        "no MySQL login through the VIP on lb1\n{}",
        pair.explain()
    );

    // lb1's master hooks, in order: logger, then mysql_admin (DO 1: OK).
    let done = wait_for(Duration::from_secs(10), || {
        hook_line(&pair.log(1), "hook done", "mysql_admin").is_some()
    });
    assert!(done, "lb1's mysql_admin hook\n{}", pair.explain());
    let log = pair.log(1);
    assert!(hook_line(&log, "hook done", "logger").is_some(), "{log}");
    assert!(!log.contains("hook failed"), "{log}");
    // lb2 has not been Master: no hook ran there.
    assert!(!pair.log(2).contains("hook="), "{}", pair.log(2));

    // lb1 loses the backend: its login through HAProxy fails, 150 - 60 = 90 < 100.
    pair.node(1)
        .set_segment_link(Segment::Back, false)
        .expect("cut lb1 from the backend");
    pair.expect_serves(2, VIP, false, Duration::from_secs(15), "backend lost");
    let log = pair.log(1);
    assert!(
        log.contains("check changed check=mysql_through_haproxy state=Down"),
        "{log}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || login_through_vip(
            pair.lab.client()
        )),
        "no MySQL login through the VIP on lb2\n{}",
        pair.explain()
    );

    // lb2's mysql_admin kept MyCat's statement: MariaDB's ERR 1064 is reported, and the
    // VIP stays on lb2 regardless.
    let failed = wait_for(Duration::from_secs(10), || {
        hook_line(&pair.log(2), "hook failed", "mysql_admin").is_some()
    });
    assert!(failed, "lb2's mysql_admin hook\n{}", pair.explain());
    let log = pair.log(2);
    let line = hook_line(&log, "hook failed", "mysql_admin").unwrap_or_default();
    assert!(line.contains("1064"), "{line}");
    assert!(pair.serves(2, VIP, false), "{}", pair.explain());
    pair.stop();
}
