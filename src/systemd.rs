//! systemd integration: the `sd_notify` protocol and the watchdog settings, without libsystemd.
//!
//! The protocol is one datagram per notification, newline-separated `KEY=VALUE` assignments,
//! sent to the `AF_UNIX` socket named by `$NOTIFY_SOCKET` (a path, or an abstract name written
//! with a leading `@`). Everything here is std: a fresh unbound [`UnixDatagram`] per message,
//! as `sd_notify(3)` itself does, so no descriptor is held between messages and nothing leaks
//! into the hooks the daemon spawns (std opens sockets close-on-exec anyway).
//!
//! Every send returns an [`io::Error`] instead of panicking: a notify socket that went away
//! (systemd re-executing, a test harness gone) must never stop the daemon. Callers log the
//! error and carry on.
//!
//! # Environment left as it is
//!
//! `sd_notify(3)` can unset `NOTIFY_SOCKET` after the first call; [`SdNotify::from_env`] does
//! not, for three reasons:
//! - changing the process environment while other threads may read it (tokio's workers, the
//!   resolver inside a probe) is unsound in a multi-threaded process, which is why
//!   `std::env::remove_var` is `unsafe` from edition 2024 on, and this crate forbids `unsafe`;
//! - systemd only accepts messages from the main PID by default (`NotifyAccess=main`, set
//!   explicitly in `examples/systemd/vipkeeper.service`), so a hook inheriting the variable
//!   cannot speak for the daemon; and a hook inheriting `WATCHDOG_USEC` sees a
//!   `WATCHDOG_PID` that is not its own and ignores it (see [`watchdog_interval`]);
//! - `from_env` stays idempotent: it may be called again (after a reload) with the same answer.
//!
//! Hooks are better off without the variables all the same (a hook starting a daemon that
//! speaks `sd_notify` would otherwise talk to vipkeeper's unit): the per-child way is
//! `Command::env_remove` on `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` where hooks
//! are spawned, which changes nothing in this process.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// The notification channel to the service manager, from `$NOTIFY_SOCKET`.
#[derive(Debug, Clone)]
pub struct SdNotify {
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A filesystem path (`/run/systemd/notify`).
    Path(String),
    /// An abstract name, without the `@` (`@foo` in the variable).
    Abstract(Vec<u8>),
    /// Something this implementation cannot reach (`vsock:` addresses of systemd ≥ 254, a
    /// relative path). Kept so that every send reports it instead of silently doing nothing.
    Unsupported(String),
}

impl SdNotify {
    /// The channel named by `$NOTIFY_SOCKET`, or `None` when the variable is unset or empty
    /// (not started by systemd, or `Type=` is not `notify`). The variable is read, not unset:
    /// see the module documentation.
    pub fn from_env() -> Option<SdNotify> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        Self::from_address(&value.to_string_lossy())
    }

    /// The channel for an explicit `$NOTIFY_SOCKET` value: `/path` or `@abstract-name`.
    /// `None` for an empty value. An address of another kind is accepted here and reported
    /// as an error by every send, so the caller's log says why notifications do not arrive.
    pub fn from_address(address: &str) -> Option<SdNotify> {
        let target = if address.is_empty() {
            return None;
        } else if address.starts_with('/') {
            Target::Path(address.to_owned())
        } else if let Some(name) = address.strip_prefix('@') {
            Target::Abstract(name.as_bytes().to_vec())
        } else {
            Target::Unsupported(address.to_owned())
        };
        Some(SdNotify { target })
    }

    /// `READY=1`, with a `STATUS=` line when `status` is not empty: start-up (or a reload) is
    /// complete. Under `Type=notify` systemd keeps `systemctl start` waiting until this.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        if status.is_empty() {
            self.send("READY=1")
        } else {
            self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
        }
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC in µs when the message was made).
    ///
    /// systemd ≥ 253 expects the timestamp for `Type=notify-reload`: it sends the reload
    /// signal, then waits for a `RELOADING=1` stamped after that moment, and only then for
    /// the `READY=1` that ends the reload; without the stamp it may not tie the message to its
    /// own reload and `systemctl reload` can return early, or wait for its timeout. Older
    /// versions (and `Type=notify` with `ExecReload=`) ignore the extra field. Send
    /// [`SdNotify::ready`] once the new configuration is in force (or the old one is kept).
    ///
    /// The timestamp is left out, and the message still sent, if the monotonic clock cannot
    /// be read (see [`monotonic_usec`]).
    pub fn reloading(&self) -> io::Result<()> {
        self.send(&reloading_message(monotonic_usec()))
    }

    /// `STOPPING=1`: shutdown has begun (the STOP hooks, priority-0 adverts and VIP removal
    /// follow). systemd shows the unit as deactivating.
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }

    /// `STATUS=text`: the one-line status `systemctl status` shows. Newlines in `text` become
    /// spaces (a newline would start another assignment).
    pub fn status(&self, text: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(text)))
    }

    /// `WATCHDOG=1`: the keep-alive ping. Send it every half [`watchdog_interval`] or more
    /// often, from the loop whose liveness it should prove.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// Sends `state` as it is (newline-separated assignments, e.g. `EXTEND_TIMEOUT_USEC=…`).
    pub fn send(&self, state: &str) -> io::Result<()> {
        let address = match &self.target {
            Target::Path(path) => SocketAddr::from_pathname(path),
            Target::Abstract(name) => SocketAddr::from_abstract_name(name),
            Target::Unsupported(address) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("NOTIFY_SOCKET={address}: only /path and @abstract are supported"),
                ));
            }
        }
        .map_err(|error| self.context(error))?;
        let socket = UnixDatagram::unbound().map_err(|error| self.context(error))?;
        let sent = socket
            .send_to_addr(state.as_bytes(), &address)
            .map_err(|error| self.context(error))?;
        if sent != state.len() {
            return Err(self.context(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short datagram: {sent} of {} bytes", state.len()),
            )));
        }
        Ok(())
    }

    /// The address as `$NOTIFY_SOCKET` spelled it, for log lines.
    pub fn address(&self) -> String {
        match &self.target {
            Target::Path(path) => path.clone(),
            Target::Abstract(name) => format!("@{}", String::from_utf8_lossy(name)),
            Target::Unsupported(address) => address.clone(),
        }
    }

    fn context(&self, error: io::Error) -> io::Error {
        io::Error::new(
            error.kind(),
            format!("sd_notify to {}: {error}", self.address()),
        )
    }
}

/// The watchdog interval systemd expects pings within (`WatchdogSec=`), from `$WATCHDOG_USEC`
/// and `$WATCHDOG_PID`; `None` when the watchdog is off or not meant for this process. Ping
/// at half of it. See [`parse_watchdog`] for the rules.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The rules of `sd_watchdog_enabled(3)` over explicit values: `usec` unset, not a number, or
/// 0 means no watchdog; `pid`, when set, must be `own_pid` (a hook or any other child that
/// inherited the variables is not the process systemd watches), and an unparsable `pid` means
/// no watchdog either.
pub fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// CLOCK_MONOTONIC in microseconds, as `MONOTONIC_USEC=` wants it.
///
/// The crate forbids `unsafe` and has no `clock_gettime` binding among its dependencies'
/// enabled features (rustix's `time` feature would give one: no new crate, a Cargo.toml
/// change). On Linux, std's `Instant` is a CLOCK_MONOTONIC reading and its `Debug` output is
/// `Instant { tv_sec: S, tv_nsec: N }`; this parses that. The format is not a stable API, so
/// anything unexpected yields `None` (the field is then left out, never wrong), and
/// `integration/systemd_notify.rs` checks the value against another CLOCK_MONOTONIC reader.
pub fn monotonic_usec() -> Option<u64> {
    parse_instant_debug(&format!("{:?}", Instant::now()))
}

fn parse_instant_debug(text: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let start = text.find(name)? + name.len();
        let rest = text[start..].trim_start();
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    let seconds = field("tv_sec:")?;
    let nanos = field("tv_nsec:")?;
    if nanos >= 1_000_000_000 {
        return None;
    }
    seconds.checked_mul(1_000_000)?.checked_add(nanos / 1_000)
}

fn reloading_message(monotonic_usec: Option<u64>) -> String {
    match monotonic_usec {
        Some(usec) => format!("RELOADING=1\nMONOTONIC_USEC={usec}"),
        None => "RELOADING=1".to_owned(),
    }
}

/// Status text on one line and without NUL, so it cannot add assignments of its own.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r', '\0'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_addresses() {
        assert_eq!(SdNotify::from_address("").map(|n| n.target), None);
        assert_eq!(
            SdNotify::from_address("/run/systemd/notify")
                .unwrap()
                .target,
            Target::Path("/run/systemd/notify".into())
        );
        assert_eq!(
            SdNotify::from_address("@sd-test").unwrap().target,
            Target::Abstract(b"sd-test".to_vec())
        );
        let vsock = SdNotify::from_address("vsock:2:1234").unwrap();
        let error = vsock.ready("x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
        assert!(error.to_string().contains("vsock:2:1234"), "{error}");
    }

    #[test]
    fn systemd_missing_socket_is_an_error_not_a_panic() {
        let notify = SdNotify::from_address("/nonexistent/vipkeeper-test/notify").unwrap();
        for result in [
            notify.ready("up"),
            notify.reloading(),
            notify.stopping(),
            notify.status("s"),
            notify.watchdog(),
        ] {
            let error = result.unwrap_err();
            assert!(error
                .to_string()
                .contains("/nonexistent/vipkeeper-test/notify"));
        }
        // An abstract name nobody bound: ECONNREFUSED, still an error.
        let abstract_name = format!("@vipkeeper-unbound-{}", std::process::id());
        assert!(SdNotify::from_address(&abstract_name)
            .unwrap()
            .watchdog()
            .is_err());
    }

    #[test]
    fn systemd_watchdog_rules() {
        assert_eq!(parse_watchdog(None, None, 7), None);
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_watchdog(Some("500"), Some("7"), 7),
            Some(Duration::from_micros(500))
        );
        assert_eq!(parse_watchdog(Some("500"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("500"), Some("x"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("-1"), None, 7), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }

    #[test]
    fn systemd_monotonic_clock() {
        assert_eq!(
            parse_instant_debug("Instant { tv_sec: 12, tv_nsec: 345678901 }"),
            Some(12_345_678)
        );
        assert_eq!(parse_instant_debug("Instant { tv_sec: 12 }"), None);
        assert_eq!(
            parse_instant_debug("Instant { tv_sec: 1, tv_nsec: 1000000000 }"),
            None
        );
        assert_eq!(parse_instant_debug("Instant(17)"), None);
        // The real reading parses and advances with Instant.
        let first = monotonic_usec().expect("std's Instant Debug format changed");
        std::thread::sleep(Duration::from_millis(20));
        let second = monotonic_usec().unwrap();
        assert!(second - first >= 20_000, "{first} → {second}");
        assert_eq!(reloading_message(None), "RELOADING=1");
        assert_eq!(
            reloading_message(Some(42)),
            "RELOADING=1\nMONOTONIC_USEC=42"
        );
    }

    #[test]
    fn systemd_status_stays_one_assignment() {
        assert_eq!(one_line("a\nREADY=1\r\0b"), "a READY=1  b");
    }
}
