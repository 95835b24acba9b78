//! What can be wrong with a configuration, and how it is shown: `FILE:LINE:COL: key: what`.
//!
//! Owns [`ConfigError`] (the layer's one error enum), [`Problem`] (the catalogue of broken
//! rules, one variant per rule so tests and tools match on kinds rather than text),
//! [`ConfigErrors`] (all errors of one load) and the warnings ([`Diagnostic`], [`Warning`]).
//! Every variant is an expected outcome of operator input: print it and refuse the file;
//! none of them is a fault of vipkeeper.

use std::fmt;
use std::io;
use std::net::IpAddr;

use thiserror::Error;

use super::address::AddressError;
use super::duration::DurationError;
use super::names::NameError;
pub use super::source::Location;

/// One reason a configuration file was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read at all (missing, permissions); there is no position.
    #[error("{path}: cannot read: {source}")]
    Unreadable { path: String, source: io::Error },
    /// The file was read and something in it is wrong. `key` is the dotted path of the
    /// offending key, e.g. `instance[0].vips[1].label`, counted from 0 in file order.
    #[error("{at}: {key}: {problem}")]
    Invalid {
        at: Location,
        key: String,
        problem: Problem,
    },
}

impl ConfigError {
    /// The broken rule, when the file was readable.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ConfigError::Unreadable { .. } => None,
            ConfigError::Invalid { problem, .. } => Some(problem),
        }
    }
}

/// Every error found in one file, in file order. Displayed one error per line.
#[derive(Debug)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// Sorts by position so the operator reads them top to bottom.
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(position);
        ConfigErrors(errors)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn position(error: &ConfigError) -> (usize, usize) {
    match error {
        ConfigError::Unreadable { .. } => (0, 0),
        ConfigError::Invalid { at, .. } => (at.line, at.column),
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The rule a value breaks. Messages say what is wrong and, where it is not obvious, why
/// (the RFC clause or the keepalived behaviour we match) and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("the file is not valid UTF-8")]
    NotUtf8,
    /// A TOML syntax error, an unknown key or a wrong type, in the toml crate's words.
    #[error("{0}")]
    Toml(String),
    #[error("required key is missing")]
    Missing,
    #[error("no [[instance]] is defined; there is nothing to run")]
    NoInstances,

    #[error("{0:?} {1}")]
    NodeName(String, NameError),
    #[error(
        "not set, and no hostname could be read from /proc/sys/kernel/hostname or \
         /etc/hostname; set node_name"
    )]
    NoHostname,
    #[error("{0:?} {1}")]
    InstanceName(String, NameError),
    #[error("instance name {name:?} is already used at line {line}")]
    DuplicateName { name: String, line: usize },
    #[error("{0:?} {1}")]
    InterfaceName(String, NameError),
    #[error("{0:?} {1}")]
    Label(String, NameError),
    #[error("labels exist only for IPv4 addresses (IFA_LABEL); remove the label")]
    LabelOnIpv6,

    #[error("VRID must be 1..255, got {0}")]
    Vrid(i64),
    #[error(
        "VRID {vrid} on {interface} over {family} is already used by instance {other:?} \
         (line {line}); each virtual router needs its own VRID"
    )]
    DuplicateVrid {
        vrid: u8,
        interface: String,
        family: &'static str,
        other: String,
        line: usize,
    },
    #[error("version must be 2 (RFC 3768) or 3 (RFC 5798), got {0}")]
    Version(i64),
    #[error("version 2 is IPv4 only (RFC 3768) and this instance has IPv6 addresses; use 3")]
    V2WithIpv6,
    #[error("priority 0 is reserved for a Master that resigns (RFC 5798 §5.2.4); use 1..255")]
    PriorityZero,
    #[error("priority must be 1..255 (255 = address owner), got {0}")]
    Priority(i64),
    #[error(
        "priority 255 makes this node the address owner, which always preempts \
         (RFC 5798 §6.1); lower the priority or remove preempt = false"
    )]
    OwnerWithoutPreempt,

    #[error("invalid duration {0:?}: {1}")]
    Duration(String, DurationError),
    #[error(
        "version 2 advertises whole seconds: advert_interval must be 1s..255s in whole \
         seconds (RFC 3768 §5.3.7), got {0:?}"
    )]
    IntervalV2(String),
    #[error(
        "version 3 advert_interval must be a multiple of 10ms from 10ms to 40.95s \
         (RFC 5798 §5.2.7), got {0:?}"
    )]
    IntervalV3(String),
    #[error("preempt_delay must be 0s..1000s (keepalived's range), got {0:?}")]
    PreemptDelay(String),
    #[error("must be 0..100 announcements per VIP, got {0}")]
    GarpRepeat(i64),

    #[error("invalid check name {0:?}: {1}")]
    CheckName(String, NameError),
    #[error(
        "type must be one of \"haproxy\", \"tcp\", \"http\", \"mysql\", \"exec\", \
         \"interface\", \"file\", \"process\"; got {0:?}"
    )]
    CheckType(String),
    #[error("does not apply to type = {0:?}")]
    NotForType(&'static str),
    #[error("set exactly one of `{0}` and `{1}`")]
    ExactlyOne(&'static str, &'static str),
    #[error("must be {range}, got {got}")]
    OutOfRange { range: &'static str, got: i64 },
    #[error("must be {range}, got {got:?}")]
    DurationRange { range: &'static str, got: String },
    #[error(
        "does not apply to type = {0:?}: it reports each change as it happens, so there \
         is no interval, timeout, rise or fall"
    )]
    NotForWatched(&'static str),
    #[error("{0:?} is not ADDRESS:PORT (an IP address and a port, e.g. \"127.0.0.1:3306\")")]
    SocketAddress(String),
    #[error(
        "{0} is not on loopback: the HAProxy stats socket must not be reachable from the \
         network; use a unix socket or 127.0.0.1"
    )]
    NotLoopback(std::net::SocketAddr),
    #[error("{0:?} is not an http:// or https:// URL")]
    Url(String),
    #[error("method must be \"GET\" or \"HEAD\", got {0:?}")]
    Method(String),
    #[error(
        "does not apply to a {0} hook (command hooks take command, shell and timeout; \
         haproxy_reload takes master_socket, check_config and haproxy_binary; mysql_admin \
         takes address, user, password_file and statement)"
    )]
    NotForHook(&'static str),
    #[error("{0} does not exist")]
    ProgramMissing(String),
    #[error("a HEAD request has no body to search; use method = \"GET\"")]
    BodyWithHead,
    #[error("{0:?} must be an absolute path")]
    NotAbsolute(String),
    #[error("the command is empty")]
    EmptyCommand,
    #[error("with shell = true, command is one string for /bin/sh -c")]
    ShellCommand,
    #[error(
        "{0:?} is longer than 15 bytes: the kernel keeps 15 bytes of a process name \
         (/proc/PID/comm), so it would never match"
    )]
    ProcessName(String),
    #[error("no [check.{0}] is defined")]
    UnknownCheck(String),
    #[error("check {0:?} is already tracked by this instance")]
    DuplicateTrack(String),

    #[error("action must be \"haproxy_reload\" or \"mysql_admin\", got {0:?}")]
    UnknownAction(String),
    #[error(
        "a hook list is either one command as words ([\"/usr/bin/x\", \"arg\"]) or hook \
         tables ([{{ command = [...] }}, {{ action = \"...\" }}]), not both"
    )]
    MixedHookList,
    #[error("queue must be \"all\" or \"latest\", got {0:?}")]
    QueuePolicy(String),
    #[error(
        "{0}; vipkeeper runs as root and refuses programs a non-root user could replace \
         (set script_security = false in [global] to accept the risk)"
    )]
    Insecure(String),
    #[error("invalid group name {0:?}: {1}")]
    GroupName(String, NameError),
    #[error("group {0:?} is already defined")]
    DuplicateGroup(String),
    #[error("no instance {0:?} is defined")]
    UnknownInstance(String),
    #[error(
        "instance {instance:?} is already in group {group:?}: an instance belongs to one group"
    )]
    InstanceInTwoGroups { instance: String, group: String },
    #[error("a group needs at least one instance")]
    EmptyGroup,
    #[error("garp_master_delay must be 0s (no second burst)..1000s, got {0:?}")]
    GarpDelay(String),
    #[error("garp_master_refresh must be 0s (off) or 1s..24h, got {0:?}")]
    GarpRefresh(String),

    #[error("{0}")]
    Address(AddressError),
    #[error(
        "{address} is {found}, but this instance is {family} (set by {by} at line {line}); \
         an instance never mixes families, use one instance per family"
    )]
    MixedFamily {
        address: IpAddr,
        found: &'static str,
        family: &'static str,
        by: String,
        line: usize,
    },
    #[error("at least one VIP is required (RFC 5798 §5.2.5: Count IPvX Addr is at least 1)")]
    NoVips,
    #[error(
        "{0} VIPs, but one advert carries at most 255 (RFC 5798 §5.2.5); split them over \
         two instances"
    )]
    TooManyVips(usize),
    #[error("{address} is already a VIP at {key} (line {line})")]
    DuplicateVip {
        address: IpAddr,
        key: String,
        line: usize,
    },
    #[error(
        "empty: list the peers, or remove the key to use multicast (an empty list is not \
         taken as multicast)"
    )]
    EmptyPeers,
    #[error(
        "set without unicast_peers: unicast needs at least one peer, and multicast adverts \
         come from the interface's primary address"
    )]
    SourceWithoutPeers,
    #[error("{0} is this node's own unicast_source")]
    PeerIsSource(IpAddr),
    #[error("{0} is listed twice")]
    DuplicatePeer(IpAddr),
    #[error(
        "{0} is one of this instance's VIPs, which only the Master holds; use the node's own \
         address"
    )]
    UnicastIsVip(IpAddr),

    #[error("auth_pass needs version = 2: VRRPv3 has no authentication (RFC 5798 removed it)")]
    AuthWithV3,
    #[error("auth_pass must be 1..8 bytes (the VRRPv2 Authentication Data field), got {0}")]
    AuthLength(usize),
    #[error("set auth_pass or auth_pass_file, not both")]
    AuthTwice,
    #[error("cannot read the password file {path}: {reason}")]
    AuthFileUnreadable { path: String, reason: String },
    #[error("v3_checksum_as_v2 applies only to version 3")]
    ChecksumWithV2,
    #[error(
        "v3_checksum_as_v2 applies only to IPv4; the IPv6 checksum always covers the \
         pseudo-header (RFC 5798 §5.2.8)"
    )]
    ChecksumWithIpv6,
}

/// A setting that is accepted but probably not what the operator meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub at: Location,
    pub key: String,
    pub warning: Warning,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: warning: {}", self.at, self.key, self.warning)
    }
}

/// The kinds of warning; none of them stops the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// A check no instance tracks is never run (as keepalived's unused vrrp_script).
    UnusedCheck,
    /// An owner's priority never changes (RFC 5798 §5.2.4): only weight 0 acts on it.
    OwnerIgnoresWeights,
    /// keepalived users' most common mistake: no failure can bring this node below its peer.
    CannotLoseToPeer { priority: u8, lowest: u8, peer: u8 },
    /// keepalived warns about a sync group of one.
    SingleMemberGroup,
    /// Members with different priorities: the dual-VIP layout does not belong in a group.
    MembersPreferDifferentNodes { members: String },
    /// Metrics served beyond loopback: anyone on that network reads the cluster's state.
    MetricsNotLoopback(std::net::SocketAddr),
    /// keepalived ignores members' weights; ours apply, but they can split the group.
    MemberWeights { instance: String },
    /// `preempt_delay` only delays a preemption, and `preempt = false` forbids it.
    PreemptDelayWithoutPreempt,
    /// `fast_preempt` only speeds up a preemption, and `preempt = false` forbids it.
    FastPreemptWithoutPreempt,
    /// The address owner becomes Master at once (RFC 5798 §6.4.1); nothing delays it.
    PreemptDelayOnOwner,
    /// A password inline is read by whoever reads the config (and its backups).
    InlineAuthPass,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnusedCheck => {
                f.write_str("no instance or group tracks this check: it runs but moves nothing")
            }
            Warning::OwnerIgnoresWeights => f.write_str(
                "weights have no effect at priority 255 (the address owner's priority never \
                 changes); only weight 0 (FAULT) acts on it",
            ),
            Warning::CannotLoseToPeer {
                priority,
                lowest,
                peer,
            } => write!(
                f,
                "with every tracked check failing this instance still has priority {lowest} \
                 (configured {priority}), not below the peer's {peer}: a failed check never \
                 moves the VIP. A check that must move it needs weight = -{needed} or lower, \
                 or weight 0 (FAULT)",
                needed = i32::from(*priority) - i32::from(*peer) + 1
            ),
            Warning::MetricsNotLoopback(address) => write!(
                f,
                "{address} is reachable beyond this machine: anyone there can read the \
                 cluster's state; keep metrics on loopback or firewall the port"
            ),
            Warning::InlineAuthPass => f.write_str(
                "the password is inline: whoever can read this file reads it; prefer \
                 auth_pass_file pointing at a file only root can read",
            ),
            Warning::SingleMemberGroup => {
                f.write_str("a group of one instance does nothing (keepalived warns the same)")
            }
            Warning::MembersPreferDifferentNodes { members } => write!(
                f,
                "members have different priorities ({members}): a sync group moves them \
                 together, so a master-master dual VIP (each node preferring its own \
                 instance) cannot work inside one group; use two instances without a group"
            ),
            Warning::MemberWeights { instance } => write!(
                f,
                "instance {instance:?} has weighted tracks of its own; put weighted tracks \
                 on the group, so every member's priority moves together (keepalived \
                 ignores members' weights)"
            ),
            Warning::PreemptDelayWithoutPreempt | Warning::FastPreemptWithoutPreempt => {
                f.write_str("has no effect with preempt = false")
            }
            Warning::PreemptDelayOnOwner => f.write_str(
                "has no effect at priority 255: the address owner becomes Master at once",
            ),
        }
    }
}
