//! A MariaDB server owned by one test, for the targets that talk to a real one
//! (`health_mysql`, `notify_actions`), included with
//! `#[path = "support/mariadb.rs"] mod mariadb;`.
//!
//! Every server is a child of the test: its own temporary datadir (`mariadb-install-db`),
//! listening on 127.0.0.1 (or a given address) at a free port plus a unix socket in the same
//! temporary directory, started with `--no-defaults` so no system option file (and no system
//! socket, pid file or datadir) is ever read. [`Mariadb`]'s Drop kills exactly that child and
//! removes the directory, on success and on panic. The packaged service is never involved.
//!
//! Needs `mariadbd` and `mariadb-install-db` (`scripts/install-deps` installs
//! `mariadb-server` without starting it).

// Each including target uses a different part of it.
#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vipkeeper::health::mysql::MysqlSettings;

pub const USER: &str = "vk_check";
/// Has a space and punctuation, so quoting or trimming mistakes show.
pub const PASSWORD: &str = "vk check#Pa55";

/// A MariaDB server owned by one test.
pub struct Mariadb {
    child: Option<Child>,
    dir: PathBuf,
    ip: Ipv4Addr,
    port: u16,
}

impl Mariadb {
    /// Installs a fresh datadir and starts `mariadbd` with `extra` options, waits until it
    /// answers on its socket, then creates `vk_check` (password [`PASSWORD`], no grants).
    pub fn start(extra: &[&str]) -> Mariadb {
        Mariadb::start_on(Ipv4Addr::LOCALHOST, extra)
    }

    /// [`start`](Mariadb::start), listening on `ip` instead of 127.0.0.1.
    pub fn start_on(ip: Ipv4Addr, extra: &[&str]) -> Mariadb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vk-mysql-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        // A leftover of a killed earlier run with the same pid would be ours too.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create the test's temporary directory");
        // From here on the guard owns the directory, so any panic below cleans it up.
        let mut server = Mariadb {
            child: None,
            dir,
            ip,
            port: free_port(ip),
        };
        let datadir = server.dir.join("data");
        // Its own tmpdir: concurrent servers (tests run in parallel) otherwise collide on
        // the temporary-table names in /tmp during the install.
        let tmpdir = server.dir.join("tmp");
        std::fs::create_dir(&tmpdir).expect("create the server's tmpdir");
        let install = run_within(
            Command::new("mariadb-install-db")
                .args(install_args(&datadir, &tmpdir))
                .env("TMPDIR", &tmpdir),
            Duration::from_secs(60),
        );
        assert!(install.0, "mariadb-install-db failed:\n{}", install.1);

        let mut command = Command::new("mariadbd");
        command
            .args(server_args(&server.dir, ip, server.port))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        server.child = Some(command.spawn().expect("spawn mariadbd"));

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("mariadbd exited with {status}:\n{}", server.log());
            }
            if server.socket().exists() && server.sql("SELECT 1").is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd not ready within 30 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
            .sql(&create_check_user_sql())
            .expect("create the check user");
        server
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    /// The server's temporary directory (datadir under `data/`), removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `password` to a file in the server's directory, with a trailing newline as an
    /// editor leaves it, and returns its path.
    pub fn password_file(&self, password: &str) -> PathBuf {
        let path = self.dir.join(format!("password-{}", password.len()));
        std::fs::write(&path, format!("{password}\n")).expect("write password file");
        path
    }

    /// Settings for the probe with `password` in a file ([`password_file`](Self::password_file)).
    pub fn settings(&self, password: &str) -> MysqlSettings {
        MysqlSettings {
            address: self.address(),
            user: USER.to_string(),
            password_file: self.password_file(password),
        }
    }

    /// Runs SQL as root over the unix socket.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        let (ok, output) = run_within(
            Command::new("mariadb").args(client_args(&self.socket(), sql)),
            Duration::from_secs(10),
        );
        if ok {
            Ok(output)
        } else {
            Err(output)
        }
    }

    /// Kills the server (SIGKILL to our own child: the datadir is thrown away anyway).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ===== the command lines, shared with servers started in a lab host (lab_mariadb.rs) =====
//
// A server's directory `dir` holds `data/` (the datadir), `tmp/`, `sock`, `pid` and
// `error.log`.

/// `mariadb-install-db`'s arguments: a fresh datadir, no system option file, no test
/// database, root with normal (password, here empty) authentication.
pub fn install_args(datadir: &Path, tmpdir: &Path) -> Vec<String> {
    vec![
        "--no-defaults".to_owned(),
        format!("--datadir={}", datadir.display()),
        "--auth-root-authentication-method=normal".to_owned(),
        "--skip-test-db".to_owned(),
        "--user=root".to_owned(),
        format!("--tmpdir={}", tmpdir.display()),
    ]
}

/// `mariadbd`'s arguments (before any extra options) for a server in `dir` on `ip:port`.
pub fn server_args(dir: &Path, ip: Ipv4Addr, port: u16) -> Vec<String> {
    vec![
        "--no-defaults".to_owned(), // must come first
        format!("--datadir={}", dir.join("data").display()),
        format!("--tmpdir={}", dir.join("tmp").display()),
        format!("--socket={}", dir.join("sock").display()),
        format!("--port={port}"),
        format!("--bind-address={ip}"),
        format!("--pid-file={}", dir.join("pid").display()),
        format!("--log-error={}", dir.join("error.log").display()),
        // Refused otherwise when the tests run as root; harmless when they do not.
        "--user=root".to_owned(),
        "--innodb-buffer-pool-size=16M".to_owned(),
    ]
}

/// Creates [`USER`] with [`PASSWORD`]. No grants: a login and COM_PING need none. Every
/// host form: the server may see a loopback client as 'localhost' or '127.0.0.1', and
/// others by address ('%').
pub fn create_check_user_sql() -> String {
    format!(
        "CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'; \
         CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
         CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';"
    )
}

/// `mariadb`'s arguments to run `sql` as root over `socket`, output without decoration.
pub fn client_args(socket: &Path, sql: &str) -> Vec<String> {
    vec![
        "--no-defaults".to_owned(),
        format!("--socket={}", socket.display()),
        "-u".to_owned(),
        "root".to_owned(),
        "--batch".to_owned(),
        "--skip-column-names".to_owned(),
        "-e".to_owned(),
        sql.to_owned(),
    ]
}

/// A port that was free a moment ago (the server binds it right after).
pub fn free_port(ip: Ipv4Addr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Runs a command to completion within `timeout` (killed past it): (success, stdout+stderr).
pub fn run_within(command: &mut Command, timeout: Duration) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    // The outputs are small; read them on threads so a full pipe cannot stall the wait.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    match status {
        Some(status) => (status.success(), text),
        None => (false, format!("timed out after {timeout:?}\n{text}")),
    }
}
