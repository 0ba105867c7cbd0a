//! Tolerant decoding of users-summary pages.
//!
//! The documented types are not always what servers send: integers arrive as
//! floats (`3.0`) or numeric strings (`"3"`), `lastAction` as text or a
//! number, `averageScore` as an int, a float or null, and `groups`, `meta` and
//! `branch` may be null or missing. All of these are accepted. Properties the
//! documentation does not name are kept in [`UserRecord::extra`]. A value that
//! cannot be understood is an error naming the field, the user and the page.

use std::borrow::Cow;

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
    let node: Node = serde_json::from_slice(body).map_err(|e| DecodeError::NotJson {
        reason: e.to_string(),
        preview: preview(body),
    })?;
    let Node::Object(mut top) = node else {
        return Err(shape("the top level is not an object"));
    };
    let count = page_count(&top, "count")?;
    let fetched = page_count(&top, "fetched")?;
    let results = match take(&mut top, "result") {
        Some(Node::Array(items)) => items,
        Some(Node::Null) | None if count == 0 => Vec::new(),
        Some(Node::Null) => {
            return Err(shape(&format!(
                "`result` is null although count is {count}"
            )));
        }
        None => return Err(shape("`result` is missing")),
        Some(other) => {
            return Err(shape(&format!(
                "`result` is {}, not an array",
                other.kind()
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

/// The token under which serde_json's `arbitrary_precision` hands a number
/// to a visitor: a one-entry map whose value is the number's text.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A JSON value of a response body. Strings without escapes borrow from the
/// body, numbers keep their text as sent, and objects keep their members in
/// order, duplicates included, so that a user costs a few allocations
/// instead of an ordered hash map per object.
#[derive(Debug)]
enum Node<'a> {
    Null,
    Bool(bool),
    Number(String),
    Text(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// An object's members, in the order sent.
type Members<'a> = Vec<(Cow<'a, str>, Node<'a>)>;

impl Node<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Number(_) => "a number",
            Node::Text(_) => "a string",
            Node::Array(_) => "an array",
            Node::Object(_) => "an object",
        }
    }

    /// Converts to a `serde_json::Value`, as undocumented properties are kept.
    fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(text) => text
                .parse::<serde_json::Number>()
                .map_or_else(|_| Value::String(text.clone()), Value::Number),
            Node::Text(text) => Value::String(text.to_string()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(members) => Value::Object(to_map(members.iter())),
        }
    }
}

/// Builds a map as serde_json would parse the object: a repeated key keeps
/// its first position and its last value.
fn to_map<'n, 'a: 'n>(
    members: impl Iterator<Item = &'n (Cow<'a, str>, Node<'a>)>,
) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, node) in members {
        map.insert(key.to_string(), node.to_value());
    }
    map
}

impl<'de> serde::Deserialize<'de> for Node<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(value.to_string()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(value.to_string()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Node<'de>, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Node::Null, |n| Node::Number(n.to_string())))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Text(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Node<'de>, E> {
        Ok(Node::Text(Cow::Owned(value.to_string())))
    }

    fn visit_string<E>(self, value: String) -> Result<Node<'de>, E> {
        Ok(Node::Text(Cow::Owned(value)))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            if members.is_empty() && key == NUMBER_TOKEN {
                let text: String = map.next_value()?;
                return Ok(Node::Number(text));
            }
            members.push((key, map.next_value()?));
        }
        Ok(Node::Object(members))
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(value)))
            }

            fn visit_str<E>(self, value: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value.to_string())))
            }

            fn visit_string<E>(self, value: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Returns the value of `key`, the last one when the key repeats, as
/// serde_json's maps do.
fn get<'n, 'a>(members: &'n [(Cow<'a, str>, Node<'a>)], key: &str) -> Option<&'n Node<'a>> {
    members
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, node)| node)
}

/// Removes every member named `key` and returns the last one's value.
fn take<'a>(members: &mut Members<'a>, key: &str) -> Option<Node<'a>> {
    let mut found = None;
    let mut index = 0;
    while index < members.len() {
        if members[index].0 == key {
            found = Some(members.remove(index).1);
        } else {
            index += 1;
        }
    }
    found
}

fn page_count(top: &[(Cow<'_, str>, Node<'_>)], field: &str) -> Result<u64, DecodeError> {
    let value = get(top, field).ok_or_else(|| shape(&format!("`{field}` is missing")))?;
    match node_int(Some(value)) {
        Ok(Some(n)) if n >= 0 => Ok(n as u64),
        _ => Err(shape(&format!(
            "`{field}` is {}, not a non-negative integer",
            value_text(value)
        ))),
    }
}

/// Formats a value as JSON text, for messages.
fn value_text(node: &Node<'_>) -> String {
    match node {
        Node::Number(text) => text.clone(),
        Node::Null => "null".to_string(),
        Node::Bool(b) => b.to_string(),
        Node::Text(text) => Value::String(text.to_string()).to_string(),
        Node::Array(_) | Node::Object(_) => node.kind().to_string(),
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

/// A scalar as the lenient readers see it, from a [`Node`] or a [`Value`].
enum Scalar<'v> {
    Null,
    Bool(bool),
    Number(Cow<'v, str>),
    Text(&'v str),
    /// An array or an object, named by its kind.
    Other(&'static str),
}

impl<'v> Scalar<'v> {
    fn of_node(node: Option<&'v Node<'_>>) -> Scalar<'v> {
        match node {
            None | Some(Node::Null) => Scalar::Null,
            Some(Node::Bool(b)) => Scalar::Bool(*b),
            Some(Node::Number(text)) => Scalar::Number(Cow::Borrowed(text)),
            Some(Node::Text(text)) => Scalar::Text(text),
            Some(other) => Scalar::Other(other.kind()),
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

/// Decodes one `result` entry; `index` names it when the id is unreadable.
fn decode_user(item: Node<'_>, index: usize) -> Result<UserRecord, DecodeError> {
    let Node::Object(top) = item else {
        return Err(field_error(
            "result[]",
            &format!("#{index}"),
            "entry is not an object",
        ));
    };
    let user = match get(&top, "user") {
        Some(Node::Object(user)) => user,
        _ => {
            return Err(field_error(
                "user",
                &format!("#{index}"),
                "missing or not an object",
            ));
        }
    };
    let user_id = id_text(get(user, "id"))
        .map_err(|reason| field_error("user.id", &format!("#{index}"), &reason))?;
    let mut record = UserRecord {
        user_id,
        ..UserRecord::default()
    };
    let id = record.user_id.clone();
    record.counters = decode_counters(&top, &id)?;
    record.last_action = optional_text(get(&top, "lastAction"))
        .map_err(|reason| field_error("lastAction", &id, &reason))?;
    record.average_score = lenient_float(get(&top, "averageScore"))
        .map_err(|reason| field_error("averageScore", &id, &reason))?;
    decode_identity(user, &mut record)?;
    record.extra = collect_extra(&top, user);
    Ok(record)
}

fn field_error(field: &str, user_id: &str, reason: &str) -> DecodeError {
    DecodeError::Field {
        field: field.to_string(),
        user_id: user_id.to_string(),
        reason: reason.to_string(),
    }
}

fn decode_counters(top: &[(Cow<'_, str>, Node<'_>)], id: &str) -> Result<Counters, DecodeError> {
    let mut counters = Counters::default();
    for (index, (api_name, _)) in COUNTER_FIELDS.iter().enumerate() {
        let value =
            node_int(get(top, api_name)).map_err(|reason| field_error(api_name, id, &reason))?;
        counters.set(index, value);
    }
    Ok(counters)
}

fn decode_identity(
    user: &[(Cow<'_, str>, Node<'_>)],
    record: &mut UserRecord,
) -> Result<(), DecodeError> {
    let id = record.user_id.clone();
    let text = |key: &str| {
        optional_text(get(user, key))
            .map_err(|reason| field_error(&format!("user.{key}"), &id, &reason))
    };
    record.email = text("email")?;
    record.name = text("name")?;
    record.first_name = text("firstName")?;
    record.last_name = text("lastName")?;
    record.user_created = match text("created")? {
        None => None,
        Some(raw) => Some(
            parse_timestamp(&raw).map_err(|reason| field_error("user.created", &id, &reason))?,
        ),
    };
    decode_meta(get(user, "meta"), record)?;
    decode_branch(get(user, "branch"), record)?;
    record.groups = decode_groups(get(user, "groups"), &id)?;
    Ok(())
}

/// Returns the members of an optional object, `None` for null or absent,
/// and an error naming the field for anything else.
fn optional_object<'n, 'a>(
    node: Option<&'n Node<'a>>,
    field: &str,
    id: &str,
) -> Result<Option<&'n Members<'a>>, DecodeError> {
    match node {
        None | Some(Node::Null) => Ok(None),
        Some(Node::Object(members)) => Ok(Some(members)),
        Some(other) => Err(field_error(
            field,
            id,
            &format!("is {}, not an object", other.kind()),
        )),
    }
}

fn decode_meta(meta: Option<&Node<'_>>, record: &mut UserRecord) -> Result<(), DecodeError> {
    let id = record.user_id.clone();
    let Some(meta) = optional_object(meta, "user.meta", &id)? else {
        return Ok(());
    };
    let text = |key: &str| {
        optional_text(get(meta, key))
            .map_err(|reason| field_error(&format!("user.meta.{key}"), &id, &reason))
    };
    record.company_name = text("companyName")?;
    record.manager = text("manager")?;
    record.manager_email = text("managerEmail")?;
    record.department = text("department")?;
    record.country = text("country")?;
    Ok(())
}

fn decode_branch(branch: Option<&Node<'_>>, record: &mut UserRecord) -> Result<(), DecodeError> {
    let id = record.user_id.clone();
    let Some(branch) = optional_object(branch, "user.branch", &id)? else {
        return Ok(());
    };
    record.branch_id = match get(branch, "id") {
        None | Some(Node::Null) => None,
        Some(value) => Some(
            id_text(Some(value)).map_err(|reason| field_error("user.branch.id", &id, &reason))?,
        ),
    };
    record.branch_name = optional_text(get(branch, "name"))
        .map_err(|reason| field_error("user.branch.name", &id, &reason))?;
    Ok(())
}

fn decode_groups(
    groups: Option<&Node<'_>>,
    id: &str,
) -> Result<Option<Vec<GroupRef>>, DecodeError> {
    let items = match groups {
        None | Some(Node::Null) => return Ok(None),
        Some(Node::Array(items)) => items,
        Some(other) => {
            return Err(field_error(
                "user.groups",
                id,
                &format!("is {}, not an array", other.kind()),
            ));
        }
    };
    let mut decoded = Vec::with_capacity(items.len());
    for item in items {
        let Node::Object(group) = item else {
            return Err(field_error(
                "user.groups[]",
                id,
                &format!("entry is {}, not an object", item.kind()),
            ));
        };
        decoded.push(GroupRef {
            id: id_text(get(group, "id"))
                .map_err(|reason| field_error("user.groups[].id", id, &reason))?,
            name: optional_text(get(group, "name"))
                .map_err(|reason| field_error("user.groups[].name", id, &reason))?,
        });
    }
    Ok(Some(decoded))
}

/// Keeps every property the documentation does not name, nested as it
/// came: the entry's own first, then `user` with the unknown members of
/// `meta` and `branch` and the user's other unknown properties.
fn collect_extra(
    top: &[(Cow<'_, str>, Node<'_>)],
    user: &[(Cow<'_, str>, Node<'_>)],
) -> Option<String> {
    let unknown = |members: &[(Cow<'_, str>, Node<'_>)], known: &[&str]| {
        let mut unknown = members
            .iter()
            .filter(|(key, _)| !known.contains(&key.as_ref()))
            .peekable();
        unknown.peek().is_some().then(|| to_map(unknown))
    };
    let mut user_extra = Map::new();
    for (nested, known) in [("meta", &META_KEYS[..]), ("branch", &["id", "name"][..])] {
        if let Some(Node::Object(members)) = get(user, nested)
            && let Some(map) = unknown(members, known)
        {
            user_extra.insert(nested.to_string(), Value::Object(map));
        }
    }
    if let Some(rest) = unknown(user, &USER_KEYS) {
        user_extra.extend(rest);
    }
    let mut extra = unknown(top, &TOP_LEVEL).unwrap_or_default();
    if !user_extra.is_empty() {
        extra.insert("user".to_string(), Value::Object(user_extra));
    }
    (!extra.is_empty()).then(|| Value::Object(extra).to_string())
}

/// Reads an integer sent as an integer, an integral float or a numeric string.
pub fn lenient_int(value: &Value) -> Result<Option<i64>, String> {
    scalar_int(Scalar::of_value(value))
}

fn node_int(node: Option<&Node<'_>>) -> Result<Option<i64>, String> {
    scalar_int(Scalar::of_node(node))
}

fn scalar_int(value: Scalar<'_>) -> Result<Option<i64>, String> {
    match value {
        Scalar::Null => Ok(None),
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

fn lenient_float(node: Option<&Node<'_>>) -> Result<Option<f64>, String> {
    match Scalar::of_node(node) {
        Scalar::Null => Ok(None),
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
fn id_text(node: Option<&Node<'_>>) -> Result<String, String> {
    match Scalar::of_node(node) {
        Scalar::Text(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Scalar::Number(text) => Ok(text.into_owned()),
        Scalar::Null => Err("missing".to_string()),
        Scalar::Text(_) => Err("expected a string or a number, got a string".to_string()),
        Scalar::Bool(_) => Err("expected a string or a number, got a boolean".to_string()),
        Scalar::Other(kind) => Err(format!("expected a string or a number, got {kind}")),
    }
}

fn optional_text(node: Option<&Node<'_>>) -> Result<Option<String>, String> {
    match Scalar::of_node(node) {
        Scalar::Null => Ok(None),
        Scalar::Text(s) => Ok(Some(s.to_string())),
        Scalar::Number(text) => Ok(Some(text.into_owned())),
        Scalar::Bool(b) => Ok(Some(b.to_string())),
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
        decode_page(body.as_bytes()).map(|mut page| page.users.remove(0))
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
}
