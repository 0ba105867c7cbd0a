//! Request routing, the token endpoint and the `/_mock/` control endpoints.

use serde_json::{Value, json};

use super::auth::{Credentials, Grant, token_response, validate_grant};
use super::http::{Request, Response};
use super::server::{MAX_RECORDED, RecordedRequest, Shared, TOKEN_PATH, lock};
use super::summary;

/// Prefix of the control endpoints, which need no token.
const CONTROL_PREFIX: &str = "/_mock/";

/// Routes a request and builds its response.
pub(crate) async fn handle(shared: &Shared, request: &Request) -> Response {
    record(shared, request);
    if let Some(endpoint) = request.path.strip_prefix(CONTROL_PREFIX) {
        return control(shared, endpoint, request);
    }
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    if request.path == TOKEN_PATH {
        return token(shared, request);
    }
    if let Some(account_id) = users_summary_account(&request.path) {
        return summary::handle(shared, request, account_id).await;
    }
    Response::message(404, "Not found")
}

fn record(shared: &Shared, request: &Request) {
    let mut stats = lock(&shared.stats);
    if let Some(value) = request.header("authorization") {
        if stats.authorization_values.len() < MAX_RECORDED {
            stats.authorization_values.push(value.to_string());
        }
    }
    if stats.requests.len() >= MAX_RECORDED {
        return;
    }
    stats.requests.push(RecordedRequest {
        method: request.method.clone(),
        target: request.target.clone(),
        headers: request.headers.clone(),
    });
}

/// Returns the account id of a `/accounts/{id}/reports/users-summary` path.
fn users_summary_account(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/accounts/")?;
    let account_id = rest.strip_suffix("/reports/users-summary")?;
    (!account_id.is_empty() && !account_id.contains('/')).then_some(account_id)
}

fn token(shared: &Shared, request: &Request) -> Response {
    lock(&shared.stats).token_requests += 1;
    let options = &shared.options;
    let expected = Credentials {
        client_id: &options.client_id,
        username: &options.username,
        password: &options.password,
    };
    match validate_grant(request, &expected) {
        Grant::Reject(response) => response,
        Grant::Issue { username } => {
            let token = lock(&shared.tokens).issue(&username, options.token_ttl, shared.seed);
            token_response(&token, options.token_ttl)
        }
    }
}

/// Serves `GET|POST /_mock/day` and `GET /_mock/stats`.
fn control(shared: &Shared, endpoint: &str, request: &Request) -> Response {
    match (request.method.as_str(), endpoint) {
        ("GET", "day") => Response::json(200, &json!({ "day": shared.day() })),
        ("POST", "day") => set_day(shared, request),
        ("GET", "stats") => Response::json(200, &stats_json(shared)),
        (_, "day") => Response::message(405, "Use GET or POST").with_header("Allow", "GET, POST"),
        (_, "stats") => Response::message(405, "Use GET").with_header("Allow", "GET"),
        _ => Response::message(404, "Not found"),
    }
}

fn set_day(shared: &Shared, request: &Request) -> Response {
    let value = request.query_param("value").unwrap_or("");
    match value.parse::<u32>() {
        Ok(day) => {
            shared.set_day(day);
            Response::json(200, &json!({ "day": day }))
        }
        Err(_) => {
            let message =
                format!("Invalid day {value:?}: pass ?value=N with N a non-negative integer");
            Response::message(400, &message)
        }
    }
}

fn stats_json(shared: &Shared) -> Value {
    let pending_faults = lock(&shared.faults).len();
    let stats = lock(&shared.stats);
    let pages: Vec<Value> = stats
        .pages
        .iter()
        .map(|(take, skip)| json!({"take": take, "skip": skip}))
        .collect();
    json!({
        "day": shared.day(),
        "usersSummaryRequests": stats.users_summary_requests,
        "tokenRequests": stats.token_requests,
        "requests": stats.requests.len(),
        "pendingFaults": pending_faults,
        "pages": pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_path_yields_account() {
        let path = "/accounts/3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55/reports/users-summary";
        assert_eq!(
            users_summary_account(path),
            Some("3f2c8a4e-5b1d-4e7a-9c6f-2d8b7e1a0c55")
        );
        assert_eq!(
            users_summary_account("/accounts//reports/users-summary"),
            None
        );
        assert_eq!(
            users_summary_account("/accounts/a/b/reports/users-summary"),
            None
        );
        assert_eq!(
            users_summary_account("/accounts/a/reports/users-summary/"),
            None
        );
    }
}
