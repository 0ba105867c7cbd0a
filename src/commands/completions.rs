//! `cpstat completions` and `cpstat man`: a shell completion script and the
//! manual page, generated from the command-line definition.

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::ExitKind;

pub fn run_completions(args: &CompletionsArgs) -> Result<ExitKind> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "cpstat", &mut std::io::stdout());
    Ok(ExitKind::Success)
}

pub fn run_man() -> Result<ExitKind> {
    let page = clap_mangen::Man::new(Cli::command());
    page.render(&mut std::io::stdout())
        .context("failed to write the manual page")?;
    Ok(ExitKind::Success)
}
