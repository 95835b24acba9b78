//! Hooks and built-in actions run on state transitions, in order and under supervision.
//!
//! Owns what happens around vipkeeper when an instance or a sync group changes state:
//! operators' commands (argv, environment, timeout, process group killed on timeout),
//! HAProxy reloads through the master CLI with verification, and MyCat admin statements
//! over the MySQL protocol. Hooks of one owner run strictly one at a time in transition
//! order, on a thread of their own ([`runner`]), so a hook that hangs never delays an
//! advert or another owner's hooks. Must not touch routers: the daemon hands it
//! [`Notification`]s and reads back [`HookReport`]s.

pub mod haproxy_reload;
pub mod mysql_admin;
pub mod runner;
pub mod security;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Whose transition it is: keepalived's `INSTANCE` or `GROUP` first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Instance,
    Group,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Instance => "INSTANCE",
            Scope::Group => "GROUP",
        })
    }
}

/// The states hooks are run for, with keepalived's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookState {
    Master,
    Backup,
    Fault,
    Stop,
}

impl fmt::Display for HookState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookState::Master => "MASTER",
            HookState::Backup => "BACKUP",
            HookState::Fault => "FAULT",
            HookState::Stop => "STOP",
        })
    }
}

/// One transition as hooks see it. Also the environment of command hooks:
/// VIPKEEPER_INSTANCE (the name), VIPKEEPER_STATE, VIPKEEPER_PREV_STATE,
/// VIPKEEPER_PRIORITY, VIPKEEPER_VIPS (space separated), VIPKEEPER_REASON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub scope: Scope,
    /// The instance or group name.
    pub name: String,
    pub state: HookState,
    /// The state before, in keepalived's words (also INIT).
    pub prev_state: String,
    /// The effective priority (0 for groups, as keepalived passes).
    pub priority: u8,
    pub vips: Vec<String>,
    pub reason: String,
}

/// An operator's command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandHook {
    /// Program and arguments; with `shell`, one string for `/bin/sh -c`.
    pub argv: Vec<String>,
    pub shell: bool,
    /// The process group is killed when the hook runs longer (default 30 s).
    pub timeout: Duration,
}

/// `{ action = "haproxy_reload" }`: check the config, reload through the master CLI,
/// and verify that a new worker took over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaproxyReloadSettings {
    /// HAProxy's master CLI socket (`-S /run/haproxy-master.sock`).
    pub master_socket: PathBuf,
    /// When set, `haproxy -c -f CONFIG` must pass before the reload is sent.
    pub check_config: Option<PathBuf>,
    /// The haproxy binary used for the config check.
    pub haproxy_binary: PathBuf,
    pub timeout: Duration,
}

/// `{ action = "mysql_admin" }`: a MySQL-protocol login and one statement, e.g. MyCat's
/// `reload @@config_all` on its admin port 9066, or `online`/`offline`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MysqlAdminSettings {
    pub address: SocketAddr,
    pub user: String,
    /// Read when the action runs; never logged.
    pub password_file: PathBuf,
    pub statement: String,
    pub timeout: Duration,
}

/// One step run on a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    Command(CommandHook),
    HaproxyReload(HaproxyReloadSettings),
    MysqlAdmin(MysqlAdminSettings),
}

impl Hook {
    /// How logs and status name the hook: the program, or the action.
    pub fn label(&self) -> String {
        match self {
            // The program's file name; for a shell hook, the first word of the script.
            Hook::Command(command) => command
                .argv
                .first()
                .and_then(|first| first.split_whitespace().next())
                .map(|program| program.rsplit('/').next().unwrap_or(program).to_owned())
                .unwrap_or_default(),
            Hook::HaproxyReload(_) => "haproxy_reload".to_owned(),
            Hook::MysqlAdmin(_) => "mysql_admin".to_owned(),
        }
    }
}

/// The hooks of one instance or group, per state; `any` runs after the state's own hooks
/// with keepalived's four trailing arguments: `INSTANCE|GROUP NAME STATE PRIORITY`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookSet {
    pub master: Vec<Hook>,
    pub backup: Vec<Hook>,
    pub fault: Vec<Hook>,
    pub stop: Vec<Hook>,
    pub any: Vec<Hook>,
    pub queue: QueuePolicy,
}

impl HookSet {
    pub fn is_empty(&self) -> bool {
        self.master.is_empty()
            && self.backup.is_empty()
            && self.fault.is_empty()
            && self.stop.is_empty()
            && self.any.is_empty()
    }

    /// The hooks of one state, `any` excluded.
    pub fn for_state(&self, state: HookState) -> &[Hook] {
        match state {
            HookState::Master => &self.master,
            HookState::Backup => &self.backup,
            HookState::Fault => &self.fault,
            HookState::Stop => &self.stop,
        }
    }
}

/// What happens to transitions that arrive while an owner's hooks are still running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Run every transition's hooks, in order (the default).
    #[default]
    All,
    /// Only the most recent pending transition runs; older pending ones are dropped.
    Latest,
}

/// The outcome of one hook run, for logs, status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookReport {
    pub scope: Scope,
    pub owner: String,
    pub state: HookState,
    pub hook: String,
    /// Ok with a short note (e.g. "new worker 8380"), or why it failed.
    pub result: Result<String, String>,
    pub duration: Duration,
}
