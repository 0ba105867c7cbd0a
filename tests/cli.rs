//! The real `cpstat` binary against the mock API: exit codes, messages,
//! help text, and that secrets never reach any output or file.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use cpstat::mock::{Fault, MockApi, MockOptions, OrgConfig, Organisation};

const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";
const CANARY: &str = "eyJhbGciOiJIUzI1NiJ9.Q0FOQVJZLXRva2VuLTdmM2E.c2lnbmF0dXJlLWNhbmFyeQ";

async fn start(options: MockOptions) -> MockApi {
    let org = Organisation::new(OrgConfig {
        account_id: ACCOUNT.to_string(),
        users: 45,
        ..OrgConfig::default()
    });
    MockApi::start(options, vec![org]).await.unwrap()
}

fn canary_options() -> MockOptions {
    MockOptions {
        tokens: vec![CANARY.to_string()],
        forbidden_accounts: vec!["0b5f4a8e-7777-4c1e-9d7a-000000000007".to_string()],
        ..MockOptions::default()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every byte under `dir`, file by file, to search for secrets.
fn all_file_bytes(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                found.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_writes_snapshot_and_summary() {
    let mock = start(canary_options()).await;
    let dir = tempfile::tempdir().unwrap();
    let base = mock.base_url();
    let env = [("CPSTAT_TOKEN", CANARY), ("CPSTAT_BASE_URL", base.as_str())];
    let output = cpstat(
        &[
            "fetch",
            "--account",
            ACCOUNT,
            "--store",
            "store",
            "--page-size",
            "10",
        ],
        &env,
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(summary.contains("fetched 45 users"), "{summary}");
    assert!(summary.contains("in 5 pages"), "{summary}");
    let files = parquet_files(&dir.path().join("store"));
    assert_eq!(files.len(), 1);
    assert_eq!(read_rows(&files[0]).len(), 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_errors_exit_codes() {
    let mock = start(canary_options()).await;
    let base = mock.base_url();
    let cases: [(&str, &str, i32, &str); 3] = [
        (ACCOUNT, "wrong-token", 3, "HTTP 401"),
        (
            "0b5f4a8e-7777-4c1e-9d7a-000000000007",
            CANARY,
            3,
            "The API is not activated for this account",
        ),
        (
            "0b5f4a8e-9999-4c1e-9d7a-000000000009",
            CANARY,
            2,
            "was not found (HTTP 404)",
        ),
    ];
    for (account, token, code, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        let env = [("CPSTAT_TOKEN", token), ("CPSTAT_BASE_URL", base.as_str())];
        let output = cpstat(
            &["fetch", "--account", account, "--store", "store"],
            &env,
            dir.path(),
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(code),
            "{account}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{account}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("no snapshot was written"),
            "{}",
            stderr(&output)
        );
        assert!(
            parquet_files(dir.path()).is_empty(),
            "{account}: nothing written"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_absent_from_every_output() {
    let mock = start(canary_options()).await;
    let base = mock.base_url();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{CANARY}\n")).unwrap();
    let token_path = token_file.to_str().unwrap().to_string();
    mock.push_faults([
        Fault::too_many_requests("1"),
        Fault::status(503),
        Fault::Html200,
        Fault::ResetMidBody,
    ]);
    let env = [
        ("CPSTAT_TOKEN_FILE", token_path.as_str()),
        ("CPSTAT_BASE_URL", base.as_str()),
    ];
    let mut outputs = vec![
        cpstat(
            &[
                "-vv",
                "fetch",
                "--account",
                ACCOUNT,
                "--store",
                "store",
                "--page-size",
                "10",
            ],
            &env,
            dir.path(),
        )
        .await,
    ];
    assert_eq!(outputs[0].status.code(), Some(0), "{}", stderr(&outputs[0]));
    assert!(
        stderr(&outputs[0]).contains("retrying page"),
        "retries are logged at -v and above"
    );

    mock.push_fault(Fault::expired_token());
    outputs.push(
        cpstat(
            &["-vv", "fetch", "--account", ACCOUNT, "--store", "store2"],
            &env,
            dir.path(),
        )
        .await,
    );
    assert_eq!(outputs[1].status.code(), Some(3));
    outputs.push(
        cpstat(
            &[
                "-vv",
                "fetch",
                "--account",
                "0b5f4a8e-7777-4c1e-9d7a-000000000007",
                "--store",
                "s3",
            ],
            &env,
            dir.path(),
        )
        .await,
    );
    let env_token = [
        ("CPSTAT_TOKEN", CANARY),
        ("CPSTAT_BASE_URL", "http://example.com"),
    ];
    outputs.push(
        cpstat(
            &["-vv", "fetch", "--account", ACCOUNT],
            &env_token,
            dir.path(),
        )
        .await,
    );
    assert_eq!(
        outputs[3].status.code(),
        Some(2),
        "plain http to another host is refused"
    );

    for (index, output) in outputs.iter().enumerate() {
        assert!(
            !contains(&output.stdout, CANARY),
            "run {index}: token in stdout"
        );
        assert!(
            !contains(&output.stderr, CANARY),
            "run {index}: token in stderr"
        );
    }
    for (path, bytes) in all_file_bytes(dir.path()) {
        if path != token_file {
            assert!(!contains(&bytes, CANARY), "token in {}", path.display());
        }
    }
    assert!(
        mock.authorization_values()
            .iter()
            .all(|v| v.ends_with(CANARY)),
        "the token was sent as a bearer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_explained() {
    let dir = tempfile::tempdir().unwrap();
    let output = cpstat(&["fetch", "--account", ACCOUNT], &[], dir.path()).await;
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("no credentials for account"), "{message}");
    assert!(message.contains("CPSTAT_TOKEN_FILE"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_account_id_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let output = cpstat(
        &["fetch", "--account", "../../etc"],
        &[("CPSTAT_TOKEN", "x")],
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid account id \"../../etc\""),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_account_by_name() {
    let mock = start(canary_options()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acme.token"), CANARY).unwrap();
    let config = format!(
        "store = \"data\"\nbase_url = \"{}\"\n\n[[accounts]]\nname = \"acme\"\nid = \"{ACCOUNT}\"\ntoken_file = \"acme.token\"\n",
        mock.base_url()
    );
    std::fs::write(dir.path().join("cpstat.toml"), config).unwrap();
    let output = cpstat(&["fetch", "--account", "acme"], &[], dir.path()).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        parquet_files(&dir.path().join("data")).len(),
        1,
        "the config's store is used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_snapshot_exit_code() {
    let mock = start(canary_options()).await;
    mock.push_faults(Fault::Mutate(cpstat::mock::Mutation::Insert { at: 0, count: 1 }).times(40));
    let dir = tempfile::tempdir().unwrap();
    let base = mock.base_url();
    let env = [("CPSTAT_TOKEN", CANARY), ("CPSTAT_BASE_URL", base.as_str())];
    let args = [
        "fetch",
        "--account",
        ACCOUNT,
        "--store",
        "store",
        "--page-size",
        "10",
        "--max-rounds",
        "2",
    ];
    let output = cpstat(&args, &env, dir.path()).await;
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--allow-partial"),
        "{}",
        stderr(&output)
    );
    assert!(parquet_files(dir.path()).is_empty());

    let mut partial_args = args.to_vec();
    partial_args.push("--allow-partial");
    let output = cpstat(&partial_args, &env, dir.path()).await;
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    assert!(stdout(&output).contains("PARTIAL"), "{}", stdout(&output));
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 1);
    let kv = key_values(&files[0]);
    assert_ne!(kv["cpstat.shortfall"], "0");
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cpstat"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    insta::assert_snapshot!("help", text);
    for command in [
        "fetch",
        "snapshots",
        "analyze",
        "query",
        "report",
        "demo",
        "run",
        "verify",
        "forget",
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cpstat"))
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{command} --help");
        insta::assert_snapshot!(
            format!("help_{command}"),
            String::from_utf8(output.stdout).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_then_query_latest() {
    let dir = tempfile::tempdir().unwrap();
    let demo = cpstat(
        &[
            "demo",
            "--out",
            "demo",
            "--users",
            "120",
            "--snapshots",
            "3",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(demo.status.code(), Some(0), "{}", stderr(&demo));
    let printed = stdout(&demo);
    assert!(printed.contains("Riskiest departments"), "{printed}");
    assert!(
        dir.path()
            .join("demo/store/reports/latest/user_risk.parquet")
            .is_file()
    );

    // Users per account in each account's newest snapshot, counted from the files.
    let mut expected = std::collections::BTreeMap::new();
    for file in parquet_files(&dir.path().join("demo/store/users_summary")) {
        let account = text(&read_rows(&file)[0], "account_id").unwrap();
        expected.insert(account, read_rows(&file).len());
    }
    let sql =
        "SELECT account_id, COUNT(*) AS users FROM latest GROUP BY account_id ORDER BY account_id";
    let output = cpstat(&["query", sql, "--store", "demo/store"], &[], dir.path()).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut lines = stdout(&output)
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(lines.remove(0), "account_id,users");
    let expected_lines: Vec<String> = expected.iter().map(|(a, n)| format!("{a},{n}")).collect();
    assert_eq!(lines, expected_lines);

    let report_sql = "SELECT user_id, risk_rank FROM user_risk WHERE risk_rank = 1";
    let output = cpstat(
        &[
            "query",
            report_sql,
            "--store",
            "demo/store",
            "--out",
            "top.parquet",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_rows(&dir.path().join("top.parquet"));
    assert!(
        rows.len() >= 2,
        "one top user per account at least: {}",
        rows.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_invalid_sql_reported() {
    let dir = tempfile::tempdir().unwrap();
    let output = cpstat(
        &["query", "SELECT nothing FROM nowhere", "--store", "empty"],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("invalid SQL in the query"),
        "{}",
        stderr(&output)
    );
    let output = cpstat(&["query", "missing.sql"], &[], dir.path()).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("failed to read SQL file missing.sql"),
        "{}",
        stderr(&output)
    );
}
