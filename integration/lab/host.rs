//! One lab host (a VRRP node, the client or the backend): a network namespace plus its own
//! PID, mount, UTS and IPC namespaces, as a real machine would have.
//!
//! The host is held open by `ip netns exec NS unshare --pid --mount ... --fork --kill-child
//! sh -c INIT`. The shell becomes PID 1 of the host: it mounts private tmpfs on /run and /tmp
//! (so pidfiles and sockets at standard paths do not collide between nodes), sets the
//! hostname, disables IPv6 DAD (addresses are usable at once), brings `lo` up and then waits.
//! Being PID 1 it also reaps daemons that double-fork. Killing it kills every process of the
//! host at once: that is both the teardown and [`Host::crash`]. Its lifetime is capped by the
//! builder's `max_lifetime` so even a lab whose owner was SIGKILLed stops on its own.
//!
//! Everything later runs through `nsenter --target <init> --pid --mount --uts --ipc --net`.
//! A host never creates or touches interfaces outside its own namespace and the lab switch.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::command;
use super::process::{self, LabProcess, Signal};
use super::{ProcRecord, Segment};

/// The host's init script; `$1` is the hostname, `$2` the lifetime cap in seconds.
const INIT: &str = r#"set -e
mount -t tmpfs -o mode=0755,size=64m lab-run /run
mount -t tmpfs -o mode=1777,size=256m lab-tmp /tmp
hostname "$1"
echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad
echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad
ip link set lo up
: > /run/lab-ready
sleep "$2" &
wait $!
"#;

/// How long a host may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// A host's interface on one lab segment.
#[derive(Clone, Debug)]
pub struct Leg {
    pub segment: Segment,
    /// Name inside the host (`eth0`, `eth1`).
    pub iface: String,
    /// Name of the peer on the switch's bridge.
    pub switch_side: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
}

pub struct Host {
    name: String,
    netns: String,
    switch_netns: String,
    dir: PathBuf,
    /// The `unshare` process; its only child is the host's init.
    holder: Mutex<Child>,
    init_pid: u32,
    legs: Vec<Leg>,
    next_seq: AtomicU32,
    registry: Arc<Mutex<Vec<ProcRecord>>>,
}

impl Host {
    /// Starts the init of a host in the existing namespace `netns` and waits until it is up.
    pub(super) fn start(
        name: &str,
        netns: &str,
        switch_netns: &str,
        dir: &Path,
        max_lifetime: Duration,
        registry: Arc<Mutex<Vec<ProcRecord>>>,
    ) -> io::Result<Host> {
        let log = fs::File::create(dir.join(format!("{name}.init.log")))?;
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", netns, "unshare", "--pid", "--mount", "--uts", "--ipc",
        ])
        .args([
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
        ])
        .args(["sh", "-c", INIT, "lab-init", name])
        .arg(max_lifetime.as_secs().max(1).to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        let what = command::describe(&cmd);
        let mut holder = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))?;
        match process::first_child_pid(&mut holder, START_TIMEOUT) {
            Ok(Some(init_pid)) => {
                let host = Host {
                    name: name.to_owned(),
                    netns: netns.to_owned(),
                    switch_netns: switch_netns.to_owned(),
                    dir: dir.to_owned(),
                    holder: Mutex::new(holder),
                    init_pid,
                    legs: Vec::new(),
                    next_seq: AtomicU32::new(0),
                    registry,
                };
                // From here on the host's Drop stops the init if anything fails.
                host.wait_ready()?;
                Ok(host)
            }
            other => {
                let _ = holder.kill();
                let _ = command::wait_within(&mut holder, Duration::from_secs(2));
                let log =
                    fs::read_to_string(dir.join(format!("{name}.init.log"))).unwrap_or_default();
                Err(io::Error::other(format!(
                    "host {name}: init did not start ({other:?}): {}",
                    log.trim()
                )))
            }
        }
    }

    /// Waits for the init's marker file, read through `/proc/<init>/root` (its mount view).
    fn wait_ready(&self) -> io::Result<()> {
        let marker = self.root_path(Path::new("/run/lab-ready"));
        let deadline = Instant::now() + START_TIMEOUT;
        while !marker.exists() {
            if !self.is_up() || Instant::now() >= deadline {
                let log = fs::read_to_string(self.dir.join(format!("{}.init.log", self.name)))
                    .unwrap_or_default();
                return Err(io::Error::other(format!(
                    "host {}: init did not become ready: {}",
                    self.name,
                    log.trim()
                )));
            }
            thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    pub(super) fn add_leg(&mut self, leg: Leg) {
        self.legs.push(leg);
    }

    /// `node1`, `client`, `backend`: also the host's hostname.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network namespace, for `ip -n` and `ip netns exec`.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Host pid of the host's PID-namespace init.
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    pub fn legs(&self) -> &[Leg] {
        &self.legs
    }

    /// The host's interface on `segment`, if it has one.
    pub fn leg(&self, segment: Segment) -> Option<&Leg> {
        self.legs.iter().find(|leg| leg.segment == segment)
    }

    /// The IPv4 address on the host's first segment.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.legs[0].ipv4
    }

    /// The global IPv6 address on the host's first segment.
    pub fn ipv6(&self) -> Ipv6Addr {
        self.legs[0].ipv6
    }

    /// Every static address of the host, IPv4 and global IPv6, all segments.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.legs
            .iter()
            .flat_map(|leg| [IpAddr::V4(leg.ipv4), IpAddr::V6(leg.ipv6)])
            .collect()
    }

    /// The kernel-assigned link-local address of the host's interface on `segment`.
    pub fn link_local(&self, segment: Segment) -> io::Result<Ipv6Addr> {
        let leg = self
            .leg(segment)
            .ok_or_else(|| io::Error::other(format!("{} has no {segment:?} leg", self.name)))?;
        let mut cmd = Command::new("ip");
        cmd.args([
            "-n",
            &self.netns,
            "-6",
            "-o",
            "addr",
            "show",
            "dev",
            &leg.iface,
            "scope",
            "link",
        ]);
        let output = command::checked(cmd, b"")?;
        let text = String::from_utf8_lossy(&output.stdout);
        // `2: eth0    inet6 fe80::.../64 scope link ...`
        text.split_whitespace()
            .skip_while(|word| *word != "inet6")
            .nth(1)
            .and_then(|cidr| cidr.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!("{}: no link-local address in {text:?}", self.name))
            })
    }

    /// `nsenter` into all of the host's namespaces; arguments follow.
    fn enter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target").arg(self.init_pid.to_string()).args([
            "--pid", "--mount", "--uts", "--ipc", "--net", "--wd=/", "--",
        ]);
        cmd
    }

    /// Starts `argv` in the background with `env` added to the environment; stdout and stderr
    /// go to `<label>.stdout` / `.stderr` in the lab directory. Daemons must stay in the
    /// foreground (`haproxy -db`/`-Ws`, `keepalived -n`) to be tracked; whatever they fork
    /// still dies with the host.
    pub fn spawn(&self, argv: &[&str], env: &[(&str, &str)]) -> io::Result<LabProcess> {
        let program = argv
            .first()
            .ok_or_else(|| io::Error::other("spawn: empty argv"))?;
        let base: String = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let label = format!(
            "{}.{}.{base}",
            self.name,
            self.next_seq.fetch_add(1, Ordering::Relaxed)
        );
        let stdout = self.dir.join(format!("{label}.stdout"));
        let stderr = self.dir.join(format!("{label}.stderr"));
        let mut cmd = self.enter();
        cmd.args(argv)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout)?)
            .stderr(fs::File::create(&stderr)?);
        let what = command::describe(&cmd);
        let mut nsenter = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))?;
        let found =
            process::first_child_pid(&mut nsenter, Duration::from_secs(2)).and_then(|pid| {
                if let Some(pid) = pid {
                    process::wait_for_exec(nsenter.id(), pid, Duration::from_secs(2))?;
                }
                Ok(pid)
            });
        let pid = match found {
            Ok(pid) => pid,
            Err(e) => {
                let _ = nsenter.kill();
                let _ = command::wait_within(&mut nsenter, Duration::from_secs(1));
                return Err(e);
            }
        };
        let record = ProcRecord {
            label: label.clone(),
            pid,
            stdout: stdout.clone(),
            stderr: stderr.clone(),
        };
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
        Ok(LabProcess::new(label, nsenter, pid, stdout, stderr))
    }

    /// Runs `argv` in the foreground and returns its output whatever its exit status (like
    /// `Command::output`). It is killed after `timeout` and that is an error `TimedOut`.
    pub fn run(&self, argv: &[&str], timeout: Duration) -> io::Result<Output> {
        let mut cmd = self.enter();
        // coreutils `timeout` inside the host bounds the program itself (nsenter would not
        // pass our kill on); the outer bound only guards against a wedged nsenter.
        cmd.args(["timeout", "--kill-after=1"])
            .arg(format!("{:.3}", timeout.as_secs_f64()))
            .args(argv);
        let what = format!("{}: {}", self.name, argv.join(" "));
        let output = command::output_within(cmd, b"", timeout + Duration::from_secs(3))?;
        if output.status.code() == Some(124) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{what}: still running after {timeout:?}; stdout {:?} stderr {:?}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            ));
        }
        Ok(output)
    }

    /// Like [`Host::run`] but a non-zero exit is an error; returns stdout.
    pub fn run_ok(&self, argv: &[&str], timeout: Duration) -> io::Result<String> {
        let output = self.run(argv, timeout)?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "{}: {}: {}: {}",
                self.name,
                argv.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Whether one ping (IPv4 or IPv6, by the address) to `addr` is answered within `wait`.
    pub fn ping(&self, addr: IpAddr, wait: Duration) -> io::Result<bool> {
        let wait_arg = format!("{:.3}", wait.as_secs_f64());
        let target = addr.to_string();
        let output = self.run(
            &["ping", "-n", "-q", "-c", "1", "-W", &wait_arg, &target],
            wait + Duration::from_secs(2),
        )?;
        Ok(output.status.success())
    }

    /// Plugs (`true`) or pulls (`false`) every cable of the host: the switch-side legs go
    /// down, so the host's interfaces lose carrier as with a dead link or a dead machine.
    pub fn set_link(&self, up: bool) -> io::Result<()> {
        for leg in &self.legs {
            self.set_segment_link(leg.segment, up)?;
        }
        Ok(())
    }

    /// [`Host::set_link`] for the cable on one segment only.
    pub fn set_segment_link(&self, segment: Segment, up: bool) -> io::Result<()> {
        let leg = self
            .leg(segment)
            .ok_or_else(|| io::Error::other(format!("{} has no {segment:?} leg", self.name)))?;
        let mut cmd = Command::new("ip");
        cmd.args([
            "-n",
            &self.switch_netns,
            "link",
            "set",
            &leg.switch_side,
            if up { "up" } else { "down" },
        ]);
        command::checked(cmd, b"").map(drop)
    }

    /// A path inside the host's mount namespace, as seen from the test process.
    pub fn root_path(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap_or(path);
        PathBuf::from(format!("/proc/{}/root", self.init_pid)).join(relative)
    }

    /// Writes a file inside the host (config files for daemons; /run and /tmp are the host's
    /// own tmpfs, everything else is shared with the machine).
    pub fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        fs::write(self.root_path(path), contents).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: write {}: {e}", self.name, path.display()),
            )
        })
    }

    /// Reads a file inside the host.
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(self.root_path(path)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: read {}: {e}", self.name, path.display()),
            )
        })
    }

    /// Whether the host's init (and so its processes) still runs.
    pub fn is_up(&self) -> bool {
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        matches!(holder.try_wait(), Ok(None))
    }

    /// Kills every process of the host at once (SIGKILL to its PID-namespace init), as a
    /// power cut would, except that its interfaces and addresses stay. Nothing can be started
    /// on it afterwards.
    pub fn crash(&self) -> io::Result<()> {
        let mut holder = self.holder.lock().unwrap_or_else(|p| p.into_inner());
        if holder.try_wait()?.is_none() {
            process::signal_child_of(holder.id(), self.init_pid, Signal::Kill)?;
        }
        // unshare reaps the init, which returns only once the kernel has killed and reaped
        // everything in the PID namespace.
        if command::wait_within(&mut holder, Duration::from_secs(3))?.is_none() {
            // --kill-child: the init gets SIGKILL when unshare dies.
            holder.kill()?;
            command::wait_within(&mut holder, Duration::from_secs(2))?;
        }
        Ok(())
    }

    /// `ip -br addr`, the processes, for failure reports.
    pub fn diagnostics(&self) -> String {
        let mut text = format!(
            "--- {} ({}), init pid {}, up {}\n",
            self.name,
            self.netns,
            self.init_pid,
            self.is_up()
        );
        let mut addr = Command::new("ip");
        addr.args(["-n", &self.netns, "-br", "addr"]);
        text.push_str(&command_text(addr));
        if self.is_up() {
            let mut ps = self.enter();
            ps.args(["ps", "-eo", "pid,ppid,stat,args"]);
            text.push_str(&command_text(ps));
        }
        text
    }
}

/// stdout and stderr of a diagnostic command, or why it failed; never an error.
pub(super) fn command_text(cmd: Command) -> String {
    let what = command::describe(&cmd);
    match command::output_within(cmd, b"", Duration::from_secs(3)) {
        Ok(out) => format!(
            "$ {what}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("$ {what}\n  failed: {e}\n"),
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Err(e) = self.crash() {
            eprintln!(
                "lab: stopping host {} (init pid {}): {e}",
                self.name, self.init_pid
            );
        }
    }
}
