//! Safe CSV bytes, `--json`, `fetch --all-accounts`, the demo's page,
//! completions and the manual page.

use std::path::Path;
use std::process::Output;

use cpstat::mock::{MockApi, MockOptions, OrgConfig, Organisation};

use crate::common::parquet_files;
use crate::fixture::*;

const FORBIDDEN: &str = "0b5f4a8e-7777-4c1e-9d7a-000000000007";
const TOKEN: &str = "mock-token-for-all-accounts";

#[test]
fn csv_cells_guarded_and_quoted() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let set = analyze(dir.path(), "reports", &["--format", "csv"], &[]);
    let bytes = std::fs::read(set.join("user_risk.csv")).unwrap();
    assert_eq!(bytes[..3], [0xEF, 0xBB, 0xBF], "UTF-8 byte-order mark");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(
        text.starts_with("account_id,snapshot_at,user_id,"),
        "{}",
        &text[..40]
    );
    assert_eq!(
        text.matches("\r\n").count(),
        6,
        "header and five records end in CRLF"
    );
    assert!(
        text.contains(",\"Bjørn \"\"Bøss\"\" <b>, Ærø\","),
        "RFC 4180 quoting"
    );
    assert!(text.contains(",'=1+2,"), "formula guarded");
    assert!(text.contains(",'+45@nordlys.dk,"));
    assert!(text.contains(",'@Indkøb,"));
    assert!(text.contains(",'-Åse Ågren,"));
    assert!(
        text.contains(",Søren Østergaard-Ærø,"),
        "Nordic letters exact"
    );

    let plain = analyze(dir.path(), "plain", &["--format", "csv", "--no-bom"], &[]);
    let bytes = std::fs::read(plain.join("user_risk.csv")).unwrap();
    assert!(bytes.starts_with(b"account_id,"), "no mark with --no-bom");
}

#[test]
fn json_flag_prints_documents() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let listing: serde_json::Value = serde_json::from_str(&cpstat_ok(
        &["--json", "snapshots", "--store", "store"],
        &[],
        dir.path(),
    ))
    .unwrap();
    let files = listing.as_array().expect("an array of snapshots");
    assert_eq!(files.len(), 3);
    let users: Vec<i64> = files.iter().map(|f| f["users"].as_i64().unwrap()).collect();
    assert_eq!(users, [3, 3, 2]);
    assert_eq!(files[0]["snapshot_at"], "2025-03-03T06:00:00Z");
    assert_eq!(files[0]["account_id"], ACCOUNT_A);

    let text = cpstat_ok(
        &["--json", "analyze", "--store", "store", "--out", "reports"],
        &[],
        dir.path(),
    );
    let summary: serde_json::Value = serde_json::from_str(&text).expect("stdout is only JSON");
    assert!(summary["report_dir"].as_str().unwrap().contains("reports"));
    assert_eq!(summary["accounts"][0]["account_id"], ACCOUNT_A);
    assert_eq!(summary["accounts"][0]["users"], 3);
    assert_eq!(
        summary["accounts"][1]["click_rate"].as_f64(),
        Some(0.3),
        "B: 6 of 20"
    );

    let rows: serde_json::Value = serde_json::from_str(&cpstat_ok(
        &[
            "--json",
            "query",
            "SELECT value, users FROM group_rates WHERE dimension = 'department' ORDER BY value",
            "--store",
            "store",
            "--reports",
            "reports",
        ],
        &[],
        dir.path(),
    ))
    .unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            {"value": "@Indkøb", "users": 1},
            {"value": "Salg", "users": 2},
            {"value": "Økonomi", "users": 2}
        ])
    );
    let report: serde_json::Value = serde_json::from_str(&cpstat_ok(
        &[
            "--json",
            "report",
            "--store",
            "store",
            "--reports",
            "reports",
        ],
        &[],
        dir.path(),
    ))
    .unwrap();
    assert!(Path::new(report["report"].as_str().unwrap()).is_file());
}

async fn run_async(args: Vec<String>, cwd: std::path::PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cpstat(&args, &[], &cwd)
    })
    .await
    .unwrap()
}

fn config(base_url: &str, accounts: &[(&str, &str)]) -> String {
    let mut text = format!("base_url = \"{base_url}\"\n");
    for (name, id) in accounts {
        text.push_str(&format!(
            "\n[[accounts]]\nname = \"{name}\"\nid = \"{id}\"\ndisplay_name = \"{name} A/S\"\ntoken_file = \"token\"\n"
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_all_accounts_survives_failure() {
    let organisation = |id: &str, users: usize| {
        Organisation::new(OrgConfig {
            account_id: id.to_string(),
            users,
            ..OrgConfig::default()
        })
    };
    let options = MockOptions {
        tokens: vec![TOKEN.to_string()],
        forbidden_accounts: vec![FORBIDDEN.to_string()],
        ..MockOptions::default()
    };
    let mock = MockApi::start(
        options,
        vec![organisation(ACCOUNT_A, 12), organisation(ACCOUNT_B, 7)],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let accounts = [
        ("acme", ACCOUNT_A),
        ("closed", FORBIDDEN),
        ("fjord", ACCOUNT_B),
    ];
    std::fs::write(
        dir.path().join("cpstat.toml"),
        config(&mock.base_url(), &accounts),
    )
    .unwrap();

    let args = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["fetch", "--all-accounts", "--store"];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect()
    };
    let output = run_async(
        args(&["text", "--parallel-accounts", "3"]),
        dir.path().to_path_buf(),
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("ok       {ACCOUNT_A} (acme A/S): 12 users")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ok       {ACCOUNT_B} (fjord A/S): 7 users")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("FAILED   {FORBIDDEN} (closed A/S): ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("fetched 2 of 3 accounts; 1 failed"),
        "{stdout}"
    );
    assert_eq!(parquet_files(&dir.path().join("text")).len(), 2);

    let mut json_args = vec!["--json".to_string()];
    json_args.extend(args(&["json"]));
    let output = run_async(json_args, dir.path().to_path_buf()).await;
    assert_eq!(output.status.code(), Some(6));
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is only JSON");
    let statuses: Vec<&str> = result["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["complete", "failed", "complete"],
        "in config order"
    );
    assert_eq!(result["accounts"][1]["exit_code"], 3, "access denied");
    assert_eq!(result["accounts"][2]["users"], 7);
    assert_eq!(
        (result["written"].as_u64(), result["failed"].as_u64()),
        (Some(2), Some(1))
    );

    std::fs::write(
        dir.path().join("cpstat.toml"),
        config(&mock.base_url(), &[("closed", FORBIDDEN)]),
    )
    .unwrap();
    let output = run_async(args(&["none"]), dir.path().to_path_buf()).await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "every account failed: its own code"
    );
    assert!(parquet_files(&dir.path().join("none")).is_empty());
}

#[test]
fn demo_writes_and_prints_page() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = cpstat_ok(
        &["demo", "--out", "demo", "--users", "30", "--snapshots", "2"],
        &[],
        dir.path(),
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HTML report:"))
        .unwrap_or_else(|| panic!("no page path in {stdout}"));
    let html = std::fs::read_to_string(line.trim()).unwrap();
    assert!(
        html.contains("Nordlys Energi A/S"),
        "accounts named by company"
    );
    assert_eq!(html.matches("<section class=\"account\"").count(), 2);
    assert!(
        Path::new(line.trim())
            .with_file_name("report.xlsx")
            .is_file(),
        "the demo writes every format"
    );
}

#[test]
fn completions_and_man_generated() {
    let dir = tempfile::tempdir().unwrap();
    let bash = cpstat_ok(&["completions", "bash"], &[], dir.path());
    assert!(bash.contains("_cpstat()"), "a bash function");
    assert!(bash.contains("--all-accounts"));
    assert!(bash.contains("--pseudonymize"));
    let zsh = cpstat_ok(&["completions", "zsh"], &[], dir.path());
    assert!(zsh.starts_with("#compdef cpstat"));
    let man = cpstat_ok(&["man"], &[], dir.path());
    assert!(
        man.contains(".TH cpstat 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("report"), "subcommands listed");
    assert!(man.contains("completions"));
}
