//! The effective settings, as `vipkeeper check` prints them.
//!
//! Owns the rendering only: TOML in the file's own key names, every default filled in,
//! and `#` comment lines for what is derived (family, where adverts go, Skew_Time and
//! Master_Down_Interval from [`Instance::timers`]). Valid TOML on purpose: two nodes'
//! outputs can be diffed, and the output reads back to the same [`Config`] (the
//! password excepted: it is never printed).

use std::fmt::Write;

use super::duration;
use super::validate::{family_name, Check, CheckKind, Config, Garp, Instance, TrackRef};
use crate::health::haproxy::{Judge, StatsTarget};
use crate::health::http::HttpMethod;
use crate::health::process::ProcessMatch;
use crate::health::score::priority_range;
use crate::notify::{Hook, HookSet, QueuePolicy};
use crate::vrrp::packet::{Auth, ChecksumMode};
use crate::vrrp::{Family, Version, OWNER_PRIORITY};

/// Render `config` as annotated TOML.
pub fn effective_settings(config: &Config) -> String {
    let mut out = String::new();
    out.push_str("[global]\n");
    line(
        &mut out,
        format_args!("node_name = {}", quote(&config.global.node_name)),
    );
    render_garp(&mut out, &config.global.garp);
    let global = &config.global;
    line(
        &mut out,
        format_args!("script_security = {}", global.script_security),
    );
    let socket = global.control_socket.display().to_string();
    line(
        &mut out,
        format_args!("control_socket = {}", quote(&socket)),
    );
    let metrics = global
        .metrics_listen
        .map_or("off".to_owned(), |address| address.to_string());
    line(&mut out, format_args!("metrics_listen = \"{metrics}\""));
    let hold = duration::format(global.switchover_hold);
    line(&mut out, format_args!("switchover_hold = \"{hold}\""));
    for instance in &config.instances {
        out.push('\n');
        render_instance(&mut out, instance);
    }
    for group in &config.groups {
        out.push('\n');
        out.push_str("[[group]]\n");
        line(&mut out, format_args!("name = {}", quote(&group.name)));
        let members: Vec<String> = group.instances.iter().map(|m| quote(m)).collect();
        line(
            &mut out,
            format_args!("instances = [{}]", members.join(", ")),
        );
        render_tracks(&mut out, &group.tracks);
        render_notify(&mut out, "group", &group.notify);
    }
    for check in &config.checks {
        out.push('\n');
        render_check(&mut out, check);
    }
    out
}

fn render_garp(out: &mut String, garp: &Garp) {
    line(
        out,
        format_args!("garp_master_repeat = {}", garp.master_repeat),
    );
    let delay = duration::format(garp.master_delay);
    line(out, format_args!("garp_master_delay = \"{delay}\""));
    let refresh = garp
        .master_refresh
        .map_or("0s".to_owned(), duration::format);
    line(out, format_args!("garp_master_refresh = \"{refresh}\""));
    line(
        out,
        format_args!("garp_lower_prio_repeat = {}", garp.lower_prio_repeat),
    );
}

fn render_instance(out: &mut String, instance: &Instance) {
    let family = family_name(instance.family);
    out.push_str("[[instance]]\n");
    line(out, format_args!("name = {}", quote(&instance.name)));
    line(
        out,
        format_args!("interface = {}", quote(&instance.interface)),
    );
    line(out, format_args!("vrid = {}", instance.vrid));
    line(out, format_args!("version = {}", instance.version.number()));
    let owner = if instance.priority == OWNER_PRIORITY {
        "  # the address owner"
    } else {
        ""
    };
    line(out, format_args!("priority = {}{owner}", instance.priority));
    let interval = duration::format(instance.advert_interval.as_duration());
    line(out, format_args!("advert_interval = \"{interval}\""));
    line(out, format_args!("preempt = {}", instance.preempt));
    let delay = duration::format(instance.preempt_delay);
    line(out, format_args!("preempt_delay = \"{delay}\""));
    line(
        out,
        format_args!("fast_preempt = {}", instance.fast_preempt),
    );
    render_garp(out, &instance.garp);
    if let Auth::SimplePassword(password) = &instance.auth {
        let len = password.iter().take_while(|&&byte| byte != 0).count();
        line(
            out,
            format_args!("# auth_pass is set ({len} bytes, not shown)"),
        );
    }
    if instance.version == Version::V3 && instance.family == Family::Ipv4 {
        let as_v2 = instance.checksum_mode == ChecksumMode::V2Compatible;
        line(out, format_args!("v3_checksum_as_v2 = {as_v2}"));
    }
    if let Some(source) = instance.unicast_source {
        line(out, format_args!("unicast_source = \"{source}\""));
    }
    if !instance.unicast_peers.is_empty() {
        let peers: Vec<String> = instance
            .unicast_peers
            .iter()
            .map(|peer| format!("\"{peer}\""))
            .collect();
        line(out, format_args!("unicast_peers = [{}]", peers.join(", ")));
    }
    out.push_str("vips = [\n");
    for vip in &instance.vips {
        let label = vip
            .label
            .as_ref()
            .map(|label| format!(", label = {}", quote(label)))
            .unwrap_or_default();
        line(
            out,
            format_args!(
                "  {{ address = \"{vip}\", dev = {}{label} }},",
                quote(&vip.dev)
            ),
        );
    }
    out.push_str("]\n");
    render_tracks(out, &instance.tracks);
    if let Some(peer) = instance.peer_priority {
        line(out, format_args!("peer_priority = {peer}"));
    }

    line(out, format_args!("# family: {family}"));
    if !instance.tracks.is_empty() {
        let weights: Vec<(i32, bool)> = instance
            .tracks
            .iter()
            .map(|track| (track.weight, track.is_file))
            .collect();
        let range = priority_range(instance.priority, &weights);
        let mut notes = Vec::new();
        if range.can_fault {
            notes.push("FAULT when a weight-0 check fails");
        }
        if range.has_file_tracks {
            notes.push("file values not included");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        line(
            out,
            format_args!(
                "# effective priority: {}..{} from its tracks{notes}",
                range.lowest, range.highest
            ),
        );
    }
    let from = match (instance.unicast_source, instance.family) {
        (Some(source), _) => source.to_string(),
        (None, Family::Ipv4) => format!("the primary IPv4 address of {}", instance.interface),
        // RFC 5798 §5.1.2.1: the source of an IPv6 advert is the link-local address.
        (None, Family::Ipv6) => format!("the link-local address of {}", instance.interface),
    };
    match instance.multicast_group() {
        Some(group) => line(
            out,
            format_args!("# adverts: multicast to {group}, from {from}"),
        ),
        None => {
            let peers: Vec<String> = instance
                .unicast_peers
                .iter()
                .map(|p| p.to_string())
                .collect();
            let to = peers.join(", ");
            line(out, format_args!("# adverts: unicast to {to}, from {from}"));
        }
    }
    let timers = instance.timers();
    let rfc = match instance.version {
        Version::V2 => "RFC 3768 §6.1",
        Version::V3 => "RFC 5798 §6.1",
    };
    line(
        out,
        format_args!(
            "# skew_time: {}, master_down_interval: {} ({rfc}, at priority {})",
            duration::format(timers.skew_time),
            duration::format(timers.master_down_interval),
            instance.priority,
        ),
    );
    render_notify(out, "instance", &instance.notify);
}

fn render_tracks(out: &mut String, tracks: &[TrackRef]) {
    if tracks.is_empty() {
        return;
    }
    out.push_str("track = [\n");
    for track in tracks {
        line(
            out,
            format_args!(
                "  {{ check = {}, weight = {}, reverse = {} }},",
                quote(&track.check),
                track.weight,
                track.reverse
            ),
        );
    }
    out.push_str("]\n");
}

/// `[instance.notify]` / `[group.notify]`, every hook in the table form. Printed after the
/// instance's own keys and comments, since a TOML table ends the instance's key list.
/// Left out only when it says nothing: no hook and the default queue (a `queue` set without
/// hooks is still part of the configuration, and the output must read back to it).
fn render_notify(out: &mut String, table: &str, hooks: &HookSet) {
    if hooks.is_empty() && hooks.queue == QueuePolicy::default() {
        return;
    }
    out.push('\n');
    line(out, format_args!("[{table}.notify]"));
    let queue = match hooks.queue {
        QueuePolicy::All => "all",
        QueuePolicy::Latest => "latest",
    };
    line(out, format_args!("queue = \"{queue}\""));
    for (state, list) in [
        ("master", &hooks.master),
        ("backup", &hooks.backup),
        ("fault", &hooks.fault),
        ("stop", &hooks.stop),
        ("any", &hooks.any),
    ] {
        if list.is_empty() {
            continue;
        }
        line(out, format_args!("{state} = ["));
        for hook in list.iter() {
            line(out, format_args!("  {},", hook_table(hook)));
        }
        out.push_str("]\n");
    }
}

fn hook_table(hook: &Hook) -> String {
    match hook {
        Hook::Command(command) => {
            let argv: Vec<String> = command.argv.iter().map(|a| quote(a)).collect();
            format!(
                "{{ command = [{}], shell = {}, timeout = \"{}\" }}",
                argv.join(", "),
                command.shell,
                duration::format(command.timeout)
            )
        }
        Hook::HaproxyReload(settings) => {
            let check = settings
                .check_config
                .as_ref()
                .map(|path| format!(", check_config = {}", quote(&path.display().to_string())))
                .unwrap_or_default();
            format!(
                "{{ action = \"haproxy_reload\", master_socket = {}{check}, haproxy_binary = {}, \
                 timeout = \"{}\" }}",
                quote(&settings.master_socket.display().to_string()),
                quote(&settings.haproxy_binary.display().to_string()),
                duration::format(settings.timeout)
            )
        }
        Hook::MysqlAdmin(settings) => format!(
            "{{ action = \"mysql_admin\", address = \"{}\", user = {}, password_file = {}, \
             statement = {}, timeout = \"{}\" }}",
            settings.address,
            quote(&settings.user),
            quote(&settings.password_file.display().to_string()),
            quote(&settings.statement),
            duration::format(settings.timeout)
        ),
    }
}

fn render_check(out: &mut String, check: &Check) {
    line(out, format_args!("[check.{}]", table_key(&check.name)));
    line(out, format_args!("type = \"{}\"", check.kind.type_name()));
    let watched = matches!(
        check.kind,
        CheckKind::Interface { .. } | CheckKind::File(_) | CheckKind::Process(_)
    );
    if !watched {
        let interval = duration::format(check.interval);
        let timeout = duration::format(check.timeout);
        line(out, format_args!("interval = \"{interval}\""));
        line(out, format_args!("timeout = \"{timeout}\""));
        line(out, format_args!("rise = {}", check.rise));
        line(out, format_args!("fall = {}", check.fall));
    }
    line(out, format_args!("init_fail = {}", check.init_fail));
    match &check.kind {
        CheckKind::Haproxy(settings) => {
            match &settings.target {
                StatsTarget::Unix(path) => line(
                    out,
                    format_args!("socket = {}", quote(&path.display().to_string())),
                ),
                StatsTarget::Tcp(address) => line(out, format_args!("address = \"{address}\"")),
            }
            if let Some(backend) = &settings.backend {
                line(out, format_args!("backend = {}", quote(backend)));
            }
            match settings.judge {
                Judge::MinUp(count) => line(out, format_args!("min_up = {count}")),
                Judge::Graded => line(out, format_args!("graded = true")),
            }
        }
        CheckKind::Tcp(settings) => line(out, format_args!("address = \"{}\"", settings.address)),
        CheckKind::Http(settings) => {
            line(out, format_args!("url = {}", quote(&settings.url)));
            let method = match settings.method {
                HttpMethod::Get => "GET",
                HttpMethod::Head => "HEAD",
            };
            line(out, format_args!("method = \"{method}\""));
            let statuses: Vec<String> = settings.expect_status.iter().map(u16::to_string).collect();
            line(
                out,
                format_args!("expect_status = [{}]", statuses.join(", ")),
            );
            if let Some(body) = &settings.body_contains {
                line(out, format_args!("body_contains = {}", quote(body)));
            }
            if let Some(host) = &settings.host {
                line(out, format_args!("host = {}", quote(host)));
            }
            line(out, format_args!("verify_tls = {}", settings.verify_tls));
        }
        CheckKind::Mysql(settings) => {
            line(out, format_args!("address = \"{}\"", settings.address));
            line(out, format_args!("user = {}", quote(&settings.user)));
            let file = settings.password_file.display().to_string();
            line(out, format_args!("password_file = {}", quote(&file)));
        }
        CheckKind::Exec(settings) => {
            let argv: Vec<String> = settings.argv.iter().map(|arg| quote(arg)).collect();
            line(out, format_args!("command = [{}]", argv.join(", ")));
            line(out, format_args!("shell = {}", settings.shell));
        }
        CheckKind::Interface { interface } => {
            line(out, format_args!("interface = {}", quote(interface)))
        }
        CheckKind::File(settings) => {
            let path = settings.path.display().to_string();
            line(out, format_args!("path = {}", quote(&path)));
        }
        CheckKind::Process(settings) => {
            match &settings.matcher {
                ProcessMatch::Name(name) => line(out, format_args!("name = {}", quote(name))),
                ProcessMatch::Pidfile(path) => {
                    let path = path.display().to_string();
                    line(out, format_args!("pidfile = {}", quote(&path)))
                }
            }
            let rescan = duration::format(settings.rescan);
            line(out, format_args!("rescan = \"{rescan}\""));
        }
    }
}

fn line(out: &mut String, text: std::fmt::Arguments<'_>) {
    // Writing to a String cannot fail.
    let _ = out.write_fmt(text);
    out.push('\n');
}

/// A check name as a TOML key: bare when TOML allows it, else quoted. A name may hold `.`
/// (`[check."db.primary"]`), which a bare key would read as a nested table.
fn table_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        name.to_owned()
    } else {
        quote(name)
    }
}

/// A TOML basic string. Names are validated to need little escaping, but a `"` or `\` in
/// an interface name is legal for Linux and must not break the output.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_valid as parse;

    const PAIR_NODE: &str = r#"
[global]
node_name = "lb1"
garp_master_repeat = 5
garp_master_delay = "5s"
garp_master_refresh = "0s"
garp_lower_prio_repeat = 5
script_security = true
control_socket = "/run/vipkeeper/control.sock"
metrics_listen = "127.0.0.1:9650"
switchover_hold = "15m"

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 150
unicast_source = "192.0.2.11"
unicast_peers = ["192.0.2.12"]
vips = ["192.0.2.50/24", { address = "192.0.2.51", dev = "eth1", label = "eth1:web" }]

[[instance]]
name = "web6"
interface = "eth0"
vrid = 52
advert_interval = "100ms"
vips = ["2001:db8::50/64"]
"#;

    #[test]
    fn shows_defaults_and_derived_values() {
        let shown = effective_settings(&parse(PAIR_NODE));
        let expected = r#"[global]
node_name = "lb1"
garp_master_repeat = 5
garp_master_delay = "5s"
garp_master_refresh = "0s"
garp_lower_prio_repeat = 5
script_security = true
control_socket = "/run/vipkeeper/control.sock"
metrics_listen = "127.0.0.1:9650"
switchover_hold = "900s"

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
version = 3
priority = 150
advert_interval = "1s"
preempt = true
preempt_delay = "0s"
fast_preempt = false
garp_master_repeat = 5
garp_master_delay = "5s"
garp_master_refresh = "0s"
garp_lower_prio_repeat = 5
v3_checksum_as_v2 = false
unicast_source = "192.0.2.11"
unicast_peers = ["192.0.2.12"]
vips = [
  { address = "192.0.2.50/24", dev = "eth0" },
  { address = "192.0.2.51/32", dev = "eth1", label = "eth1:web" },
]
# family: IPv4
# adverts: unicast to 192.0.2.12, from 192.0.2.11
# skew_time: 414.062ms, master_down_interval: 3.414062s (RFC 5798 §6.1, at priority 150)

[[instance]]
name = "web6"
interface = "eth0"
vrid = 52
version = 3
priority = 100
advert_interval = "100ms"
preempt = true
preempt_delay = "0s"
fast_preempt = false
garp_master_repeat = 5
garp_master_delay = "5s"
garp_master_refresh = "0s"
garp_lower_prio_repeat = 5
vips = [
  { address = "2001:db8::50/64", dev = "eth0" },
]
# family: IPv6
# adverts: multicast to ff02::12, from the link-local address of eth0
# skew_time: 60.937ms, master_down_interval: 360.937ms (RFC 5798 §6.1, at priority 100)
"#;
        assert_eq!(shown, expected);
    }

    #[test]
    fn output_reads_back_to_the_same_config() {
        let config = parse(PAIR_NODE);
        assert_eq!(parse(&effective_settings(&config)), config);
    }

    /// Found through the importer's fuzz target: `[check.a.b]` for a check named `a.b` is
    /// a nested table, so the output did not read back.
    #[test]
    fn a_check_name_with_a_dot_is_quoted() {
        let config = parse(
            r#"
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]
track = [{ check = "db.primary", weight = -10 }]

[check."db.primary"]
type = "process"
name = "mariadbd"
"#,
        );
        let shown = effective_settings(&config);
        assert!(shown.contains("[check.\"db.primary\"]\n"), "{shown}");
        assert_eq!(parse(&shown), config);
    }

    /// Found by the fuzzer (integration/fuzz.rs, config): a notify table with a queue
    /// policy and no hook was left out, and the output read back with the default queue.
    #[test]
    fn a_queue_without_hooks_reads_back() {
        let config = parse(
            r#"
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50/24"]

[instance.notify]
queue = "latest"
"#,
        );
        let shown = effective_settings(&config);
        assert!(
            shown.contains("[instance.notify]\nqueue = \"latest\"\n"),
            "{shown}"
        );
        assert_eq!(parse(&shown), config);
    }

    #[test]
    fn the_password_is_never_printed() {
        let config = parse(
            r#"
[[instance]]
name = "v2"
interface = "eth0"
vrid = 7
version = 2
auth_pass = "s3cr3t"
vips = ["192.0.2.7"]
"#,
        );
        let shown = effective_settings(&config);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("# auth_pass is set (6 bytes, not shown)"));
        assert!(
            !shown.contains("v3_checksum_as_v2"),
            "v2 has no such setting"
        );
        assert!(shown.contains("(RFC 3768 §6.1, at priority 100)"));
    }

    #[test]
    fn quotes_like_toml() {
        assert_eq!(quote("eth0"), r#""eth0""#);
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("a\u{1}"), r#""a\u0001""#);
    }
}
