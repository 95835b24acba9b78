//! The `http` probe: one GET or HEAD with reqwest over rustls; an expected status (and body
//! substring) is Up.
//!
//! Owns the request a health check makes and the verdict on its answer. Each run opens a
//! fresh connection (no pool: a health check must see a server that can still accept, not a
//! keep-alive socket left from the last run), follows no redirect (a 3xx is the answer, and
//! it counts as Up unless `expect_status` says otherwise), goes through no proxy (the
//! environment's `HTTP_PROXY` must not decide what a health check talks to), and is bounded
//! as a whole by the timeout: connect, TLS, headers and body. It reads at most
//! [`BODY_LIMIT`] bytes of body, and only when `body_contains` asks for it. It must not retry
//! or keep state between runs: the daemon counts rise/fall.
//!
//! TLS: rustls with the ring provider, chosen here rather than installed process-wide (a
//! library has no business setting rustls' global default; reqwest's own `rustls` feature
//! would build aws-lc-rs, a slow C build). Certificates are checked by
//! `rustls-platform-verifier`, which on Linux is webpki over the system trust store
//! (`/etc/ssl/certs`, `SSL_CERT_FILE`): an operator's internal CA installed on the machine is
//! trusted, which a compiled-in Mozilla list (webpki-roots) would not do. `verify_tls = false`
//! installs a verifier that accepts any certificate for any name (handshake signatures are
//! still checked, so the peer must hold the key of the certificate it shows). The `host`
//! override changes the Host header only: SNI and certificate name checks use the URL's
//! host.
//!
//! Fixed signatures: `HttpSettings` below, `HttpProbe::new(&HttpSettings) -> Result<HttpProbe,
//! HttpError>`, `async HttpProbe::probe(&self, timeout: Duration) -> ProbeOutcome`.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, HOST};
use reqwest::{Client, Method, Url};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use thiserror::Error;

use super::ProbeOutcome;

/// How much body `body_contains` searches: enough for any status page, small enough that a
/// misconfigured URL pointing at a large file costs nothing.
pub const BODY_LIMIT: usize = 64 * 1024;

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

/// Why a probe could not be built: each is a configuration mistake, reported at start-up
/// rather than as a probe that is Down for ever.
#[derive(Debug, Error)]
pub enum HttpError {
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("url {url:?}: scheme {scheme:?} is not http or https")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("invalid host header {0:?}")]
    InvalidHost(String),
    #[error("expected status {0} is not an HTTP status (100..=999)")]
    InvalidStatus(u16),
    #[error("body_contains needs method GET: a HEAD answer has no body")]
    BodyNeedsGet,
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("HTTP client setup: {0}")]
    Client(String),
}

#[derive(Debug)]
pub struct HttpProbe {
    client: Client,
    url: Url,
    method: Method,
    expect_status: Vec<u16>,
    body_contains: Option<String>,
    host: Option<HeaderValue>,
}

impl HttpProbe {
    /// Checks the settings and builds the client once; each [`HttpProbe::probe`] then only
    /// sends a request.
    pub fn new(settings: &HttpSettings) -> Result<HttpProbe, HttpError> {
        let url = Url::parse(&settings.url).map_err(|e| HttpError::InvalidUrl {
            url: settings.url.clone(),
            reason: e.to_string(),
        })?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(HttpError::UnsupportedScheme {
                    url: settings.url.clone(),
                    scheme: other.to_owned(),
                })
            }
        };
        if url.host().is_none() {
            return Err(HttpError::InvalidUrl {
                url: settings.url.clone(),
                reason: "no host".to_owned(),
            });
        }
        if let Some(&bad) = settings
            .expect_status
            .iter()
            .find(|s| !(100..=999).contains(*s))
        {
            return Err(HttpError::InvalidStatus(bad));
        }
        if settings.body_contains.is_some() && settings.method == HttpMethod::Head {
            return Err(HttpError::BodyNeedsGet);
        }
        let host = match &settings.host {
            Some(h) => Some(
                HeaderValue::from_str(h)
                    .ok()
                    .filter(|_| !h.is_empty())
                    .ok_or_else(|| HttpError::InvalidHost(h.clone()))?,
            ),
            None => None,
        };

        let client = Client::builder()
            .tls_backend_preconfigured(tls_config(https, settings.verify_tls)?)
            .http1_only()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| HttpError::Client(chain(&e)))?;

        Ok(HttpProbe {
            client,
            url,
            method: match settings.method {
                HttpMethod::Get => Method::GET,
                HttpMethod::Head => Method::HEAD,
            },
            expect_status: settings.expect_status.clone(),
            body_contains: settings.body_contains.clone(),
            host,
        })
    }

    /// One request, bounded as a whole by `timeout`. Down reasons start with the method and
    /// URL ("GET http://198.51.100.200/: status 503, expected 200..399").
    pub async fn probe(&self, timeout: Duration) -> ProbeOutcome {
        match tokio::time::timeout(timeout, self.run()).await {
            Ok(Ok(())) => ProbeOutcome::Up,
            Ok(Err(why)) => ProbeOutcome::down(format!("{} {}: {why}", self.method, self.url)),
            Err(_) => ProbeOutcome::down(format!(
                "{} {}: no answer within {timeout:?}",
                self.method, self.url
            )),
        }
    }

    async fn run(&self) -> Result<(), String> {
        let mut request = self.client.request(self.method.clone(), self.url.clone());
        if let Some(host) = &self.host {
            // hyper only adds Host when the request has none, so this one is sent as is.
            request = request.header(HOST, host.clone());
        }
        let mut response = request.send().await.map_err(|e| chain(&e))?;

        let status = response.status().as_u16();
        let expected = if self.expect_status.is_empty() {
            (200..=399).contains(&status)
        } else {
            self.expect_status.contains(&status)
        };
        if !expected {
            return Err(format!(
                "status {status}, expected {}",
                ExpectedStatus(&self.expect_status)
            ));
        }

        let Some(needle) = &self.body_contains else {
            // Dropping the response closes the connection; the body is not needed.
            return Ok(());
        };
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            match response.chunk().await.map_err(|e| chain(&e))? {
                Some(chunk) => {
                    let room = BODY_LIMIT - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    // Stop reading as soon as the text is there: a large page need not be
                    // read to its end.
                    if contains(&body, needle.as_bytes()) {
                        return Ok(());
                    }
                }
                None => break,
            }
        }
        Err(format!(
            "status {status}, but the body ({} bytes read) does not contain {needle:?}",
            body.len()
        ))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// "200..399" for the default, "200, 204" for a list.
struct ExpectedStatus<'a>(&'a [u16]);

impl fmt::Display for ExpectedStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("200..399");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// An error and its sources joined with ": ". reqwest's own text is only "error sending
/// request"; the cause ("connection refused", "invalid peer certificate: UnknownIssuer") is
/// further down the chain, and it is what the operator needs. Repeated texts are skipped.
fn chain(err: &reqwest::Error) -> String {
    // The URL is already in the probe's reason.
    let top = err.to_string();
    let top = match top.find(" for url (") {
        Some(at) => top[..at].to_owned(),
        None => top,
    };
    let mut parts = vec![top];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The rustls client configuration reqwest uses. Without TLS in the URL no certificate can
/// ever be checked (redirects are off), so the system trust store is not even loaded and a
/// verifier that refuses everything stands in.
fn tls_config(https: bool, verify: bool) -> Result<rustls::ClientConfig, HttpError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (https, verify) {
        (true, true) => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| HttpError::Tls(format!("system trust store: {e}")))?,
        ),
        (true, false) => Arc::new(FixedVerdict {
            accept: true,
            provider: provider.clone(),
        }),
        (false, _) => Arc::new(FixedVerdict {
            accept: false,
            provider: provider.clone(),
        }),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // HTTP/1.1 only: reqwest is built without http2, so offering h2 would break servers that
    // pick it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A certificate verifier with a fixed answer. `accept: true` is `verify_tls = false`: any
/// certificate, any name, any date. Handshake signatures are still verified with the
/// provider's algorithms: that proves only that the peer holds the key of the certificate
/// it sent, not that anyone vouches for it.
#[derive(Debug)]
struct FixedVerdict {
    accept: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for FixedVerdict {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "TLS is not expected for an http:// probe".to_owned(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> HttpSettings {
        HttpSettings {
            url: url.to_owned(),
            method: HttpMethod::Get,
            expect_status: Vec::new(),
            body_contains: None,
            host: None,
            verify_tls: true,
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(matches!(
            HttpProbe::new(&settings("not a url")),
            Err(HttpError::InvalidUrl { .. })
        ));
        assert!(matches!(
            HttpProbe::new(&settings("ftp://192.0.2.10/")),
            Err(HttpError::UnsupportedScheme { .. })
        ));
        let mut s = settings("http://192.0.2.10/");
        s.expect_status = vec![200, 42];
        assert!(matches!(
            HttpProbe::new(&s),
            Err(HttpError::InvalidStatus(42))
        ));
        let mut s = settings("http://192.0.2.10/");
        s.method = HttpMethod::Head;
        s.body_contains = Some("ok".into());
        assert!(matches!(HttpProbe::new(&s), Err(HttpError::BodyNeedsGet)));
        let mut s = settings("http://192.0.2.10/");
        s.host = Some("bad\nhost".into());
        assert!(matches!(HttpProbe::new(&s), Err(HttpError::InvalidHost(_))));
    }

    #[test]
    fn good_settings_build() {
        HttpProbe::new(&settings("http://192.0.2.10:8080/health")).unwrap();
        HttpProbe::new(&settings("https://192.0.2.10/health")).unwrap();
        let mut s = settings("https://lb.example/health");
        s.verify_tls = false;
        s.host = Some("www.example".into());
        s.expect_status = vec![200, 204];
        HttpProbe::new(&s).unwrap();
    }

    #[test]
    fn expected_status_text() {
        assert_eq!(ExpectedStatus(&[]).to_string(), "200..399");
        assert_eq!(ExpectedStatus(&[200, 204]).to_string(), "200, 204");
    }

    #[test]
    fn substring_search() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(!contains(b"status: o", b"ok"));
        assert!(contains(b"", b""));
    }
}
