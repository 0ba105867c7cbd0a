//! `cpstat fetch`: one account's users-summary report into a new snapshot.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use serde::Serialize;

use crate::api::fetch::Progress;
use crate::api::{ApiClient, FetchOutcome, fetch_account};
use crate::cli::FetchArgs;
use crate::config::ConfigFile;
use crate::error::ExitKind;
use crate::logging::FetchProgress;
use crate::output::Output;
use crate::settings::{FetchSettings, resolve_fetch};
use crate::snapshot::lock::StoreLock;
use crate::snapshot::{SnapshotMeta, Store, write_snapshot};

pub async fn run(args: &FetchArgs, config: &ConfigFile, output: Output) -> Result<ExitKind> {
    let settings = resolve_fetch(args, config)?;
    let _lock = lock_store(&settings.store, "fetch", args.lock.timeout())?;
    let progress = FetchProgress::new(!output.progress());
    progress.set_message(settings.account.id.clone());
    let written = fetch_and_write(&settings, &progress).await;
    progress.finish();
    let (outcome, path) = written?;
    output.line(summary_line(&settings.account.id, &outcome, &path));
    let result = FetchResult::written(&settings.account, &outcome, &path);
    output.json_value(&result)?;
    Ok(result.exit_kind())
}

/// The result of fetching one account, as printed by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct FetchResult {
    pub account_id: String,
    pub display_name: Option<String>,
    /// `complete`, `partial` (written with a shortfall) or `failed`.
    pub status: &'static str,
    pub users: Option<usize>,
    pub count_reported: Option<u64>,
    pub pages: Option<u64>,
    pub retries: Option<u64>,
    pub rounds: Option<u32>,
    pub duration_seconds: Option<f64>,
    /// The snapshot file written.
    pub path: Option<String>,
    /// Error of a failed fetch, with its causes.
    pub error: Option<String>,
    /// The exit code this account alone would give.
    pub exit_code: i32,
    #[serde(skip)]
    pub kind: ExitKind,
}

impl FetchResult {
    /// Describes a snapshot that was written.
    pub fn written(
        account: &crate::settings::AccountSettings,
        outcome: &FetchOutcome,
        path: &std::path::Path,
    ) -> Self {
        let kind = if outcome.complete {
            ExitKind::Success
        } else {
            ExitKind::Partial
        };
        FetchResult {
            account_id: account.id.clone(),
            display_name: account.display_name.clone(),
            status: if outcome.complete {
                "complete"
            } else {
                "partial"
            },
            users: Some(outcome.user_count),
            count_reported: Some(outcome.count_reported),
            pages: Some(outcome.pages),
            retries: Some(outcome.retries),
            rounds: Some(outcome.rounds),
            duration_seconds: Some(outcome.duration.as_secs_f64()),
            path: Some(path.display().to_string()),
            error: None,
            exit_code: kind.code(),
            kind,
        }
    }

    /// Describes a fetch that failed before anything was written.
    pub fn failed(account_id: &str, display_name: Option<String>, error: &anyhow::Error) -> Self {
        FetchResult {
            account_id: account_id.to_string(),
            display_name,
            status: "failed",
            users: None,
            count_reported: None,
            pages: None,
            retries: None,
            rounds: None,
            duration_seconds: None,
            path: None,
            error: Some(format!("{error:#}")),
            exit_code: crate::error::exit_kind_of(error).code(),
            kind: crate::error::exit_kind_of(error),
        }
    }

    /// Returns the exit kind of this result alone.
    pub fn exit_kind(&self) -> ExitKind {
        self.kind
    }
}

/// Takes the store's lock, waiting up to `timeout`, and removes what killed
/// runs left behind. Blocks the calling thread while waiting.
pub fn lock_store(store: &Path, command: &str, timeout: Duration) -> Result<StoreLock> {
    let lock = super::run_blocking(|| StoreLock::acquire(store, command, timeout))?;
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

    let mut outcome = fetch_account(&client, &account.id, &settings.fetch, progress)
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
    let users = std::mem::take(&mut outcome.users);
    let path =
        super::run_blocking(|| write_snapshot(&store, &account.id, snapshot_at, users, &meta))
            .with_context(|| format!("failed to write the snapshot of account {}", account.id))?;
    tracing::info!(file = %path.display(), users = outcome.user_count, "wrote snapshot");
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
            outcome.user_count, outcome.count_reported
        )
    };
    format!(
        "fetched {} users of account {account} in {} pages ({} retries, {} rounds) in {:.1}s -> {}{partial}",
        outcome.user_count,
        outcome.pages,
        outcome.retries,
        outcome.rounds,
        outcome.duration.as_secs_f64(),
        path.display()
    )
}
