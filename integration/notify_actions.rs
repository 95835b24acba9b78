//! The built-in actions against real servers the tests start themselves.
//!
//! `haproxy_reload`: HAProxy 2.6 in master-worker mode (`-W -S /run/haproxy-master.sock`)
//! inside a lab node (docs/lab.md), its only frontend answering `gen<N>` on 192.0.2.11:80 so
//! which configuration serves is visible from the lab client. The action runs in the test
//! process and reaches the master socket and the config through the node's root path.
//! HAProxy 2.7+'s synchronous `Success=` answer, which no installed HAProxy gives, is
//! covered by a fake master CLI on a unix socket in a temporary directory.
//!
//! `mysql_admin`: a MariaDB of the test's own (`support/mariadb.rs`). MariaDB does not
//! speak MyCat's dialect, so `DO 1` is the OK path and `reload @@config_all` the ERR path
//! (1064); the general query log proves nothing but the statement is sent.
//!
//! Needs root (the lab), `/usr/sbin/haproxy`, `mariadbd` and `mariadb-install-db`.

#[path = "lab/mod.rs"]
mod lab;
#[path = "support/mariadb.rs"]
mod mariadb;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab::{Host, Lab};
use mariadb::{Mariadb, PASSWORD, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vipkeeper::notify::haproxy_reload::{self, parse_show_proc, ShowProc};
use vipkeeper::notify::{mysql_admin, HaproxyReloadSettings, MysqlAdminSettings};

const HAPROXY: &str = "/usr/sbin/haproxy";
const MASTER_SOCKET: &str = "/run/haproxy-master.sock";
const CFG: &str = "/run/haproxy.cfg";
const ACTION_TIMEOUT: Duration = Duration::from_secs(5);

// ===== haproxy_reload against a real HAProxy 2.6 =====

fn haproxy_cfg(generation: u32, broken: bool) -> String {
    format!(
        "global\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 192.0.2.11:80\n\
         \x20   http-request return status 200 content-type text/plain string \"gen{generation}\"\n{}",
        if broken { "    no_such_keyword on\n" } else { "" }
    )
}

/// `show proc` by the test itself (not through the action's code), raw and parsed.
fn show_proc(socket: &Path) -> (String, ShowProc) {
    let mut conn = UnixStream::connect(socket).expect("connect to the master CLI");
    conn.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    conn.write_all(b"show proc\n").expect("send show proc");
    // The master CLI keeps the connection open after a command; a half-close ends it
    // (the action sends `show proc;quit` instead: two ways, both checked here).
    conn.shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("read show proc");
    let parsed = parse_show_proc(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    (text, parsed)
}

/// What HAProxy answers on 192.0.2.11:80, asked from the lab client.
fn http_get(client: &Host) -> String {
    client
        .run_ok(
            &[
                "bash",
                "-c",
                "exec 3<>/dev/tcp/192.0.2.11/80; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3",
            ],
            Duration::from_secs(3),
        )
        .expect("HTTP request through haproxy")
}

fn worker_pids(proc: &ShowProc) -> Vec<u32> {
    proc.workers.iter().map(|w| w.pid).collect()
}

#[tokio::test]
async fn reload_real_haproxy_good_checked_broken_unchecked_broken_missing_socket() {
    let lab = Lab::builder("hap-reload")
        .nodes(1)
        .client(true)
        .build()
        .expect("lab");
    let node = lab.node(1);
    node.write_file(Path::new(CFG), haproxy_cfg(1, false).as_bytes())
        .expect("write cfg");
    let master = node
        .spawn(
            &[
                HAPROXY,
                "-W",
                "-S",
                &format!("{MASTER_SOCKET},level,admin"),
                "-f",
                CFG,
            ],
            &[],
        )
        .expect("spawn haproxy");
    let socket: PathBuf = node.root_path(Path::new(MASTER_SOCKET));
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        if socket.exists() {
            let (_, proc) = show_proc(&socket);
            if !proc.workers.is_empty() {
                break proc;
            }
        }
        assert!(
            Instant::now() < deadline,
            "haproxy master not ready: {}\n{}",
            master.stderr(),
            lab.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(http_get(lab.client()).contains("gen1"));

    let checked = HaproxyReloadSettings {
        master_socket: socket.clone(),
        check_config: Some(node.root_path(Path::new(CFG))),
        haproxy_binary: PathBuf::from(HAPROXY),
        timeout: ACTION_TIMEOUT,
    };
    let unchecked = HaproxyReloadSettings {
        check_config: None,
        ..checked.clone()
    };

    // A good config: a new worker, which serves the new configuration.
    node.write_file(Path::new(CFG), haproxy_cfg(2, false).as_bytes())
        .expect("write cfg");
    let note = haproxy_reload::reload(&checked)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", master.stderr()));
    eprintln!("good config: {note}");
    let (text, good) = show_proc(&socket);
    assert_eq!(good.master.reloads, first.master.reloads + 1, "{text}");
    let new_worker = worker_pids(&good);
    assert_eq!(new_worker.len(), 1, "{text}");
    assert!(!worker_pids(&first).contains(&new_worker[0]), "{text}");
    assert_eq!(
        note,
        format!(
            "reload {}: new worker {}",
            good.master.reloads, new_worker[0]
        )
    );
    assert!(http_get(lab.client()).contains("gen2"));

    // A broken config with the check: refused before any reload.
    node.write_file(Path::new(CFG), haproxy_cfg(3, true).as_bytes())
        .expect("write cfg");
    let reason = haproxy_reload::reload(&checked).await.unwrap_err();
    eprintln!("broken config, checked: {reason}");
    assert!(reason.contains("config check"), "{reason}");
    assert!(reason.contains("no_such_keyword"), "{reason}");
    assert!(reason.contains(MASTER_SOCKET), "{reason}");
    let (text, after_check) = show_proc(&socket);
    assert_eq!(after_check.master.reloads, good.master.reloads, "{text}");
    assert_eq!(worker_pids(&after_check), new_worker, "{text}");
    assert!(http_get(lab.client()).contains("gen2"));

    // The same without the check: HAProxy tries, fails, keeps the old worker; the
    // verification says so from `[failed: 1]`.
    let reason = haproxy_reload::reload(&unchecked).await.unwrap_err();
    eprintln!("broken config, unchecked: {reason}");
    assert!(reason.contains("reload failed"), "{reason}");
    assert!(reason.contains("[failed: 1]"), "{reason}");
    assert!(
        reason.contains(&format!("worker {} still serving", new_worker[0])),
        "{reason}"
    );
    let (text, after_failure) = show_proc(&socket);
    assert_eq!(
        after_failure.master.reloads,
        good.master.reloads + 1,
        "{text}"
    );
    assert_eq!(worker_pids(&after_failure), new_worker, "{text}");
    assert!(http_get(lab.client()).contains("gen2"));

    // No master socket: an error at once, nothing run.
    let missing = HaproxyReloadSettings {
        master_socket: node.root_path(Path::new("/run/no-such-master.sock")),
        ..checked.clone()
    };
    let started = Instant::now();
    let reason = haproxy_reload::reload(&missing).await.unwrap_err();
    eprintln!("no master socket: {reason}");
    assert!(reason.contains("no-such-master.sock"), "{reason}");
    assert!(reason.contains("absent"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

// ===== haproxy_reload against a fake master CLI (2.7+ answers, silence) =====

/// How the fake master answers `reload`.
#[derive(Clone, Copy)]
enum FakeReload {
    /// 2.7+: `Success=1`, a new worker afterwards.
    Success,
    /// 2.7+: `Success=0` and the startup log's alerts.
    Failure,
    /// 2.6-like empty answer, but the reload count never moves.
    NothingHappens,
    /// Accepts `reload` and never answers.
    Hang,
}

/// A master CLI on a unix socket in a temporary directory, one command per connection.
struct FakeMaster {
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl FakeMaster {
    fn start(name: &str, mode: FakeReload) -> FakeMaster {
        let dir =
            std::env::temp_dir().join(format!("vk-fake-master-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let listener = tokio::net::UnixListener::bind(dir.join("master.sock")).expect("bind");
        let task = tokio::spawn(async move {
            let mut reloaded = false;
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while stream.read(&mut byte).await.unwrap_or(0) == 1 && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                // `a;b` runs both, as HAProxy does; only `quit` or `reload` end the
                // connection (the 2.6 master CLI keeps it open after other commands).
                let text = String::from_utf8_lossy(&line).into_owned();
                let commands: Vec<&str> = text.split(';').map(str::trim).collect();
                let first = commands.first().copied().unwrap_or_default();
                let closes = first == "reload" || commands.contains(&"quit");
                let reply = match (first.as_bytes(), mode) {
                    (b"show proc", _) => {
                        let (reloads, worker) = if reloaded { (1, 200) } else { (0, 100) };
                        format!(
                            "#<PID>          <type>          <reloads>       <uptime>        <version>\n\
                             1               master          {reloads} [failed: 0]   0d00h00m01s     2.9.0\n\
                             # workers\n\
                             {worker}             worker          0               0d00h00m01s     2.9.0\n\
                             # programs\n\n"
                        )
                    }
                    (b"reload", FakeReload::Success) => {
                        reloaded = true;
                        "Success=1\n--\n[NOTICE]   (1) : Loading success.\n".to_owned()
                    }
                    (b"reload", FakeReload::Failure) => "Success=0\n--\n\
                         [NOTICE]   (1) : haproxy version is 2.9.0\n\
                         [ALERT]    (1) : config : parsing [/etc/haproxy/haproxy.cfg:9] : unknown keyword 'x'\n\
                         [ALERT]    (1) : config : Fatal errors found in configuration.\n"
                        .to_owned(),
                    (b"reload", FakeReload::NothingHappens) => String::new(),
                    (b"reload", FakeReload::Hang) => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        String::new()
                    }
                    _ => "Unknown command.\n".to_owned(),
                };
                let _ = stream.write_all(reply.as_bytes()).await;
                if !closes {
                    // Held until the client leaves, like the real one.
                    let mut rest = Vec::new();
                    let _ = tokio::time::timeout(
                        Duration::from_secs(30),
                        stream.read_to_end(&mut rest),
                    )
                    .await;
                }
                // Dropping the stream closes it: the client reads to EOF.
            }
        });
        FakeMaster { dir, task }
    }

    fn settings(&self, timeout: Duration) -> HaproxyReloadSettings {
        HaproxyReloadSettings {
            master_socket: self.dir.join("master.sock"),
            check_config: None,
            haproxy_binary: PathBuf::from(HAPROXY),
            timeout,
        }
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn reload_replies_of_haproxy_2_7_and_later_and_silence() {
    let fake = FakeMaster::start("success", FakeReload::Success);
    assert_eq!(
        haproxy_reload::reload(&fake.settings(ACTION_TIMEOUT)).await,
        Ok("reload 1: new worker 200".to_owned())
    );

    let fake = FakeMaster::start("failure", FakeReload::Failure);
    let reason = haproxy_reload::reload(&fake.settings(ACTION_TIMEOUT))
        .await
        .unwrap_err();
    assert!(reason.contains("Success=0"), "{reason}");
    assert!(reason.contains("unknown keyword 'x'"), "{reason}");
    assert!(!reason.contains("NOTICE"), "{reason}");

    // Empty answer, count never moves: not confirmed, within the timeout.
    let fake = FakeMaster::start("nothing", FakeReload::NothingHappens);
    let timeout = Duration::from_millis(400);
    let started = Instant::now();
    let reason = haproxy_reload::reload(&fake.settings(timeout))
        .await
        .unwrap_err();
    assert!(reason.contains("not confirmed"), "{reason}");
    assert!(started.elapsed() < timeout + Duration::from_millis(150));

    // No answer at all: bounded by the timeout.
    let fake = FakeMaster::start("hang", FakeReload::Hang);
    let started = Instant::now();
    let reason = haproxy_reload::reload(&fake.settings(timeout))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(reason.contains("reload"), "{reason}");
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_millis(150),
        "{elapsed:?}"
    );
}

// ===== mysql_admin against a real MariaDB =====

fn admin_settings(server: &Mariadb, password: &str, statement: &str) -> MysqlAdminSettings {
    MysqlAdminSettings {
        address: server.address(),
        user: USER.to_owned(),
        password_file: server.password_file(password),
        statement: statement.to_owned(),
        timeout: Duration::from_secs(3),
    }
}

/// The queries of every `vk_check` session in MariaDB's general log, per session, in order.
/// Lines look like `<time>\t    12 Connect\tvk_check@localhost on  using TCP/IP` and
/// `\t\t    12 Query\tDO 1` (time only on the first entry of a second).
fn sessions_of_check_user(log: &str) -> Vec<Vec<String>> {
    let mut ids: Vec<(String, Vec<String>)> = Vec::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let Some(at) = fields.iter().position(|f| {
            let mut words = f.split_whitespace();
            matches!((words.next(), words.next(), words.next()),
                (Some(id), Some(_), None) if id.bytes().all(|b| b.is_ascii_digit()))
        }) else {
            continue;
        };
        let mut words = fields[at].split_whitespace();
        let (id, command) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let argument = fields
            .get(at + 1..)
            .map(|rest| rest.join("\t"))
            .unwrap_or_default();
        match command {
            "Connect" if argument.starts_with(&format!("{USER}@")) => {
                ids.push((id.to_owned(), Vec::new()))
            }
            "Query" => {
                if let Some((_, queries)) = ids.iter_mut().rev().find(|(known, _)| known == id) {
                    queries.push(argument);
                }
            }
            _ => {}
        }
    }
    ids.into_iter().map(|(_, queries)| queries).collect()
}

#[tokio::test]
async fn mysql_admin_ok_err_wrong_password_only_the_statement_silent_and_down() {
    let mut server = Mariadb::start(&["--general-log", "--general-log-file=general.log"]);
    let address = server.address().to_string();

    let result = mysql_admin::run(&admin_settings(&server, PASSWORD, "DO 1")).await;
    assert_eq!(result, Ok("OK, affected 0".to_owned()), "{}", server.log());

    // MyCat's statement is a syntax error to MariaDB: the ERR path, reported whole.
    let reason = mysql_admin::run(&admin_settings(&server, PASSWORD, "reload @@config_all"))
        .await
        .unwrap_err();
    assert!(reason.contains("ERR 1064"), "{reason}");
    assert!(reason.contains("ER_PARSE_ERROR"), "{reason}");
    assert!(reason.contains(&address), "{reason}");
    assert!(reason.contains("reload @@config_all"), "{reason}");

    // The server saw the login and exactly the configured statement, nothing else.
    let log_path = server.dir().join("data").join("general.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    let sessions = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let sessions = sessions_of_check_user(&log);
        if sessions.len() >= 2 && sessions[1].len() == 1 || Instant::now() > deadline {
            break (sessions, log);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        sessions.0,
        vec![
            vec!["DO 1".to_owned()],
            vec!["reload @@config_all".to_owned()]
        ],
        "general log:\n{}",
        sessions.1
    );

    // Wrong password: 1045, and no password in the result.
    let reason = mysql_admin::run(&admin_settings(&server, "not the password", "DO 1"))
        .await
        .unwrap_err();
    assert!(reason.contains("ERR 1045"), "{reason}");
    assert!(!reason.contains("not the password") && !reason.contains(PASSWORD));

    // An unreadable password file names the file.
    let mut no_file = admin_settings(&server, PASSWORD, "DO 1");
    no_file.password_file = server.dir().join("no-such-file");
    let reason = mysql_admin::run(&no_file).await.unwrap_err();
    assert!(reason.contains("no-such-file"), "{reason}");

    // A listener that never greets (the kernel accepts): an error within the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut quiet = admin_settings(&server, PASSWORD, "reload @@config_all");
    quiet.address = silent.local_addr().expect("address");
    quiet.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let reason = mysql_admin::run(&quiet).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(reason.contains(&quiet.address.to_string()), "{reason}");
    assert!(reason.contains("greeting"), "{reason}");
    assert!(
        elapsed >= quiet.timeout && elapsed < Duration::from_millis(450),
        "{elapsed:?}"
    );
    drop(silent);

    // Server down: refused at once, naming the address.
    let settings = admin_settings(&server, PASSWORD, "DO 1");
    server.stop();
    let started = Instant::now();
    let reason = mysql_admin::run(&settings).await.unwrap_err();
    assert!(reason.contains("refused"), "{reason}");
    assert!(reason.contains(&address), "{reason}");
    assert!(started.elapsed() < Duration::from_millis(500));
}
