//! The typed, validated configuration and the rules that produce it from the file mirror.
//!
//! Owns [`Config`] and everything it holds, the defaults (keepalived's, unless a comment
//! says otherwise) and every rule: ranges, the v2/v3 interval grammar, one address family
//! per instance, unicast sanity, and the cross-instance rules (unique names, VRIDs, VIPs).
//! All problems are collected, not just the first. Must not open sockets, ask the kernel
//! about interfaces or run any VRRP logic: it describes what to run, the daemon runs it.

use std::path::{Path, PathBuf};

mod checks;
mod groups;
mod notify;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::address;
use super::duration;
use super::error::{ConfigError, ConfigErrors, Diagnostic, Problem, Warning};
use super::file::{FileConfig, FileDuration, FileGlobal, FileInstance, FileVip};
use super::names::{self, NameError};
use super::secret::read_secret_file;
use super::source::Source;
use crate::vrrp::packet::{Auth, ChecksumMode};
use crate::vrrp::{Centis, Family, Timers, Version, OWNER_PRIORITY};

/// keepalived's default `priority` (without `state MASTER`, which we do not have).
pub const DEFAULT_PRIORITY: u8 = 100;
/// keepalived's upper bound for `preempt_delay`.
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// One advert's 8-bit Count IPvX Addr field (RFC 5798 §5.2.5).
pub const MAX_VIPS: usize = 255;
/// The VRRP IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const MULTICAST_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP IPv6 multicast group (RFC 5798 §5.1.2.2).
pub const MULTICAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// A validated configuration: what the daemon runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub global: Global,
    /// In file order.
    pub instances: Vec<Instance>,
    /// `[check.NAME]` tables, by name.
    pub checks: Vec<Check>,
    pub groups: Vec<Group>,
    /// Accepted settings that are probably mistakes; `check` prints them.
    pub warnings: Vec<Diagnostic>,
}

/// One `[check.NAME]`: a probe, how often it runs and how its results are debounced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    /// How often a polled check runs (watched checks ignore it).
    pub interval: Duration,
    /// A run still going after this is a failure (keepalived: default = interval).
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Start Down, so `rise` successes are needed (keepalived's `init_fail`).
    pub init_fail: bool,
}

/// The probe of a check, with its own settings (defined by the probe modules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    Haproxy(crate::health::haproxy::HaproxySettings),
    Tcp(crate::health::tcp::TcpSettings),
    Http(crate::health::http::HttpSettings),
    Mysql(crate::health::mysql::MysqlSettings),
    Exec(crate::health::exec::ExecSettings),
    Interface { interface: String },
    File(crate::health::file::FileSettings),
    Process(crate::health::process::ProcessSettings),
}

/// One entry of an instance's `track` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackRef {
    /// The name of a `[check.NAME]`.
    pub check: String,
    /// Points added while up (> 0) or applied while down (< 0); 0 means FAULT while down.
    pub weight: i32,
    /// Swap up and down.
    pub reverse: bool,
    /// A file check: value × weight.
    pub is_file: bool,
}

/// Settings shared by all instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    /// This machine's name in logs and status; the hostname unless set.
    pub node_name: String,
    /// Announcement defaults for every instance.
    pub garp: Garp,
    /// Refuse hooks and exec checks a non-root user could replace (keepalived's
    /// enable_script_security), when running as root.
    pub script_security: bool,
    /// The control socket (`vipkeeper status`, `switchover`, ...).
    pub control_socket: PathBuf,
    /// Where `/metrics` and `/healthz` are served; `None` is off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How long a switchover keeps the instance from preempting (until `resume`).
    pub switchover_hold: Duration,
}

/// The control socket's default path.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vipkeeper/control.sock";
/// Metrics on loopback by default (gen2brain/keepalived_exporter's port).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9650";
/// A switchover holds the old Master back for 15 minutes unless resumed.
pub const DEFAULT_SWITCHOVER_HOLD: Duration = Duration::from_secs(15 * 60);

/// A sync group: instances that are Master together or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// Member instance names, in file order.
    pub instances: Vec<String>,
    /// Tracks applied to every member's priority.
    pub tracks: Vec<TrackRef>,
    pub notify: crate::notify::HookSet,
}

/// When a Master announces its VIPs (gratuitous ARP for IPv4, unsolicited NA for IPv6),
/// with keepalived's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Garp {
    /// Frames per VIP on becoming Master (`garp_master_repeat`, default 5).
    pub master_repeat: u32,
    /// Delay of the second burst after becoming Master; zero: none (default 5 s).
    pub master_delay: Duration,
    /// Period of announcements while Master (`garp_master_refresh`, default off).
    pub master_refresh: Option<Duration>,
    /// Frames per VIP when a Master hears a lower priority: split-brain repair
    /// (`garp_lower_prio_repeat`, default: `master_repeat`).
    pub lower_prio_repeat: u32,
}

impl Default for Garp {
    fn default() -> Garp {
        Garp {
            master_repeat: 5,
            master_delay: Duration::from_secs(5),
            master_refresh: None,
            lower_prio_repeat: 5,
        }
    }
}

/// One virtual router: a VRID on an interface, for one address family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: Version,
    /// Taken from the addresses; every address of the instance has this family.
    pub family: Family,
    /// The configured priority; 255 is the address owner.
    pub priority: u8,
    /// v2 values are whole seconds; see [`Centis`].
    pub advert_interval: Centis,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// A Backup that hears a lower priority Master takes over at once instead of waiting
    /// for Master_Down_Interval.
    pub fast_preempt: bool,
    /// `None`: the primary address of the interface, chosen when sending.
    pub unicast_source: Option<IpAddr>,
    /// Empty means multicast; never empty when the file set `unicast_peers`.
    pub unicast_peers: Vec<IpAddr>,
    /// At least one, at most 255, no address twice in the whole configuration.
    pub vips: Vec<Vip>,
    pub auth: Auth,
    pub checksum_mode: ChecksumMode,
    pub garp: Garp,
    /// Checks whose results move this instance's priority.
    pub tracks: Vec<TrackRef>,
    /// The peer's configured priority, only for `check` to explain the election.
    pub peer_priority: Option<u8>,
    /// Hooks run on this instance's transitions.
    pub notify: crate::notify::HookSet,
}

impl Instance {
    /// Skew_Time and Master_Down_Interval at the configured priority and interval. The
    /// running router recomputes them from the effective priority and, in v3, the
    /// Master's advertised interval.
    pub fn timers(&self) -> Timers {
        Timers::compute(self.version, self.priority, self.advert_interval)
    }

    /// Where adverts go when no unicast peer is configured; `None` for unicast.
    pub fn multicast_group(&self) -> Option<IpAddr> {
        if !self.unicast_peers.is_empty() {
            return None;
        }
        Some(match self.family {
            Family::Ipv4 => IpAddr::V4(MULTICAST_GROUP_V4),
            Family::Ipv6 => IpAddr::V6(MULTICAST_GROUP_V6),
        })
    }
}

/// A virtual address: added on Master, removed otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// The instance's interface unless set.
    pub dev: String,
    /// IPv4 only: `<dev>:<suffix>`, at most 15 bytes.
    pub label: Option<String>,
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// The family's name in messages.
pub fn family_name(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

/// Apply every rule to the mirror. `hostname` is asked only when `node_name` is not set.
pub fn validate(
    file: FileConfig,
    source: &Source<'_>,
    hostname: impl FnOnce() -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let mut checker = Checker {
        source,
        errors: Vec::new(),
        warnings: Vec::new(),
        names: HashMap::new(),
        vrids: HashMap::new(),
        vips: HashMap::new(),
        script_security: true,
    };
    // Written names of every instance, for group rules that must not repeat an instance's
    // own errors as "unknown instance".
    let instance_names: Vec<String> = file
        .instance
        .as_ref()
        .map(|list| {
            list.get_ref()
                .iter()
                .filter_map(|i| i.get_ref().name.as_ref().map(|n| n.get_ref().clone()))
                .collect()
        })
        .unwrap_or_default();
    let file_groups = file.group;
    let global = checker.global(file.global, hostname);
    let check_tables = file.check.unwrap_or_default();
    let checks: Vec<Option<Check>> = check_tables
        .iter()
        .map(|(name, table)| checker.check(name, table))
        .collect();
    let summaries: std::collections::BTreeMap<String, checks::CheckSummary> = check_tables
        .iter()
        .map(|(name, table)| {
            let is_file = table
                .get_ref()
                .kind
                .as_ref()
                .is_some_and(|kind| kind.get_ref() == "file");
            (name.clone(), checks::CheckSummary { is_file })
        })
        .collect();
    // Instances inherit the global announcement settings; when [global] itself is wrong
    // its errors are reported and the defaults stand in so instances are still checked.
    let global_garp = global
        .as_ref()
        .map(|global| global.garp)
        .unwrap_or_default();
    let instances: Vec<Option<Instance>> = match file.instance {
        Some(list) if !list.get_ref().is_empty() => list
            .into_inner()
            .into_iter()
            .enumerate()
            .map(|(index, instance)| checker.instance(index, instance, global_garp, &summaries))
            .collect(),
        Some(list) => {
            checker.error(list.span(), "instance", Problem::NoInstances);
            Vec::new()
        }
        None => {
            checker.error(0..0, "instance", Problem::NoInstances);
            Vec::new()
        }
    };
    let groups = checker.groups(
        file_groups.as_ref(),
        &instance_names,
        &instances,
        &summaries,
    );
    // A check nobody tracks runs for nothing; say so.
    if let Some(instances) = instances
        .iter()
        .map(Option::as_ref)
        .collect::<Option<Vec<_>>>()
    {
        let group_tracks: Vec<&TrackRef> = groups
            .iter()
            .flatten()
            .flat_map(|group| group.tracks.iter())
            .collect();
        for (name, table) in &check_tables {
            let tracked = instances
                .iter()
                .any(|i| i.tracks.iter().any(|t| &t.check == name))
                || group_tracks.iter().any(|t| &t.check == name);
            if !tracked {
                checker.unused_check(table.span(), name);
            }
        }
    }
    let checks = checks.into_iter().collect::<Option<Vec<_>>>();
    let instances = instances.into_iter().collect::<Option<Vec<_>>>();
    match (global, instances, checks, groups) {
        (Some(global), Some(instances), Some(checks), Some(groups))
            if checker.errors.is_empty() =>
        {
            let mut warnings = checker.warnings;
            warnings.sort_by_key(|warning| (warning.at.line, warning.at.column));
            Ok(Config {
                global,
                instances,
                checks,
                groups,
                warnings,
            })
        }
        _ => {
            debug_assert!(
                !checker.errors.is_empty(),
                "every refused value records an error"
            );
            Err(ConfigErrors::new(checker.errors))
        }
    }
}

/// Collects errors and warnings, and remembers what earlier instances used.
struct Checker<'s> {
    source: &'s Source<'s>,
    errors: Vec<ConfigError>,
    warnings: Vec<Diagnostic>,
    /// Instance name → line of its `name`.
    names: HashMap<String, usize>,
    /// (interface, VRID, family) → (instance name, line of its `vrid`).
    vrids: HashMap<(String, u8, Family), (String, usize)>,
    /// VIP address → (key, line) where it was first listed.
    vips: HashMap<IpAddr, (String, usize)>,
    /// `[global] script_security`, known before checks and hooks are read.
    script_security: bool,
}

/// An instance's address, with where it was written, for the one-family rule.
struct Written {
    address: IpAddr,
    span: Range<usize>,
    key: String,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, key: impl Into<String>, problem: Problem) {
        self.errors.push(ConfigError::Invalid {
            at: self.source.locate(span.start),
            key: key.into(),
            problem,
        });
    }

    fn warn(&mut self, span: Range<usize>, key: impl Into<String>, warning: Warning) {
        self.warnings.push(Diagnostic {
            at: self.source.locate(span.start),
            key: key.into(),
            warning,
        });
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.source.locate(span.start).line
    }

    fn global(
        &mut self,
        global: Option<Spanned<FileGlobal>>,
        hostname: impl FnOnce() -> Option<String>,
    ) -> Option<Global> {
        const KEY: &str = "global.node_name";
        let header = global.as_ref().map_or(0..0, Spanned::span);
        let global = global.map(Spanned::into_inner);
        self.script_security = global
            .as_ref()
            .and_then(|g| g.script_security.as_ref())
            .is_none_or(|setting| *setting.get_ref());
        let garp = match &global {
            Some(file) => self.garp(
                Garp::default(),
                [&file.garp_master_repeat, &file.garp_lower_prio_repeat],
                &file.garp_master_delay,
                &file.garp_master_refresh,
                "global",
            ),
            None => Some(Garp::default()),
        };
        let control_socket = match global.as_ref().and_then(|g| g.control_socket.as_ref()) {
            Some(path) => self.absolute(path, "global.control_socket".to_owned()),
            None => Some(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
        };
        let metrics_listen = match global.as_ref().and_then(|g| g.metrics_listen.as_ref()) {
            Some(setting) if setting.get_ref() == "off" => Some(None),
            Some(setting) => {
                let address = self.socket_address(setting, "global.metrics_listen".to_owned());
                if let Some(address) = address {
                    if !address.ip().is_loopback() {
                        let warning = Warning::MetricsNotLoopback(address);
                        self.warn(setting.span(), "global.metrics_listen", warning);
                    }
                }
                address.map(Some)
            }
            None => Some(DEFAULT_METRICS_LISTEN.parse().ok()),
        };
        let switchover_hold = match global.as_ref().and_then(|g| g.switchover_hold.as_ref()) {
            Some(setting) => self.duration(setting, "global.switchover_hold"),
            None => Some(DEFAULT_SWITCHOVER_HOLD),
        };
        let node_name = match global.and_then(|global| global.node_name) {
            Some(name) => {
                let rule = names::check_node_name;
                self.name(&name, KEY.to_owned(), rule, Problem::NodeName)?
            }
            None => match hostname() {
                Some(name) => name,
                None => {
                    self.error(header, KEY, Problem::NoHostname);
                    return None;
                }
            },
        };
        Some(Global {
            node_name,
            garp: garp?,
            script_security: self.script_security,
            control_socket: control_socket?,
            metrics_listen: metrics_listen?,
            switchover_hold: switchover_hold?,
        })
    }

    /// The four announcement keys over `base` (the defaults, or the global settings for an
    /// instance). `repeats` is `[garp_master_repeat, garp_lower_prio_repeat]`; an unset
    /// lower-priority repeat follows the master repeat, as in keepalived.
    fn garp(
        &mut self,
        base: Garp,
        repeats: [&Option<Spanned<i64>>; 2],
        delay: &Option<Spanned<FileDuration>>,
        refresh: &Option<Spanned<FileDuration>>,
        prefix: &str,
    ) -> Option<Garp> {
        let key = |field: &str| format!("{prefix}.{field}");
        let mut garp = base;
        let mut ok = true;
        let repeat = |checker: &mut Self, setting: &Spanned<i64>, field: &str| {
            let value = *setting.get_ref();
            match u32::try_from(value).ok().filter(|value| *value <= 100) {
                Some(value) => Some(value),
                None => {
                    checker.error(setting.span(), key(field), Problem::GarpRepeat(value));
                    None
                }
            }
        };
        if let Some(setting) = repeats[0] {
            match repeat(self, setting, "garp_master_repeat") {
                Some(value) => {
                    garp.master_repeat = value;
                    garp.lower_prio_repeat = value;
                }
                None => ok = false,
            }
        }
        if let Some(setting) = repeats[1] {
            match repeat(self, setting, "garp_lower_prio_repeat") {
                Some(value) => garp.lower_prio_repeat = value,
                None => ok = false,
            }
        }
        if let Some(setting) = delay {
            let field = key("garp_master_delay");
            match self.duration(setting, &field) {
                Some(value) if value <= MAX_PREEMPT_DELAY => garp.master_delay = value,
                Some(_) => {
                    let problem = Problem::GarpDelay(setting.get_ref().0.clone());
                    self.error(setting.span(), field, problem);
                    ok = false;
                }
                None => ok = false,
            }
        }
        if let Some(setting) = refresh {
            let field = key("garp_master_refresh");
            match self.duration(setting, &field) {
                Some(value) if value.is_zero() => garp.master_refresh = None,
                Some(value)
                    if (Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&value) =>
                {
                    garp.master_refresh = Some(value)
                }
                Some(_) => {
                    let problem = Problem::GarpRefresh(setting.get_ref().0.clone());
                    self.error(setting.span(), field, problem);
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(garp)
    }

    /// Every rule about one `[[instance]]`; `None` when any of them failed.
    fn instance(
        &mut self,
        index: usize,
        instance: Spanned<FileInstance>,
        global_garp: Garp,
        checks: &std::collections::BTreeMap<String, checks::CheckSummary>,
    ) -> Option<Instance> {
        let header = instance.span();
        let file = instance.into_inner();
        let key = |field: &str| format!("instance[{index}].{field}");

        let name = self
            .required(&file.name, &header, key("name"))
            .and_then(|name| {
                let rule = names::check_instance_name;
                self.name(name, key("name"), rule, Problem::InstanceName)
            });
        let interface = self
            .required(&file.interface, &header, key("interface"))
            .and_then(|interface| self.interface_name(interface, key("interface")));
        let vrid = self
            .required(&file.vrid, &header, key("vrid"))
            .and_then(|vrid| self.vrid(vrid, key("vrid")));
        let version = self.version(file.version.as_ref(), key("version"));
        let priority = self.priority(file.priority.as_ref(), key("priority"));
        let advert_interval = version.and_then(|version| {
            let setting = file.advert_interval.as_ref();
            self.advert_interval(setting, version, key("advert_interval"))
        });
        let preempt = file.preempt.as_ref().is_none_or(|p| *p.get_ref());
        let fast_preempt = file.fast_preempt.as_ref().is_some_and(|f| *f.get_ref());
        let preempt_delay = match &file.preempt_delay {
            None => Some(Duration::ZERO),
            Some(delay) => self.preempt_delay(delay, key("preempt_delay")),
        };

        // Addresses: parse each, then settle the family from the first one written.
        let mut written = Vec::new();
        let vips = self
            .required(&file.vips, &header, key("vips"))
            .and_then(|vips| self.vips(vips, interface.as_deref(), key("vips"), &mut written));
        // A Backup does not hold the VIPs: it cannot send from one, and a peer that is a
        // VIP is whichever node is Master, possibly this one.
        let vip_addresses: Vec<IpAddr> = written.iter().map(|vip| vip.address).collect();
        let unicast_source = file.unicast_source.as_ref().and_then(|source| {
            let address = self.host(source, key("unicast_source"))?;
            if vip_addresses.contains(&address) {
                let problem = Problem::UnicastIsVip(address);
                self.error(source.span(), key("unicast_source"), problem);
                return None;
            }
            written.push(Written {
                address,
                span: source.span(),
                key: key("unicast_source"),
            });
            Some(address)
        });
        let unicast_peers = self.peers(index, &file, unicast_source, &vip_addresses, &mut written);
        let family = self.family(&written);

        // Rules between settings.
        if let (Some(version), Some(Family::Ipv6)) = (&file.version, family) {
            if *version.get_ref() == 2 {
                self.error(version.span(), key("version"), Problem::V2WithIpv6);
            }
        }
        if let (Some(OWNER_PRIORITY), Some(setting)) = (priority, &file.preempt) {
            if !setting.get_ref() {
                self.error(setting.span(), key("preempt"), Problem::OwnerWithoutPreempt);
            }
        }
        let auth = self.auth(&file, version, &key);
        let checksum_mode = self.checksum_mode(&file, version, family, key("v3_checksum_as_v2"));
        self.preempt_warnings(&file, preempt, priority, preempt_delay, &key);
        let tracks = self.tracks(file.track.as_ref(), checks, &format!("instance[{index}]"));
        let notify = self.notify(file.notify.as_ref(), &format!("instance[{index}]"));
        let peer_priority = file
            .peer_priority
            .as_ref()
            .and_then(|setting| self.priority(Some(setting), key("peer_priority")));
        if let (Some(priority), Some(tracks), Some(setting)) = (priority, &tracks, &file.track) {
            self.explain_election(priority, tracks, peer_priority, setting.span(), &key);
        }
        let garp = self.garp(
            global_garp,
            [&file.garp_master_repeat, &file.garp_lower_prio_repeat],
            &file.garp_master_delay,
            &file.garp_master_refresh,
            &format!("instance[{index}]"),
        );

        // Rules between instances.
        if let (Some(name), Some(setting)) = (&name, &file.name) {
            self.unique_name(name, setting.span(), key("name"));
        }
        if let (Some(interface), Some(vrid), Some(family), Some(setting)) =
            (&interface, vrid, family, &file.vrid)
        {
            let owner = name.clone().unwrap_or_else(|| format!("instance[{index}]"));
            let slot = (interface.clone(), vrid, family);
            self.unique_vrid(slot, owner, setting.span(), key("vrid"));
        }

        Some(Instance {
            name: name?,
            interface: interface?,
            vrid: vrid?,
            version: version?,
            family: family?,
            priority: priority?,
            advert_interval: advert_interval?,
            preempt,
            preempt_delay: preempt_delay?,
            fast_preempt,
            unicast_source: match file.unicast_source {
                Some(_) => Some(unicast_source?),
                None => None,
            },
            unicast_peers: unicast_peers?,
            vips: vips?,
            auth: auth?,
            checksum_mode: checksum_mode?,
            garp: garp?,
            tracks: tracks?,
            notify: notify?,
            peer_priority: match file.peer_priority {
                Some(_) => Some(peer_priority?),
                None => None,
            },
        })
    }

    /// keepalived users' most common mistake is a weight smaller than the gap to the peer:
    /// warn when no failure can move the VIP, and when weights cannot act at all.
    fn explain_election(
        &mut self,
        priority: u8,
        tracks: &[TrackRef],
        peer_priority: Option<u8>,
        span: Range<usize>,
        key: &dyn Fn(&str) -> String,
    ) {
        let weights: Vec<(i32, bool)> = tracks.iter().map(|t| (t.weight, t.is_file)).collect();
        let range = crate::health::score::priority_range(priority, &weights);
        if priority == OWNER_PRIORITY && weights.iter().any(|(weight, _)| *weight != 0) {
            self.warn(span.clone(), key("track"), Warning::OwnerIgnoresWeights);
        }
        if let Some(peer) = peer_priority {
            let reversed = tracks.iter().any(|track| track.reverse);
            if priority != OWNER_PRIORITY
                && priority >= peer
                && !range.can_fault
                && !range.has_file_tracks
                && !reversed
                && range.lowest >= peer
            {
                let warning = Warning::CannotLoseToPeer {
                    priority,
                    lowest: range.lowest,
                    peer,
                };
                self.warn(span, key("track"), warning);
            }
        }
    }

    /// The setting, or a "missing" error at the instance's header.
    fn required<'f, T>(
        &mut self,
        setting: &'f Option<Spanned<T>>,
        header: &Range<usize>,
        key: String,
    ) -> Option<&'f Spanned<T>> {
        if setting.is_none() {
            self.error(header.clone(), key, Problem::Missing);
        }
        setting.as_ref()
    }

    fn vrid(&mut self, setting: &Spanned<i64>, key: String) -> Option<u8> {
        let value = *setting.get_ref();
        match u8::try_from(value) {
            Ok(vrid) if vrid != 0 => Some(vrid),
            _ => {
                self.error(setting.span(), key, Problem::Vrid(value));
                None
            }
        }
    }

    fn version(&mut self, setting: Option<&Spanned<i64>>, key: String) -> Option<Version> {
        let Some(setting) = setting else {
            return Some(Version::V3);
        };
        match *setting.get_ref() {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            other => {
                self.error(setting.span(), key, Problem::Version(other));
                None
            }
        }
    }

    fn priority(&mut self, setting: Option<&Spanned<i64>>, key: String) -> Option<u8> {
        let Some(setting) = setting else {
            return Some(DEFAULT_PRIORITY);
        };
        let value = *setting.get_ref();
        let problem = match u8::try_from(value) {
            Ok(0) => Problem::PriorityZero,
            Ok(priority) => return Some(priority),
            Err(_) => Problem::Priority(value),
        };
        self.error(setting.span(), key, problem);
        None
    }

    fn unique_name(&mut self, name: &str, span: Range<usize>, key: String) {
        if let Some(&line) = self.names.get(name) {
            let name = name.to_owned();
            self.error(span, key, Problem::DuplicateName { name, line });
        } else {
            let line = self.line(&span);
            self.names.insert(name.to_owned(), line);
        }
    }

    /// keepalived allows a repeated VRID across unicast instances with disjoint peers
    /// (#2022); we do not, since one VRID per segment is what the RFC and operators expect.
    fn unique_vrid(
        &mut self,
        slot: (String, u8, Family),
        owner: String,
        span: Range<usize>,
        key: String,
    ) {
        if let Some((other, line)) = self.vrids.get(&slot).cloned() {
            let (interface, vrid, family) = slot;
            let problem = Problem::DuplicateVrid {
                vrid,
                interface,
                family: family_name(family),
                other,
                line,
            };
            self.error(span, key, problem);
        } else {
            let line = self.line(&span);
            self.vrids.insert(slot, (owner, line));
        }
    }

    /// The name if `rule` accepts it; otherwise the error `problem` makes of the refusal.
    fn name(
        &mut self,
        setting: &Spanned<String>,
        key: String,
        rule: impl FnOnce(&str) -> Result<(), NameError>,
        problem: fn(String, NameError) -> Problem,
    ) -> Option<String> {
        let text = setting.get_ref();
        match rule(text) {
            Ok(()) => Some(text.clone()),
            Err(why) => {
                self.error(setting.span(), key, problem(text.clone(), why));
                None
            }
        }
    }

    fn interface_name(&mut self, setting: &Spanned<String>, key: String) -> Option<String> {
        self.name(setting, key, names::check_interface, Problem::InterfaceName)
    }

    fn duration(&mut self, setting: &Spanned<FileDuration>, key: &str) -> Option<Duration> {
        let text = &setting.get_ref().0;
        match duration::parse(text) {
            Ok(value) => Some(value),
            Err(why) => {
                self.error(setting.span(), key, Problem::Duration(text.clone(), why));
                None
            }
        }
    }

    /// RFC 3768 §5.3.7 (v2: whole seconds, 8 bits) and RFC 5798 §5.2.7 (v3: centiseconds,
    /// 12 bits). keepalived rounds what does not fit; we refuse, so the file says what
    /// goes on the wire.
    fn advert_interval(
        &mut self,
        setting: Option<&Spanned<FileDuration>>,
        version: Version,
        key: String,
    ) -> Option<Centis> {
        let Some(setting) = setting else {
            return Some(Centis::ONE_SECOND);
        };
        let interval = self.duration(setting, &key)?;
        let text = setting.get_ref().0.clone();
        let centis = match version {
            Version::V2 => Centis::from_duration(interval)
                .filter(|c| c.whole_seconds().is_some_and(|s| (1..=255).contains(&s))),
            Version::V3 => Centis::from_duration(interval)
                .filter(|c| (1..=Centis::MAX_V3.get()).contains(&c.get())),
        };
        if centis.is_none() {
            let problem = match version {
                Version::V2 => Problem::IntervalV2(text),
                Version::V3 => Problem::IntervalV3(text),
            };
            self.error(setting.span(), key, problem);
        }
        centis
    }

    fn preempt_delay(&mut self, setting: &Spanned<FileDuration>, key: String) -> Option<Duration> {
        let delay = self.duration(setting, &key)?;
        if delay > MAX_PREEMPT_DELAY {
            let problem = Problem::PreemptDelay(setting.get_ref().0.clone());
            self.error(setting.span(), key, problem);
            return None;
        }
        Some(delay)
    }

    fn host(&mut self, setting: &Spanned<String>, key: String) -> Option<IpAddr> {
        match address::parse_host(setting.get_ref()) {
            Ok(address) => Some(address),
            Err(why) => {
                self.error(setting.span(), key, Problem::Address(why));
                None
            }
        }
    }

    fn vips(
        &mut self,
        list: &Spanned<Vec<Spanned<FileVip>>>,
        interface: Option<&str>,
        key: String,
        written: &mut Vec<Written>,
    ) -> Option<Vec<Vip>> {
        let entries = list.get_ref();
        if entries.is_empty() {
            self.error(list.span(), key, Problem::NoVips);
            return None;
        }
        if entries.len() > MAX_VIPS {
            self.error(list.span(), key, Problem::TooManyVips(entries.len()));
            return None;
        }
        let mut vips = Vec::with_capacity(entries.len());
        let mut refused = false;
        for (position, entry) in entries.iter().enumerate() {
            match self.vip(entry, interface, &format!("{key}[{position}]"), written) {
                Some(vip) => vips.push(vip),
                None => refused = true,
            }
        }
        (!refused).then_some(vips)
    }

    /// One VIP. Checks the address, the dev and the label independently so that one entry
    /// reports all its errors; a valid address counts for the family and uniqueness rules
    /// even when its dev or label is refused.
    fn vip(
        &mut self,
        entry: &Spanned<FileVip>,
        interface: Option<&str>,
        key: &str,
        written: &mut Vec<Written>,
    ) -> Option<Vip> {
        let (address, dev, label) = match entry.get_ref() {
            FileVip::Short(text) => (Some((text, entry.span(), key.to_owned())), None, None),
            FileVip::Table(table) => {
                if table.address.is_none() {
                    self.error(entry.span(), format!("{key}.address"), Problem::Missing);
                }
                let address = table
                    .address
                    .as_ref()
                    .map(|address| (address.get_ref(), address.span(), format!("{key}.address")));
                (address, table.dev.as_ref(), table.label.as_ref())
            }
        };
        let parsed = address.and_then(|(text, span, key)| match address::parse_vip(text) {
            Ok((address, prefix_len)) => {
                self.unique_vip(address, span.clone(), key.clone());
                written.push(Written { address, span, key });
                Some((address, prefix_len))
            }
            Err(why) => {
                self.error(span, key, Problem::Address(why));
                None
            }
        });
        // Without a dev, the instance's interface (whose own error is already reported).
        let dev = match dev {
            Some(dev) => self.interface_name(dev, format!("{key}.dev")),
            None => interface.map(str::to_owned),
        };
        let label = match label {
            None => Some(None),
            Some(label) => {
                let address = parsed.map(|(address, _)| address);
                self.label(label, address, dev.as_deref(), format!("{key}.label"))
                    .map(Some)
            }
        };
        let (address, prefix_len) = parsed?;
        Some(Vip {
            address,
            prefix_len,
            dev: dev?,
            label: label?,
        })
    }

    /// `None` when refused, or when it cannot be judged because the address or the dev
    /// was refused (and reported) already.
    fn label(
        &mut self,
        label: &Spanned<String>,
        address: Option<IpAddr>,
        dev: Option<&str>,
        key: String,
    ) -> Option<String> {
        if address.is_some_and(|address| address.is_ipv6()) {
            self.error(label.span(), key, Problem::LabelOnIpv6);
            return None;
        }
        let dev = dev?;
        self.name(
            label,
            key,
            |text| names::check_label(text, dev),
            Problem::Label,
        )
    }

    /// A VIP may appear once in the whole file: two routers holding one address fight.
    fn unique_vip(&mut self, address: IpAddr, span: Range<usize>, key: String) {
        if let Some((first_key, line)) = self.vips.get(&address).cloned() {
            let problem = Problem::DuplicateVip {
                address,
                key: first_key,
                line,
            };
            self.error(span, key, problem);
        } else {
            let line = self.line(&span);
            self.vips.insert(address, (key, line));
        }
    }

    fn peers(
        &mut self,
        index: usize,
        file: &FileInstance,
        source: Option<IpAddr>,
        vips: &[IpAddr],
        written: &mut Vec<Written>,
    ) -> Option<Vec<IpAddr>> {
        let key = format!("instance[{index}].unicast_peers");
        let Some(list) = &file.unicast_peers else {
            // A source with no peer is a half-written unicast setup, not a multicast one.
            if let Some(setting) = &file.unicast_source {
                let key = format!("instance[{index}].unicast_source");
                self.error(setting.span(), key, Problem::SourceWithoutPeers);
            }
            return Some(Vec::new());
        };
        if list.get_ref().is_empty() {
            // keepalived took an empty list as multicast, and a template that rendered
            // one broke OpenShift bootstraps; an empty list is always a mistake.
            self.error(list.span(), key, Problem::EmptyPeers);
            return None;
        }
        let mut peers = Vec::new();
        let mut refused = false;
        for (position, entry) in list.get_ref().iter().enumerate() {
            let key = format!("{key}[{position}]");
            let Some(peer) = self.host(entry, key.clone()) else {
                refused = true;
                continue;
            };
            written.push(Written {
                address: peer,
                span: entry.span(),
                key: key.clone(),
            });
            let problem = if Some(peer) == source {
                Problem::PeerIsSource(peer)
            } else if vips.contains(&peer) {
                Problem::UnicastIsVip(peer)
            } else if peers.contains(&peer) {
                Problem::DuplicatePeer(peer)
            } else {
                peers.push(peer);
                continue;
            };
            self.error(entry.span(), key, problem);
            refused = true;
        }
        (!refused).then_some(peers)
    }

    /// The family of the first address written (VIPs first, as keepalived takes it from
    /// `virtual_ipaddress`); every other address must match it.
    fn family(&mut self, written: &[Written]) -> Option<Family> {
        let first = written.first()?;
        let family = Family::of(&first.address);
        let mut mixed = false;
        for other in written.iter().filter(|w| Family::of(&w.address) != family) {
            let problem = Problem::MixedFamily {
                address: other.address,
                found: family_name(Family::of(&other.address)),
                family: family_name(family),
                by: first.key.clone(),
                line: self.line(&first.span),
            };
            self.error(other.span.clone(), other.key.clone(), problem);
            mixed = true;
        }
        (!mixed).then_some(family)
    }

    /// The VRRPv2 password, inline (`auth_pass`, warned) or from `auth_pass_file`. The file
    /// is read here so `check` and a reload report a missing or bad file before it matters.
    fn auth(
        &mut self,
        file: &FileInstance,
        version: Option<Version>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Auth> {
        let (setting, key, password) = match (&file.auth_pass, &file.auth_pass_file) {
            (None, None) => return Some(Auth::None),
            (Some(_), Some(path)) => {
                self.error(path.span(), key("auth_pass_file"), Problem::AuthTwice);
                return None;
            }
            (Some(inline), None) => {
                self.warn(inline.span(), key("auth_pass"), Warning::InlineAuthPass);
                (
                    inline,
                    key("auth_pass"),
                    inline.get_ref().as_bytes().to_vec(),
                )
            }
            (None, Some(path)) => {
                let key = key("auth_pass_file");
                let path_text = path.get_ref();
                if !Path::new(path_text).is_absolute() {
                    self.error(path.span(), key, Problem::NotAbsolute(path_text.clone()));
                    return None;
                }
                match read_secret_file(Path::new(path_text)) {
                    Ok(password) => (path, key, password),
                    Err(error) => {
                        let problem = Problem::AuthFileUnreadable {
                            path: path_text.clone(),
                            reason: error.to_string(),
                        };
                        self.error(path.span(), key, problem);
                        return None;
                    }
                }
            }
        };
        if version == Some(Version::V3) {
            self.error(setting.span(), key, Problem::AuthWithV3);
            return None;
        }
        let mut field = [0u8; 8];
        if password.is_empty() || password.len() > field.len() {
            self.error(setting.span(), key, Problem::AuthLength(password.len()));
            return None;
        }
        field[..password.len()].copy_from_slice(&password);
        Some(Auth::SimplePassword(field))
    }

    fn checksum_mode(
        &mut self,
        file: &FileInstance,
        version: Option<Version>,
        family: Option<Family>,
        key: String,
    ) -> Option<ChecksumMode> {
        let Some(setting) = &file.v3_checksum_as_v2 else {
            return Some(ChecksumMode::PseudoHeader);
        };
        if !setting.get_ref() {
            return Some(ChecksumMode::PseudoHeader);
        }
        let problem = match (version, family) {
            (Some(Version::V2), _) => Problem::ChecksumWithV2,
            (_, Some(Family::Ipv6)) => Problem::ChecksumWithIpv6,
            _ => return Some(ChecksumMode::V2Compatible),
        };
        self.error(setting.span(), key, problem);
        None
    }

    fn preempt_warnings(
        &mut self,
        file: &FileInstance,
        preempt: bool,
        priority: Option<u8>,
        preempt_delay: Option<Duration>,
        key: &dyn Fn(&str) -> String,
    ) {
        let delay_set = preempt_delay.is_some_and(|delay| !delay.is_zero());
        if let (true, Some(setting)) = (delay_set, &file.preempt_delay) {
            if !preempt {
                let warning = Warning::PreemptDelayWithoutPreempt;
                self.warn(setting.span(), key("preempt_delay"), warning);
            } else if priority == Some(OWNER_PRIORITY) {
                let warning = Warning::PreemptDelayOnOwner;
                self.warn(setting.span(), key("preempt_delay"), warning);
            }
        }
        if let Some(setting) = &file.fast_preempt {
            if *setting.get_ref() && !preempt {
                let warning = Warning::FastPreemptWithoutPreempt;
                self.warn(setting.span(), key("fast_preempt"), warning);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_valid as parse, parse_with_hostname};

    const MINIMAL: &str = r#"
[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["192.0.2.50"]
"#;

    fn problems(text: &str) -> Vec<Problem> {
        problems_with_hostname(text, Some("testhost".into()))
    }

    fn problems_with_hostname(text: &str, hostname: Option<String>) -> Vec<Problem> {
        match parse_with_hostname(text, "t.toml", || hostname) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().filter_map(|e| e.problem().cloned()).collect(),
        }
    }

    #[test]
    fn defaults_are_keepalived_s_except_the_version() {
        let config = parse(MINIMAL);
        assert_eq!(config.global.node_name, "testhost");
        let instance = &config.instances[0];
        assert_eq!(instance.version, Version::V3);
        assert_eq!(instance.family, Family::Ipv4);
        assert_eq!(instance.priority, 100);
        assert_eq!(instance.advert_interval, Centis::ONE_SECOND);
        assert!(instance.preempt);
        assert_eq!(instance.preempt_delay, Duration::ZERO);
        assert!(!instance.fast_preempt);
        assert_eq!(instance.unicast_source, None);
        assert!(instance.unicast_peers.is_empty());
        assert_eq!(instance.auth, Auth::None);
        assert_eq!(instance.checksum_mode, ChecksumMode::PseudoHeader);
        assert_eq!(
            instance.vips,
            [Vip {
                address: "192.0.2.50".parse().expect("address"),
                prefix_len: 32,
                dev: "eth0".into(),
                label: None,
            }]
        );
        assert_eq!(
            instance.multicast_group(),
            Some(IpAddr::V4(MULTICAST_GROUP_V4))
        );
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn the_hostname_is_asked_only_when_node_name_is_missing() {
        let text = format!("[global]\nnode_name = \"lb1\"\n{MINIMAL}");
        let config = parse_with_hostname(&text, "t.toml", || panic!("not needed"));
        assert_eq!(config.map(|c| c.global.node_name).ok(), Some("lb1".into()));
        assert_eq!(problems_with_hostname(MINIMAL, None), [Problem::NoHostname]);
    }

    #[test]
    fn v2_password_is_zero_padded_and_interval_whole_seconds() {
        let text = MINIMAL.replace(
            "vrid = 51",
            "vrid = 51\nversion = 2\nauth_pass = \"abc\"\nadvert_interval = \"3s\"",
        );
        let instance = &parse(&text).instances[0];
        assert_eq!(instance.auth, Auth::SimplePassword(*b"abc\0\0\0\0\0"));
        assert_eq!(instance.advert_interval, Centis::from_seconds(3));
        assert_eq!(instance.version, Version::V2);
    }

    #[test]
    fn an_inline_password_is_accepted_with_a_warning() {
        let text = MINIMAL.replace("vrid = 51", "vrid = 51\nversion = 2\nauth_pass = \"abc\"");
        let config = parse(&text);
        let warnings: Vec<&Warning> = config.warnings.iter().map(|d| &d.warning).collect();
        assert_eq!(warnings, [&Warning::InlineAuthPass]);
        assert_eq!(config.warnings[0].key, "instance[0].auth_pass");
    }

    #[test]
    fn the_password_file_gives_the_same_field_without_its_newline() {
        let path = std::env::temp_dir().join(format!("vipkeeper-auth-{}", std::process::id()));
        std::fs::write(&path, "abc\n").unwrap();
        let setting = format!(
            "vrid = 51\nversion = 2\nauth_pass_file = {:?}",
            path.display()
        );
        let config = parse(&MINIMAL.replace("vrid = 51", &setting));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            config.instances[0].auth,
            Auth::SimplePassword(*b"abc\0\0\0\0\0")
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn a_password_file_that_is_missing_twice_set_or_relative_is_an_error() {
        let missing = "vrid = 51\nversion = 2\nauth_pass_file = \"/nonexistent/vrrp.pass\"";
        let unreadable = problems(&MINIMAL.replace("vrid = 51", missing));
        assert!(
            matches!(&unreadable[..], [Problem::AuthFileUnreadable { path, .. }]
                if path == "/nonexistent/vrrp.pass"),
            "{unreadable:?}"
        );
        let twice = "vrid = 51\nversion = 2\nauth_pass = \"a\"\nauth_pass_file = \"/x\"";
        assert_eq!(
            problems(&MINIMAL.replace("vrid = 51", twice)),
            [Problem::AuthTwice]
        );
        let relative = "vrid = 51\nversion = 2\nauth_pass_file = \"vrrp.pass\"";
        assert_eq!(
            problems(&MINIMAL.replace("vrid = 51", relative)),
            [Problem::NotAbsolute("vrrp.pass".into())]
        );
    }

    #[test]
    fn v3_interval_is_kept_in_centiseconds() {
        let text = MINIMAL.replace("vrid = 51", "vrid = 51\nadvert_interval = \"40.95s\"");
        assert_eq!(parse(&text).instances[0].advert_interval, Centis::MAX_V3);
        let text = MINIMAL.replace("vrid = 51", "vrid = 51\nadvert_interval = \"10ms\"");
        assert_eq!(parse(&text).instances[0].advert_interval, Centis::new(1));
    }

    #[test]
    fn checksum_as_v2_switches_the_mode() {
        let text = MINIMAL.replace("vrid = 51", "vrid = 51\nv3_checksum_as_v2 = true");
        assert_eq!(
            parse(&text).instances[0].checksum_mode,
            ChecksumMode::V2Compatible
        );
    }

    #[test]
    fn the_family_comes_from_the_addresses() {
        let text = MINIMAL.replace("192.0.2.50", "2001:db8::50");
        let instance = &parse(&text).instances[0];
        assert_eq!(instance.family, Family::Ipv6);
        assert_eq!(instance.vips[0].prefix_len, 128);
        assert_eq!(
            instance.multicast_group(),
            Some(IpAddr::V6(MULTICAST_GROUP_V6))
        );
    }

    #[test]
    fn unicast_has_no_multicast_group() {
        let text = MINIMAL.replace("vrid = 51", "vrid = 51\nunicast_peers = [\"192.0.2.12\"]");
        let instance = &parse(&text).instances[0];
        assert_eq!(
            instance.unicast_peers,
            ["192.0.2.12".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(instance.multicast_group(), None);
    }

    #[test]
    fn timers_use_the_configured_priority_and_interval() {
        let text = MINIMAL.replace("vrid = 51", "vrid = 51\npriority = 251");
        let timers = parse(&text).instances[0].timers();
        // keepalived's "about 20 ms" skew for priority 251 at 1 s.
        assert_eq!(timers.skew_time, Duration::from_micros(19_531));
    }

    #[test]
    fn one_bad_value_does_not_hide_the_others() {
        let text = MINIMAL.replace("vrid = 51", "vrid = 0\npriority = 300\nversion = 7");
        assert_eq!(
            problems(&text),
            [
                Problem::Vrid(0),
                Problem::Priority(300),
                Problem::Version(7)
            ]
        );
    }

    #[test]
    fn a_vip_with_a_bad_dev_still_counts_for_uniqueness() {
        let text = MINIMAL.replace(
            "vips = [\"192.0.2.50\"]",
            "vips = [{ address = \"192.0.2.50\", dev = \"a/b\" }, \"192.0.2.50\"]",
        );
        let found = problems(&text);
        assert!(matches!(found[0], Problem::InterfaceName(..)), "{found:?}");
        assert!(
            matches!(found[1], Problem::DuplicateVip { .. }),
            "{found:?}"
        );
    }

    #[test]
    fn warnings_do_not_fail_the_load() {
        let text = MINIMAL.replace(
            "vrid = 51",
            "vrid = 51\npreempt = false\nfast_preempt = true\npreempt_delay = \"5s\"",
        );
        let config = parse(&text);
        let warnings: Vec<&Warning> = config.warnings.iter().map(|d| &d.warning).collect();
        assert_eq!(
            warnings,
            [
                &Warning::FastPreemptWithoutPreempt,
                &Warning::PreemptDelayWithoutPreempt
            ]
        );
        assert_eq!(config.warnings[1].key, "instance[0].preempt_delay");
        assert_eq!(config.warnings[1].at.line, 8);
    }
}
