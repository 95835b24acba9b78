//! `vipkeeper check` and `vipkeeper run` as an operator meets them: the real binary on
//! files in a temporary directory. Every rule of docs/config.md has a test that asserts
//! the exact `FILE:LINE:COL: key: message` line, the exit code, and that nothing was
//! printed on stdout; every file under examples/ must pass.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A configuration file in a directory of its own, removed again on drop.
struct TempConfig {
    dir: PathBuf,
    path: PathBuf,
}

impl TempConfig {
    fn new(text: impl AsRef<[u8]>) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vipkeeper-config-check-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create the temporary directory");
        let path = dir.join("vipkeeper.toml");
        fs::write(&path, text).expect("write the configuration");
        TempConfig { dir, path }
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn vipkeeper(args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_vipkeeper"))
        .args(args)
        .output()
        .expect("run the vipkeeper binary");
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run_on(command: &str, path: &Path) -> Outcome {
    let path = path.to_str().expect("temporary paths are UTF-8");
    vipkeeper(&[command, "-c", path])
}

/// `check` refuses `text` with exit 1, and stderr has a line that starts with
/// `FILE:` + `expected` (position, key and as much of the message as the test gives).
#[track_caller]
fn rejects(text: &str, expected: &str) {
    let config = TempConfig::new(text);
    let outcome = run_on("check", &config.path);
    let line = format!("{}:{expected}", config.path.display());
    assert_eq!(outcome.code, Some(1), "stderr:\n{}", outcome.stderr);
    assert!(
        outcome.stderr.lines().any(|l| l.starts_with(&line)),
        "expected a line starting with\n  {line}\nstderr:\n{}",
        outcome.stderr
    );
    assert_eq!(outcome.stdout, "", "nothing on stdout when refused");
}

/// `check` accepts `text` with exit 0 and returns stdout and stderr.
#[track_caller]
fn accepts(text: &str) -> Outcome {
    let config = TempConfig::new(text);
    let outcome = run_on("check", &config.path);
    assert_eq!(outcome.code, Some(0), "stderr:\n{}", outcome.stderr);
    outcome
}

// ---------------------------------------------------------------------------------------
// Examples and the output format

fn example_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read examples/") {
        let path = entry.expect("examples/ entry").path();
        if path.is_dir() {
            example_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "toml") {
            found.push(path);
        }
    }
}

fn instance_headers(text: &str) -> usize {
    text.lines().filter(|l| l.trim() == "[[instance]]").count()
}

#[test]
fn every_example_passes_check_and_prints_its_instances() {
    let mut examples = Vec::new();
    example_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &mut examples,
    );
    assert!(
        examples.len() >= 2,
        "examples/ holds the HAProxy pair at least"
    );
    for example in &examples {
        let outcome = run_on("check", example);
        assert_eq!(
            outcome.code,
            Some(0),
            "{}:\n{}",
            example.display(),
            outcome.stderr
        );
        // The keepalived peer example keeps its v2 password inline to stay self-contained
        // (keepalived.conf has it inline too); that is the one warning an example may have.
        let unexpected: Vec<&str> = outcome
            .stderr
            .lines()
            .filter(|line| !line.contains("auth_pass: warning: the password is inline"))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{}: no warnings\n{}",
            example.display(),
            outcome.stderr
        );
        let text = fs::read_to_string(example).expect("read the example");
        let instances = instance_headers(&text);
        assert!(instances > 0, "{}", example.display());
        assert_eq!(
            instance_headers(&outcome.stdout),
            instances,
            "{}",
            example.display()
        );
        assert!(outcome.stdout.contains("# skew_time: "));
    }
}

#[test]
fn check_prints_every_setting_with_its_default() {
    let outcome = accepts(
        r#"[global]
node_name = "lb1"
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50"]
"#,
    );
    let body: Vec<&str> = outcome.stdout.lines().skip(2).collect();
    assert_eq!(
        body,
        [
            "",
            "[global]",
            "node_name = \"lb1\"", "garp_master_repeat = 5", "garp_master_delay = \"5s\"", "garp_master_refresh = \"0s\"", "garp_lower_prio_repeat = 5", "script_security = true", "control_socket = \"/run/vipkeeper/control.sock\"", "metrics_listen = \"127.0.0.1:9650\"", "switchover_hold = \"900s\"",
            "",
            "[[instance]]",
            "name = \"web\"",
            "interface = \"eth0\"",
            "vrid = 51",
            "version = 3",
            "priority = 100",
            "advert_interval = \"1s\"",
            "preempt = true",
            "preempt_delay = \"0s\"",
            "fast_preempt = false", "garp_master_repeat = 5", "garp_master_delay = \"5s\"", "garp_master_refresh = \"0s\"", "garp_lower_prio_repeat = 5",
            "v3_checksum_as_v2 = false",
            "vips = [",
            "  { address = \"192.0.2.50/32\", dev = \"eth0\" },",
            "]",
            "# family: IPv4",
            "# adverts: multicast to 224.0.0.18, from the primary IPv4 address of eth0",
            "# skew_time: 609.375ms, master_down_interval: 3.609375s (RFC 5798 §6.1, at priority 100)",
        ]
    );
    assert!(outcome.stdout.starts_with("# "));
    assert!(outcome
        .stdout
        .lines()
        .next()
        .is_some_and(|first| first.ends_with(": valid, 1 instance, 0 warnings.")));
}

#[test]
fn node_name_defaults_to_the_hostname() {
    let outcome = accepts(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]
"#,
    );
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .expect("this test needs a hostname");
    let expected = format!("node_name = \"{}\"", hostname.trim());
    assert!(outcome.stdout.contains(&expected), "{}", outcome.stdout);
}

#[test]
fn unicast_output_lists_the_peers() {
    let outcome = accepts(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_peers = ["192.0.2.12", "192.0.2.13"]
vips = ["192.0.2.50/24"]
"#,
    );
    assert!(outcome
        .stdout
        .contains("unicast_peers = [\"192.0.2.12\", \"192.0.2.13\"]\n"));
    assert!(outcome.stdout.contains(
        "# adverts: unicast to 192.0.2.12, 192.0.2.13, from the primary IPv4 address of eth0\n"
    ));
}

// ---------------------------------------------------------------------------------------
// Warnings: printed, exit 0

#[test]
fn preempt_delay_without_preempt_is_a_warning() {
    let outcome = accepts(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
preempt = false
preempt_delay = "10s"
vips = ["192.0.2.50/24"]
"#,
    );
    assert!(
        outcome.stderr.contains(
            ":6:17: instance[0].preempt_delay: warning: has no effect with preempt = false"
        ),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stdout.contains("valid, 1 instance, 1 warning."));
}

#[test]
fn fast_preempt_without_preempt_is_a_warning() {
    let outcome = accepts(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
preempt = false
fast_preempt = true
vips = ["192.0.2.50/24"]
"#,
    );
    assert!(
        outcome
            .stderr
            .contains(":6:16: instance[0].fast_preempt: warning: has no effect"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn preempt_delay_on_the_owner_is_a_warning() {
    let outcome = accepts(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 255
preempt_delay = "10s"
vips = ["192.0.2.50/24"]
"#,
    );
    assert!(
        outcome
            .stderr
            .contains(":6:17: instance[0].preempt_delay: warning: has no effect at priority 255"),
        "{}",
        outcome.stderr
    );
    assert!(outcome
        .stdout
        .contains("priority = 255  # the address owner\n"));
}

// ---------------------------------------------------------------------------------------
// Rejections: one test per rule

#[test]
fn duplicate_instance_names() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]
[[instance]]
name = "web"
interface = "eth0"
vrid = 52
vips = ["192.0.2.51/24"]
"#,
        "7:8: instance[1].name: instance name \"web\" is already used at line 2",
    );
}

#[test]
fn duplicate_vrid_on_one_interface_and_family() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]
[[instance]]
name = "api"
interface = "eth0"
vrid = 51
vips = ["192.0.2.51/24"]
"#,
        "9:8: instance[1].vrid: VRID 51 on eth0 over IPv4 is already used by instance \"web\" \
         (line 4)",
    );
}

#[test]
fn the_same_vrid_is_fine_on_another_interface_or_family() {
    accepts(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]
[[instance]]
name = "web6"
interface = "eth0"
vrid = 51
vips = ["2001:db8::50/64"]
[[instance]]
name = "back"
interface = "eth1"
vrid = 51
vips = ["198.51.100.50/24"]
"#,
    );
}

#[test]
fn mixed_families_in_vips() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24", "2001:db8::50/64"]
"#,
        "5:26: instance[0].vips[1]: 2001:db8::50 is IPv6, but this instance is IPv4 (set by \
         instance[0].vips[0] at line 5)",
    );
}

#[test]
fn mixed_families_in_unicast_source() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_source = "2001:db8::11"
unicast_peers = ["192.0.2.12"]
vips = ["192.0.2.50/24"]
"#,
        "5:18: instance[0].unicast_source: 2001:db8::11 is IPv6, but this instance is IPv4",
    );
}

#[test]
fn mixed_families_in_unicast_peers() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_peers = ["192.0.2.12", "2001:db8::12"]
vips = ["192.0.2.50/24"]
"#,
        "5:32: instance[0].unicast_peers[1]: 2001:db8::12 is IPv6, but this instance is IPv4",
    );
}

#[test]
fn v2_interval_must_be_whole_seconds() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
version = 2
advert_interval = "1.5s"
vips = ["192.0.2.50/24"]
"#,
        "6:19: instance[0].advert_interval: version 2 advertises whole seconds: advert_interval \
         must be 1s..255s in whole seconds (RFC 3768 §5.3.7), got \"1.5s\"",
    );
}

#[test]
fn v2_interval_must_be_1_to_255_seconds() {
    for (interval, column) in [("\"256s\"", 19), ("\"0s\"", 19), ("\"5m\"", 19)] {
        rejects(
            &format!(
                "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nversion = 2\n\
                 advert_interval = {interval}\nvips = [\"192.0.2.50/24\"]\n"
            ),
            &format!("6:{column}: instance[0].advert_interval: version 2 advertises whole seconds"),
        );
    }
}

#[test]
fn v3_interval_must_be_a_multiple_of_10ms() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
advert_interval = "15ms"
vips = ["192.0.2.50/24"]
"#,
        "5:19: instance[0].advert_interval: version 3 advert_interval must be a multiple of 10ms \
         from 10ms to 40.95s (RFC 5798 §5.2.7), got \"15ms\"",
    );
}

#[test]
fn v3_interval_must_be_10ms_to_40_95s() {
    for interval in ["41s", "0ms", "40.96s"] {
        rejects(
            &format!(
                "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\n\
                 advert_interval = \"{interval}\"\nvips = [\"192.0.2.50/24\"]\n"
            ),
            &format!(
                "5:19: instance[0].advert_interval: version 3 advert_interval must be a \
                 multiple of 10ms from 10ms to 40.95s (RFC 5798 §5.2.7), got \"{interval}\""
            ),
        );
    }
    accepts(
        "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\n\
         advert_interval = \"40.95s\"\nvips = [\"192.0.2.50/24\"]\n",
    );
}

#[test]
fn durations_need_a_unit() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
advert_interval = "1"
vips = ["192.0.2.50/24"]
"#,
        "5:19: instance[0].advert_interval: invalid duration \"1\": no unit; write \"1s\" or \
         \"1ms\"",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
advert_interval = 1
vips = ["192.0.2.50/24"]
"#,
        "5:19: instance[0].advert_interval: invalid type: integer `1`, expected a string with a \
         unit, such as \"1s\", \"100ms\" or \"1.5s\"",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
preempt_delay = "1h"
vips = ["192.0.2.50/24"]
"#,
        "5:17: instance[0].preempt_delay: invalid duration \"1h\": unknown unit \"h\"; use \
         \"ms\", \"s\" or \"m\"",
    );
}

#[test]
fn empty_unicast_peers_is_not_multicast() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_peers = []
vips = ["192.0.2.50/24"]
"#,
        "5:17: instance[0].unicast_peers: empty: list the peers, or remove the key to use \
         multicast",
    );
}

#[test]
fn unicast_source_needs_peers() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_source = "192.0.2.11"
vips = ["192.0.2.50/24"]
"#,
        "5:18: instance[0].unicast_source: set without unicast_peers",
    );
}

#[test]
fn a_peer_cannot_be_the_source() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_source = "192.0.2.11"
unicast_peers = ["192.0.2.12", "192.0.2.11"]
vips = ["192.0.2.50/24"]
"#,
        "6:32: instance[0].unicast_peers[1]: 192.0.2.11 is this node's own unicast_source",
    );
}

#[test]
fn a_peer_is_listed_once() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_peers = ["192.0.2.12", "192.0.2.12"]
vips = ["192.0.2.50/24"]
"#,
        "5:32: instance[0].unicast_peers[1]: 192.0.2.12 is listed twice",
    );
}

#[test]
fn a_vip_is_neither_source_nor_peer() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_source = "192.0.2.50"
unicast_peers = ["192.0.2.12"]
vips = ["192.0.2.50/24"]
"#,
        "5:18: instance[0].unicast_source: 192.0.2.50 is one of this instance's VIPs, which \
         only the Master holds",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_peers = ["192.0.2.50"]
vips = ["192.0.2.50/24"]
"#,
        "5:18: instance[0].unicast_peers[0]: 192.0.2.50 is one of this instance's VIPs",
    );
}

#[test]
fn peers_and_sources_are_bare_unicast_addresses() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_peers = ["224.0.0.18"]
vips = ["192.0.2.50/24"]
"#,
        "5:18: instance[0].unicast_peers[0]: 224.0.0.18 is not a unicast address",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
unicast_source = "192.0.2.11/24"
unicast_peers = ["192.0.2.12"]
vips = ["192.0.2.50/24"]
"#,
        "5:18: instance[0].unicast_source: \"192.0.2.11/24\" carries a prefix length",
    );
}

#[test]
fn priority_0_is_reserved() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 0
vips = ["192.0.2.50/24"]
"#,
        "5:12: instance[0].priority: priority 0 is reserved for a Master that resigns \
         (RFC 5798 §5.2.4)",
    );
}

#[test]
fn priority_above_255() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 256
vips = ["192.0.2.50/24"]
"#,
        "5:12: instance[0].priority: priority must be 1..255 (255 = address owner), got 256",
    );
}

#[test]
fn the_owner_always_preempts() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 255
preempt = false
vips = ["192.0.2.50/24"]
"#,
        "6:11: instance[0].preempt: priority 255 makes this node the address owner, which \
         always preempts (RFC 5798 §6.1)",
    );
}

#[test]
fn auth_pass_needs_version_2() {
    let expected = "auth_pass needs version = 2: VRRPv3 has no authentication";
    // version 3 by default ...
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
auth_pass = "secret"
vips = ["192.0.2.50/24"]
"#,
        &format!("5:13: instance[0].auth_pass: {expected}"),
    );
    // ... and when written out.
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
version = 3
auth_pass = "secret"
vips = ["192.0.2.50/24"]
"#,
        &format!("6:13: instance[0].auth_pass: {expected}"),
    );
}

#[test]
fn auth_pass_is_1_to_8_bytes() {
    for (password, len) in [("", 0), ("123456789", 9), ("mötley8!", 9)] {
        rejects(
            &format!(
                "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nversion = 2\n\
                 auth_pass = \"{password}\"\nvips = [\"192.0.2.50/24\"]\n"
            ),
            &format!(
                "6:13: instance[0].auth_pass: auth_pass must be 1..8 bytes (the VRRPv2 \
                 Authentication Data field), got {len}"
            ),
        );
    }
}

#[test]
fn v3_checksum_as_v2_needs_v3_over_ipv4() {
    rejects(
        r#"[[instance]]
name = "web6"
interface = "eth0"
vrid = 51
v3_checksum_as_v2 = true
vips = ["2001:db8::50/64"]
"#,
        "5:21: instance[0].v3_checksum_as_v2: v3_checksum_as_v2 applies only to IPv4",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
version = 2
v3_checksum_as_v2 = true
vips = ["192.0.2.50/24"]
"#,
        "6:21: instance[0].v3_checksum_as_v2: v3_checksum_as_v2 applies only to version 3",
    );
}

#[test]
fn version_2_is_ipv4_only() {
    rejects(
        r#"[[instance]]
name = "web6"
interface = "eth0"
vrid = 51
version = 2
vips = ["2001:db8::50/64"]
"#,
        "5:11: instance[0].version: version 2 is IPv4 only (RFC 3768) and this instance has \
         IPv6 addresses; use 3",
    );
}

#[test]
fn version_is_2_or_3() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
version = 4
vips = ["192.0.2.50/24"]
"#,
        "5:11: instance[0].version: version must be 2 (RFC 3768) or 3 (RFC 5798), got 4",
    );
}

#[test]
fn at_least_one_vip() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = []
"#,
        "5:8: instance[0].vips: at least one VIP is required (RFC 5798 §5.2.5",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
"#,
        "1:1: instance[0].vips: required key is missing",
    );
}

#[test]
fn at_most_255_vips() {
    let vips: Vec<String> = (1..=256).map(|n| format!("\"2001:db8::{n:x}\"")).collect();
    rejects(
        &format!(
            "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nvips = [{}]\n",
            vips.join(", ")
        ),
        "5:8: instance[0].vips: 256 VIPs, but one advert carries at most 255",
    );
    let vips = &vips[..255];
    accepts(&format!(
        "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nvips = [{}]\n",
        vips.join(", ")
    ));
}

#[test]
fn a_vip_twice_in_one_instance() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24", { address = "192.0.2.50/25", dev = "eth1" }]
"#,
        "5:38: instance[0].vips[1].address: 192.0.2.50 is already a VIP at instance[0].vips[0] \
         (line 5)",
    );
}

#[test]
fn a_vip_in_two_instances() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]

[[instance]]
name = "api"
interface = "eth1"
vrid = 52
vips = ["192.0.2.51/24", "192.0.2.50/24"]
"#,
        "11:26: instance[1].vips[1]: 192.0.2.50 is already a VIP at instance[0].vips[0] (line 5)",
    );
}

#[test]
fn bad_vip_address() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.256/24"]
"#,
        "5:9: instance[0].vips[0]: \"192.0.2.256\" is not an IPv4 or IPv6 address",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["224.0.0.1"]
"#,
        "5:9: instance[0].vips[0]: 224.0.0.1 is not a unicast address",
    );
}

#[test]
fn bad_vip_prefix_length() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/33"]
"#,
        "5:9: instance[0].vips[0]: prefix length /33 is out of range for IPv4 (1..=32)",
    );
    rejects(
        r#"[[instance]]
name = "web6"
interface = "eth0"
vrid = 51
vips = [{ address = "2001:db8::50/129" }]
"#,
        "5:21: instance[0].vips[0].address: prefix length /129 is out of range for IPv6 \
         (1..=128)",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/x"]
"#,
        "5:9: instance[0].vips[0]: prefix length \"x\" is not a number",
    );
}

#[test]
fn vrid_is_1_to_255() {
    for (vrid, column) in [("0", 8), ("256", 8), ("-1", 8)] {
        rejects(
            &format!(
                "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = {vrid}\n\
                 vips = [\"192.0.2.50/24\"]\n"
            ),
            &format!("4:{column}: instance[0].vrid: VRID must be 1..255, got {vrid}"),
        );
    }
}

#[test]
fn bad_interface_names() {
    for (name, why) in [
        ("", "is empty"),
        ("sixteen-bytes-xx", "is 16 bytes long; the limit is 15"),
        ("eth/0", "contains '/'"),
        ("eth 0", "contains ' '"),
        ("eth0:1", "contains ':'"),
        ("..", "\".\" and \"..\" are not valid interface names"),
    ] {
        rejects(
            &format!(
                "[[instance]]\nname = \"web\"\ninterface = \"{name}\"\nvrid = 51\n\
                 vips = [\"192.0.2.50/24\"]\n"
            ),
            &format!("3:13: instance[0].interface: \"{name}\" {why}"),
        );
    }
}

#[test]
fn bad_vip_dev() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = [{ address = "192.0.2.50/24", dev = "eth 1" }]
"#,
        "5:44: instance[0].vips[0].dev: \"eth 1\" contains ' '",
    );
}

#[test]
fn labels_are_dev_colon_something() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = [{ address = "192.0.2.50/24", dev = "eth1", label = "eth0:web" }]
"#,
        "5:60: instance[0].vips[0].label: \"eth0:web\" must start with the device name \
         followed by ':', as in \"eth1:1\"",
    );
    // The default dev is the instance's interface.
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = [{ address = "192.0.2.50/24", label = "eth0:" }]
"#,
        "5:46: instance[0].vips[0].label: \"eth0:\" has nothing after \"eth0:\"",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = [{ address = "192.0.2.50/24", label = "eth0:frontend-01" }]
"#,
        "5:46: instance[0].vips[0].label: \"eth0:frontend-01\" is 16 bytes long; the limit is 15",
    );
}

#[test]
fn labels_are_ipv4_only() {
    rejects(
        r#"[[instance]]
name = "web6"
interface = "eth0"
vrid = 51
vips = [{ address = "2001:db8::50/64", label = "eth0:web" }]
"#,
        "5:48: instance[0].vips[0].label: labels exist only for IPv4 addresses (IFA_LABEL)",
    );
}

#[test]
fn preempt_delay_is_0_to_1000s() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
preempt_delay = "1001s"
vips = ["192.0.2.50/24"]
"#,
        "5:17: instance[0].preempt_delay: preempt_delay must be 0s..1000s (keepalived's range), \
         got \"1001s\"",
    );
    accepts(
        "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\n\
         preempt_delay = \"1000s\"\nvips = [\"192.0.2.50/24\"]\n",
    );
}

#[test]
fn bad_instance_and_node_names() {
    rejects(
        r#"[[instance]]
name = "web front"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]
"#,
        "2:8: instance[0].name: \"web front\" contains ' '; use letters, digits, '-', '_' and '.'",
    );
    rejects(
        r#"[global]
node_name = ""
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]
"#,
        "2:13: global.node_name: \"\" is empty",
    );
}

#[test]
fn required_keys_point_at_the_instance_header() {
    rejects(
        r#"[global]
node_name = "lb1"

[[instance]]
vips = ["192.0.2.50/24"]
"#,
        "4:1: instance[0].name: required key is missing",
    );
    rejects(
        r#"[[instance]]
name = "web"
vrid = 51
vips = [{ dev = "eth0" }]
"#,
        "4:9: instance[0].vips[0].address: required key is missing",
    );
}

#[test]
fn a_file_without_instances() {
    rejects(
        "[global]\nnode_name = \"lb1\"\n",
        "1:1: instance: no [[instance]] is defined",
    );
    rejects(
        "instance = []\n",
        "1:12: instance: no [[instance]] is defined",
    );
}

// ---------------------------------------------------------------------------------------
// What serde and the TOML parser report

#[test]
fn unknown_keys_carry_a_position_and_the_key() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
nopreempt = true
vips = ["192.0.2.50/24"]
"#,
        "5:1: instance[0].nopreempt: unknown key `nopreempt`, expected one of `name`,",
    );
    rejects(
        r#"[global]
router_id = "lb1"
"#,
        "2:1: global.router_id: unknown key `router_id`, expected one of `node_name`,",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = [{ address = "192.0.2.50/24", device = "eth1" }]
"#,
        "5:38: instance[0].vips[0].device: unknown key `device`, expected one of `address`, \
         `dev`, `label`",
    );
    rejects(
        "[vrrp]\n",
        "1:2: vrrp: unknown key `vrrp`, expected one of `global`, `instance`, `check`",
    );
}

#[test]
fn wrong_types_carry_a_position_and_the_key() {
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = "51"
vips = ["192.0.2.50/24"]
"#,
        "4:8: instance[0].vrid: invalid type: string \"51\", expected an integer",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
preempt = "no"
vips = ["192.0.2.50/24"]
"#,
        "5:11: instance[0].preempt: invalid type: string \"no\", expected a boolean",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = "192.0.2.50/24"
"#,
        "5:8: instance[0].vips: invalid type: string \"192.0.2.50/24\", expected an array",
    );
    rejects(
        "[instance]\nname = \"web\"\n",
        "1:1: instance: invalid type: table, expected an array",
    );
}

#[test]
fn syntax_errors_carry_a_position() {
    rejects(
        r#"[[instance]]
name = "web
"#,
        "2:12: (syntax): invalid basic string",
    );
    rejects(
        r#"[[instance]]
vrid = 51
vrid = 52
"#,
        "3:1: (syntax): duplicate key `vrid`",
    );
}

#[test]
fn a_file_that_is_not_utf8() {
    let config = TempConfig::new(b"[[instance]]\nname = \"w\xffb\"\n");
    let outcome = run_on("check", &config.path);
    assert_eq!(outcome.code, Some(1));
    let expected = format!(
        "{}:2:10: (syntax): the file is not valid UTF-8",
        config.path.display()
    );
    assert!(outcome.stderr.contains(&expected), "{}", outcome.stderr);
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let config = TempConfig::new(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 0
priority = 0
vips = []

[[instance]]
name = "web"
interface = "eth0/1"
vrid = 52
vips = ["192.0.2.50/40"]
"#,
    );
    let outcome = run_on("check", &config.path);
    assert_eq!(outcome.code, Some(1));
    let file = config.path.display();
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{file}:4:8: instance[0].vrid: VRID must be 1..255, got 0"),
            format!(
                "{file}:5:12: instance[0].priority: priority 0 is reserved for a Master that \
                 resigns (RFC 5798 §5.2.4); use 1..255"
            ),
            format!(
                "{file}:6:8: instance[0].vips: at least one VIP is required (RFC 5798 §5.2.5: \
                 Count IPvX Addr is at least 1)"
            ),
            format!(
                "{file}:9:8: instance[1].name: instance name \"web\" is already used at line 2"
            ),
            format!(
                "{file}:10:13: instance[1].interface: \"eth0/1\" contains '/', which Linux does \
                 not allow in interface names"
            ),
            format!(
                "{file}:12:9: instance[1].vips[0]: prefix length /40 is out of range for IPv4 \
                 (1..=32)"
            ),
            format!("vipkeeper check: 6 errors in {file}"),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// The command line

const VALID: &str = r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]
"#;

// `run` on a valid file starts the daemon, which opens sockets and talks netlink: that is
// only ever done inside the namespace lab (integration/daemon_lab.rs), never here in the
// root namespace.

#[test]
fn run_refuses_an_invalid_file_with_exit_1() {
    let config = TempConfig::new(VALID.replace("vrid = 51", "vrid = 0"));
    let outcome = run_on("run", &config.path);
    assert_eq!(outcome.code, Some(1));
    let expected = format!("{}:4:8: instance[0].vrid: ", config.path.display());
    assert!(outcome.stderr.contains(&expected), "{}", outcome.stderr);
    assert!(
        !outcome.stderr.contains("starting"),
        "the daemon must not start"
    );
}

#[test]
fn a_missing_file_is_a_configuration_error() {
    let config = TempConfig::new(VALID);
    let missing = config.dir.join("absent.toml");
    let outcome = run_on("check", &missing);
    assert_eq!(outcome.code, Some(1));
    let expected = format!("{}: cannot read: ", missing.display());
    assert!(outcome.stderr.starts_with(&expected), "{}", outcome.stderr);
}

#[test]
fn the_default_path_is_etc_vipkeeper() {
    let outcome = vipkeeper(&["check", "--help"]);
    assert_eq!(outcome.code, Some(0));
    assert!(outcome
        .stdout
        .contains("[default: /etc/vipkeeper/vipkeeper.toml]"));
    if !Path::new("/etc/vipkeeper/vipkeeper.toml").exists() {
        let outcome = vipkeeper(&["check"]);
        assert_eq!(outcome.code, Some(1));
        assert!(outcome
            .stderr
            .starts_with("/etc/vipkeeper/vipkeeper.toml: cannot read: "));
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let outcome = vipkeeper(&["--help"]);
    assert_eq!(outcome.code, Some(0));
    for line in [
        "Exit codes:",
        "  0  success",
        "  1  configuration error",
        "  2  runtime error",
    ] {
        assert!(outcome.stdout.contains(line), "{}", outcome.stdout);
    }
}

#[test]
fn a_bad_command_line_exits_1() {
    assert_eq!(vipkeeper(&["frobnicate"]).code, Some(1));
    assert_eq!(vipkeeper(&["check", "--bogus"]).code, Some(1));
}

// ---------------------------------------------------------------------------------------
// Announcements (keepalived's garp_* knobs)

#[test]
fn garp_settings_inherit_from_global_and_can_be_overridden() {
    let outcome = accepts(
        r#"[global]
node_name = "lb1"
garp_master_repeat = 3
garp_master_refresh = "60s"
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
garp_master_delay = "0s"
garp_lower_prio_repeat = 1
vips = ["192.0.2.50"]
"#,
    );
    let instance = outcome
        .stdout
        .split("[[instance]]")
        .nth(1)
        .expect("an instance");
    for line in [
        "garp_master_repeat = 3",
        "garp_master_delay = \"0s\"",
        "garp_master_refresh = \"60s\"",
        "garp_lower_prio_repeat = 1",
    ] {
        assert!(instance.contains(line), "{line} missing from:\n{instance}");
    }
}

#[test]
fn garp_settings_out_of_range_are_rejected() {
    rejects(
        "[global]\nnode_name = \"lb1\"\ngarp_master_repeat = 101\n",
        "3:22: global.garp_master_repeat: must be 0..100 announcements per VIP, got 101",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
garp_master_refresh = "500ms"
vips = ["192.0.2.50"]
"#,
        "5:23: instance[0].garp_master_refresh: garp_master_refresh must be 0s (off) or 1s..24h",
    );
    rejects(
        r#"[[instance]]
name = "web"
interface = "eth0"
vrid = 51
garp_master_delay = "2000s"
vips = ["192.0.2.50"]
"#,
        "5:21: instance[0].garp_master_delay: garp_master_delay must be 0s (no second burst)..1000s",
    );
}

// ---------------------------------------------------------------------------------------
// Checks and tracks

const INSTANCE_WITH_TRACKS: &str = r#"[global]
node_name = "lb1"
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 150
vips = ["192.0.2.50/24"]
"#;

/// A config of one instance tracking `track`, followed by `checks`.
fn with_checks(track: &str, checks: &str) -> String {
    format!("{INSTANCE_WITH_TRACKS}{track}\n{checks}")
}

#[test]
fn checks_print_their_settings_and_the_priority_range() {
    let outcome = accepts(&with_checks(
        r#"track = [{ check = "haproxy", weight = -60 }, { check = "backends", weight = -30 }, { check = "eth1" }]"#,
        r#"
[check.haproxy]
type = "process"
name = "haproxy"

[check.backends]
type = "haproxy"
socket = "/run/haproxy/admin.sock"
backend = "be_web"
graded = true
interval = "100ms"
rise = 2

[check.eth1]
type = "interface"
interface = "eth1"
"#,
    ));
    let out = &outcome.stdout;
    for expected in [
        "# effective priority: 60..150 from its tracks (FAULT when a weight-0 check fails)",
        "  { check = \"eth1\", weight = 0, reverse = false },",
        "[check.backends]\ntype = \"haproxy\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 2\nfall = 1",
        "[check.haproxy]\ntype = \"process\"",
        "rescan = \"1s\"",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert_eq!(outcome.stderr, "");
    // The output is itself a valid configuration that prints the same settings.
    let body: String = out.lines().skip(2).map(|l| format!("{l}\n")).collect();
    let again = accepts(&body);
    let again: String = again
        .stdout
        .lines()
        .skip(2)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(again, body);
}

#[test]
fn check_rules_are_enforced_with_positions() {
    let cases = [
        (
            "[check.x]\ntype = \"ping\"\n",
            "11:8: check.x.type: type must be one of",
        ),
        (
            "[check.x]\ntype = \"tcp\"\naddress = \"127.0.0.1:80\"\nbackend = \"be\"\n",
            "13:11: check.x.backend: does not apply to type = \"tcp\"",
        ),
        (
            "[check.x]\ntype = \"tcp\"\n",
            "10:1: check.x.address: required key is missing",
        ),
        (
            "[check.x]\ntype = \"tcp\"\naddress = \"192.0.2.10\"\n",
            "12:11: check.x.address: \"192.0.2.10\" is not ADDRESS:PORT",
        ),
        (
            "[check.x]\ntype = \"haproxy\"\naddress = \"192.0.2.10:9999\"\n",
            "12:11: check.x.address: 192.0.2.10:9999 is not on loopback",
        ),
        (
            "[check.x]\ntype = \"haproxy\"\nsocket = \"/run/a.sock\"\naddress = \"127.0.0.1:1\"\n",
            "12:10: check.x.socket: set exactly one of `socket` and `address`",
        ),
        (
            "[check.x]\ntype = \"haproxy\"\nsocket = \"/run/a.sock\"\nmin_up = 2\ngraded = true\n",
            "13:10: check.x.min_up: set exactly one of `min_up` and `graded`",
        ),
        (
            "[check.x]\ntype = \"http\"\nurl = \"ftp://192.0.2.10/\"\n",
            "12:7: check.x.url: \"ftp://192.0.2.10/\" is not an http:// or https:// URL",
        ),
        (
            "[check.x]\ntype = \"http\"\nurl = \"http://192.0.2.10/\"\nexpect_status = [200, 99]\n",
            "13:23: check.x.expect_status: must be an HTTP status 100..599, got 99",
        ),
        (
            "[check.x]\ntype = \"exec\"\ncommand = [\"check_haproxy\"]\n",
            "12:12: check.x.command: \"check_haproxy\" must be an absolute path",
        ),
        (
            "[check.x]\ntype = \"exec\"\ncommand = [\"a\", \"b\"]\nshell = true\n",
            "12:11: check.x.command: with shell = true, command is one string",
        ),
        (
            "[check.x]\ntype = \"process\"\nname = \"haproxy-master-long\"\n",
            "12:8: check.x.name: \"haproxy-master-long\" is longer than 15 bytes",
        ),
        (
            "[check.x]\ntype = \"file\"\npath = \"prio\"\n",
            "12:8: check.x.path: \"prio\" must be an absolute path",
        ),
        (
            "[check.x]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\nrise = 0\n",
            "13:8: check.x.rise: must be 1..100, got 0",
        ),
        (
            "[check.x]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\ninterval = \"5ms\"\n",
            "13:12: check.x.interval: must be 10ms..1h, got \"5ms\"",
        ),
    ];
    for (checks, expected) in cases {
        rejects(
            &with_checks("track = [{ check = \"x\", weight = -10 }]", checks),
            expected,
        );
    }
}

/// Watched checks report each change once: polling keys would be meaningless (and a
/// `fall` above 1 would never see the second failure).
#[test]
fn watched_checks_refuse_polling_keys() {
    let cases = [
        (
            "[check.x]\ntype = \"process\"\nname = \"haproxy\"\nfall = 2\n",
            "13:8: check.x.fall: does not apply to type = \"process\": it reports each change",
        ),
        (
            "[check.x]\ntype = \"interface\"\ninterface = \"eth1\"\ninterval = \"1s\"\n",
            "13:12: check.x.interval: does not apply to type = \"interface\"",
        ),
        (
            "[check.x]\ntype = \"process\"\n",
            "10:1: check.x.name: set exactly one of `name` and `pidfile`",
        ),
    ];
    for (checks, expected) in cases {
        rejects(
            &with_checks("track = [{ check = \"x\", weight = -10 }]", checks),
            expected,
        );
    }
}

#[test]
fn track_rules_are_enforced_with_positions() {
    let check = "[check.x]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n";
    let cases = [
        (
            "track = [{ check = \"nope\" }]",
            "9:20: instance[0].track[0].check: no [check.nope] is defined",
        ),
        (
            "track = [{ check = \"x\" }, { check = \"x\", weight = -5 }]",
            "9:37: instance[0].track[1].check: check \"x\" is already tracked",
        ),
        (
            "track = [{ check = \"x\", weight = -254 }]",
            "9:34: instance[0].track[0].weight: must be -253..253, got -254",
        ),
        (
            "track = [{ weight = -5 }]",
            "9:10: instance[0].track[0].check: required key is missing",
        ),
    ];
    for (track, expected) in cases {
        rejects(&with_checks(track, check), expected);
    }
}

#[test]
fn a_weight_smaller_than_the_gap_to_the_peer_is_warned_about() {
    // keepalived's classic pair: 101/100 with a -2 weight... is fine; 150/100 with -2 is not.
    let text = with_checks(
        "track = [{ check = \"x\", weight = -2 }]\npeer_priority = 100",
        "[check.x]\ntype = \"process\"\nname = \"haproxy\"\n",
    );
    let outcome = accepts(&text);
    assert!(
        outcome.stderr.contains(
            "9:9: instance[0].track: warning: with every tracked check failing this instance \
             still has priority 148 (configured 150), not below the peer's 100"
        ),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("needs weight = -51 or lower"),
        "{}",
        outcome.stderr
    );
    // Enough weight: no warning.
    let text = text.replace("weight = -2", "weight = -51");
    assert_eq!(accepts(&text).stderr, "");
    // weight 0 (FAULT) always moves the VIP: no warning either.
    let text = text.replace("weight = -51", "weight = 0");
    assert_eq!(accepts(&text).stderr, "");
}

#[test]
fn unused_checks_and_owner_weights_are_warned_about() {
    let outcome = accepts(&with_checks(
        "",
        "[check.unused]\ntype = \"process\"\nname = \"haproxy\"\n",
    ));
    assert!(
        outcome
            .stderr
            .contains("10:1: check.unused: warning: no instance or group tracks this check"),
        "{}",
        outcome.stderr
    );
    let owner = with_checks(
        "track = [{ check = \"x\", weight = -60 }]",
        "[check.x]\ntype = \"process\"\nname = \"haproxy\"\n",
    )
    .replace("priority = 150", "priority = 255");
    let outcome = accepts(&owner);
    assert!(
        outcome
            .stderr
            .contains("warning: weights have no effect at priority 255"),
        "{}",
        outcome.stderr
    );
}
