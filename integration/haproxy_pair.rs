//! examples/haproxy-pair run as shipped: both nodes' vipkeeper.toml and the shared
//! haproxy.cfg, unchanged, in the namespace lab (whose nodes are 192.0.2.11 and .12, the
//! example's addresses), with the backend at 198.51.100.200:8080.
//!
//! What moves the VIPs away from lb1, each in its own lab: HAProxy killed (`process`
//! check), lb1 alone losing its backend (`haproxy` check, via HAProxy's own health checks),
//! and lb1's only server put in MAINT through the admin socket. A client request through
//! the VIP tells which node answers (`X-Served-By`, the answering host's name). The bounds are generous: with
//! fast_preempt the move takes milliseconds; `scripts/bench` measures it.

#[path = "lab/mod.rs"]
mod lab;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use lab::{Host, Lab, LabProcess, Segment, Signal};

const BIN: &str = env!("CARGO_BIN_EXE_vipkeeper");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/haproxy-pair");
const VIP: &str = "192.0.2.50";

/// The backend: an HAProxy answering every request itself.
const BACKEND_CFG: &str = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
frontend web\n    bind 198.51.100.200:8080\n    http-request return status 200 content-type text/plain string \"hello from the backend\"\n";

struct Pair {
    lab: Lab,
    haproxy: Vec<LabProcess>,
    vipkeeper: Vec<LabProcess>,
    _backend: LabProcess,
}

impl Pair {
    fn start(tag: &str) -> Pair {
        let lab = Lab::builder(tag)
            .nodes(2)
            .backend(true)
            .build()
            .expect("lab");
        let backend_host = lab.backend();
        backend_host
            .write_file(Path::new("/run/backend.cfg"), BACKEND_CFG.as_bytes())
            .expect("backend config");
        let backend = backend_host
            .spawn(&["haproxy", "-db", "-f", "/run/backend.cfg"], &[])
            .expect("backend haproxy");
        let haproxy_cfg =
            std::fs::read(format!("{EXAMPLE}/haproxy.cfg")).expect("example haproxy.cfg");
        let mut haproxy = Vec::new();
        let mut vipkeeper = Vec::new();
        for (index, name) in [(1, "lb1"), (2, "lb2")] {
            let host = lab.node(index);
            let toml = std::fs::read(format!("{EXAMPLE}/{name}.toml")).expect("example toml");
            host.write_file(Path::new("/run/vipkeeper.toml"), &toml)
                .expect("vipkeeper.toml");
            host.write_file(Path::new("/run/haproxy.cfg"), &haproxy_cfg)
                .expect("haproxy.cfg");
            host.run_ok(&["mkdir", "-p", "/run/haproxy"], Duration::from_secs(5))
                .expect("/run/haproxy");
            haproxy.push(
                host.spawn(&["haproxy", "-db", "-f", "/run/haproxy.cfg"], &[])
                    .expect("haproxy"),
            );
            vipkeeper.push(
                host.spawn(
                    &[BIN, "run", "-c", "/run/vipkeeper.toml"],
                    &[("VIPKEEPER_LOG", "info")],
                )
                .expect("vipkeeper"),
            );
        }
        Pair {
            lab,
            haproxy,
            vipkeeper,
            _backend: backend,
        }
    }

    fn node(&self, index: usize) -> &Host {
        self.lab.node(index)
    }

    fn holds(&self, index: usize) -> bool {
        self.node(index)
            .run_ok(
                &["ip", "-o", "addr", "show", "dev", "eth0"],
                Duration::from_secs(5),
            )
            .map(|output| output.contains(&format!(" {VIP}/")))
            .unwrap_or(false)
    }

    /// Which node answers an HTTP request to the VIP from the client (bash's /dev/tcp).
    fn served_by(&self) -> Option<String> {
        let script = format!(
            "exec 3<>/dev/tcp/{VIP}/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        );
        let output = self
            .lab
            .client()
            .run(
                &["timeout", "1", "bash", "-c", &script],
                Duration::from_secs(3),
            )
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
        let header = text.lines().find(|line| line.starts_with("x-served-by:"))?;
        Some(header["x-served-by:".len()..].trim().to_owned())
    }

    fn explain(&self) -> String {
        let logs: Vec<String> = self
            .vipkeeper
            .iter()
            .zip(["lb1", "lb2"])
            .map(|(process, name)| format!("--- {name} vipkeeper\n{}", process.stderr()))
            .collect();
        format!("{}\n{}", logs.join("\n"), self.lab.diagnostics())
    }

    /// lb1 holds the VIP and answers through it.
    fn elected(&self) {
        let ok = wait_for(Duration::from_secs(10), || {
            self.holds(1)
                && !self.holds(2)
                && self.served_by().as_deref() == Some(self.node(1).name())
        });
        assert!(ok, "lb1 never served the VIP\n{}", self.explain());
    }

    /// The VIP moved to lb2 and lb2 answers through it.
    fn moved_to_lb2(&self, what: &str) {
        let ok = wait_for(Duration::from_secs(8), || {
            self.holds(2)
                && !self.holds(1)
                && self.served_by().as_deref() == Some(self.node(2).name())
        });
        assert!(
            ok,
            "{what}: the VIP did not move to lb2\n{}",
            self.explain()
        );
    }

    fn admin(&self, index: usize, command: &str) -> String {
        let path = self
            .node(index)
            .root_path(Path::new("/run/haproxy/admin.sock"));
        let mut stream = UnixStream::connect(&path).expect("admin socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        stream
            .write_all(format!("{command}\n").as_bytes())
            .expect("send");
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply
    }

    fn stop(mut self) {
        for process in &mut self.vipkeeper {
            let _ = process.kill(Signal::Term);
        }
    }
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn killing_haproxy_on_the_master_moves_the_vip() {
    let mut pair = Pair::start("exkill");
    pair.elected();
    pair.haproxy[0]
        .kill(Signal::Kill)
        .expect("kill -9 haproxy on lb1");
    pair.moved_to_lb2("haproxy killed");
    let log = pair.vipkeeper[0].stderr();
    assert!(log.contains("check=haproxy_running"), "{log}");
    let log = pair.vipkeeper[1].stderr();
    assert!(
        log.contains("(fast_preempt)"),
        "lb2 took over at once: {log}"
    );
    pair.stop();
}

#[test]
fn the_master_losing_its_backend_alone_moves_the_vip() {
    let pair = Pair::start("exback");
    pair.elected();
    // Only lb1's cable to the backend segment: lb2 still reaches web1.
    pair.node(1)
        .set_segment_link(Segment::Back, false)
        .expect("cut lb1 from the backend");
    pair.moved_to_lb2("backend lost");
    let log = pair.vipkeeper[0].stderr();
    assert!(log.contains("be_web: 0 of 1 servers usable"), "{log}");
    pair.stop();
}

#[test]
fn maintenance_on_the_masters_server_moves_the_vip() {
    let pair = Pair::start("exmaint");
    pair.elected();
    let reply = pair.admin(1, "disable server be_web/web1");
    assert!(reply.trim().is_empty(), "haproxy refused: {reply}");
    pair.moved_to_lb2("server in MAINT");
    let log = pair.vipkeeper[0].stderr();
    assert!(log.contains("web1 MAINT"), "{log}");
    pair.stop();
}
