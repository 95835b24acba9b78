//! STUB (issue 4): the `http` probe: GET or HEAD with reqwest (rustls).
//!
//! Fixed signatures: `HttpSettings` below, `HttpProbe::new(&HttpSettings) -> Result<HttpProbe,
//! HttpError>`, `async HttpProbe::probe(&self, timeout: Duration) -> ProbeOutcome`.

use std::time::Duration;

use thiserror::Error;

use super::ProbeOutcome;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Head,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// http:// or https:// URL.
    pub url: String,
    pub method: HttpMethod,
    /// Status codes that mean Up; empty means 200..=399.
    pub expect_status: Vec<u16>,
    /// The body must contain this (GET only).
    pub body_contains: Option<String>,
    /// Host header to send instead of the URL's host.
    pub host: Option<String>,
    /// Verify the server certificate (default true).
    pub verify_tls: bool,
}

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("the http probe is not built yet")]
    NotBuilt,
}

#[derive(Debug)]
pub struct HttpProbe {
    _private: (),
}

impl HttpProbe {
    pub fn new(settings: &HttpSettings) -> Result<HttpProbe, HttpError> {
        let _ = settings;
        Err(HttpError::NotBuilt)
    }

    pub async fn probe(&self, timeout: Duration) -> ProbeOutcome {
        let _ = timeout;
        ProbeOutcome::down("the http probe is not built yet")
    }
}
