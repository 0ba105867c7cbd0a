//! Each queued fault changes the next users-summary response as documented.

use super::common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{
    ACCOUNT, client, get, organisation, page, page_url, raw_connection, raw_get, read_raw_response,
    send_raw, start, summary_path,
};
use cpstat::mock::{DEFAULT_TOKEN, Fault, MockOptions, Mutation};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn faults_apply_once_in_order() {
    let mock = start(MockOptions::default(), 10).await;
    mock.push_faults(Fault::status(503).times(2));
    mock.push_fault(Fault::status(502));
    assert_eq!(mock.pending_faults(), 3);
    let statuses = [
        page(&mock, 5, 0).await.status,
        page(&mock, 5, 0).await.status,
        page(&mock, 5, 0).await.status,
        page(&mock, 5, 0).await.status,
    ];
    assert_eq!(statuses, [503, 503, 502, 200]);
    assert_eq!(mock.pending_faults(), 0);
}

#[tokio::test]
async fn unauthorized_request_leaves_fault_queued() {
    let mock = start(MockOptions::default(), 10).await;
    mock.push_fault(Fault::status(500));
    assert_eq!(
        get(&client(), &page_url(&mock, 5, 0), None).await.status,
        401
    );
    assert_eq!(mock.pending_faults(), 1);
    mock.clear_faults();
    assert_eq!(page(&mock, 5, 0).await.status, 200);
}

#[tokio::test]
async fn retry_after_is_sent_verbatim() {
    let mock = start(MockOptions::default(), 10).await;
    let date = "Wed, 21 Oct 2026 07:28:00 GMT";
    mock.push_fault(Fault::too_many_requests("2"));
    mock.push_fault(Fault::too_many_requests(date));
    let seconds = page(&mock, 5, 0).await;
    assert_eq!(seconds.status, 429);
    assert_eq!(seconds.header("retry-after"), Some("2"));
    let dated = page(&mock, 5, 0).await;
    assert_eq!(dated.header("retry-after"), Some(date));
    assert!(httpdate::parse_http_date(dated.header("retry-after").unwrap()).is_ok());
}

#[tokio::test]
async fn expired_token_fault_gets_401() {
    let mock = start(MockOptions::default(), 10).await;
    mock.push_fault(Fault::expired_token());
    let fetched = page(&mock, 5, 0).await;
    assert_eq!(fetched.status, 401);
    assert_eq!(fetched.json(), json!({"message": "Unauthorized"}));
}

#[tokio::test]
async fn html_fault_sends_html() {
    let mock = start(MockOptions::default(), 10).await;
    mock.push_fault(Fault::Html200);
    let fetched = page(&mock, 5, 0).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(fetched.body.starts_with(b"<!DOCTYPE html>"));
}

#[tokio::test]
async fn truncated_json_has_matching_length() {
    let mock = start(MockOptions::default(), 10).await;
    mock.push_fault(Fault::TruncatedJson);
    let fetched = page(&mock, 10, 0).await;
    assert_eq!(fetched.status, 200);
    let length: usize = fetched.header("content-length").unwrap().parse().unwrap();
    assert_eq!(length, fetched.body.len());
    assert!(serde_json::from_slice::<Value>(&fetched.body).is_err());
    let full = page(&mock, 10, 0).await.body;
    assert!(full.starts_with(&fetched.body));
}

#[tokio::test]
async fn body_shape_faults_change_json() {
    let mock = start(MockOptions::default(), 30).await;
    mock.push_faults([
        Fault::EmptyObject,
        Fault::ResultNull,
        Fault::FetchedMismatch,
        Fault::EmptyPageEarly,
        Fault::CountChange(5),
        Fault::CountChange(-4),
    ]);

    assert_eq!(page(&mock, 10, 0).await.json(), json!({}));
    assert_eq!(
        page(&mock, 10, 0).await.json(),
        json!({"count": 30, "fetched": 0, "result": null})
    );
    let mismatch = page(&mock, 10, 0).await.json();
    assert_eq!(
        (
            mismatch["fetched"].as_u64(),
            mismatch["result"].as_array().unwrap().len()
        ),
        (Some(11), 10)
    );

    let early = page(&mock, 10, 10).await.json();
    assert_eq!(
        (early["count"].as_u64(), early["fetched"].as_u64()),
        (Some(30), Some(0))
    );
    assert_eq!(early["result"], json!([]));
    assert_eq!(page(&mock, 10, 0).await.json()["count"], 35);
    assert_eq!(page(&mock, 10, 0).await.json()["count"], 26);
    assert_eq!(page(&mock, 10, 0).await.json()["count"], 30);
}

#[tokio::test]
async fn reset_mid_body_resets_connection() {
    let mock = start(MockOptions::default(), 50).await;
    mock.push_fault(Fault::ResetMidBody);
    let mut connection = raw_connection(&mock).await;
    send_raw(&mut connection, &raw_get(&summary_path(50, 0), "")).await;
    let mut received = Vec::new();
    let error = connection
        .read_to_end(&mut received)
        .await
        .expect_err("the read fails");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let head_end = text.find("\r\n\r\n").unwrap() + 4;
    let declared: usize = text
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        received.len() - head_end < declared,
        "only part of the body arrives"
    );

    mock.push_fault(Fault::ResetMidBody);
    let result = client()
        .get(page_url(&mock, 50, 0))
        .bearer_auth(DEFAULT_TOKEN)
        .send()
        .await;
    let failed = match result {
        Ok(response) => response.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(failed, "reqwest reports the reset");
}

#[tokio::test]
async fn trickle_spreads_body_over_time() {
    let mock = start(MockOptions::default(), 40).await;
    mock.push_fault(Fault::Trickle {
        total: Duration::from_millis(500),
    });
    let started = Instant::now();
    let fetched = page(&mock, 40, 0).await;
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fetched.json()["fetched"], 40);
}

#[tokio::test]
async fn gzip_truncated_fails_to_decode() {
    let mock = start(MockOptions::default(), 40).await;
    mock.push_fault(Fault::GzipTruncated);
    let plain = reqwest::Client::builder().no_gzip().build().unwrap();
    let fetched = get(&plain, &page_url(&mock, 40, 0), Some(DEFAULT_TOKEN)).await;
    assert_eq!(fetched.header("content-encoding"), Some("gzip"));
    assert_eq!(&fetched.body[..2], &[0x1F, 0x8B]);
    let mut text = String::new();
    assert!(
        flate2::read::GzDecoder::new(&fetched.body[..])
            .read_to_string(&mut text)
            .is_err()
    );

    mock.push_fault(Fault::GzipTruncated);
    let response = client()
        .get(page_url(&mock, 40, 0))
        .bearer_auth(DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        response.bytes().await.is_err(),
        "reqwest fails to decode the body"
    );
}

#[tokio::test]
async fn insert_mutation_shifts_later_pages() {
    let mock = start(MockOptions::default(), 30).await;
    let before = organisation(30, 7).users_at(0);
    let first = page(&mock, 10, 0).await.json();
    assert_eq!(first["result"].as_array().unwrap()[..], before[..10]);

    mock.push_fault(Fault::Mutate(Mutation::Insert { at: 0, count: 3 }));
    let second = page(&mock, 10, 10).await.json();
    assert_eq!(second["count"], 33);
    let result = second["result"].as_array().unwrap();
    assert_eq!(
        result[..3],
        before[7..10],
        "the old users 7 to 9 moved to offsets 10 to 12"
    );

    let fresh = page(&mock, 3, 0).await.json();
    for entry in fresh["result"].as_array().unwrap() {
        assert!(
            !before
                .iter()
                .any(|old| old["user"]["id"] == entry["user"]["id"])
        );
        assert!(entry["user"]["email"].as_str().unwrap().contains(".n"));
    }
    assert_eq!(
        page(&mock, 1, 0).await.json()["count"],
        33,
        "the insertion persists"
    );

    mock.set_day(0);
    assert_eq!(
        page(&mock, 1, 0).await.json()["count"],
        30,
        "set_day drops the insertion"
    );
}

#[tokio::test]
async fn remove_mutation_shifts_back() {
    let mock = start(MockOptions::default(), 30).await;
    let before = organisation(30, 7).users_at(0);
    mock.push_fault(Fault::Mutate(Mutation::Remove { at: 5, count: 4 }));
    let second = page(&mock, 10, 10).await.json();
    assert_eq!(second["count"], 26);
    assert_eq!(second["result"].as_array().unwrap()[..], before[14..24]);
}

#[tokio::test]
async fn huge_faults_make_large_bodies() {
    let mock = start(MockOptions::default(), 20).await;
    mock.push_fault(Fault::HugePage);
    let huge = page(&mock, 20, 0).await;
    assert!(
        huge.body.len() >= 10 * 1024 * 1024,
        "{} bytes",
        huge.body.len()
    );
    assert_eq!(huge.json()["fetched"], 20);
    mock.push_fault(Fault::HugeName);
    let named = page(&mock, 20, 0).await.json();
    let name = named["result"][0]["user"]["name"].as_str().unwrap();
    assert!(name.len() >= 1024 * 1024);
    assert!(name.starts_with("Åse Østergaard"));
}

#[tokio::test]
async fn delay_fault_holds_response() {
    let mock = start(MockOptions::default(), 5).await;
    mock.push_fault(Fault::Delay(Duration::from_millis(300)));
    let timed_out = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .get(page_url(&mock, 5, 0))
        .bearer_auth(DEFAULT_TOKEN)
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    let url = format!("{}?take=5", mock.users_summary_url(ACCOUNT));
    assert_eq!(get(&client(), &url, Some(DEFAULT_TOKEN)).await.status, 200);
}

#[tokio::test]
async fn status_fault_body_is_verbatim() {
    let mock = start(MockOptions::default(), 5).await;
    mock.push_fault(Fault::Status {
        code: 504,
        retry_after: None,
        body: "upstream timed out".to_string(),
    });
    let mut connection = raw_connection(&mock).await;
    send_raw(&mut connection, &raw_get(&summary_path(5, 0), "")).await;
    let response = read_raw_response(&mut connection).await.unwrap();
    assert_eq!(response.status_line, "HTTP/1.1 504 Gateway Timeout");
    assert_eq!(response.body, b"upstream timed out");
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}
