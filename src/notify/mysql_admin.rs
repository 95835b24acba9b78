//! STUB (issue 5): the `mysql_admin` action (MyCat admin statements).
//!
//! Fixed signature: `async fn run(settings: &MysqlAdminSettings) -> Result<String, String>`:
//! Ok with the server's OK message, or the ERR packet (code, name, message) / why it failed.

use super::MysqlAdminSettings;

pub async fn run(settings: &MysqlAdminSettings) -> Result<String, String> {
    let _ = settings;
    Err("mysql_admin is not built yet".to_owned())
}
