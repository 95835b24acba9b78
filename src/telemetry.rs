//! Logging: tracing-subscriber writing text or JSON lines to stderr.
//!
//! Owns the subscriber setup and nothing else; every other module logs through `tracing`
//! macros with structured fields (`instance`, `vrid`, `iface`, `from`, `to`, `reason`). The
//! level comes from `VIPKEEPER_LOG` (an env-filter directive such as `debug` or
//! `vipkeeper=debug`), default `info`.
//!
//! Two formats ([`LogFormat`]):
//! - `text`: tracing-subscriber's default line, `TIMESTAMP LEVEL span{fields}: message k=v`,
//!   colours only when stderr is a terminal (never into journald or a log file);
//! - `json`: one object per line, for journald/Loki/jq. Keys, in this order: `timestamp`
//!   (RFC 3339, UTC, µs), `level` (`ERROR` … `TRACE`), `message`, the event's fields
//!   (alphabetical), the fields of the spans the event is in (innermost first; an event field
//!   wins over a span field of the same name, an inner span over an outer one), `span` (the
//!   innermost span's name, when there is one) and `target` (the module path). All flat: `jq .instance` works
//!   whether `instance` came from the event or from the per-instance span. A field named like
//!   one of the fixed keys (`timestamp`, `level`, `span`, `target`) is written as
//!   `field_<name>` instead of overwriting it. Numbers and booleans stay JSON numbers and
//!   booleans; values logged with `%` or `?` are strings.
//!
//! [`subscriber`] builds either over any [`MakeWriter`], so tests capture lines in memory.
//! [`init_with`] installs one globally; [`init`] is `init_with(LogFormat::Text)`, kept so the
//! binary's current call compiles until `--log-format` is wired.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The variable holding the env-filter directives.
pub const FILTER_ENV: &str = "VIPKEEPER_LOG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    /// `text` or `json` (as `--log-format` takes them).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}` (expected `text` or `json`)"
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Install the global text subscriber (what `vipkeeper run` has always logged).
pub fn init() {
    init_with(LogFormat::Text);
}

/// Install the global subscriber for `format`, writing to stderr, filtered by `VIPKEEPER_LOG`.
/// A second call (tests) keeps the first subscriber instead of panicking.
pub fn init_with(format: LogFormat) {
    // Colours only for a person at a terminal, never into journald or a log file.
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing::subscriber::set_global_default(subscriber(
        format,
        env_filter(),
        std::io::stderr,
        ansi,
    ));
}

/// The filter from `VIPKEEPER_LOG`, `info` when it is unset or unparsable.
pub fn env_filter() -> EnvFilter {
    EnvFilter::try_from_env(FILTER_ENV).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The subscriber for `format` over any writer. `ansi` applies to text only: JSON lines never
/// carry escape codes.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => Box::new(
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .with_ansi(ansi)
                .with_target(false)
                .finish(),
        ),
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .with_ansi(false)
                // Span fields are kept as JSON objects, which JsonLine merges.
                .fmt_fields(JsonFields::new())
                .event_format(JsonLine)
                .finish(),
        ),
    }
}

/// Keys the formatter writes itself; fields of these names are renamed `field_<name>`.
const FIXED_KEYS: [&str; 4] = ["timestamp", "level", "span", "target"];

/// The flat JSON line described in the module documentation.
struct JsonLine;

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;

        let mut line = Line::default();
        line.put("timestamp", Value::from(timestamp));
        line.put("level", Value::from(meta.level().as_str()));
        line.put("message", Value::from(""));

        let mut event_fields = String::new();
        JsonFields::new().format_fields(Writer::new(&mut event_fields), event)?;
        for (key, value) in parse_object(&event_fields) {
            line.put_field(key, value, true);
        }

        let mut innermost = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                innermost.get_or_insert_with(|| span.name());
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() {
                    for (key, value) in parse_object(&fields.fields) {
                        line.put_field(key, value, false);
                    }
                }
            }
        }
        if let Some(name) = innermost {
            line.put("span", Value::from(name));
        }
        line.put("target", Value::from(meta.target()));

        // No message: drop the placeholder rather than log an empty string.
        line.0
            .retain(|(key, value)| key != "message" || value.as_str() != Some(""));
        let mut object = String::from("{");
        for (index, (key, value)) in line.0.iter().enumerate() {
            if index > 0 {
                object.push(',');
            }
            object.push_str(&Value::from(key.as_str()).to_string());
            object.push(':');
            object.push_str(&value.to_string());
        }
        object.push('}');
        writeln!(writer, "{object}")
    }
}

/// An ordered set of keys (serde_json's `Map` sorts them without its `preserve_order`).
#[derive(Default)]
struct Line(Vec<(String, Value)>);

impl Line {
    fn put(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(existing, _)| existing == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// An event or span field; `replace` is false for span fields, which never overwrite a
    /// field already present (the event's own, or an inner span's).
    fn put_field(&mut self, key: String, value: Value, replace: bool) {
        let key = if FIXED_KEYS.contains(&key.as_str()) {
            format!("field_{key}")
        } else {
            key
        };
        // `message` is always present (a placeholder until the event's own), so a span
        // field of that name never hides the event's message.
        if replace || !self.0.iter().any(|(existing, _)| *existing == key) {
            self.put(&key, value);
        }
    }
}

fn parse_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Capture {
            self.clone()
        }
    }

    fn capture(format: LogFormat, filter: &str, log: impl FnOnce()) -> String {
        let sink = Capture::default();
        let subscriber = subscriber(format, EnvFilter::new(filter), sink.clone(), false);
        tracing::subscriber::with_default(subscriber, log);
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn json_lines(text: &str) -> Vec<Map<String, Value>> {
        text.lines()
            .map(|line| match serde_json::from_str(line) {
                Ok(Value::Object(map)) => map,
                other => panic!("not a JSON object: {line:?} ({other:?})"),
            })
            .collect()
    }

    #[test]
    fn telemetry_json_transition_line() {
        let text = capture(LogFormat::Json, "info", || {
            let span = tracing::info_span!("instance", instance = "vi_web", vrid = 51u8);
            let _entered = span.enter();
            tracing::info!(
                iface = "eth0",
                from = %"Backup",
                to = %"Master",
                reason = "master down timer",
                priority = 150,
                preempt = true,
                "transition"
            );
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        let line = &json_lines(&text)[0];
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(
            &text[..text.find(',').unwrap()],
            format!("{{\"timestamp\":{}", line["timestamp"])
        );
        assert!(
            keys.contains(&"level") && keys.contains(&"message"),
            "{keys:?}"
        );
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "transition");
        assert_eq!(line["instance"], "vi_web");
        assert_eq!(line["vrid"], 51);
        assert_eq!(line["iface"], "eth0");
        assert_eq!(line["from"], "Backup");
        assert_eq!(line["to"], "Master");
        assert_eq!(line["reason"], "master down timer");
        assert_eq!(line["priority"], 150);
        assert_eq!(line["preempt"], true);
        assert_eq!(line["span"], "instance");
        assert_eq!(line["target"], module_path!());
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp.contains('T'),
            "{timestamp}"
        );
        assert!(!text.contains('\u{1b}'), "no ANSI in JSON: {text:?}");
        // Key order: the fixed head, then fields.
        assert_eq!(&text[..14], "{\"timestamp\":\"");
        let level_at = text.find("\"level\"").unwrap();
        let message_at = text.find("\"message\"").unwrap();
        assert!(level_at < message_at && message_at < text.find("\"iface\"").unwrap());
    }

    #[test]
    fn telemetry_json_precedence_and_fixed_keys() {
        let text = capture(LogFormat::Json, "debug", || {
            let outer = tracing::info_span!("group", instance = "outer", group = "g1");
            let _outer = outer.enter();
            let inner = tracing::info_span!("instance", instance = "inner", level = 3);
            let _inner = inner.enter();
            tracing::debug!(target: "vipkeeper::x", level = "mine", "one");
            tracing::warn!(instance = "event", "two");
            tracing::info!(reason = "no message");
        });
        let lines = json_lines(&text);
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["level"], "DEBUG");
        assert_eq!(lines[0]["field_level"], "mine"); // the event's, not the span's 3
        assert_eq!(lines[0]["instance"], "inner"); // inner span over outer
        assert_eq!(lines[0]["group"], "g1"); // outer span fields still there
        assert_eq!(lines[0]["span"], "instance");
        assert_eq!(lines[0]["target"], "vipkeeper::x");
        assert_eq!(lines[1]["instance"], "event"); // event over span
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[2]["field_level"], 3);
        assert!(!lines[2].contains_key("message"), "{:?}", lines[2]);
    }

    #[test]
    fn telemetry_filter_applies() {
        let text = capture(LogFormat::Json, "warn", || {
            tracing::info!("hidden");
            tracing::warn!("shown");
        });
        let lines = json_lines(&text);
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["message"], "shown");
        let text = capture(LogFormat::Text, "vipkeeper=debug,info", || {
            tracing::debug!(target: "vipkeeper::daemon", "kept");
            tracing::debug!(target: "rtnetlink", "dropped");
        });
        assert!(text.contains("kept") && !text.contains("dropped"), "{text}");
    }

    #[test]
    fn telemetry_text_line() {
        let text = capture(LogFormat::Text, "info", || {
            let span = tracing::info_span!("instance", instance = "vi_web");
            let _entered = span.enter();
            tracing::info!(from = %"Backup", to = %"Master", "transition");
        });
        assert!(!text.contains('\u{1b}'), "ansi off: {text:?}");
        assert!(text.contains("INFO"), "{text}");
        assert!(text.contains("instance{instance=\"vi_web\"}"), "{text}");
        assert!(text.contains("transition from=Backup to=Master"), "{text}");
    }

    #[test]
    fn telemetry_format_names() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert!("yaml".parse::<LogFormat>().unwrap_err().contains("yaml"));
        assert_eq!(LogFormat::Json.to_string(), "json");
        assert_eq!(LogFormat::default(), LogFormat::Text);
    }
}
