//! `cpstat mock-api`: the mock API as a standalone loopback server, for
//! scripts, benchmarks and trying cpstat without an account.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cli::MockApiArgs;
use crate::error::{ExitKind, usage};
use crate::mock::{DEFAULT_TOKEN, MockApi, MockOptions, OrgConfig, Organisation};
use crate::settings::read_secret_file;

pub async fn run(args: &MockApiArgs) -> Result<ExitKind> {
    let token = match &args.token_file {
        Some(path) => read_secret_file(path, "token")?.expose().to_string(),
        None => DEFAULT_TOKEN.to_string(),
    };
    let options = MockOptions {
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        page_cap: args.page_cap,
        latency: Duration::from_millis(args.latency_ms),
        tokens: vec![token],
        fixture: args.fixture.as_deref().map(read_fixture).transpose()?,
        ..MockOptions::default()
    };
    let organisation = Organisation::new(OrgConfig {
        seed: args.seed,
        account_id: args.account.clone(),
        users: args.users as usize,
        ..OrgConfig::default()
    });
    let mock = MockApi::start(options, vec![organisation])
        .await
        .with_context(|| format!("failed to start the mock API on 127.0.0.1:{}", args.port))?;
    mock.set_day(args.day);
    mock.prepare_served_day();
    // Scripts read the base URL from the first line.
    println!("{}", mock.base_url());
    println!(
        "account {} on simulated day {}; token endpoint {}",
        args.account,
        args.day,
        mock.auth_url()
    );
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c()
        .await
        .context("failed to wait for Ctrl-C")?;
    mock.shutdown().await;
    Ok(ExitKind::Success)
}

/// Reads the `result` array of a users-summary JSON file.
fn read_fixture(path: &std::path::Path) -> Result<Vec<Value>> {
    let text = std::fs::read(path)
        .map_err(|e| usage(format!("failed to read fixture {}: {e}", path.display())))?;
    let page: Value = serde_json::from_slice(&text)
        .map_err(|e| usage(format!("invalid JSON in fixture {}: {e}", path.display())))?;
    match page.get("result") {
        Some(Value::Array(entries)) => Ok(entries.clone()),
        _ => Err(usage(format!(
            "fixture {} has no `result` array; give a users-summary response",
            path.display()
        ))),
    }
}
