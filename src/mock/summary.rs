//! The users-summary endpoint: paging, account state and fault handling.

use serde_json::{Map, Value};

use super::auth::{TokenCheck, check_bearer, unauthorized};
use super::drift::{add_extra_page_properties, add_extra_properties, apply_type_drift, entry_draw};
use super::faults::{Fault, Mutation, gzip, replacement_response, shape_bytes, shape_page};
use super::http::{Request, Response};
use super::org::Organisation;
use super::rng::Purpose;
use super::server::{DayEpoch, MAX_RECORDED, MockOptions, Shared, lock};
use super::sim::{SimUser, Simulation};

/// `take` when the request has none.
const DEFAULT_TAKE: usize = 20;

/// One position in the served user list.
enum Row {
    /// Index into the simulation's current users.
    Simulated(usize),
    /// A user added by `Mutation::Insert`.
    Inserted(Box<SimUser>),
}

/// The served state of one account: its simulation on the served day and the
/// user list after any mid-fetch mutations.
pub(crate) struct AccountState {
    organisation: Organisation,
    simulation: Simulation,
    rows: Vec<Row>,
    /// The day and `set_day` epoch that `rows` was built for, or `None`
    /// before the first request.
    rows_built: Option<DayEpoch>,
    inserted: u64,
}

impl AccountState {
    pub(crate) fn new(organisation: Organisation) -> AccountState {
        let simulation = organisation.simulation();
        AccountState {
            organisation,
            simulation,
            rows: Vec::new(),
            rows_built: None,
            inserted: 0,
        }
    }

    /// Moves the simulation to the served day and rebuilds the user list,
    /// unless the list was built since the last `set_day`.
    ///
    /// NOTE: this runs on the request's task while the accounts lock is held,
    /// so a large jump in days delays all requests. Advancing 100,000 users by
    /// 365 days took about 5 s in a release build on a 2-core AMD EPYC VM.
    pub(crate) fn prepare(&mut self, served: DayEpoch) {
        if self.rows_built == Some(served) {
            return;
        }
        let day = served.day;
        if self.simulation.day() > day {
            self.simulation = self.organisation.simulation();
        }
        self.simulation.advance_to(day);
        self.rows = (0..self.simulation.users().len())
            .map(Row::Simulated)
            .collect();
        self.rows_built = Some(served);
    }

    fn mutate(&mut self, mutation: Mutation) {
        match mutation {
            Mutation::Insert { at, count } => {
                let at = at.min(self.rows.len());
                let mut added = Vec::with_capacity(count);
                for _ in 0..count {
                    self.inserted += 1;
                    added.push(Row::Inserted(Box::new(
                        self.simulation.make_inserted_user(self.inserted),
                    )));
                }
                self.rows.splice(at..at, added);
            }
            Mutation::Remove { at, count } => {
                let start = at.min(self.rows.len());
                let end = at.saturating_add(count).min(self.rows.len());
                self.rows.drain(start..end);
            }
        }
    }

    fn render(&self, skip: usize, take: usize, options: &MockOptions, day: u32) -> Vec<Value> {
        let seed = self.organisation.config().seed;
        let end = skip.saturating_add(take).min(self.rows.len());
        let rows = self.rows.get(skip..end).unwrap_or(&[]);
        rows.iter()
            .map(|row| {
                let user = match row {
                    Row::Simulated(index) => &self.simulation.users()[*index],
                    Row::Inserted(user) => user,
                };
                let mut entry = user.to_api_json();
                let drift = entry_draw(seed, Purpose::Drift, &entry, day);
                let extra = entry_draw(seed, Purpose::Extra, &entry, day);
                if options.extra_properties {
                    add_extra_properties(&mut entry, extra);
                }
                if options.type_drift {
                    apply_type_drift(&mut entry, drift);
                }
                entry
            })
            .collect()
    }
}

/// Parses `take` and `skip`, which must be non-negative integers when present.
fn parse_paging(request: &Request) -> Result<(usize, usize), Response> {
    let parse = |name: &str, default: usize| match request.query_param(name) {
        None => Ok(default),
        Some(text) => text.parse::<usize>().map_err(|_| {
            let message =
                format!("Invalid value {text:?} for {name}: expected a non-negative integer");
            Response::message(400, &message)
        }),
    };
    Ok((parse("take", DEFAULT_TAKE)?, parse("skip", 0)?))
}

/// Serves `GET /accounts/{account_id}/reports/users-summary`.
pub(crate) async fn handle(shared: &Shared, request: &Request, account_id: &str) -> Response {
    lock(&shared.stats).users_summary_requests += 1;
    if request.method != "GET" {
        return Response::message(405, "Use GET").with_header("Allow", "GET");
    }
    let (take, skip) = match parse_paging(request) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    record_page(shared, take, skip);

    if let Some(rejection) = check_access(shared, request, account_id) {
        return rejection;
    }

    let fault = lock(&shared.faults).pop_front();
    if let Some(Fault::Delay(delay)) = fault {
        tokio::time::sleep(delay).await;
    }
    if let Some(response) = fault.as_ref().and_then(replacement_response) {
        return response;
    }

    let key = account_id.to_ascii_lowercase();
    let page = build_page(shared, &key, take, skip, fault.as_ref());
    encode_page(shared, request, page, fault.as_ref())
}

/// Serialises a page, compresses it when the options and the request allow,
/// and applies the faults that act on the bytes.
fn encode_page(
    shared: &Shared,
    request: &Request,
    page: Map<String, Value>,
    fault: Option<&Fault>,
) -> Response {
    let mut response = Response::json(200, &Value::Object(page));
    let gzip_fault = matches!(fault, Some(Fault::GzipTruncated));
    if shared.options.gzip && request.accepts_gzip() && !gzip_fault {
        response.body = gzip(&response.body);
        response.set_header("Content-Encoding", "gzip");
    }
    if shared.options.gzip {
        response.set_header("Vary", "Accept-Encoding");
    }
    if let Some(fault) = fault {
        shape_bytes(fault, &mut response);
    }
    response
}

fn record_page(shared: &Shared, take: usize, skip: usize) {
    let mut stats = lock(&shared.stats);
    if stats.pages.len() < MAX_RECORDED {
        stats.pages.push((take, skip));
    }
}

/// Returns the 401, 403 or 404 response for a request without access.
fn check_access(shared: &Shared, request: &Request, account_id: &str) -> Option<Response> {
    let check = check_bearer(request, &shared.options.tokens, &lock(&shared.tokens));
    if check != TokenCheck::Valid {
        return Some(unauthorized(check));
    }
    let forbidden = shared
        .options
        .forbidden_accounts
        .iter()
        .any(|id| id.eq_ignore_ascii_case(account_id));
    if forbidden {
        return Some(Response::message(
            403,
            "The API is not activated for this account",
        ));
    }
    if !lock(&shared.accounts).contains_key(&account_id.to_ascii_lowercase()) {
        return Some(Response::message(404, "Account not found"));
    }
    None
}

fn build_page(
    shared: &Shared,
    key: &str,
    take: usize,
    skip: usize,
    fault: Option<&Fault>,
) -> Map<String, Value> {
    let served = shared.day_epoch();
    let day = served.day;
    let options = &shared.options;
    let served_take = options.page_cap.map_or(take, |cap| take.min(cap));
    let skip = if options.ignore_skip { 0 } else { skip };
    let mut accounts = lock(&shared.accounts);
    let account = accounts
        .get_mut(key)
        .expect("check_access confirmed the account exists");
    account.prepare(served);
    if let Some(Fault::Mutate(mutation)) = fault {
        account.mutate(*mutation);
    }
    let (result, count) = match &options.fixture {
        Some(entries) => (fixture_page(entries, skip, served_take), entries.len()),
        None => (
            account.render(skip, served_take, options, day),
            account.rows.len(),
        ),
    };
    let mut page = Map::new();
    page.insert("count".into(), Value::from(count));
    page.insert("fetched".into(), Value::from(result.len()));
    page.insert("result".into(), Value::Array(result));
    if options.extra_properties {
        let date = account.organisation.date_of(day).to_string();
        add_extra_page_properties(&mut page, served_take, &date);
    }
    if let Some(fault) = fault {
        shape_page(fault, &mut page);
    }
    page
}

/// Returns the fixture entries from `skip`, at most `take` of them.
fn fixture_page(entries: &[Value], skip: usize, take: usize) -> Vec<Value> {
    entries.iter().skip(skip).take(take).cloned().collect()
}
