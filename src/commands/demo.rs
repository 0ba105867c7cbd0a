//! `cpstat demo`: the whole job offline, against the built-in mock API.
//!
//! Two simulated customer accounts are served on 127.0.0.1; one snapshot per
//! simulated week is fetched into `<out>/store` over real HTTP, and the
//! analysis is written to `<out>/store/reports`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{NaiveTime, TimeZone, Utc};

use crate::analysis::{AnalysisParams, render_summary};
use crate::api::auth::Credentials;
use crate::api::fetch::NoProgress;
use crate::api::{ClientOptions, FetchOptions};
use crate::cli::DemoArgs;
use crate::error::{ExitKind, usage};
use crate::mock::{DEFAULT_TOKEN, MockApi, MockOptions, OrgConfig, Organisation};
use crate::output::Output;
use crate::privacy::Privacy;
use crate::report::{CsvOptions, Format};
use crate::secret::Secret;
use crate::settings::{AccountSettings, FetchSettings};
use crate::snapshot::Store;

use super::analyze::{RunOptions, run_analysis};

/// Marks a folder as made by `cpstat demo`, so a rerun may replace it.
const MARKER: &str = ".cpstat-demo";
/// Simulated days before the first snapshot, so that counters have history.
const FIRST_DAY: u32 = 84;
const DAYS_BETWEEN: u32 = 7;

/// The demo's accounts: (id, company, share of `--users`).
const ACCOUNTS: [(&str, &str, f64); 2] = [
    (
        "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55",
        "Nordlys Energi A/S",
        1.0,
    ),
    (
        "9a41d7c2-0e6b-4f3a-8d25-7c1b9e4f6a10",
        "Fjordkraft Ålesund AS",
        0.5,
    ),
];

/// Paths and summary of a demo run, as printed by `--json`.
#[derive(serde::Serialize)]
struct DemoJson<'a> {
    store: String,
    report_dir: String,
    report: String,
    #[serde(flatten)]
    summary: &'a crate::analysis::Summary,
}

pub async fn run(args: &DemoArgs, output: Output) -> Result<ExitKind> {
    let quiet = !output.text();
    prepare_folder(&args.out)?;
    let store = args.out.join("store");
    let _lock = super::fetch::lock_store(&store, "demo", std::time::Duration::ZERO)?;
    let organisations = organisations(args);
    let mock = MockApi::start(MockOptions::default(), organisations.clone())
        .await
        .context("failed to start the mock API on 127.0.0.1")?;
    if !quiet {
        println!(
            "mock API serving {} simulated accounts at {}",
            organisations.len(),
            mock.base_url()
        );
    }
    for index in 0..args.snapshots {
        let day = FIRST_DAY + index * DAYS_BETWEEN;
        mock.set_day(day);
        for organisation in &organisations {
            fetch_one(&mock, organisation, day, &store, quiet).await?;
        }
    }
    mock.shutdown().await;

    let reports = store.join("reports");
    let options = RunOptions {
        accounts: Vec::new(),
        format: Format::All,
        csv: CsvOptions { bom: true },
        skip_invalid: false,
        privacy: Privacy::default(),
        cache: true,
    };
    let (outcome, page) = tokio::task::block_in_place(|| -> Result<_> {
        let outcome = run_analysis(
            &Store::new(&store),
            &reports,
            &AnalysisParams::default(),
            &options,
        )?;
        let page = super::report::write_report(
            &Store::new(&store),
            &reports,
            &super::report::PageOptions {
                out: None,
                privacy: &Privacy::default(),
                top: 20,
                names: Default::default(),
            },
        )?;
        Ok((outcome, page))
    })?;
    output.json_value(&DemoJson {
        store: store.display().to_string(),
        report_dir: outcome.report_dir.display().to_string(),
        report: page.display().to_string(),
        summary: &outcome.summary,
    })?;
    if !quiet {
        println!("\n{}", render_summary(&outcome.summary));
        println!("snapshot store: {}", store.display());
        println!("report tables:  {}", outcome.report_dir.display());
        println!("HTML report:    {}", page.display());
        println!(
            "\nnext: cpstat query \"SELECT * FROM group_rates WHERE dimension = 'department' ORDER BY account_id, rank\" --store {}",
            store.display()
        );
    }
    Ok(ExitKind::Success)
}

fn organisations(args: &DemoArgs) -> Vec<Organisation> {
    ACCOUNTS
        .iter()
        .enumerate()
        .map(|(index, (id, company, share))| {
            Organisation::new(OrgConfig {
                seed: args.seed.wrapping_add(index as u64),
                account_id: id.to_string(),
                company_name: company.to_string(),
                users: ((args.users as f64 * share).round() as usize).max(1),
                ..OrgConfig::default()
            })
        })
        .collect()
}

/// Creates the output folder, or empties one that an earlier demo made.
fn prepare_folder(out: &Path) -> Result<()> {
    if out.exists() {
        if !out.join(MARKER).is_file() {
            return Err(usage(format!(
                "{} exists and was not made by `cpstat demo`; choose another folder with --out",
                out.display()
            )));
        }
        std::fs::remove_dir_all(out.join("store"))
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .with_context(|| format!("failed to clear the previous demo in {}", out.display()))?;
    }
    Store::new(out).create_private_dir(out)?;
    std::fs::write(out.join(MARKER), "made by cpstat demo\n")
        .with_context(|| format!("failed to write {}", out.join(MARKER).display()))?;
    Ok(())
}

async fn fetch_one(
    mock: &MockApi,
    organisation: &Organisation,
    day: u32,
    store: &Path,
    quiet: bool,
) -> Result<PathBuf> {
    let date = organisation.date_of(day);
    let snapshot_at = Utc
        .from_utc_datetime(&date.and_time(NaiveTime::from_hms_opt(6, 0, 0).expect("06:00 exists")));
    let settings = FetchSettings {
        store: store.to_path_buf(),
        account: AccountSettings {
            id: organisation.account_id().to_string(),
            display_name: Some(organisation.config().company_name.clone()),
            credentials: Credentials::Token(Secret::new(DEFAULT_TOKEN)),
            client: ClientOptions {
                base_url: mock.base_url(),
                ..ClientOptions::default()
            },
        },
        fetch: FetchOptions::default(),
        snapshot_at: Some(snapshot_at),
    };
    let (outcome, path) = super::fetch::fetch_and_write(&settings, &NoProgress).await?;
    if !quiet {
        println!(
            "{}  {:<24} {:>6} users  {} pages  -> {}",
            date,
            organisation.config().company_name,
            outcome.user_count,
            outcome.pages,
            path.display()
        );
    }
    Ok(path)
}
