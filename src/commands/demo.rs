//! `cpstat demo`: an offline run against the built-in mock API.

use anyhow::Result;

use crate::cli::DemoArgs;
use crate::error::ExitKind;

pub async fn run(_args: &DemoArgs, _quiet: bool) -> Result<ExitKind> {
    Err(crate::error::usage("the demo needs the mock API module"))
}
