//! `cpstat mock-api`: the mock API as a standalone server.

use anyhow::Result;

use crate::cli::MockApiArgs;
use crate::error::ExitKind;

pub async fn run(_args: &MockApiArgs) -> Result<ExitKind> {
    Err(crate::error::usage("the mock API module is not built in"))
}
