//! The real binary killed with SIGKILL at random moments of `fetch` and
//! `analyze`: after every kill the whole store must read back, and the next
//! run must clean up what the killed one left.
//!
//! `CPSTAT_KILL_LOOP_COUNT` sets the kills per command (default 6; the CI
//! script `.ci/kill_loop.sh` runs 20), `CPSTAT_KILL_LOOP_SEED` repeats a run,
//! and `CPSTAT_KILL_LOOP_STORE` keeps the store in that folder so that other
//! readers (DuckDB in CI) can check it afterwards.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use cpstat::mock::{DEFAULT_TOKEN, MockApi, MockOptions, OrgConfig, Organisation};
use cpstat::snapshot::Store;
use polars::prelude::{ParquetReader, SerReader};

const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";
const USERS: usize = 600;
const REPORT_TABLES: [&str; 4] = [
    "user_risk",
    "group_rates",
    "department_trend",
    "repeat_clickers",
];

/// A small xorshift generator, so that a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }

    /// Draws a kill time for a run that takes about `span`: anywhere in the
    /// run half of the time, else in its last part, where files are written.
    fn kill_delay(&mut self, span: Duration) -> Duration {
        let micros = span.as_micros() as u64;
        let offset = if self.below(2) == 0 {
            self.below(micros * 5 / 4)
        } else {
            micros * 6 / 10 + self.below(micros / 2)
        };
        Duration::from_micros(offset)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Scenario {
    base_url: String,
    root: PathBuf,
}

impl Scenario {
    fn store(&self) -> PathBuf {
        self.root.join("store")
    }

    fn fetch_args(&self, index: u64) -> Vec<String> {
        // A distinct snapshot time per run, because names have one-second resolution.
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T06:00:00Z").unwrap()
            + chrono::Duration::minutes(index as i64);
        [
            "fetch",
            "--account",
            ACCOUNT,
            "--store",
            "store",
            "--page-size",
            "50",
            "--concurrency",
            "2",
            "--snapshot-at",
            &at.to_rfc3339(),
        ]
        .map(str::to_string)
        .to_vec()
    }

    fn analyze_args(&self) -> Vec<String> {
        ["analyze", "--store", "store", "--format", "both"]
            .map(str::to_string)
            .to_vec()
    }

    fn command(&self, args: &[String], verbose: bool) -> std::process::Command {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        if verbose {
            all.insert(0, "-v");
        }
        let env = [
            ("CPSTAT_TOKEN", DEFAULT_TOKEN),
            ("CPSTAT_BASE_URL", self.base_url.as_str()),
        ];
        cpstat_command(&all, &env, &self.root)
    }

    /// Runs to the end and returns the output and the time it took.
    fn complete(&self, args: &[String]) -> (std::process::Output, Duration) {
        let started = Instant::now();
        let output = self.command(args, true).output().unwrap();
        (output, started.elapsed())
    }

    /// Starts a run and kills it with SIGKILL after `delay`.
    fn kill_after(&self, args: &[String], delay: Duration) {
        let mut child = self
            .command(args, false)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
    }
}

/// Reads every Parquet file in the store with the `parquet` crate and with
/// polars, checks each snapshot, and checks that `latest` names a complete
/// report set. Returns how many snapshots there are.
fn assert_store_readable(store: &Path, context: &str) -> usize {
    for path in parquet_files(store) {
        let rows = read_rows(&path);
        let file = std::fs::File::open(&path).unwrap();
        let frame = ParquetReader::new(file)
            .finish()
            .unwrap_or_else(|e| panic!("{context}: polars cannot read {}: {e}", path.display()));
        assert_eq!(frame.height(), rows.len(), "{context}: {}", path.display());
    }

    let snapshots = Store::new(store).list(&[]).unwrap();
    for snapshot in &snapshots {
        let ids: Vec<String> = read_rows(&snapshot.path)
            .iter()
            .map(|r| text(r, "user_id").unwrap())
            .collect();
        assert_eq!(ids.len(), USERS, "{context}: {}", snapshot.path.display());
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), USERS, "{context}");
    }
    let scanned = Store::scan(&snapshots).unwrap().collect().unwrap();
    assert_eq!(scanned.height(), USERS * snapshots.len(), "{context}");

    let latest = store.join("reports/latest");
    if latest.is_symlink() {
        assert!(latest.is_dir(), "{context}: latest points to a missing set");
        for table in REPORT_TABLES {
            let path = latest.join(format!("{table}.parquet"));
            assert!(path.is_file(), "{context}: latest lacks {table}");
            read_rows(&path);
        }
    }
    snapshots.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_corrupts_store() {
    let options = MockOptions {
        latency: Duration::from_millis(15),
        ..MockOptions::default()
    };
    let org = Organisation::new(OrgConfig {
        account_id: ACCOUNT.to_string(),
        users: USERS,
        ..OrgConfig::default()
    });
    let mock = MockApi::start(options, vec![org]).await.unwrap();
    let kept = std::env::var("CPSTAT_KILL_LOOP_STORE")
        .ok()
        .map(PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let root = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&root).unwrap();
    let scenario = Scenario {
        base_url: mock.base_url(),
        root,
    };
    let kills = env_number("CPSTAT_KILL_LOOP_COUNT", 6);
    let seed = env_number("CPSTAT_KILL_LOOP_SEED", 0).max(1);
    let seed = if seed == 1 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1
    } else {
        seed
    };
    eprintln!("kill loop: {kills} kills per command, CPSTAT_KILL_LOOP_SEED={seed}");

    tokio::task::spawn_blocking(move || kill_loop(&scenario, kills, Rng(seed)))
        .await
        .unwrap();
    mock.shutdown().await;
}

fn kill_loop(scenario: &Scenario, kills: u64, mut rng: Rng) {
    let store = scenario.store();

    // A complete run of each command gives the span to kill within; analyze
    // is timed after the fetches, because it slows as snapshots are added.
    let (fetched, fetch_time) = scenario.complete(&scenario.fetch_args(0));
    let fetch_log = String::from_utf8_lossy(&fetched.stderr).into_owned();
    assert_eq!(fetched.status.code(), Some(0), "{fetch_log}");
    let mut expected_snapshots = assert_store_readable(&store, "after the first fetch");

    let mut interrupted_writes = 0;
    for index in 1..=kills {
        let delay = rng.kill_delay(fetch_time);
        scenario.kill_after(&scenario.fetch_args(index), delay);
        interrupted_writes += usize::from(!leftovers(&store).is_empty());
        let context = format!("fetch {index} killed after {delay:?}");
        let found = assert_store_readable(&store, &context);
        assert!(
            found == expected_snapshots || found == expected_snapshots + 1,
            "{context}: {found} snapshots, expected {expected_snapshots} or one more"
        );
        expected_snapshots = found;
    }
    let (analyzed, analyze_time) = scenario.complete(&scenario.analyze_args());
    let analyze_log = String::from_utf8_lossy(&analyzed.stderr).into_owned();
    assert_eq!(analyzed.status.code(), Some(0), "{analyze_log}");
    for index in 1..=kills {
        let delay = rng.kill_delay(analyze_time);
        scenario.kill_after(&scenario.analyze_args(), delay);
        interrupted_writes += usize::from(!leftovers(&store).is_empty());
        assert_store_readable(&store, &format!("analyze {index} killed after {delay:?}"));
    }
    eprintln!(
        "kill loop: {interrupted_writes} of {} kills left temporary files; fetch took {fetch_time:?}, analyze {analyze_time:?}",
        2 * kills
    );

    assert_next_runs_clean_up(scenario, kills);
}

/// Checks that a complete fetch and analyze after the kills succeed, log
/// what they removed, and leave no temporary file behind.
fn assert_next_runs_clean_up(scenario: &Scenario, kills: u64) {
    let store = scenario.store();
    let left = leftovers(&store);
    let (fetched, _) = scenario.complete(&scenario.fetch_args(kills + 1));
    let fetch_log = String::from_utf8_lossy(&fetched.stderr).into_owned();
    assert_eq!(fetched.status.code(), Some(0), "{fetch_log}");
    let (analyzed, _) = scenario.complete(&scenario.analyze_args());
    let analyze_log = String::from_utf8_lossy(&analyzed.stderr).into_owned();
    assert_eq!(analyzed.status.code(), Some(0), "{analyze_log}");

    if !left.is_empty() {
        assert!(
            fetch_log.contains("removed"),
            "leftovers {left:?} were not reported as removed: {fetch_log}"
        );
    }
    assert_eq!(
        leftovers(&store),
        Vec::<PathBuf>::new(),
        "nothing left over"
    );
    assert_store_readable(&store, "after the clean-up runs");
}
