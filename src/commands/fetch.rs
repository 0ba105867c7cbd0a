//! `cpstat fetch`: one account's users-summary report into a new snapshot.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;

use crate::api::fetch::Progress;
use crate::api::{ApiClient, FetchOutcome, fetch_account};
use crate::cli::FetchArgs;
use crate::config::ConfigFile;
use crate::error::ExitKind;
use crate::logging::FetchProgress;
use crate::settings::{FetchSettings, resolve_fetch};
use crate::snapshot::lock::StoreLock;
use crate::snapshot::{SnapshotMeta, Store, write_snapshot};

pub async fn run(args: &FetchArgs, config: &ConfigFile, quiet: bool) -> Result<ExitKind> {
    let settings = resolve_fetch(args, config)?;
    let _lock = lock_store(&settings.store, "fetch", args.lock.timeout())?;
    let progress = FetchProgress::new(quiet);
    progress.set_message(settings.account.id.clone());
    let written = fetch_and_write(&settings, &progress).await;
    progress.finish();
    let (outcome, path) = written?;
    if !quiet {
        println!("{}", summary_line(&settings.account.id, &outcome, &path));
    }
    Ok(if outcome.complete {
        ExitKind::Success
    } else {
        ExitKind::Partial
    })
}

/// Takes the store's lock, waiting up to `timeout`, and removes what killed
/// runs left behind. Blocks the calling thread while waiting.
pub fn lock_store(store: &Path, command: &str, timeout: Duration) -> Result<StoreLock> {
    let lock = tokio::task::block_in_place(|| StoreLock::acquire(store, command, timeout))?;
    let removed = Store::new(store).remove_leftovers()?;
    if removed > 0 {
        tracing::warn!(store = %store.display(), removed, "removed temporary files left by interrupted runs");
    }
    crate::report::remove_leftovers(&store.join("reports"));
    Ok(lock)
}

/// Fetches one account and writes its snapshot; nothing is written when the
/// fetch fails.
pub async fn fetch_and_write(
    settings: &FetchSettings,
    progress: &dyn Progress,
) -> Result<(FetchOutcome, std::path::PathBuf)> {
    let account = &settings.account;
    let client = ApiClient::new(&account.client, account.credentials.clone())?;
    let snapshot_at = settings.snapshot_at.unwrap_or_else(Utc::now);
    let store = Store::new(&settings.store);
    crate::snapshot::write::remove_leftovers(&store.account_dir(&account.id))?;

    let outcome = fetch_account(&client, &account.id, &settings.fetch, progress)
        .await
        .with_context(|| {
            format!(
                "failed to fetch account {}; no snapshot was written",
                account.id
            )
        })?;
    let meta = SnapshotMeta {
        count_reported: outcome.count_reported,
        pages: outcome.pages,
        retries: outcome.retries,
        rounds: outcome.rounds,
        duration_seconds: outcome.duration.as_secs_f64(),
        shortfall: if outcome.complete {
            0
        } else {
            outcome.shortfall()
        },
        notes: outcome.notes.clone(),
        source: "api".to_string(),
    };
    let path = tokio::task::block_in_place(|| {
        write_snapshot(&store, &account.id, snapshot_at, &outcome.users, &meta)
    })
    .with_context(|| format!("failed to write the snapshot of account {}", account.id))?;
    tracing::info!(file = %path.display(), users = outcome.users.len(), "wrote snapshot");
    if !outcome.complete {
        tracing::warn!(account = %account.id, shortfall = outcome.shortfall(), "wrote a partial snapshot");
    }
    Ok((outcome, path))
}

/// Formats the one-line result of a fetch.
pub fn summary_line(account: &str, outcome: &FetchOutcome, path: &std::path::Path) -> String {
    let partial = if outcome.complete {
        String::new()
    } else {
        format!(
            " PARTIAL: {} of {} users",
            outcome.users.len(),
            outcome.count_reported
        )
    };
    format!(
        "fetched {} users of account {account} in {} pages ({} retries, {} rounds) in {:.1}s -> {}{partial}",
        outcome.users.len(),
        outcome.pages,
        outcome.retries,
        outcome.rounds,
        outcome.duration.as_secs_f64(),
        path.display()
    )
}
