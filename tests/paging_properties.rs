//! Properties of a fetch over random page sizes, server page caps,
//! concurrency and schedules of users inserted or removed mid-fetch: every
//! snapshot written holds each user exactly once, and a failed fetch writes
//! nothing.
//!
//! `CPSTAT_PROPTEST_CASES` sets the number of cases (default 12; the CI
//! script `.ci/kill_loop.sh` runs 256).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use cpstat::api::auth::Credentials;
use cpstat::api::fetch::NoProgress;
use cpstat::api::retry::RetryPolicy;
use cpstat::api::{ClientOptions, FetchOptions};
use cpstat::commands::fetch::fetch_and_write;
use cpstat::mock::{DEFAULT_TOKEN, Fault, MockApi, MockOptions, Mutation, OrgConfig, Organisation};
use cpstat::secret::Secret;
use cpstat::settings::{AccountSettings, FetchSettings};
use proptest::prelude::*;

const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";

#[derive(Debug, Clone)]
struct Case {
    users: usize,
    page_size: u64,
    page_cap: Option<usize>,
    concurrency: usize,
    /// (page request index, change applied before serving it)
    schedule: Vec<(usize, Mutation)>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0usize..160, 1usize..5).prop_map(|(at, count)| Mutation::Insert { at, count }),
        (0usize..160, 1usize..5).prop_map(|(at, count)| Mutation::Remove { at, count }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        0usize..150,
        1u64..60,
        proptest::option::of(1usize..40),
        1usize..6,
        proptest::collection::vec((0usize..12, mutation()), 0..4),
    )
        .prop_map(|(users, page_size, page_cap, concurrency, schedule)| Case {
            users,
            page_size,
            page_cap,
            concurrency,
            schedule,
        })
}

/// Builds one fault per request: the scheduled changes, with no-op faults between.
fn faults(schedule: &[(usize, Mutation)]) -> Vec<Fault> {
    let length = schedule
        .iter()
        .map(|(index, _)| index + 1)
        .max()
        .unwrap_or(0);
    let mut faults = vec![Fault::Delay(Duration::ZERO); length];
    for (index, change) in schedule {
        faults[*index] = Fault::Mutate(*change);
    }
    faults
}

/// Computes the served list after the first `applied` faults, as original
/// ids and `None` for users the mock inserted (whose ids the test cannot know).
fn expected_list(original: &[String], faults: &[Fault], applied: usize) -> Vec<Option<String>> {
    let mut list: Vec<Option<String>> = original.iter().cloned().map(Some).collect();
    for fault in &faults[..applied] {
        match fault {
            Fault::Mutate(Mutation::Insert { at, count }) => {
                let at = (*at).min(list.len());
                list.splice(at..at, std::iter::repeat_n(None, *count));
            }
            Fault::Mutate(Mutation::Remove { at, count }) => {
                let at = (*at).min(list.len());
                let end = (at + count).min(list.len());
                list.drain(at..end);
            }
            _ => {}
        }
    }
    list
}

fn settings(mock: &MockApi, store: &std::path::Path, case: &Case) -> FetchSettings {
    FetchSettings {
        store: store.to_path_buf(),
        account: AccountSettings {
            id: ACCOUNT.to_string(),
            display_name: None,
            credentials: Credentials::Token(Secret::new(DEFAULT_TOKEN)),
            client: ClientOptions {
                base_url: mock.base_url(),
                retry: RetryPolicy {
                    time_scale: 0.0,
                    ..RetryPolicy::default()
                },
                ..ClientOptions::default()
            },
        },
        fetch: FetchOptions {
            page_size: case.page_size,
            concurrency: case.concurrency,
            ..FetchOptions::default()
        },
        snapshot_at: Some("2026-11-30T06:00:00Z".parse().unwrap()),
    }
}

async fn check(case: Case) -> Result<(), TestCaseError> {
    let org = Organisation::new(OrgConfig {
        account_id: ACCOUNT.to_string(),
        users: case.users,
        ..OrgConfig::default()
    });
    let original: Vec<String> = org
        .users_at(0)
        .iter()
        .map(|u| {
            let id = &u["user"]["id"];
            id.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string())
        })
        .collect();
    let options = MockOptions {
        page_cap: case.page_cap,
        ..MockOptions::default()
    };
    let mock = MockApi::start(options, vec![org]).await.unwrap();
    let faults = faults(&case.schedule);
    mock.push_faults(faults.clone());
    let store = tempfile::tempdir().unwrap();

    let result = fetch_and_write(&settings(&mock, store.path(), &case), &NoProgress).await;
    let applied = faults.len() - mock.pending_faults();
    let changed = faults[..applied]
        .iter()
        .any(|f| matches!(f, Fault::Mutate(_)));
    let path = match result {
        Ok((_, path)) => path,
        Err(error) => {
            prop_assert!(
                changed,
                "a fetch of an unchanging account failed: {error:#}"
            );
            prop_assert!(
                parquet_files(store.path()).is_empty(),
                "a failed fetch wrote a file"
            );
            return Ok(());
        }
    };

    let ids: Vec<String> = read_rows(&path)
        .iter()
        .map(|r| text(r, "user_id").unwrap())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    prop_assert_eq!(unique.len(), ids.len(), "a user appears twice");
    let expected = expected_list(&original, &faults, applied);
    prop_assert_eq!(ids.len(), expected.len(), "users in the snapshot");
    for id in expected.iter().flatten() {
        prop_assert!(unique.contains(id), "user {} is missing", id);
    }
    let originals: HashSet<&String> = original.iter().collect();
    let new_users = ids.iter().filter(|id| !originals.contains(id)).count();
    prop_assert_eq!(new_users, expected.iter().filter(|e| e.is_none()).count());
    Ok(())
}

fn cases() -> u32 {
    std::env::var("CPSTAT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn snapshot_holds_each_user_once(case in case()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(check(case))?;
    }
}
