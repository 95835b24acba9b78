//! A MariaDB server started by a test inside a lab host (normally the backend,
//! 198.51.100.200), for the example pairs that put a MySQL front end in the lab. Included
//! with `#[path = "support/lab_mariadb.rs"] mod lab_mariadb;` next to `lab` and
//! `#[path = "support/mariadb.rs"] mod mariadb;`, whose command lines it reuses.
//!
//! The server's directory is under the host's own `/tmp` (a tmpfs private to the host, gone
//! with it); `mariadbd` is a [`LabProcess`], so dropping it (or the lab) kills exactly that
//! process. The packaged service and the root namespace are never involved.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::lab::{Host, LabProcess};
use crate::mariadb::{client_args, create_check_user_sql, install_args, server_args};

/// The server's directory inside the host.
pub const DIR: &str = "/tmp/mariadb";

/// Installs a datadir in the host's `/tmp`, starts `mariadbd` on `ip:port` with `extra`
/// options, waits (bounded) until it answers, then runs [`create_check_user_sql`] and
/// `setup_sql` (may be empty) as root.
pub fn start(host: &Host, ip: Ipv4Addr, port: u16, extra: &[&str], setup_sql: &str) -> LabProcess {
    let dir = Path::new(DIR);
    let (datadir, tmpdir) = (dir.join("data"), dir.join("tmp"));
    host.run_ok(
        &["mkdir", "-p", &tmpdir.display().to_string()],
        Duration::from_secs(5),
    )
    .expect("the server's directory");
    let install: Vec<String> = std::iter::once("mariadb-install-db".to_owned())
        .chain(install_args(&datadir, &tmpdir))
        .collect();
    let install: Vec<&str> = install.iter().map(String::as_str).collect();
    let tmpdir_env = format!("TMPDIR={}", tmpdir.display());
    let mut argv = vec!["env", tmpdir_env.as_str()];
    argv.extend(install);
    host.run_ok(&argv, Duration::from_secs(60))
        .expect("mariadb-install-db");

    let server: Vec<String> = std::iter::once("mariadbd".to_owned())
        .chain(server_args(dir, ip, port))
        .chain(extra.iter().map(|option| option.to_string()))
        .collect();
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let mut process = host.spawn(&server, &[]).expect("spawn mariadbd");

    let deadline = Instant::now() + Duration::from_secs(30);
    while sql(host, "SELECT 1").is_err() {
        if let Ok(Some(status)) = process.try_wait() {
            panic!("mariadbd exited with {status}:\n{}", log(host));
        }
        assert!(
            Instant::now() < deadline,
            "mariadbd not ready within 30 s:\n{}",
            log(host)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sql(host, &create_check_user_sql()).expect("create the check user");
    if !setup_sql.is_empty() {
        sql(host, setup_sql).expect("setup SQL");
    }
    process
}

/// Runs SQL as root over the server's unix socket, inside the host.
pub fn sql(host: &Host, sql: &str) -> Result<String, String> {
    let args: Vec<String> = std::iter::once("mariadb".to_owned())
        .chain(client_args(&Path::new(DIR).join("sock"), sql))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    host.run_ok(&args, Duration::from_secs(10))
        .map_err(|error| error.to_string())
}

/// The server's error log.
pub fn log(host: &Host) -> String {
    host.read_file(&Path::new(DIR).join("error.log"))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}
