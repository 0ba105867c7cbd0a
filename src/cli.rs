//! Command-line arguments, as parsed by clap. Values are resolved against
//! the environment, the config file and defaults in [`crate::settings`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Environment variables read by cpstat. Each flag that has one names it in
/// its help; the secrets (`CPSTAT_TOKEN`, `CPSTAT_PASSWORD`) are read from
/// the environment only, never from a flag value.
pub mod env {
    /// Bearer token for the API.
    pub const TOKEN: &str = "CPSTAT_TOKEN";
    /// File holding the bearer token.
    pub const TOKEN_FILE: &str = "CPSTAT_TOKEN_FILE";
    /// Account id or configured account name.
    pub const ACCOUNT: &str = "CPSTAT_ACCOUNT";
    /// API base URL; default `https://api.app.cyberpilot.io`.
    pub const BASE_URL: &str = "CPSTAT_BASE_URL";
    /// Snapshot store folder; default `./cpstat-store`.
    pub const STORE: &str = "CPSTAT_STORE";
    /// Password-grant client id.
    pub const CLIENT_ID: &str = "CPSTAT_CLIENT_ID";
    /// Password-grant user name.
    pub const USERNAME: &str = "CPSTAT_USERNAME";
    /// Password-grant password.
    pub const PASSWORD: &str = "CPSTAT_PASSWORD";
    /// File holding the password-grant password.
    pub const PASSWORD_FILE: &str = "CPSTAT_PASSWORD_FILE";
    /// OAuth2 token URL for the password grant; no default.
    pub const AUTH_URL: &str = "CPSTAT_AUTH_URL";
    /// Config file path; default `./cpstat.toml`, then the user config dir.
    pub const CONFIG: &str = "CPSTAT_CONFIG";
    /// Factor for every retry wait; `0` retries at once (for tests); default 1.
    pub const RETRY_TIME_SCALE: &str = "CPSTAT_RETRY_TIME_SCALE";
    /// Seconds to wait for another run's store lock; default 60.
    pub const LOCK_TIMEOUT: &str = "CPSTAT_LOCK_TIMEOUT";
    /// Secret key of `--pseudonymize`, at least 16 bytes; no default.
    pub const PSEUDONYM_KEY: &str = "CPSTAT_PSEUDONYM_KEY";
    /// File holding the secret key of `--pseudonymize`.
    pub const PSEUDONYM_KEY_FILE: &str = "CPSTAT_PSEUDONYM_KEY_FILE";
}

const ABOUT: &str =
    "Fetch CyberPilot users-summary reports into Parquet snapshots and analyse them.";

const AFTER_HELP: &str = "\
Examples:
  cpstat demo                                  run everything offline against a built-in mock API
  CPSTAT_TOKEN_FILE=~/.cpstat/token cpstat fetch --account 0b5f4a8e-...
  cpstat snapshots --store ./cpstat-store

Exit codes: 0 success, 1 internal error, 2 usage or configuration error, 3 authentication or
access denied, 4 network or server error, 5 invalid data, 6 partial result, 7 store busy.";

#[derive(Debug, Parser)]
#[command(name = "cpstat", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// More log output on stderr: -v for decisions (pages planned, retries,
    /// files written), -vv for every request. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// No progress bars and no summary line; errors are still printed.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Config file to read instead of ./cpstat.toml or the user config dir.
    #[arg(long, global = true, env = env::CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the result of the command as JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the users-summary report of an account into a new snapshot.
    #[command(after_help = FETCH_HELP)]
    Fetch(FetchArgs),
    /// List the snapshots in the store.
    #[command(after_help = SNAPSHOTS_HELP)]
    Snapshots(SnapshotsArgs),
    /// Compute risk scores, click-rate rankings and department trends from the store.
    #[command(after_help = ANALYZE_HELP)]
    Analyze(AnalyzeArgs),
    /// Run SQL over the store and the latest reports.
    #[command(after_help = QUERY_HELP)]
    Query(QueryArgs),
    /// Write the latest reports as one self-contained HTML page with charts.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Fetch several snapshots from a built-in mock API, offline, and show them.
    #[command(after_help = DEMO_HELP)]
    Demo(DemoArgs),
    /// Print a shell completion script, e.g. `cpstat completions bash > /etc/bash_completion.d/cpstat`.
    Completions(CompletionsArgs),
    /// Print the manual page in roff, e.g. `cpstat man > cpstat.1`.
    Man,
    /// Serve the mock API on loopback, for development and benchmarks.
    #[command(hide = true)]
    MockApi(MockApiArgs),
    /// Write a large synthetic store directly, without HTTP, for benchmarks.
    #[command(hide = true, after_help = GEN_HELP)]
    Gen(GenArgs),
    /// Fetch, then analyze, with exit codes for schedulers.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Check every snapshot file and report set in the store.
    Verify(VerifyArgs),
    /// Delete one person's rows from every snapshot in the store.
    #[command(after_help = FORGET_HELP)]
    Forget(ForgetArgs),
}

const RUN_HELP: &str = "\
Fetches the account given (or every account in cpstat.toml when none is given), then analyzes
the store, holding the store lock throughout. Exit codes: 0 all done; 6 a partial snapshot,
some accounts failed, or invalid snapshots skipped with --skip-invalid; 7 another run holds the
store. When every fetch fails, the analysis is skipped and the exit code is the failure's own
(2 usage, 3 authentication, 4 network, 5 data); a failed analysis exits with its own code.

Example:
  cpstat run --account acme --store /var/lib/cpstat --lock-timeout 300";

const FORGET_HELP: &str = "\
Rewrites each snapshot that holds the address (matched without regard to case) without that
person's rows, and clears `manager` and `manager_email` where the person is another user's
manager. Report sets made earlier still hold the data: delete them and run `cpstat analyze`.

Example:
  cpstat forget --email anna.hansen@example.dk --store /var/lib/cpstat";

const FETCH_HELP: &str = "\
Credentials come from CPSTAT_TOKEN, CPSTAT_TOKEN_FILE or --token-file, or from the password
grant (CPSTAT_AUTH_URL, CPSTAT_CLIENT_ID, CPSTAT_USERNAME and CPSTAT_PASSWORD or
--password-file), or from the account's entry in cpstat.toml. Secrets are never taken as flag
values.

Examples:
  CPSTAT_TOKEN_FILE=~/.cpstat/token cpstat fetch --account 0b5f4a8e-1111-4c1e-9d7a-000000000001
  cpstat fetch --account acme --store /var/lib/cpstat --page-size 200 --concurrency 8
  cpstat fetch --account acme --allow-partial -v";

const ANALYZE_HELP: &str = "\
Writes user_risk, group_rates, department_trend and repeat_clickers, plus one table per shipped
query, to <out>/<YYYYMMDDTHHMMSSZ>/ and points <out>/latest at it. Column definitions: docs/metrics.md.

Examples:
  cpstat analyze --store ./cpstat-store
  cpstat analyze --since 2026-01-01 --every 1mo --format both
  cpstat analyze --account 0b5f4a8e-1111-4c1e-9d7a-000000000001 --prior-strength 10";

const QUERY_HELP: &str = "\
Examples:
  cpstat query \"SELECT department, COUNT(*) AS users FROM latest GROUP BY department\"
  cpstat query queries/overdue_by_manager.sql --out overdue.csv";

const GEN_HELP: &str = "\
Example:
  cpstat gen --users 100000 --snapshots 365 --every 1d --out /tmp/big-store";

const SNAPSHOTS_HELP: &str = "\
A `*` after the user count marks a partial snapshot (written with --allow-partial).

Examples:
  cpstat snapshots --store /var/lib/cpstat
  cpstat snapshots --account 0b5f4a8e-1111-4c1e-9d7a-000000000001";
const REPORT_HELP: &str = "\
The page has no scripts, fonts or images from elsewhere, so it opens offline, prints on paper
and can be sent as one file. It is written to <reports>/latest/report.html unless --out names a
file (report.pseudonymized.html with --pseudonymize).

Examples:
  cpstat report --store ./cpstat-store
  cpstat report --pseudonymize --min-group-size 5 --out customer-report.html";

const DEMO_HELP: &str = "\
Example:
  cpstat demo --out /tmp/cpstat-demo --users 2000 --snapshots 8";

/// Arguments of `cpstat fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Account id (a UUID) or the name of an account in cpstat.toml.
    #[arg(long, env = env::ACCOUNT, value_name = "ID_OR_NAME")]
    pub account: Option<String>,

    /// Fetch every account listed in cpstat.toml; a failed account does
    /// not stop the others, and the exit code is 6 when some failed.
    #[arg(long, conflicts_with = "account")]
    pub all_accounts: bool,

    /// Accounts fetched at once with --all-accounts.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=16))]
    pub parallel_accounts: u64,

    #[command(flatten)]
    pub store: StoreArg,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Users asked for per page; the server may return fewer.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub page_size: u64,

    /// Page requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: u64,

    /// Fetch rounds before giving up on an account that changes during the fetch.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_rounds: u32,

    /// Write the last round even when it is incomplete; the shortfall is
    /// recorded in the file's metadata and the exit code is 6.
    #[arg(long)]
    pub allow_partial: bool,

    /// Record this UTC time (RFC 3339) as the snapshot time instead of now,
    /// e.g. when loading a backfill.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub snapshot_at: Option<chrono::DateTime<chrono::Utc>>,

    #[command(flatten)]
    pub lock: LockArg,
}

/// How long to wait for another run that holds the store.
#[derive(Debug, Args)]
pub struct LockArg {
    /// Seconds to wait while another cpstat run holds the store's lock; then exit with code 7.
    #[arg(long, env = env::LOCK_TIMEOUT, default_value_t = 60, value_name = "SECONDS")]
    pub lock_timeout: u64,
}

impl LockArg {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lock_timeout)
    }
}

/// Arguments of `cpstat run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub fetch: FetchArgs,

    /// Folder for report sets [default: <store>/reports].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// File formats of the report tables.
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: crate::report::Format,

    /// Write CSV files without the UTF-8 byte-order mark.
    #[arg(long)]
    pub no_bom: bool,

    /// Leave out snapshot files that are not valid cpstat snapshots, and exit with code 6.
    #[arg(long)]
    pub skip_invalid: bool,
}

/// Arguments of `cpstat verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArg,

    /// Folder of report sets to check [default: <store>/reports].
    #[arg(long, value_name = "DIR")]
    pub reports: Option<PathBuf>,
}

/// Arguments of `cpstat forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// E-mail address whose rows are deleted; compared without regard to case.
    #[arg(long, value_name = "ADDRESS")]
    pub email: String,

    #[command(flatten)]
    pub store: StoreArg,

    #[command(flatten)]
    pub lock: LockArg,
}

/// The store folder option shared by several commands.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// Snapshot store folder [default: ./cpstat-store, or `store` in cpstat.toml].
    #[arg(long, env = env::STORE, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// Connection and credential options of commands that call the API.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// API base URL [default: https://api.app.cyberpilot.io]; plain http only for loopback.
    #[arg(long, env = env::BASE_URL, value_name = "URL")]
    pub base_url: Option<String>,

    /// File holding the bearer token (the file, never the token itself).
    #[arg(long, env = env::TOKEN_FILE, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// OAuth2 token URL for the password grant.
    #[arg(long, env = env::AUTH_URL, value_name = "URL")]
    pub auth_url: Option<String>,

    /// Password-grant client id, shown in the account's API settings.
    #[arg(long, env = env::CLIENT_ID, value_name = "ID")]
    pub client_id: Option<String>,

    /// Password-grant user name.
    #[arg(long, env = env::USERNAME, value_name = "NAME")]
    pub username: Option<String>,

    /// File holding the password-grant password.
    #[arg(long, env = env::PASSWORD_FILE, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Extra trusted root certificate (PEM), e.g. a corporate TLS proxy's.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Seconds allowed to open a connection.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub connect_timeout: u64,

    /// Seconds allowed between two reads of a response; a slow large page is
    /// not cut off while data keeps arriving.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub read_timeout: u64,

    /// Attempts per page before the fetch fails.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub max_attempts: u32,

    /// Maximum seconds to wait before a retry; a longer Retry-After ends the fetch.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub max_retry_wait: u64,
}

/// Arguments of `cpstat snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub store: StoreArg,

    /// Only this account id; repeat for several.
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,
}

/// Arguments of `cpstat demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo store and reports; it must be new or a previous demo's.
    #[arg(long, default_value = "cpstat-demo", value_name = "DIR")]
    pub out: PathBuf,

    /// Users in the simulated organisation.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    pub users: u64,

    /// Snapshots to fetch, one per simulated week.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=520))]
    pub snapshots: u32,

    /// Seed of the simulated organisation.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Arguments of `cpstat mock-api`.
#[derive(Debug, Args)]
pub struct MockApiArgs {
    /// Loopback port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Users in the simulated organisation.
    #[arg(long, default_value_t = 1000)]
    pub users: u64,

    /// Seed of the simulated organisation.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,

    /// Simulated day served at start; scripts change it with POST /_mock/day?value=N.
    #[arg(long, default_value_t = 0)]
    pub day: u32,

    /// Maximum users the server returns per page.
    #[arg(long)]
    pub page_cap: Option<usize>,

    /// Milliseconds of latency added to every request.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Account id served.
    #[arg(long, default_value = "0b5f4a8e-7c1e-4c1e-9d7a-5e2f3c4d5e6f")]
    pub account: String,

    /// File holding the bearer token the server accepts [default: mock-static-token].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Serve the `result` entries of this users-summary JSON file instead of simulated users.
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
}

/// Parses an RFC 3339 time into UTC.
fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-12-01T06:00:00Z: {e}"))
}

/// Arguments of `cpstat analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub store: StoreArg,

    /// Folder for report sets [default: <store>/reports].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Only this account id; repeat for several [default: every account in the store].
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,

    /// Ignore snapshots before this UTC date or time (2026-01-31 or RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_bound)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,

    /// Ignore snapshots after this UTC date or time; a bare date includes the whole day.
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,

    /// Compare the last snapshot of each period (1d, 1w or 1mo) instead of every snapshot.
    #[arg(long, value_name = "PERIOD")]
    pub every: Option<String>,

    /// File formats of the report tables: a Parquet or CSV file per table,
    /// one Excel workbook (report.xlsx) with a sheet per table, both
    /// (Parquet and CSV) or all three.
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: crate::report::Format,

    /// Write CSV files without the UTF-8 byte-order mark.
    #[arg(long)]
    pub no_bom: bool,

    /// Strength m of the prior that pulls small samples toward the account's
    /// pooled rate, in pseudo-emails.
    #[arg(long, default_value_t = 4.0, value_name = "M")]
    pub prior_strength: f64,

    /// Risk weights, e.g. click=0.3,submit=0.3,training=0.15,overdue=0.1,score=0.15; they must sum to 1.
    #[arg(long, value_name = "LIST")]
    pub weights: Option<String>,

    /// Leave out snapshot files that are not valid cpstat snapshots, and exit with code 6.
    #[arg(long)]
    pub skip_invalid: bool,

    /// Recompute everything and neither read nor write <store>/cache, which
    /// otherwise keeps per-snapshot and per-period results between runs.
    #[arg(long)]
    pub no_cache: bool,

    #[command(flatten)]
    pub lock: LockArg,
    #[command(flatten)]
    pub privacy: PrivacyArgs,
}

/// Options that make reports fit to share outside the security team.
#[derive(Debug, Args)]
pub struct PrivacyArgs {
    /// Replace email addresses, names, managers and manager emails in every
    /// output by keyed pseudonyms, the same in every run with the same key.
    #[arg(long)]
    pub pseudonymize: bool,

    /// File holding the pseudonym key [default: the key in CPSTAT_PSEUDONYM_KEY].
    #[arg(long, env = env::PSEUDONYM_KEY_FILE, value_name = "FILE")]
    pub pseudonym_key_file: Option<PathBuf>,

    /// Leave out every group with fewer than K users from group_rates,
    /// department_trend and the report page's department charts.
    #[arg(long, value_name = "K")]
    pub min_group_size: Option<u32>,
}

/// Arguments of `cpstat report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub store: StoreArg,

    /// Report folder whose `latest` set the page shows [default: <store>/reports].
    #[arg(long, value_name = "DIR")]
    pub reports: Option<PathBuf>,

    /// HTML file to write [default: report.html in the latest report set].
    #[arg(long, value_name = "FILE.html")]
    pub out: Option<PathBuf>,

    /// Users listed in the riskiest-users table of each account.
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub top: u64,

    #[command(flatten)]
    pub privacy: PrivacyArgs,
}

/// Arguments of `cpstat completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `cpstat query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// SQL text, or the path of a .sql file. Tables: snapshots, latest, user_risk,
    /// group_rates, department_trend, repeat_clickers.
    #[arg(value_name = "SQL_OR_FILE")]
    pub sql: String,

    #[command(flatten)]
    pub store: StoreArg,

    /// Report folder whose `latest` set provides the report tables [default: <store>/reports].
    #[arg(long, value_name = "DIR")]
    pub reports: Option<PathBuf>,

    /// Write the result to this .parquet or .csv file instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

fn parse_bound(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_date_or_time(text, false)
}

fn parse_until(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_date_or_time(text, true)
}

/// Parses a UTC date or RFC 3339 time; a date means its first moment, or
/// its last one when `end_of_day` is set.
fn parse_date_or_time(
    text: &str,
    end_of_day: bool,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        let time = if end_of_day {
            date.and_hms_micro_opt(23, 59, 59, 999_999)
        } else {
            date.and_hms_opt(0, 0, 0)
        };
        return Ok(time.expect("a valid time of day").and_utc());
    }
    parse_time(text).map_err(|_| format!("{text:?} is not a date (2026-01-31) or an RFC 3339 time"))
}

/// Arguments of `cpstat gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Users per account on the first simulated day.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub users: u64,

    /// Snapshots per account.
    #[arg(long, default_value_t = 52, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub snapshots: u32,

    /// Time between snapshots: 1d or 1w.
    #[arg(long, default_value = "1w", value_parser = parse_gen_every)]
    pub every: u32,

    /// Accounts, each its own organisation.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub accounts: u64,

    /// Seed of the simulated organisations.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,

    /// Store folder to write; it must not contain snapshots yet.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Parses `1d` or `1w` into days.
fn parse_gen_every(text: &str) -> Result<u32, String> {
    match text.trim() {
        "1d" => Ok(1),
        "1w" => Ok(7),
        other => Err(format!("{other:?} is not a generator period: use 1d or 1w")),
    }
}
