//! Helpers shared by the loopback HTTP tests.
#![allow(dead_code)]

use std::time::Duration;

use cpstat::mock::{DEFAULT_TOKEN, MockApi, MockOptions, OrgConfig, Organisation};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const ACCOUNT: &str = "3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55";

pub fn organisation(users: usize, seed: u64) -> Organisation {
    Organisation::new(OrgConfig {
        seed,
        users,
        account_id: ACCOUNT.to_string(),
        ..OrgConfig::default()
    })
}

pub async fn start(options: MockOptions, users: usize) -> MockApi {
    MockApi::start(options, vec![organisation(users, 7)])
        .await
        .expect("mock API starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// A response read in full: status, headers and body bytes.
pub struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Fetched {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

pub async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> Fetched {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("request succeeds");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body reads").to_vec();
    Fetched {
        status,
        headers,
        body,
    }
}

pub fn page_url(mock: &MockApi, take: usize, skip: usize) -> String {
    format!(
        "{}?take={take}&skip={skip}",
        mock.users_summary_url(ACCOUNT)
    )
}

pub async fn page(mock: &MockApi, take: usize, skip: usize) -> Fetched {
    get(&client(), &page_url(mock, take, skip), Some(DEFAULT_TOKEN)).await
}

/// Fetches every page in order, advancing `skip` by the number of users
/// received, and returns all entries.
pub async fn fetch_all(mock: &MockApi, take: usize) -> Vec<Value> {
    let client = client();
    let mut entries = Vec::new();
    loop {
        let fetched = get(
            &client,
            &page_url(mock, take, entries.len()),
            Some(DEFAULT_TOKEN),
        )
        .await;
        assert_eq!(fetched.status, 200);
        let page = fetched.json();
        let result = page["result"]
            .as_array()
            .expect("result is an array")
            .clone();
        let count = page["count"].as_u64().expect("count is a number") as usize;
        if result.is_empty() {
            return entries;
        }
        entries.extend(result);
        if entries.len() >= count {
            return entries;
        }
    }
}

/// A response read from a raw connection.
pub struct RawResponse {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response with a `Content-Length` body from a raw connection.
pub async fn read_raw_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<RawResponse> {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header has a colon");
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.parse().expect("Content-Length is a number"))
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(RawResponse {
        status_line: status_line.trim_end().to_string(),
        headers,
        body,
    })
}

pub async fn raw_connection(mock: &MockApi) -> BufReader<TcpStream> {
    BufReader::new(
        TcpStream::connect(mock.local_addr())
            .await
            .expect("connects to the mock"),
    )
}

pub async fn send_raw(reader: &mut BufReader<TcpStream>, request: &str) {
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .expect("request is sent");
}

pub fn raw_get(path: &str, extra_headers: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {DEFAULT_TOKEN}\r\n{extra_headers}\r\n"
    )
}

pub fn summary_path(take: usize, skip: usize) -> String {
    format!("/accounts/{ACCOUNT}/reports/users-summary?take={take}&skip={skip}")
}
