//! One module per subcommand, each with a `run` function.

pub mod analyze;
pub mod demo;
pub mod fetch;
pub mod forget;
pub mod generate;
pub mod mock_api;
pub mod query;
pub mod run;
pub mod snapshots;
pub mod verify;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::config::ConfigFile;
use crate::error::ExitKind;

/// Runs the parsed command and returns the exit kind of a run that did not fail.
pub async fn run(cli: Cli) -> Result<ExitKind> {
    let config = || ConfigFile::discover(cli.config.as_deref());
    match &cli.command {
        Command::Fetch(args) => fetch::run(args, &config()?, cli.quiet).await,
        Command::Snapshots(args) => snapshots::run(args, &config()?),
        Command::Analyze(args) => analyze::run(args, &config()?, cli.quiet),
        Command::Query(args) => query::run(args, &config()?),
        Command::Demo(args) => demo::run(args, cli.quiet).await,
        Command::MockApi(args) => mock_api::run(args).await,
        Command::Gen(args) => generate::run(args, cli.quiet),
        Command::Run(args) => run::run(args, &config()?, cli.quiet).await,
        Command::Verify(args) => verify::run(args, &config()?),
        Command::Forget(args) => forget::run(args, &config()?, cli.quiet),
    }
}
