//! Tolerant decoding of users-summary pages.
//!
//! The documented types are not always what servers send: integers arrive as
//! floats (`3.0`) or numeric strings (`"3"`), `lastAction` as text or a
//! number, `averageScore` as an int, a float or null, and `groups`, `meta` and
//! `branch` may be null or missing. All of these are accepted. Properties the
//! documentation does not name are kept in [`UserRecord::extra`]. A value that
//! cannot be understood is an error naming the field, the user and the page.

use serde_json::{Map, Value};

use crate::snapshot::record::{COUNTER_FIELDS, Counters, GroupRef, UserRecord};

/// A decoded users-summary response.
#[derive(Debug, Clone)]
pub struct Page {
    /// Users in the account, as the server reported with this page.
    pub count: u64,
    /// The server's `fetched` property, which may disagree with the array.
    pub fetched: u64,
    pub users: Vec<UserRecord>,
}

/// The reason a response body is not a valid page.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("response is not JSON ({reason}); it starts with {preview:?}")]
    NotJson { reason: String, preview: String },
    #[error("response JSON is not a users-summary page: {reason}")]
    Shape { reason: String },
    #[error("invalid value for field `{field}` of user {user_id}: {reason}")]
    Field {
        field: String,
        user_id: String,
        reason: String,
    },
}

const TOP_LEVEL: [&str; 12] = [
    "enrolledCourses",
    "notCompletedCourses",
    "overdueCourses",
    "enrolledMaterials",
    "notCompletedMaterials",
    "phishingCampaigns",
    "emailsSent",
    "linksClicked",
    "dataSubmitted",
    "lastAction",
    "averageScore",
    "user",
];
const USER_KEYS: [&str; 9] = [
    "id",
    "email",
    "created",
    "name",
    "firstName",
    "lastName",
    "meta",
    "branch",
    "groups",
];
const META_KEYS: [&str; 5] = [
    "companyName",
    "manager",
    "managerEmail",
    "department",
    "country",
];

/// Decodes one response body.
pub fn decode_page(body: &[u8]) -> Result<Page, DecodeError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| DecodeError::NotJson {
        reason: e.to_string(),
        preview: preview(body),
    })?;
    let Value::Object(mut top) = value else {
        return Err(shape("the top level is not an object"));
    };
    let count = page_count(&top, "count")?;
    let fetched = page_count(&top, "fetched")?;
    let results = match top.remove("result") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None if count == 0 => Vec::new(),
        Some(Value::Null) => {
            return Err(shape(&format!(
                "`result` is null although count is {count}"
            )));
        }
        None => return Err(shape("`result` is missing")),
        Some(other) => {
            return Err(shape(&format!(
                "`result` is {}, not an array",
                kind(&other)
            )));
        }
    };
    let users = results
        .into_iter()
        .enumerate()
        .map(|(index, item)| decode_user(item, index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        count,
        fetched,
        users,
    })
}

fn page_count(top: &Map<String, Value>, field: &str) -> Result<u64, DecodeError> {
    let value = top
        .get(field)
        .ok_or_else(|| shape(&format!("`{field}` is missing")))?;
    match lenient_int(value) {
        Ok(Some(n)) if n >= 0 => Ok(n as u64),
        _ => Err(shape(&format!(
            "`{field}` is {value}, not a non-negative integer"
        ))),
    }
}

fn shape(reason: &str) -> DecodeError {
    DecodeError::Shape {
        reason: reason.to_string(),
    }
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(80)]);
    text.chars().filter(|c| !c.is_control()).collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes one `result` entry; `index` names it when the id is unreadable.
fn decode_user(item: Value, index: usize) -> Result<UserRecord, DecodeError> {
    let Value::Object(mut top) = item else {
        return Err(field_error(
            "result[]",
            &format!("#{index}"),
            "entry is not an object",
        ));
    };
    let mut user = match top.remove("user") {
        Some(Value::Object(user)) => user,
        _ => {
            return Err(field_error(
                "user",
                &format!("#{index}"),
                "missing or not an object",
            ));
        }
    };
    let user_id = id_text(user.get("id"))
        .map_err(|reason| field_error("user.id", &format!("#{index}"), &reason))?;
    let mut record = UserRecord {
        user_id,
        ..UserRecord::default()
    };
    let id = record.user_id.clone();
    record.counters = decode_counters(&top, &id)?;
    record.last_action = text_or_number(top.get("lastAction"))
        .map_err(|reason| field_error("lastAction", &id, &reason))?;
    record.average_score = lenient_float(top.get("averageScore"))
        .map_err(|reason| field_error("averageScore", &id, &reason))?;
    decode_identity(&mut user, &mut record)?;
    record.extra = collect_extra(top, user);
    Ok(record)
}

fn field_error(field: &str, user_id: &str, reason: &str) -> DecodeError {
    DecodeError::Field {
        field: field.to_string(),
        user_id: user_id.to_string(),
        reason: reason.to_string(),
    }
}

fn decode_counters(top: &Map<String, Value>, id: &str) -> Result<Counters, DecodeError> {
    let mut counters = Counters::default();
    for (index, (api_name, _)) in COUNTER_FIELDS.iter().enumerate() {
        let value = match top.get(*api_name) {
            None => None,
            Some(v) => lenient_int(v).map_err(|reason| field_error(api_name, id, &reason))?,
        };
        counters.set(index, value);
    }
    Ok(counters)
}

fn decode_identity(
    user: &mut Map<String, Value>,
    record: &mut UserRecord,
) -> Result<(), DecodeError> {
    let id = record.user_id.clone();
    let text = |user: &Map<String, Value>, key: &str| {
        optional_text(user.get(key))
            .map_err(|reason| field_error(&format!("user.{key}"), &id, &reason))
    };
    record.email = text(user, "email")?;
    record.name = text(user, "name")?;
    record.first_name = text(user, "firstName")?;
    record.last_name = text(user, "lastName")?;
    record.user_created = match text(user, "created")? {
        None => None,
        Some(raw) => Some(
            parse_timestamp(&raw).map_err(|reason| field_error("user.created", &id, &reason))?,
        ),
    };
    decode_meta(user.get("meta"), record)?;
    decode_branch(user.get("branch"), record)?;
    record.groups = decode_groups(user.get("groups"), &id)?;
    Ok(())
}

fn decode_meta(meta: Option<&Value>, record: &mut UserRecord) -> Result<(), DecodeError> {
    let id = record.user_id.clone();
    let meta = match meta {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(meta)) => meta,
        Some(other) => {
            return Err(field_error(
                "user.meta",
                &id,
                &format!("is {}, not an object", kind(other)),
            ));
        }
    };
    let text = |key: &str| {
        optional_text(meta.get(key))
            .map_err(|reason| field_error(&format!("user.meta.{key}"), &id, &reason))
    };
    record.company_name = text("companyName")?;
    record.manager = text("manager")?;
    record.manager_email = text("managerEmail")?;
    record.department = text("department")?;
    record.country = text("country")?;
    Ok(())
}

fn decode_branch(branch: Option<&Value>, record: &mut UserRecord) -> Result<(), DecodeError> {
    let id = record.user_id.clone();
    let branch = match branch {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(branch)) => branch,
        Some(other) => {
            return Err(field_error(
                "user.branch",
                &id,
                &format!("is {}, not an object", kind(other)),
            ));
        }
    };
    record.branch_id = match branch.get("id") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            id_text(Some(value)).map_err(|reason| field_error("user.branch.id", &id, &reason))?,
        ),
    };
    record.branch_name = optional_text(branch.get("name"))
        .map_err(|reason| field_error("user.branch.name", &id, &reason))?;
    Ok(())
}

fn decode_groups(groups: Option<&Value>, id: &str) -> Result<Option<Vec<GroupRef>>, DecodeError> {
    let items = match groups {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(field_error(
                "user.groups",
                id,
                &format!("is {}, not an array", kind(other)),
            ));
        }
    };
    let mut decoded = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(group) = item else {
            return Err(field_error(
                "user.groups[]",
                id,
                &format!("entry is {}, not an object", kind(item)),
            ));
        };
        decoded.push(GroupRef {
            id: id_text(group.get("id"))
                .map_err(|reason| field_error("user.groups[].id", id, &reason))?,
            name: optional_text(group.get("name"))
                .map_err(|reason| field_error("user.groups[].name", id, &reason))?,
        });
    }
    Ok(Some(decoded))
}

/// Keeps every property the documentation does not name, nested as it came.
fn collect_extra(mut top: Map<String, Value>, mut user: Map<String, Value>) -> Option<String> {
    let mut extra = Map::new();
    for key in TOP_LEVEL {
        top.remove(key);
    }
    extra.extend(top);

    let mut user_extra = Map::new();
    if let Some(Value::Object(meta)) = user.get_mut("meta") {
        let unknown: Map<String, Value> = std::mem::take(meta)
            .into_iter()
            .filter(|(key, _)| !META_KEYS.contains(&key.as_str()))
            .collect();
        if !unknown.is_empty() {
            user_extra.insert("meta".to_string(), Value::Object(unknown));
        }
    }
    for (nested, known) in [("branch", &["id", "name"][..])] {
        if let Some(Value::Object(object)) = user.get_mut(nested) {
            let unknown: Map<String, Value> = std::mem::take(object)
                .into_iter()
                .filter(|(key, _)| !known.contains(&key.as_str()))
                .collect();
            if !unknown.is_empty() {
                user_extra.insert(nested.to_string(), Value::Object(unknown));
            }
        }
    }
    for key in USER_KEYS {
        user.remove(key);
    }
    user_extra.extend(user);
    if !user_extra.is_empty() {
        extra.insert("user".to_string(), Value::Object(user_extra));
    }
    (!extra.is_empty()).then(|| Value::Object(extra).to_string())
}

/// Reads an integer sent as an integer, an integral float or a numeric string.
pub fn lenient_int(value: &Value) -> Result<Option<i64>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => number_to_int(&n.to_string()).map(Some),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => number_to_int(s.trim())
            .map(Some)
            .map_err(|_| format!("{s:?} is not an integer")),
        other => Err(format!("expected an integer, got {}", kind(other))),
    }
}

fn number_to_int(text: &str) -> Result<i64, String> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    let float: f64 = text
        .parse()
        .map_err(|_| format!("{text} is not a number"))?;
    let in_range = float.is_finite() && float.fract() == 0.0 && float.abs() < 9.0e15;
    if in_range {
        Ok(float as i64)
    } else {
        Err(format!("{text} is not a whole number within range"))
    }
}

fn lenient_float(value: Option<&Value>) -> Result<Option<f64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => finite(n.to_string().parse::<f64>().ok(), &n.to_string()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => finite(s.trim().parse::<f64>().ok(), s),
        Some(other) => Err(format!("expected a number, got {}", kind(other))),
    }
}

fn finite(parsed: Option<f64>, text: &str) -> Result<Option<f64>, String> {
    match parsed {
        Some(f) if f.is_finite() => Ok(Some(f)),
        _ => Err(format!("{text:?} is not a finite number")),
    }
}

/// Reads an id sent as a number or a string, keeping its exact digits.
fn id_text(value: Option<&Value>) -> Result<String, String> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        None | Some(Value::Null) => Err("missing".to_string()),
        Some(other) => Err(format!(
            "expected a string or a number, got {}",
            kind(other)
        )),
    }
}

fn optional_text(value: Option<&Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(format!("expected text, got {}", kind(other))),
    }
}

fn text_or_number(value: Option<&Value>) -> Result<Option<String>, String> {
    optional_text(value)
}

/// Parses an ISO-8601 time to microseconds since the epoch, UTC. A time
/// without an offset is taken as UTC, and a bare date as midnight UTC.
pub fn parse_timestamp(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, format) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let midnight = d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists on every date");
        return Ok(midnight.and_utc().timestamp_micros());
    }
    Err(format!("{raw:?} is not an ISO-8601 date or time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_int_cases() {
        let cases = [
            (json!(3), Ok(Some(3))),
            (json!(3.0), Ok(Some(3))),
            (json!("3"), Ok(Some(3))),
            (json!(" 12 "), Ok(Some(12))),
            (json!("4.0"), Ok(Some(4))),
            (json!(null), Ok(None)),
            (json!(""), Ok(None)),
            (json!(-2), Ok(Some(-2))),
        ];
        for (value, expected) in cases {
            assert_eq!(lenient_int(&value), expected, "value {value}");
        }
        for bad in [
            json!(3.5),
            json!("many"),
            json!(true),
            json!([1]),
            json!(1e300),
        ] {
            assert!(lenient_int(&bad).is_err(), "value {bad} should be rejected");
        }
    }

    #[test]
    fn timestamp_forms() {
        let cases = [
            ("2024-02-29T00:00:00Z", 1_709_164_800_000_000),
            ("2024-02-29", 1_709_164_800_000_000),
            ("2024-02-29T01:00:00+01:00", 1_709_164_800_000_000),
            ("2024-02-29T00:00:00.5", 1_709_164_800_500_000),
            ("2024-02-29 00:00:01", 1_709_164_801_000_000),
        ];
        for (text, micros) in cases {
            assert_eq!(parse_timestamp(text), Ok(micros), "{text}");
        }
        assert!(parse_timestamp("29/02/2024").is_err());
    }

    #[test]
    fn bad_counter_names_field_and_user() {
        let body = json!({"count": 1, "fetched": 1, "result": [
            {"emailsSent": "many", "user": {"id": 77, "name": "Ærlig Ørn"}}
        ]});
        let error = decode_page(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            error,
            DecodeError::Field {
                field: "emailsSent".into(),
                user_id: "77".into(),
                reason: "\"many\" is not an integer".into()
            }
        );
    }

    #[test]
    fn page_shape_errors() {
        let cases = [
            ("<html><body>Maintenance</body></html>", "not JSON"),
            (
                r#"{"count": 3, "fetched": 1, "result": [{"user": {"id": 1"#,
                "not JSON",
            ),
            ("{}", "`count` is missing"),
            (
                r#"{"count": 2, "fetched": 0, "result": null}"#,
                "`result` is null although count is 2",
            ),
            (
                r#"{"count": -1, "fetched": 0, "result": []}"#,
                "not a non-negative integer",
            ),
            (
                r#"{"count": 1, "fetched": 1, "result": {}}"#,
                "not an array",
            ),
            ("[]", "not an object"),
        ];
        for (body, expected) in cases {
            let error = decode_page(body.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "{body}: {error}");
        }
    }

    #[test]
    fn empty_account_with_null_result() {
        let page = decode_page(br#"{"count": 0, "fetched": 0, "result": null}"#).unwrap();
        assert_eq!(page.count, 0);
        assert!(page.users.is_empty());
    }
}
