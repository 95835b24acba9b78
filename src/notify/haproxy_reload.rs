//! STUB (issue 5): the `haproxy_reload` action.
//!
//! Fixed signature: `async fn reload(settings: &HaproxyReloadSettings) -> Result<String,
//! String>`: Ok with what was verified ("reload 3: new worker 8380"), or why it failed.

use super::HaproxyReloadSettings;

pub async fn reload(settings: &HaproxyReloadSettings) -> Result<String, String> {
    let _ = settings;
    Err("haproxy_reload is not built yet".to_owned())
}
