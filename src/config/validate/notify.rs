//! The rules of `notify` tables (hooks per state) and of script security.
//!
//! Owns turning `[instance.notify]` / `[group.notify]` into a [`HookSet`]: the argv form and
//! hook tables, the two built-in actions with their defaults, and keepalived's
//! enable_script_security (on by default): as root, a hook or exec check whose program a
//! non-root user could replace is refused. Must not run anything.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::Checker;
use crate::config::error::Problem;
use crate::config::file::{FileHookItem, FileHookTable, FileNotify};
use crate::notify::{
    CommandHook, HaproxyReloadSettings, Hook, HookSet, MysqlAdminSettings, QueuePolicy,
};

/// A hook that runs longer is killed with its process group (keepalived has no limit).
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_HAPROXY: &str = "/usr/sbin/haproxy";
/// MyCat's "reload everything" admin statement (port 9066).
const DEFAULT_STATEMENT: &str = "reload @@config_all";

impl Checker<'_> {
    pub(super) fn notify(
        &mut self,
        notify: Option<&Spanned<FileNotify>>,
        prefix: &str,
    ) -> Option<HookSet> {
        let Some(notify) = notify else {
            return Some(HookSet::default());
        };
        let file = notify.get_ref();
        let key = |field: &str| format!("{prefix}.notify.{field}");
        let timeout = match &file.timeout {
            Some(setting) => self.check_duration(setting, &key("timeout"))?,
            None => DEFAULT_HOOK_TIMEOUT,
        };
        let shell = file.shell.as_ref().is_some_and(|s| *s.get_ref());
        let queue = match &file.queue {
            None => Some(QueuePolicy::All),
            Some(setting) => match setting.get_ref().as_str() {
                "all" => Some(QueuePolicy::All),
                "latest" => Some(QueuePolicy::Latest),
                other => {
                    self.error(
                        setting.span(),
                        key("queue"),
                        Problem::QueuePolicy(other.to_owned()),
                    );
                    None
                }
            },
        };
        let list = |checker: &mut Self,
                    setting: &Option<Spanned<Vec<Spanned<FileHookItem>>>>,
                    name: &str| {
            match setting {
                None => Some(Vec::new()),
                Some(list) => checker.hook_list(list, &key(name), timeout, shell),
            }
        };
        let master = list(self, &file.master, "master");
        let backup = list(self, &file.backup, "backup");
        let fault = list(self, &file.fault, "fault");
        let stop = list(self, &file.stop, "stop");
        let any = list(self, &file.any, "any");
        Some(HookSet {
            master: master?,
            backup: backup?,
            fault: fault?,
            stop: stop?,
            any: any?,
            queue: queue?,
        })
    }

    /// The argv form (all words) is one command; the table form is one hook per table.
    fn hook_list(
        &mut self,
        list: &Spanned<Vec<Spanned<FileHookItem>>>,
        key: &str,
        timeout: Duration,
        shell: bool,
    ) -> Option<Vec<Hook>> {
        let items = list.get_ref();
        let words: Vec<&str> = items
            .iter()
            .filter_map(|item| match item.get_ref() {
                FileHookItem::Word(word) => Some(word.as_str()),
                FileHookItem::Table(_) => None,
            })
            .collect();
        if words.len() == items.len() {
            if words.is_empty() {
                return Some(Vec::new());
            }
            let argv: Vec<String> = words.into_iter().map(str::to_owned).collect();
            let command = self.command(argv, shell, timeout, list.span(), key)?;
            return Some(vec![Hook::Command(command)]);
        }
        if !words.is_empty() {
            self.error(list.span(), key, Problem::MixedHookList);
            return None;
        }
        let mut hooks = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let FileHookItem::Table(table) = item.get_ref() else {
                continue;
            };
            match self.hook_table(table, item.span(), &format!("{key}[{index}]"), timeout) {
                Some(hook) => hooks.push(hook),
                None => ok = false,
            }
        }
        ok.then_some(hooks)
    }

    fn hook_table(
        &mut self,
        table: &FileHookTable,
        span: Range<usize>,
        key: &str,
        default_timeout: Duration,
    ) -> Option<Hook> {
        let field = |name: &str| format!("{key}.{name}");
        let timeout = match &table.timeout {
            Some(setting) => self.check_duration(setting, &field("timeout"))?,
            None => default_timeout,
        };
        let present = [
            ("command", table.command.as_ref().map(Spanned::span)),
            ("shell", table.shell.as_ref().map(Spanned::span)),
            (
                "master_socket",
                table.master_socket.as_ref().map(Spanned::span),
            ),
            (
                "check_config",
                table.check_config.as_ref().map(Spanned::span),
            ),
            (
                "haproxy_binary",
                table.haproxy_binary.as_ref().map(Spanned::span),
            ),
            ("address", table.address.as_ref().map(Spanned::span)),
            ("user", table.user.as_ref().map(Spanned::span)),
            (
                "password_file",
                table.password_file.as_ref().map(Spanned::span),
            ),
            ("statement", table.statement.as_ref().map(Spanned::span)),
        ];
        let (kind, allowed): (&'static str, &[&str]) = match &table.action {
            None => ("command", &["command", "shell"]),
            Some(action) => match action.get_ref().as_str() {
                "haproxy_reload" => (
                    "haproxy_reload",
                    &["master_socket", "check_config", "haproxy_binary"],
                ),
                "mysql_admin" => (
                    "mysql_admin",
                    &["address", "user", "password_file", "statement"],
                ),
                other => {
                    let problem = Problem::UnknownAction(other.to_owned());
                    self.error(action.span(), field("action"), problem);
                    return None;
                }
            },
        };
        let mut ok = true;
        for (name, at) in present {
            if let Some(at) = at {
                if !allowed.contains(&name) {
                    self.error(at, field(name), Problem::NotForHook(kind));
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        match kind {
            "haproxy_reload" => {
                let socket = self.required(&table.master_socket, &span, field("master_socket"));
                let socket = socket.and_then(|s| self.absolute(s, field("master_socket")));
                let check_config = match &table.check_config {
                    Some(path) => Some(self.absolute(path, field("check_config"))?),
                    None => None,
                };
                let haproxy_binary = match &table.haproxy_binary {
                    Some(path) => {
                        let binary = self.absolute(path, field("haproxy_binary"))?;
                        // It runs as root for the config check: the same rules as hooks.
                        let text = binary.display().to_string();
                        self.secure(&text, path.span(), &field("haproxy_binary"))?;
                        binary
                    }
                    None => PathBuf::from(DEFAULT_HAPROXY),
                };
                Some(Hook::HaproxyReload(HaproxyReloadSettings {
                    master_socket: socket?,
                    check_config,
                    haproxy_binary,
                    timeout,
                }))
            }
            "mysql_admin" => {
                let address = self.required(&table.address, &span, field("address"));
                let address = address.and_then(|a| self.socket_address(a, field("address")));
                let user = self.required(&table.user, &span, field("user"));
                let user = user.map(|u| u.get_ref().clone());
                let password = self.required(&table.password_file, &span, field("password_file"));
                let password = password.and_then(|p| self.absolute(p, field("password_file")));
                let statement = table
                    .statement
                    .as_ref()
                    .map_or(DEFAULT_STATEMENT.to_owned(), |s| s.get_ref().clone());
                Some(Hook::MysqlAdmin(MysqlAdminSettings {
                    address: address?,
                    user: user?,
                    password_file: password?,
                    statement,
                    timeout,
                }))
            }
            _ => {
                let command = self.required(&table.command, &span, field("command"))?;
                let argv = command
                    .get_ref()
                    .iter()
                    .map(|a| a.get_ref().clone())
                    .collect();
                let shell = table.shell.as_ref().is_some_and(|s| *s.get_ref());
                let command =
                    self.command(argv, shell, timeout, command.span(), &field("command"))?;
                Some(Hook::Command(command))
            }
        }
    }

    /// A command's rules: non-empty, an absolute program without a shell, one string with
    /// one, and script security for the program.
    fn command(
        &mut self,
        argv: Vec<String>,
        shell: bool,
        timeout: Duration,
        span: Range<usize>,
        key: &str,
    ) -> Option<CommandHook> {
        if argv.is_empty() || argv[0].trim().is_empty() {
            self.error(span, key, Problem::EmptyCommand);
            return None;
        }
        if shell && argv.len() != 1 {
            self.error(span, key, Problem::ShellCommand);
            return None;
        }
        let program = if shell {
            // The script's first word is what keepalived checks, when it is a path.
            argv[0]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        } else {
            argv[0].clone()
        };
        if !shell && !Path::new(&program).is_absolute() {
            self.error(span, key, Problem::NotAbsolute(program));
            return None;
        }
        if Path::new(&program).is_absolute() {
            self.secure(&program, span, key)?;
        }
        Some(CommandHook {
            argv,
            shell,
            timeout,
        })
    }

    /// keepalived's enable_script_security, for hooks and exec checks alike.
    pub(super) fn secure(&mut self, program: &str, span: Range<usize>, key: &str) -> Option<()> {
        // A program that is not there fails at the first transition; say so now, whatever
        // the security setting or who runs `check`.
        if !Path::new(program).exists() {
            self.error(span, key, Problem::ProgramMissing(program.to_owned()));
            return None;
        }
        if !self.script_security || !rustix::process::geteuid().is_root() {
            return Some(());
        }
        match crate::notify::security::check_path(Path::new(program)) {
            Ok(()) => Some(()),
            Err(why) => {
                self.error(span, key, Problem::Insecure(why.to_string()));
                None
            }
        }
    }
}
