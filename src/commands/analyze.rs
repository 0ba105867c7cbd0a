//! `cpstat analyze`: the report tables from the snapshot store.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;
use polars::prelude::*;
use rayon::prelude::*;

use crate::analysis::{
    AnalysisParams, PieceCache, ReportTables, RiskWeights, Summary, analyze, analyze_store,
    summarize,
};
use crate::cli::AnalyzeArgs;
use crate::config::ConfigFile;
use crate::error::{ExitKind, data, usage};
use crate::output::Output;
use crate::privacy::{Privacy, resolve_privacy};
use crate::report::{CsvOptions, publish};
use crate::settings::resolve_store;
use crate::snapshot::check::check_footer;
use crate::snapshot::{SnapshotFile, Store};

/// The report folder of a finished analysis and its summary.
pub struct AnalyzeOutcome {
    pub report_dir: PathBuf,
    pub summary: Summary,
    /// Invalid snapshot files left out with `--skip-invalid`.
    pub skipped: Vec<SkippedFile>,
}

impl AnalyzeOutcome {
    /// Partial when invalid files were left out, else success.
    pub fn exit_kind(&self) -> ExitKind {
        if self.skipped.is_empty() {
            ExitKind::Success
        } else {
            ExitKind::Partial
        }
    }
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
    if !store_dir.is_dir() {
        return Err(usage(format!(
            "the store {} does not exist: run `cpstat fetch` first, or pass --store",
            store_dir.display()
        )));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| store_dir.join("reports"));
    let params = resolve_params(args)?;
    let options = RunOptions {
        accounts: args.accounts.clone(),
        format: args.format,
        csv: CsvOptions { bom: !args.no_bom },
        skip_invalid: args.skip_invalid,
        privacy: resolve_privacy(&args.privacy)?,
        cache: !args.no_cache,
    };
    let _lock = super::fetch::lock_store(&store_dir, "analyze", args.lock.timeout())?;
    let outcome = run_analysis(&Store::new(&store_dir), &out, &params, &options)?;
    print_outcome(&outcome, output);
    output.json_value(&AnalyzeJson {
        report_dir: outcome.report_dir.display().to_string(),
        summary: &outcome.summary,
    })?;
    Ok(outcome.exit_kind())
}

/// Prints the summary, the skipped files and the report folder as text.
pub fn print_outcome(outcome: &AnalyzeOutcome, output: Output) {
    output.line(crate::analysis::render_summary(&outcome.summary));
    if !outcome.skipped.is_empty() {
        output.line(format!(
            "skipped {} invalid snapshot files (--skip-invalid):",
            outcome.skipped.len()
        ));
        for (path, reason) in &outcome.skipped {
            output.line(format!("  {}: {reason}", path.display()));
        }
    }
    output.line(format!("report tables: {}", outcome.report_dir.display()));
}

/// A snapshot file left out of the analysis, and why.
pub type SkippedFile = (PathBuf, String);

/// Output choices of one analysis run.
pub struct RunOptions {
    pub accounts: Vec<String>,
    pub format: crate::report::Format,
    pub csv: CsvOptions,
    /// Leave out invalid snapshot files instead of failing.
    pub skip_invalid: bool,
    /// Pseudonyms and small-group suppression for every table written.
    pub privacy: Privacy,
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
    let listed = store.list(&options.accounts)?;
    let (files, skipped) = valid_snapshots(listed, options.skip_invalid)?;
    if files.is_empty() {
        return Err(usage(format!(
            "no snapshots in {}{}: run `cpstat fetch` first",
            store.table_dir().display(),
            account_filter_text(&options.accounts)
        )));
    }
    let (tables, summary, queried) = if options.privacy.is_active() {
        // Pseudonyms change the snapshot rows themselves and small groups
        // change the summary, so this path recomputes everything.
        let snapshots = options.privacy.apply_to_snapshots(Store::scan(&files)?)?;
        let tables = analyze(snapshots.clone(), params).with_context(|| analysis_failed(store))?;
        let tables = suppress_small_groups(tables, &options.privacy)?;
        let summary = summarize(snapshots.clone(), &tables, params)
            .context("failed to summarise the analysis")?;
        let named = named_tables(tables.clone());
        let queried = crate::query::run_shipped_queries(snapshots, &named)?;
        (tables, summary, queried)
    } else {
        let cache = options.cache.then(|| PieceCache::new(store));
        let analysis = analyze_store(&files, params, cache.as_ref())
            .with_context(|| analysis_failed(store))?;
        let named = named_tables(analysis.tables.clone());
        // Four shipped queries read `latest`, so it is read from disk once.
        let latest = crate::query::latest(Store::scan(&analysis.newest_files)?)?
            .collect()?
            .lazy();
        let queried =
            crate::query::run_shipped_queries_with_latest(Store::scan(&files)?, latest, &named)?;
        (analysis.tables, analysis.summary, queried)
    };
    let mut named = named_tables(tables);
    named.extend(queried);
    let report_dir = publish(out, Utc::now(), &mut named, options.format, options.csv)?;
    tracing::info!(dir = %report_dir.display(), "wrote report set");
    Ok(AnalyzeOutcome {
        report_dir,
        summary,
        skipped,
    })
}

/// Splits the listed files into valid snapshots and invalid ones, checking
/// each footer. An invalid file is an error naming it and the fix, unless
/// `skip_invalid` is set.
fn valid_snapshots(
    listed: Vec<SnapshotFile>,
    skip_invalid: bool,
) -> Result<(Vec<SnapshotFile>, Vec<SkippedFile>)> {
    // Each footer is read on its own, so they are checked in parallel; the
    // results keep the listed order.
    let checks: Vec<_> = listed
        .par_iter()
        .map(|file| check_footer(&file.path))
        .collect();
    let mut valid = Vec::with_capacity(listed.len());
    let mut skipped = Vec::new();
    for (file, check) in listed.into_iter().zip(checks) {
        match check {
            Ok(_) => valid.push(file),
            Err(reason) if skip_invalid => {
                tracing::warn!(file = %file.path.display(), %reason, "skipping an invalid snapshot file");
                skipped.push((file.path, reason));
            }
            Err(reason) => {
                return Err(data(format!(
                    "{} is not a valid cpstat snapshot: {reason}. Move it out of the store (or restore \
                     it from a backup), run `cpstat verify` to check the rest, or pass --skip-invalid \
                     to analyze without it",
                    file.path.display()
                )));
            }
        }
    }
    Ok((valid, skipped))
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

fn analysis_failed(store: &Store) -> String {
    format!(
        "failed to compute the report tables; run `cpstat verify --store {}` to find a damaged file",
        store.root().display()
    )
}
