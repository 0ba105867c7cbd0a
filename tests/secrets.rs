//! Credentials through the real binary. A canary token and password must
//! appear in no output or file under any fault. Redirects must not carry
//! the token to another origin, proxies get it only inside TLS, and a bad
//! CA file is rejected with a clear message.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use common::*;
use cpstat::mock::{Fault, MockApi, MockOptions, Mutation, OrgConfig, Organisation};

const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";
const CANARY: &str = "eyJhbGciOiJIUzI1NiJ9.Q0FOQVJZLXNlY3JldHM.c2lnbmF0dXJlLWNhbmFyeTI";
const CANARY_PASSWORD: &str = "kanariefugl-Ærø-7f3a9c";

fn org(big_ids: bool) -> Organisation {
    Organisation::new(OrgConfig {
        account_id: ACCOUNT.to_string(),
        users: 45,
        big_ids,
        ..OrgConfig::default()
    })
}

async fn start(options: MockOptions, big_ids: bool) -> MockApi {
    MockApi::start(options, vec![org(big_ids)]).await.unwrap()
}

fn canary_options() -> MockOptions {
    MockOptions {
        tokens: vec![CANARY.to_string()],
        ..MockOptions::default()
    }
}

/// Runs the binary off the async runtime, so the mock keeps serving.
async fn cpstat(args: Vec<String>, env: Vec<(String, String)>, cwd: PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_cpstat(&args, &env, &cwd)
    })
    .await
    .unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Reads every file below `dir`, without following symbolic links.
fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for path in std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
        {
            if path.is_symlink() {
                continue;
            } else if path.is_dir() {
                stack.push(path);
            } else {
                found.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

fn assert_no_canary(outputs: &[(String, Output)], dir: &Path, secret_files: &[PathBuf]) {
    for (case, output) in outputs {
        for secret in [CANARY, CANARY_PASSWORD] {
            assert!(
                !contains(&output.stdout, secret),
                "{case}: secret in stdout"
            );
            assert!(
                !contains(&output.stderr, secret),
                "{case}: secret in stderr"
            );
        }
    }
    let files = all_files(dir);
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "parquet"))
    );
    for (path, bytes) in files {
        if secret_files.contains(&path) {
            continue;
        }
        for secret in [CANARY, CANARY_PASSWORD] {
            assert!(!contains(&bytes, secret), "secret in {}", path.display());
        }
    }
}

/// Lists the faults a page request can meet, each used for one fetch.
fn every_fault() -> Vec<(&'static str, Vec<Fault>)> {
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
    let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(1));
    let skip = || Fault::Delay(Duration::ZERO);
    vec![
        ("429 seconds", vec![Fault::too_many_requests("1")]),
        ("429 past date", vec![Fault::too_many_requests(past)]),
        ("429 future date", vec![Fault::too_many_requests(future)]),
        ("429 malformed", vec![Fault::too_many_requests("soon")]),
        ("429 above cap", vec![Fault::too_many_requests("100000")]),
        (
            "5xx burst",
            [500, 502, 503, 504].map(Fault::status).to_vec(),
        ),
        ("5xx every attempt", Fault::status(503).times(6)),
        ("reset mid-body", vec![Fault::ResetMidBody]),
        (
            "trickle",
            vec![Fault::Trickle {
                total: Duration::from_millis(500),
            }],
        ),
        ("truncated gzip", vec![Fault::GzipTruncated]),
        ("truncated JSON", vec![Fault::TruncatedJson]),
        ("HTML", vec![Fault::Html200]),
        ("empty object", vec![Fault::EmptyObject]),
        ("null result", vec![Fault::ResultNull]),
        ("fetched mismatch", vec![Fault::FetchedMismatch]),
        ("count change", vec![skip(), Fault::CountChange(2)]),
        ("empty page early", vec![skip(), Fault::EmptyPageEarly]),
        (
            "users inserted",
            vec![skip(), Fault::Mutate(Mutation::Insert { at: 0, count: 2 })],
        ),
        ("huge page", vec![Fault::HugePage]),
        ("huge name", vec![Fault::HugeName]),
        ("401 halfway", vec![skip(), Fault::expired_token()]),
        ("403", vec![Fault::status(403)]),
        ("400", vec![Fault::status(400)]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_absent_under_every_fault() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{CANARY}\n")).unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, CANARY_PASSWORD).unwrap();
    let mut outputs = Vec::new();

    let mock = start(canary_options(), false).await;
    let env = vec![
        (
            "CPSTAT_TOKEN_FILE".to_string(),
            token_file.display().to_string(),
        ),
        ("CPSTAT_BASE_URL".to_string(), mock.base_url()),
        ("RUST_BACKTRACE".to_string(), "1".to_string()),
    ];
    for (index, (case, faults)) in every_fault().into_iter().enumerate() {
        mock.clear_faults();
        mock.push_faults(faults);
        let store = format!("store-{index}");
        let args = strings(&[
            "-vv",
            "run",
            "--account",
            ACCOUNT,
            "--store",
            &store,
            "--page-size",
            "20",
        ]);
        outputs.push((
            case.to_string(),
            cpstat(args, env.clone(), dir.path().to_path_buf()).await,
        ));
    }
    assert!(
        mock.authorization_values()
            .iter()
            .all(|v| v == &format!("bearer {CANARY}")),
        "the canary was the token sent"
    );

    // Server-wide switches need their own mocks.
    let switches = [
        (
            "ignores skip",
            MockOptions {
                ignore_skip: true,
                ..canary_options()
            },
            false,
        ),
        (
            "drift, gzip, extras, big ids",
            MockOptions {
                type_drift: true,
                gzip: true,
                extra_properties: true,
                ..canary_options()
            },
            true,
        ),
    ];
    for (index, (case, options, big_ids)) in switches.into_iter().enumerate() {
        let switched = start(options, big_ids).await;
        let mut env = env.clone();
        env[1].1 = switched.base_url();
        let store = format!("switch-{index}");
        let args = strings(&[
            "-vv",
            "fetch",
            "--account",
            ACCOUNT,
            "--store",
            &store,
            "--page-size",
            "20",
        ]);
        outputs.push((
            case.to_string(),
            cpstat(args, env, dir.path().to_path_buf()).await,
        ));
    }

    let grant = start(
        MockOptions {
            tokens: vec![],
            password: CANARY_PASSWORD.to_string(),
            ..MockOptions::default()
        },
        false,
    )
    .await;
    grant.push_faults([Fault::Delay(Duration::ZERO), Fault::expired_token()]);
    let grant_env = vec![
        ("CPSTAT_BASE_URL".to_string(), grant.base_url()),
        ("CPSTAT_AUTH_URL".to_string(), grant.auth_url()),
        ("CPSTAT_CLIENT_ID".to_string(), "cpstat".to_string()),
        (
            "CPSTAT_USERNAME".to_string(),
            grant.options().username.clone(),
        ),
        (
            "CPSTAT_PASSWORD_FILE".to_string(),
            password_file.display().to_string(),
        ),
    ];
    let args = strings(&[
        "-vv",
        "run",
        "--account",
        ACCOUNT,
        "--store",
        "grant",
        "--page-size",
        "20",
    ]);
    let granted = cpstat(args, grant_env.clone(), dir.path().to_path_buf()).await;
    assert_eq!(
        granted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    assert_eq!(grant.token_requests(), 2, "the password was sent twice");
    outputs.push(("password grant".to_string(), granted));
    let mut wrong_password = grant_env;
    wrong_password.push((
        "CPSTAT_PASSWORD".to_string(),
        format!("{CANARY_PASSWORD}-wrong"),
    ));
    let args = strings(&["-vv", "fetch", "--account", ACCOUNT, "--store", "grant"]);
    outputs.push((
        "wrong password".to_string(),
        cpstat(args, wrong_password, dir.path().to_path_buf()).await,
    ));

    let demo_env = vec![
        ("CPSTAT_TOKEN".to_string(), CANARY.to_string()),
        ("CPSTAT_PASSWORD".to_string(), CANARY_PASSWORD.to_string()),
    ];
    let args = strings(&[
        "-vv",
        "demo",
        "--out",
        "demo",
        "--users",
        "60",
        "--snapshots",
        "2",
    ]);
    let demo = cpstat(args, demo_env, dir.path().to_path_buf()).await;
    assert_eq!(
        demo.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    outputs.push(("demo".to_string(), demo));

    let codes: Vec<Option<i32>> = outputs.iter().map(|(_, o)| o.status.code()).collect();
    assert!(
        codes.contains(&Some(0)) && codes.iter().any(|c| *c != Some(0)),
        "{codes:?}"
    );
    assert_no_canary(&outputs, dir.path(), &[token_file, password_file]);
}

/// A loopback TCP server that records what each connection sends up to the
/// end of its head (or a pause) and replies with a fixed response.
struct RecordingServer {
    port: u16,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RecordingServer {
    fn start(response: String) -> RecordingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (Arc::clone(&received), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            // At most 50 connections, so a runaway client cannot keep it alive.
            for stream in listener.incoming().take(50) {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let request = read_head(&mut stream);
                log.lock().unwrap().push(request);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        RecordingServer {
            port,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_head(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    while !contains(&bytes, "\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn header_lines(request: &str) -> Vec<String> {
    request.lines().map(str::to_ascii_lowercase).collect()
}

async fn fetch_once(base_url: &str, env: &[(&str, &str)], dir: &Path) -> Output {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("CPSTAT_TOKEN".to_string(), CANARY.to_string()));
    env.push(("CPSTAT_BASE_URL".to_string(), base_url.to_string()));
    let args = strings(&[
        "-vv",
        "fetch",
        "--account",
        ACCOUNT,
        "--store",
        "store",
        "--max-attempts",
        "1",
    ]);
    cpstat(args, env, dir.to_path_buf()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_other_port_drops_token() {
    let target = RecordingServer::start(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .into(),
    );
    let location = format!(
        "http://127.0.0.1:{}/accounts/{ACCOUNT}/reports/users-summary?take=100&skip=0",
        target.port
    );
    let redirecting = RecordingServer::start(format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", redirecting.port);
    let output = fetch_once(&base, &[], dir.path()).await;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("not following a redirect to another origin"),
        "{stderr}"
    );
    assert!(stderr.contains("unexpected HTTP 302"), "{stderr}");
    let sent = redirecting.received();
    assert_eq!(sent.len(), 1);
    assert!(header_lines(&sent[0]).contains(&format!(
        "authorization: bearer {}",
        CANARY.to_ascii_lowercase()
    )));
    assert_eq!(
        target.received(),
        Vec::<String>::new(),
        "the other origin got no request"
    );
    assert!(parquet_files(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_sees_only_connect() {
    let proxy =
        RecordingServer::start("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into());
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let dir = tempfile::tempdir().unwrap();
    // `.invalid` never resolves, and the proxy refuses the tunnel, so no
    // traffic leaves the machine.
    let output = fetch_once(
        "https://api.cpstat.invalid",
        &[("HTTPS_PROXY", &proxy_url)],
        dir.path(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(4), "{stderr}");
    let sent = proxy.received();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("CONNECT api.cpstat.invalid:443 HTTP/1.1\r\n"),
        "{sent:?}"
    );
    assert!(
        !sent[0].to_ascii_lowercase().contains("authorization"),
        "{sent:?}"
    );
    assert!(
        !sent[0].contains(CANARY),
        "the token travels only inside the tunnel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_bypasses_https_proxy() {
    let proxy =
        RecordingServer::start("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into());
    let direct = RecordingServer::start(String::new());
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let base = format!("https://127.0.0.1:{}", direct.port);
    let env = [
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("NO_PROXY", "127.0.0.1"),
    ];
    let output = fetch_once(&base, &env, dir.path()).await;

    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        proxy.received(),
        Vec::<String>::new(),
        "NO_PROXY skips the proxy"
    );
    assert_eq!(
        direct.received().len(),
        1,
        "the TLS handshake went straight to the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_http_never_proxied() {
    let mock = start(canary_options(), false).await;
    let proxy =
        RecordingServer::start("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into());
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("HTTP_PROXY", proxy_url.as_str()),
        ("ALL_PROXY", proxy_url.as_str()),
    ];
    let output = fetch_once(&mock.base_url(), &env, dir.path()).await;

    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        proxy.received(),
        Vec::<String>::new(),
        "the plain-http token never reaches a proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ca_certificate_explained() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "garbage.pem",
            "not a certificate\n",
            "contains no certificate",
        ),
        ("empty.pem", "", "contains no certificate"),
        (
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB!!not*base64\n-----END CERTIFICATE-----\n",
            "invalid certificate encoding",
        ),
        (
            "not-der.pem",
            "-----BEGIN CERTIFICATE-----\nQUJDREVGRw==\n-----END CERTIFICATE-----\n",
            "check the CA certificate file",
        ),
    ];
    for (name, content, reason) in cases {
        std::fs::write(dir.path().join(name), content).unwrap();
        let args = strings(&[
            "fetch",
            "--account",
            ACCOUNT,
            "--store",
            "store",
            "--ca-cert",
            name,
        ]);
        let env = vec![("CPSTAT_TOKEN".to_string(), CANARY.to_string())];
        let output = cpstat(args, env, dir.path().to_path_buf()).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert!(stderr.contains(reason), "{name}: {stderr}");
    }
}
