//! `cpstat snapshots`: the store's files as a table.

use anyhow::Result;

use crate::cli::SnapshotsArgs;
use crate::config::ConfigFile;
use crate::error::ExitKind;
use crate::settings::resolve_store;
use crate::snapshot::Store;
use crate::snapshot::meta::read_footer;
use crate::snapshot::write::keys;

pub fn run(args: &SnapshotsArgs, config: &ConfigFile) -> Result<ExitKind> {
    let store = Store::new(resolve_store(&args.store, config));
    let files = store.list(&args.accounts)?;
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

fn partial_mark(rows: usize, shortfall: Option<&str>) -> String {
    match shortfall.and_then(|s| s.parse::<i64>().ok()) {
        Some(missing) if missing != 0 => format!("{rows}*"),
        _ => rows.to_string(),
    }
}
