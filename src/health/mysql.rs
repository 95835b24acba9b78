//! The `mysql` probe: a real login, COM_PING, COM_QUIT, over the MySQL client/server
//! protocol spoken here directly (no client library).
//!
//! Owns: packet framing, the HandshakeV10 greeting, HandshakeResponse41 with
//! `mysql_native_password` (and an AuthSwitchRequest back to it), OK/ERR parsing, COM_PING,
//! COM_QUERY and COM_QUIT. [`MysqlConnection`] is the reusable piece: the probe uses it for
//! login + ping, and a `mysql_admin` action can use it to send MyCat's `reload @@config_all`
//! as a [`MysqlConnection::query`] and report the OK or ERR.
//!
//! Must not: log or report the password (it is read from its file at each probe and only
//! ever hashed); trust anything the server sends (every length is checked, packets over
//! [`MAX_PACKET`] are refused, garbage is a [`MysqlError::Protocol`], never a panic); block
//! past the caller's timeout; speak before the greeting (so 1040 and 1129 sent instead of
//! the greeting are reported as such). It does no TLS and no `caching_sha2_password`:
//! MySQL 8.4+ accounts need `mysql_native_password` for the probe's user.
//!
//! Why a full login and not just reading the greeting (docs: shared reference §4.3): a
//! client that disconnects before authenticating counts as a connection error, and after
//! `max_connect_errors` of them the server answers 1129 "host blocked" to the checker, and
//! to everything else from that address. A completed login followed by COM_QUIT does not.
//!
//! ```text
//! every packet:  +------------------+--------+------------------------+
//!                | payload len (3B) | seq id | payload (len bytes)    |
//!                | little endian    | (1B)   |                        |
//!                +------------------+--------+------------------------+
//! seq is 0 on the first packet of a command (and on the greeting), +1 on each packet after.
//!
//! client                                         server
//!   | ------------------ TCP connect -------------> |
//!   | <-- seq0 HandshakeV10 (0x0a) or ERR (0xff) -- |   ERR here: 1040, 1129, 1130 (no #state)
//!   | --- seq1 HandshakeResponse41 ---------------> |
//!   | <-- seq2 OK (0x00) | ERR | AuthSwitch (0xfe) - |
//!   | --- seq3 native token (after AuthSwitch) ---> |
//!   | <-- seq4 OK | ERR --------------------------- |
//!   | --- seq0 COM_PING (0x0e) -------------------> |
//!   | <-- seq1 OK | ERR (1053 on an offline MyCat)  |
//!   | --- seq0 COM_QUIT (0x01) -------------------> |   server closes, no reply
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MysqlSettings {
    pub address: SocketAddr,
    pub user: String,
    /// Read at every probe, so a rotated password is picked up; never logged.
    pub password_file: PathBuf,
}

/// One probe: read the password, log in, COM_PING, COM_QUIT, all within `timeout`.
pub async fn probe(settings: &MysqlSettings, timeout: Duration) -> ProbeOutcome {
    let address = settings.address;
    let password = match read_password_file(&settings.password_file) {
        Ok(password) => password,
        Err(error) => {
            return ProbeOutcome::down(format!(
                "mysql {address}: cannot read password file {}: {error}",
                settings.password_file.display()
            ))
        }
    };
    // The inner steps have their own deadline (same length); this outer bound is the
    // promise to the caller, whatever the steps do.
    let check = async {
        let mut connection =
            MysqlConnection::connect(address, &settings.user, &password, timeout).await?;
        connection.ping().await?;
        // A failed COM_QUIT after a good ping is no reason to call the server down.
        if let Err(error) = connection.quit().await {
            tracing::debug!(%address, %error, "mysql probe: COM_QUIT failed");
        }
        Ok::<(), MysqlError>(())
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(())) => ProbeOutcome::Up,
        Ok(Err(error)) => ProbeOutcome::down(format!("mysql {address}: {error}")),
        Err(_) => ProbeOutcome::down(format!("mysql {address}: no answer within {timeout:?}")),
    }
}

/// The password file's content minus one trailing newline (the rule of every secret file).
pub use crate::config::secret::read_secret_file as read_password_file;

// ===== errors =====

/// The largest packet accepted from a server. A check or an admin command never needs more,
/// and a bigger length is more likely garbage than data.
pub const MAX_PACKET: usize = 1 << 20;

/// An ERR packet from the server: `0xff`, code (u16 LE), optionally `#` + 5-byte SQL state,
/// then the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    pub code: u16,
    /// The SQL state, absent on errors sent instead of the greeting.
    pub state: Option<String>,
    /// The server's message, made printable and cut to a sane length.
    pub message: String,
}

impl ServerError {
    /// The symbolic name and a short meaning of the codes a check or an admin command meets.
    pub fn known(&self) -> Option<(&'static str, &'static str)> {
        known_error(self.code)
    }

    /// The symbolic name (`ER_ACCESS_DENIED_ERROR`) when the code is a known one.
    pub fn name(&self) -> Option<&'static str> {
        self.known().map(|(name, _)| name)
    }
}

impl fmt::Display for ServerError {
    /// `ERR 1045 access denied (ER_ACCESS_DENIED_ERROR) #28000: Access denied for ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ERR {}", self.code)?;
        if let Some((name, meaning)) = self.known() {
            write!(f, " {meaning} ({name})")?;
        }
        if let Some(state) = &self.state {
            write!(f, " #{state}")?;
        }
        write!(f, ": {}", self.message)
    }
}

fn known_error(code: u16) -> Option<(&'static str, &'static str)> {
    Some(match code {
        1040 => ("ER_CON_COUNT_ERROR", "too many connections"),
        1043 => ("ER_HANDSHAKE_ERROR", "bad handshake"),
        1044 => ("ER_DBACCESS_DENIED_ERROR", "database access denied"),
        1045 => ("ER_ACCESS_DENIED_ERROR", "access denied"),
        1047 => ("ER_UNKNOWN_COM_ERROR", "unknown command"),
        1049 => ("ER_BAD_DB_ERROR", "unknown database"),
        1053 => ("ER_SERVER_SHUTDOWN", "server shutting down or offline"),
        1064 => ("ER_PARSE_ERROR", "syntax error"),
        1129 => ("ER_HOST_IS_BLOCKED", "host blocked"),
        1130 => ("ER_HOST_NOT_PRIVILEGED", "host not allowed to connect"),
        1203 => (
            "ER_TOO_MANY_USER_CONNECTIONS",
            "user has too many connections",
        ),
        1226 => ("ER_USER_LIMIT_REACHED", "user resource limit reached"),
        1251 => (
            "ER_NOT_SUPPORTED_AUTH_MODE",
            "authentication method not supported",
        ),
        1820 => ("ER_MUST_CHANGE_PASSWORD", "password must be changed"),
        1862 => ("ER_MUST_CHANGE_PASSWORD_LOGIN", "password expired"),
        1927 => ("ER_CONNECTION_KILLED", "connection killed"),
        _ => return None,
    })
}

/// Why a connection or a command failed. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    #[error("{during}: {source}")]
    Io {
        during: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{during}: connection closed by the server")]
    Closed { during: &'static str },
    #[error("{during}: no answer within {after:?}")]
    Timeout {
        during: &'static str,
        after: Duration,
    },
    /// The server answered with an ERR packet.
    #[error("{0}")]
    Server(ServerError),
    /// The server asked for an authentication method this client does not speak.
    #[error("unsupported authentication {0} (the account needs mysql_native_password)")]
    UnsupportedAuth(String),
    /// Bytes that do not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl MysqlError {
    /// The server's error code, when the server sent one.
    pub fn code(&self) -> Option<u16> {
        match self {
            MysqlError::Server(error) => Some(error.code),
            _ => None,
        }
    }
}

fn protocol(message: impl Into<String>) -> MysqlError {
    MysqlError::Protocol(message.into())
}

// ===== the connection =====

/// What a COM_QUERY got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryOutcome {
    /// An OK packet: MyCat's `reload @@config_all` answers affected 1, "Reload config success".
    Ok { affected: u64, info: String },
    /// A result set, read to its end so the connection stays usable; only counted.
    Rows { columns: u64, rows: u64 },
    /// An ERR packet: the command failed, the connection is still fine.
    Err(ServerError),
}

/// A logged-in connection. Each command is bounded by the connection's timeout (the one
/// given to [`connect`](MysqlConnection::connect), changed with
/// [`set_timeout`](MysqlConnection::set_timeout)); after a timeout or an I/O error, drop it.
pub struct MysqlConnection {
    stream: TcpStream,
    /// The sequence id the next packet read must carry.
    next_seq: u8,
    timeout: Duration,
    greeting: Greeting,
}

impl fmt::Debug for MysqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConnection")
            .field("peer", &self.stream.peer_addr().ok())
            .field("server_version", &self.greeting.server_version)
            .field("connection_id", &self.greeting.connection_id)
            .finish()
    }
}

impl MysqlConnection {
    /// Connect, read the greeting, log in with `mysql_native_password` (an empty password
    /// sends an empty token). The whole of it happens within `timeout`.
    pub async fn connect(
        address: SocketAddr,
        user: &str,
        password: &[u8],
        timeout: Duration,
    ) -> Result<MysqlConnection, MysqlError> {
        let deadline = Instant::now() + timeout;
        let stream = within(deadline, timeout, "connecting", async {
            TcpStream::connect(address)
                .await
                .map_err(MysqlError::Connect)
        })
        .await?;
        // Small request/answer exchanges: do not let Nagle hold the auth response back.
        let _ = stream.set_nodelay(true);
        let mut connection = MysqlConnection {
            stream,
            next_seq: 0,
            timeout,
            // Replaced as soon as the real one is read.
            greeting: Greeting::default(),
        };
        let greeting = within(deadline, timeout, "waiting for the greeting", async {
            let packet = connection.read_packet("waiting for the greeting").await?;
            parse_greeting(&packet)
        })
        .await?;
        connection.greeting = greeting;
        within(
            deadline,
            timeout,
            "authenticating",
            connection.authenticate(user, password),
        )
        .await?;
        Ok(connection)
    }

    /// The server's version string, e.g. `5.5.5-10.11.19-MariaDB-0+deb12u1` or
    /// `5.6.29-mycat-1.6.7.5-release-…`.
    pub fn server_version(&self) -> &str {
        &self.greeting.server_version
    }

    /// The server's id for this connection (the thread id in SHOW PROCESSLIST).
    pub fn connection_id(&self) -> u32 {
        self.greeting.connection_id
    }

    /// The bound on each following command (e.g. a generous one for `reload @@config_all`).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// COM_PING: Ok when the server answers OK; an ERR (MyCat offline: 1053) is an error.
    pub async fn ping(&mut self) -> Result<(), MysqlError> {
        let timeout = self.timeout;
        within(Instant::now() + timeout, timeout, "COM_PING", async {
            self.write_command(&[COM_PING], "COM_PING").await?;
            let packet = self.read_packet("COM_PING").await?;
            match packet.first() {
                Some(&OK) => Ok(()),
                Some(&ERR) => Err(MysqlError::Server(parse_err(&packet)?)),
                _ => Err(protocol(format!(
                    "COM_PING answered with {}, not OK",
                    describe(&packet)
                ))),
            }
        })
        .await
    }

    /// COM_QUERY with `sql`: an OK, a result set (drained) or an ERR from the server is an
    /// outcome; only transport and protocol failures are errors.
    pub async fn query(&mut self, sql: &str) -> Result<QueryOutcome, MysqlError> {
        let timeout = self.timeout;
        within(Instant::now() + timeout, timeout, "COM_QUERY", async {
            let mut payload = Vec::with_capacity(1 + sql.len());
            payload.push(COM_QUERY);
            payload.extend_from_slice(sql.as_bytes());
            self.write_command(&payload, "COM_QUERY").await?;
            let packet = self.read_packet("COM_QUERY").await?;
            match packet.first() {
                Some(&OK) => {
                    let ok = parse_ok(&packet)?;
                    Ok(QueryOutcome::Ok {
                        affected: ok.affected_rows,
                        info: ok.info,
                    })
                }
                Some(&ERR) => Ok(QueryOutcome::Err(parse_err(&packet)?)),
                // 0xfb is LOCAL INFILE: never asked for, and not something to answer.
                Some(&0xfb) => Err(protocol("COM_QUERY answered with a LOCAL INFILE request")),
                Some(_) => {
                    let columns = Reader::new(&packet)
                        .lenenc_int()
                        .ok_or_else(|| protocol("bad column count in a result set"))?;
                    let rows = self.drain_result_set(columns).await?;
                    Ok(QueryOutcome::Rows { columns, rows })
                }
                None => Err(protocol("COM_QUERY answered with an empty packet")),
            }
        })
        .await
    }

    /// COM_QUIT: the server closes without answering; so do we.
    pub async fn quit(mut self) -> Result<(), MysqlError> {
        let timeout = self.timeout;
        within(Instant::now() + timeout, timeout, "COM_QUIT", async {
            self.write_command(&[COM_QUIT], "COM_QUIT").await?;
            self.stream
                .shutdown()
                .await
                .map_err(|source| MysqlError::Io {
                    during: "COM_QUIT",
                    source,
                })
        })
        .await
    }

    /// Sends HandshakeResponse41 and follows the server to an OK or an ERR.
    ///
    /// ```text
    /// HandshakeResponse41 (seq 1)
    /// +----------+------------+---------+-------------+--------+--------+-----------------+
    /// | caps u32 | max packet | charset | 23 x 0x00   | user\0 | len(1) | plugin name\0   |
    /// | LE       | u32 LE     | 33 utf8 | (reserved)  |        | +token | (if PLUGIN_AUTH)|
    /// +----------+------------+---------+-------------+--------+--------+-----------------+
    /// ```
    async fn authenticate(&mut self, user: &str, password: &[u8]) -> Result<(), MysqlError> {
        let server = self.greeting.capabilities;
        for (flag, name) in [
            (CLIENT_PROTOCOL_41, "CLIENT_PROTOCOL_41"),
            (CLIENT_SECURE_CONNECTION, "CLIENT_SECURE_CONNECTION"),
        ] {
            if server & flag == 0 {
                return Err(protocol(format!("the server does not offer {name}")));
            }
        }
        let capabilities =
            CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | (server & CLIENT_PLUGIN_AUTH);
        // The greeting's plugin is what its scramble was made for; answering another plugin
        // with a native token would be refused or switched, so say which one we answer.
        let token = native_token(password, &self.greeting.scramble);
        let mut response = Vec::with_capacity(64 + user.len());
        response.extend_from_slice(&capabilities.to_le_bytes());
        response.extend_from_slice(&(MAX_PACKET as u32).to_le_bytes());
        response.push(CHARSET_UTF8_GENERAL_CI);
        response.extend_from_slice(&[0; 23]);
        response.extend_from_slice(user.as_bytes());
        response.push(0);
        response.push(token.len() as u8);
        response.extend_from_slice(&token);
        if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            response.extend_from_slice(NATIVE_PASSWORD.as_bytes());
            response.push(0);
        }
        self.write_packet(&response, "authenticating").await?;

        let mut switched = false;
        loop {
            let packet = self.read_packet("authenticating").await?;
            match packet.first() {
                Some(&OK) => return Ok(()),
                Some(&ERR) => return Err(MysqlError::Server(parse_err(&packet)?)),
                // AuthSwitchRequest: 0xfe, plugin name\0, plugin data (new scramble + \0).
                Some(&0xfe) if !switched => {
                    switched = true;
                    let mut reader = Reader::new(&packet[1..]);
                    let plugin = reader.nul_str().ok_or_else(|| {
                        // A bare 0xfe is the pre-4.1 "old password" switch.
                        MysqlError::UnsupportedAuth("mysql_old_password".to_string())
                    })?;
                    if plugin != NATIVE_PASSWORD.as_bytes() {
                        return Err(MysqlError::UnsupportedAuth(printable(plugin, 64)));
                    }
                    let data = reader.rest();
                    let scramble = data.strip_suffix(&[0]).unwrap_or(data);
                    if scramble.len() < SCRAMBLE_LEN {
                        return Err(protocol(format!(
                            "auth switch scramble of {} bytes, need {SCRAMBLE_LEN}",
                            scramble.len()
                        )));
                    }
                    let token = native_token(password, &scramble[..SCRAMBLE_LEN]);
                    self.write_packet(&token, "authenticating").await?;
                }
                // AuthMoreData: the caching_sha2_password or sha256 dance, not spoken here.
                Some(&0x01) => {
                    return Err(MysqlError::UnsupportedAuth(
                        "caching_sha2_password (more data requested)".to_string(),
                    ))
                }
                _ => {
                    return Err(protocol(format!(
                        "unexpected {} while authenticating",
                        describe(&packet)
                    )))
                }
            }
        }
    }

    /// Reads the rest of a text result set: column definitions, EOF, rows, EOF (or ERR).
    /// Without CLIENT_DEPRECATE_EOF an EOF packet is 0xfe and under 9 bytes; a row that
    /// starts with 0xfe (an 8-byte length) is always longer.
    async fn drain_result_set(&mut self, columns: u64) -> Result<u64, MysqlError> {
        for _ in 0..columns {
            self.read_packet("reading column definitions").await?;
        }
        let eof = self.read_packet("reading column definitions").await?;
        if !is_eof(&eof) {
            return Err(protocol("no EOF after the column definitions"));
        }
        let mut rows = 0u64;
        loop {
            let packet = self.read_packet("reading rows").await?;
            if is_eof(&packet) {
                return Ok(rows);
            }
            if packet.first() == Some(&ERR) {
                return Err(MysqlError::Server(parse_err(&packet)?));
            }
            rows += 1;
        }
    }

    /// Starts a command: its first packet carries sequence id 0.
    async fn write_command(
        &mut self,
        payload: &[u8],
        during: &'static str,
    ) -> Result<(), MysqlError> {
        self.next_seq = 0;
        self.write_packet(payload, during).await
    }

    async fn write_packet(
        &mut self,
        payload: &[u8],
        during: &'static str,
    ) -> Result<(), MysqlError> {
        // Anything we send is far below the 16 MiB split point.
        if payload.len() >= MAX_PACKET {
            return Err(protocol(format!(
                "refusing to send a {}-byte packet",
                payload.len()
            )));
        }
        let mut frame = Vec::with_capacity(4 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
        frame.push(self.next_seq);
        frame.extend_from_slice(payload);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.stream
            .write_all(&frame)
            .await
            .map_err(|source| MysqlError::Io { during, source })
    }

    /// Reads one packet, checking its sequence id and its size before reading the payload.
    async fn read_packet(&mut self, during: &'static str) -> Result<Vec<u8>, MysqlError> {
        let mut header = [0u8; 4];
        read_exact(&mut self.stream, &mut header, during).await?;
        let (length, seq) = parse_header(header)?;
        // Checked after the length so that an oversized (garbage) header is reported as such.
        if seq != self.next_seq {
            return Err(protocol(format!(
                "packet with sequence id {seq}, expected {}",
                self.next_seq
            )));
        }
        let mut payload = vec![0u8; length];
        read_exact(&mut self.stream, &mut payload, during).await?;
        self.next_seq = seq.wrapping_add(1);
        Ok(payload)
    }
}

async fn read_exact(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    during: &'static str,
) -> Result<(), MysqlError> {
    match stream.read_exact(buffer).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            Err(MysqlError::Closed { during })
        }
        Err(source) => Err(MysqlError::Io { during, source }),
    }
}

/// Runs `step` until `deadline`, naming the step when it is the one that ran out of time.
async fn within<T>(
    deadline: Instant,
    total: Duration,
    during: &'static str,
    step: impl std::future::Future<Output = Result<T, MysqlError>>,
) -> Result<T, MysqlError> {
    match tokio::time::timeout_at(deadline, step).await {
        Ok(result) => result,
        Err(_) => Err(MysqlError::Timeout {
            during,
            after: total,
        }),
    }
}

// ===== packets =====

const OK: u8 = 0x00;
const ERR: u8 = 0xff;
const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0e;

const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
/// utf8_general_ci: what the reference prototype and HAProxy send; the probe sends no text
/// the charset matters for except the user name.
const CHARSET_UTF8_GENERAL_CI: u8 = 33;
const NATIVE_PASSWORD: &str = "mysql_native_password";
const SCRAMBLE_LEN: usize = 20;

/// `(payload length, sequence id)` of a 4-byte header; refuses lengths over [`MAX_PACKET`]
/// (which also refuses 0xffffff, the start of a split packet, never needed here).
fn parse_header(header: [u8; 4]) -> Result<(usize, u8), MysqlError> {
    let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    if length > MAX_PACKET {
        return Err(protocol(format!(
            "packet of {length} bytes is over the {MAX_PACKET}-byte limit"
        )));
    }
    Ok((length, header[3]))
}

/// Protocol::HandshakeV10, the fields the client needs.
///
/// ```text
/// 0a | server version\0 | conn id u32 | scramble[0..8] | 00 | caps low u16
///    | charset u8 | status u16 | caps high u16 | auth data len u8 | 10 reserved
///    | scramble[8..] (max(13, len-8) bytes, NUL-ended) | auth plugin name\0
/// ```
/// MariaDB puts its extended capabilities in the last 4 reserved bytes when CLIENT_MYSQL
/// (bit 0) is clear; the client ignores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Greeting {
    pub server_version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    /// The 20-byte challenge (both parts, without the trailing NUL).
    pub scramble: Vec<u8>,
    /// The plugin the scramble is for, empty when the server does not say.
    pub auth_plugin: String,
}

/// Parses the first packet of a connection: a greeting, or the ERR a server sends instead
/// (1040, 1129, 1130), which becomes [`MysqlError::Server`].
pub fn parse_greeting(packet: &[u8]) -> Result<Greeting, MysqlError> {
    match packet.first() {
        Some(&10) => {}
        Some(&ERR) => return Err(MysqlError::Server(parse_err(packet)?)),
        Some(&version) => {
            return Err(protocol(format!(
                "greeting with protocol version {version}, only 10 is spoken"
            )))
        }
        None => return Err(protocol("empty greeting")),
    }
    let truncated = || protocol("truncated greeting");
    let mut reader = Reader::new(&packet[1..]);
    let server_version = printable(reader.nul_str().ok_or_else(truncated)?, 128);
    let connection_id = reader.u32().ok_or_else(truncated)?;
    let mut scramble = reader.take(8).ok_or_else(truncated)?.to_vec();
    reader.take(1).ok_or_else(truncated)?;
    let mut capabilities = u32::from(reader.u16().ok_or_else(truncated)?);
    let mut auth_plugin = String::new();
    // Servers older than 4.1 stop here; they cannot do secure authentication.
    if !reader.is_empty() {
        let _charset = reader.u8().ok_or_else(truncated)?;
        let _status = reader.u16().ok_or_else(truncated)?;
        capabilities |= u32::from(reader.u16().ok_or_else(truncated)?) << 16;
        let auth_data_len = usize::from(reader.u8().ok_or_else(truncated)?);
        reader.take(10).ok_or_else(truncated)?;
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let part2_len = auth_data_len.saturating_sub(8).max(13);
            let part2 = reader.take(part2_len).ok_or_else(truncated)?;
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            scramble.extend_from_slice(part2);
        }
        if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            // Some servers omit the final NUL (MySQL bug #59453): take the rest then.
            let rest = reader.rest();
            let name = rest.split(|&b| b == 0).next().unwrap_or(rest);
            auth_plugin = printable(name, 64);
        }
    }
    if capabilities & CLIENT_SECURE_CONNECTION == 0 {
        return Err(protocol(
            "the server does not offer CLIENT_SECURE_CONNECTION (pre-4.1 authentication)",
        ));
    }
    if scramble.len() < SCRAMBLE_LEN {
        return Err(protocol(format!(
            "greeting scramble of {} bytes, need {SCRAMBLE_LEN}",
            scramble.len()
        )));
    }
    scramble.truncate(SCRAMBLE_LEN);
    Ok(Greeting {
        server_version,
        connection_id,
        capabilities,
        scramble,
        auth_plugin,
    })
}

/// Parses an ERR packet (`packet[0] == 0xff`).
pub fn parse_err(packet: &[u8]) -> Result<ServerError, MysqlError> {
    let mut reader = Reader::new(packet);
    if reader.u8() != Some(ERR) {
        return Err(protocol("not an ERR packet"));
    }
    let code = reader
        .u16()
        .ok_or_else(|| protocol("truncated ERR packet"))?;
    let mut rest = reader.rest();
    // The SQL state is there once capabilities are agreed (after the greeting), and even
    // then a '#' is how to tell; a pre-greeting error starts its message right away.
    let mut state = None;
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        state = Some(printable(&rest[1..6], 5));
        rest = &rest[6..];
    }
    Ok(ServerError {
        code,
        state,
        message: printable(rest, 512),
    })
}

/// The OK packet's fields the client reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: String,
}

/// Parses an OK packet (`packet[0] == 0x00`), as sent to a CLIENT_PROTOCOL_41 client
/// without CLIENT_SESSION_TRACK: `00 | affected lenenc | insert id lenenc | status u16 |
/// warnings u16 | info (rest)`.
pub fn parse_ok(packet: &[u8]) -> Result<OkPacket, MysqlError> {
    let truncated = || protocol("truncated OK packet");
    let mut reader = Reader::new(packet);
    if reader.u8() != Some(OK) {
        return Err(protocol("not an OK packet"));
    }
    let affected_rows = reader.lenenc_int().ok_or_else(truncated)?;
    let last_insert_id = reader.lenenc_int().ok_or_else(truncated)?;
    // Status and warnings are absent in some minimal OKs (old servers, proxies).
    let status = reader.u16().unwrap_or(0);
    let warnings = reader.u16().unwrap_or(0);
    Ok(OkPacket {
        affected_rows,
        last_insert_id,
        status,
        warnings,
        info: printable(reader.rest(), 512),
    })
}

fn is_eof(packet: &[u8]) -> bool {
    packet.first() == Some(&0xfe) && packet.len() < 9
}

/// For error messages: the first byte and the size, not the content.
fn describe(packet: &[u8]) -> String {
    match packet.first() {
        Some(first) => format!("a packet starting {first:#04x} ({} bytes)", packet.len()),
        None => "an empty packet".to_string(),
    }
}

/// Server text made safe for a log line: lossy UTF-8, control characters replaced, cut to
/// `max` characters.
fn printable(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// The `mysql_native_password` token: `SHA1(pw) XOR SHA1(scramble ‖ SHA1(SHA1(pw)))`, and
/// empty for an empty password (what the server expects of an account without one).
pub fn native_token(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(scramble);
    hasher.update(stage2);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// A bounds-checked cursor: every read returns `None` past the end, never panics.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-encoded integer: < 0xfb itself, 0xfc + u16, 0xfd + u24, 0xfe + u64.
    fn lenenc_int(&mut self) -> Option<u64> {
        match self.u8()? {
            first @ 0..=0xfa => Some(u64::from(first)),
            0xfc => self.u16().map(u64::from),
            0xfd => self
                .take(3)
                .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], 0]))),
            0xfe => self.take(8).map(|b| {
                let mut word = [0u8; 8];
                word.copy_from_slice(b);
                u64::from_le_bytes(word)
            }),
            // 0xfb is NULL and 0xff an error marker: not an integer.
            _ => None,
        }
    }

    /// A NUL-terminated string, without its NUL; `None` when there is no NUL.
    fn nul_str(&mut self) -> Option<&'a [u8]> {
        let end = self.bytes.iter().position(|&b| b == 0)?;
        let text = self.take(end)?;
        self.take(1)?;
        Some(text)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The greeting of MariaDB 10.11.19 (shared reference §4.1), header included.
    const MARIADB_GREETING: &[u8] = b"\x64\x00\x00\x00\x0a5.5.5-10.11.19-MariaDB-0+deb12u1\x00\
        \x09\x00\x00\x00710;xj/F\x00\xfe\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\
        \x1d\x00\x00\x00TS&_1qg0ZUx}\x00mysql_native_password\x00";

    #[test]
    fn greeting_of_mariadb_10_11() {
        let (length, seq) = parse_header([
            MARIADB_GREETING[0],
            MARIADB_GREETING[1],
            MARIADB_GREETING[2],
            MARIADB_GREETING[3],
        ])
        .unwrap();
        assert_eq!((length, seq), (100, 0));
        assert_eq!(MARIADB_GREETING.len(), 104);
        let greeting = parse_greeting(&MARIADB_GREETING[4..]).unwrap();
        assert_eq!(greeting.server_version, "5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_eq!(greeting.connection_id, 9);
        assert_eq!(greeting.capabilities, 0x81ff_f7fe);
        assert_eq!(greeting.scramble, b"710;xj/FTS&_1qg0ZUx}");
        assert_eq!(greeting.auth_plugin, "mysql_native_password");
    }

    #[test]
    fn native_token_matches_known_vectors() {
        // go-sql-driver/mysql auth_test.go (TestAuthFastNativePassword): "secret".
        let scramble = [
            70, 114, 92, 94, 1, 38, 11, 116, 63, 114, 23, 101, 126, 103, 26, 95, 81, 17, 24, 21,
        ];
        let expected = [
            53, 177, 140, 159, 251, 189, 127, 53, 109, 252, 172, 50, 211, 192, 240, 164, 26, 48,
            207, 45,
        ];
        assert_eq!(native_token(b"secret", &scramble), expected);
        // SHA1(SHA1("secret")) is what PASSWORD('secret') shows: the stored hash.
        let stage2 = Sha1::digest(Sha1::digest(b"secret"));
        let hex: String = stage2.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, "14E65567ABDB5135D0CFD9A70B3032C179A49EE7");
        // An empty password sends an empty token.
        assert!(native_token(b"", &scramble).is_empty());
    }

    #[test]
    fn errors_sent_instead_of_the_greeting() {
        // Shared reference §4.2, without the 4-byte header.
        let too_many = b"\xff\x10\x04Too many connections";
        let error = match parse_greeting(too_many) {
            Err(MysqlError::Server(error)) => error,
            other => panic!("expected a server error, got {other:?}"),
        };
        assert_eq!(error.code, 1040);
        assert_eq!(error.state, None);
        assert_eq!(error.message, "Too many connections");
        assert_eq!(error.name(), Some("ER_CON_COUNT_ERROR"));
        assert_eq!(
            error.to_string(),
            "ERR 1040 too many connections (ER_CON_COUNT_ERROR): Too many connections"
        );

        let blocked = b"\xff\x69\x04Host '127.0.0.3' is blocked because of many connection errors; unblock with 'mariadb-admin flush-hosts'";
        let error = parse_err(blocked).unwrap();
        assert_eq!(error.code, 1129);
        assert_eq!(error.name(), Some("ER_HOST_IS_BLOCKED"));
        assert!(error.to_string().contains("host blocked"));

        let not_allowed =
            b"\xff\x6a\x04Host '127.0.0.3' is not allowed to connect to this MariaDB server";
        assert_eq!(parse_err(not_allowed).unwrap().code, 1130);
    }

    #[test]
    fn error_after_auth_carries_the_sql_state() {
        let denied =
            b"\xff\x15\x04#28000Access denied for user 'mon'@'localhost' (using password: NO)";
        let error = parse_err(denied).unwrap();
        assert_eq!(error.code, 1045);
        assert_eq!(error.state.as_deref(), Some("28000"));
        assert_eq!(
            error.message,
            "Access denied for user 'mon'@'localhost' (using password: NO)"
        );
        assert_eq!(
            error.to_string(),
            "ERR 1045 access denied (ER_ACCESS_DENIED_ERROR) #28000: Access denied for user \
             'mon'@'localhost' (using password: NO)"
        );
    }

    #[test]
    fn ok_packets() {
        // The login OK of the reference: 00 00 00 0200 0000.
        let ok = parse_ok(b"\x00\x00\x00\x02\x00\x00\x00").unwrap();
        assert_eq!((ok.affected_rows, ok.status, ok.info.as_str()), (0, 2, ""));
        // MyCat's reload answer: affected 1, "Reload config success".
        let ok = parse_ok(b"\x00\x01\x00\x02\x00\x00\x00Reload config success").unwrap();
        assert_eq!(ok.affected_rows, 1);
        assert_eq!(ok.info, "Reload config success");
        let ok = parse_ok(b"\x00\xfc\x10\x27\xfd\x01\x02\x03").unwrap();
        assert_eq!((ok.affected_rows, ok.last_insert_id), (10_000, 0x030201));
        assert!(parse_ok(b"\x00\xfc\x10").is_err());
        assert!(parse_ok(b"\x00\xfb\x00").is_err());
    }

    #[test]
    fn oversized_and_split_headers_are_refused() {
        assert!(parse_header([0, 0, 0x10, 0]).is_ok()); // exactly 1 MiB
        assert!(parse_header([1, 0, 0x10, 0]).is_err());
        assert!(parse_header([0xff, 0xff, 0xff, 0]).is_err());
    }

    #[test]
    fn server_text_is_made_printable_and_bounded() {
        assert_eq!(printable(b"a\nb\x1b[31m\xff", 64), "a?b?[31m\u{fffd}");
        assert_eq!(printable(b"abcdef", 3), "abc…");
    }

    #[test]
    fn every_truncation_of_the_greeting_is_an_error() {
        let payload = &MARIADB_GREETING[4..];
        // Cutting inside the fixed part, the scramble or the NUL of the scramble is an
        // error; only the plugin name may be cut (servers that omit its NUL exist).
        let plugin_starts = payload.len() - "mysql_native_password\0".len();
        for end in 0..plugin_starts {
            assert!(
                parse_greeting(&payload[..end]).is_err(),
                "accepted {end} bytes"
            );
        }
        for end in plugin_starts..=payload.len() {
            let greeting = parse_greeting(&payload[..end]).unwrap();
            assert_eq!(greeting.scramble.len(), 20);
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic generator (xorshift): no dependency, same cases each run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let payload = &MARIADB_GREETING[4..];
        for _ in 0..20_000 {
            let length = (next() % 160) as usize;
            let mut bytes: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            // Half the cases start like a real greeting, ERR or OK so parsing goes deep.
            match next() % 6 {
                0 => bytes.insert(0, 10),
                1 => bytes.insert(0, ERR),
                2 => bytes.insert(0, OK),
                3 => {
                    bytes = payload.to_vec();
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                    bytes.truncate((next() as usize) % (payload.len() + 1));
                }
                _ => {}
            }
            let _ = parse_greeting(&bytes);
            let _ = parse_err(&bytes);
            let _ = parse_ok(&bytes);
            let _ = Reader::new(&bytes).lenenc_int();
        }
    }

    /// A one-connection fake server: sends the MariaDB greeting, reads the login, answers
    /// with `first_answer` (seq 2); when that is an AuthSwitchRequest, checks the token
    /// (seq 3) against the new scramble and answers OK (seq 4).
    async fn fake_server(first_answer: Vec<u8>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(MARIADB_GREETING).await.unwrap();
            let mut header = [0u8; 4];
            stream.read_exact(&mut header).await.unwrap();
            let mut login = vec![0u8; usize::from(header[0])];
            stream.read_exact(&mut login).await.unwrap();
            assert_eq!(header[3], 1);
            let mut frame = vec![first_answer.len() as u8, 0, 0, 2];
            frame.extend_from_slice(&first_answer);
            stream.write_all(&frame).await.unwrap();
            if first_answer.starts_with(b"\xfemysql_native_password\0") {
                stream.read_exact(&mut header).await.unwrap();
                assert_eq!((header[0], header[3]), (20, 3));
                let mut token = [0u8; 20];
                stream.read_exact(&mut token).await.unwrap();
                assert_eq!(token[..], native_token(b"pw", b"ABCDEFGHIJKLMNOPQRST")[..]);
                stream
                    .write_all(b"\x07\x00\x00\x04\x00\x00\x00\x02\x00\x00\x00")
                    .await
                    .unwrap();
            }
            // Hold the connection until the client is done with it.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        });
        address
    }

    #[tokio::test]
    async fn auth_switch_to_native_password_is_followed() {
        let address =
            fake_server(b"\xfemysql_native_password\0ABCDEFGHIJKLMNOPQRST\0".to_vec()).await;
        let connection = MysqlConnection::connect(address, "u", b"pw", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(connection.connection_id(), 9);
    }

    #[tokio::test]
    async fn other_auth_methods_are_unsupported() {
        let address =
            fake_server(b"\xfecaching_sha2_password\0ABCDEFGHIJKLMNOPQRST\0".to_vec()).await;
        match MysqlConnection::connect(address, "u", b"pw", Duration::from_secs(2)).await {
            Err(MysqlError::UnsupportedAuth(plugin)) => assert_eq!(plugin, "caching_sha2_password"),
            other => panic!("expected UnsupportedAuth, got {other:?}"),
        }
        let address = fake_server(b"\x01\x04".to_vec()).await;
        assert!(matches!(
            MysqlConnection::connect(address, "u", b"pw", Duration::from_secs(2)).await,
            Err(MysqlError::UnsupportedAuth(_))
        ));
    }

    #[test]
    fn password_file_loses_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("vk-mysql-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        for (content, expected) in [
            (&b"s3cret\n"[..], &b"s3cret"[..]),
            (b"s3cret\r\n", b"s3cret"),
            (b"s3cret\n\n", b"s3cret\n"),
            (b"s3cret", b"s3cret"),
            (b" sp ace \n", b" sp ace "),
            (b"", b""),
        ] {
            std::fs::write(&path, content).unwrap();
            assert_eq!(read_password_file(&path).unwrap(), expected);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
