//! An example pair from `examples/` run in the namespace lab: lab nodes 1 and 2 are the
//! example's lb1 (192.0.2.11) and lb2 (192.0.2.12), each with the example's `haproxy.cfg`
//! and its own `lbN.toml`, with a backend host on 198.51.100.200. Shared by the tests that
//! run an example as shipped (`haproxy_pair`, `dual_vip`, `mycat_pair`).
//!
//! Included with `#[path = "pair/example.rs"] mod example;` next to
//! `#[path = "lab/mod.rs"] mod lab;` (it uses `crate::lab`). Every daemon runs inside a lab
//! node; every wait is bounded.

// Each including target uses a different part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::lab::{Host, Lab, LabProcess, Signal};

pub const BIN: &str = env!("CARGO_BIN_EXE_vipkeeper");
pub const LBS: [&str; 2] = ["lb1", "lb2"];
pub const VIPKEEPER_CONFIG: &str = "/run/vipkeeper.toml";
pub const HAPROXY_CONFIG: &str = "/run/haproxy.cfg";

/// An HTTP backend: an HAProxy on the backend host answering every request itself.
pub const HTTP_BACKEND_CFG: &str = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
frontend web\n    bind 198.51.100.200:8080\n    http-request return status 200 content-type text/plain string \"hello from the backend\"\n";

/// Where the example's files come from, and what a test changes in them.
pub struct Example {
    /// The directory under `examples/`, e.g. `"haproxy-pair"`.
    pub dir: &'static str,
    /// The haproxy.cfg both nodes run, relative to `examples/` (another example's file may
    /// be shared, as dual-vip shares haproxy-pair's).
    pub haproxy_cfg: &'static str,
    /// Applied to each node's toml (`"lb1"`/`"lb2"`, text) before it is written; identity
    /// for an example run verbatim.
    pub edit: fn(&str, String) -> String,
}

impl Example {
    pub fn verbatim(dir: &'static str, haproxy_cfg: &'static str) -> Example {
        Example {
            dir,
            haproxy_cfg,
            edit: |_, text| text,
        }
    }

    fn path(&self, file: &str) -> String {
        format!(
            "{}/examples/{}/{file}",
            env!("CARGO_MANIFEST_DIR"),
            self.dir
        )
    }
}

/// The two load balancers of an example; `None` where a test stopped a daemon.
pub struct Pair {
    pub lab: Lab,
    pub haproxy: Vec<Option<LabProcess>>,
    pub vipkeeper: Vec<Option<LabProcess>>,
    /// What the test started on the backend host (kept alive for the pair's lifetime).
    pub backend: Vec<LabProcess>,
}

impl Pair {
    /// A lab with two nodes, a client and a backend; the HTTP backend on 198.51.100.200:8080;
    /// the example's haproxy and vipkeeper on both nodes.
    pub fn start(tag: &str, example: &Example) -> Pair {
        Pair::start_with(tag, example, |lab| {
            let host = lab.backend();
            host.write_file(Path::new("/run/backend.cfg"), HTTP_BACKEND_CFG.as_bytes())
                .expect("backend config");
            vec![host
                .spawn(&["haproxy", "-db", "-f", "/run/backend.cfg"], &[])
                .expect("backend haproxy")]
        })
    }

    /// As [`start`](Pair::start) with the backend host's processes started by `backend`
    /// (and any per-node files written there) before the load balancers start.
    pub fn start_with(
        tag: &str,
        example: &Example,
        backend: impl FnOnce(&Lab) -> Vec<LabProcess>,
    ) -> Pair {
        let lab = Lab::builder(tag)
            .nodes(2)
            .client(true)
            .backend(true)
            .build()
            .expect("lab");
        let backend = backend(&lab);
        let mut pair = Pair {
            lab,
            haproxy: vec![None, None],
            vipkeeper: vec![None, None],
            backend,
        };
        let haproxy_cfg = std::fs::read(format!(
            "{}/examples/{}",
            env!("CARGO_MANIFEST_DIR"),
            example.haproxy_cfg
        ))
        .expect("example haproxy.cfg");
        for (index, name) in [(1, "lb1"), (2, "lb2")] {
            let host = pair.node(index);
            let toml = std::fs::read_to_string(example.path(&format!("{name}.toml")))
                .expect("example toml");
            let toml = (example.edit)(name, toml);
            host.write_file(Path::new(VIPKEEPER_CONFIG), toml.as_bytes())
                .expect("vipkeeper.toml");
            host.write_file(Path::new(HAPROXY_CONFIG), &haproxy_cfg)
                .expect("haproxy.cfg");
            host.run_ok(&["mkdir", "-p", "/run/haproxy"], Duration::from_secs(5))
                .expect("/run/haproxy");
        }
        for index in [1, 2] {
            pair.start_haproxy(index);
            pair.start_vipkeeper(index);
        }
        pair
    }

    pub fn node(&self, index: usize) -> &Host {
        self.lab.node(index)
    }

    pub fn start_haproxy(&mut self, index: usize) {
        let process = self
            .node(index)
            .spawn(&["haproxy", "-db", "-f", HAPROXY_CONFIG], &[])
            .expect("haproxy");
        self.haproxy[index - 1] = Some(process);
    }

    pub fn start_vipkeeper(&mut self, index: usize) {
        let process = self
            .node(index)
            .spawn(
                &[BIN, "run", "-c", VIPKEEPER_CONFIG],
                &[("VIPKEEPER_LOG", "info")],
            )
            .expect("vipkeeper");
        self.vipkeeper[index - 1] = Some(process);
    }

    /// SIGKILL to node `index`'s haproxy and vipkeeper, waited for: as the machine dying,
    /// except that the VIPs stay configured on its eth0 (vipkeeper removes such stale VIPs
    /// when it starts again).
    pub fn kill_node_daemons(&mut self, index: usize) {
        for slot in [&mut self.vipkeeper[index - 1], &mut self.haproxy[index - 1]] {
            if let Some(mut process) = slot.take() {
                process.kill(Signal::Kill).expect("kill -9");
                let gone = process.wait_timeout(Duration::from_secs(5)).expect("wait");
                assert!(gone.is_some(), "{} survived SIGKILL", process.label());
                // Keep the log readable for explain(): the process is gone either way.
                *slot = Some(process);
            }
        }
    }

    /// vipkeeper's log on node `index` (every run of it so far, oldest first).
    pub fn log(&self, index: usize) -> String {
        let mut text = String::new();
        for path in self.logs_of(index) {
            text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        text
    }

    fn logs_of(&self, index: usize) -> Vec<std::path::PathBuf> {
        // Every vipkeeper started on the node, in start order (`<host>.<n>.vipkeeper.stderr`).
        let host = self.node(index).name().to_owned();
        let mut logs: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(self.lab.dir())
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter_map(|entry| {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        let rest = name.strip_prefix(&format!("{host}."))?;
                        let (seq, program) = rest.split_once('.')?;
                        (program == "vipkeeper.stderr")
                            .then(|| Some((seq.parse().ok()?, entry.path())))
                            .flatten()
                    })
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        logs.into_iter().map(|(_, path)| path).collect()
    }

    /// Whether node `index` has `vip` on its eth0.
    pub fn holds(&self, index: usize, vip: &str) -> bool {
        self.node(index)
            .run_ok(
                &["ip", "-o", "addr", "show", "dev", "eth0"],
                Duration::from_secs(5),
            )
            .map(|output| output.contains(&format!(" {vip}/")))
            .unwrap_or(false)
    }

    /// Which node answers an HTTP request to `vip`:80 from the client (bash's /dev/tcp):
    /// the `X-Served-By` header, the answering host's name.
    pub fn served_by(&self, vip: &str) -> Option<String> {
        let script = format!(
            "exec 3<>/dev/tcp/{vip}/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
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

    /// `vip` is on node `index` only, and (for HTTP examples) node `index` answers through it.
    pub fn serves(&self, index: usize, vip: &str, http: bool) -> bool {
        let other = 3 - index;
        self.holds(index, vip)
            && !self.holds(other, vip)
            && (!http || self.served_by(vip).as_deref() == Some(self.node(index).name()))
    }

    /// Waits up to `limit` for [`serves`](Pair::serves); panics with the logs otherwise.
    pub fn expect_serves(&self, index: usize, vip: &str, http: bool, limit: Duration, what: &str) {
        let ok = wait_for(limit, || self.serves(index, vip, http));
        assert!(
            ok,
            "{what}: {vip} not served by {} within {limit:?}\n{}",
            LBS[index - 1],
            self.explain()
        );
    }

    pub fn explain(&self) -> String {
        let logs: Vec<String> = [1, 2]
            .iter()
            .map(|&index| format!("--- {} vipkeeper\n{}", LBS[index - 1], self.log(index)))
            .collect();
        format!("{}\n{}", logs.join("\n"), self.lab.diagnostics())
    }

    /// One command on node `index`'s HAProxy admin socket (`/run/haproxy/admin.sock`).
    pub fn admin(&self, index: usize, command: &str) -> String {
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

    /// SIGTERM to the running vipkeepers (they remove their VIPs); the lab's drop does the rest.
    pub fn stop(mut self) {
        for process in self.vipkeeper.iter_mut().flatten() {
            let _ = process.kill(Signal::Term);
        }
    }
}

pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
