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

/// Returns whether the command runs on a current-thread runtime. A fetch of
/// one account waits on the network and decodes a page in well under a
/// millisecond, so one thread serves it, and no response is handed between
/// a network thread and a decoding thread.
pub fn wants_one_thread(cli: &Cli) -> bool {
    matches!(&cli.command, Command::Fetch(args) if !args.all_accounts)
}

/// Runs blocking work from async code: in place on a current-thread
/// runtime, where no other task is waiting to run, and through
/// `block_in_place` on a multi-thread one, so the runtime's other tasks move
/// to another thread meanwhile.
pub fn run_blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn one_thread(args: &[&str]) -> bool {
        let cli = Cli::try_parse_from(std::iter::once("cpstat").chain(args.iter().copied()))
            .expect("the arguments parse");
        wants_one_thread(&cli)
    }

    #[test]
    fn only_single_account_fetch_uses_one_thread() {
        assert!(one_thread(&["fetch", "--account", "konto-ærø"]));
        assert!(!one_thread(&["fetch", "--all-accounts"]));
        assert!(!one_thread(&["analyze"]));
        assert!(!one_thread(&["demo"]));
    }

    #[test]
    fn run_blocking_works_on_both_runtimes() {
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { run_blocking(|| 7) }), 7);
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        assert_eq!(multi.block_on(async { run_blocking(|| 8) }), 8);
        assert_eq!(run_blocking(|| 9), 9);
    }
}
