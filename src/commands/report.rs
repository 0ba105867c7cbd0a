//! `cpstat report`: the latest report set and the store's history as one
//! self-contained HTML page.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;
use polars::prelude::DataFrame;

use crate::cli::ReportArgs;
use crate::config::ConfigFile;
use crate::error::{ExitKind, usage};
use crate::output::Output;
use crate::privacy::{Privacy, resolve_privacy};
use crate::report::LATEST;
use crate::report::html::render_page;
use crate::report::page_data::{self, ReportData, Tables};
use crate::settings::resolve_store;
use crate::snapshot::Store;

use super::query::latest_report_tables;

/// File name of the page in the report set.
pub const PAGE: &str = "report.html";
/// File name of the page with `--pseudonymize`, so that it never replaces
/// the full page by accident and its name says what it is.
pub const PSEUDONYMIZED_PAGE: &str = "report.pseudonymized.html";
/// The tables the page is built from.
const TABLES: [&str; 4] = [
    "user_risk",
    "group_rates",
    "department_trend",
    "repeat_clickers",
];

/// Choices of one report page.
pub struct PageOptions<'a> {
    /// The HTML file to write; `None` writes into the latest report set.
    pub out: Option<&'a Path>,
    pub privacy: &'a Privacy,
    /// Riskiest users listed per account.
    pub top: usize,
    /// Display names of accounts by id, e.g. from the config file.
    pub names: HashMap<String, String>,
}

pub fn run(args: &ReportArgs, config: &ConfigFile, output: Output) -> Result<ExitKind> {
    let store_dir = resolve_store(&args.store, config);
    let reports = args
        .reports
        .clone()
        .unwrap_or_else(|| store_dir.join("reports"));
    let privacy = resolve_privacy(&args.privacy)?;
    let options = PageOptions {
        out: args.out.as_deref(),
        privacy: &privacy,
        top: args.top as usize,
        names: configured_names(config),
    };
    let path = write_report(&Store::new(&store_dir), &reports, &options)?;
    output.line(format!("report: {}", path.display()));
    output.json_value(&serde_json::json!({ "report": path.display().to_string() }))?;
    Ok(ExitKind::Success)
}

/// Returns the `display_name` of each account in the config file by id.
pub fn configured_names(config: &ConfigFile) -> HashMap<String, String> {
    config
        .accounts
        .iter()
        .filter_map(|a| Some((a.id.clone(), a.display_name.clone()?)))
        .collect()
}

/// Builds the page from `<reports>/latest` and the store and writes it;
/// returns its path.
pub fn write_report(store: &Store, reports: &Path, options: &PageOptions<'_>) -> Result<PathBuf> {
    let set_dir = latest_set(reports)?;
    let tables = read_tables(&set_dir, options.privacy)?;
    let (history, company_names) = store_facts(store)?;
    let mut names = company_names;
    names.extend(options.names.clone());

    let get = |name: &str| &tables[name];
    let accounts = page_data::accounts(
        &Tables {
            user_risk: get("user_risk"),
            group_rates: get("group_rates"),
            department_trend: get("department_trend"),
            repeat_clickers: get("repeat_clickers"),
        },
        &history,
        &names,
        options.top,
        options.privacy.min_group_size,
    )?;
    let data = ReportData {
        generated_at: Utc::now(),
        report_set: set_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        pseudonymized: options.privacy.pseudonym_key.is_some(),
        min_group_size: options.privacy.min_group_size,
        accounts,
    };

    let default_name = if data.pseudonymized {
        PSEUDONYMIZED_PAGE
    } else {
        PAGE
    };
    let path = options
        .out
        .map_or_else(|| set_dir.join(default_name), Path::to_path_buf);
    write_atomically(&path, &render_page(&data))?;
    tracing::info!(file = %path.display(), "wrote the HTML report");
    Ok(path)
}

/// Resolves `<reports>/latest` to the report set it points at.
fn latest_set(reports: &Path) -> Result<PathBuf> {
    let latest = reports.join(LATEST);
    latest.canonicalize().map_err(|_| {
        usage(format!(
            "no report set in {}: run `cpstat analyze` first",
            reports.display()
        ))
    })
}

/// Reads the four report tables, with pseudonyms and small-group
/// suppression applied as requested.
fn read_tables(set_dir: &Path, privacy: &Privacy) -> Result<HashMap<String, DataFrame>> {
    let mut found: HashMap<String, DataFrame> = latest_report_tables(set_dir)?
        .into_iter()
        .filter(|(name, _)| TABLES.contains(&name.as_str()))
        .collect();
    if let Some(missing) = TABLES.iter().find(|name| !found.contains_key(**name)) {
        return Err(usage(format!(
            "the report set {} has no {missing}.parquet: run `cpstat analyze` with --format parquet, both or all",
            set_dir.display()
        )));
    }
    for name in TABLES {
        let table = found
            .remove(name)
            .expect("checked above that every table is present");
        let table = privacy.pseudonymize_table(name, table)?;
        found.insert(name.to_string(), privacy.apply_to_table(name, table)?);
    }
    Ok(found)
}

/// Reads the pooled history and the company names from the store. An
/// empty store gives neither, and the page's charts then show a note.
#[allow(clippy::type_complexity)]
fn store_facts(
    store: &Store,
) -> Result<(
    std::collections::BTreeMap<String, Vec<page_data::SnapshotRates>>,
    HashMap<String, String>,
)> {
    let files = store.list(&[])?;
    if files.is_empty() {
        return Ok(Default::default());
    }
    let snapshots = Store::scan(&files)?;
    Ok((
        page_data::snapshot_history(snapshots.clone())?,
        page_data::company_names(snapshots)?,
    ))
}

/// Writes `text` to a hidden temporary file beside `path` and renames it,
/// so a reader never sees half a page. The file is private (0600), because
/// it can hold names and email addresses.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temporary, text)
        .with_context(|| format!("failed to write {}", temporary.display()))?;
    crate::snapshot::store::restrict_file(&temporary)?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("failed to write the report {}", path.display()))
}
