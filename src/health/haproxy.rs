//! The `haproxy` probe: asks HAProxy's stats socket (runtime API) whether HAProxy is alive,
//! not stopping, and whether a backend has enough usable servers.
//!
//! Owns: the exchange with the stats socket (one connection per poll, one command line, read
//! to EOF, all within the probe's timeout and a byte bound), the parsers of `show info` and
//! `show stat` CSV, and the judgement of a backend (`MinUp` or `Graded`).
//!
//! Must not: keep a connection open between polls (HAProxy allows only `stats maxconn`
//! CLI connections, 10 by default, and an idle one would hold a slot), send anything that
//! changes HAProxy's state (the socket is often `level admin`), read columns by fixed index
//! (module columns after `-` and new static columns move between versions), trust the
//! peer's output size, or panic on any reply. It knows nothing of VRRP: it returns one
//! [`ProbeOutcome`] per poll and the daemon does the rest.
//!
//! Framing (HAProxy management.txt §9.3, checked on 2.6): non-interactive mode, the command
//! line is `show info;show stat <backend> 6 -1`; each command's output ends with an empty
//! line and HAProxy closes the connection after the last one, so a reply that does not end
//! with `\n\n` was cut short.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use super::ProbeOutcome;

/// Where the stats socket listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsTarget {
    Unix(PathBuf),
    /// Loopback only (checked by the config).
    Tcp(SocketAddr),
}

impl fmt::Display for StatsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsTarget::Unix(path) => write!(f, "unix:{}", path.display()),
            StatsTarget::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// How a backend is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// Up while at least this many servers are usable.
    MinUp(u32),
    /// Graded: the fraction of the backend's configured weight that is usable.
    Graded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaproxySettings {
    pub target: StatsTarget,
    /// `None`: judge HAProxy itself only (reachable, not stopping).
    pub backend: Option<String>,
    pub judge: Judge,
}

/// The most a reply may weigh. `show stat` of one backend is a few KiB per server; 4 MiB
/// leaves room for thousands of servers while a peer that never stops talking cannot eat
/// the daemon's memory.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// Polls HAProxy once. Every failure is a `Down` whose reason names the socket.
pub async fn probe(settings: &HaproxySettings, timeout: Duration) -> ProbeOutcome {
    let backend = settings.backend.as_deref();
    let command = command_line(backend);
    let deadline = Instant::now() + timeout;
    let reply = match exchange(
        &settings.target,
        command.as_bytes(),
        deadline,
        timeout,
        MAX_REPLY_BYTES,
    )
    .await
    {
        Ok(reply) => reply,
        Err(e) => {
            return ProbeOutcome::down(format!("haproxy stats socket {}: {e}", settings.target))
        }
    };
    match evaluate_reply(&reply, backend, settings.judge) {
        Ok(outcome) => outcome,
        Err(e) => ProbeOutcome::down(format!("haproxy stats socket {}: {e}", settings.target)),
    }
}

/// The one command line sent per poll.
///
/// With a backend, `show stat` is filtered by its name (type mask 6 = backend and server
/// rows) so a big configuration does not send every proxy each poll. HAProxy proxy names
/// only hold alphanumerics and `-_.:`; any other name cannot exist and, since `;` or a
/// space would change the command, is not sent: the unfiltered `-1` is asked instead and
/// the judge then reports the backend missing.
pub fn command_line(backend: Option<&str>) -> String {
    match backend {
        None => "show info\n".to_owned(),
        Some(name) if is_proxy_name(name) => format!("show info;show stat {name} 6 -1\n"),
        Some(_) => "show info;show stat -1 6 -1\n".to_owned(),
    }
}

fn is_proxy_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Why the socket exchange failed (transport level, before any parsing).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("socket file absent (is haproxy running?)")]
    Absent,
    #[error("connection refused (haproxy not listening)")]
    Refused,
    #[error("connect failed: {0}")]
    Connect(io::Error),
    #[error("sending the command failed: {0}")]
    Send(io::Error),
    #[error("reading the reply failed: {0}")]
    Read(io::Error),
    #[error("no complete reply within {} ms ({stage})", limit.as_millis())]
    Timeout {
        stage: &'static str,
        limit: Duration,
    },
    #[error("reply larger than {0} bytes")]
    TooLarge(usize),
}

/// Connects, sends `command`, reads to EOF. Each step runs against the same `deadline`,
/// so the whole exchange is bounded and a timeout says which step hung.
pub async fn exchange(
    target: &StatsTarget,
    command: &[u8],
    deadline: Instant,
    limit: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, ExchangeError> {
    let timed_out = |stage| ExchangeError::Timeout { stage, limit };
    match target {
        StatsTarget::Unix(path) => {
            let stream = timeout_at(deadline, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| timed_out("connecting"))?
                .map_err(connect_error)?;
            talk(stream, command, deadline, limit, max_bytes).await
        }
        StatsTarget::Tcp(addr) => {
            let stream = timeout_at(deadline, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| timed_out("connecting"))?
                .map_err(connect_error)?;
            talk(stream, command, deadline, limit, max_bytes).await
        }
    }
}

fn connect_error(e: io::Error) -> ExchangeError {
    match e.kind() {
        io::ErrorKind::NotFound => ExchangeError::Absent,
        io::ErrorKind::ConnectionRefused => ExchangeError::Refused,
        _ => ExchangeError::Connect(e),
    }
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    command: &[u8],
    deadline: Instant,
    limit: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, ExchangeError> {
    let timed_out = |stage| ExchangeError::Timeout { stage, limit };
    timeout_at(deadline, stream.write_all(command))
        .await
        .map_err(|_| timed_out("sending the command"))?
        .map_err(ExchangeError::Send)?;
    // No shutdown of our write side: HAProxy answers a non-interactive line and closes by
    // itself; a half-close could make it abort the reply.
    let mut reply = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = timeout_at(deadline, stream.read(&mut chunk))
            .await
            .map_err(|_| timed_out("waiting for the reply to end"))?
            .map_err(ExchangeError::Read)?;
        if n == 0 {
            return Ok(reply);
        }
        if reply.len() + n > max_bytes {
            return Err(ExchangeError::TooLarge(max_bytes));
        }
        reply.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Why a complete reply could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("connection closed without a reply")]
    Empty,
    #[error("reply cut short (no final empty line), {0} bytes read")]
    Truncated(usize),
    #[error("expected {expected} command outputs, got {got}")]
    Sections { expected: usize, got: usize },
    #[error("show info: {0}")]
    Info(ParseError),
    #[error("show stat: {0}")]
    Stat(ParseError),
}

/// Judges a whole raw reply to [`command_line`]: pure, so every reply shape is unit-tested.
pub fn evaluate_reply(
    reply: &[u8],
    backend: Option<&str>,
    judge: Judge,
) -> Result<ProbeOutcome, ReplyError> {
    if reply.is_empty() {
        return Err(ReplyError::Empty);
    }
    let text = String::from_utf8_lossy(reply);
    let body = text
        .strip_suffix("\n\n")
        .ok_or(ReplyError::Truncated(reply.len()))?;
    // HAProxy promises no command prints an empty line, so empty lines separate outputs.
    let sections: Vec<&str> = body.split("\n\n").collect();
    let expected = if backend.is_some() { 2 } else { 1 };
    if sections.len() != expected {
        return Err(ReplyError::Sections {
            expected,
            got: sections.len(),
        });
    }
    let info =
        parse_info(sections.first().copied().unwrap_or_default()).map_err(ReplyError::Info)?;
    if info.stopping == Some(true) {
        return Ok(ProbeOutcome::down(match info.pid {
            Some(pid) => format!("haproxy is stopping (worker {pid} soft-stopping)"),
            None => "haproxy is stopping".to_owned(),
        }));
    }
    let Some(backend) = backend else {
        return Ok(ProbeOutcome::Up);
    };
    let stat = sections.get(1).copied().unwrap_or_default();
    // The answer to a `show stat <name>` filter naming no proxy at all.
    if stat.trim() == "No such proxy." {
        return Ok(missing_backend(backend));
    }
    let rows = parse_stat(stat).map_err(ReplyError::Stat)?;
    Ok(judge_backend(&rows, backend, judge))
}

fn missing_backend(backend: &str) -> ProbeOutcome {
    ProbeOutcome::down(format!("no backend {backend} in show stat"))
}

/// A parser's complaint; the text before the first line is shown so that HAProxy's own
/// errors (`Permission denied`, `Unknown command...`) reach the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty output")]
    Empty,
    #[error("no `# ` CSV header, output starts {0:?}")]
    NoHeader(String),
    #[error("the header has no {0} column")]
    MissingColumn(&'static str),
    #[error("line {line} has {fields} fields, too few for the {column} column")]
    ShortRow {
        line: usize,
        fields: usize,
        column: &'static str,
    },
    #[error("no `Key: value` line, output starts {0:?}")]
    NotInfo(String),
}

/// The start of `text`'s first line, for error messages (bounded: it is peer data).
fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().take(80).collect()
}

/// What the probe reads from `show info`. Every field is optional: versions differ, and a
/// missing field must not make a live HAProxy look dead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// `Stopping: 1` in an old worker that is soft-stopping after a reload.
    pub stopping: Option<bool>,
    pub pid: Option<u32>,
    pub version: Option<String>,
}

/// Parses `show info` (`Key: value` lines; keys may contain spaces, so split on the first
/// `": "`). Fails only if no line has that shape, which is what HAProxy's error texts look
/// like, so a wrong socket or level is not mistaken for a healthy HAProxy.
pub fn parse_info(text: &str) -> Result<Info, ParseError> {
    let mut info = Info::default();
    let mut fields = 0usize;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        // Keys start at column 0 and are words; help lines (`  show fd ... : dump`) are not.
        let is_key = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b' '))
            && !key.starts_with(' ');
        if !is_key {
            continue;
        }
        fields += 1;
        let value = value.trim();
        match key {
            // Any number other than 0 means stopping; a garbled value is left unknown.
            "Stopping" => info.stopping = value.parse::<u64>().ok().map(|v| v != 0),
            "Pid" => info.pid = value.parse().ok(),
            "Version" => info.version = Some(value.chars().take(64).collect()),
            _ => {}
        }
    }
    if fields == 0 {
        return Err(if text.trim().is_empty() {
            ParseError::Empty
        } else {
            ParseError::NotInfo(first_line(text))
        });
    }
    Ok(info)
}

/// The kind of a `show stat` row (`type` column: 0 frontend, 1 backend, 2 server, 3
/// listener).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Frontend,
    Backend,
    Server,
    Listener,
}

/// One `show stat` row, reduced to what the judge needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatRow {
    pub pxname: String,
    pub svname: String,
    pub kind: RowKind,
    /// As HAProxy prints it: `UP`, `UP 1/3`, `DOWN 1/2`, `MAINT (via be/srv)`, `no check`...
    pub status: String,
    /// The server's user weight (`uweight`, the configured or `set weight` value) when that
    /// column exists, else `weight` (the effective one, which slow-start lowers).
    pub weight: Option<u32>,
    /// `bck` = 1: a backup server.
    pub backup: bool,
}

/// Parses `show stat` CSV: a `# ` header naming the columns, then one row per line. Columns
/// are found by name; `pxname`, `svname` and `status` are required, `type`, `uweight`,
/// `weight` and `bck` are used when present. Quoted fields (`"a,b"`, `""` for a quote) and
/// trailing commas are handled. A row too short to hold a required column is an error, not
/// skipped: a silently dropped DOWN server would make the backend look better than it is.
pub fn parse_stat(csv: &str) -> Result<Vec<StatRow>, ParseError> {
    let mut lines = csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(ParseError::Empty)?;
    let names = header
        .strip_prefix('#')
        .ok_or_else(|| ParseError::NoHeader(first_line(csv)))?;
    let names = split_csv(names);
    // First occurrence wins: static fields come before the `-` separator and module fields.
    let column = |name: &str| names.iter().position(|n| n.trim() == name);
    let required = |name: &'static str| column(name).ok_or(ParseError::MissingColumn(name));
    let px_at = required("pxname")?;
    let sv_at = required("svname")?;
    let status_at = required("status")?;
    let type_at = column("type");
    let uweight_at = column("uweight");
    let weight_at = column("weight");
    let bck_at = column("bck");

    let mut rows = Vec::new();
    for (index, line) in lines {
        let fields = split_csv(line);
        let get = |at: usize, name: &'static str| {
            fields.get(at).ok_or(ParseError::ShortRow {
                line: index + 1,
                fields: fields.len(),
                column: name,
            })
        };
        let optional = |at: Option<usize>| {
            at.and_then(|at| fields.get(at))
                .map(|f| f.trim())
                .filter(|f| !f.is_empty())
        };
        let pxname = get(px_at, "pxname")?.clone();
        let svname = get(sv_at, "svname")?.clone();
        let status = get(status_at, "status")?.trim().to_owned();
        let kind = match optional(type_at).and_then(|t| t.parse::<u8>().ok()) {
            Some(0) => RowKind::Frontend,
            Some(1) => RowKind::Backend,
            Some(2) => RowKind::Server,
            Some(3) => RowKind::Listener,
            // No (or an unknown) type: the svname HAProxy gives aggregate rows decides.
            _ => match svname.as_str() {
                "FRONTEND" => RowKind::Frontend,
                "BACKEND" => RowKind::Backend,
                _ => RowKind::Server,
            },
        };
        let weight = optional(uweight_at)
            .and_then(|w| w.parse().ok())
            .or_else(|| optional(weight_at).and_then(|w| w.parse().ok()));
        let backup = optional(bck_at) == Some("1");
        rows.push(StatRow {
            pxname,
            svname,
            kind,
            status,
            weight,
            backup,
        });
    }
    Ok(rows)
}

/// Splits one CSV line as HAProxy writes it (`csv_enc`): a field is quoted only if it holds
/// a comma or a quote, and a quote inside is doubled. An unterminated quote runs to the end
/// of the line rather than failing: the row is then judged on what it has.
pub fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    // Whether the current field has begun (so a final `""` is a field, a final comma none).
    let mut begun = false;
    while let Some(c) = chars.next() {
        begun = c != ',' || quoted;
        match (quoted, c) {
            (true, '"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, c) => field.push(c),
        }
    }
    // Every HAProxy line ends with a comma, so the last field is already pushed; text after
    // the last comma (a line from elsewhere) is kept as a field.
    if begun {
        fields.push(field);
    }
    fields
}

/// Whether a server status lets HAProxy send it new traffic.
///
/// - `UP` and `UP x/y` (still up, failing checks, not yet DOWN): usable.
/// - `no check`: usable; HAProxy assumes a server without health checks is up and sends it
///   traffic.
/// - `NOLB` (`http-check disable-on-404`, `NOLB x/y`): not usable. HAProxy keeps it for
///   persistent sessions only and sends it no load-balanced traffic; it is on its way out.
/// - `DRAIN`, `DRAIN x/y`, `DRAIN (agent)`: not usable, same reason: no new traffic.
/// - `MAINT`, `MAINT (via px/srv)`, `MAINT (resolution)`: not usable.
/// - `DOWN`, `DOWN x/y` (coming back, not yet risen), `DOWN (agent)`: not usable.
/// - anything unknown: not usable, so a new status never inflates the count.
pub fn status_usable(status: &str) -> bool {
    let word = status.split_whitespace().next().unwrap_or("");
    match word {
        "UP" => true,
        "no" => status.trim() == "no check",
        _ => false,
    }
}

/// How many entries of unusable servers a reason lists before "and N more".
const LISTED: usize = 8;

/// Judges `backend` from parsed rows.
///
/// A server is usable when its status is ([`status_usable`]) and its weight is not 0
/// (`set server ... weight 0` leaves the status `UP`, but HAProxy sends such a server
/// nothing). A server without a weight column counts as weight 1.
///
/// Backup servers (`bck` = 1) count only when no active server is usable, as HAProxy uses
/// them. Note HAProxy then sends traffic to the first usable backup only, unless `option
/// allbackups`, which the stats do not show; the probe counts every usable backup.
///
/// - `MinUp(n)`: `Up` if the usable servers (active, else backups) number at least `n`.
/// - `Graded`: the usable weight over the active servers' configured weight (the capacity
///   the operator built; backups-only backends use the backups' weight), capped at 1.0. A
///   total of 0 is `Down`, and so is a usable weight of 0: HAProxy itself then marks the
///   backend DOWN and there is nothing to scale.
pub fn judge_backend(rows: &[StatRow], backend: &str, judge: Judge) -> ProbeOutcome {
    let mut found = false;
    let mut active = Pool::default();
    let mut backups = Pool::default();
    for row in rows.iter().filter(|r| r.pxname == backend) {
        found = true;
        if row.kind != RowKind::Server {
            continue;
        }
        let weight = row.weight.unwrap_or(1);
        let pool = if row.backup {
            &mut backups
        } else {
            &mut active
        };
        pool.servers += 1;
        pool.weight = pool.weight.saturating_add(u64::from(weight));
        if status_usable(&row.status) && weight > 0 {
            pool.usable += 1;
            pool.usable_weight = pool.usable_weight.saturating_add(u64::from(weight));
        } else {
            let what = if status_usable(&row.status) {
                format!("{} {} weight 0", row.svname, row.status)
            } else {
                format!("{} {}", row.svname, row.status)
            };
            pool.unusable.push(what);
        }
    }
    if !found {
        return missing_backend(backend);
    }
    let on_backups = active.usable == 0 && backups.usable > 0;
    let usable = if on_backups {
        backups.usable
    } else {
        active.usable
    };
    let detail = describe(backend, &active, &backups, on_backups);
    match judge {
        Judge::MinUp(n) => {
            if usable >= n {
                ProbeOutcome::Up
            } else {
                ProbeOutcome::down(detail)
            }
        }
        Judge::Graded => {
            let total = if active.weight > 0 {
                active.weight
            } else {
                backups.weight
            };
            let usable_weight = if on_backups {
                backups.usable_weight
            } else {
                active.usable_weight
            };
            if total == 0 {
                return ProbeOutcome::down(format!(
                    "{backend}: total server weight is 0 ({detail})"
                ));
            }
            if usable_weight == 0 {
                return ProbeOutcome::down(detail);
            }
            // Both fit an f64 exactly (sums of at most millions of u32 weights ≤ 2^53).
            let fraction = (usable_weight as f64 / total as f64).min(1.0);
            ProbeOutcome::Graded {
                fraction,
                detail: format!("{detail}, weight {usable_weight}/{total}"),
            }
        }
    }
}

#[derive(Default)]
struct Pool {
    servers: u32,
    usable: u32,
    weight: u64,
    usable_weight: u64,
    unusable: Vec<String>,
}

/// `be_web: 1 of 3 servers usable (web2 DOWN, web3 MAINT)`, plus the backups when any.
fn describe(backend: &str, active: &Pool, backups: &Pool, on_backups: bool) -> String {
    let mut text = format!(
        "{backend}: {} of {} servers usable{}",
        active.usable,
        active.servers,
        listed(&active.unusable)
    );
    if backups.servers > 0 {
        text.push_str(&format!(
            "; {} of {} backup servers usable{}",
            backups.usable,
            backups.servers,
            listed(&backups.unusable)
        ));
        if on_backups {
            text.push_str(", serving from backups");
        }
    }
    text
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = names.iter().take(LISTED).map(String::as_str).collect();
    let more = names.len().saturating_sub(LISTED);
    if more > 0 {
        format!(" ({} and {more} more)", shown.join(", "))
    } else {
        format!(" ({})", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real `show stat` header of HAProxy 2.6.12 (129 columns, `-` then module fields).
    const HEADER_26: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

    /// A row under [`HEADER_26`]: every column empty except `set`, with a trailing comma.
    fn row26(set: &[(&str, &str)]) -> String {
        let names = split_csv(HEADER_26.trim_start_matches("# "));
        let mut line = String::new();
        for name in &names {
            let value = set
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .unwrap_or("");
            if value.contains(',') || value.contains('"') {
                line.push('"');
                line.push_str(&value.replace('"', "\"\""));
                line.push('"');
            } else {
                line.push_str(value);
            }
            line.push(',');
        }
        line
    }

    fn server(px: &str, sv: &str, status: &str, weight: &str, bck: &str) -> String {
        row26(&[
            ("pxname", px),
            ("svname", sv),
            ("status", status),
            ("weight", weight),
            ("uweight", weight),
            ("act", if bck == "1" { "0" } else { "1" }),
            ("bck", bck),
            ("type", "2"),
            ("check_desc", "Layer4 check passed"),
        ])
    }

    fn backend_row(px: &str, status: &str) -> String {
        row26(&[
            ("pxname", px),
            ("svname", "BACKEND"),
            ("status", status),
            ("weight", "3"),
            ("uweight", "3"),
            ("type", "1"),
        ])
    }

    fn stat(rows: &[String]) -> String {
        let mut text = String::from(HEADER_26);
        for r in rows {
            text.push('\n');
            text.push_str(r);
        }
        text
    }

    fn be_web(statuses: &[&str]) -> Vec<StatRow> {
        let mut rows: Vec<String> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| server("be_web", &format!("web{}", i + 1), s, "1", "0"))
            .collect();
        rows.push(backend_row("be_web", "UP"));
        parse_stat(&stat(&rows)).expect("parses")
    }

    fn reason(outcome: &ProbeOutcome) -> &str {
        match outcome {
            ProbeOutcome::Down { reason } => reason,
            other => panic!("expected Down, got {other:?}"),
        }
    }

    fn graded(outcome: &ProbeOutcome) -> (f64, &str) {
        match outcome {
            ProbeOutcome::Graded { fraction, detail } => (*fraction, detail),
            other => panic!("expected Graded, got {other:?}"),
        }
    }

    // ---- the verified samples of the reference (haproxy-mycat.md §1.4) ----

    #[test]
    fn verified_raw_sample_row_parses_by_name() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,\n\
                   be_web,web_up,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,10,0,,1,3,1,,0,,2,0,,0,L7OK,200,0,0\n";
        let rows = parse_stat(csv).expect("parses");
        assert_eq!(
            rows,
            vec![StatRow {
                pxname: "be_web".into(),
                svname: "web_up".into(),
                kind: RowKind::Server,
                status: "UP".into(),
                weight: Some(1),
                backup: false,
            }]
        );
        assert_eq!(
            judge_backend(&rows, "be_web", Judge::MinUp(1)),
            ProbeOutcome::Up
        );
    }

    /// The reference's column subset, in its own (non-HAProxy) column order: lookup by name
    /// must not care.
    const VERIFIED_SUBSET: &str = "# pxname,svname,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,type,check_status,check_code,check_duration,check_desc,last_chk,\n\
be_web,web_down,DOWN,1,1,0,1,1,10,10,2,L4CON,,0,Layer4 connection problem,Connection refused,\n\
be_web,web_maint,MAINT,1,1,0,0,0,10,10,2,,,,,,\n\
be_web,web_nocheck,no check,1,1,0,,,10,,2,,,,,,\n\
be_web,web_bck,UP,1,0,1,0,0,10,0,2,L7OK,200,1,Layer7 check passed,,\n\
be_web,BACKEND,UP,2,2,1,,0,10,0,1,\n\
be_mysql,BACKEND,DOWN,0,0,0,,1,9,9,1,\n";

    #[test]
    fn verified_subset_judged() {
        let rows = parse_stat(VERIFIED_SUBSET).expect("parses");
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[2].status, "no check");
        assert!(rows[3].backup);
        assert_eq!(rows[4].kind, RowKind::Backend);
        // web_nocheck is usable, so the backup does not count.
        let down = judge_backend(&rows, "be_web", Judge::MinUp(2));
        assert_eq!(
            reason(&down),
            "be_web: 1 of 3 servers usable (web_down DOWN, web_maint MAINT); \
             1 of 1 backup servers usable"
        );
        assert_eq!(
            judge_backend(&rows, "be_web", Judge::MinUp(1)),
            ProbeOutcome::Up
        );
        let g = judge_backend(&rows, "be_web", Judge::Graded);
        let (fraction, detail) = graded(&g);
        assert!((fraction - 1.0 / 3.0).abs() < 1e-9, "{fraction}");
        assert!(detail.ends_with("weight 1/3"), "{detail}");
        // A backend with no servers: present, nothing usable.
        assert!(reason(&judge_backend(&rows, "be_mysql", Judge::Graded))
            .contains("total server weight is 0"));
        assert!(matches!(
            judge_backend(&rows, "be_mysql", Judge::MinUp(1)),
            ProbeOutcome::Down { .. }
        ));
        assert_eq!(
            judge_backend(&rows, "be_mysql", Judge::MinUp(0)),
            ProbeOutcome::Up
        );
    }

    #[test]
    fn verified_transition_sequence() {
        // UP,L7OK -> UP 2/3 -> UP 1/3 -> DOWN -> DOWN 1/2 -> UP (reference §1.4).
        let expect = [
            ("UP", true),
            ("UP 2/3", true),
            ("UP 1/3", true),
            ("DOWN", false),
            ("DOWN 1/2", false),
            ("UP", true),
        ];
        for (status, up) in expect {
            let rows = be_web(&[status]);
            let outcome = judge_backend(&rows, "be_web", Judge::MinUp(1));
            assert_eq!(outcome == ProbeOutcome::Up, up, "{status}: {outcome:?}");
        }
    }

    // ---- statuses ----

    #[test]
    fn statuses_usable_or_not() {
        for s in ["UP", "UP 1/3", "UP 2/3", "no check"] {
            assert!(status_usable(s), "{s}");
        }
        for s in [
            "DOWN",
            "DOWN 1/2",
            "DOWN (agent)",
            "NOLB",
            "NOLB 1/2",
            "DRAIN",
            "DRAIN 1/2",
            "DRAIN (agent)",
            "MAINT",
            "MAINT (via be_app/web1)",
            "MAINT (resolution)",
            "no",
            "no checks",
            "UPPER",
            "",
            "up",
            "OPEN",
        ] {
            assert!(!status_usable(s), "{s}");
        }
    }

    #[test]
    fn min_up_lists_the_unusable() {
        let rows = be_web(&[
            "UP",
            "DOWN",
            "MAINT",
            "DRAIN",
            "NOLB",
            "MAINT (via be_app/web1)",
        ]);
        let outcome = judge_backend(&rows, "be_web", Judge::MinUp(2));
        assert_eq!(
            reason(&outcome),
            "be_web: 1 of 6 servers usable (web2 DOWN, web3 MAINT, web4 DRAIN, web5 NOLB, \
             web6 MAINT (via be_app/web1))"
        );
        assert_eq!(
            judge_backend(&rows, "be_web", Judge::MinUp(1)),
            ProbeOutcome::Up
        );
    }

    #[test]
    fn spec_example_reason() {
        let rows = be_web(&["UP", "DOWN", "MAINT"]);
        assert_eq!(
            reason(&judge_backend(&rows, "be_web", Judge::MinUp(3))),
            "be_web: 1 of 3 servers usable (web2 DOWN, web3 MAINT)"
        );
    }

    #[test]
    fn long_lists_are_bounded() {
        let statuses = vec!["DOWN"; 50];
        let rows = be_web(&statuses);
        let r = judge_backend(&rows, "be_web", Judge::MinUp(1));
        assert!(
            reason(&r).ends_with("web8 DOWN and 42 more)"),
            "{}",
            reason(&r)
        );
    }

    // ---- graded ----

    #[test]
    fn graded_uses_uweight_and_weight() {
        let rows = parse_stat(&stat(&[
            server("be_web", "a", "UP", "3", "0"),
            server("be_web", "b", "DOWN", "1", "0"),
            server("be_web", "c", "UP 1/3", "4", "0"),
            backend_row("be_web", "UP"),
        ]))
        .expect("parses");
        let g = judge_backend(&rows, "be_web", Judge::Graded);
        let (fraction, detail) = graded(&g);
        assert!((fraction - 7.0 / 8.0).abs() < 1e-9);
        assert_eq!(detail, "be_web: 2 of 3 servers usable (b DOWN), weight 7/8");

        // uweight wins over weight (weight is lowered by slow-start).
        let csv = "# pxname,svname,status,weight,type,uweight\nbe,a,UP,1,2,10\nbe,b,DOWN,1,2,10\n";
        let rows = parse_stat(csv).expect("parses");
        assert_eq!(rows[0].weight, Some(10));
        let (fraction, _) = graded(&judge_backend(&rows, "be", Judge::Graded));
        assert!((fraction - 0.5).abs() < 1e-9);
        // No weight columns at all: weight 1 each.
        let csv = "# pxname,svname,status\nbe,a,UP\nbe,b,UP\nbe,c,DOWN\n";
        let rows = parse_stat(csv).expect("parses");
        let (fraction, _) = graded(&judge_backend(&rows, "be", Judge::Graded));
        assert!((fraction - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn graded_all_up_is_one_and_nothing_usable_is_down() {
        let rows = be_web(&["UP", "UP", "no check"]);
        let (fraction, _) = graded(&judge_backend(&rows, "be_web", Judge::Graded));
        assert_eq!(fraction, 1.0);
        let rows = be_web(&["DOWN", "MAINT", "DRAIN"]);
        let r = judge_backend(&rows, "be_web", Judge::Graded);
        assert_eq!(
            reason(&r),
            "be_web: 0 of 3 servers usable (web1 DOWN, web2 MAINT, web3 DRAIN)"
        );
    }

    #[test]
    fn weight_zero_is_not_usable() {
        let rows = parse_stat(&stat(&[
            server("be_web", "a", "UP", "0", "0"),
            server("be_web", "b", "UP", "2", "0"),
        ]))
        .expect("parses");
        let r = judge_backend(&rows, "be_web", Judge::MinUp(2));
        assert_eq!(reason(&r), "be_web: 1 of 2 servers usable (a UP weight 0)");
        // All weights 0: total 0, Down.
        let rows = parse_stat(&stat(&[server("be_web", "a", "UP", "0", "0")])).expect("parses");
        assert!(reason(&judge_backend(&rows, "be_web", Judge::Graded))
            .contains("total server weight is 0"));
    }

    // ---- backups ----

    #[test]
    fn backups_count_only_when_no_active_is_usable() {
        let rows = parse_stat(&stat(&[
            server("be_web", "a", "UP", "1", "0"),
            server("be_web", "b", "DOWN", "1", "0"),
            server("be_web", "bk1", "UP", "1", "1"),
            server("be_web", "bk2", "UP", "1", "1"),
        ]))
        .expect("parses");
        // One active usable: backups are idle in HAProxy, so they do not count.
        assert!(matches!(
            judge_backend(&rows, "be_web", Judge::MinUp(2)),
            ProbeOutcome::Down { .. }
        ));
        let (fraction, _) = graded(&judge_backend(&rows, "be_web", Judge::Graded));
        assert!((fraction - 0.5).abs() < 1e-9);

        let rows = parse_stat(&stat(&[
            server("be_web", "a", "DOWN", "1", "0"),
            server("be_web", "b", "MAINT", "1", "0"),
            server("be_web", "bk1", "UP", "1", "1"),
            server("be_web", "bk2", "DOWN", "1", "1"),
        ]))
        .expect("parses");
        // No active usable: HAProxy fails over to the backups.
        assert_eq!(
            judge_backend(&rows, "be_web", Judge::MinUp(1)),
            ProbeOutcome::Up
        );
        let g = judge_backend(&rows, "be_web", Judge::Graded);
        let (fraction, detail) = graded(&g);
        assert!(
            (fraction - 0.5).abs() < 1e-9,
            "backup weight over active weight"
        );
        assert_eq!(
            detail,
            "be_web: 0 of 2 servers usable (a DOWN, b MAINT); 1 of 2 backup servers usable \
             (bk2 DOWN), serving from backups, weight 1/2"
        );
        // Backups only, all usable: 1.0 (denominator from the backups).
        let rows = parse_stat(&stat(&[server("be_web", "bk", "UP", "5", "1")])).expect("parses");
        let (fraction, _) = graded(&judge_backend(&rows, "be_web", Judge::Graded));
        assert_eq!(fraction, 1.0);
        // More backup weight than active weight is capped at 1.0.
        let rows = parse_stat(&stat(&[
            server("be_web", "a", "DOWN", "1", "0"),
            server("be_web", "bk", "UP", "9", "1"),
        ]))
        .expect("parses");
        let (fraction, _) = graded(&judge_backend(&rows, "be_web", Judge::Graded));
        assert_eq!(fraction, 1.0);
    }

    // ---- which rows ----

    #[test]
    fn other_backends_and_aggregates_are_ignored() {
        let rows = parse_stat(&stat(&[
            row26(&[
                ("pxname", "be_web"),
                ("svname", "FRONTEND"),
                ("status", "OPEN"),
                ("type", "0"),
            ]),
            server("be_web", "web1", "UP", "1", "0"),
            server("be_other", "x", "DOWN", "1", "0"),
            backend_row("be_web", "UP"),
        ]))
        .expect("parses");
        assert_eq!(
            judge_backend(&rows, "be_web", Judge::MinUp(1)),
            ProbeOutcome::Up
        );
        assert!(matches!(
            judge_backend(&rows, "be_web", Judge::MinUp(2)),
            ProbeOutcome::Down { .. }
        ));
        assert_eq!(
            judge_backend(&rows, "be_x", Judge::MinUp(1)),
            ProbeOutcome::down("no backend be_x in show stat")
        );
        // Without a type column, svname tells aggregates apart.
        let csv = "# pxname,svname,status\nbe,FRONTEND,OPEN\nbe,BACKEND,UP\nbe,s1,UP\n";
        let rows = parse_stat(csv).expect("parses");
        assert_eq!(rows[0].kind, RowKind::Frontend);
        assert_eq!(rows[1].kind, RowKind::Backend);
        assert_eq!(rows[2].kind, RowKind::Server);
        assert!(matches!(
            judge_backend(&rows, "be", Judge::MinUp(2)),
            ProbeOutcome::Down { .. }
        ));
    }

    // ---- CSV edge cases ----

    #[test]
    fn csv_quotes_trailing_commas_and_unknown_columns() {
        assert_eq!(split_csv("a,b,"), vec!["a", "b"]);
        assert_eq!(split_csv("a,,"), vec!["a", ""]);
        assert_eq!(split_csv("a,b"), vec!["a", "b"]);
        assert_eq!(split_csv("a,\"\""), vec!["a", ""]);
        assert_eq!(
            split_csv("\"x,y\",\"say \"\"hi\"\"\","),
            vec!["x,y", "say \"hi\""]
        );
        assert_eq!(split_csv("\"open,ended"), vec!["open,ended"]);
        assert_eq!(split_csv(""), Vec::<String>::new());

        let csv = "# future_col,pxname,svname,check_desc,status,weight,-,status,mod_x,\n\
                   zz,be,\"s,1\",\"Layer7 \"\"wrong\"\", status\",UP 1/3,2,,DOWN,7,\n";
        let rows = parse_stat(csv).expect("parses");
        assert_eq!(rows[0].svname, "s,1");
        // The static `status` (before `-`) wins over a module column of the same name.
        assert_eq!(rows[0].status, "UP 1/3");
        assert_eq!(rows[0].weight, Some(2));
    }

    #[test]
    fn csv_errors() {
        assert_eq!(parse_stat(""), Err(ParseError::Empty));
        assert_eq!(parse_stat("\n\n"), Err(ParseError::Empty));
        assert_eq!(
            parse_stat("Permission denied\n"),
            Err(ParseError::NoHeader("Permission denied".into()))
        );
        assert_eq!(
            parse_stat("# pxname,svname,weight,\nbe,s,1,\n"),
            Err(ParseError::MissingColumn("status"))
        );
        assert_eq!(
            parse_stat("# pxname,svname,status,\nbe,s,UP,\nbe,t\n"),
            Err(ParseError::ShortRow {
                line: 3,
                fields: 2,
                column: "status"
            })
        );
        // Header only: no rows, and the backend is then missing.
        let rows = parse_stat(HEADER_26).expect("parses");
        assert!(rows.is_empty());
        assert_eq!(
            judge_backend(&rows, "be_web", Judge::Graded),
            ProbeOutcome::down("no backend be_web in show stat")
        );
    }

    // ---- show info ----

    const INFO: &str = "Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPid: 5743\nUptime_sec: 5\nMaxconn: 9977\nCurrConns: 0\nStopping: 0\nJobs: 5\nUnstoppable Jobs: 1\nListeners: 4\nStart_time_sec: 1795565076";

    #[test]
    fn info_parses_and_tolerates_missing_fields() {
        let info = parse_info(INFO).expect("parses");
        assert_eq!(
            info,
            Info {
                stopping: Some(false),
                pid: Some(5743),
                version: Some("2.6.12-1+deb12u4".into())
            }
        );
        let info = parse_info(&INFO.replace("Stopping: 0", "Stopping: 1")).expect("parses");
        assert_eq!(info.stopping, Some(true));
        let info = parse_info("Name: HAProxy\n").expect("parses");
        assert_eq!(info, Info::default());
        let info = parse_info("Stopping: yes\nPid: -3\n").expect("parses");
        assert_eq!(info, Info::default());
    }

    #[test]
    fn info_rejects_haproxy_errors() {
        let unknown = "Unknown command, but maybe one of the following ones is a better match:\n  show fd [num]                           : dump list of file descriptors in use\n  quit                                    : disconnect";
        assert!(matches!(parse_info(unknown), Err(ParseError::NotInfo(_))));
        assert_eq!(
            parse_info("Permission denied"),
            Err(ParseError::NotInfo("Permission denied".into()))
        );
        assert_eq!(parse_info(""), Err(ParseError::Empty));
    }

    // ---- whole replies ----

    fn reply(info: &str, stat: &str) -> Vec<u8> {
        format!("{info}\n\n{stat}\n\n").into_bytes()
    }

    #[test]
    fn whole_reply_judged() {
        let csv = stat(&[
            server("be_web", "web1", "UP", "1", "0"),
            server("be_web", "web2", "DOWN 1/2", "1", "0"),
            backend_row("be_web", "UP"),
        ]);
        let r = reply(INFO, &csv);
        assert_eq!(
            evaluate_reply(&r, Some("be_web"), Judge::MinUp(1)),
            Ok(ProbeOutcome::Up)
        );
        let down = evaluate_reply(&r, Some("be_web"), Judge::MinUp(2)).expect("judged");
        assert_eq!(
            reason(&down),
            "be_web: 1 of 2 servers usable (web2 DOWN 1/2)"
        );
        // HAProxy alone.
        let only_info = format!("{INFO}\n\n").into_bytes();
        assert_eq!(
            evaluate_reply(&only_info, None, Judge::MinUp(1)),
            Ok(ProbeOutcome::Up)
        );
        // Stopping wins over a healthy backend.
        let stopping = reply(&INFO.replace("Stopping: 0", "Stopping: 1"), &csv);
        let d = evaluate_reply(&stopping, Some("be_web"), Judge::Graded).expect("judged");
        assert_eq!(
            reason(&d),
            "haproxy is stopping (worker 5743 soft-stopping)"
        );
        let stopping = b"Stopping: 1\n\n".to_vec();
        let d = evaluate_reply(&stopping, None, Judge::Graded).expect("judged");
        assert_eq!(reason(&d), "haproxy is stopping");
        // Unknown proxy in the filter.
        let none = reply(INFO, "No such proxy.");
        assert_eq!(
            evaluate_reply(&none, Some("be_x"), Judge::MinUp(1)),
            Ok(ProbeOutcome::down("no backend be_x in show stat"))
        );
    }

    #[test]
    fn whole_reply_errors() {
        assert_eq!(
            evaluate_reply(b"", None, Judge::Graded),
            Err(ReplyError::Empty)
        );
        assert_eq!(
            evaluate_reply(b"Name: HAProxy\nStopp", None, Judge::Graded),
            Err(ReplyError::Truncated(19))
        );
        // show info answered, then cut before show stat.
        let cut = format!("{INFO}\n\n").into_bytes();
        assert_eq!(
            evaluate_reply(&cut, Some("be_web"), Judge::Graded),
            Err(ReplyError::Sections {
                expected: 2,
                got: 1
            })
        );
        let denied = reply(INFO, "Permission denied");
        assert_eq!(
            evaluate_reply(&denied, Some("be_web"), Judge::Graded),
            Err(ReplyError::Stat(ParseError::NoHeader(
                "Permission denied".into()
            )))
        );
        let e = evaluate_reply(&denied, Some("be_web"), Judge::Graded).expect_err("error");
        assert_eq!(
            e.to_string(),
            "show stat: no `# ` CSV header, output starts \"Permission denied\""
        );
    }

    #[test]
    fn command_lines() {
        assert_eq!(command_line(None), "show info\n");
        assert_eq!(
            command_line(Some("be_web")),
            "show info;show stat be_web 6 -1\n"
        );
        assert_eq!(
            command_line(Some("be:x.y-z_1")),
            "show info;show stat be:x.y-z_1 6 -1\n"
        );
        // A name that cannot be a proxy name is never sent into the command.
        assert_eq!(
            command_line(Some("be;shutdown sessions")),
            "show info;show stat -1 6 -1\n"
        );
        assert_eq!(command_line(Some("")), "show info;show stat -1 6 -1\n");
    }

    // ---- never panic ----

    /// A small deterministic generator (xorshift) so the fuzz-ish tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn truncated_and_garbled_input_never_panics() {
        let csv = stat(&[
            server("be_web", "web1", "UP", "1", "0"),
            server("be_web", "web,2", "MAINT (via be/srv)", "3", "1"),
            backend_row("be_web", "UP"),
        ]);
        let full = reply(INFO, &csv);
        let judges = [Judge::MinUp(0), Judge::MinUp(2), Judge::Graded];
        // Every prefix (by bytes, so also inside UTF-8 sequences and quotes).
        for cut in 0..=full.len() {
            let part = &full[..cut];
            for judge in judges {
                let _ = evaluate_reply(part, Some("be_web"), judge);
                let _ = evaluate_reply(part, None, judge);
            }
            let text = String::from_utf8_lossy(part);
            let _ = parse_stat(&text);
            let _ = parse_info(&text);
        }
        // Random byte garbling of a valid reply, and random alphabets.
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"#,\"\n: UPDOWNMAINTbe_web01/-\xff";
        for _ in 0..3000 {
            let mut bytes = full.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                }
            }
            for judge in judges {
                let _ = evaluate_reply(&bytes, Some("be_web"), judge);
            }
            let noise: Vec<u8> = (0..rng.below(200))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let _ = evaluate_reply(&noise, Some("be_web"), Judge::Graded);
            let text = String::from_utf8_lossy(&noise);
            let _ = parse_stat(&text);
            let _ = parse_info(&text);
        }
        // Huge numbers and weights do not overflow.
        let csv = "# pxname,svname,status,uweight\nbe,a,UP,4294967295\nbe,b,UP,4294967295\nbe,c,UP,99999999999999999999\n";
        let rows = parse_stat(csv).expect("parses");
        let _ = judge_backend(&rows, "be", Judge::Graded);
    }

    // ---- the exchange, against fake peers on unix sockets in a temp dir ----

    fn temp_socket(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vk-hap-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("stats.sock")
    }

    fn settings(path: PathBuf, backend: Option<&str>) -> HaproxySettings {
        HaproxySettings {
            target: StatsTarget::Unix(path),
            backend: backend.map(str::to_owned),
            judge: Judge::MinUp(1),
        }
    }

    #[tokio::test]
    async fn absent_socket_is_down_at_once() {
        let path = temp_socket("absent");
        let s = settings(path.clone(), None);
        let started = std::time::Instant::now();
        let outcome = probe(&s, Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(
            reason(&outcome),
            format!(
                "haproxy stats socket unix:{}: socket file absent (is haproxy running?)",
                path.display()
            )
        );
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn fake_peer_answers_and_silent_peer_times_out() {
        let path = temp_socket("fake");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let canned = reply(INFO, &stat(&[server("be_web", "web1", "UP", "1", "0")]));
        let server_task = tokio::spawn(async move {
            // 1: a proper answer; 2: silence (holds the socket open); 3: an endless talker.
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut line = vec![0u8; 256];
            let n = conn.read(&mut line).await.expect("read");
            let line = String::from_utf8_lossy(&line[..n]).into_owned();
            conn.write_all(&canned).await.expect("write");
            drop(conn);
            let (silent, _) = listener.accept().await.expect("accept");
            let (mut talker, _) = listener.accept().await.expect("accept");
            let junk = vec![b'x'; 64 * 1024];
            for _ in 0..200 {
                if talker.write_all(&junk).await.is_err() {
                    break;
                }
            }
            drop(silent);
            line
        });
        let s = settings(path.clone(), Some("be_web"));
        assert_eq!(probe(&s, Duration::from_secs(2)).await, ProbeOutcome::Up);

        let limit = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let outcome = probe(&s, limit).await;
        let took = started.elapsed();
        assert!(
            took >= limit && took <= limit + Duration::from_millis(100),
            "{took:?}"
        );
        assert!(
            reason(&outcome)
                .ends_with("no complete reply within 300 ms (waiting for the reply to end)"),
            "{outcome:?}"
        );

        let target = StatsTarget::Unix(path.clone());
        let deadline = Instant::now() + Duration::from_secs(5);
        let e = exchange(
            &target,
            b"show info\n",
            deadline,
            Duration::from_secs(5),
            1024 * 1024,
        )
        .await
        .expect_err("too large");
        assert!(matches!(e, ExchangeError::TooLarge(_)), "{e}");

        let line = server_task.await.expect("fake peer");
        assert_eq!(line, "show info;show stat be_web 6 -1\n");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn refused_tcp_is_down() {
        // Bind then drop a loopback listener: its port is then (almost surely) closed.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let s = HaproxySettings {
            target: StatsTarget::Tcp(port),
            backend: None,
            judge: Judge::Graded,
        };
        let outcome = probe(&s, Duration::from_secs(1)).await;
        assert_eq!(
            reason(&outcome),
            format!("haproxy stats socket tcp:{port}: connection refused (haproxy not listening)")
        );
    }
}
