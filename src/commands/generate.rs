//! `cpstat gen`: a large synthetic store for benchmarks.

use anyhow::Result;

use crate::cli::GenArgs;
use crate::error::{ExitKind, usage};
use crate::generate::{GenerateOptions, generate};
use crate::snapshot::Store;

/// Simulated days before the first snapshot, so that counters have history.
const FIRST_DAY: u32 = 28;

pub fn run(args: &GenArgs, quiet: bool) -> Result<ExitKind> {
    let existing = Store::new(&args.out).list(&[])?;
    if !existing.is_empty() {
        return Err(usage(format!(
            "{} already holds {} snapshots; generate into a new folder",
            args.out.display(),
            existing.len()
        )));
    }
    let options = GenerateOptions {
        users: args.users as usize,
        snapshots: args.snapshots,
        every_days: args.every,
        accounts: args.accounts as usize,
        seed: args.seed,
        first_day: FIRST_DAY,
    };
    let summary = tokio::task::block_in_place(|| generate(&args.out, &options))?;
    if !quiet {
        println!(
            "wrote {} snapshots with {} rows ({:.1} MB) to {} in {:.1}s",
            summary.files,
            summary.rows,
            summary.bytes as f64 / 1e6,
            args.out.display(),
            summary.seconds
        );
    }
    Ok(ExitKind::Success)
}
