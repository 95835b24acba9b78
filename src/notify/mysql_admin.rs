//! The `mysql_admin` action: one statement on a MySQL-protocol admin port, typically MyCat
//! 1.6's 9066 (`reload @@config_all`, `online`, `offline`; shared reference §3.1).
//!
//! Owns: reading the password file at run time, the login, the one COM_QUERY, COM_QUIT, and
//! turning the server's OK or ERR packet into the hook's result. The protocol itself is
//! [`crate::health::mysql::MysqlConnection`], the client the `mysql` probe uses.
//!
//! Must not: send anything on connect beyond the login, and nothing but the configured
//! statement after it (MyCat's manager understands only its own admin statements, so a
//! client's usual `SET NAMES` or `SELECT @@version_comment` would be an ERR, or worse, be
//! logged as an operator's action); log or return the password; wait past the timeout.

use tokio::time::{timeout_at, Instant};

use super::MysqlAdminSettings;
use crate::health::mysql::{read_password_file, MysqlConnection, MysqlError, QueryOutcome};

/// Logs in, sends `settings.statement`, reports the answer. Ok: "OK: Reload config success,
/// affected 1". Err: the ERR packet ("ERR 1003 #HY000: Reload config failure") or why the
/// server could not be asked, always naming the address.
pub async fn run(settings: &MysqlAdminSettings) -> Result<String, String> {
    let address = settings.address;
    let statement = settings.statement.trim();
    let prefix = format!("mysql_admin {address}");
    if statement.is_empty() {
        return Err(format!("{prefix}: no statement to send"));
    }
    let password = read_password_file(&settings.password_file).map_err(|e| {
        format!(
            "{prefix}: cannot read password file {}: {e}",
            settings.password_file.display()
        )
    })?;
    let deadline = Instant::now() + settings.timeout;
    // The steps get the time that is left; this outer bound is the promise to the caller.
    let steps = async {
        let mut connection =
            MysqlConnection::connect(address, &settings.user, &password, settings.timeout).await?;
        // `reload @@config_all` tests every dataHost before it answers: the statement gets
        // all the time the login left.
        connection.set_timeout(deadline.saturating_duration_since(Instant::now()));
        let outcome = connection.query(statement).await?;
        // MyCat and MySQL count a client that vanishes without COM_QUIT as aborted; the
        // answer is in hand, so a failed goodbye changes nothing.
        if let Err(error) = connection.quit().await {
            tracing::debug!(%address, %error, "mysql_admin: COM_QUIT failed");
        }
        Ok::<QueryOutcome, MysqlError>(outcome)
    };
    match timeout_at(deadline, steps).await {
        Ok(Ok(outcome)) => describe(&prefix, statement, outcome),
        Ok(Err(error)) => Err(format!("{prefix}: {error}")),
        Err(_) => Err(format!("{prefix}: no answer within {:?}", settings.timeout)),
    }
}

/// The hook's result for the server's answer to `statement`.
fn describe(prefix: &str, statement: &str, outcome: QueryOutcome) -> Result<String, String> {
    match outcome {
        QueryOutcome::Ok { affected, info } if info.is_empty() => {
            Ok(format!("OK, affected {affected}"))
        }
        QueryOutcome::Ok { affected, info } => Ok(format!("OK: {info}, affected {affected}")),
        // A `show @@...` sent as an action: the rows are not the point, that it answered is.
        QueryOutcome::Rows { columns, rows } => {
            Ok(format!("result set: {rows} rows of {columns} columns"))
        }
        QueryOutcome::Err(error) => Err(format!("{prefix}: `{statement}`: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::mysql::ServerError;

    #[test]
    fn describes_ok_rows_and_err() {
        let prefix = "mysql_admin 127.0.0.1:9066";
        assert_eq!(
            describe(
                prefix,
                "reload @@config_all",
                QueryOutcome::Ok {
                    affected: 1,
                    info: "Reload config success".to_owned()
                }
            ),
            Ok("OK: Reload config success, affected 1".to_owned())
        );
        assert_eq!(
            describe(
                prefix,
                "DO 1",
                QueryOutcome::Ok {
                    affected: 0,
                    info: String::new()
                }
            ),
            Ok("OK, affected 0".to_owned())
        );
        assert_eq!(
            describe(
                prefix,
                "show @@heartbeat",
                QueryOutcome::Rows {
                    columns: 11,
                    rows: 2
                }
            ),
            Ok("result set: 2 rows of 11 columns".to_owned())
        );
        // MyCat's ReloadConfig failure (errno 1003, reference §3.1).
        let failure = ServerError {
            code: 1003,
            state: Some("HY000".to_owned()),
            message: "Reload config failure".to_owned(),
        };
        assert_eq!(
            describe(prefix, "reload @@config_all", QueryOutcome::Err(failure)),
            Err("mysql_admin 127.0.0.1:9066: `reload @@config_all`: \
                 ERR 1003 #HY000: Reload config failure"
                .to_owned())
        );
    }
}
