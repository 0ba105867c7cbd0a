//! The store at rest, through the real binary: private permissions, `verify`
//! finding each kind of damage, `analyze` naming an invalid file, and
//! `forget` removing one person from every snapshot.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use cpstat::mock::{DEFAULT_TOKEN, MockApi, MockOptions, OrgConfig, Organisation};
use cpstat::snapshot::batch::UserBatches;
use cpstat::snapshot::record::UserRecord;
use cpstat::snapshot::{SnapshotMeta, Store, write_snapshot};

const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A store with two snapshots a week apart and one report set, written by
/// the binary from the mock; returns the temp folder holding `store/`.
async fn populated_store() -> tempfile::TempDir {
    let org = Organisation::new(OrgConfig {
        account_id: ACCOUNT.to_string(),
        users: 80,
        ..OrgConfig::default()
    });
    let mock = MockApi::start(MockOptions::default(), vec![org])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = mock.base_url();
    let env = [
        ("CPSTAT_TOKEN", DEFAULT_TOKEN),
        ("CPSTAT_BASE_URL", base.as_str()),
    ];
    for (day, at) in [(0, "2026-11-23T06:00:00Z"), (7, "2026-11-30T06:00:00Z")] {
        mock.set_day(day);
        let args = [
            "fetch",
            "--account",
            ACCOUNT,
            "--store",
            "store",
            "--snapshot-at",
            at,
        ];
        let output = cpstat(&args, &env, dir.path()).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    let output = cpstat(
        &["analyze", "--store", "store", "--format", "both"],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    dir
}

/// Formats a path as the binary prints it when run in `cwd` with `--store store`.
fn relative(cwd: &Path, path: &Path) -> String {
    path.strip_prefix(cwd).unwrap().display().to_string()
}

fn snapshot_paths(store: &Path) -> Vec<PathBuf> {
    parquet_files(&store.join("users_summary"))
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_files_private_on_unix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = populated_store().await;
    let store = dir.path().join("store");
    let output = cpstat(
        &[
            "query",
            "SELECT email FROM latest",
            "--store",
            "store",
            "--out",
            "store/emails.csv",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let mut checked = (0, 0);
    let mut stack = vec![store.clone()];
    while let Some(folder) = stack.pop() {
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "folder {}", folder.display());
        checked.0 += 1;
        for path in std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
        {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                continue;
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(
                    meta.permissions().mode() & 0o777,
                    0o600,
                    "file {}",
                    path.display()
                );
                checked.1 += 1;
            }
        }
    }
    // users_summary, the account folder, reports and one report set.
    assert!(checked.0 >= 5, "{checked:?}");
    // Two snapshots, eight report tables, the lock file and the query result.
    assert!(checked.1 >= 12, "{checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_clean_store() {
    let dir = populated_store().await;
    let output = cpstat(&["verify", "--store", "store"], &[], dir.path()).await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("checked 2 snapshot files and 1 report sets"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("no problems found"));
}

/// Writes a snapshot file with hand-made rows and metadata, bypassing the
/// checks that `fetch` applies.
fn write_odd_snapshot(store: &Path, at: &str, users: &[UserRecord]) -> PathBuf {
    let meta = SnapshotMeta {
        count_reported: users.len() as u64,
        source: "test".into(),
        ..SnapshotMeta::default()
    };
    write_snapshot(
        &Store::new(store),
        ACCOUNT,
        at.parse().unwrap(),
        UserBatches::from_records(users),
        &meta,
    )
    .unwrap()
}

fn user(id: &str, emails_sent: i64) -> UserRecord {
    let mut record = UserRecord {
        user_id: id.to_string(),
        email: Some(format!("{id}@example.dk")),
        ..UserRecord::default()
    };
    record.counters.emails_sent = Some(emails_sent);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_every_problem() {
    let dir = populated_store().await;
    let store = dir.path().join("store");
    let snapshots = snapshot_paths(&store);
    let account_dir = snapshots[0].parent().unwrap().to_path_buf();

    let truncated = snapshots[0].clone();
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let foreign = account_dir.join("20261201T060000Z.parquet");
    std::fs::copy(store.join("reports/latest/user_risk.parquet"), &foreign).unwrap();
    let misnamed = account_dir.join("backup.parquet");
    std::fs::copy(&snapshots[1], &misnamed).unwrap();
    let duplicates = write_odd_snapshot(
        &store,
        "2026-12-02T06:00:00Z",
        &[user("7", 3), user("7", 4)],
    );
    let negative = write_odd_snapshot(&store, "2026-12-03T06:00:00Z", &[user("8", -2)]);
    let set = std::fs::read_link(store.join("reports/latest")).unwrap();
    std::fs::write(
        store
            .join("reports")
            .join(&set)
            .join("user_risk.parquet.part"),
        b"",
    )
    .unwrap();

    let output = cpstat(&["verify", "--store", "store"], &[], dir.path()).await;
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let table = stdout(&output);
    let expected: [(&Path, &str); 6] = [
        (&truncated, "unreadable Parquet footer"),
        (&foreign, "no cpstat.schema_version metadata"),
        (&misnamed, "the name is not a snapshot time"),
        (
            &duplicates,
            "user_id is not unique: 2 rows but 1 distinct ids",
        ),
        (&negative, "emails_sent is negative in 1 rows"),
        (&store.join("reports").join(&set), "incomplete report set"),
    ];
    for (path, problem) in expected {
        let shown = relative(dir.path(), path);
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{shown} ")) && l.contains(problem));
        assert!(
            line.is_some(),
            "no line for {shown} with {problem:?} in:\n{table}"
        );
    }
    let intact = relative(dir.path(), &snapshots[1]);
    assert!(
        !table.contains(&format!("{intact} ")),
        "the intact snapshot passes"
    );
    assert!(
        stderr(&output).contains("problems found"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_names_invalid_snapshot() {
    let dir = populated_store().await;
    let store = dir.path().join("store");
    let damaged = snapshot_paths(&store)[0].clone();
    std::fs::write(&damaged, b"PAR1 this is not a Parquet file PAR1").unwrap();

    let output = cpstat(&["analyze", "--store", "store"], &[], dir.path()).await;
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(5), "{message}");
    let shown = relative(dir.path(), &damaged);
    assert!(
        message.contains(&format!("{shown} is not a valid cpstat snapshot")),
        "{message}"
    );
    assert!(message.contains("--skip-invalid"), "{message}");
    assert!(
        !message.contains("caused by"),
        "one clear sentence, not a polars chain: {message}"
    );

    let output = cpstat(
        &["analyze", "--store", "store", "--skip-invalid"],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(
        summary.contains("skipped 1 invalid snapshot files (--skip-invalid)"),
        "{summary}"
    );
    assert!(summary.contains(&shown), "{summary}");
}

/// Reads the `email` column of every snapshot, by file.
fn emails_by_file(store: &Path) -> BTreeMap<PathBuf, Vec<Option<String>>> {
    snapshot_paths(store)
        .into_iter()
        .map(|path| {
            let emails = read_rows(&path).iter().map(|r| text(r, "email")).collect();
            (path, emails)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_removes_person_everywhere() {
    let dir = populated_store().await;
    let store = dir.path().join("store");
    let paths = snapshot_paths(&store);
    let rows = read_rows(&paths[1]);
    // A manager who is also a user, so both kinds of removal happen.
    let manager = rows
        .iter()
        .filter_map(|r| text(r, "manager_email"))
        .find(|m| {
            rows.iter()
                .any(|r| text(r, "email").as_deref() == Some(m.as_str()))
        })
        .expect("some manager is a user");
    let before = emails_by_file(&store);
    let types_before: Vec<_> = paths.iter().map(|p| column_types(p)).collect();
    let notes_before: Vec<String> = paths
        .iter()
        .map(|p| key_values(p)["cpstat.notes"].clone())
        .collect();

    let shouted = manager.to_uppercase();
    let output = cpstat(
        &["forget", "--email", &shouted, "--store", "store"],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains(&manager),
        "the address is not echoed"
    );

    for (index, path) in paths.iter().enumerate() {
        let rows = read_rows(path);
        let old = &before[path];
        let kept: Vec<Option<String>> = old
            .iter()
            .filter(|e| e.as_deref().map(str::to_lowercase) != Some(manager.to_lowercase()))
            .cloned()
            .collect();
        let emails: Vec<Option<String>> = rows.iter().map(|r| text(r, "email")).collect();
        assert_eq!(
            emails,
            kept,
            "{}: every other row kept, in order",
            path.display()
        );
        assert!(
            old.len() > kept.len(),
            "{}: the person was there",
            path.display()
        );
        let managed: Vec<_> = rows
            .iter()
            .filter(|r| text(r, "manager_email").is_some_and(|m| m.eq_ignore_ascii_case(&manager)))
            .collect();
        assert!(
            managed.is_empty(),
            "{}: manager fields cleared",
            path.display()
        );

        let kv = key_values(path);
        assert_eq!(kv["cpstat.users_written"], rows.len().to_string());
        assert!(kv["cpstat.notes"].starts_with(&notes_before[index]));
        assert!(
            kv["cpstat.notes"].contains("rows removed"),
            "{}",
            kv["cpstat.notes"]
        );
        assert!(
            !kv["cpstat.notes"].contains(&manager),
            "the note holds no address"
        );
        assert_eq!(
            column_types(path),
            types_before[index],
            "the schema is unchanged"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
    assert_eq!(leftovers(&store), Vec::<PathBuf>::new());
    let verified = cpstat(&["verify", "--store", "store"], &[], dir.path()).await;
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
}
