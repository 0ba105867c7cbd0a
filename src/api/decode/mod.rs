//! Tolerant decoding of users-summary pages.
//!
//! The documented types are not always what servers send: integers arrive as
//! floats (`3.0`) or numeric strings (`"3"`), `lastAction` as text or a
//! number, `averageScore` as an int, a float or null, and `groups`, `meta` and
//! `branch` may be null or missing. All of these are accepted. Properties the
//! documentation does not name are kept in the `extra` column as JSON text.
//! A value that cannot be understood is an error naming the field, the user
//! and the page.
//!
//! A page is parsed in one pass (see [`stream`]) straight into a columnar
//! [`UserBatch`], without a record or a heap string per value.

mod node;
mod plain;
mod stream;

use std::borrow::Cow;

use serde_json::{Map, Value};

use self::node::{Members, to_map};
use self::stream::{EntrySlots, GroupSlot, Nested, Raw, ResultValue};
use crate::snapshot::batch::{GroupText, UserBatch, UserRow};
use crate::snapshot::record::COUNTER_FIELDS;

/// A decoded users-summary response.
#[derive(Debug, Clone)]
pub struct Page {
    /// Users in the account, as the server reported with this page.
    pub count: u64,
    /// The server's `fetched` property, which may disagree with the array.
    pub fetched: u64,
    pub users: UserBatch,
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

/// Decodes one response body.
pub fn decode_page(body: &[u8]) -> Result<Page, DecodeError> {
    decode_page_expecting(body, 0)
}

/// Decodes one response body of about `users` users, the page size that
/// was requested, which sizes the batch's columns up front.
pub fn decode_page_expecting(body: &[u8], users: usize) -> Result<Page, DecodeError> {
    // The common page goes straight into the batch; any other page, and
    // every page with an error, through the general decoder.
    let common = std::str::from_utf8(body)
        .map_err(|_| plain::Unusual)
        .and_then(|text| plain::decode(text, users));
    match common {
        Ok(page) => Ok(page),
        Err(plain::Unusual) => decode_general(body),
    }
}

/// Decodes any body: every kind of value the API may send, undocumented
/// properties, and the errors.
fn decode_general(body: &[u8]) -> Result<Page, DecodeError> {
    let parts = stream::parse_page(body).map_err(|e| DecodeError::NotJson {
        reason: e.to_string(),
        preview: preview(body),
    })?;
    let Some(parts) = parts else {
        return Err(shape("the top level is not an object"));
    };
    let count = page_count(parts.count.as_ref(), "count")?;
    let fetched = page_count(parts.fetched.as_ref(), "fetched")?;
    match parts.result {
        ResultValue::Array => {}
        ResultValue::Null | ResultValue::Missing if count == 0 => {}
        ResultValue::Null => {
            return Err(shape(&format!(
                "`result` is null although count is {count}"
            )));
        }
        ResultValue::Missing => return Err(shape("`result` is missing")),
        ResultValue::Other(kind) => {
            return Err(shape(&format!("`result` is {kind}, not an array")));
        }
    }
    if let Some(error) = parts.first_error {
        return Err(error);
    }
    Ok(Page {
        count,
        fetched,
        users: parts.users,
    })
}

fn page_count(value: Option<&Raw<'_>>, field: &str) -> Result<u64, DecodeError> {
    let value = value.ok_or_else(|| shape(&format!("`{field}` is missing")))?;
    match raw_int(Some(value)) {
        Ok(Some(n)) if n >= 0 => Ok(n as u64),
        _ => Err(shape(&format!(
            "`{field}` is {}, not a non-negative integer",
            value_text(value)
        ))),
    }
}

/// Formats a value as JSON text, for messages.
fn value_text(raw: &Raw<'_>) -> String {
    match raw {
        Raw::Number(text) => text.to_string(),
        Raw::Unsigned(n) => n.to_string(),
        Raw::Signed(n) => n.to_string(),
        Raw::Null => "null".to_string(),
        Raw::Bool(b) => b.to_string(),
        Raw::Text(text) => Value::String(text.to_string()).to_string(),
        Raw::Other(kind) => kind.to_string(),
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

/// The documented properties of `user.meta` as error messages name them, in
/// the order of [`stream::META_KEYS`].
const META_FIELDS: [&str; 5] = [
    "user.meta.companyName",
    "user.meta.manager",
    "user.meta.managerEmail",
    "user.meta.department",
    "user.meta.country",
];

/// Checks the slots of the `result` entry at `index` (`None` when it was not
/// an object) and appends the user to `users`. Nothing is appended on error.
fn finish_user(
    entry: Option<&EntrySlots<'_>>,
    groups: &[GroupSlot<'_>],
    index: usize,
    users: &mut UserBatch,
) -> Result<(), DecodeError> {
    let position = || format!("#{index}");
    let Some(entry) = entry else {
        return Err(field_error(
            "result[]",
            &position(),
            "entry is not an object",
        ));
    };
    if !entry.has_user {
        return Err(field_error("user", &position(), "missing or not an object"));
    }
    let user = &entry.user;
    let user_id =
        id_text(user.id.as_ref()).map_err(|reason| field_error("user.id", &position(), &reason))?;
    let id = user_id.as_ref();
    let mut counters = [None; 9];
    for (slot, ((api_name, _), raw)) in counters
        .iter_mut()
        .zip(COUNTER_FIELDS.iter().zip(&entry.counters))
    {
        *slot = raw_int(raw.as_ref()).map_err(|reason| field_error(api_name, id, &reason))?;
    }
    let last_action = optional_text(entry.last_action.as_ref())
        .map_err(|reason| field_error("lastAction", id, &reason))?;
    let average_score = lenient_float(entry.average_score.as_ref())
        .map_err(|reason| field_error("averageScore", id, &reason))?;

    let email = slot_text(&user.email, "user.email", id)?;
    let name = slot_text(&user.name, "user.name", id)?;
    let first_name = slot_text(&user.first_name, "user.firstName", id)?;
    let last_name = slot_text(&user.last_name, "user.lastName", id)?;
    let user_created = match slot_text(&user.created, "user.created", id)? {
        None => None,
        Some(raw) => {
            Some(parse_timestamp(&raw).map_err(|reason| field_error("user.created", id, &reason))?)
        }
    };

    check_object(user.meta, "user.meta", id)?;
    let mut meta = [None, None, None, None, None];
    for ((slot, field), raw) in meta.iter_mut().zip(META_FIELDS).zip(&user.meta_values) {
        *slot = slot_text(raw, field, id)?;
    }
    let [company_name, manager, manager_email, department, country] = meta;

    check_object(user.branch, "user.branch", id)?;
    let [branch_id, branch_name] = &user.branch_values;
    let branch_id = match branch_id {
        None | Some(Raw::Null) => None,
        Some(raw) => {
            Some(id_text(Some(raw)).map_err(|reason| field_error("user.branch.id", id, &reason))?)
        }
    };
    let branch_name = slot_text(branch_name, "user.branch.name", id)?;
    let groups = decode_groups(user.groups, groups, id)?;
    let extra = collect_extra(entry);

    users.push(&UserRow {
        user_id,
        email,
        name,
        first_name,
        last_name,
        user_created,
        company_name,
        manager,
        manager_email,
        department,
        country,
        branch_id,
        branch_name,
        groups: groups.as_deref(),
        counters,
        last_action,
        average_score,
        extra,
    });
    Ok(())
}

/// Reads an optional text slot. An error names `field` and the user `id`.
fn slot_text<'v>(
    raw: &'v Option<Raw<'_>>,
    field: &str,
    id: &str,
) -> Result<Option<Cow<'v, str>>, DecodeError> {
    optional_text(raw.as_ref()).map_err(|reason| field_error(field, id, &reason))
}

fn field_error(field: &str, user_id: &str, reason: &str) -> DecodeError {
    DecodeError::Field {
        field: field.to_string(),
        user_id: user_id.to_string(),
        reason: reason.to_string(),
    }
}

/// Rejects a property that should be an object, or null, but is not.
fn check_object(nested: Nested, field: &str, id: &str) -> Result<(), DecodeError> {
    match nested {
        Nested::Wrong(kind) => Err(field_error(field, id, &format!("is {kind}, not an object"))),
        Nested::Null | Nested::Read => Ok(()),
    }
}

fn decode_groups<'v>(
    nested: Nested,
    slots: &'v [GroupSlot<'_>],
    id: &str,
) -> Result<Option<Vec<GroupText<'v>>>, DecodeError> {
    match nested {
        Nested::Null => return Ok(None),
        Nested::Wrong(kind) => {
            return Err(field_error(
                "user.groups",
                id,
                &format!("is {kind}, not an array"),
            ));
        }
        Nested::Read => {}
    }
    let mut decoded = Vec::with_capacity(slots.len());
    for slot in slots {
        let (group_id, name) = match slot {
            GroupSlot::NotObject(kind) => {
                return Err(field_error(
                    "user.groups[]",
                    id,
                    &format!("entry is {kind}, not an object"),
                ));
            }
            GroupSlot::Entry { id, name } => (id, name),
        };
        decoded.push((
            id_text(group_id.as_ref())
                .map_err(|reason| field_error("user.groups[].id", id, &reason))?,
            optional_text(name.as_ref())
                .map_err(|reason| field_error("user.groups[].name", id, &reason))?,
        ));
    }
    Ok(Some(decoded))
}

/// Keeps every property the documentation does not name, nested as it
/// came: the entry's own first, then `user` with the unknown members of
/// `meta` and `branch` and the user's other unknown properties. A repeated
/// key keeps its first position and its last value, as in a `serde_json` map.
fn collect_extra(entry: &EntrySlots<'_>) -> Option<String> {
    let user = &entry.user;
    let object = |members: &Members<'_>| Value::Object(to_map(members.iter()));
    let mut user_extra = Map::new();
    if user.meta == Nested::Read && !user.meta_unknown.is_empty() {
        user_extra.insert("meta".to_string(), object(&user.meta_unknown));
    }
    if user.branch == Nested::Read && !user.branch_unknown.is_empty() {
        user_extra.insert("branch".to_string(), object(&user.branch_unknown));
    }
    user_extra.extend(to_map(user.unknown.iter()));
    let mut extra = to_map(entry.unknown.iter());
    if !user_extra.is_empty() {
        extra.insert("user".to_string(), Value::Object(user_extra));
    }
    (!extra.is_empty()).then(|| Value::Object(extra).to_string())
}

/// A scalar as the lenient readers see it, from a [`Raw`] or a [`Value`].
enum Scalar<'v> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Number(Cow<'v, str>),
    Text(&'v str),
    /// An array or an object, named by its kind.
    Other(&'static str),
}

impl<'v> Scalar<'v> {
    fn of_raw(raw: Option<&'v Raw<'_>>) -> Scalar<'v> {
        match raw {
            None | Some(Raw::Null) => Scalar::Null,
            Some(Raw::Bool(b)) => Scalar::Bool(*b),
            Some(Raw::Unsigned(n)) => Scalar::Unsigned(*n),
            Some(Raw::Signed(n)) => Scalar::Signed(*n),
            Some(Raw::Number(text)) => Scalar::Number(Cow::Borrowed(text)),
            Some(Raw::Text(text)) => Scalar::Text(text),
            Some(Raw::Other(kind)) => Scalar::Other(kind),
        }
    }

    fn of_value(value: &'v Value) -> Scalar<'v> {
        match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Number(Cow::Owned(n.to_string())),
            Value::String(text) => Scalar::Text(text),
            Value::Array(_) => Scalar::Other("an array"),
            Value::Object(_) => Scalar::Other("an object"),
        }
    }
}

/// Reads an integer sent as an integer, an integral float or a numeric string.
pub fn lenient_int(value: &Value) -> Result<Option<i64>, String> {
    scalar_int(Scalar::of_value(value))
}

fn raw_int(raw: Option<&Raw<'_>>) -> Result<Option<i64>, String> {
    scalar_int(Scalar::of_raw(raw))
}

fn scalar_int(value: Scalar<'_>) -> Result<Option<i64>, String> {
    match value {
        Scalar::Null => Ok(None),
        Scalar::Signed(n) => Ok(Some(n)),
        Scalar::Unsigned(n) => i64::try_from(n)
            .map(Some)
            .map_err(|_| format!("{n} is not a whole number within range")),
        Scalar::Number(text) => number_to_int(&text).map(Some),
        Scalar::Text(s) if s.trim().is_empty() => Ok(None),
        Scalar::Text(s) => number_to_int(s.trim())
            .map(Some)
            .map_err(|_| format!("{s:?} is not an integer")),
        Scalar::Bool(_) => Err("expected an integer, got a boolean".to_string()),
        Scalar::Other(kind) => Err(format!("expected an integer, got {kind}")),
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

fn lenient_float(raw: Option<&Raw<'_>>) -> Result<Option<f64>, String> {
    match Scalar::of_raw(raw) {
        Scalar::Null => Ok(None),
        // The nearest double, as parsing the decimal text would give.
        Scalar::Unsigned(n) => Ok(Some(n as f64)),
        Scalar::Signed(n) => Ok(Some(n as f64)),
        Scalar::Number(text) => finite(text.parse::<f64>().ok(), &text),
        Scalar::Text(s) if s.trim().is_empty() => Ok(None),
        Scalar::Text(s) => finite(s.trim().parse::<f64>().ok(), s),
        Scalar::Bool(_) => Err("expected a number, got a boolean".to_string()),
        Scalar::Other(kind) => Err(format!("expected a number, got {kind}")),
    }
}

fn finite(parsed: Option<f64>, text: &str) -> Result<Option<f64>, String> {
    match parsed {
        Some(f) if f.is_finite() => Ok(Some(f)),
        _ => Err(format!("{text:?} is not a finite number")),
    }
}

/// Reads an id sent as a number or a string, keeping its exact digits.
fn id_text<'v>(raw: Option<&'v Raw<'_>>) -> Result<Cow<'v, str>, String> {
    match Scalar::of_raw(raw) {
        Scalar::Text(s) if !s.trim().is_empty() => Ok(Cow::Borrowed(s.trim())),
        Scalar::Unsigned(n) => Ok(Cow::Owned(n.to_string())),
        Scalar::Signed(n) => Ok(Cow::Owned(n.to_string())),
        Scalar::Number(text) => Ok(text),
        Scalar::Null => Err("missing".to_string()),
        Scalar::Text(_) => Err("expected a string or a number, got a string".to_string()),
        Scalar::Bool(_) => Err("expected a string or a number, got a boolean".to_string()),
        Scalar::Other(kind) => Err(format!("expected a string or a number, got {kind}")),
    }
}

fn optional_text<'v>(raw: Option<&'v Raw<'_>>) -> Result<Option<Cow<'v, str>>, String> {
    match Scalar::of_raw(raw) {
        Scalar::Null => Ok(None),
        Scalar::Text(s) => Ok(Some(Cow::Borrowed(s))),
        Scalar::Unsigned(n) => Ok(Some(Cow::Owned(n.to_string()))),
        Scalar::Signed(n) => Ok(Some(Cow::Owned(n.to_string()))),
        Scalar::Number(text) => Ok(Some(text)),
        Scalar::Bool(b) => Ok(Some(Cow::Owned(b.to_string()))),
        Scalar::Other(kind) => Err(format!("expected text, got {kind}")),
    }
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
    use crate::snapshot::record::UserRecord;
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

    fn one_user(entry: &str) -> Result<UserRecord, DecodeError> {
        let body = format!(r#"{{"count": 1, "fetched": 1, "result": [{entry}]}}"#);
        decode_page(body.as_bytes()).map(|page| page.users.record(0))
    }

    #[test]
    fn repeated_keys_keep_last_value() {
        let user = one_user(
            r#"{"emailsSent": 1, "emailsSent": 7, "note": "a", "note": "b",
                "user": {"id": 1, "name": "Første", "name": "Anden"}}"#,
        )
        .unwrap();
        assert_eq!(user.counters.emails_sent, Some(7));
        assert_eq!(user.name.as_deref(), Some("Anden"));
        assert_eq!(user.extra.as_deref(), Some(r#"{"note":"b"}"#));
    }

    #[test]
    fn extras_keep_arrival_order() {
        let user = one_user(
            r#"{"zeta": 1, "emailsSent": 2, "alpha": [1, {"x": null}], "mid": 2.50,
                "user": {"id": "u1", "title": "Chef", "meta": {"department": "Salg", "floor": 3},
                         "branch": {"id": 4, "name": "Århus", "zone": "Vest"}, "badge": true}}"#,
        )
        .unwrap();
        assert_eq!(
            user.extra.as_deref(),
            Some(
                r#"{"zeta":1,"alpha":[1,{"x":null}],"mid":2.50,"user":{"meta":{"floor":3},"branch":{"zone":"Vest"},"title":"Chef","badge":true}}"#
            )
        );
        assert_eq!(user.department.as_deref(), Some("Salg"));
        assert_eq!(user.branch_name.as_deref(), Some("Århus"));
    }

    #[test]
    fn escaped_strings_and_keys_decode_exactly() {
        let user = one_user(
            r#"{"lastAction": "Klik p\u00e5 \"link\"", "user": {"id": "\u00d8-1", "na\u006de": "S\u00f8ren\n"}}"#,
        )
        .unwrap();
        assert_eq!(user.user_id, "Ø-1");
        assert_eq!(user.name.as_deref(), Some("Søren\n"));
        assert_eq!(user.last_action.as_deref(), Some("Klik på \"link\""));
    }

    #[test]
    fn numbers_kept_as_text() {
        let user = one_user(
            r#"{"lastAction": 1.50, "averageScore": "87.5", "user": {"id": 123456789012345678901234567890,
                "name": 42, "groups": [{"id": 9007199254740993, "name": false}]}}"#,
        )
        .unwrap();
        assert_eq!(user.user_id, "123456789012345678901234567890");
        assert_eq!(user.last_action.as_deref(), Some("1.50"));
        assert_eq!(user.average_score, Some(87.5));
        assert_eq!(user.name.as_deref(), Some("42"));
        let groups = user.groups.unwrap();
        assert_eq!(groups[0].id, "9007199254740993");
        assert_eq!(groups[0].name.as_deref(), Some("false"));
    }

    #[test]
    fn wrong_kinds_name_the_field() {
        let cases = [
            (r#"{"user": 5}"#, "user", "missing or not an object"),
            (
                r#"{"user": {"id": 1, "meta": 5}}"#,
                "user.meta",
                "is a number, not an object",
            ),
            (
                r#"{"user": {"id": 1, "branch": "x"}}"#,
                "user.branch",
                "is a string, not an object",
            ),
            (
                r#"{"user": {"id": 1, "groups": {}}}"#,
                "user.groups",
                "is an object, not an array",
            ),
            (
                r#"{"user": {"id": 1, "groups": [3]}}"#,
                "user.groups[]",
                "entry is a number, not an object",
            ),
            (
                r#"{"user": {"id": true}}"#,
                "user.id",
                "expected a string or a number, got a boolean",
            ),
            (
                r#"{"user": {"id": " "}}"#,
                "user.id",
                "expected a string or a number, got a string",
            ),
            (
                r#"{"linksClicked": [], "user": {"id": 1}}"#,
                "linksClicked",
                "expected an integer, got an array",
            ),
            (
                r#"{"averageScore": true, "user": {"id": 1}}"#,
                "averageScore",
                "expected a number, got a boolean",
            ),
            (
                r#"{"user": {"id": 1, "email": {}}}"#,
                "user.email",
                "expected text, got an object",
            ),
        ];
        for (entry, field, reason) in cases {
            match one_user(entry) {
                Err(DecodeError::Field {
                    field: f,
                    reason: r,
                    ..
                }) => {
                    assert_eq!((f.as_str(), r.as_str()), (field, reason), "{entry}");
                }
                other => panic!("{entry}: expected a field error, got {other:?}"),
            }
        }
        let error = decode_page(br#"{"count": 1, "fetched": 1, "result": [7]}"#).unwrap_err();
        assert!(
            error.to_string().contains("entry is not an object"),
            "{error}"
        );
    }

    #[test]
    fn page_counts_accept_lenient_integers() {
        let page = decode_page(br#"{"count": "2", "fetched": 2.0, "result": []}"#).unwrap();
        assert_eq!((page.count, page.fetched), (2, 2));
        let error = decode_page(br#"{"count": "two", "fetched": 0, "result": []}"#).unwrap_err();
        assert!(error.to_string().contains(r#"`count` is "two""#), "{error}");
    }

    #[test]
    fn empty_account_with_null_result() {
        let page = decode_page(br#"{"count": 0, "fetched": 0, "result": null}"#).unwrap();
        assert_eq!(page.count, 0);
        assert!(page.users.is_empty());
    }

    #[test]
    fn meta_fields_follow_meta_keys() {
        for (field, key) in META_FIELDS.iter().zip(stream::META_KEYS) {
            assert_eq!(*field, format!("user.meta.{key}"));
        }
    }

    #[test]
    fn repeated_result_replaces_users() {
        let body = r#"{"count": 1, "fetched": 1,
                "result": [{"user": {"id": "old"}}, 5],
                "result": [{"user": {"id": "ny-å"}}]}"#;
        let page = decode_page(body.as_bytes()).unwrap();
        let ids: Vec<&str> = page.users.user_ids().collect();
        assert_eq!(ids, ["ny-å"]);
        let error = decode_page(
            br#"{"count": 1, "fetched": 1, "result": [{"user": {"id": "a"}}], "result": null}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("`result` is null"), "{error}");
    }

    #[test]
    fn repeated_user_replaces_whole_object() {
        let user = one_user(
            r#"{"user": {"id": 1, "email": "a@b.dk", "meta": {"department": "Salg", "floor": 2},
                         "groups": [{"id": 1}]},
                "user": {"id": 2, "meta": {"country": "DK"}}}"#,
        )
        .unwrap();
        assert_eq!(user.user_id, "2");
        assert_eq!(user.email, None);
        assert_eq!(user.department, None);
        assert_eq!(user.country.as_deref(), Some("DK"));
        assert_eq!(user.groups, None);
        assert_eq!(user.extra, None);
    }

    #[test]
    fn first_bad_user_wins_and_syntax_beats_it() {
        let body = br#"{"count": 3, "fetched": 3, "result": [
            {"user": {"id": "ok"}},
            {"linksClicked": "x", "user": {"id": "first"}},
            {"linksClicked": "y", "user": {"id": "second"}}]}"#;
        match decode_page(body).unwrap_err() {
            DecodeError::Field { user_id, .. } => assert_eq!(user_id, "first"),
            other => panic!("expected a field error, got {other:?}"),
        }
        let broken = br#"{"count": 2, "fetched": 2, "result": [
            {"linksClicked": "x", "user": {"id": "first"}}, {"user": }]}"#;
        let error = decode_page(broken).unwrap_err();
        assert!(matches!(error, DecodeError::NotJson { .. }), "{error:?}");
    }

    #[test]
    fn group_errors_follow_entry_order() {
        let error = one_user(r#"{"user": {"id": 1, "groups": [{"name": "x"}, 7]}}"#).unwrap_err();
        match error {
            DecodeError::Field { field, reason, .. } => {
                assert_eq!(field, "user.groups[].id");
                assert_eq!(reason, "missing");
            }
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn top_level_number_is_not_a_page() {
        for body in ["12", "1.5", "\"text\"", "null"] {
            let error = decode_page(body.as_bytes()).unwrap_err();
            assert!(
                error.to_string().contains("not an object"),
                "{body}: {error}"
            );
        }
    }

    #[test]
    fn large_integers_keep_their_limits() {
        let user = one_user(
            r#"{"emailsSent": 9223372036854775807, "linksClicked": -3, "averageScore": 18446744073709551615,
                "user": {"id": 18446744073709551615}}"#,
        )
        .unwrap();
        assert_eq!(user.counters.emails_sent, Some(i64::MAX));
        assert_eq!(user.counters.links_clicked, Some(-3));
        assert_eq!(user.average_score, Some(18_446_744_073_709_551_615.0));
        assert_eq!(user.user_id, "18446744073709551615");
        let error = one_user(r#"{"emailsSent": 9223372036854775808, "user": {"id": 1}}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a whole number within range"), "{error}");
    }

    #[test]
    fn invalid_utf8_is_not_json() {
        let mut body =
            br#"{"count": 1, "fetched": 1, "result": [{"user": {"id": "x", "name": "S"#.to_vec();
        body.extend([0xf8, 0xa1]);
        body.extend(br#""}}]}"#);
        match decode_page(&body).unwrap_err() {
            DecodeError::NotJson { reason, .. } => {
                assert!(reason.contains("line 1 column"), "{reason}");
            }
            other => panic!("expected NotJson, got {other:?}"),
        }
    }
}
