//! The fixed schema of snapshot files.

use polars::prelude::*;

/// Version of the snapshot file layout, stored in each file's metadata.
/// It changes when a column is added, removed or changes type.
pub const SCHEMA_VERSION: &str = "1";

/// Column names in file order.
pub const COLUMNS: [&str; 27] = [
    "snapshot_at",
    "account_id",
    "user_id",
    "email",
    "name",
    "first_name",
    "last_name",
    "user_created",
    "company_name",
    "manager",
    "manager_email",
    "department",
    "country",
    "branch_id",
    "branch_name",
    "groups",
    "enrolled_courses",
    "not_completed_courses",
    "overdue_courses",
    "enrolled_materials",
    "not_completed_materials",
    "phishing_campaigns",
    "emails_sent",
    "links_clicked",
    "data_submitted",
    "last_action",
    "average_score",
];

/// Returns the UTC microsecond timestamp type of `snapshot_at` and `user_created`.
pub fn timestamp_type() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

/// Returns the type of the `groups` column, a list of `{id, name}` structs.
pub fn groups_type() -> DataType {
    DataType::List(Box::new(group_struct_type()))
}

pub fn group_struct_type() -> DataType {
    DataType::Struct(vec![
        Field::new("id".into(), DataType::String),
        Field::new("name".into(), DataType::String),
    ])
}

/// Returns the full schema of a snapshot file, with `extra` last.
pub fn snapshot_schema() -> Schema {
    let mut schema = Schema::default();
    for name in COLUMNS {
        schema.insert(name.into(), column_type(name));
    }
    schema.insert("extra".into(), DataType::String);
    schema
}

fn column_type(name: &str) -> DataType {
    match name {
        "snapshot_at" | "user_created" => timestamp_type(),
        "groups" => groups_type(),
        "average_score" => DataType::Float64,
        "enrolled_courses"
        | "not_completed_courses"
        | "overdue_courses"
        | "enrolled_materials"
        | "not_completed_materials"
        | "phishing_campaigns"
        | "emails_sent"
        | "links_clicked"
        | "data_submitted" => DataType::Int64,
        _ => DataType::String,
    }
}
