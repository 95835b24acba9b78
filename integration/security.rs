//! Security properties of the running daemon, in the lab (docs/security.md):
//!
//! - it runs as an unprivileged user holding only CAP_NET_ADMIN and CAP_NET_RAW, and does
//!   its whole job (election, VIP, gratuitous ARP, control socket, graceful stop);
//! - secrets (the VRRPv2 password from `auth_pass_file`, a MySQL `password_file`) never
//!   reach the log, `status`, the metrics or `check`;
//! - metrics listen on the node's loopback only, unless configured otherwise.
//!
//! The control socket's mode and peer-credential refusal are tested in control_socket.rs,
//! script security in notify_hooks.rs.

#[path = "lab/mod.rs"]
mod lab;

use std::net::{IpAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use lab::{Host, Lab, LabProcess, Signal};

const BIN: &str = env!("CARGO_BIN_EXE_vipkeeper");
const NOBODY: &str = "65534";
/// CAP_NET_ADMIN (12) and CAP_NET_RAW (13), as /proc/PID/status prints capability sets.
const NET_ADMIN_AND_NET_RAW: &str = "0000000000003000";
const VIP: &str = "192.0.2.50";
/// Master_Down_Interval at 100 ms and priority 150, plus slack for a debug build.
const ELECTION: Duration = Duration::from_secs(3);

fn config(node: &str, control_socket: &str, extra_instance: &str, tail: &str) -> String {
    format!(
        r#"[global]
node_name = "{node}"
garp_master_delay = "0s"
control_socket = "{control_socket}"

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 150
advert_interval = "100ms"
vips = ["{VIP}/24"]
{extra_instance}
{tail}"#
    )
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

fn holds_vip(host: &Host) -> bool {
    host.run_ok(
        &["ip", "-o", "addr", "show", "dev", "eth0"],
        Duration::from_secs(5),
    )
    .map(|out| out.contains(&format!(" {VIP}/")))
    .unwrap_or(false)
}

/// The capability sets line `name` (CapEff, CapPrm, ...) of `pid`.
fn capabilities(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

fn uid_of(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("Uid line")
        .to_owned()
}

/// The argv that runs `argv` as nobody with only CAP_NET_ADMIN and CAP_NET_RAW, as the
/// systemd unit's `User=` + `AmbientCapabilities=` + `CapabilityBoundingSet=` do.
fn as_nobody_with_net_caps<'a>(argv: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec![
        "setpriv",
        "--reuid",
        NOBODY,
        "--regid",
        NOBODY,
        "--clear-groups",
        "--bounding-set",
        "-all,+net_admin,+net_raw",
        "--inh-caps",
        "-all,+net_admin,+net_raw",
        "--ambient-caps",
        "-all,+net_admin,+net_raw",
        "--",
    ];
    full.extend_from_slice(argv);
    full
}

/// A copy of the binary any user may run: the build tree may sit under a directory only
/// root can enter (a clone in /root, say). On disk (the hosts' tmpfs is too small for a
/// debug build), removed on drop.
struct PublicBinary {
    dir: std::path::PathBuf,
}

impl PublicBinary {
    fn install() -> PublicBinary {
        use std::os::unix::fs::PermissionsExt;
        // /var/tmp: the hosts mount their own /tmp and /run, but see the machine's /var.
        let dir = Path::new("/var/tmp").join(format!("vipkeeper-security-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("binary directory");
        let public = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(&dir, public.clone()).expect("chmod the directory");
        let bin = dir.join("vipkeeper");
        std::fs::copy(BIN, &bin).expect("copy the binary");
        std::fs::set_permissions(&bin, public).expect("chmod the binary");
        PublicBinary { dir }
    }

    fn path(&self) -> String {
        self.dir.join("vipkeeper").display().to_string()
    }
}

impl Drop for PublicBinary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stop(daemon: &mut LabProcess) -> Option<i32> {
    daemon.kill(Signal::Term).expect("SIGTERM");
    daemon
        .wait_timeout(Duration::from_secs(10))
        .expect("wait")
        .and_then(|status| status.code())
}

#[test]
fn runs_as_nobody_with_only_net_admin_and_net_raw() {
    let lab = Lab::builder("caps").nodes(1).build().expect("lab");
    let node = lab.node(1);
    let binary = PublicBinary::install();
    let bin = binary.path();
    let bin = bin.as_str();
    node.run_ok(
        &[
            "install", "-d", "-o", NOBODY, "-g", NOBODY, "-m", "0700", "/run/vk",
        ],
        Duration::from_secs(5),
    )
    .expect("state directory for nobody");
    node.write_file(
        Path::new("/run/vk/vipkeeper.toml"),
        config("lb1", "/run/vk/control.sock", "", "").as_bytes(),
    )
    .expect("config");

    let argv = as_nobody_with_net_caps(&[bin, "run", "-c", "/run/vk/vipkeeper.toml"]);
    let mut daemon = node.spawn(&argv, &[]).expect("start vipkeeper");
    let pid = daemon.pid().expect("pid");
    let became_master = wait_for(ELECTION, || holds_vip(node));
    let log = daemon.stderr();
    assert!(
        became_master,
        "no VIP as nobody\n{log}\n{}",
        lab.diagnostics()
    );

    // What it runs with: nobody, and exactly the two capabilities, nothing more to lose.
    assert_eq!(uid_of(pid), NOBODY);
    assert_eq!(capabilities(pid, "CapEff"), NET_ADMIN_AND_NET_RAW);
    assert_eq!(capabilities(pid, "CapPrm"), NET_ADMIN_AND_NET_RAW);
    assert_eq!(capabilities(pid, "CapBnd"), NET_ADMIN_AND_NET_RAW);

    // It announced the VIP (gratuitous ARP needs CAP_NET_RAW): the client resolves it.
    assert!(
        lab.client()
            .ping(VIP.parse().unwrap(), Duration::from_secs(1))
            .expect("ping"),
        "the client cannot reach the VIP\n{}",
        daemon.stderr()
    );

    // The control socket works for the same user, and only for it (mode 0600).
    let status = node
        .run(
            &as_nobody_with_net_caps(&[bin, "status", "--json", "-c", "/run/vk/vipkeeper.toml"]),
            Duration::from_secs(10),
        )
        .expect("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}{:?}", status.stderr);
    assert!(text.contains("\"MASTER\""), "{text}");
    let mode = node
        .run_ok(
            &["stat", "-c", "%a %u", "/run/vk/control.sock"],
            Duration::from_secs(5),
        )
        .expect("stat the socket");
    assert_eq!(mode.trim(), format!("600 {NOBODY}"));

    // Graceful stop still removes the VIP (netlink with CAP_NET_ADMIN only).
    assert_eq!(stop(&mut daemon), Some(0), "{}", daemon.stderr());
    assert!(!holds_vip(node), "the VIP stayed after the stop");
    let log = daemon.stderr();
    assert!(
        !log.contains("Operation not permitted") && !log.contains("EPERM"),
        "a privileged operation failed:\n{log}"
    );
}

#[test]
fn secrets_never_reach_the_log_status_metrics_or_check() {
    // Distinctive strings, so finding one anywhere is a leak and not a coincidence.
    const VRRP_PASSWORD: &str = "Zq7vK2xW";
    const MYSQL_PASSWORD: &str = "mysql-Pw-8c1e-secret";
    let lab = Lab::builder("secrets").nodes(1).build().expect("lab");
    let node = lab.node(1);
    node.write_file(
        Path::new("/run/vrrp.pass"),
        format!("{VRRP_PASSWORD}\n").as_bytes(),
    )
    .expect("password file");
    node.write_file(
        Path::new("/run/mysql.pass"),
        format!("{MYSQL_PASSWORD}\n").as_bytes(),
    )
    .expect("password file");
    // The MySQL check fails (nothing listens): its failure is logged with its reason,
    // which is where a careless client would print what it sent.
    let tail = r#"
[check.db]
type = "mysql"
address = "127.0.0.1:3306"
user = "monitor"
password_file = "/run/mysql.pass"
interval = "200ms"
"#;
    let instance = "version = 2\nadvert_interval = \"1s\"\nauth_pass_file = \"/run/vrrp.pass\"\n\
                    track = [{ check = \"db\", weight = -10 }]";
    let text =
        config("lb1", "/run/vk.sock", instance, tail).replace("advert_interval = \"100ms\"\n", "");
    node.write_file(Path::new("/run/vipkeeper.toml"), text.as_bytes())
        .expect("config");

    let check = node
        .run(
            &[BIN, "check", "-c", "/run/vipkeeper.toml"],
            Duration::from_secs(10),
        )
        .expect("check");
    let check_out = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{check_out}");
    assert!(
        check_out.contains("auth_pass is set (8 bytes"),
        "{check_out}"
    );

    let mut daemon = node
        .spawn(
            &[BIN, "run", "-c", "/run/vipkeeper.toml"],
            &[("VIPKEEPER_LOG", "trace")],
        )
        .expect("start vipkeeper");
    // v2 at 1 s: Master_Down_Interval is about 3.4 s.
    let master = wait_for(Duration::from_secs(6), || holds_vip(node));
    assert!(master, "no election\n{}", daemon.stderr());
    let failing_logged = wait_for(Duration::from_secs(3), || daemon.stderr().contains("mysql"));
    assert!(
        failing_logged,
        "the MySQL check never ran\n{}",
        daemon.stderr()
    );

    let status_json = node
        .run_ok(
            &[BIN, "status", "--json", "-c", "/run/vipkeeper.toml"],
            Duration::from_secs(10),
        )
        .expect("status --json");
    let status_text = node
        .run_ok(
            &[BIN, "status", "-c", "/run/vipkeeper.toml"],
            Duration::from_secs(10),
        )
        .expect("status");
    std::thread::sleep(Duration::from_millis(1200)); // the metrics snapshot is per second
    let scrape = "exec 3<>/dev/tcp/127.0.0.1/9650 && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3";
    let metrics = node
        .run_ok(&["bash", "-c", scrape], Duration::from_secs(10))
        .expect("scrape");
    assert_eq!(stop(&mut daemon), Some(0), "{}", daemon.stderr());
    let log = daemon.stderr();

    // Each output is about the instance and the check: the searches below look at real text.
    for (what, output) in [
        ("log", &log),
        ("status --json", &status_json),
        ("status", &status_text),
        ("metrics", &metrics),
    ] {
        assert!(
            output.contains("db"),
            "{what} does not mention the check:\n{output}"
        );
        for secret in [VRRP_PASSWORD, MYSQL_PASSWORD] {
            assert!(!output.contains(secret), "{what} shows a secret:\n{output}");
        }
    }
    for secret in [VRRP_PASSWORD, MYSQL_PASSWORD] {
        assert!(
            !check_out.contains(secret),
            "check shows a secret:\n{check_out}"
        );
    }
}

#[test]
fn metrics_listen_on_the_node_loopback_only_by_default() {
    let lab = Lab::builder("metricsbind").nodes(1).build().expect("lab");
    let node = lab.node(1);
    node.write_file(
        Path::new("/run/vipkeeper.toml"),
        config("lb1", "/run/vk.sock", "", "").as_bytes(),
    )
    .expect("config");
    let mut daemon = node
        .spawn(&[BIN, "run", "-c", "/run/vipkeeper.toml"], &[])
        .expect("start vipkeeper");
    let listening = wait_for(Duration::from_secs(5), || {
        node.run_ok(&["ss", "-Hltn", "sport", "= :9650"], Duration::from_secs(5))
            .map(|out| !out.trim().is_empty())
            .unwrap_or(false)
    });
    assert!(listening, "no metrics listener\n{}", daemon.stderr());
    let sockets = node
        .run_ok(&["ss", "-Hltn", "sport", "= :9650"], Duration::from_secs(5))
        .expect("ss");
    let locals: Vec<&str> = sockets
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .collect();
    assert_eq!(locals, ["127.0.0.1:9650"], "{sockets}");

    // From the client, the node's own address does not serve metrics.
    let node_address = IpAddr::V4(node.ipv4());
    let reached = lab
        .client()
        .run(
            &[
                "bash",
                "-c",
                &format!("exec 3<>/dev/tcp/{node_address}/9650"),
            ],
            Duration::from_secs(5),
        )
        .expect("connect attempt");
    assert!(
        !reached.status.success(),
        "metrics answered on {node_address}"
    );
    // And the test process, outside every lab namespace, does not see it either.
    assert!(
        TcpStream::connect_timeout(&(node_address, 9650).into(), Duration::from_millis(300))
            .is_err()
    );
    assert_eq!(stop(&mut daemon), Some(0), "{}", daemon.stderr());
}
