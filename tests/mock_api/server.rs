//! The mock API over real loopback HTTP: paging, tokens, access errors and options.

use super::common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{
    ACCOUNT, client, fetch_all, get, organisation, page, page_url, raw_connection, raw_get,
    read_raw_response, send_raw, start, summary_path,
};
use cpstat::mock::{DEFAULT_TOKEN, MockApi, MockOptions, OrgConfig, Organisation};
use serde_json::Value;

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn pages_follow_take_and_skip() {
    let mock = start(MockOptions::default(), 57).await;
    let first = page(&mock, 25, 0).await.json();
    let second = page(&mock, 25, 25).await.json();
    let last = page(&mock, 25, 50).await.json();
    assert_eq!(first["count"], 57);
    assert_eq!(first["fetched"], 25);
    assert_eq!(second["fetched"], 25);
    assert_eq!(last["fetched"], 7);
    assert_eq!(last["result"].as_array().unwrap().len(), 7);
    let expected = organisation(57, 7).users_at(0);
    assert_eq!(first["result"].as_array().unwrap()[..], expected[..25]);
    assert_eq!(second["result"].as_array().unwrap()[..], expected[25..50]);
    assert_eq!(mock.pages_requested(), vec![(25, 0), (25, 25), (25, 50)]);
    assert_eq!(mock.users_summary_requests(), 3);
}

#[tokio::test]
async fn take_defaults_to_twenty() {
    let mock = start(MockOptions::default(), 30).await;
    let fetched = get(
        &client(),
        &mock.users_summary_url(ACCOUNT),
        Some(DEFAULT_TOKEN),
    )
    .await;
    assert_eq!(fetched.json()["fetched"], 20);
    assert_eq!(mock.pages_requested(), vec![(20, 0)]);
}

#[tokio::test]
async fn page_cap_limits_page_size() {
    let options = MockOptions {
        page_cap: Some(10),
        ..MockOptions::default()
    };
    let mock = start(options, 45).await;
    let first = page(&mock, 100, 0).await.json();
    assert_eq!(first["fetched"], 10);
    assert_eq!(first["count"], 45);
    let all = fetch_all(&mock, 100).await;
    assert_eq!(all, organisation(45, 7).users_at(0));
}

#[tokio::test]
async fn skip_past_end_gives_empty_page() {
    let mock = start(MockOptions::default(), 12).await;
    let beyond = page(&mock, 10, 500).await.json();
    assert_eq!(beyond["count"], 12);
    assert_eq!(beyond["fetched"], 0);
    assert_eq!(beyond["result"], Value::Array(Vec::new()));
}

#[tokio::test]
async fn invalid_take_gets_400() {
    let mock = start(MockOptions::default(), 5).await;
    let url = format!("{}?take=-1", mock.users_summary_url(ACCOUNT));
    let fetched = get(&client(), &url, Some(DEFAULT_TOKEN)).await;
    assert_eq!(fetched.status, 400);
    assert!(fetched.json()["message"].as_str().unwrap().contains("take"));
}

#[tokio::test]
async fn served_day_follows_set_day() {
    let mock = start(MockOptions::default(), 300).await;
    mock.set_day(120);
    assert_eq!(mock.day(), 120);
    let served = fetch_all(&mock, 100).await;
    assert_eq!(served, organisation(300, 7).users_at(120));
    mock.set_day(3);
    let earlier = fetch_all(&mock, 100).await;
    assert_eq!(earlier, organisation(300, 7).users_at(3));
}

#[tokio::test]
async fn control_endpoint_sets_day_and_reports_stats() {
    let mock = start(MockOptions::default(), 10).await;
    let client = client();
    let set = client
        .post(format!("{}/_mock/day?value=42", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(mock.day(), 42);
    let invalid = client
        .post(format!("{}/_mock/day?value=x", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    page(&mock, 5, 0).await;
    page(&mock, 5, 5).await;
    let stats = json_of(
        client
            .get(format!("{}/_mock/stats", mock.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stats["day"], 42);
    assert_eq!(stats["usersSummaryRequests"], 2);
    assert_eq!(stats["pages"][1], serde_json::json!({"take": 5, "skip": 5}));
}

#[tokio::test]
async fn token_grant_issues_working_token() {
    let mock = start(MockOptions::default(), 8).await;
    let options = mock.options().clone();
    let form = [
        ("grant_type", "password"),
        ("client_id", options.client_id.as_str()),
        ("username", options.username.as_str()),
        ("password", options.password.as_str()),
    ];
    let response = client()
        .post(mock.auth_url())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "{token}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);

    let fetched = get(&client(), &page_url(&mock, 5, 0), Some(token)).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.authorization_values(), vec![format!("Bearer {token}")]);
}

#[tokio::test]
async fn wrong_password_gets_invalid_grant() {
    let mock = start(MockOptions::default(), 3).await;
    let options = mock.options().clone();
    let form = [
        ("grant_type", "password"),
        ("client_id", options.client_id.as_str()),
        ("username", options.username.as_str()),
        ("password", "Hemmeligt kodeord aeoa & co=1"),
    ];
    let response = client()
        .post(mock.auth_url())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = json_of(response).await;
    assert_eq!(body["error"], "invalid_grant");
    let json_body = client()
        .post(mock.auth_url())
        .header("Content-Type", "application/json")
        .body(r#"{"grant_type":"password"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400);
}

async fn issue_token(mock: &MockApi) -> String {
    let options = mock.options().clone();
    let form = [
        ("grant_type", "password"),
        ("client_id", options.client_id.as_str()),
        ("username", options.username.as_str()),
        ("password", options.password.as_str()),
    ];
    let body = json_of(
        client()
            .post(mock.auth_url())
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn issued_token_expires_after_ttl() {
    let options = MockOptions {
        token_ttl: Duration::from_millis(300),
        ..MockOptions::default()
    };
    let mock = start(options, 3).await;
    let token = issue_token(&mock).await;
    assert_eq!(
        get(&client(), &page_url(&mock, 5, 0), Some(&token))
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = get(&client(), &page_url(&mock, 5, 0), Some(&token)).await;
    assert_eq!(expired.status, 401);
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    let fresh = issue_token(&mock).await;
    mock.expire_issued_tokens();
    assert_eq!(
        get(&client(), &page_url(&mock, 5, 0), Some(&fresh))
            .await
            .status,
        401
    );
    assert_eq!(
        get(&client(), &page_url(&mock, 5, 0), Some(DEFAULT_TOKEN))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bad_tokens_get_401() {
    let mock = start(MockOptions::default(), 3).await;
    let url = page_url(&mock, 5, 0);
    let client = client();
    let missing = get(&client, &url, None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.json(),
        serde_json::json!({"message": "Unauthorized"})
    );
    assert_eq!(get(&client, &url, Some("wrong-token")).await.status, 401);
    let basic = client
        .get(&url)
        .header("Authorization", format!("Basic {DEFAULT_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    for scheme in ["bearer", "Bearer", "BEARER"] {
        let response = client
            .get(&url)
            .header("Authorization", format!("{scheme} {DEFAULT_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "scheme {scheme}");
    }
}

#[tokio::test]
async fn account_errors_get_403_and_404() {
    let forbidden = "0b4d6f7e-1111-4222-8333-944455556666";
    let options = MockOptions {
        forbidden_accounts: vec![forbidden.to_string()],
        ..MockOptions::default()
    };
    let mock = start(options, 3).await;
    let client = client();
    let fetch = |url: String| {
        let client = client.clone();
        async move { get(&client, &url, Some(DEFAULT_TOKEN)).await }
    };

    let denied = fetch(mock.users_summary_url(forbidden)).await;
    assert_eq!(denied.status, 403);
    let message = denied.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("not activated"), "{message}");

    let unknown = fetch(mock.users_summary_url("9d7e0a1b-0000-4000-8000-000000000000")).await;
    assert_eq!(unknown.status, 404);

    let other = fetch(format!(
        "{}/accounts/{ACCOUNT}/reports/other",
        mock.base_url()
    ))
    .await;
    assert_eq!(other.status, 404);
    assert_eq!(
        other.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    let upper = fetch(mock.users_summary_url(&ACCOUNT.to_uppercase())).await;
    assert_eq!(upper.status, 200, "account ids match case-insensitively");
}

#[tokio::test]
async fn several_accounts_serve_own_users() {
    let second_id = "11111111-2222-4333-8444-555555555555";
    let second = Organisation::new(OrgConfig {
        seed: 99,
        users: 15,
        account_id: second_id.to_string(),
        company_name: "Ærø Fiskeri ApS".to_string(),
        ..OrgConfig::default()
    });
    let mock = MockApi::start(MockOptions::default(), vec![organisation(9, 7), second])
        .await
        .unwrap();
    let fetched = get(
        &client(),
        &format!("{}?take=50", mock.users_summary_url(second_id)),
        Some(DEFAULT_TOKEN),
    )
    .await;
    let body = fetched.json();
    assert_eq!(body["count"], 15);
    assert_eq!(
        body["result"][0]["user"]["meta"]["companyName"],
        "Ærø Fiskeri ApS"
    );
    assert!(
        body["result"][0]["user"]["email"]
            .as_str()
            .unwrap()
            .ends_with("@aerofiskeri.dk")
    );
    assert_eq!(page(&mock, 50, 0).await.json()["count"], 9);
}

#[tokio::test]
async fn nordic_letters_survive_exactly() {
    let mock = start(MockOptions::default(), 1500).await;
    let served = fetch_all(&mock, 500).await;
    let expected = organisation(1500, 7).users_at(0);
    assert_eq!(served, expected);
    let names: Vec<&str> = served
        .iter()
        .map(|e| e["user"]["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.contains('ø')));
    assert!(names.iter().any(|n| n.contains("Þ")));
    let combining = |c: char| ('\u{0300}'..='\u{036F}').contains(&c);
    assert!(
        names.iter().any(|n| n.contains(combining)),
        "an NFD name is served as NFD"
    );
    let raw = page(&mock, 1500, 0).await.body;
    let text = String::from_utf8(raw).unwrap();
    assert!(text.contains("København"), "UTF-8 is sent unescaped");
}

#[tokio::test]
async fn big_ids_are_exact_numbers() {
    let config = OrgConfig {
        users: 5,
        big_ids: true,
        account_id: ACCOUNT.to_string(),
        ..OrgConfig::default()
    };
    let mock = MockApi::start(MockOptions::default(), vec![Organisation::new(config)])
        .await
        .unwrap();
    let text = String::from_utf8(page(&mock, 5, 0).await.body).unwrap();
    assert!(
        text.contains(r#""id":9007199254740993,"#),
        "{}",
        &text[..300]
    );
    assert!(text.contains(r#""id":9007199254740995,"#));
}

#[tokio::test]
async fn gzip_applies_when_accepted() {
    let options = MockOptions {
        gzip: true,
        ..MockOptions::default()
    };
    let mock = start(options, 200).await;
    let plain_client = reqwest::Client::builder().no_gzip().build().unwrap();
    let url = page_url(&mock, 200, 0);
    let response = plain_client
        .get(&url)
        .header("Authorization", format!("Bearer {DEFAULT_TOKEN}"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["fetched"], 200);

    let identity = get(&plain_client, &url, Some(DEFAULT_TOKEN)).await;
    assert!(identity.header("content-encoding").is_none());
    assert_eq!(
        serde_json::from_slice::<Value>(&identity.body).unwrap(),
        body
    );
    let decoded = get(&client(), &url, Some(DEFAULT_TOKEN)).await;
    assert_eq!(decoded.json(), body);
}

#[tokio::test]
async fn keep_alive_serves_several_requests() {
    let mock = start(MockOptions::default(), 30).await;
    let mut connection = raw_connection(&mock).await;
    for skip in [0, 10, 20] {
        send_raw(&mut connection, &raw_get(&summary_path(10, skip), "")).await;
        let response = read_raw_response(&mut connection).await.unwrap();
        assert_eq!(response.status_line, "HTTP/1.1 200 OK");
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["fetched"], 10);
    }
    send_raw(
        &mut connection,
        &raw_get(&summary_path(1, 0), "Connection: close\r\n"),
    )
    .await;
    let response = read_raw_response(&mut connection).await.unwrap();
    assert_eq!(response.header("connection"), Some("close"));
    let mut rest = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut connection, &mut rest)
        .await
        .unwrap();
    assert_eq!(read, 0, "server closes after Connection: close");
}

#[tokio::test]
async fn malformed_request_gets_400() {
    let mock = start(MockOptions::default(), 3).await;
    let mut connection = raw_connection(&mock).await;
    send_raw(&mut connection, "NONSENSE\r\n\r\n").await;
    let response = read_raw_response(&mut connection).await.unwrap();
    assert!(
        response.status_line.starts_with("HTTP/1.1 400"),
        "{}",
        response.status_line
    );
}

#[tokio::test]
async fn type_drift_keeps_same_numbers() {
    let options = MockOptions {
        type_drift: true,
        ..MockOptions::default()
    };
    let mock = start(options, 400).await;
    mock.set_day(60);
    let served = fetch_all(&mock, 100).await;
    let expected = organisation(400, 7).users_at(60);
    assert_eq!(served.len(), expected.len());
    let number = |value: &Value| match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    let (mut floats, mut strings, mut int_actions) = (0, 0, 0);
    for (drifted, clean) in served.iter().zip(&expected) {
        assert_eq!(drifted["user"]["id"], clean["user"]["id"]);
        for key in [
            "enrolledCourses",
            "overdueCourses",
            "emailsSent",
            "linksClicked",
            "dataSubmitted",
        ] {
            assert_eq!(number(&drifted[key]), number(&clean[key]), "{key}");
            floats += usize::from(drifted[key].is_f64());
            strings += usize::from(drifted[key].is_string());
        }
        int_actions += usize::from(drifted["lastAction"].is_i64());
    }
    assert!(
        floats > 0 && strings > 0 && int_actions > 0,
        "{floats} {strings} {int_actions}"
    );
    assert_eq!(
        fetch_all(&mock, 100).await,
        served,
        "drift is the same on every request"
    );
}

#[tokio::test]
async fn extra_properties_appear_everywhere() {
    let options = MockOptions {
        extra_properties: true,
        ..MockOptions::default()
    };
    let mock = start(options, 20).await;
    let body = page(&mock, 5, 0).await.json();
    assert!(body.get("pageSize").is_some());
    let entry = &body["result"][0];
    assert!(entry.get("riskLevel").is_some());
    assert!(entry["user"].get("phoneNumber").is_some());
    assert!(entry["user"]["meta"].get("costCenter").is_some());
    let clean = &organisation(20, 7).users_at(0)[0];
    assert_eq!(entry["emailsSent"], clean["emailsSent"]);
    assert_eq!(entry["user"]["email"], clean["user"]["email"]);
}

#[tokio::test]
async fn ignore_skip_repeats_first_page() {
    let options = MockOptions {
        ignore_skip: true,
        ..MockOptions::default()
    };
    let mock = start(options, 30).await;
    let first = page(&mock, 10, 0).await.json();
    let second = page(&mock, 10, 10).await.json();
    assert_eq!(first["result"], second["result"]);
    assert_eq!(mock.pages_requested(), vec![(10, 0), (10, 10)]);
}

#[tokio::test]
async fn latency_delays_each_response() {
    let options = MockOptions {
        latency: Duration::from_millis(150),
        ..MockOptions::default()
    };
    let mock = start(options, 3).await;
    let started = Instant::now();
    page(&mock, 3, 0).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn secrets_only_in_authorization_header() {
    let mock = start(MockOptions::default(), 5).await;
    let token = issue_token(&mock).await;
    get(&client(), &page_url(&mock, 5, 0), Some(&token)).await;
    let stats = mock.stats();
    assert_eq!(stats.requests.len(), 2);
    let password = &mock.options().password;
    for request in &stats.requests {
        assert!(!request.target.contains(&token), "{}", request.target);
        assert!(
            !request.target.contains(password.as_str()),
            "{}",
            request.target
        );
        for (name, value) in &request.headers {
            if !name.eq_ignore_ascii_case("authorization") {
                assert!(!value.contains(&token), "{name} carries the token");
            }
        }
    }
    mock.reset_stats();
    assert_eq!(mock.stats(), Default::default());
}

#[tokio::test]
async fn non_loopback_bind_is_rejected() {
    let options = MockOptions {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..MockOptions::default()
    };
    let error = MockApi::start(options, Vec::new())
        .await
        .err()
        .expect("start fails");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn shutdown_closes_listener() {
    let mock = start(MockOptions::default(), 3).await;
    let address = mock.local_addr();
    mock.shutdown().await;
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
