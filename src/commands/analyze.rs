//! `cpstat analyze`: the report tables from the snapshot store.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;
use polars::prelude::*;

use crate::analysis::{AnalysisParams, ReportTables, RiskWeights, Summary, analyze, summarize};
use crate::cli::AnalyzeArgs;
use crate::config::ConfigFile;
use crate::error::{ExitKind, usage};
use crate::output::Output;
use crate::privacy::{Privacy, resolve_privacy};
use crate::report::{CsvOptions, publish};
use crate::settings::resolve_store;
use crate::snapshot::Store;

/// The report folder of a finished analysis and its summary.
pub struct AnalyzeOutcome {
    pub report_dir: PathBuf,
    pub summary: Summary,
}

/// The result of `analyze`, as printed by `--json`.
#[derive(serde::Serialize)]
struct AnalyzeJson<'a> {
    report_dir: String,
    #[serde(flatten)]
    summary: &'a Summary,
}

pub fn run(args: &AnalyzeArgs, config: &ConfigFile, output: Output) -> Result<ExitKind> {
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
        privacy: resolve_privacy(&args.privacy)?,
    };
    let outcome = run_analysis(&Store::new(&store_dir), &out, &params, &options)?;
    output.line(crate::analysis::render_summary(&outcome.summary));
    output.line(format!("report tables: {}", outcome.report_dir.display()));
    output.json_value(&AnalyzeJson {
        report_dir: outcome.report_dir.display().to_string(),
        summary: &outcome.summary,
    })?;
    Ok(ExitKind::Success)
}

/// Output choices of one analysis run.
pub struct RunOptions {
    pub accounts: Vec<String>,
    pub format: crate::report::Format,
    pub csv: CsvOptions,
    /// Pseudonyms and small-group suppression for every table written.
    pub privacy: Privacy,
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
    let snapshots = options.privacy.apply_to_snapshots(Store::scan(&files)?)?;
    let tables =
        analyze(snapshots.clone(), params).context("failed to compute the report tables")?;
    let tables = suppress_small_groups(tables, &options.privacy)?;
    let summary = summarize(snapshots.clone(), &tables, params)
        .context("failed to summarise the analysis")?;
    let mut named = named_tables(tables);
    let queried = crate::query::run_shipped_queries(snapshots, &named)?;
    named.extend(queried);
    let report_dir = publish(out, Utc::now(), &mut named, options.format, options.csv)?;
    tracing::info!(dir = %report_dir.display(), "wrote report set");
    Ok(AnalyzeOutcome {
        report_dir,
        summary,
    })
}

/// Applies `--min-group-size` before the summary is built, so the summary
/// lists no department that the tables leave out.
fn suppress_small_groups(tables: ReportTables, privacy: &Privacy) -> Result<ReportTables> {
    Ok(ReportTables {
        group_rates: privacy.apply_to_table("group_rates", tables.group_rates)?,
        department_trend: privacy.apply_to_table("department_trend", tables.department_trend)?,
        ..tables
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
