//! The cached, incremental analysis of a store against a full recomputation:
//! `analyze_store` with a warm cache must return exactly the tables that
//! `analysis::analyze` builds from every file at once, after new, replaced
//! and deleted snapshot files.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use polars::prelude::*;

use cpstat::analysis::{
    AnalysisParams, Every, PieceCache, PieceStats, ReportTables, RiskWeights, StoreAnalysis,
    Summary, analyze, analyze_store, summarize,
};
use cpstat::generate::{GenerateOptions, generate};
use cpstat::snapshot::{SnapshotFile, Store};

const ACCOUNTS: usize = 2;
const SNAPSHOTS: u32 = 10;

/// Generates `SNAPSHOTS + 1` weekly snapshots of two accounts into `source`
/// and copies all but the last of each account into `store`; returns the
/// held-back files.
fn store_with_one_held_back(source: &Path, store: &Path) -> Vec<SnapshotFile> {
    let options = GenerateOptions {
        users: 200,
        snapshots: SNAPSHOTS + 1,
        every_days: 7,
        accounts: ACCOUNTS,
        seed: 11,
        first_day: 28,
    };
    generate(source, &options).expect("the store is generated");
    let files = Store::new(source).list(&[]).expect("the source lists");
    let newest = files[files.len() - ACCOUNTS..].to_vec();
    for file in &files[..files.len() - ACCOUNTS] {
        copy_into(store, source, &file.path);
    }
    newest
}

fn copy_into(store: &Path, source: &Path, path: &Path) -> PathBuf {
    let target = store.join(path.strip_prefix(source).expect("a file of the source"));
    fs::create_dir_all(target.parent().expect("a parent folder")).expect("a folder");
    fs::copy(path, &target).expect("the file is copied");
    target
}

fn files(store: &Path) -> Vec<SnapshotFile> {
    Store::new(store).list(&[]).expect("the store lists")
}

fn cached(store: &Path, params: &AnalysisParams) -> StoreAnalysis {
    let cache = PieceCache::new(&Store::new(store));
    analyze_store(&files(store), params, Some(&cache)).expect("the cached analysis runs")
}

/// Analyses every file at once with `analysis::analyze`: the reference.
fn full(store: &Path, params: &AnalysisParams) -> (ReportTables, Summary) {
    let scan = Store::scan(&files(store)).expect("the store scans");
    let tables = analyze(scan.clone(), params).expect("the full analysis runs");
    let summary = summarize(scan, &tables, params).expect("the summary builds");
    (tables, summary)
}

fn named(tables: &ReportTables) -> [(&str, &DataFrame); 4] {
    [
        ("user_risk", &tables.user_risk),
        ("group_rates", &tables.group_rates),
        ("department_trend", &tables.department_trend),
        ("repeat_clickers", &tables.repeat_clickers),
    ]
}

/// Asserts that both analyses built the same tables, row for row, with the
/// same schemas, and the same summary.
fn assert_same(context: &str, incremental: &StoreAnalysis, reference: &(ReportTables, Summary)) {
    for ((name, got), (_, want)) in named(&incremental.tables)
        .into_iter()
        .zip(named(&reference.0))
    {
        assert!(
            want.height() > 0,
            "{context}: the reference {name} is empty"
        );
        assert_eq!(got.schema(), want.schema(), "{context}: schema of {name}");
        assert_eq!(got.height(), want.height(), "{context}: rows of {name}");
        for column in want.columns() {
            let other = got.column(column.name()).expect("the same columns");
            assert!(
                column
                    .as_materialized_series()
                    .equals_missing(other.as_materialized_series()),
                "{context}: column {name}.{} differs",
                column.name()
            );
        }
    }
    assert_eq!(incremental.summary, reference.1, "{context}: summary");
}

/// Returns the statistics of a run with the default parameters, in which
/// every period is also a pair of consecutive snapshots with departures.
fn stats(snapshots: (usize, usize), periods: (usize, usize)) -> PieceStats {
    PieceStats {
        snapshots_computed: snapshots.0,
        snapshots_reused: snapshots.1,
        periods_computed: periods.0,
        periods_reused: periods.1,
        departures_computed: periods.0,
        departures_reused: periods.1,
    }
}

/// Rewrites a snapshot file with `change` applied to its rows, through a
/// temporary file and a rename as `fetch` writes.
fn rewrite(path: &Path, change: impl FnOnce(LazyFrame) -> LazyFrame) {
    let frame = ParquetReader::new(File::open(path).expect("the file opens"))
        .finish()
        .expect("the file reads");
    let mut changed = change(frame.lazy()).collect().expect("the change applies");
    let temp = path.with_extension("rewrite.tmp");
    ParquetWriter::new(File::create(&temp).expect("a temporary file"))
        .finish(&mut changed)
        .expect("the file writes");
    fs::rename(&temp, path).expect("the file is replaced");
}

#[test]
fn new_snapshot_reuses_earlier_pieces() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (source, store) = (root.path().join("source"), root.path().join("store"));
    let held_back = store_with_one_held_back(&source, &store);
    let params = AnalysisParams::default();
    let n = SNAPSHOTS as usize * ACCOUNTS;
    let periods = (SNAPSHOTS as usize - 1) * ACCOUNTS;

    let first = cached(&store, &params);
    assert_eq!(first.stats, stats((n, 0), (periods, 0)), "cold cache");
    assert_same("cold cache", &first, &full(&store, &params));

    for file in &held_back {
        copy_into(&store, &source, &file.path);
    }
    let second = cached(&store, &params);
    assert_eq!(
        second.stats,
        stats((ACCOUNTS, n), (ACCOUNTS, periods)),
        "only the new snapshots and periods are computed"
    );
    assert_same(
        "one new snapshot per account",
        &second,
        &full(&store, &params),
    );

    let again = cached(&store, &params);
    assert_eq!(
        again.stats,
        stats((0, n + ACCOUNTS), (0, periods + ACCOUNTS))
    );
    assert_same("warm cache", &again, &full(&store, &params));
}

#[test]
fn uncached_analysis_equals_full() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (source, store) = (root.path().join("source"), root.path().join("store"));
    store_with_one_held_back(&source, &store);
    let params = AnalysisParams::default();
    let analysis = analyze_store(&files(&store), &params, None).expect("the analysis runs");
    assert_same("no cache", &analysis, &full(&store, &params));
    assert!(!store.join("cache").exists(), "no cache folder is written");
}

#[test]
fn replaced_snapshot_recomputes_its_pieces() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (source, store) = (root.path().join("source"), root.path().join("store"));
    store_with_one_held_back(&source, &store);
    let params = AnalysisParams::default();
    cached(&store, &params);

    // A middle snapshot of the first account gains clicks and a new spelling
    // of every department, which changes the display values too.
    let middle = files(&store)[ACCOUNTS * 4].path.clone();
    rewrite(&middle, |rows| {
        rows.with_columns([
            (col("links_clicked") + lit(3i64)).alias("links_clicked"),
            col("department").str().to_uppercase().alias("department"),
        ])
    });
    let n = SNAPSHOTS as usize * ACCOUNTS;
    let periods = (SNAPSHOTS as usize - 1) * ACCOUNTS;
    let analysis = cached(&store, &params);
    assert_eq!(
        analysis.stats,
        stats((1, n - 1), (2, periods - 2)),
        "the replaced file and its two periods are computed"
    );
    assert_same("replaced snapshot", &analysis, &full(&store, &params));
}

#[test]
fn duplicated_user_keeps_first_row() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (source, store) = (root.path().join("source"), root.path().join("store"));
    store_with_one_held_back(&source, &store);
    let params = AnalysisParams::default();

    // Ten users appear twice in the newest snapshot of the first account,
    // first with more clicks, so keeping the wrong row changes the tables.
    let newest = files(&store)[files(&store).len() - ACCOUNTS].path.clone();
    rewrite(&newest, |rows| {
        let changed = rows
            .clone()
            .limit(10)
            .with_column((col("links_clicked") + lit(5i64)).alias("links_clicked"));
        concat([changed, rows], UnionArgs::default()).expect("the frames concatenate")
    });
    let analysis = cached(&store, &params);
    assert_same("duplicated users", &analysis, &full(&store, &params));
}

#[test]
fn footer_change_alone_invalidates_pieces() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (source, store) = (root.path().join("source"), root.path().join("store"));
    store_with_one_held_back(&source, &store);
    let params = AnalysisParams::default();
    cached(&store, &params);

    // Change one byte of the footer's key-value metadata and restore the
    // modification time, so only the footer hash distinguishes the files.
    let path = files(&store)[0].path.clone();
    let modified = fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("a time");
    let mut bytes = fs::read(&path).expect("the file reads");
    let at = bytes
        .windows(b"generator".len())
        .rposition(|w| w == b"generator")
        .expect("the footer names the generator");
    bytes[at] = b'G';
    fs::write(&path, &bytes).expect("the file writes");
    File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(modified))
        .expect("the time is restored");

    let analysis = cached(&store, &params);
    assert_eq!(analysis.stats.snapshots_computed, 1);
    assert_eq!(
        analysis.stats.periods_computed, 1,
        "the first file starts one period"
    );
    assert_same("footer change", &analysis, &full(&store, &params));
}

#[test]
fn deleted_snapshot_drops_its_pieces() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (source, store) = (root.path().join("source"), root.path().join("store"));
    store_with_one_held_back(&source, &store);
    let params = AnalysisParams::default();
    cached(&store, &params);

    let deleted = files(&store)[ACCOUNTS * 3].path.clone();
    let stem = deleted.file_stem().unwrap().to_string_lossy().into_owned();
    let folder = deleted.parent().unwrap().file_name().unwrap().to_owned();
    fs::remove_file(&deleted).expect("the file is removed");
    let analysis = cached(&store, &params);
    assert_eq!(
        analysis.stats.periods_computed, 1,
        "the period across the gap"
    );
    assert_same("deleted snapshot", &analysis, &full(&store, &params));

    let cache = store.join(cpstat::analysis::incremental::CACHE_DIR);
    let leftovers: Vec<PathBuf> = walk(&cache)
        .into_iter()
        .filter(|p| p.parent().and_then(Path::file_name) == Some(folder.as_os_str()))
        .filter(|p| p.to_string_lossy().contains(&stem))
        .collect();
    assert!(
        leftovers.is_empty(),
        "pieces of the deleted file: {leftovers:?}"
    );
}

#[test]
fn parameters_apply_to_cached_pieces() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (source, store) = (root.path().join("source"), root.path().join("store"));
    store_with_one_held_back(&source, &store);
    cached(&store, &AnalysisParams::default());

    let snapshot_times: Vec<_> = files(&store).iter().map(|f| f.snapshot_at).collect();
    let cases = [
        AnalysisParams {
            every: Some(Every::Week),
            ..AnalysisParams::default()
        },
        // Several weekly snapshots per month, so periods skip snapshots.
        AnalysisParams {
            every: Some(Every::Month),
            ..AnalysisParams::default()
        },
        AnalysisParams {
            since: Some(snapshot_times[ACCOUNTS * 2]),
            until: Some(snapshot_times[snapshot_times.len() - ACCOUNTS * 2]),
            smoothing_strength: 0.0,
            weights: RiskWeights {
                click: 0.5,
                submit: 0.1,
                training: 0.2,
                overdue: 0.1,
                score: 0.1,
            },
            every: None,
        },
    ];
    for params in cases {
        let analysis = cached(&store, &params);
        assert_same(&format!("{params:?}"), &analysis, &full(&store, &params));
    }
}

#[test]
fn repeat_clicker_who_left_keeps_older_identity() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (source, store) = (root.path().join("source"), root.path().join("store"));
    let held_back = store_with_one_held_back(&source, &store);
    let params = AnalysisParams::default();
    let before = cached(&store, &params);
    let clickers = &before.tables.repeat_clickers;
    assert!(
        clickers.height() > 0,
        "the generated store has repeat clickers"
    );
    let leaver = clickers
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_owned();

    // The newest snapshots lack the repeat clicker, so their identity must
    // come from an older file.
    for file in &held_back {
        let target = copy_into(&store, &source, &file.path);
        let id = leaver.clone();
        rewrite(&target, move |rows| {
            rows.filter(col("user_id").neq(lit(id)))
        });
    }
    let analysis = cached(&store, &params);
    let clickers = &analysis.tables.repeat_clickers;
    let row = clickers
        .clone()
        .lazy()
        .filter(col("user_id").eq(lit(leaver.clone())))
        .collect()
        .unwrap();
    assert_eq!(row.height(), 1, "the leaver is still a repeat clicker");
    let newest = held_back[0].snapshot_at.timestamp_micros();
    let last_seen = row
        .column("last_seen_at")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    assert!(last_seen.i64().unwrap().get(0).unwrap() < newest);
    assert_same("repeat clicker left", &analysis, &full(&store, &params));
}

#[test]
fn no_cache_flag_writes_no_cache() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let store = root.path().join("store");
    let cpstat = || Command::cargo_bin("cpstat").expect("the binary is built");
    cpstat()
        .args([
            "gen",
            "--users",
            "50",
            "--snapshots",
            "3",
            "--every",
            "1d",
            "--out",
        ])
        .arg(&store)
        .assert()
        .success();

    cpstat()
        .args(["analyze", "--quiet", "--no-cache", "--store"])
        .arg(&store)
        .assert()
        .success();
    assert!(!store.join("cache").exists(), "--no-cache wrote a cache");

    cpstat()
        .args(["analyze", "--quiet", "--store"])
        .arg(&store)
        .assert()
        .success();
    let pieces = walk(&store.join(cpstat::analysis::incremental::CACHE_DIR));
    // Three snapshots with two pieces each, and two periods with three each
    // (department counts, rising clicks, departures).
    assert_eq!(pieces.len(), 3 * 2 + 2 * 3, "{pieces:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
