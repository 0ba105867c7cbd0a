//! The users-summary JSON shape of a simulated user.

use chrono::SecondsFormat;
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value, json};

use super::sim::SimUser;

/// Returns a JSON number for decimal digits, or a string if `digits` is not
/// an unsigned 64-bit integer.
pub(crate) fn id_number(digits: &str) -> Value {
    match digits.parse::<u64>() {
        Ok(number) => Value::Number(Number::from(number)),
        Err(_) => Value::String(digits.to_string()),
    }
}

fn text_or_null(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_string())
    }
}

impl SimUser {
    /// Renders the user as one entry of the report's `result` array.
    ///
    /// Ids are JSON numbers, `averageScore` is rounded to an integer, and empty
    /// `manager`, `managerEmail` and `lastAction` become `null`.
    pub fn to_api_json(&self) -> Value {
        let mut entry = Map::new();
        for (key, value) in self.counters() {
            entry.insert(key.to_string(), Value::from(value));
        }
        entry.insert("lastAction".into(), text_or_null(&self.last_action));
        let score = self.average_score.map(|score| score.round() as i64);
        entry.insert("averageScore".into(), json!(score));
        entry.insert("user".into(), self.user_json());
        Value::Object(entry)
    }

    /// Returns the nine counters with their JSON property names, in report order.
    pub fn counters(&self) -> [(&'static str, i64); 9] {
        [
            ("enrolledCourses", self.enrolled_courses),
            ("notCompletedCourses", self.not_completed_courses),
            ("overdueCourses", self.overdue_courses),
            ("enrolledMaterials", self.enrolled_materials),
            ("notCompletedMaterials", self.not_completed_materials),
            ("phishingCampaigns", self.phishing_campaigns),
            ("emailsSent", self.emails_sent),
            ("linksClicked", self.links_clicked),
            ("dataSubmitted", self.data_submitted),
        ]
    }

    fn user_json(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|(id, name)| json!({"id": id_number(id), "name": name}))
            .collect();
        json!({
            "id": id_number(&self.id),
            "email": self.email,
            "created": self.created.to_rfc3339_opts(SecondsFormat::Secs, true),
            "name": self.name,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "meta": {
                "companyName": self.company,
                "manager": text_or_null(&self.manager),
                "managerEmail": text_or_null(&self.manager_email),
                "department": self.department,
                "country": self.country,
            },
            "branch": {"id": id_number(&self.branch_id), "name": self.branch_name},
            "groups": groups,
        })
    }
}

/// Decimal digits served as a JSON number, or as a string if they do not fit
/// an unsigned 64-bit integer.
struct IdDigits<'a>(&'a str);

impl Serialize for IdDigits<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.parse::<u64>() {
            Ok(number) => serializer.serialize_u64(number),
            Err(_) => serializer.serialize_str(self.0),
        }
    }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView<'a> {
    enrolled_courses: i64,
    not_completed_courses: i64,
    overdue_courses: i64,
    enrolled_materials: i64,
    not_completed_materials: i64,
    phishing_campaigns: i64,
    emails_sent: i64,
    links_clicked: i64,
    data_submitted: i64,
    last_action: Option<&'a str>,
    average_score: Option<i64>,
    user: UserView<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView<'a> {
    id: IdDigits<'a>,
    email: &'a str,
    created: String,
    name: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    meta: MetaView<'a>,
    branch: GroupView<'a>,
    groups: Vec<GroupView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaView<'a> {
    company_name: &'a str,
    manager: Option<&'a str>,
    manager_email: Option<&'a str>,
    department: &'a str,
    country: &'a str,
}

/// An `{id, name}` pair, the shape of both `branch` and each group.
#[derive(Serialize)]
struct GroupView<'a> {
    id: IdDigits<'a>,
    name: &'a str,
}

/// Writes the same JSON as `SimUser::to_api_json`, without building a
/// `serde_json::Value` first, which is several times faster for large snapshots.
impl Serialize for SimUser {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let user = UserView {
            id: IdDigits(&self.id),
            email: &self.email,
            created: self.created.to_rfc3339_opts(SecondsFormat::Secs, true),
            name: &self.name,
            first_name: &self.first_name,
            last_name: &self.last_name,
            meta: MetaView {
                company_name: &self.company,
                manager: non_empty(&self.manager),
                manager_email: non_empty(&self.manager_email),
                department: &self.department,
                country: &self.country,
            },
            branch: GroupView {
                id: IdDigits(&self.branch_id),
                name: &self.branch_name,
            },
            groups: self
                .groups
                .iter()
                .map(|(id, name)| GroupView {
                    id: IdDigits(id),
                    name,
                })
                .collect(),
        };
        EntryView {
            enrolled_courses: self.enrolled_courses,
            not_completed_courses: self.not_completed_courses,
            overdue_courses: self.overdue_courses,
            enrolled_materials: self.enrolled_materials,
            not_completed_materials: self.not_completed_materials,
            phishing_campaigns: self.phishing_campaigns,
            emails_sent: self.emails_sent,
            links_clicked: self.links_clicked,
            data_submitted: self.data_submitted,
            last_action: non_empty(&self.last_action),
            average_score: self.average_score.map(|score| score.round() as i64),
            user,
        }
        .serialize(serializer)
    }
}
