//! The mock API server: options, lifecycle, request accounting and the
//! per-connection loop.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::auth::IssuedTokens;
use super::faults::Fault;
use super::http::{Delivery, RequestError, Response, read_request, write_response};
use super::org::Organisation;
use super::routes;
use super::summary::AccountState;

/// A bearer token that `MockOptions::default()` accepts without a token request.
pub const DEFAULT_TOKEN: &str = "mock-static-token";

/// Path of the token endpoint below the base URL.
pub const TOKEN_PATH: &str = "/oauth/token";

/// Settings of a mock API server. The switches apply to every request, unlike
/// queued faults, which apply to one request each.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Listening address. Must be a loopback address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Maximum number of users per page, whatever `take` requests.
    pub page_cap: Option<usize>,
    /// Delay before every API response (not the `/_mock/` control endpoints).
    pub latency: Duration,
    /// Bearer tokens accepted without a token request.
    pub tokens: Vec<String>,
    /// Credentials that the password-grant token endpoint accepts.
    pub client_id: String,
    pub username: String,
    pub password: String,
    /// Lifetime of tokens issued by the token endpoint.
    pub token_ttl: Duration,
    /// Account ids that exist but have no API access. Requests for them get 403.
    pub forbidden_accounts: Vec<String>,
    /// Serves some values with other JSON types that mean the same numbers.
    pub type_drift: bool,
    /// Adds undocumented properties to pages, entries, users and `meta`.
    pub extra_properties: bool,
    /// Compresses bodies with gzip when the request accepts it.
    pub gzip: bool,
    /// Serves the first page whatever `skip` requests.
    pub ignore_skip: bool,
    /// Fixed `result` entries served to every account in place of the
    /// simulated users, e.g. a hand-written page of unusual users.
    pub fixture: Option<Vec<Value>>,
}

impl Default for MockOptions {
    fn default() -> MockOptions {
        MockOptions {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            // NOTE: the real API's page-size cap is not known, so none is set by default.
            page_cap: None,
            latency: Duration::ZERO,
            tokens: vec![DEFAULT_TOKEN.to_string()],
            client_id: "cpstat".to_string(),
            username: "api@nordlysenergi.dk".to_string(),
            // Spaces, '&', '=' and non-ASCII letters test the client's form encoding.
            password: "Hemmeligt kodeord æøå & co=1".to_string(),
            token_ttl: Duration::from_secs(3600),
            forbidden_accounts: Vec::new(),
            type_drift: false,
            extra_properties: false,
            gzip: false,
            ignore_skip: false,
            fixture: None,
        }
    }
}

/// One request as the server received it, without its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query string.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

/// Maximum number of entries kept in each list of `MockStats`, so that a
/// long-running mock does not grow without bound. The counts keep counting.
pub const MAX_RECORDED: usize = 100_000;

/// Request counts and records since the server started or the last `reset_stats`.
/// Each list keeps its first `MAX_RECORDED` entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Requests to a users-summary path, whatever their outcome.
    pub users_summary_requests: usize,
    /// `(take, skip)` of each users-summary request with valid paging
    /// parameters, after defaults and before the page cap.
    pub pages: Vec<(usize, usize)>,
    pub token_requests: usize,
    /// Every `Authorization` header value received, in order.
    pub authorization_values: Vec<String>,
    /// Every request received, control endpoints included.
    pub requests: Vec<RecordedRequest>,
}

/// State shared by the acceptor, the connections and the `MockApi` handle.
pub(crate) struct Shared {
    pub(crate) options: MockOptions,
    /// The served day in the low 32 bits and the number of `set_day` calls in
    /// the high 32 bits, packed so that both are read in one load.
    day_and_epoch: AtomicU64,
    pub(crate) accounts: Mutex<HashMap<String, AccountState>>,
    pub(crate) faults: Mutex<VecDeque<Fault>>,
    pub(crate) stats: Mutex<MockStats>,
    pub(crate) tokens: Mutex<IssuedTokens>,
    /// Seed for token signatures.
    pub(crate) seed: u64,
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the data
/// consistent, so a panic in another holder does not corrupt it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The served day and how many times it has been set. A change in either
/// means that mid-fetch mutations are out of date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DayEpoch {
    pub(crate) day: u32,
    pub(crate) epoch: u32,
}

impl Shared {
    pub(crate) fn day(&self) -> u32 {
        self.day_epoch().day
    }

    pub(crate) fn day_epoch(&self) -> DayEpoch {
        let packed = self.day_and_epoch.load(Ordering::SeqCst);
        DayEpoch {
            day: packed as u32,
            epoch: (packed >> 32) as u32,
        }
    }

    pub(crate) fn set_day(&self, day: u32) {
        let update = |packed: u64| {
            let epoch = ((packed >> 32) as u32).wrapping_add(1);
            Some(u64::from(epoch) << 32 | u64::from(day))
        };
        let _ = self
            .day_and_epoch
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, update);
    }
}

/// A running mock of the users-summary API on a loopback port.
///
/// Dropping the handle stops the server as well, but `shutdown` also waits
/// until the listener is closed.
pub struct MockApi {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    acceptor: Option<JoinHandle<()>>,
}

impl MockApi {
    /// Starts serving `accounts` on `options.bind`.
    ///
    /// Fails with `InvalidInput` if the bind address is not a loopback address
    /// or two organisations share an account id.
    pub async fn start(options: MockOptions, accounts: Vec<Organisation>) -> io::Result<MockApi> {
        if !options.bind.ip().is_loopback() {
            let message = format!(
                "mock API bind address {} is not a loopback address",
                options.bind
            );
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let seed = accounts.first().map_or(0, |org| org.config().seed);
        let shared = Arc::new(Shared {
            accounts: Mutex::new(account_states(accounts)?),
            options,
            day_and_epoch: AtomicU64::new(0),
            faults: Mutex::new(VecDeque::new()),
            stats: Mutex::new(MockStats::default()),
            tokens: Mutex::new(IssuedTokens::default()),
            seed,
        });
        let listener = TcpListener::bind(shared.options.bind).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let acceptor = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        debug!(%local_addr, "mock API started");
        Ok(MockApi {
            shared,
            local_addr,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Returns the token endpoint URL, `{base_url}/oauth/token`.
    pub fn auth_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    /// Returns the users-summary URL of an account, without query parameters.
    pub fn users_summary_url(&self, account_id: &str) -> String {
        format!(
            "{}/accounts/{account_id}/reports/users-summary",
            self.base_url()
        )
    }

    pub fn options(&self) -> &MockOptions {
        &self.shared.options
    }

    /// Sets the simulated day served to all accounts from the next request on.
    /// Every call, even with the current day, discards mid-fetch mutations.
    pub fn set_day(&self, day: u32) {
        self.shared.set_day(day);
    }

    pub fn day(&self) -> u32 {
        self.shared.day()
    }

    /// Advances every account's simulation to the served day now, instead
    /// of on the first request, so that the first request is as fast as
    /// the rest. A benchmark would otherwise charge the simulation of the
    /// whole organisation (0.7 s for 100,000 users on day 60) to the client
    /// that happens to come first.
    pub fn prepare_served_day(&self) {
        let served = self.shared.day_epoch();
        for account in lock(&self.shared.accounts).values_mut() {
            account.prepare(served);
        }
    }

    /// Queues a fault for the next users-summary request that passes the
    /// token and account checks.
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.shared.faults).push_back(fault);
    }

    /// Queues faults in order, one per request.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.faults).extend(faults);
    }

    /// Returns the number of queued faults not yet used.
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.faults).len()
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Makes every token issued so far expire now. Static tokens stay valid.
    pub fn expire_issued_tokens(&self) {
        lock(&self.shared.tokens).expire_all();
    }

    /// Returns a copy of the request accounting.
    pub fn stats(&self) -> MockStats {
        lock(&self.shared.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.shared.stats) = MockStats::default();
    }

    pub fn users_summary_requests(&self) -> usize {
        lock(&self.shared.stats).users_summary_requests
    }

    /// Returns `(take, skip)` of each users-summary request, in order.
    pub fn pages_requested(&self) -> Vec<(usize, usize)> {
        lock(&self.shared.stats).pages.clone()
    }

    pub fn token_requests(&self) -> usize {
        lock(&self.shared.stats).token_requests
    }

    /// Returns every `Authorization` header value received, in order.
    pub fn authorization_values(&self) -> Vec<String> {
        lock(&self.shared.stats).authorization_values.clone()
    }

    /// Stops accepting connections, closes open ones and waits for the listener to close.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.await;
        }
        debug!(local_addr = %self.local_addr, "mock API stopped");
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn account_states(accounts: Vec<Organisation>) -> io::Result<HashMap<String, AccountState>> {
    let mut states = HashMap::new();
    for organisation in accounts {
        let key = organisation.account_id().to_ascii_lowercase();
        if states.contains_key(&key) {
            let message = format!("account id {key} is used by two organisations");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        states.insert(key, AccountState::new(organisation));
    }
    Ok(states)
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                // A response is written as a head and a body. Without
                // TCP_NODELAY, Nagle's algorithm delays the body until the
                // client acknowledges the head, which a delayed ACK can
                // postpone by up to 40 ms on Linux: more than most latencies
                // the mock simulates.
                if let Err(error) = stream.set_nodelay(true) {
                    debug!(%peer, %error, "failed to set TCP_NODELAY");
                }
                let shared = Arc::clone(&shared);
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = serve_connection(stream, shared) => {}
                        _ = stopped.wait_for(|stop| *stop) => {}
                    }
                    debug!(%peer, "connection closed");
                });
            }
            Err(error) => {
                // Errors such as EMFILE are usually transient, so back off and go on.
                warn!(%error, "failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves requests on one connection until the client closes it, sends
/// `Connection: close`, or a fault resets it.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    loop {
        let request = match read_request(&mut reader).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(RequestError::Io(error)) => {
                debug!(%error, "failed to read a request");
                return;
            }
            Err(error) => {
                debug!(%error, "rejected a malformed request");
                let response = Response::message(error.status(), &error.to_string());
                let _ = write_response(reader.get_mut(), &response, true).await;
                return;
            }
        };
        let response = routes::handle(&shared, &request).await;
        debug!(method = %request.method, target = %request.target, status = response.status, "served request");
        let close = request.wants_close();
        if let Err(error) = write_response(reader.get_mut(), &response, close).await {
            debug!(%error, "failed to write a response");
            return;
        }
        if close || matches!(response.delivery, Delivery::ResetAfter(_)) {
            return;
        }
    }
}
