//! `fetch` against the mock API over loopback HTTP, with the written
//! snapshots read back by the independent `parquet` crate.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use cpstat::api::auth::Credentials;
use cpstat::api::fetch::NoProgress;
use cpstat::api::retry::RetryPolicy;
use cpstat::api::{ApiError, ClientOptions, FetchOptions};
use cpstat::commands::fetch::fetch_and_write;
use cpstat::mock::{DEFAULT_TOKEN, Fault, MockApi, MockOptions, Mutation, OrgConfig, Organisation};
use cpstat::secret::Secret;
use cpstat::settings::{AccountSettings, FetchSettings};

const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";

fn org(users: usize) -> Organisation {
    Organisation::new(OrgConfig {
        seed: 11,
        account_id: ACCOUNT.to_string(),
        users,
        ..OrgConfig::default()
    })
}

async fn start(users: usize, options: MockOptions) -> MockApi {
    MockApi::start(options, vec![org(users)])
        .await
        .expect("mock API starts")
}

fn settings(mock: &MockApi, store: &Path, page_size: u64, concurrency: usize) -> FetchSettings {
    FetchSettings {
        store: store.to_path_buf(),
        account: AccountSettings {
            id: ACCOUNT.to_string(),
            display_name: None,
            credentials: Credentials::Token(Secret::new(DEFAULT_TOKEN)),
            client: ClientOptions {
                base_url: mock.base_url(),
                read_timeout: Duration::from_secs(5),
                retry: RetryPolicy {
                    time_scale: 0.0,
                    ..RetryPolicy::default()
                },
                ..ClientOptions::default()
            },
        },
        fetch: FetchOptions {
            page_size,
            concurrency,
            ..FetchOptions::default()
        },
        snapshot_at: Some("2026-11-30T06:00:00Z".parse().unwrap()),
    }
}

/// The user ids the mock serves on a day, in its order.
fn served_ids(users: usize, day: u32) -> Vec<String> {
    org(users)
        .users_at(day)
        .iter()
        .map(|u| {
            let id = &u["user"]["id"];
            id.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string())
        })
        .collect()
}

fn snapshot_ids(path: &Path) -> Vec<String> {
    read_rows(path)
        .iter()
        .map(|r| text(r, "user_id").unwrap())
        .collect()
}

async fn fetch(
    mock: &MockApi,
    store: &Path,
    page_size: u64,
    concurrency: usize,
) -> anyhow::Result<PathBuf> {
    let (_, path) =
        fetch_and_write(&settings(mock, store, page_size, concurrency), &NoProgress).await?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_page_boundary_counts() {
    let page_size = 25u64;
    for users in [0usize, 1, 24, 25, 26, 51] {
        let mock = start(users, MockOptions::default()).await;
        let store = tempfile::tempdir().unwrap();
        let path = fetch(&mock, store.path(), page_size, 4).await.unwrap();
        let ids = snapshot_ids(&path);
        let expected = served_ids(users, 0);
        assert_eq!(
            expected.len(),
            users,
            "the mock serves its headcount on day 0"
        );
        assert_eq!(
            ids, expected,
            "{users} users: every user once, in server order"
        );
        let kv = key_values(&path);
        assert_eq!(kv["cpstat.count_reported"], users.to_string());
        let pages_needed = (users as u64).div_ceil(page_size).max(1);
        assert_eq!(
            mock.users_summary_requests() as u64,
            pages_needed,
            "{users} users"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_ten_thousand_users() {
    let mock = start(10_000, MockOptions::default()).await;
    let store = tempfile::tempdir().unwrap();
    let path = fetch(&mock, store.path(), 500, 8).await.unwrap();
    let ids = snapshot_ids(&path);
    assert_eq!(ids.len(), 10_000);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 10_000);
    assert_eq!(ids, served_ids(10_000, 0));
    assert_eq!(mock.users_summary_requests(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_honours_server_page_cap() {
    let options = MockOptions {
        page_cap: Some(30),
        ..MockOptions::default()
    };
    let mock = start(100, options).await;
    let store = tempfile::tempdir().unwrap();
    let path = fetch(&mock, store.path(), 100, 4).await.unwrap();
    assert_eq!(snapshot_ids(&path), served_ids(100, 0));
    let mut skips: Vec<usize> = mock
        .pages_requested()
        .iter()
        .map(|(_, skip)| *skip)
        .collect();
    skips.sort_unstable();
    assert_eq!(
        skips,
        vec![0, 30, 60, 90],
        "pages advance by what the server returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_does_not_change_snapshot() {
    let mock = start(333, MockOptions::default()).await;
    let one = tempfile::tempdir().unwrap();
    let eight = tempfile::tempdir().unwrap();
    let serial = fetch(&mock, one.path(), 20, 1).await.unwrap();
    let parallel = fetch(&mock, eight.path(), 20, 8).await.unwrap();
    assert_eq!(read_rows(&serial), read_rows(&parallel));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_added_mid_fetch_counted_once() {
    let mock = start(120, MockOptions::default()).await;
    // The second page request inserts 5 users at the front, shifting every
    // later offset by 5: the first round sees duplicates and a new count.
    mock.push_faults([
        Fault::Delay(Duration::ZERO),
        Fault::Mutate(Mutation::Insert { at: 0, count: 5 }),
    ]);
    let store = tempfile::tempdir().unwrap();
    let path = fetch(&mock, store.path(), 20, 1).await.unwrap();
    let ids = snapshot_ids(&path);
    assert_eq!(ids.len(), 125);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        125,
        "no user twice"
    );
    let kv = key_values(&path);
    assert_eq!(
        kv["cpstat.rounds"], "2",
        "the changed first round was fetched again"
    );
    assert!(
        kv["cpstat.notes"].contains("round 1"),
        "{}",
        kv["cpstat.notes"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_removed_mid_fetch_counted_once() {
    let mock = start(120, MockOptions::default()).await;
    mock.push_faults([
        Fault::Delay(Duration::ZERO),
        Fault::Delay(Duration::ZERO),
        Fault::Mutate(Mutation::Remove { at: 3, count: 7 }),
    ]);
    let store = tempfile::tempdir().unwrap();
    let path = fetch(&mock, store.path(), 20, 2).await.unwrap();
    let ids = snapshot_ids(&path);
    assert_eq!(ids.len(), 113);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 113);
    let removed: HashSet<String> = served_ids(120, 0)[3..10].iter().cloned().collect();
    assert!(
        ids.iter().all(|id| !removed.contains(id)),
        "removed users are gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changing_every_round_fails_cleanly() {
    let mock = start(60, MockOptions::default()).await;
    // Every request adds a user, so no round can see a stable account.
    mock.push_faults(Fault::Mutate(Mutation::Insert { at: 0, count: 1 }).times(40));
    let store = tempfile::tempdir().unwrap();
    let error = fetch(&mock, store.path(), 20, 1).await.unwrap_err();
    let api = error.downcast_ref::<ApiError>().expect("an API error");
    assert!(
        matches!(api, ApiError::Inconsistent { rounds: 3, .. }),
        "{api}"
    );
    assert!(parquet_files(store.path()).is_empty(), "nothing is written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_both_forms_honoured() {
    let mock = start(50, MockOptions::default()).await;
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(1));
    mock.push_faults([
        Fault::too_many_requests("1"),
        Fault::too_many_requests(soon),
    ]);
    let store = tempfile::tempdir().unwrap();
    let path = fetch(&mock, store.path(), 20, 1).await.unwrap();
    assert_eq!(snapshot_ids(&path), served_ids(50, 0));
    assert_eq!(key_values(&path)["cpstat.retries"], "2");
    assert_eq!(
        mock.users_summary_requests(),
        5,
        "3 pages plus 2 rejected requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_and_truncated_bodies_retried() {
    let mock = start(50, MockOptions::default()).await;
    mock.push_faults([
        Fault::Html200,
        Fault::TruncatedJson,
        Fault::GzipTruncated,
        Fault::ResetMidBody,
    ]);
    let store = tempfile::tempdir().unwrap();
    let path = fetch(&mock, store.path(), 20, 1).await.unwrap();
    assert_eq!(snapshot_ids(&path), served_ids(50, 0));
    assert_eq!(key_values(&path)["cpstat.retries"], "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_html_body_fails_as_data() {
    let mock = start(10, MockOptions::default()).await;
    mock.push_faults(Fault::Html200.times(6));
    let store = tempfile::tempdir().unwrap();
    let error = fetch(&mock, store.path(), 20, 1).await.unwrap_err();
    let api = error.downcast_ref::<ApiError>().expect("an API error");
    assert!(
        matches!(
            api,
            ApiError::RetriesExhausted {
                attempts: 6,
                data: true,
                ..
            }
        ),
        "{api}"
    );
    assert!(api.to_string().contains("not JSON"), "{api}");
    assert!(parquet_files(store.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_drift_and_extras_decoded() {
    let options = MockOptions {
        type_drift: true,
        extra_properties: true,
        gzip: true,
        ..MockOptions::default()
    };
    let mock = start(80, options).await;
    let clean = start(80, MockOptions::default()).await;
    let drifted_store = tempfile::tempdir().unwrap();
    let clean_store = tempfile::tempdir().unwrap();
    let drifted = read_rows(&fetch(&mock, drifted_store.path(), 30, 2).await.unwrap());
    let plain = read_rows(&fetch(&clean, clean_store.path(), 30, 2).await.unwrap());
    assert_eq!(drifted.len(), plain.len());
    let counters = [
        "enrolled_courses",
        "emails_sent",
        "links_clicked",
        "data_submitted",
    ];
    for (d, p) in drifted.iter().zip(&plain) {
        assert_eq!(text(d, "user_id"), text(p, "user_id"));
        for counter in counters {
            assert_eq!(
                long(d, counter),
                long(p, counter),
                "{counter} means the same number"
            );
        }
    }
    assert!(
        drifted.iter().any(|r| text(r, "extra").is_some()),
        "extra properties are kept"
    );
    assert!(plain.iter().all(|r| text(r, "extra").is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_grant_renews_expired_token() {
    let options = MockOptions {
        tokens: vec![],
        ..MockOptions::default()
    };
    let password = options.password.clone();
    let mock = start(90, options).await;
    let store = tempfile::tempdir().unwrap();
    let mut settings = settings(&mock, store.path(), 20, 1);
    settings.account.credentials = Credentials::PasswordGrant {
        auth_url: mock.auth_url(),
        client_id: "cpstat".into(),
        username: "api@nordlysenergi.dk".into(),
        password: Secret::new(password),
    };
    // The third request is rejected as if the token had expired.
    mock.push_faults([
        Fault::Delay(Duration::ZERO),
        Fault::Delay(Duration::ZERO),
        Fault::expired_token(),
    ]);
    let (outcome, path) = fetch_and_write(&settings, &NoProgress).await.unwrap();
    assert!(outcome.complete);
    assert_eq!(snapshot_ids(&path), served_ids(90, 0));
    assert_eq!(
        mock.token_requests(),
        2,
        "one token at the start, one after the 401"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_value_names_field_user_page() {
    let mut entries = org(30).users_at(0);
    entries[23]["linksClicked"] = serde_json::json!("lots");
    let id = entries[23]["user"]["id"].to_string();
    let options = MockOptions {
        fixture: Some(entries),
        ..MockOptions::default()
    };
    let mock = start(30, options).await;
    let store = tempfile::tempdir().unwrap();
    let error = fetch(&mock, store.path(), 10, 1).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("`linksClicked`"), "{message}");
    assert!(message.contains(&format!("user {id}")), "{message}");
    assert!(message.contains("page skip=20 take=10"), "{message}");
    assert_eq!(
        mock.users_summary_requests(),
        3,
        "a value error is not retried"
    );
    assert!(parquet_files(store.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_store_equals_fetched_store() {
    use cpstat::generate::{GenerateOptions, generate, organisation, snapshot_time};
    let options = GenerateOptions {
        users: 150,
        snapshots: 3,
        every_days: 7,
        accounts: 2,
        seed: 5,
        first_day: 28,
    };
    let generated = tempfile::tempdir().unwrap();
    let summary = generate(generated.path(), &options).unwrap();
    assert_eq!(summary.files, 6);

    let fetched = tempfile::tempdir().unwrap();
    for index in 0..options.accounts {
        let org = organisation(&options, index);
        let mock = MockApi::start(MockOptions::default(), vec![org.clone()])
            .await
            .unwrap();
        for snapshot in 0..options.snapshots {
            let day = options.first_day + snapshot * options.every_days;
            mock.set_day(day);
            let mut settings = settings(&mock, fetched.path(), 40, 4);
            settings.account.id = org.account_id().to_string();
            settings.snapshot_at = Some(snapshot_time(&org, day));
            fetch_and_write(&settings, &NoProgress).await.unwrap();
        }
    }
    let generated_files = parquet_files(generated.path());
    let fetched_files = parquet_files(fetched.path());
    assert_eq!(generated_files.len(), 6);
    let relative = |root: &Path, files: &[PathBuf]| -> Vec<PathBuf> {
        files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(
        relative(generated.path(), &generated_files),
        relative(fetched.path(), &fetched_files)
    );
    for (generated_file, fetched_file) in generated_files.iter().zip(&fetched_files) {
        let (a, b) = (read_rows(generated_file), read_rows(fetched_file));
        assert!(!a.is_empty());
        assert_eq!(
            a,
            b,
            "{} differs from the fetched snapshot",
            generated_file.display()
        );
    }
}
