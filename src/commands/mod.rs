//! One module per subcommand, each with a `run` function.

pub mod analyze;
pub mod completions;
pub mod demo;
pub mod fetch;
pub mod fetch_all;
pub mod forget;
pub mod generate;
pub mod mock_api;
pub mod query;
pub mod report;
pub mod run;
pub mod snapshots;
pub mod verify;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::config::ConfigFile;
use crate::error::ExitKind;
use crate::output::Output;

/// Runs the parsed command and returns the exit kind of a run that did not fail.
pub async fn run(cli: Cli) -> Result<ExitKind> {
    let config = || ConfigFile::discover(cli.config.as_deref());
    let output = Output::from_cli(&cli);
    match &cli.command {
        Command::Fetch(args) if args.all_accounts => fetch_all::run(args, &config()?, output).await,
        Command::Fetch(args) => fetch::run(args, &config()?, output).await,
        Command::Snapshots(args) => snapshots::run(args, &config()?, output),
        Command::Analyze(args) => analyze::run(args, &config()?, output),
        Command::Query(args) => query::run(args, &config()?, output),
        Command::Report(args) => report::run(args, &config()?, output),
        Command::Demo(args) => demo::run(args, output).await,
        Command::Completions(args) => completions::run_completions(args),
        Command::Man => completions::run_man(),
        Command::MockApi(args) => mock_api::run(args).await,
        Command::Gen(args) => generate::run(args, cli.quiet),
        Command::Run(args) => run::run(args, &config()?, output).await,
        Command::Verify(args) => verify::run(args, &config()?),
        Command::Forget(args) => forget::run(args, &config()?, cli.quiet),
    }
}
