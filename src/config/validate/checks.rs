//! The rules of `[check.NAME]` tables and of instances' `track` lists.
//!
//! Owns turning a [`FileCheck`] into a typed [`Check`] (one settings struct per probe type,
//! defined by the probe modules in `crate::health`), refusing keys that do not apply to the
//! table's `type`, and the cross-checks between tracks and checks. Must not run probes.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::{Check, CheckKind, Checker, TrackRef};
use crate::config::error::{Problem, Warning};
use crate::config::file::{FileCheck, FileTrack};
use crate::config::names;
use crate::health::exec::ExecSettings;
use crate::health::file::FileSettings;
use crate::health::haproxy::{HaproxySettings, Judge, StatsTarget};
use crate::health::http::{HttpMethod, HttpSettings};
use crate::health::mysql::MysqlSettings;
use crate::health::process::{ProcessMatch, ProcessSettings};
use crate::health::tcp::TcpSettings;

/// keepalived's vrrp_script default interval.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest check interval and timeout: below this a check costs more than it tells.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(10);
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// What the instance rules need to know of a check.
#[derive(Clone, Copy, Debug)]
pub struct CheckSummary {
    pub is_file: bool,
}

/// Keys of `FileCheck` that belong to one type only (the common ones are always allowed).
fn type_specific(file: &FileCheck) -> Vec<(&'static str, Range<usize>)> {
    let mut present = Vec::new();
    let mut add = |name: &'static str, span: Option<Range<usize>>| {
        if let Some(span) = span {
            present.push((name, span));
        }
    };
    add("socket", file.socket.as_ref().map(Spanned::span));
    add("backend", file.backend.as_ref().map(Spanned::span));
    add("min_up", file.min_up.as_ref().map(Spanned::span));
    add("graded", file.graded.as_ref().map(Spanned::span));
    add("address", file.address.as_ref().map(Spanned::span));
    add("url", file.url.as_ref().map(Spanned::span));
    add("method", file.method.as_ref().map(Spanned::span));
    add(
        "expect_status",
        file.expect_status.as_ref().map(Spanned::span),
    );
    add(
        "body_contains",
        file.body_contains.as_ref().map(Spanned::span),
    );
    add("host", file.host.as_ref().map(Spanned::span));
    add("verify_tls", file.verify_tls.as_ref().map(Spanned::span));
    add("user", file.user.as_ref().map(Spanned::span));
    add(
        "password_file",
        file.password_file.as_ref().map(Spanned::span),
    );
    add("command", file.command.as_ref().map(Spanned::span));
    add("shell", file.shell.as_ref().map(Spanned::span));
    add("interface", file.interface.as_ref().map(Spanned::span));
    add("path", file.path.as_ref().map(Spanned::span));
    add("name", file.name.as_ref().map(Spanned::span));
    add("pidfile", file.pidfile.as_ref().map(Spanned::span));
    add("rescan", file.rescan.as_ref().map(Spanned::span));
    present
}

/// The keys each type accepts beyond the common ones.
fn allowed(kind: &str) -> &'static [&'static str] {
    match kind {
        "haproxy" => &["socket", "address", "backend", "min_up", "graded"],
        "tcp" => &["address"],
        "http" => &[
            "url",
            "method",
            "expect_status",
            "body_contains",
            "host",
            "verify_tls",
        ],
        "mysql" => &["address", "user", "password_file"],
        "exec" => &["command", "shell"],
        "interface" => &["interface"],
        "file" => &["path"],
        "process" => &["name", "pidfile", "rescan"],
        _ => &[],
    }
}

impl Checker<'_> {
    /// Every rule about one `[check.NAME]`; `None` when any of them failed.
    pub(super) fn check(&mut self, name: &str, table: &Spanned<FileCheck>) -> Option<Check> {
        let header = table.span();
        let file = table.get_ref();
        let key = |field: &str| format!("check.{name}.{field}");
        let name_ok = match names::check_instance_name(name) {
            Ok(()) => true,
            Err(why) => {
                let problem = Problem::CheckName(name.to_owned(), why);
                self.error(header.clone(), format!("check.{name}"), problem);
                false
            }
        };
        let kind_setting = self.required(&file.kind, &header, key("type"))?;
        let kind = kind_setting.get_ref().as_str();
        if allowed(kind).is_empty() {
            let problem = Problem::CheckType(kind.to_owned());
            self.error(kind_setting.span(), key("type"), problem);
            return None;
        }
        let mut ok = name_ok;
        for (field, span) in type_specific(file) {
            if !allowed(kind).contains(&field) {
                let problem = Problem::NotForType(static_kind(kind));
                self.error(span, key(field), problem);
                ok = false;
            }
        }
        // Watched checks report each change once: there is no interval to poll at, and a
        // `fall` above 1 would wait for a second death that never comes.
        let watched = matches!(kind, "interface" | "file" | "process");
        if watched {
            let polling = [
                ("interval", file.interval.as_ref().map(Spanned::span)),
                ("timeout", file.timeout.as_ref().map(Spanned::span)),
                ("rise", file.rise.as_ref().map(Spanned::span)),
                ("fall", file.fall.as_ref().map(Spanned::span)),
            ];
            for (field, span) in polling {
                if let Some(span) = span {
                    self.error(span, key(field), Problem::NotForWatched(static_kind(kind)));
                    ok = false;
                }
            }
        }

        let interval = match &file.interval {
            Some(setting) => self.check_duration(setting, &key("interval")),
            None => Some(DEFAULT_CHECK_INTERVAL),
        };
        // keepalived: the timeout defaults to the interval.
        let timeout = match &file.timeout {
            Some(setting) => self.check_duration(setting, &key("timeout")),
            None => interval,
        };
        let rise = self.count(file.rise.as_ref(), 1, &key("rise"));
        let fall = self.count(file.fall.as_ref(), 1, &key("fall"));
        let init_fail = file.init_fail.as_ref().is_some_and(|f| *f.get_ref());

        let settings = match kind {
            "haproxy" => self.haproxy(file, &header, &key),
            "tcp" => {
                let address = self.required(&file.address, &header, key("address"));
                let address = address.and_then(|a| self.socket_address(a, key("address")));
                address.map(|address| CheckKind::Tcp(TcpSettings { address }))
            }
            "http" => self.http(file, &header, &key),
            "mysql" => self.mysql(file, &header, &key),
            "exec" => self.exec(file, &header, &key),
            "interface" => {
                let setting = self.required(&file.interface, &header, key("interface"));
                let interface = setting.and_then(|s| self.interface_name(s, key("interface")));
                interface.map(|interface| CheckKind::Interface { interface })
            }
            "file" => {
                let path = self.required(&file.path, &header, key("path"));
                let path = path.and_then(|p| self.absolute(p, key("path")));
                path.map(|path| CheckKind::File(FileSettings { path }))
            }
            "process" => self.process(file, &header, &key),
            _ => None,
        };
        if !ok {
            return None;
        }
        Some(Check {
            name: name.to_owned(),
            kind: settings?,
            interval: interval?,
            timeout: timeout?,
            rise: rise?,
            fall: fall?,
            init_fail,
        })
    }

    pub(super) fn check_duration(
        &mut self,
        setting: &Spanned<crate::config::file::FileDuration>,
        key: &str,
    ) -> Option<Duration> {
        let value = self.duration(setting, key)?;
        if !(MIN_CHECK_INTERVAL..=MAX_CHECK_INTERVAL).contains(&value) {
            let problem = Problem::DurationRange {
                range: "10ms..1h",
                got: setting.get_ref().0.clone(),
            };
            self.error(setting.span(), key, problem);
            return None;
        }
        Some(value)
    }

    /// rise, fall: 1..=100.
    fn count(&mut self, setting: Option<&Spanned<i64>>, default: u32, key: &str) -> Option<u32> {
        let Some(setting) = setting else {
            return Some(default);
        };
        let value = *setting.get_ref();
        match u32::try_from(value).ok().filter(|v| (1..=100).contains(v)) {
            Some(value) => Some(value),
            None => {
                let problem = Problem::OutOfRange {
                    range: "1..100",
                    got: value,
                };
                self.error(setting.span(), key, problem);
                None
            }
        }
    }

    pub(super) fn socket_address(
        &mut self,
        setting: &Spanned<String>,
        key: String,
    ) -> Option<SocketAddr> {
        match setting.get_ref().parse::<SocketAddr>() {
            Ok(address) => Some(address),
            Err(_) => {
                let problem = Problem::SocketAddress(setting.get_ref().clone());
                self.error(setting.span(), key, problem);
                None
            }
        }
    }

    pub(super) fn absolute(&mut self, setting: &Spanned<String>, key: String) -> Option<PathBuf> {
        let text = setting.get_ref();
        if Path::new(text).is_absolute() {
            Some(PathBuf::from(text))
        } else {
            self.error(setting.span(), key, Problem::NotAbsolute(text.clone()));
            None
        }
    }

    fn haproxy(
        &mut self,
        file: &FileCheck,
        header: &Range<usize>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<CheckKind> {
        let target = match (&file.socket, &file.address) {
            (Some(socket), None) => self.absolute(socket, key("socket")).map(StatsTarget::Unix),
            (None, Some(address)) => {
                let address = self.socket_address(address, key("address"))?;
                if !address.ip().is_loopback() {
                    self.error(
                        file.address.as_ref()?.span(),
                        key("address"),
                        Problem::NotLoopback(address),
                    );
                    return None;
                }
                Some(StatsTarget::Tcp(address))
            }
            (socket, address) => {
                let span = socket
                    .as_ref()
                    .map(Spanned::span)
                    .or_else(|| address.as_ref().map(Spanned::span))
                    .unwrap_or_else(|| header.clone());
                self.error(
                    span,
                    key("socket"),
                    Problem::ExactlyOne("socket", "address"),
                );
                None
            }
        };
        let judge = match (
            &file.min_up,
            file.graded.as_ref().is_some_and(|g| *g.get_ref()),
        ) {
            (Some(min_up), true) => {
                self.error(
                    min_up.span(),
                    key("min_up"),
                    Problem::ExactlyOne("min_up", "graded"),
                );
                None
            }
            (Some(min_up), false) => {
                let value = *min_up.get_ref();
                match u32::try_from(value).ok().filter(|v| *v >= 1) {
                    Some(value) => Some(Judge::MinUp(value)),
                    None => {
                        let problem = Problem::OutOfRange {
                            range: "at least 1",
                            got: value,
                        };
                        self.error(min_up.span(), key("min_up"), problem);
                        None
                    }
                }
            }
            (None, true) => Some(Judge::Graded),
            (None, false) => Some(Judge::MinUp(1)),
        };
        let backend = file.backend.as_ref().map(|b| b.get_ref().clone());
        Some(CheckKind::Haproxy(HaproxySettings {
            target: target?,
            backend,
            judge: judge?,
        }))
    }

    fn http(
        &mut self,
        file: &FileCheck,
        header: &Range<usize>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<CheckKind> {
        let url = self
            .required(&file.url, header, key("url"))
            .and_then(|url| {
                let text = url.get_ref();
                if text.starts_with("http://") || text.starts_with("https://") {
                    Some(text.clone())
                } else {
                    self.error(url.span(), key("url"), Problem::Url(text.clone()));
                    None
                }
            });
        let method = match &file.method {
            None => Some(HttpMethod::Get),
            Some(setting) => match setting.get_ref().as_str() {
                "GET" => Some(HttpMethod::Get),
                "HEAD" => Some(HttpMethod::Head),
                other => {
                    self.error(
                        setting.span(),
                        key("method"),
                        Problem::Method(other.to_owned()),
                    );
                    None
                }
            },
        };
        let mut expect_status = Vec::new();
        let mut statuses_ok = true;
        for status in file
            .expect_status
            .as_ref()
            .map(|s| s.get_ref().as_slice())
            .unwrap_or_default()
        {
            let value = *status.get_ref();
            match u16::try_from(value)
                .ok()
                .filter(|v| (100..=599).contains(v))
            {
                Some(value) => expect_status.push(value),
                None => {
                    let problem = Problem::OutOfRange {
                        range: "an HTTP status 100..599",
                        got: value,
                    };
                    self.error(status.span(), key("expect_status"), problem);
                    statuses_ok = false;
                }
            }
        }
        let body_contains = file.body_contains.as_ref().map(|b| b.get_ref().clone());
        if let (Some(HttpMethod::Head), Some(body)) = (method, &file.body_contains) {
            self.error(body.span(), key("body_contains"), Problem::BodyWithHead);
            return None;
        }
        if !statuses_ok {
            return None;
        }
        Some(CheckKind::Http(HttpSettings {
            url: url?,
            method: method?,
            expect_status,
            body_contains,
            host: file.host.as_ref().map(|h| h.get_ref().clone()),
            verify_tls: file.verify_tls.as_ref().is_none_or(|v| *v.get_ref()),
        }))
    }

    fn mysql(
        &mut self,
        file: &FileCheck,
        header: &Range<usize>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<CheckKind> {
        let address = self.required(&file.address, header, key("address"));
        let address = address.and_then(|a| self.socket_address(a, key("address")));
        let user = self
            .required(&file.user, header, key("user"))
            .map(|u| u.get_ref().clone());
        let password_file = self.required(&file.password_file, header, key("password_file"));
        let password_file = password_file.and_then(|p| self.absolute(p, key("password_file")));
        Some(CheckKind::Mysql(MysqlSettings {
            address: address?,
            user: user?,
            password_file: password_file?,
        }))
    }

    fn exec(
        &mut self,
        file: &FileCheck,
        header: &Range<usize>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<CheckKind> {
        let command = self.required(&file.command, header, key("command"))?;
        let argv: Vec<String> = command
            .get_ref()
            .iter()
            .map(|a| a.get_ref().clone())
            .collect();
        let shell = file.shell.as_ref().is_some_and(|s| *s.get_ref());
        if argv.is_empty() || argv[0].is_empty() {
            self.error(command.span(), key("command"), Problem::EmptyCommand);
            return None;
        }
        if shell && argv.len() != 1 {
            self.error(command.span(), key("command"), Problem::ShellCommand);
            return None;
        }
        // Without a shell the program is run as written: an absolute path, so that no
        // PATH lookup decides what runs as root.
        if !shell && !Path::new(&argv[0]).is_absolute() {
            let first = &command.get_ref()[0];
            self.error(
                first.span(),
                key("command"),
                Problem::NotAbsolute(argv[0].clone()),
            );
            return None;
        }
        let program = argv[0]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if Path::new(&program).is_absolute() {
            self.secure(&program, command.span(), &key("command"))?;
        }
        Some(CheckKind::Exec(ExecSettings { argv, shell }))
    }

    fn process(
        &mut self,
        file: &FileCheck,
        header: &Range<usize>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<CheckKind> {
        let matcher = match (&file.name, &file.pidfile) {
            (Some(name), None) => {
                let text = name.get_ref();
                if text.is_empty() || text.len() > 15 {
                    self.error(name.span(), key("name"), Problem::ProcessName(text.clone()));
                    return None;
                }
                ProcessMatch::Name(text.clone())
            }
            (None, Some(pidfile)) => ProcessMatch::Pidfile(self.absolute(pidfile, key("pidfile"))?),
            (name, pidfile) => {
                let span = name
                    .as_ref()
                    .map(Spanned::span)
                    .or_else(|| pidfile.as_ref().map(Spanned::span))
                    .unwrap_or_else(|| header.clone());
                self.error(span, key("name"), Problem::ExactlyOne("name", "pidfile"));
                return None;
            }
        };
        let rescan = match &file.rescan {
            Some(setting) => self.check_duration(setting, &key("rescan"))?,
            None => DEFAULT_CHECK_INTERVAL,
        };
        Some(CheckKind::Process(ProcessSettings { matcher, rescan }))
    }

    /// An instance's `track` list against the defined checks.
    pub(super) fn tracks(
        &mut self,
        list: Option<&Spanned<Vec<Spanned<FileTrack>>>>,
        checks: &std::collections::BTreeMap<String, CheckSummary>,
        prefix: &str,
    ) -> Option<Vec<TrackRef>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let mut tracks: Vec<TrackRef> = Vec::new();
        let mut ok = true;
        for (index, entry) in list.get_ref().iter().enumerate() {
            let key = |field: &str| format!("{prefix}.track[{index}].{field}");
            let file = entry.get_ref();
            let Some(check) = self.required(&file.check, &entry.span(), key("check")) else {
                ok = false;
                continue;
            };
            let name = check.get_ref();
            let Some(summary) = checks.get(name) else {
                self.error(
                    check.span(),
                    key("check"),
                    Problem::UnknownCheck(name.clone()),
                );
                ok = false;
                continue;
            };
            if tracks.iter().any(|track| &track.check == name) {
                self.error(
                    check.span(),
                    key("check"),
                    Problem::DuplicateTrack(name.clone()),
                );
                ok = false;
                continue;
            }
            // keepalived: track_file weights go to ±254 and default to 1; the others ±253
            // and default to 0 (FAULT).
            let (limit, default, range) = if summary.is_file {
                (254, 1, "-254..254")
            } else {
                (253, 0, "-253..253")
            };
            let weight = match &file.weight {
                None => default,
                Some(setting) => {
                    let value = *setting.get_ref();
                    if !(-limit..=limit).contains(&value) {
                        let problem = Problem::OutOfRange { range, got: value };
                        self.error(setting.span(), key("weight"), problem);
                        ok = false;
                        continue;
                    }
                    value as i32
                }
            };
            tracks.push(TrackRef {
                check: name.clone(),
                weight,
                reverse: file.reverse.as_ref().is_some_and(|r| *r.get_ref()),
                is_file: summary.is_file,
            });
        }
        ok.then_some(tracks)
    }

    pub(super) fn unused_check(&mut self, span: Range<usize>, name: &str) {
        self.warn(span, format!("check.{name}"), Warning::UnusedCheck);
    }
}

/// The check type names as `&'static str`, for error messages.
fn static_kind(kind: &str) -> &'static str {
    [
        "haproxy",
        "tcp",
        "http",
        "mysql",
        "exec",
        "interface",
        "file",
        "process",
    ]
    .into_iter()
    .find(|known| *known == kind)
    .unwrap_or("unknown")
}

impl CheckKind {
    /// The `type` value of the check.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Haproxy(_) => "haproxy",
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Http(_) => "http",
            CheckKind::Mysql(_) => "mysql",
            CheckKind::Exec(_) => "exec",
            CheckKind::Interface { .. } => "interface",
            CheckKind::File(_) => "file",
            CheckKind::Process(_) => "process",
        }
    }
}
