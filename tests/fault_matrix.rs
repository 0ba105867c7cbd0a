//! One test per server fault, against the mock API over loopback HTTP.
//!
//! Every test first writes a clean baseline snapshot, then fetches again
//! through the fault. The fetch must end in one of two ways: a complete,
//! correct snapshot (every served user exactly once, in server order), or a
//! clean failure that wrote nothing and left the baseline byte for byte as
//! it was. `docs/security.md` lists the outcome of each fault.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use cpstat::api::auth::Credentials;
use cpstat::api::fetch::NoProgress;
use cpstat::api::retry::RetryPolicy;
use cpstat::api::{ApiError, ClientOptions, FetchOptions, FetchOutcome};
use cpstat::commands::fetch::fetch_and_write;
use cpstat::mock::{DEFAULT_TOKEN, Fault, MockApi, MockOptions, OrgConfig, Organisation};
use cpstat::secret::Secret;
use cpstat::settings::{AccountSettings, FetchSettings};

const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";
const USERS: usize = 50;
const PAGE_SIZE: u64 = 20;

fn org_config(big_ids: bool) -> OrgConfig {
    OrgConfig {
        seed: 23,
        account_id: ACCOUNT.to_string(),
        users: USERS,
        big_ids,
        ..OrgConfig::default()
    }
}

/// A mock, a store holding one baseline snapshot, and that file's bytes.
struct Harness {
    mock: MockApi,
    store: tempfile::TempDir,
    baseline: PathBuf,
    baseline_bytes: Vec<u8>,
    config: OrgConfig,
}

fn settings(mock: &MockApi, store: &Path, at: &str) -> FetchSettings {
    FetchSettings {
        store: store.to_path_buf(),
        account: AccountSettings {
            id: ACCOUNT.to_string(),
            display_name: None,
            credentials: Credentials::Token(Secret::new(DEFAULT_TOKEN)),
            client: ClientOptions {
                base_url: mock.base_url(),
                read_timeout: Duration::from_secs(2),
                retry: RetryPolicy {
                    time_scale: 0.0,
                    max_wait: Duration::from_secs(120),
                    ..RetryPolicy::default()
                },
                ..ClientOptions::default()
            },
        },
        fetch: FetchOptions {
            page_size: PAGE_SIZE,
            concurrency: 2,
            ..FetchOptions::default()
        },
        snapshot_at: Some(at.parse().unwrap()),
    }
}

impl Harness {
    async fn start(options: MockOptions, config: OrgConfig) -> Harness {
        let mock = MockApi::start(options, vec![Organisation::new(config.clone())])
            .await
            .unwrap();
        let store = tempfile::tempdir().unwrap();
        let baseline_settings =
            with_mock_credentials(&mock, settings(&mock, store.path(), "2026-11-23T06:00:00Z"));
        let (_, baseline) = fetch_and_write(&baseline_settings, &NoProgress)
            .await
            .expect("the baseline fetch succeeds");
        let baseline_bytes = std::fs::read(&baseline).unwrap();
        mock.reset_stats();
        Harness {
            mock,
            store,
            baseline,
            baseline_bytes,
            config,
        }
    }

    async fn new() -> Harness {
        Harness::start(MockOptions::default(), org_config(false)).await
    }

    /// Settings of the fetch under test, a week after the baseline.
    fn settings(&self) -> FetchSettings {
        with_mock_credentials(
            &self.mock,
            settings(&self.mock, self.store.path(), "2026-11-30T06:00:00Z"),
        )
    }

    async fn fetch_with(
        &self,
        settings: &FetchSettings,
    ) -> anyhow::Result<(FetchOutcome, PathBuf)> {
        fetch_and_write(settings, &NoProgress).await
    }

    async fn fetch_through(&self, faults: Vec<Fault>) -> anyhow::Result<(FetchOutcome, PathBuf)> {
        self.mock.push_faults(faults);
        self.fetch_with(&self.settings()).await
    }

    fn served_ids(&self) -> Vec<String> {
        Organisation::new(self.config.clone())
            .users_at(0)
            .iter()
            .map(|entry| {
                let id = &entry["user"]["id"];
                id.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| id.to_string())
            })
            .collect()
    }

    fn assert_baseline_intact(&self) {
        let now = std::fs::read(&self.baseline).expect("the baseline still exists");
        assert!(now == self.baseline_bytes, "the baseline snapshot changed");
        assert_eq!(leftovers(self.store.path()), Vec::<PathBuf>::new());
    }

    /// Asserts a complete snapshot of every served user, exactly once, in
    /// server order; returns its path.
    fn assert_complete(&self, result: anyhow::Result<(FetchOutcome, PathBuf)>) -> PathBuf {
        let (outcome, path) = result.expect("the fetch ends in a complete snapshot");
        assert!(outcome.complete);
        let ids: Vec<String> = read_rows(&path)
            .iter()
            .map(|r| text(r, "user_id").unwrap())
            .collect();
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "no user twice"
        );
        assert_eq!(ids, self.served_ids(), "every served user, in server order");
        assert_eq!(key_values(&path)["cpstat.users_written"], USERS.to_string());
        self.assert_baseline_intact();
        assert_eq!(parquet_files(self.store.path()).len(), 2);
        path
    }

    /// Asserts a failure that wrote nothing; returns the error.
    fn assert_clean_failure(
        &self,
        result: anyhow::Result<(FetchOutcome, PathBuf)>,
    ) -> anyhow::Error {
        let error = result.expect_err("the fetch fails");
        assert!(
            format!("{error:#}").contains("no snapshot was written"),
            "{error:#}"
        );
        self.assert_baseline_intact();
        assert_eq!(
            parquet_files(self.store.path()),
            vec![self.baseline.clone()]
        );
        error
    }
}

/// Uses the password grant when the mock accepts no static token.
fn with_mock_credentials(mock: &MockApi, mut settings: FetchSettings) -> FetchSettings {
    if mock.options().tokens.is_empty() {
        settings.account.credentials = Credentials::PasswordGrant {
            auth_url: mock.auth_url(),
            client_id: mock.options().client_id.clone(),
            username: mock.options().username.clone(),
            password: Secret::new(mock.options().password.clone()),
        };
    }
    settings
}

/// Finds the API error in an error chain.
fn api_error(error: &anyhow::Error) -> &ApiError {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<ApiError>())
        .expect("an API error")
}

fn retries(path: &Path) -> String {
    key_values(path)["cpstat.retries"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_seconds_honoured() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::too_many_requests("3")]).await);
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_past_date_retries_at_once() {
    let h = Harness::new().await;
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    let path = h.assert_complete(h.fetch_through(vec![Fault::too_many_requests(past)]).await);
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_future_date_honoured() {
    let h = Harness::new().await;
    let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let path = h.assert_complete(
        h.fetch_through(vec![Fault::too_many_requests(future)])
            .await,
    );
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_malformed_uses_backoff() {
    let h = Harness::new().await;
    let faults = ["soon", "-5", "Tomorrow, 25 Dec", "1.5"]
        .map(Fault::too_many_requests)
        .to_vec();
    let path = h.assert_complete(h.fetch_through(faults).await);
    assert_eq!(retries(&path), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_above_cap_fails_cleanly() {
    let h = Harness::new().await;
    let mut settings = h.settings();
    settings.account.client.retry.max_wait = Duration::from_secs(60);
    h.mock.push_fault(Fault::too_many_requests("3600"));
    let failure = h.assert_clean_failure(h.fetch_with(&settings).await);
    let error = api_error(&failure);
    assert!(
        matches!(error, ApiError::RetryAfterTooLong { wait, .. } if *wait == Duration::from_secs(3600)),
        "{error}"
    );
    assert!(error.to_string().contains("--max-retry-wait"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_burst_recovers() {
    let h = Harness::new().await;
    let faults = [500, 502, 503, 504, 500].map(Fault::status).to_vec();
    let path = h.assert_complete(h.fetch_through(faults).await);
    assert_eq!(retries(&path), "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_burst_exhausts_attempts() {
    let h = Harness::new().await;
    let faults = [502, 503, 504, 500, 503, 502].map(Fault::status).to_vec();
    let failure = h.assert_clean_failure(h.fetch_through(faults).await);
    let error = api_error(&failure);
    assert!(
        matches!(
            error,
            ApiError::RetriesExhausted {
                attempts: 6,
                data: false,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("HTTP 502"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_mid_body_retried() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::ResetMidBody]).await);
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_page_not_cut_off() {
    let h = Harness::new().await;
    // 4 s in 50 chunks, 80 ms apart: longer than a 2-3 s total timeout would
    // allow, but each read arrives well within the 2 s read timeout.
    let trickle = Fault::Trickle {
        total: Duration::from_secs(4),
    };
    let path = h.assert_complete(h.fetch_through(vec![trickle]).await);
    assert_eq!(retries(&path), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out_then_retried() {
    let h = Harness::new().await;
    let path = h.assert_complete(
        h.fetch_through(vec![Fault::Delay(Duration::from_secs(4))])
            .await,
    );
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_decoded() {
    let options = MockOptions {
        gzip: true,
        ..MockOptions::default()
    };
    let h = Harness::start(options, org_config(false)).await;
    h.assert_complete(h.fetch_through(vec![]).await);
    let asked_gzip = h.mock.stats().requests.iter().all(|r| {
        r.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("accept-encoding") && v.contains("gzip"))
    });
    assert!(asked_gzip, "every request accepts gzip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_gzip_retried() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::GzipTruncated]).await);
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_json_retried() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::TruncatedJson]).await);
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_body_retried() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::Html200]).await);
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_body_every_time_fails_cleanly() {
    let h = Harness::new().await;
    let failure = h.assert_clean_failure(h.fetch_through(Fault::Html200.times(6)).await);
    let error = api_error(&failure);
    assert!(
        matches!(error, ApiError::RetriesExhausted { data: true, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("not JSON"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_object_retried() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::EmptyObject]).await);
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_result_retried() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::ResultNull]).await);
    assert_eq!(retries(&path), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_mismatch_trusts_array() {
    let h = Harness::new().await;
    let path = h.assert_complete(
        h.fetch_through(vec![Fault::FetchedMismatch, Fault::FetchedMismatch])
            .await,
    );
    assert_eq!(retries(&path), "0");
    assert_eq!(key_values(&path)["cpstat.rounds"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_change_refetches_round() {
    let h = Harness::new().await;
    let faults = vec![Fault::Delay(Duration::ZERO), Fault::CountChange(3)];
    let path = h.assert_complete(h.fetch_through(faults).await);
    let kv = key_values(&path);
    assert_eq!(kv["cpstat.rounds"], "2");
    assert!(
        kv["cpstat.notes"].contains("count changed"),
        "{}",
        kv["cpstat.notes"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_change_every_round_fails_cleanly() {
    let h = Harness::new().await;
    // The first page of each of the three rounds reports one user more.
    let mut faults = Vec::new();
    for _ in 0..3 {
        faults.extend([
            Fault::CountChange(1),
            Fault::Delay(Duration::ZERO),
            Fault::Delay(Duration::ZERO),
        ]);
    }
    let mut settings = h.settings();
    settings.fetch.concurrency = 1;
    h.mock.push_faults(faults);
    let failure = h.assert_clean_failure(h.fetch_with(&settings).await);
    let error = api_error(&failure);
    assert!(
        error.to_string().contains("changed during every one of 3"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_page_early_refetches_round() {
    let h = Harness::new().await;
    let faults = vec![Fault::Delay(Duration::ZERO), Fault::EmptyPageEarly];
    let path = h.assert_complete(h.fetch_through(faults).await);
    let kv = key_values(&path);
    assert_eq!(kv["cpstat.rounds"], "2");
    assert!(
        kv["cpstat.notes"].contains("empty pages"),
        "{}",
        kv["cpstat.notes"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_skip_detected_not_looped() {
    let h = Harness::new().await;
    // The baseline came from a well-behaved server. This one serves the first
    // page whatever `skip` requests.
    let options = MockOptions {
        ignore_skip: true,
        ..MockOptions::default()
    };
    let stuck = MockApi::start(options, vec![Organisation::new(h.config.clone())])
        .await
        .unwrap();
    let mut settings = h.settings();
    settings.account.client.base_url = stuck.base_url();
    let failure = h.assert_clean_failure(h.fetch_with(&settings).await);
    let error = api_error(&failure);
    assert!(matches!(error, ApiError::IgnoresSkip { .. }), "{error}");
    // The first page plus the pages already in flight, and no more.
    let requests = stuck.users_summary_requests();
    assert!(
        requests <= 1 + settings.fetch.concurrency,
        "{requests} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_page_stored_whole() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::HugePage]).await);
    let rows = read_rows(&path);
    let padded = rows
        .iter()
        .filter(|r| text(r, "extra").is_some_and(|e| e.contains("Bemærkning om brugeren")))
        .count();
    assert_eq!(
        padded, PAGE_SIZE as usize,
        "the page's undocumented notes are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_page_fails_cleanly() {
    let h = Harness::new().await;
    let mut settings = h.settings();
    settings.account.client.max_body_bytes = 1024 * 1024;
    h.mock.push_fault(Fault::HugePage);
    let failure = h.assert_clean_failure(h.fetch_with(&settings).await);
    let error = api_error(&failure);
    assert!(matches!(error, ApiError::Decode { .. }), "{error}");
    assert!(
        error.to_string().contains("larger than 1048576 bytes"),
        "{error}"
    );
    assert_eq!(
        h.mock.users_summary_requests(),
        1,
        "an oversized page is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_name_round_trips() {
    let h = Harness::new().await;
    let path = h.assert_complete(h.fetch_through(vec![Fault::HugeName]).await);
    let names: Vec<String> = read_rows(&path)
        .iter()
        .filter_map(|r| text(r, "name"))
        .filter(|n| n.len() >= 1024 * 1024)
        .collect();
    assert_eq!(names.len(), 1);
    let unit = "Åse Østergaard-Þórsdóttir ";
    assert!(names[0].starts_with(unit));
    assert_eq!(
        names[0].replace(unit, ""),
        "",
        "the name is the unit repeated, unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_above_two_pow_53_exact() {
    let h = Harness::start(MockOptions::default(), org_config(true)).await;
    let path = h.assert_complete(h.fetch_through(vec![]).await);
    let ids: Vec<u64> = read_rows(&path)
        .iter()
        .map(|r| text(r, "user_id").unwrap().parse().unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id > 1 << 53), "{ids:?}");
    assert!(
        ids.iter().any(|id| (*id as f64) as u64 != *id),
        "some ids lose digits as f64"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_strings_decoded() {
    let options = MockOptions {
        type_drift: true,
        ..MockOptions::default()
    };
    let drifted = Harness::start(options, org_config(false)).await;
    let clean = Harness::new().await;
    let drifted_rows = read_rows(&drifted.assert_complete(drifted.fetch_through(vec![]).await));
    let clean_rows = read_rows(&clean.assert_complete(clean.fetch_through(vec![]).await));
    for column in [
        "emails_sent",
        "links_clicked",
        "enrolled_courses",
        "overdue_courses",
    ] {
        let a: Vec<Option<i64>> = drifted_rows.iter().map(|r| long(r, column)).collect();
        let b: Vec<Option<i64>> = clean_rows.iter().map(|r| long(r, column)).collect();
        assert_eq!(a, b, "{column}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_halfway_renews_grant() {
    let options = MockOptions {
        tokens: vec![],
        ..MockOptions::default()
    };
    let h = Harness::start(options, org_config(false)).await;
    let faults = vec![Fault::Delay(Duration::ZERO), Fault::expired_token()];
    let path = h.assert_complete(h.fetch_through(faults).await);
    assert_eq!(retries(&path), "0", "a renewal is not a retry");
    assert_eq!(
        h.mock.token_requests(),
        2,
        "one token, then one after the 401"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_halfway_bare_token_fails_cleanly() {
    let h = Harness::new().await;
    let faults = vec![Fault::Delay(Duration::ZERO), Fault::expired_token()];
    let failure = h.assert_clean_failure(h.fetch_through(faults).await);
    let error = api_error(&failure);
    assert!(matches!(error, ApiError::Unauthorized { .. }), "{error}");
    assert!(error.to_string().contains("password grant"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_status_fails_cleanly() {
    let h = Harness::new().await;
    let failure = h.assert_clean_failure(h.fetch_through(vec![Fault::status(400)]).await);
    let error = api_error(&failure);
    assert!(error.to_string().contains("unexpected HTTP 400"), "{error}");
}
