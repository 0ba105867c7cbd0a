//! criterion benchmarks of cpstat's hot paths: page decoding, snapshot
//! writing, the full analysis, and fetching from the mock API with latency.
//!
//! The large analysis cases need a generated store; they are built once per
//! run in a temporary folder. `CPSTAT_BENCH_LARGE=1` adds 100,000 x 52.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use cpstat::analysis::AnalysisParams;
use cpstat::api::auth::Credentials;
use cpstat::api::decode::decode_page_expecting;
use cpstat::api::fetch::NoProgress;
use cpstat::api::{ApiClient, ClientOptions, FetchOptions, fetch_account};
use cpstat::generate::{GenerateOptions, generate, users_of};
use cpstat::mock::{DEFAULT_TOKEN, MockApi, MockOptions, OrgConfig, Organisation};
use cpstat::secret::Secret;
use cpstat::snapshot::batch::UserBatches;
use cpstat::snapshot::{SnapshotMeta, Store, write_snapshot};

// The same allocator as the cpstat binary, so that the figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn organisation(users: usize) -> Organisation {
    Organisation::new(OrgConfig {
        users,
        ..OrgConfig::default()
    })
}

/// A users-summary body of `users` entries, as the mock serves it on day 60.
fn page_body(users: usize) -> Vec<u8> {
    let results = organisation(users).users_at(60);
    let page =
        serde_json::json!({"count": results.len(), "fetched": results.len(), "result": results});
    serde_json::to_vec(&page).expect("a JSON value serialises")
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_page");
    for users in [100usize, 1000] {
        let body = page_body(users);
        group.throughput(Throughput::Elements(users as u64));
        group.bench_with_input(BenchmarkId::from_parameter(users), &body, |b, body| {
            b.iter(|| decode_page_expecting(body, users).expect("the page decodes"))
        });
    }
    group.finish();
}

fn writing(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_snapshot");
    group.sample_size(20);
    for users in [10_000usize, 100_000] {
        let mut simulation = organisation(users).simulation();
        simulation.advance_to(60);
        let batch = UserBatches::from(users_of(simulation.users()));
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = Store::new(dir.path());
        let mut second = 0i64;
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(users), |b| {
            // The writer takes the batches, so each run gets a copy made
            // outside the measured time.
            b.iter_batched(
                || batch.clone(),
                |batch| {
                    second += 1;
                    let at = chrono::DateTime::from_timestamp(1_800_000_000 + second, 0)
                        .expect("a valid time");
                    write_snapshot(&store, "bench", at, batch, &SnapshotMeta::default())
                        .expect("the snapshot is written")
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Generates a store of `users` x `snapshots` weekly snapshots under `root`.
fn generated_store(root: &Path, users: usize, snapshots: u32) -> PathBuf {
    let dir = root.join(format!("store-{users}x{snapshots}"));
    let options = GenerateOptions {
        users,
        snapshots,
        every_days: 7,
        accounts: 1,
        seed: 7,
        first_day: 28,
    };
    generate(&dir, &options).expect("the store is generated");
    dir
}

fn analysis(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("a temporary folder");
    let mut sizes = vec![(10_000usize, 52u32)];
    if std::env::var_os("CPSTAT_BENCH_LARGE").is_some() {
        sizes.push((100_000, 52));
    }
    let mut group = c.benchmark_group("analyze");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    for (users, snapshots) in sizes {
        let store = Store::new(generated_store(root.path(), users, snapshots));
        let files = store.list(&[]).expect("the store lists");
        group.throughput(Throughput::Elements((users * snapshots as usize) as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("{users}x{snapshots}")),
            |b| {
                b.iter(|| {
                    // What `cpstat analyze --no-cache` computes, without writing the report set.
                    cpstat::analysis::analyze_store(&files, &AnalysisParams::default(), None)
                        .expect("the analysis runs")
                })
            },
        );
    }
    group.finish();
}

fn fetching(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let users = 10_000;
    let mock = runtime
        .block_on(MockApi::start(
            MockOptions {
                latency: Duration::from_millis(50),
                ..MockOptions::default()
            },
            vec![organisation(users)],
        ))
        .expect("the mock starts");
    let options = ClientOptions {
        base_url: mock.base_url(),
        ..ClientOptions::default()
    };
    let client =
        ApiClient::new(&options, Credentials::Token(Secret::new(DEFAULT_TOKEN))).expect("a client");
    let account = organisation(users).account_id().to_string();
    let mut group = c.benchmark_group("fetch_50ms_latency");
    group.sample_size(10);
    group.throughput(Throughput::Elements(users as u64));
    for concurrency in [4usize, 16] {
        let fetch = FetchOptions {
            page_size: 100,
            concurrency,
            ..FetchOptions::default()
        };
        group.bench_function(BenchmarkId::new("concurrency", concurrency), |b| {
            b.iter(|| {
                runtime
                    .block_on(fetch_account(&client, &account, &fetch, &NoProgress))
                    .expect("the fetch succeeds")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decoding, writing, analysis, fetching);
criterion_main!(benches);
