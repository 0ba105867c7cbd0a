//! `cpstat analyze`: the report tables from the snapshot store.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;
use polars::prelude::*;

use crate::analysis::{
    AnalysisParams, PieceCache, ReportTables, RiskWeights, Summary, analyze_store,
};
use crate::cli::AnalyzeArgs;
use crate::config::ConfigFile;
use crate::error::{ExitKind, usage};
use crate::report::{CsvOptions, publish};
use crate::settings::resolve_store;
use crate::snapshot::Store;

/// The report folder of a finished analysis and its summary.
pub struct AnalyzeOutcome {
    pub report_dir: PathBuf,
    pub summary: Summary,
}

pub fn run(args: &AnalyzeArgs, config: &ConfigFile, quiet: bool) -> Result<ExitKind> {
    let store_dir = resolve_store(&args.store, config);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| store_dir.join("reports"));
    let params = resolve_params(args)?;
    let options = RunOptions {
        accounts: args.accounts.clone(),
        format: args.format,
        csv: CsvOptions { bom: !args.no_bom },
        cache: !args.no_cache,
    };
    let outcome = run_analysis(&Store::new(&store_dir), &out, &params, &options)?;
    if !quiet {
        println!("{}", crate::analysis::render_summary(&outcome.summary));
        println!("report tables: {}", outcome.report_dir.display());
    }
    Ok(ExitKind::Success)
}

/// Output choices of one analysis run.
pub struct RunOptions {
    pub accounts: Vec<String>,
    pub format: crate::report::Format,
    pub csv: CsvOptions,
    /// Read and write the analysis cache under the store.
    pub cache: bool,
}

fn resolve_params(args: &AnalyzeArgs) -> Result<AnalysisParams> {
    let mut params = AnalysisParams::default();
    if !(args.prior_strength.is_finite() && args.prior_strength >= 0.0) {
        return Err(usage(format!(
            "invalid --prior-strength {}: expected a finite number of at least 0",
            args.prior_strength
        )));
    }
    params.smoothing_strength = args.prior_strength;
    if let Some(text) = &args.weights {
        params.weights = parse_weights(text)?;
    }
    params.since = args.since;
    params.until = args.until;
    if let Some(every) = &args.every {
        params.every = Some(
            every
                .parse()
                .map_err(|e| usage(format!("invalid --every {every:?}: {e}")))?,
        );
    }
    if let (Some(since), Some(until)) = (params.since, params.until)
        && since > until
    {
        return Err(usage(format!(
            "--since {since} is after --until {until}; swap them"
        )));
    }
    Ok(params)
}

/// Parses `click=0.3,submit=0.3,...`; unnamed weights keep their defaults.
fn parse_weights(text: &str) -> Result<RiskWeights> {
    let mut weights = RiskWeights::default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').ok_or_else(|| {
            usage(format!(
                "invalid weight {part:?}: expected name=value, e.g. click=0.3"
            ))
        })?;
        let value: f64 = value.trim().parse().map_err(|_| {
            usage(format!(
                "invalid weight {part:?}: {value:?} is not a number"
            ))
        })?;
        let slot = match name.trim() {
            "click" => &mut weights.click,
            "submit" => &mut weights.submit,
            "training" => &mut weights.training,
            "overdue" => &mut weights.overdue,
            "score" => &mut weights.score,
            other => {
                return Err(usage(format!(
                    "unknown weight {other:?}: expected click, submit, training, overdue or score"
                )));
            }
        };
        *slot = value;
    }
    weights
        .validate()
        .map_err(|e| usage(format!("invalid --weights {text:?}: {e}")))?;
    Ok(weights)
}

/// Reads the store, computes every table and publishes the report set.
/// Nothing under `out` changes when any step fails.
pub fn run_analysis(
    store: &Store,
    out: &Path,
    params: &AnalysisParams,
    options: &RunOptions,
) -> Result<AnalyzeOutcome> {
    let files = store.list(&options.accounts)?;
    if files.is_empty() {
        return Err(usage(format!(
            "no snapshots in {}{}: run `cpstat fetch` first",
            store.table_dir().display(),
            account_filter_text(&options.accounts)
        )));
    }
    let cache = options.cache.then(|| PieceCache::new(store));
    let analysis = analyze_store(&files, params, cache.as_ref())
        .context("failed to compute the report tables")?;
    let summary = analysis.summary;
    let mut named = named_tables(analysis.tables);
    let latest = crate::query::latest(Store::scan(&analysis.newest_files)?)?;
    let queried =
        crate::query::run_shipped_queries_with_latest(Store::scan(&files)?, latest, &named)?;
    named.extend(queried);
    let report_dir = publish(out, Utc::now(), &mut named, options.format, options.csv)?;
    tracing::info!(dir = %report_dir.display(), "wrote report set");
    Ok(AnalyzeOutcome {
        report_dir,
        summary,
    })
}

fn account_filter_text(accounts: &[String]) -> String {
    if accounts.is_empty() {
        String::new()
    } else {
        format!(" for account {}", accounts.join(", "))
    }
}

/// Pairs the four report tables with their file names.
pub fn named_tables(tables: ReportTables) -> Vec<(String, DataFrame)> {
    vec![
        ("user_risk".to_string(), tables.user_risk),
        ("group_rates".to_string(), tables.group_rates),
        ("department_trend".to_string(), tables.department_trend),
        ("repeat_clickers".to_string(), tables.repeat_clickers),
    ]
}
