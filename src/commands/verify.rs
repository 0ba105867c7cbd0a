//! `cpstat verify`: checks every snapshot file and report set in the store
//! and prints a table of what is wrong.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::VerifyArgs;
use crate::config::ConfigFile;
use crate::error::{ExitKind, data};
use crate::report::{LATEST, is_set_name};
use crate::settings::resolve_store;
use crate::snapshot::Store;
use crate::snapshot::check::{check_contents, check_footer};
use crate::snapshot::store::STEM_FORMAT;
use crate::snapshot::write::keys;

/// One thing wrong with one file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    pub problem: String,
}

/// The files a verification checked and the problems it found.
#[derive(Debug, Default)]
pub struct Report {
    pub snapshots: usize,
    pub report_sets: usize,
    pub findings: Vec<Finding>,
}

pub fn run(args: &VerifyArgs, config: &ConfigFile) -> Result<ExitKind> {
    let store = Store::new(resolve_store(&args.store, config));
    if !store.root().is_dir() {
        return Err(crate::error::usage(format!(
            "the store {} does not exist; pass --store",
            store.root().display()
        )));
    }
    let reports = args
        .reports
        .clone()
        .unwrap_or_else(|| store.root().join("reports"));
    let report = verify(&store, &reports);
    print_report(&report);
    if report.findings.is_empty() {
        return Ok(ExitKind::Success);
    }
    Err(data(format!(
        "{} problems found in {}; move damaged snapshots out of the store or restore them from a \
         backup, and run `cpstat analyze` again for damaged report sets",
        report.findings.len(),
        store.root().display()
    )))
}

/// Checks every `*.parquet` file under the store's table folder and every
/// report set under `reports`.
pub fn verify(store: &Store, reports: &Path) -> Report {
    let mut report = Report::default();
    for path in parquet_files(&store.table_dir()) {
        report.snapshots += 1;
        for problem in snapshot_problems(&path) {
            report.findings.push(Finding {
                path: path.clone(),
                problem,
            });
        }
    }
    for set in report_sets(reports) {
        report.report_sets += 1;
        report.findings.extend(report_set_findings(&set));
    }
    report.findings.extend(latest_finding(reports));
    report
}

fn snapshot_problems(path: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if chrono::NaiveDateTime::parse_from_str(stem, STEM_FORMAT).is_err() {
        problems.push("the name is not a snapshot time (YYYYMMDDTHHMMSSZ.parquet)".to_string());
    }
    let footer = match check_footer(path) {
        Ok(footer) => footer,
        Err(reason) => {
            problems.push(reason);
            return problems;
        }
    };
    let folder_account = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("account="));
    if folder_account.is_none() || footer.get(keys::ACCOUNT) != folder_account {
        problems.push(format!(
            "{} is {:?}, but the file lies in folder account={}",
            keys::ACCOUNT,
            footer.get(keys::ACCOUNT).unwrap_or("missing"),
            folder_account.unwrap_or("?")
        ));
    }
    problems.extend(check_contents(path, &footer));
    problems
}

/// Lists the report set folders in `reports`: those named as `analyze`
/// names them.
fn report_sets(reports: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(reports) else {
        return Vec::new();
    };
    let mut sets: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            is_set_name(name) && p.is_dir() && !p.is_symlink()
        })
        .collect();
    sets.sort();
    sets
}

fn report_set_findings(set: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    let finding = |path: &Path, problem: String| Finding {
        path: path.to_path_buf(),
        problem,
    };
    let Ok(entries) = fs::read_dir(set) else {
        return vec![finding(set, "the folder cannot be read".to_string())];
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    if files.iter().any(|p| has_suffix(p, ".part")) {
        findings.push(finding(
            set,
            "incomplete report set (unfinished .part files); the next `cpstat analyze` removes it"
                .to_string(),
        ));
    }
    for path in files.iter().filter(|p| has_suffix(p, ".parquet")) {
        if let Err(reason) = read_report_table(path) {
            findings.push(finding(path, reason));
        }
    }
    findings
}

fn read_report_table(path: &Path) -> Result<(), String> {
    use polars::prelude::{ParquetReader, SerReader};
    let file = fs::File::open(path).map_err(|e| format!("failed to open: {e}"))?;
    ParquetReader::new(file)
        .finish()
        .map(|_| ())
        .map_err(|e| format!("unreadable report table: {e}"))
}

/// Checks that `latest`, when present, names an existing report set.
fn latest_finding(reports: &Path) -> Option<Finding> {
    let latest = reports.join(LATEST);
    if !latest.is_symlink() && !latest.exists() {
        return None;
    }
    let problem = if !latest.is_symlink() {
        "latest is not a symbolic link made by cpstat"
    } else if !latest.is_dir() {
        "latest points to a report set that does not exist"
    } else {
        return None;
    };
    Some(Finding {
        path: latest,
        problem: problem.to_string(),
    })
}

fn has_suffix(path: &Path, suffix: &str) -> bool {
    path.to_str().is_some_and(|p| p.ends_with(suffix))
}

/// Lists every `*.parquet` file below `dir`, sorted. Temporary files of
/// running or interrupted writes end in `.tmp`, so they are not included.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = fs::read_dir(&folder) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if has_suffix(&path, ".parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn print_report(report: &Report) {
    println!(
        "checked {} snapshot files and {} report sets",
        report.snapshots, report.report_sets
    );
    if report.findings.is_empty() {
        println!("no problems found");
        return;
    }
    let width = report
        .findings
        .iter()
        .map(|f| f.path.display().to_string().chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}  problem", "file");
    for finding in &report.findings {
        println!(
            "{:<width$}  {}",
            finding.path.display().to_string(),
            finding.problem
        );
    }
}
