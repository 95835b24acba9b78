//! keepalived.conf → vipkeeper TOML over a corpus of realistic configurations
//! (`integration/keepalived_corpus/`): each file is converted, the TOML is parsed and
//! validated by `vipkeeper::config::parse` (the same as `vipkeeper check`), and the facts
//! that matter for the election and for operations are asserted on the parsed result.
//!
//! Scripts in the corpus are `/usr/bin/true` (or other programs that exist on Debian), so
//! that script security passes; the classic `killall -0 haproxy` is kept as keepalived
//! writes it and its (shell) check is asserted explicitly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vipkeeper::config::keepalived::{import, import_text, Import, ImportError};
use vipkeeper::config::{parse, CheckKind, Config};
use vipkeeper::notify::Hook;
use vipkeeper::vrrp::Version;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("integration/keepalived_corpus")
        .join(name)
}

/// Convert a corpus file; its TOML must pass validation.
fn convert(name: &str) -> (Import, Config) {
    let import = import(&corpus(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    match parse(&import.toml, name) {
        Ok(config) => (import, config),
        Err(errors) => panic!(
            "{name}: the converted TOML is refused:\n{errors}\n{}",
            import.toml
        ),
    }
}

fn has_note(import: &Import, keyword: &str, text: &str) -> bool {
    import
        .notes
        .iter()
        .any(|n| n.keyword == keyword && n.message.contains(text))
}

fn exec(config: &Config, name: &str) -> (Vec<String>, bool) {
    let check = config.checks.iter().find(|c| c.name == name).expect(name);
    match &check.kind {
        CheckKind::Exec(settings) => (settings.argv.clone(), settings.shell),
        other => panic!("{name} is not an exec check: {other:?}"),
    }
}

fn argv(hooks: &[Hook]) -> Vec<(Vec<String>, bool)> {
    hooks
        .iter()
        .map(|hook| match hook {
            Hook::Command(command) => (command.argv.clone(), command.shell),
            other => panic!("not a command hook: {other:?}"),
        })
        .collect()
}

fn tracks(config: &Config, instance: usize) -> Vec<(String, i32, bool)> {
    config.instances[instance]
        .tracks
        .iter()
        .map(|t| (t.check.clone(), t.weight, t.reverse))
        .collect()
}

#[test]
fn classic_haproxy_pair_both_nodes() {
    for (file, node, priority) in [
        ("classic-lb1.conf", "lb1", 101),
        ("classic-lb2.conf", "lb2", 100),
    ] {
        let import = import(&corpus(file)).expect(file);
        // `killall` is not an absolute path: a shell runs it, as keepalived's system().
        let config = parse(&import.toml, file).unwrap_or_else(|e| panic!("{e}\n{}", import.toml));
        assert_eq!(config.global.node_name, node);
        let instance = &config.instances[0];
        assert_eq!(instance.name, "VI_1");
        assert_eq!(instance.vrid, 51);
        assert_eq!(instance.priority, priority);
        // keepalived's default version, written out since vipkeeper's default is 3.
        assert_eq!(instance.version, Version::V2);
        assert!(import.toml.contains("version = 2"));
        assert_eq!(
            instance.advert_interval.as_duration(),
            Duration::from_secs(1)
        );
        assert_eq!(instance.vips[0].to_string(), "192.0.2.50/24");
        assert_eq!(instance.vips[0].label.as_deref(), Some("eth0:1"));
        assert!(instance.unicast_peers.is_empty());
        assert!(instance.preempt);
        assert_eq!(tracks(&config, 0), [("chk_haproxy".into(), 2, false)]);
        assert_eq!(
            exec(&config, "chk_haproxy"),
            (vec!["killall -0 haproxy".to_owned()], true)
        );
        assert_eq!(config.checks[0].interval, Duration::from_secs(2));
        // The better replacement is suggested, with the process name.
        assert!(
            has_note(&import, "script", "`name = \"haproxy\"`"),
            "{:?}",
            import.notes
        );
        assert!(has_note(&import, "smtp_server", "not supported"));
        // Notes carry file:line.
        let note = import.notes.iter().find(|n| n.keyword == "script").unwrap();
        assert!(note.file.ends_with(file) && note.line == 12, "{note}");
        // The annotated header names the source.
        assert!(import
            .toml
            .starts_with("# vipkeeper configuration imported from keepalived"));
        assert!(import.toml.contains(file));
    }
}

#[test]
fn dual_vip_mirrored_instances() {
    let (import, config) = convert("dual-vip-lb1.conf");
    assert_eq!(config.instances.len(), 2);
    let (one, two) = (&config.instances[0], &config.instances[1]);
    assert_eq!((one.vrid, one.priority), (60, 100));
    assert_eq!((two.vrid, two.priority), (61, 50));
    assert_eq!(one.vips[0].to_string(), "192.0.2.60/24");
    assert_eq!(two.vips[0].to_string(), "192.0.2.61/24");
    // One check, tracked by both with the track's weight.
    assert_eq!(config.checks.len(), 1);
    assert_eq!(tracks(&config, 0), [("chk_haproxy".into(), -60, false)]);
    assert_eq!(tracks(&config, 1), [("chk_haproxy".into(), -60, false)]);
    let check = &config.checks[0];
    assert_eq!((check.rise, check.fall), (2, 2));
    assert_eq!(check.timeout, Duration::from_secs(2));
    assert_eq!(
        exec(&config, "chk_haproxy"),
        (vec!["/usr/bin/true".into()], false)
    );
    assert_eq!(
        config.global.garp.master_refresh,
        Some(Duration::from_secs(60))
    );
    assert!(config.groups.is_empty());
    assert!(import.notes.is_empty(), "{:?}", import.notes);
}

#[test]
fn unicast_v3_nopreempt() {
    let (import, config) = convert("unicast.conf");
    let instance = &config.instances[0];
    assert_eq!(instance.version, Version::V3);
    assert_eq!(
        instance.advert_interval.as_duration(),
        Duration::from_millis(500)
    );
    assert_eq!(instance.unicast_source, Some("192.0.2.12".parse().unwrap()));
    assert_eq!(
        instance.unicast_peers,
        ["192.0.2.11".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(!instance.preempt);
    assert_eq!(instance.garp.master_repeat, 3);
    assert_eq!(instance.garp.master_delay, Duration::from_secs(1));
    // No weight: a failure means FAULT, as keepalived's weight 0.
    assert_eq!(tracks(&config, 0), [("chk_haproxy".into(), 0, false)]);
    assert!(has_note(&import, "script_user", "dropped"));
}

#[test]
fn sync_group_with_tracks_and_hooks() {
    let (import, config) = convert("sync-group.conf");
    assert_eq!(config.groups.len(), 1);
    let group = &config.groups[0];
    assert_eq!(group.name, "VG_1");
    assert_eq!(group.instances, ["front", "back"]);
    assert_eq!(group.tracks.len(), 1);
    assert_eq!(
        (group.tracks[0].check.as_str(), group.tracks[0].weight),
        ("if_eth1", 0)
    );
    assert_eq!(
        argv(&group.notify.master),
        [(vec!["/usr/bin/true".into(), "group-master".into()], false)]
    );
    assert_eq!(
        argv(&group.notify.backup),
        [(vec!["/usr/bin/true".into()], false)]
    );
    // keepalived ignores weights on members without sync_group_tracking_weight.
    assert_eq!(tracks(&config, 1), [("chk_backend".into(), 0, false)]);
    assert!(has_note(
        &import,
        "chk_backend",
        "sync_group_tracking_weight"
    ));
    let interface = config.checks.iter().find(|c| c.name == "if_eth1").unwrap();
    assert_eq!(
        interface.kind,
        CheckKind::Interface {
            interface: "eth1".into()
        }
    );
    // No priority given: keepalived's 100... here 150 was given; no state: no note.
    assert_eq!(config.instances[0].priority, 150);
    assert_eq!(config.instances[1].vips[0].dev, "eth1");
}

#[test]
fn every_tracker_kind_with_weights() {
    let (import, config) = convert("trackers.conf");
    assert_eq!(
        tracks(&config, 0),
        [
            ("chk_http".into(), -30, false),
            // The track's weight overrides the script's; `reverse` comes from the script.
            ("chk_local".into(), 5, true),
            ("haproxy_proc".into(), -80, false),
            ("maintenance".into(), -2, false),
            ("if_eth1".into(), -50, false),
            ("if_eth2".into(), 0, false),
        ]
    );
    let http = config.checks.iter().find(|c| c.name == "chk_http").unwrap();
    assert_eq!((http.rise, http.fall, http.init_fail), (2, 3, true));
    assert_eq!(http.interval, Duration::from_secs(3));
    assert_eq!(http.timeout, Duration::from_secs(2));
    assert_eq!(
        exec(&config, "chk_http").0,
        ["/usr/bin/curl", "-fs", "http://127.0.0.1:8404/stats"]
    );
    let local = config
        .checks
        .iter()
        .find(|c| c.name == "chk_local")
        .unwrap();
    assert_eq!(local.interval, Duration::from_millis(1500));
    let process = config
        .checks
        .iter()
        .find(|c| c.name == "haproxy_proc")
        .unwrap();
    assert!(matches!(
        &process.kind,
        CheckKind::Process(p) if format!("{:?}", p.matcher).contains("\"haproxy\"")
    ));
    let file = config
        .checks
        .iter()
        .find(|c| c.name == "maintenance")
        .unwrap();
    assert!(matches!(&file.kind, CheckKind::File(f) if f.path == Path::new("/run/lb-maintenance")));
    assert!(has_note(&import, "delay", "dropped"));
    assert!(has_note(&import, "init_file", "dropped"));
}

#[test]
fn notify_scripts_become_ordered_hooks() {
    let (import, config) = convert("notify.conf");
    let notify = &config.instances[0].notify;
    assert_eq!(
        argv(&notify.master),
        [(vec!["/usr/bin/true".into(), "master".into()], false)]
    );
    assert_eq!(
        argv(&notify.backup),
        [(
            vec![
                "/usr/bin/systemctl".into(),
                "reload".into(),
                "haproxy".into()
            ],
            false
        )]
    );
    // Not an absolute path: through a shell, as keepalived does.
    assert_eq!(
        argv(&notify.fault),
        [(vec!["logger -t keepalived fault".into()], true)]
    );
    assert_eq!(argv(&notify.stop), [(vec!["/usr/bin/true".into()], false)]);
    // The generic `notify` gets keepalived's four arguments appended by the runner.
    assert_eq!(
        argv(&notify.any),
        [(vec!["/usr/bin/true".into(), "generic".into()], false)]
    );
    assert!(has_note(&import, "notify_master_rx_lower_pri", "dropped"));
}

#[test]
fn includes_are_followed_with_globs() {
    let (import, config) = convert("with-include.conf");
    assert_eq!(config.instances[0].name, "VI_INC");
    assert_eq!(config.instances[0].vrid, 101);
    assert_eq!(tracks(&config, 0), [("chk_haproxy".into(), 2, false)]);
    assert!(import.toml.contains("included: "));
    assert!(import.toml.contains("10-scripts.conf"));
    let missing = import
        .notes
        .iter()
        .find(|n| n.keyword == "include")
        .unwrap();
    assert!(missing.message.contains("matches no file"), "{missing}");
    assert!(missing.file.ends_with("with-include.conf") && missing.line == 6);
    // Comments point into the included file.
    assert!(import.toml.contains("(20-instance.conf:2)"));
}

#[test]
fn v2_password_is_cut_to_eight_bytes() {
    let (import, config) = convert("v2-auth.conf");
    let instance = &config.instances[0];
    assert_eq!(instance.version, Version::V2);
    assert_eq!(
        instance.advert_interval.as_duration(),
        Duration::from_secs(2)
    );
    assert!(import.toml.contains("auth_pass = \"averylon\""));
    assert_eq!(instance.vips[0].to_string(), "192.0.2.55/32");
    assert_eq!(instance.vips[1].label.as_deref(), Some("eth0:vip2"));
    assert!(has_note(&import, "auth_pass", "cut to 8"));
    let vmac = import
        .notes
        .iter()
        .find(|n| n.keyword == "use_vmac")
        .unwrap();
    assert_eq!(
        vmac.to_string(),
        format!(
            "{}:16: `use_vmac`: not supported (vipkeeper moves addresses, not MACs); dropped",
            corpus("v2-auth.conf").display()
        )
    );
}

#[test]
fn ipv6_runs_v3_and_state_master_means_owner() {
    let (import, config) = convert("ipv6.conf");
    let instance = &config.instances[0];
    assert_eq!(instance.version, Version::V3);
    assert_eq!(instance.priority, 255);
    assert_eq!(
        instance.advert_interval.as_duration(),
        Duration::from_millis(250)
    );
    assert_eq!(instance.vips[1].dev, "eth1");
    assert!(has_note(&import, "state MASTER", "address owner"));
    assert!(has_note(&import, "authentication", "VRRPv3"));
}

#[test]
fn a_missing_script_is_a_note_not_an_error() {
    let text = "vrrp_script chk { script /nonexistent/chk.sh }\n\
                vrrp_instance VI_1 { \n interface eth0\n virtual_router_id 5\n\
                virtual_ipaddress {\n 192.0.2.9/24\n}\n track_script {\n chk\n}\n}\n";
    let import = import_text(text, Path::new("/")).expect("converts");
    assert!(import.toml.contains("command = [\"/nonexistent/chk.sh\"]"));
    let refused = import
        .notes
        .iter()
        .find(|n| n.file == "converted.toml")
        .expect("a note for the missing script");
    assert!(refused.message.contains("/nonexistent/chk.sh"), "{refused}");
    // And `check` refuses the TOML with the same reason.
    let errors = parse(&import.toml, "x.toml").unwrap_err().to_string();
    assert!(errors.contains("/nonexistent/chk.sh"), "{errors}");
}

#[test]
fn broken_inputs_give_errors_with_positions() {
    let unclosed = "vrrp_instance VI_1 {\n interface eth0\n";
    match import_text(unclosed, Path::new("/")) {
        Err(ImportError::Syntax { line, .. }) => assert_eq!(line, 1),
        other => panic!("{other:?}"),
    }
    match import_text("global_defs {\n router_id x\n}\n", Path::new("/")) {
        Err(error @ ImportError::NoInstance { .. }) => {
            assert!(error.to_string().contains("no vrrp_instance"))
        }
        other => panic!("{other:?}"),
    }
    let dir = std::env::temp_dir().join(format!("vk-import-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.conf"), "include a.conf\n").unwrap();
    let result = import(&dir.join("a.conf"));
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        matches!(result, Err(ImportError::IncludeDepth { .. })),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The converted classic pair, run: the namespace lab (docs/lab.md), needs root.

#[path = "lab/mod.rs"]
mod lab;

/// keepalived.conf of one node of the classic pair, with the check script replaced by one
/// that exists (script security refuses programs that do not).
fn classic_pair_conf(node: &str) -> String {
    let (state, priority) = if node == "lb1" {
        ("MASTER", 101)
    } else {
        ("BACKUP", 100)
    };
    std::fs::read_to_string(corpus("classic-lb1.conf"))
        .expect("corpus")
        .replace("router_id lb1", &format!("router_id {node}"))
        .replace("state MASTER", &format!("state {state}"))
        .replace("priority 101", &format!("priority {priority}"))
        .replace("\"killall -0 haproxy\"", "\"/usr/bin/true\"")
}

/// Whether `host` has `vip` on eth0.
fn holds(host: &lab::Host, vip: &str) -> bool {
    host.run_ok(
        &["ip", "-o", "addr", "show", "dev", "eth0"],
        Duration::from_secs(5),
    )
    .map(|out| out.contains(&format!(" {vip}/")))
    .unwrap_or(false)
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

#[test]
fn converted_classic_pair_fails_over_in_the_lab() {
    const BIN: &str = env!("CARGO_BIN_EXE_vipkeeper");
    const CONFIG: &str = "/run/vipkeeper.toml";
    const VIP: &str = "192.0.2.50";
    let lab = lab::Lab::builder("import").nodes(2).build().expect("lab");
    let mut daemons = Vec::new();
    for (index, node) in [(1, "lb1"), (2, "lb2")] {
        let import = import_text(&classic_pair_conf(node), Path::new("/")).expect("convert");
        parse(&import.toml, node).unwrap_or_else(|e| panic!("{e}\n{}", import.toml));
        let host = lab.node(index);
        host.write_file(Path::new(CONFIG), import.toml.as_bytes())
            .expect("write the config");
        let daemon = host
            .spawn(&[BIN, "run", "-c", CONFIG], &[("VIPKEEPER_LOG", "debug")])
            .expect("start vipkeeper");
        daemons.push(daemon);
    }
    let explain = |daemons: &[lab::LabProcess]| {
        let logs: Vec<String> = daemons.iter().map(|d| d.stderr()).collect();
        format!("{}\n{}", logs.join("\n----\n"), lab.diagnostics())
    };
    let (lb1, lb2) = (lab.node(1), lab.node(2));
    // v2, 1 s adverts: Master_Down_Interval at 100 is 3.6 s; the check adds 2 to both.
    let elected = wait_for(Duration::from_secs(8), || {
        holds(lb1, VIP) && !holds(lb2, VIP)
    });
    assert!(
        elected,
        "lb1 never became Master alone\n{}",
        explain(&daemons)
    );
    daemons[0].kill(lab::Signal::Kill).expect("kill -9 lb1");
    let moved = wait_for(Duration::from_secs(8), || holds(lb2, VIP));
    assert!(moved, "the VIP never moved to lb2\n{}", explain(&daemons));
}
