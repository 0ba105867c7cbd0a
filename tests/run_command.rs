//! `cpstat run` and the store lock, through the real binary against the mock
//! API: exit codes for schedulers, a busy store, waiting, and taking over the
//! lock of a killed run.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;
use cpstat::mock::{DEFAULT_TOKEN, Fault, MockApi, MockOptions, Mutation, OrgConfig, Organisation};

const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";
const FORBIDDEN: &str = "0b5f4a8e-7777-4c1e-9d7a-000000000007";

async fn start() -> MockApi {
    let org = Organisation::new(OrgConfig {
        account_id: ACCOUNT.to_string(),
        users: 45,
        ..OrgConfig::default()
    });
    let options = MockOptions {
        forbidden_accounts: vec![FORBIDDEN.to_string()],
        ..MockOptions::default()
    };
    MockApi::start(options, vec![org]).await.unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until a process has written itself into the store's lock file;
/// returns the file's text.
async fn wait_for_holder(store: &Path) -> String {
    let lock = store.join(".cpstat.lock");
    for _ in 0..600 {
        let text = std::fs::read_to_string(&lock).unwrap_or_default();
        if text.contains("pid=") {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no process took the lock {}", lock.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fetches_then_analyzes() {
    let mock = start().await;
    let dir = tempfile::tempdir().unwrap();
    let base = mock.base_url();
    let env = [
        ("CPSTAT_TOKEN", DEFAULT_TOKEN),
        ("CPSTAT_BASE_URL", base.as_str()),
    ];
    let output = cpstat(
        &["run", "--account", ACCOUNT, "--store", "store"],
        &env,
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("fetched 45 users"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("report tables:"),
        "{}",
        stdout(&output)
    );
    let store = dir.path().join("store");
    assert_eq!(parquet_files(&store.join("users_summary")).len(), 1);
    assert!(store.join("reports/latest/user_risk.parquet").is_file());
}

/// One `cpstat run` against a misbehaving account, and what it must end with.
struct RunCase {
    name: &'static str,
    account: &'static str,
    token: &'static str,
    faults: Vec<Fault>,
    flags: Vec<&'static str>,
    code: i32,
    /// Text expected in stdout or stderr.
    text: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exit_codes_per_outcome() {
    let mock = start().await;
    let base = mock.base_url();
    let insert = Fault::Mutate(Mutation::Insert { at: 0, count: 1 });
    let case = |name, account, token, faults, flags, code, text| RunCase {
        name,
        account,
        token,
        faults,
        flags,
        code,
        text,
    };
    let cases = [
        case(
            "unknown account",
            "0b5f4a8e-9999-4c1e-9d7a-000000000009",
            DEFAULT_TOKEN,
            vec![],
            vec![],
            2,
            "HTTP 404",
        ),
        case(
            "wrong token",
            ACCOUNT,
            "wrong-token",
            vec![],
            vec![],
            3,
            "HTTP 401",
        ),
        case(
            "forbidden",
            FORBIDDEN,
            DEFAULT_TOKEN,
            vec![],
            vec![],
            3,
            "HTTP 403",
        ),
        case(
            "server down",
            ACCOUNT,
            DEFAULT_TOKEN,
            Fault::status(503).times(2),
            vec!["--max-attempts", "2"],
            4,
            "HTTP 503",
        ),
        case(
            "not JSON",
            ACCOUNT,
            DEFAULT_TOKEN,
            Fault::Html200.times(2),
            vec!["--max-attempts", "2"],
            5,
            "not JSON",
        ),
        case(
            "partial",
            ACCOUNT,
            DEFAULT_TOKEN,
            insert.times(40),
            vec!["--max-rounds", "1", "--allow-partial"],
            6,
            "PARTIAL",
        ),
    ];
    for RunCase {
        name: case,
        account,
        token,
        faults,
        flags,
        code,
        text,
    } in cases
    {
        mock.clear_faults();
        mock.push_faults(faults);
        let dir = tempfile::tempdir().unwrap();
        let env = [("CPSTAT_TOKEN", token), ("CPSTAT_BASE_URL", base.as_str())];
        let mut args = vec![
            "run",
            "--account",
            account,
            "--store",
            "store",
            "--page-size",
            "10",
        ];
        args.extend(flags);
        let output = cpstat(&args, &env, dir.path()).await;
        let all = format!("{}{}", stdout(&output), stderr(&output));
        assert_eq!(output.status.code(), Some(code), "{case}: {all}");
        assert!(all.contains(text), "{case}: {all}");
        let analyzed = dir.path().join("store/reports/latest").exists();
        assert_eq!(
            analyzed,
            code == 6,
            "{case}: the analysis runs only after a fetch"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_continues_past_failed_account() {
    let mock = start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), DEFAULT_TOKEN).unwrap();
    let config = format!(
        "store = \"store\"\nbase_url = \"{}\"\n\n\
         [[accounts]]\nname = \"denied\"\nid = \"{FORBIDDEN}\"\ntoken_file = \"token\"\n\n\
         [[accounts]]\nname = \"nordlys\"\nid = \"{ACCOUNT}\"\ntoken_file = \"token\"\n",
        mock.base_url()
    );
    std::fs::write(dir.path().join("cpstat.toml"), config).unwrap();
    let output = cpstat(&["run"], &[], dir.path()).await;
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    assert!(stderr(&output).contains("HTTP 403"), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("fetched 45 users"),
        "{}",
        stdout(&output)
    );
    assert!(dir.path().join("store/reports/latest").is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_busy_then_stale_takeover() {
    let mock = start().await;
    // The first page hangs long enough for every other command to find the store busy.
    mock.push_fault(Fault::Delay(Duration::from_secs(60)));
    let dir = tempfile::tempdir().unwrap();
    let base = mock.base_url();
    let env = [
        ("CPSTAT_TOKEN", DEFAULT_TOKEN),
        ("CPSTAT_BASE_URL", base.as_str()),
    ];
    let fetch = [
        "fetch",
        "--account",
        ACCOUNT,
        "--store",
        "store",
        "--read-timeout",
        "120",
    ];
    let mut holder = cpstat_command(&fetch, &env, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = dir.path().join("store");
    let recorded = wait_for_holder(&store).await;
    assert!(
        recorded.contains(&format!("pid={}", holder.id())),
        "{recorded}"
    );

    let busy_commands: [&[&str]; 4] = [
        &[
            "fetch",
            "--account",
            ACCOUNT,
            "--store",
            "store",
            "--lock-timeout",
            "0",
        ],
        &["analyze", "--store", "store", "--lock-timeout", "1"],
        &[
            "run",
            "--account",
            ACCOUNT,
            "--store",
            "store",
            "--lock-timeout",
            "0",
        ],
        &[
            "forget",
            "--email",
            "a@example.dk",
            "--store",
            "store",
            "--lock-timeout",
            "0",
        ],
    ];
    for args in busy_commands {
        let output = cpstat(args, &env, dir.path()).await;
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(7), "{args:?}: {message}");
        assert!(
            message.contains(&format!("process {}", holder.id())),
            "{message}"
        );
        assert!(message.contains("cpstat fetch, started 20"), "{message}");
        assert!(message.contains("--lock-timeout"), "{message}");
    }

    holder.kill().unwrap();
    holder.wait().unwrap();
    let output = cpstat(
        &["-v", "fetch", "--account", ACCOUNT, "--store", "store"],
        &env,
        dir.path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let expected = format!("took over the stale store lock of process {}", holder.id());
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    assert_eq!(
        parquet_files(&store).len(),
        1,
        "only the last fetch wrote a snapshot"
    );
    let released = std::fs::read_to_string(store.join(".cpstat.lock")).unwrap();
    assert_eq!(released, "", "a finished run clears its record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_run_proceeds_after_release() {
    let mock = start().await;
    mock.push_fault(Fault::Delay(Duration::from_secs(2)));
    let dir = tempfile::tempdir().unwrap();
    let base = mock.base_url();
    let env = [
        ("CPSTAT_TOKEN", DEFAULT_TOKEN),
        ("CPSTAT_BASE_URL", base.as_str()),
    ];
    let first = [
        "fetch",
        "--account",
        ACCOUNT,
        "--store",
        "store",
        "--snapshot-at",
        "2026-11-30T06:00:00Z",
    ];
    let holder = cpstat_command(&first, &env, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_holder(&dir.path().join("store")).await;
    let second = [
        "-v",
        "fetch",
        "--account",
        ACCOUNT,
        "--store",
        "store",
        "--snapshot-at",
        "2026-11-30T07:00:00Z",
        "--lock-timeout",
        "120",
    ];
    let waiting = cpstat(&second, &env, dir.path()).await;
    let first_output = tokio::task::spawn_blocking(move || holder.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        first_output.status.code(),
        Some(0),
        "{}",
        stderr(&first_output)
    );
    assert_eq!(waiting.status.code(), Some(0), "{}", stderr(&waiting));
    assert!(
        stderr(&waiting).contains("waiting for the store lock"),
        "{}",
        stderr(&waiting)
    );
    assert_eq!(parquet_files(&dir.path().join("store")).len(), 2);
}
