//! Faults that make one users-summary response misbehave.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Map, Value};

use super::http::{Delivery, Response, reason_phrase};

/// A misbehaviour of one users-summary response.
///
/// Faults queued with `MockApi::push_fault` are used once each, in order, by
/// the next users-summary requests that pass the token and account checks.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Responds with this status, an optional `Retry-After` value (seconds
    /// such as `"2"` or an HTTP date) and this body as JSON content.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// Responds 200 with an HTML maintenance page.
    Html200,
    /// Responds 200 with the page's JSON cut in the middle. `Content-Length`
    /// matches the cut body, so only the JSON is broken.
    TruncatedJson,
    /// Responds 200 with `{}`.
    EmptyObject,
    /// Responds 200 with `"result": null` and `"fetched": 0`.
    ResultNull,
    /// Responds with `fetched` one more than the length of `result`.
    FetchedMismatch,
    /// Sends the head and half of the body, then resets the TCP connection.
    ResetMidBody,
    /// Sends the body in 50 small chunks spread evenly over `total`.
    Trickle { total: Duration },
    /// Sends `Content-Encoding: gzip` with the first half of the gzip stream,
    /// whatever the request's `Accept-Encoding`.
    GzipTruncated,
    /// Responds with an empty `result` and the true `count`, even though
    /// `skip` is below the count.
    EmptyPageEarly,
    /// Adds this delta to `count` in this response only (the result is floored at 0).
    CountChange(i64),
    /// Changes the account's user list before serving this request. The
    /// change lasts until the served day changes.
    Mutate(Mutation),
    /// Pads every user on the page with a `notes` property so that the body
    /// is about 10 MiB.
    HugePage,
    /// Gives the first user on the page a `name` of about 1 MiB.
    HugeName,
    /// Waits this long before responding, on top of `MockOptions::latency`.
    Delay(Duration),
}

/// A change to the list of users, as when users are added or removed while a
/// client is paging through the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Inserts `count` new users before position `at`, shifting later users
    /// to higher offsets. `at` beyond the end appends.
    Insert { at: usize, count: usize },
    /// Removes up to `count` users starting at position `at`, shifting later
    /// users to lower offsets.
    Remove { at: usize, count: usize },
}

/// Approximate body size produced by `Fault::HugePage`.
const HUGE_PAGE_BYTES: usize = 10 * 1024 * 1024;
/// Minimum size in bytes of the name produced by `Fault::HugeName`.
const HUGE_NAME_BYTES: usize = 1024 * 1024;

impl Fault {
    /// Builds a fault that responds with `code` and `{"message": <reason phrase>}`.
    pub fn status(code: u16) -> Fault {
        let body = serde_json::json!({ "message": reason_phrase(code) }).to_string();
        Fault::Status {
            code,
            retry_after: None,
            body,
        }
    }

    /// Builds a 429 fault with a `Retry-After` header, in seconds (`"2"`) or
    /// as an HTTP date.
    pub fn too_many_requests(retry_after: impl Into<String>) -> Fault {
        Fault::Status {
            code: 429,
            retry_after: Some(retry_after.into()),
            body: r#"{"message":"Too many requests"}"#.to_string(),
        }
    }

    /// Builds a 401 fault, as a server sends for a token that expired between
    /// two requests.
    pub fn expired_token() -> Fault {
        Fault::Status {
            code: 401,
            retry_after: None,
            body: r#"{"message":"Unauthorized"}"#.to_string(),
        }
    }

    /// Returns `count` copies of the fault, for `MockApi::push_faults`.
    pub fn times(self, count: usize) -> Vec<Fault> {
        vec![self; count]
    }
}

/// Builds the response of a fault that replaces the page entirely, or `None`
/// if the fault needs the page.
pub(crate) fn replacement_response(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::Status {
            code,
            retry_after,
            body,
        } => {
            let mut response = Response::new(
                *code,
                super::http::JSON_CONTENT_TYPE,
                body.clone().into_bytes(),
            );
            if let Some(value) = retry_after {
                response.set_header("Retry-After", value);
            }
            Some(response)
        }
        Fault::Html200 => Some(Response::new(
            200,
            "text/html; charset=utf-8",
            maintenance_page(),
        )),
        Fault::EmptyObject => Some(Response::json(200, &Value::Object(Map::new()))),
        _ => None,
    }
}

fn maintenance_page() -> Vec<u8> {
    concat!(
        "<!DOCTYPE html>\n<html lang=\"da\"><head><meta charset=\"utf-8\">",
        "<title>Vedligeholdelse</title></head>\n<body><h1>Vi er snart tilbage</h1>",
        "<p>The service is down for maintenance. Please try again later.</p></body></html>\n"
    )
    .as_bytes()
    .to_vec()
}

/// Changes the page object `{"count", "fetched", "result"}` according to the fault.
pub(crate) fn shape_page(fault: &Fault, page: &mut Map<String, Value>) {
    match fault {
        Fault::ResultNull => {
            page.insert("fetched".into(), Value::from(0));
            page.insert("result".into(), Value::Null);
        }
        Fault::FetchedMismatch => {
            let length = result_len(page);
            page.insert("fetched".into(), Value::from(length + 1));
        }
        Fault::EmptyPageEarly => {
            page.insert("fetched".into(), Value::from(0));
            page.insert("result".into(), Value::Array(Vec::new()));
        }
        Fault::CountChange(delta) => {
            let count = page.get("count").and_then(Value::as_i64).unwrap_or(0);
            page.insert("count".into(), Value::from((count + delta).max(0)));
        }
        Fault::HugePage => pad_page(page),
        Fault::HugeName => lengthen_first_name(page),
        _ => {}
    }
}

fn result_len(page: &Map<String, Value>) -> usize {
    page.get("result")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn pad_page(page: &mut Map<String, Value>) {
    let rows = result_len(page);
    let per_row = HUGE_PAGE_BYTES / rows.max(1);
    let padding = Value::String(repeat_to_length("Bemærkning om brugeren. ", per_row));
    match page.get_mut("result").and_then(Value::as_array_mut) {
        Some(result) if !result.is_empty() => {
            for row in result.iter_mut().filter_map(Value::as_object_mut) {
                row.insert("notes".into(), padding.clone());
            }
        }
        _ => {
            page.insert("notes".into(), padding);
        }
    }
}

fn lengthen_first_name(page: &mut Map<String, Value>) {
    let first_user = page
        .get_mut("result")
        .and_then(Value::as_array_mut)
        .and_then(|result| result.first_mut())
        .and_then(|row| row.get_mut("user"))
        .and_then(Value::as_object_mut);
    if let Some(user) = first_user {
        let name = repeat_to_length("Åse Østergaard-Þórsdóttir ", HUGE_NAME_BYTES);
        user.insert("name".into(), Value::String(name));
    }
}

/// Repeats `unit` until the text is at least `length` bytes long.
fn repeat_to_length(unit: &str, length: usize) -> String {
    unit.repeat(length.div_ceil(unit.len()).max(1))
}

/// Applies the faults that act on the serialised body and its delivery.
pub(crate) fn shape_bytes(fault: &Fault, response: &mut Response) {
    match fault {
        Fault::TruncatedJson => {
            let mut cut = response.body.len() / 2;
            while cut > 0 && std::str::from_utf8(&response.body[..cut]).is_err() {
                cut -= 1;
            }
            response.body.truncate(cut);
        }
        Fault::GzipTruncated => {
            let mut compressed = gzip(&response.body);
            compressed.truncate(compressed.len() / 2);
            response.body = compressed;
            response.set_header("Content-Encoding", "gzip");
        }
        Fault::ResetMidBody => response.delivery = Delivery::ResetAfter(response.body.len() / 2),
        Fault::Trickle { total } => response.delivery = Delivery::Trickle(*total),
        _ => {}
    }
}

/// Compresses bytes into a gzip stream.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page() -> Map<String, Value> {
        let value =
            json!({"count": 5, "fetched": 2, "result": [{"user": {"name": "A"}}, {"user": {}}]});
        value.as_object().unwrap().clone()
    }

    #[test]
    fn times_repeats_fault() {
        assert_eq!(Fault::Html200.times(3), vec![Fault::Html200; 3]);
    }

    #[test]
    fn count_change_floors_at_zero() {
        let mut shaped = page();
        shape_page(&Fault::CountChange(-9), &mut shaped);
        assert_eq!(shaped["count"], json!(0));
    }

    #[test]
    fn huge_page_reaches_ten_megabytes() {
        let mut shaped = page();
        shape_page(&Fault::HugePage, &mut shaped);
        let size = serde_json::to_vec(&shaped).unwrap().len();
        assert!(size >= HUGE_PAGE_BYTES, "{size}");
        assert!(size < HUGE_PAGE_BYTES + HUGE_PAGE_BYTES / 10, "{size}");
    }

    #[test]
    fn truncated_json_fails_to_parse() {
        let body = serde_json::to_vec(&json!({"name": "Ærø", "list": [1, 2, 3, 4]})).unwrap();
        let mut response = Response::new(200, "application/json", body);
        shape_bytes(&Fault::TruncatedJson, &mut response);
        assert!(std::str::from_utf8(&response.body).is_ok());
        assert!(serde_json::from_slice::<Value>(&response.body).is_err());
    }
}
