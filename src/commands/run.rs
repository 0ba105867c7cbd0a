//! `cpstat run`: fetch, then analyze, under one store lock, for schedulers.
//!
//! The exit code tells a scheduler what happened: 0 when every account was
//! fetched completely and the analysis used every snapshot, 6 when a
//! snapshot is partial, some accounts failed or invalid files were skipped,
//! 7 when another run holds the store, and the failure's own code (usage,
//! authentication, network, data) when every fetch failed or the analysis
//! failed.

use anyhow::{Context, Result};

use crate::analysis::AnalysisParams;
use crate::api::fetch::NoProgress;
use crate::cli::RunArgs;
use crate::config::ConfigFile;
use crate::error::ExitKind;
use crate::report::CsvOptions;
use crate::settings::{FetchSettings, resolve_fetch, resolve_fetch_account};
use crate::snapshot::Store;

use super::analyze::{RunOptions, print_outcome, run_analysis};
use super::fetch::{fetch_and_write, lock_store, summary_line};
use crate::output::Output;

pub async fn run(args: &RunArgs, config: &ConfigFile, output: Output) -> Result<ExitKind> {
    let quiet = !output.text();
    let accounts = resolve_accounts(args, config)?;
    let store = accounts[0].store.clone();
    let _lock = lock_store(&store, "run", args.fetch.lock.timeout())?;

    let fetched = fetch_all(&accounts, quiet).await?;

    let out = args.out.clone().unwrap_or_else(|| store.join("reports"));
    let options = RunOptions {
        accounts: Vec::new(),
        format: args.format,
        csv: CsvOptions { bom: !args.no_bom },
        skip_invalid: args.skip_invalid,
        privacy: crate::privacy::Privacy::default(),
        cache: true,
    };
    let outcome = tokio::task::block_in_place(|| {
        run_analysis(
            &Store::new(&store),
            &out,
            &AnalysisParams::default(),
            &options,
        )
    })
    .context("the snapshots were fetched, but the analysis failed")?;
    print_outcome(&outcome, output);
    Ok(worst(fetched, outcome.exit_kind()))
}

/// Resolves the account given, or every account of the config file with
/// `--all-accounts` or when none is given and the file lists several.
fn resolve_accounts(args: &RunArgs, config: &ConfigFile) -> Result<Vec<FetchSettings>> {
    let every = args.fetch.all_accounts || args.fetch.account.is_none();
    if !every || config.accounts.len() < 2 {
        return Ok(vec![resolve_fetch(&args.fetch, config)?]);
    }
    config
        .accounts
        .iter()
        .map(|entry| resolve_fetch_account(&args.fetch, config, Some(&entry.name)))
        .collect()
}

/// Fetches each account in turn. A failed account is reported and the rest
/// go on; the result is an error only when every account failed.
async fn fetch_all(accounts: &[FetchSettings], quiet: bool) -> Result<ExitKind> {
    let mut kind = ExitKind::Success;
    let mut first_error = None;
    let mut failures = 0;
    for settings in accounts {
        match fetch_and_write(settings, &NoProgress).await {
            Ok((outcome, path)) => {
                if !quiet {
                    println!("{}", summary_line(&settings.account.id, &outcome, &path));
                }
                if !outcome.complete {
                    kind = ExitKind::Partial;
                }
            }
            Err(error) if accounts.len() == 1 => {
                return Err(error.context("the fetch failed, so the analysis was not run"));
            }
            Err(error) => {
                failures += 1;
                eprintln!("error: {error:#}");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(error) if failures == accounts.len() => {
            Err(error.context("every account failed, so the analysis was not run"))
        }
        Some(_) => Ok(ExitKind::Partial),
        None => Ok(kind),
    }
}

/// Partial wins over success; the two inputs are each one of those.
fn worst(a: ExitKind, b: ExitKind) -> ExitKind {
    if a == ExitKind::Success { b } else { a }
}
