//! `cpstat fetch --all-accounts`: every account of the config file, a few
//! at a time, each into its own snapshot.

use anyhow::Result;
use futures_util::StreamExt;
use serde::Serialize;

use crate::api::FetchOptions;
use crate::api::fetch::NoProgress;
use crate::cli::FetchArgs;
use crate::config::{AccountEntry, ConfigFile};
use crate::error::{ExitKind, usage};
use crate::output::Output;
use crate::settings::{FetchSettings, resolve_account, resolve_store, validate_account_id};

use super::fetch::{FetchResult, fetch_and_write, summary_line};

/// The results of every account, as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct FetchAllResult {
    /// One entry per configured account, in the order of the config file.
    pub accounts: Vec<FetchResult>,
    pub written: usize,
    pub failed: usize,
}

pub async fn run(args: &FetchArgs, config: &ConfigFile, output: Output) -> Result<ExitKind> {
    if config.accounts.is_empty() {
        return Err(usage(
            "--all-accounts fetches the accounts listed in cpstat.toml, and it lists none: \
             add an [[accounts]] entry per account (see the README) or pass --account ID",
        ));
    }
    let store = resolve_store(&args.store, config);
    let _lock = super::fetch::lock_store(&store, "fetch --all-accounts", args.lock.timeout())?;
    let parallel = args.parallel_accounts as usize;
    let mut results: Vec<(usize, FetchResult)> =
        futures_util::stream::iter(config.accounts.iter().enumerate())
            .map(|(index, entry)| async move { (index, fetch_entry(args, config, entry).await) })
            .buffer_unordered(parallel)
            .inspect(|(_, result)| output.line(result_line(result)))
            .collect()
            .await;
    results.sort_by_key(|(index, _)| *index);
    let accounts: Vec<FetchResult> = results.into_iter().map(|(_, result)| result).collect();

    let failed = accounts.iter().filter(|r| r.status == "failed").count();
    let summary = FetchAllResult {
        written: accounts.len() - failed,
        failed,
        accounts,
    };
    output.line(format!(
        "fetched {} of {} accounts; {} failed",
        summary.written,
        summary.accounts.len(),
        summary.failed
    ));
    output.json_value(&summary)?;
    Ok(overall_exit_kind(&summary.accounts))
}

/// Resolves and fetches one configured account; any error becomes a
/// failed result, so that the other accounts go on.
async fn fetch_entry(args: &FetchArgs, config: &ConfigFile, entry: &AccountEntry) -> FetchResult {
    let label = entry
        .display_name
        .clone()
        .or_else(|| Some(entry.name.clone()));
    let settings = match resolve_entry(args, config, entry) {
        Ok(settings) => settings,
        Err(error) => {
            tracing::warn!(account = %entry.id, error = %format!("{error:#}"), "account skipped");
            return FetchResult::failed(&entry.id, label, &error);
        }
    };
    tracing::info!(account = %entry.id, name = %entry.name, "fetching account");
    match fetch_and_write(&settings, &NoProgress).await {
        Ok((outcome, path)) => {
            tracing::info!("{}", summary_line(&entry.id, &outcome, &path));
            let mut result = FetchResult::written(&settings.account, &outcome, &path);
            result.display_name = label;
            result
        }
        Err(error) => {
            tracing::warn!(account = %entry.id, error = %format!("{error:#}"), "account failed");
            FetchResult::failed(&entry.id, label, &error)
        }
    }
}

fn resolve_entry(
    args: &FetchArgs,
    config: &ConfigFile,
    entry: &AccountEntry,
) -> Result<FetchSettings> {
    validate_account_id(&entry.id)?;
    Ok(FetchSettings {
        store: resolve_store(&args.store, config),
        account: resolve_account(&entry.id, Some(entry), &args.connection, config)?,
        fetch: FetchOptions {
            page_size: args.page_size,
            concurrency: args.concurrency as usize,
            max_rounds: args.max_rounds,
            allow_partial: args.allow_partial,
        },
        snapshot_at: args.snapshot_at,
    })
}

/// Formats the one-line result of an account for the terminal.
pub fn result_line(result: &FetchResult) -> String {
    let name = result.display_name.as_deref().unwrap_or_default();
    match result.status {
        "failed" => format!(
            "FAILED   {} ({name}): {}",
            result.account_id,
            result.error.as_deref().unwrap_or_default()
        ),
        status => format!(
            "{:<8} {} ({name}): {} users -> {}",
            if status == "partial" { "PARTIAL" } else { "ok" },
            result.account_id,
            result.users.unwrap_or(0),
            result.path.as_deref().unwrap_or_default()
        ),
    }
}

/// Returns success when every account was written completely, the exit
/// kind of the first failure when every account failed, and partial
/// otherwise.
pub fn overall_exit_kind(results: &[FetchResult]) -> ExitKind {
    let failed: Vec<&FetchResult> = results.iter().filter(|r| r.status == "failed").collect();
    if failed.len() == results.len() {
        return failed.first().map_or(ExitKind::Success, |r| r.exit_kind());
    }
    if results.iter().all(|r| r.status == "complete") {
        ExitKind::Success
    } else {
        ExitKind::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: &'static str, kind: ExitKind) -> FetchResult {
        FetchResult {
            account_id: "a".into(),
            display_name: None,
            status,
            users: None,
            count_reported: None,
            pages: None,
            retries: None,
            rounds: None,
            duration_seconds: None,
            path: None,
            error: None,
            exit_code: kind.code(),
            kind,
        }
    }

    #[test]
    fn exit_kind_of_account_mixes() {
        let ok = || result("complete", ExitKind::Success);
        let partial = || result("partial", ExitKind::Partial);
        let auth = || result("failed", ExitKind::Auth);
        let network = || result("failed", ExitKind::Network);
        let cases = [
            (vec![ok(), ok()], ExitKind::Success),
            (vec![ok(), partial()], ExitKind::Partial),
            (vec![ok(), auth()], ExitKind::Partial),
            (vec![auth(), network()], ExitKind::Auth),
            (vec![network(), auth()], ExitKind::Network),
        ];
        for (results, expected) in cases {
            let statuses: Vec<&str> = results.iter().map(|r| r.status).collect();
            assert_eq!(overall_exit_kind(&results), expected, "{statuses:?}");
        }
    }
}
