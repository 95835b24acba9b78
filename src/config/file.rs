//! The serde mirror of the TOML file: what the operator wrote, before any rule is applied.
//!
//! Owns the file's shape: key names, nesting and TOML types, with `deny_unknown_fields`
//! everywhere so a misspelt key is an error rather than a silently ignored setting. Every
//! value that validation can reject is [`Spanned`] so errors point at it, and every key is
//! optional here: a missing required key is reported by `validate` together with all the
//! other problems, instead of stopping serde at the first one. [`read`] is the only place
//! that drives the toml crate; it turns toml's byte spans into `FILE:LINE:COL` and a dotted
//! key. Must not apply defaults or rules (that is `validate`).

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::error::{ConfigError, Problem};
use super::source::Source;

/// The key shown for TOML syntax errors, where no key applies.
pub const SYNTAX_KEY: &str = "(syntax)";

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub global: Option<Spanned<FileGlobal>>,
    pub instance: Option<Spanned<Vec<Spanned<FileInstance>>>>,
    /// `[check.NAME]` tables, by name.
    pub check: Option<std::collections::BTreeMap<String, Spanned<FileCheck>>>,
    /// `[[group]]`: sync groups.
    pub group: Option<Spanned<Vec<Spanned<FileGroup>>>>,
}

/// One `[[group]]`: instances that change state together (keepalived's vrrp_sync_group).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGroup {
    pub name: Option<Spanned<String>>,
    pub instances: Option<Spanned<Vec<Spanned<String>>>>,
    pub track: Option<Spanned<Vec<Spanned<FileTrack>>>>,
    pub notify: Option<Spanned<FileNotify>>,
}

/// `[instance.notify]` / `[group.notify]`: hooks per state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNotify {
    pub master: Option<Spanned<Vec<Spanned<FileHookItem>>>>,
    pub backup: Option<Spanned<Vec<Spanned<FileHookItem>>>>,
    pub fault: Option<Spanned<Vec<Spanned<FileHookItem>>>>,
    pub stop: Option<Spanned<Vec<Spanned<FileHookItem>>>>,
    pub any: Option<Spanned<Vec<Spanned<FileHookItem>>>>,
    /// Default timeout of command hooks.
    pub timeout: Option<Spanned<FileDuration>>,
    /// For the argv form: run `/bin/sh -c`.
    pub shell: Option<Spanned<bool>>,
    pub queue: Option<Spanned<String>>,
}

/// One element of a hook list: a word of the argv form (`master = ["/usr/bin/x", "arg"]`)
/// or a hook table (`master = [{ command = [...] }, { action = "haproxy_reload" }]`).
#[derive(Debug)]
pub enum FileHookItem {
    Word(String),
    Table(Box<FileHookTable>),
}

/// A hook table: a command, or a built-in action with its settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHookTable {
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub shell: Option<Spanned<bool>>,
    pub timeout: Option<Spanned<FileDuration>>,
    pub action: Option<Spanned<String>>,
    // haproxy_reload
    pub master_socket: Option<Spanned<String>>,
    pub check_config: Option<Spanned<String>>,
    pub haproxy_binary: Option<Spanned<String>>,
    // mysql_admin
    pub address: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub statement: Option<Spanned<String>>,
}

// Hand-written for the same reason as `FileVip`: errors inside a table keep their key.
impl<'de> Deserialize<'de> for FileHookItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HookVisitor;

        impl<'de> Visitor<'de> for HookVisitor {
            type Value = FileHookItem;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a word of a command (\"/usr/local/bin/notify\") or a hook table \
                     { command = [...] } / { action = \"...\" }",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<FileHookItem, E> {
                Ok(FileHookItem::Word(text.to_owned()))
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<FileHookItem, M::Error> {
                FileHookTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|table| FileHookItem::Table(Box::new(table)))
            }
        }

        deserializer.deserialize_any(HookVisitor)
    }
}

/// One `[check.NAME]`: every key of every check type; `validate` refuses the keys that do
/// not apply to the table's `type`, naming them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCheck {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub interval: Option<Spanned<FileDuration>>,
    pub timeout: Option<Spanned<FileDuration>>,
    pub rise: Option<Spanned<i64>>,
    pub fall: Option<Spanned<i64>>,
    pub init_fail: Option<Spanned<bool>>,
    // haproxy
    pub socket: Option<Spanned<String>>,
    pub backend: Option<Spanned<String>>,
    pub min_up: Option<Spanned<i64>>,
    pub graded: Option<Spanned<bool>>,
    // haproxy (loopback TCP), tcp, mysql
    pub address: Option<Spanned<String>>,
    // http
    pub url: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    pub expect_status: Option<Spanned<Vec<Spanned<i64>>>>,
    pub body_contains: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub verify_tls: Option<Spanned<bool>>,
    // mysql
    pub user: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    // exec
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub shell: Option<Spanned<bool>>,
    // interface
    pub interface: Option<Spanned<String>>,
    // file
    pub path: Option<Spanned<String>>,
    // process
    pub name: Option<Spanned<String>>,
    pub pidfile: Option<Spanned<String>>,
    pub rescan: Option<Spanned<FileDuration>>,
}

/// One entry of an instance's `track = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTrack {
    pub check: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub reverse: Option<Spanned<bool>>,
}

/// `[global]`: settings shared by every instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGlobal {
    pub node_name: Option<Spanned<String>>,
    /// Refuse hooks and exec checks a non-root user could modify (default true).
    pub script_security: Option<Spanned<bool>>,
    /// The control socket's path.
    pub control_socket: Option<Spanned<String>>,
    /// Where Prometheus metrics are served, or "off".
    pub metrics_listen: Option<Spanned<String>>,
    /// How long a switchover holds the instance back from preempting.
    pub switchover_hold: Option<Spanned<FileDuration>>,
    // keepalived's gratuitous ARP / unsolicited NA knobs; each [[instance]] may override.
    pub garp_master_repeat: Option<Spanned<i64>>,
    pub garp_master_delay: Option<Spanned<FileDuration>>,
    pub garp_master_refresh: Option<Spanned<FileDuration>>,
    pub garp_lower_prio_repeat: Option<Spanned<i64>>,
}

/// One `[[instance]]`: a virtual router.
///
/// Integers are `i64` rather than `u8` so that `vrid = 300` or `priority = -1` reach
/// validation and get a message about the VRRP range, not serde's "expected u8".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInstance {
    pub name: Option<Spanned<String>>,
    pub interface: Option<Spanned<String>>,
    pub vrid: Option<Spanned<i64>>,
    pub version: Option<Spanned<i64>>,
    pub priority: Option<Spanned<i64>>,
    pub advert_interval: Option<Spanned<FileDuration>>,
    pub preempt: Option<Spanned<bool>>,
    pub preempt_delay: Option<Spanned<FileDuration>>,
    pub fast_preempt: Option<Spanned<bool>>,
    pub unicast_source: Option<Spanned<String>>,
    pub unicast_peers: Option<Spanned<Vec<Spanned<String>>>>,
    pub vips: Option<Spanned<Vec<Spanned<FileVip>>>>,
    pub auth_pass: Option<Spanned<String>>,
    /// The same password read from a file (first line), so the config can stay world-readable.
    pub auth_pass_file: Option<Spanned<String>>,
    pub v3_checksum_as_v2: Option<Spanned<bool>>,
    pub track: Option<Spanned<Vec<Spanned<FileTrack>>>>,
    /// The peer's configured priority, for `check` to explain the election.
    pub peer_priority: Option<Spanned<i64>>,
    pub notify: Option<Spanned<FileNotify>>,
    pub garp_master_repeat: Option<Spanned<i64>>,
    pub garp_master_delay: Option<Spanned<FileDuration>>,
    pub garp_master_refresh: Option<Spanned<FileDuration>>,
    pub garp_lower_prio_repeat: Option<Spanned<i64>>,
}

/// A duration as written, e.g. `"1.5s"`; `duration::parse` gives it meaning.
///
/// Its own type only so that a bare number (`advert_interval = 1`) is refused with a hint
/// about units instead of serde's generic "expected a string".
#[derive(Debug)]
pub struct FileDuration(pub String);

impl<'de> Deserialize<'de> for FileDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = FileDuration;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string with a unit, such as \"1s\", \"100ms\" or \"1.5s\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<FileDuration, E> {
                Ok(FileDuration(text.to_owned()))
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}

/// One entry of `vips`: the short form `"192.0.2.50/24"` or the table form
/// `{ address = "192.0.2.50/24", dev = "eth1", label = "eth1:web" }`.
#[derive(Debug)]
pub enum FileVip {
    Short(String),
    Table(FileVipTable),
}

/// The table form of a VIP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileVipTable {
    pub address: Option<Spanned<String>>,
    pub dev: Option<Spanned<String>>,
    pub label: Option<Spanned<String>>,
}

// Hand-written rather than `#[serde(untagged)]`: untagged enums replace every inner error
// (an unknown key inside the table, say) with "did not match any variant".
impl<'de> Deserialize<'de> for FileVip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VipVisitor;

        impl<'de> Visitor<'de> for VipVisitor {
            type Value = FileVip;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an address string such as \"192.0.2.50/24\" or a table \
                     { address = \"...\", dev = \"...\", label = \"...\" }",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<FileVip, E> {
                Ok(FileVip::Short(text.to_owned()))
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<FileVip, M::Error> {
                FileVipTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(FileVip::Table)
            }
        }

        deserializer.deserialize_any(VipVisitor)
    }
}

/// Parse the text into the mirror, or report every syntax error, or every unknown key and
/// wrong type that can be found.
pub fn read(source: &Source<'_>) -> Result<FileConfig, Vec<ConfigError>> {
    let (document, syntax_errors) = DeTable::parse_recoverable(source.text());
    if !syntax_errors.is_empty() {
        return Err(syntax_errors
            .iter()
            .map(|error| syntax_error(source, error))
            .collect());
    }
    match FileConfig::deserialize(toml::de::Deserializer::from(document.clone())) {
        Ok(file) => Ok(file),
        Err(first) => Err(schema_errors(source, document, first)),
    }
}

fn syntax_error(source: &Source<'_>, error: &toml::de::Error) -> ConfigError {
    let span = error.span().unwrap_or(0..0);
    let mut message = error.message().to_owned();
    // toml does not say which key; the text under the span is that key.
    if message == "duplicate key" {
        if let Some(key) = source.text().get(span.clone()) {
            message = format!("duplicate key `{key}`");
        }
    }
    ConfigError::Invalid {
        at: source.locate(span.start),
        key: SYNTAX_KEY.to_owned(),
        problem: Problem::Toml(message),
    }
}

/// serde stops at the first error, so deserialize each top-level key (and each element of
/// a top-level array, i.e. each `[[instance]]`) on its own to report one error per piece.
fn schema_errors(
    source: &Source<'_>,
    document: Spanned<DeTable<'_>>,
    first: toml::de::Error,
) -> Vec<ConfigError> {
    let mut errors = vec![first];
    for (key, value) in document.get_ref().iter() {
        let span = value.span();
        let pieces: Vec<Spanned<DeValue<'_>>> = match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .map(|item| {
                    let mut one = DeArray::new();
                    one.push(item.clone());
                    Spanned::new(span.clone(), DeValue::Array(one))
                })
                .collect(),
            _ => vec![value.clone()],
        };
        for piece in pieces {
            let mut table = DeTable::new();
            table.insert(key.clone(), piece);
            let deserializer = toml::de::Deserializer::from(Spanned::new(0..0, table));
            if let Err(error) = FileConfig::deserialize(deserializer) {
                let known = errors
                    .iter()
                    .any(|e| e.span() == error.span() && e.message() == error.message());
                if !known {
                    errors.push(error);
                }
            }
        }
    }
    errors
        .iter()
        .map(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            ConfigError::Invalid {
                at: source.locate(offset),
                key: key_path_in_table(document.get_ref(), offset)
                    .unwrap_or_else(|| SYNTAX_KEY.to_owned()),
                problem: Problem::Toml(toml_words(error.message())),
            }
        })
        .collect()
}

/// serde speaks of fields, maps, sequences and i64; the operator wrote keys, tables,
/// arrays and integers.
fn toml_words(message: &str) -> String {
    [
        ("unknown field", "unknown key"),
        ("invalid type: map,", "invalid type: table,"),
        ("invalid type: sequence,", "invalid type: array,"),
        ("invalid type: floating point", "invalid type: float"),
        (" as i128,", ","),
        ("expected a sequence", "expected an array"),
        ("expected i64", "expected an integer"),
    ]
    .into_iter()
    .fold(message.to_owned(), |text, (serde, toml)| {
        text.replace(serde, toml)
    })
}

/// The dotted path (`instance[0].vips[1].dev`) of the innermost key or value at `offset`.
fn key_path_in_table(table: &DeTable<'_>, offset: usize) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let name = display_key(key.get_ref());
        match key_path_in_value(value, offset) {
            Some(rest) => Some(format!("{name}{rest}")),
            None => key.span().contains(&offset).then_some(name),
        }
    })
}

/// The path below `value` (`""` for the value itself, `".dev"`, `"[1].dev"`).
fn key_path_in_value(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<String> {
    let inner = match value.get_ref() {
        DeValue::Table(table) => key_path_in_table(table, offset).map(|path| format!(".{path}")),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            key_path_in_value(item, offset).map(|path| format!("[{index}]{path}"))
        }),
        _ => None,
    };
    // Table spans cover only the `[header]`, so children are searched first.
    inner.or_else(|| value.span().contains(&offset).then(String::new))
}

/// A key as it would be written in TOML: bare when it can be, quoted otherwise.
fn display_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match read(&Source::new("t.toml", text)) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn schema_errors_name_the_key_path() {
        let text = "[[instance]]\nvips = [\"192.0.2.1\", { address = \"x\", devv = \"y\" }]\n";
        assert_eq!(
            errors(text),
            [
                "t.toml:2:39: instance[0].vips[1].devv: unknown key `devv`, expected one of \
              `address`, `dev`, `label`"
            ]
        );
    }

    #[test]
    fn one_schema_error_per_instance() {
        let text = "[[instance]]\nvrid = \"5\"\n[[instance]]\npriority = 1.5\n";
        assert_eq!(
            errors(text),
            [
                "t.toml:2:8: instance[0].vrid: invalid type: string \"5\", expected an integer",
                "t.toml:4:12: instance[1].priority: invalid type: float `1.5`, expected an integer",
            ]
        );
    }

    #[test]
    fn syntax_errors_are_all_reported() {
        let text = "vrid = = 5\n[[instance]]\nname = 1\nname = 2\n";
        assert_eq!(
            errors(text),
            [
                "t.toml:1:8: (syntax): extra `=`, expected nothing",
                "t.toml:1:10: (syntax): unexpected key or value, expected newline, `#`",
                "t.toml:4:1: (syntax): duplicate key `name`",
            ]
        );
    }

    #[test]
    fn serde_words_become_toml_words() {
        assert_eq!(
            toml_words("invalid type: map, expected a sequence"),
            "invalid type: table, expected an array"
        );
        assert_eq!(
            toml_words("invalid type: integer `99999999999999999999` as i128, expected i64"),
            "invalid type: integer `99999999999999999999`, expected an integer"
        );
    }

    #[test]
    fn keys_that_are_not_bare_are_quoted() {
        assert_eq!(display_key("vrid"), "vrid");
        assert_eq!(display_key("a.b"), "\"a.b\"");
        assert_eq!(display_key(""), "\"\"");
    }
}
