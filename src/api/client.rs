//! Single page requests with retries, timeouts and token renewal.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::{StatusCode, Url, header};

use super::auth::{Credentials, TokenProvider};
use super::decode::{DecodeError, Page, decode_page_expecting};
use super::retry::{RetryAfter, RetryPolicy, parse_retry_after};
use super::{ApiError, PageRef};

/// Connection settings of an [`ApiClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub base_url: String,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed between two reads of a response; a large page that keeps
    /// arriving is never cut off by a total timeout.
    pub read_timeout: Duration,
    pub retry: RetryPolicy,
    /// An extra PEM root certificate, e.g. a corporate TLS proxy's.
    pub ca_cert: Option<PathBuf>,
    /// Maximum size of one response body, after decompression; a larger
    /// page ends the fetch instead of exhausting memory.
    pub max_body_bytes: usize,
}

/// The default [`ClientOptions::max_body_bytes`], 256 MiB: far above the
/// 10 MiB page that the tests fetch whole.
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            base_url: super::DEFAULT_BASE_URL.to_string(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            ca_cert: None,
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// An HTTP client for one API base URL and one set of credentials.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    tokens: Arc<TokenProvider>,
    retry: RetryPolicy,
    retries: Arc<AtomicU64>,
    max_body_bytes: usize,
}

/// The outcome of one attempt at a page.
enum Attempt {
    Done(Box<Page>),
    Retry {
        wait: Option<Duration>,
        cause: String,
        data: bool,
    },
    Renewed,
}

impl ApiClient {
    /// Builds a client; rejects plain `http://` except for loopback hosts.
    pub fn new(options: &ClientOptions, credentials: Credentials) -> Result<ApiClient, ApiError> {
        let base = parse_base_url(&options.base_url)?;
        if let Credentials::PasswordGrant { auth_url, .. } = &credentials {
            parse_base_url(auth_url)?;
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("cpstat/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .redirect(same_origin_redirects());
        if base.scheme() == "http" {
            // Plain http is only allowed to loopback, which needs no proxy. A
            // proxy from HTTP_PROXY or ALL_PROXY would receive the token
            // unencrypted, so none is used.
            tracing::debug!("not using a proxy for a loopback base URL");
            builder = builder.no_proxy();
        }
        if let Some(path) = &options.ca_cert {
            for certificate in load_certificates(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| match &options.ca_cert {
            Some(path) => ApiError::Client(format!(
                "{}; check the CA certificate file {}",
                error_text(&e),
                path.display()
            )),
            None => ApiError::Client(error_text(&e)),
        })?;
        Ok(ApiClient {
            http,
            base,
            tokens: Arc::new(TokenProvider::new(credentials)),
            retry: options.retry.clone(),
            retries: Arc::new(AtomicU64::new(0)),
            max_body_bytes: options.max_body_bytes,
        })
    }

    /// Retries spent so far by this client and its clones.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Fetches one page, retrying what can be retried.
    pub async fn get_page(&self, account: &str, page: PageRef) -> Result<Page, ApiError> {
        let url = self.page_url(account, page)?;
        let mut renewed = false;
        let mut failures = 0u32;
        loop {
            match self.attempt(account, page, &url, &mut renewed).await? {
                Attempt::Done(result) => return Ok(*result),
                Attempt::Renewed => continue,
                Attempt::Retry { wait, cause, data } => {
                    failures += 1;
                    if failures >= self.retry.max_attempts {
                        return Err(ApiError::RetriesExhausted {
                            account: account.to_string(),
                            page,
                            attempts: failures,
                            last: cause,
                            data,
                        });
                    }
                    let wait = self.wait_before_retry(account, page, wait, failures)?;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        %account, skip = page.skip, attempt = failures + 1, wait_ms = wait.as_millis() as u64,
                        %cause, "retrying page"
                    );
                    tokio::time::sleep(self.retry.scaled(wait)).await;
                }
            }
        }
    }

    fn wait_before_retry(
        &self,
        account: &str,
        page: PageRef,
        requested: Option<Duration>,
        failures: u32,
    ) -> Result<Duration, ApiError> {
        match requested {
            Some(wait) if wait > self.retry.max_wait => Err(ApiError::RetryAfterTooLong {
                account: account.to_string(),
                page,
                wait,
                cap: self.retry.max_wait,
            }),
            Some(wait) => Ok(wait),
            None => Ok(self.retry.backoff(failures)),
        }
    }

    fn page_url(&self, account: &str, page: PageRef) -> Result<Url, ApiError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| ApiError::InvalidUrl {
                url: self.base.to_string(),
                reason: "it cannot have a path".to_string(),
            })?
            .pop_if_empty()
            .extend(["accounts", account, "reports", "users-summary"]);
        url.query_pairs_mut()
            .append_pair("take", &page.take.to_string())
            .append_pair("skip", &page.skip.to_string());
        Ok(url)
    }

    async fn attempt(
        &self,
        account: &str,
        page: PageRef,
        url: &Url,
        renewed: &mut bool,
    ) -> Result<Attempt, ApiError> {
        let bearer = self.tokens.bearer(&self.http).await?;
        tracing::debug!(%account, skip = page.skip, take = page.take, "requesting page");
        let sent = self
            .http
            .get(url.clone())
            .header(
                header::AUTHORIZATION,
                format!("bearer {}", bearer.token.expose()),
            )
            .header(header::ACCEPT, "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Ok(transport_retry(&error)),
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED
            && !*renewed
            && self.tokens.reject(bearer.generation).await
        {
            *renewed = true;
            tracing::info!(%account, "the access token was rejected; requesting a new one");
            return Ok(Attempt::Renewed);
        }
        if status.is_success() {
            return read_page(response, account, page, self.max_body_bytes).await;
        }
        status_outcome(response, account, page).await
    }
}

fn transport_retry(error: &reqwest::Error) -> Attempt {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    Attempt::Retry {
        wait: None,
        cause: format!("{what}: {}", error_chain(error)),
        data: false,
    }
}

/// Formats a reqwest error and its sources without the URL.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_page(
    response: reqwest::Response,
    account: &str,
    page: PageRef,
    max_body_bytes: usize,
) -> Result<Attempt, ApiError> {
    let body = match read_limited(response, max_body_bytes).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            return Err(ApiError::Decode {
                account: account.to_string(),
                page,
                source: DecodeError::Shape {
                    reason: format!("the response body is larger than {max_body_bytes} bytes"),
                },
            });
        }
        Err(error) => {
            return Ok(Attempt::Retry {
                wait: None,
                cause: format!("reading the body failed: {}", error_chain(&error)),
                data: false,
            });
        }
    };
    match decode_page_expecting(&body, usize::try_from(page.take).unwrap_or(usize::MAX)) {
        Ok(decoded) => Ok(Attempt::Done(Box::new(decoded))),
        Err(source @ DecodeError::Field { .. }) => Err(ApiError::Decode {
            account: account.to_string(),
            page,
            source,
        }),
        Err(other) => Ok(Attempt::Retry {
            wait: None,
            cause: other.to_string(),
            data: true,
        }),
    }
}

/// Reads a body chunk by chunk; `None` when it grows beyond `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Ok(None);
    }
    // A declared length sizes the buffer once; the limit above bounds it.
    let declared = response.content_length().unwrap_or(0) as usize;
    let mut body = Vec::with_capacity(declared);
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

async fn status_outcome(
    response: reqwest::Response,
    account: &str,
    page: PageRef,
) -> Result<Attempt, ApiError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = body_message(response).await;
    let account = account.to_string();
    match status.as_u16() {
        401 => Err(ApiError::Unauthorized { account }),
        403 => Err(ApiError::Forbidden {
            account,
            message: body,
        }),
        404 => Err(ApiError::AccountNotFound { account }),
        429 | 500 | 502 | 503 | 504 => Ok(Attempt::Retry {
            wait: requested_wait(retry_after.as_deref(), &account, page),
            cause: format!("HTTP {status}"),
            data: false,
        }),
        code => Err(ApiError::Status {
            account,
            page,
            status: code,
            body,
        }),
    }
}

fn requested_wait(value: Option<&str>, account: &str, page: PageRef) -> Option<Duration> {
    match parse_retry_after(value?, SystemTime::now()) {
        RetryAfter::Wait(wait) => Some(wait),
        RetryAfter::Invalid => {
            tracing::warn!(%account, skip = page.skip, value = ?value, "ignoring an invalid Retry-After header");
            None
        }
    }
}

/// Returns a short readable message from an error response body.
async fn body_message(response: reqwest::Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("error")))
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let text = message.unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.trim().is_empty() {
        "no message".to_string()
    } else {
        text
    }
}

/// Follows a redirect only to the same scheme, host and port, so that the
/// `Authorization` header never reaches another host or travels over plain
/// HTTP after HTTPS.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(previous) = attempt.previous().last() else {
            return attempt.follow();
        };
        if !same_origin(previous, attempt.url()) {
            let target = attempt.url().origin().ascii_serialization();
            tracing::warn!(%target, "not following a redirect to another origin");
            attempt.stop()
        } else if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else {
            attempt.follow()
        }
    })
}

/// Checks whether two URLs share scheme, host and port, so that a redirect
/// from one to the other may carry the `Authorization` header.
fn same_origin(from: &Url, to: &Url) -> bool {
    from.scheme() == to.scheme()
        && from.host_str() == to.host_str()
        && from.port_or_known_default() == to.port_or_known_default()
}

/// Parses a base URL: `https://`, or `http://` for a loopback host only.
pub fn parse_base_url(text: &str) -> Result<Url, ApiError> {
    let invalid = |reason: &str| ApiError::InvalidUrl {
        url: text.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(text.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not allowed; use a token file",
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(invalid(
            "plain http would send the token unencrypted; use https (http is allowed for 127.0.0.1, ::1 and localhost only)",
        )),
        other => Err(invalid(&format!("unsupported scheme {other:?}; use https"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Reads the certificates of a PEM file, which must hold at least one.
fn load_certificates(path: &PathBuf) -> Result<Vec<reqwest::Certificate>, ApiError> {
    let pem = std::fs::read(path).map_err(|e| {
        ApiError::Client(format!(
            "failed to read CA certificate {}: {e}",
            path.display()
        ))
    })?;
    let invalid = |reason: String| {
        ApiError::Client(format!(
            "invalid CA certificate file {}: {reason}; --ca-cert expects a PEM file with \
             -----BEGIN CERTIFICATE----- blocks",
            path.display()
        ))
    };
    // reqwest's rustls backend only parses the PEM when the client is built,
    // and then reports a bare "builder error", so the file is parsed here.
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(error_text(&e)))?;
    if certificates.is_empty() {
        return Err(invalid("it contains no certificate".to_string()));
    }
    Ok(certificates)
}

fn error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_scheme_rules() {
        let accepted = [
            "https://api.app.cyberpilot.io",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9/",
        ];
        for url in accepted {
            assert!(parse_base_url(url).is_ok(), "{url} should be accepted");
        }
        let rejected = [
            "http://api.example.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "https://user:pw@host",
            "not a url",
        ];
        for url in rejected {
            assert!(parse_base_url(url).is_err(), "{url} should be rejected");
        }
    }

    #[test]
    fn redirect_origin_rules() {
        let cases = [
            (
                "https://api.example.com/a",
                "https://api.example.com/b",
                true,
            ),
            (
                "https://api.example.com/a",
                "https://api.example.com:443/b",
                true,
            ),
            (
                "https://api.example.com/a",
                "http://api.example.com/b",
                false,
            ),
            (
                "https://api.example.com/a",
                "https://evil.example.net/b",
                false,
            ),
            (
                "https://api.example.com/a",
                "https://api.example.com:8443/b",
                false,
            ),
            ("http://127.0.0.1:8080/a", "http://127.0.0.1:8081/b", false),
            ("http://127.0.0.1:8080/a", "http://localhost:8080/b", false),
        ];
        for (from, to, allowed) in cases {
            let (from, to) = (Url::parse(from).unwrap(), Url::parse(to).unwrap());
            assert_eq!(same_origin(&from, &to), allowed, "{from} -> {to}");
        }
    }
}
