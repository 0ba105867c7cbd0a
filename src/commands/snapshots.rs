//! `cpstat snapshots`: the store's files as a table.

use anyhow::Result;
use serde::Serialize;

use crate::cli::SnapshotsArgs;
use crate::config::ConfigFile;
use crate::error::ExitKind;
use crate::output::Output;
use crate::settings::resolve_store;
use crate::snapshot::Store;
use crate::snapshot::meta::read_footer;
use crate::snapshot::write::keys;

/// One snapshot file, as printed by `--json`.
#[derive(Debug, Serialize)]
struct SnapshotJson {
    account_id: String,
    snapshot_at: String,
    /// Rows in the file; null when its footer cannot be read.
    users: Option<usize>,
    /// Users missing from a partial snapshot, else 0.
    shortfall: Option<i64>,
    bytes: u64,
    path: String,
}

pub fn run(args: &SnapshotsArgs, config: &ConfigFile, output: Output) -> Result<ExitKind> {
    let store = Store::new(resolve_store(&args.store, config));
    let files = store.list(&args.accounts)?;
    if output.json {
        output.json_value(&files.iter().map(snapshot_json).collect::<Vec<_>>())?;
        return Ok(ExitKind::Success);
    }
    if files.is_empty() {
        println!("no snapshots in {}", store.table_dir().display());
        return Ok(ExitKind::Success);
    }
    println!(
        "{:<38} {:<22} {:>9} {:>11}  file",
        "account", "snapshot_at (UTC)", "users", "bytes"
    );
    for file in &files {
        let users = match read_footer(&file.path) {
            Ok(footer) => partial_mark(footer.rows, footer.get(keys::SHORTFALL)),
            Err(_) => "unreadable".to_string(),
        };
        println!(
            "{:<38} {:<22} {:>9} {:>11}  {}",
            file.account_id,
            file.snapshot_at.format("%Y-%m-%d %H:%M:%S"),
            users,
            file.size,
            file.path.display()
        );
    }
    Ok(ExitKind::Success)
}

fn snapshot_json(file: &crate::snapshot::SnapshotFile) -> SnapshotJson {
    let footer = read_footer(&file.path).ok();
    SnapshotJson {
        account_id: file.account_id.clone(),
        snapshot_at: file
            .snapshot_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        users: footer.as_ref().map(|f| f.rows),
        shortfall: footer
            .as_ref()
            .and_then(|f| f.get(keys::SHORTFALL))
            .and_then(|s| s.parse().ok()),
        bytes: file.size,
        path: file.path.display().to_string(),
    }
}

fn partial_mark(rows: usize, shortfall: Option<&str>) -> String {
    match shortfall.and_then(|s| s.parse::<i64>().ok()) {
        Some(missing) if missing != 0 => format!("{rows}*"),
        _ => rows.to_string(),
    }
}
