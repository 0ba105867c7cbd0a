//! Users of one account stored by column, in the order of the snapshot file.
//!
//! Fetching 100,000 users as [`UserRecord`]s costs about 15 heap strings a
//! user, and the snapshot writer then copies every string again into Arrow
//! arrays. A [`UserBatch`] keeps each text column's values end to end in
//! one buffer, so the page decoder appends to it without allocating per
//! value and the writer reads it column by column.

use std::borrow::Cow;

use super::record::{Counters, GroupRef, UserRecord};

/// Nullable text values stored end to end in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextColumn {
    data: String,
    /// Byte offset in `data` where each value ends.
    ends: Vec<usize>,
    valid: Vec<bool>,
}

impl TextColumn {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Makes room for `values` more values, not for their text.
    fn reserve_values(&mut self, values: usize) {
        self.ends.reserve(values);
        self.valid.reserve(values);
    }

    pub fn push(&mut self, value: Option<&str>) {
        if let Some(text) = value {
            self.data.push_str(text);
        }
        self.ends.push(self.data.len());
        self.valid.push(value.is_some());
    }

    /// Returns the value at `index`, `None` for a null.
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn get(&self, index: usize) -> Option<&str> {
        if !self.valid[index] {
            return None;
        }
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        Some(&self.data[start..self.ends[index]])
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|index| self.get(index))
    }
}

/// The `groups` column: per user, null or a list of `{id, name}` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupsColumn {
    /// Number of entries in `ids` and `names` up to and including each user.
    ends: Vec<usize>,
    valid: Vec<bool>,
    ids: TextColumn,
    names: TextColumn,
}

impl GroupsColumn {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn reserve_users(&mut self, users: usize) {
        self.ends.reserve(users);
        self.valid.reserve(users);
    }

    /// Appends a user without groups (null, not an empty list).
    pub fn push_null(&mut self) {
        self.ends.push(self.ids.len());
        self.valid.push(false);
    }

    /// Appends a user's list of groups, which may be empty.
    pub fn push_list<'a>(&mut self, groups: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) {
        for (id, name) in groups {
            self.ids.push(Some(id));
            self.names.push(name);
        }
        self.ends.push(self.ids.len());
        self.valid.push(true);
    }

    /// Returns the range of entries of the user at `index`, `None` for null.
    pub fn range(&self, index: usize) -> Option<std::ops::Range<usize>> {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        self.valid[index].then_some(start..self.ends[index])
    }

    /// Returns the `(id, name)` of every entry, of all users in order.
    pub fn entries(&self) -> (&TextColumn, &TextColumn) {
        (&self.ids, &self.names)
    }

    /// Returns the entry offsets of an Arrow list array: `len() + 1` values
    /// starting at 0.
    pub fn offsets(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(0).chain(self.ends.iter().copied())
    }

    pub fn validity(&self) -> &[bool] {
        &self.valid
    }

    fn get(&self, index: usize) -> Option<Vec<GroupRef>> {
        self.range(index).map(|range| {
            range
                .map(|entry| GroupRef {
                    id: self.ids.get(entry).unwrap_or_default().to_string(),
                    name: self.names.get(entry).map(str::to_string),
                })
                .collect()
        })
    }

    fn push_from(&mut self, other: &GroupsColumn, index: usize) {
        match other.range(index) {
            None => self.push_null(),
            Some(range) => self.push_list(range.map(|entry| {
                (
                    other.ids.get(entry).unwrap_or_default(),
                    other.names.get(entry),
                )
            })),
        }
    }
}

/// A group's `id` and `name` as [`UserBatch::push`] appends them.
pub type GroupText<'a> = (Cow<'a, str>, Option<Cow<'a, str>>);

/// One user's values, borrowed, as [`UserBatch::push`] appends them. Text
/// that the decoder had to build (unescaped strings, numbers sent where
/// text was documented) is owned.
#[derive(Debug, Default)]
pub struct UserRow<'a> {
    pub user_id: Cow<'a, str>,
    pub email: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub first_name: Option<Cow<'a, str>>,
    pub last_name: Option<Cow<'a, str>>,
    pub user_created: Option<i64>,
    pub company_name: Option<Cow<'a, str>>,
    pub manager: Option<Cow<'a, str>>,
    pub manager_email: Option<Cow<'a, str>>,
    pub department: Option<Cow<'a, str>>,
    pub country: Option<Cow<'a, str>>,
    pub branch_id: Option<Cow<'a, str>>,
    pub branch_name: Option<Cow<'a, str>>,
    /// `None` for null or absent, else each group.
    pub groups: Option<&'a [GroupText<'a>]>,
    pub counters: [Option<i64>; 9],
    pub last_action: Option<Cow<'a, str>>,
    pub average_score: Option<f64>,
    pub extra: Option<String>,
}

/// Users of one account, column by column, in the order of the snapshot
/// schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserBatch {
    pub user_id: TextColumn,
    pub email: TextColumn,
    pub name: TextColumn,
    pub first_name: TextColumn,
    pub last_name: TextColumn,
    /// Microseconds since the Unix epoch, UTC.
    pub user_created: Vec<Option<i64>>,
    pub company_name: TextColumn,
    pub manager: TextColumn,
    pub manager_email: TextColumn,
    pub department: TextColumn,
    pub country: TextColumn,
    pub branch_id: TextColumn,
    pub branch_name: TextColumn,
    pub groups: GroupsColumn,
    /// The counters in the order of [`super::record::COUNTER_FIELDS`].
    pub counters: [Vec<Option<i64>>; 9],
    pub last_action: TextColumn,
    pub average_score: Vec<Option<f64>>,
    /// Undocumented properties as a JSON object text, as in [`UserRecord::extra`].
    pub extra: TextColumn,
}

impl UserBatch {
    /// Creates an empty batch with room for `users` users in every column
    /// of fixed-size values, so that a page of the expected size is
    /// appended without growing them. Text grows as it comes.
    pub fn with_capacity(users: usize) -> UserBatch {
        let mut batch = UserBatch::default();
        for column in [
            &mut batch.user_id,
            &mut batch.email,
            &mut batch.name,
            &mut batch.first_name,
            &mut batch.last_name,
            &mut batch.company_name,
            &mut batch.manager,
            &mut batch.manager_email,
            &mut batch.department,
            &mut batch.country,
            &mut batch.branch_id,
            &mut batch.branch_name,
            &mut batch.last_action,
            &mut batch.extra,
        ] {
            column.reserve_values(users);
        }
        batch.groups.reserve_users(users);
        batch.user_created.reserve(users);
        for column in &mut batch.counters {
            column.reserve(users);
        }
        batch.average_score.reserve(users);
        batch
    }

    pub fn len(&self) -> usize {
        self.user_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user_id.is_empty()
    }

    /// Returns the id of the user at `index`.
    pub fn user_id(&self, index: usize) -> &str {
        self.user_id.get(index).unwrap_or_default()
    }

    pub fn user_ids(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|index| self.user_id(index))
    }

    /// Appends one user.
    pub fn push(&mut self, row: &UserRow<'_>) {
        self.user_id.push(Some(&row.user_id));
        self.email.push(row.email.as_deref());
        self.name.push(row.name.as_deref());
        self.first_name.push(row.first_name.as_deref());
        self.last_name.push(row.last_name.as_deref());
        self.user_created.push(row.user_created);
        self.company_name.push(row.company_name.as_deref());
        self.manager.push(row.manager.as_deref());
        self.manager_email.push(row.manager_email.as_deref());
        self.department.push(row.department.as_deref());
        self.country.push(row.country.as_deref());
        self.branch_id.push(row.branch_id.as_deref());
        self.branch_name.push(row.branch_name.as_deref());
        match row.groups {
            None => self.groups.push_null(),
            Some(groups) => self.groups.push_list(
                groups
                    .iter()
                    .map(|(id, name)| (id.as_ref(), name.as_deref())),
            ),
        }
        for (column, value) in self.counters.iter_mut().zip(row.counters) {
            column.push(value);
        }
        self.last_action.push(row.last_action.as_deref());
        self.average_score.push(row.average_score);
        self.extra.push(row.extra.as_deref());
    }

    /// Appends one record.
    pub fn push_record(&mut self, record: &UserRecord) {
        fn text(value: &Option<String>) -> Option<Cow<'_, str>> {
            value.as_deref().map(Cow::Borrowed)
        }
        let groups: Option<Vec<_>> = record.groups.as_ref().map(|groups| {
            groups
                .iter()
                .map(|g| (Cow::Borrowed(g.id.as_str()), text(&g.name)))
                .collect()
        });
        let row = UserRow {
            user_id: Cow::Borrowed(&record.user_id),
            email: text(&record.email),
            name: text(&record.name),
            first_name: text(&record.first_name),
            last_name: text(&record.last_name),
            user_created: record.user_created,
            company_name: text(&record.company_name),
            manager: text(&record.manager),
            manager_email: text(&record.manager_email),
            department: text(&record.department),
            country: text(&record.country),
            branch_id: text(&record.branch_id),
            branch_name: text(&record.branch_name),
            groups: groups.as_deref(),
            counters: record.counters.values(),
            last_action: text(&record.last_action),
            average_score: record.average_score,
            extra: record.extra.clone(),
        };
        self.push(&row);
    }

    pub fn from_records(records: &[UserRecord]) -> UserBatch {
        let mut batch = UserBatch::default();
        for record in records {
            batch.push_record(record);
        }
        batch
    }

    /// Returns the user at `index` as a record.
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn record(&self, index: usize) -> UserRecord {
        let text = |column: &TextColumn| column.get(index).map(str::to_string);
        let mut counters = Counters::default();
        for (position, column) in self.counters.iter().enumerate() {
            counters.set(position, column[index]);
        }
        UserRecord {
            user_id: self.user_id(index).to_string(),
            email: text(&self.email),
            name: text(&self.name),
            first_name: text(&self.first_name),
            last_name: text(&self.last_name),
            user_created: self.user_created[index],
            company_name: text(&self.company_name),
            manager: text(&self.manager),
            manager_email: text(&self.manager_email),
            department: text(&self.department),
            country: text(&self.country),
            branch_id: text(&self.branch_id),
            branch_name: text(&self.branch_name),
            groups: self.groups.get(index),
            counters,
            last_action: text(&self.last_action),
            average_score: self.average_score[index],
            extra: text(&self.extra),
        }
    }

    pub fn to_records(&self) -> Vec<UserRecord> {
        (0..self.len()).map(|index| self.record(index)).collect()
    }

    /// Appends the user at `index` of `other`.
    pub fn push_from(&mut self, other: &UserBatch, index: usize) {
        self.user_id.push(other.user_id.get(index));
        self.email.push(other.email.get(index));
        self.name.push(other.name.get(index));
        self.first_name.push(other.first_name.get(index));
        self.last_name.push(other.last_name.get(index));
        self.user_created.push(other.user_created[index]);
        self.company_name.push(other.company_name.get(index));
        self.manager.push(other.manager.get(index));
        self.manager_email.push(other.manager_email.get(index));
        self.department.push(other.department.get(index));
        self.country.push(other.country.get(index));
        self.branch_id.push(other.branch_id.get(index));
        self.branch_name.push(other.branch_name.get(index));
        self.groups.push_from(&other.groups, index);
        for (column, values) in self.counters.iter_mut().zip(&other.counters) {
            column.push(values[index]);
        }
        self.last_action.push(other.last_action.get(index));
        self.average_score.push(other.average_score[index]);
        self.extra.push(other.extra.get(index));
    }
}

/// The users of one snapshot in consecutive batches, one per fetched page,
/// so that the pages need not be copied into one batch before writing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserBatches {
    parts: Vec<UserBatch>,
}

impl UserBatches {
    pub fn from_records(records: &[UserRecord]) -> UserBatches {
        UserBatch::from_records(records).into()
    }

    /// Returns the number of users in all batches.
    pub fn len(&self) -> usize {
        self.parts.iter().map(UserBatch::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(UserBatch::is_empty)
    }

    pub fn push(&mut self, batch: UserBatch) {
        self.parts.push(batch);
    }

    pub fn parts(&self) -> &[UserBatch] {
        &self.parts
    }

    pub fn into_parts(self) -> Vec<UserBatch> {
        self.parts
    }

    pub fn user_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.parts.iter().flat_map(UserBatch::user_ids)
    }

    pub fn to_records(&self) -> Vec<UserRecord> {
        self.parts.iter().flat_map(UserBatch::to_records).collect()
    }
}

impl From<UserBatch> for UserBatches {
    fn from(batch: UserBatch) -> UserBatches {
        UserBatches { parts: vec![batch] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        id: &str,
        department: Option<&str>,
        groups: Option<&[(&str, Option<&str>)]>,
    ) -> UserRecord {
        let mut record = UserRecord {
            user_id: id.to_string(),
            department: department.map(str::to_string),
            groups: groups.map(|groups| {
                groups
                    .iter()
                    .map(|(id, name)| GroupRef {
                        id: id.to_string(),
                        name: name.map(str::to_string),
                    })
                    .collect()
            }),
            user_created: Some(1_700_000_000_000_000),
            average_score: Some(87.5),
            extra: Some(r#"{"note":"Ærø"}"#.to_string()),
            ..UserRecord::default()
        };
        record.counters.emails_sent = Some(4);
        record.counters.links_clicked = None;
        record
    }

    fn samples() -> Vec<UserRecord> {
        vec![
            sample(
                "u-æ",
                Some("Økonomi"),
                Some(&[("g1", Some("Ledelse")), ("g2", None)]),
            ),
            sample("u-ø", None, None),
            sample("", Some(""), Some(&[])),
            sample(
                "u-å",
                Some("Salg og Service"),
                Some(&[("g3", Some("Ærø Øst"))]),
            ),
        ]
    }

    #[test]
    fn records_round_trip() {
        let records = samples();
        let batch = UserBatch::from_records(&records);
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.to_records(), records);
        let ids: Vec<&str> = batch.user_ids().collect();
        assert_eq!(ids, ["u-æ", "u-ø", "", "u-å"]);
    }

    #[test]
    fn empty_and_null_text_differ() {
        let batch = UserBatch::from_records(&samples());
        let departments: Vec<Option<&str>> = batch.department.iter().collect();
        assert_eq!(
            departments,
            [Some("Økonomi"), None, Some(""), Some("Salg og Service")]
        );
    }

    #[test]
    fn groups_keep_null_empty_and_entries() {
        let batch = UserBatch::from_records(&samples());
        assert_eq!(batch.groups.range(0), Some(0..2));
        assert_eq!(batch.groups.range(1), None);
        assert_eq!(batch.groups.range(2), Some(2..2));
        assert_eq!(batch.groups.range(3), Some(2..3));
        let offsets: Vec<usize> = batch.groups.offsets().collect();
        assert_eq!(offsets, [0, 2, 2, 2, 3]);
        assert_eq!(batch.groups.validity(), [true, false, true, true]);
        let (ids, names) = batch.groups.entries();
        assert_eq!(
            ids.iter().collect::<Vec<_>>(),
            [Some("g1"), Some("g2"), Some("g3")]
        );
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            [Some("Ledelse"), None, Some("Ærø Øst")]
        );
    }

    #[test]
    fn batches_count_and_list_every_part() {
        let records = samples();
        let mut batches = UserBatches::default();
        assert!(batches.is_empty());
        batches.push(UserBatch::from_records(&records[..3]));
        batches.push(UserBatch::default());
        batches.push(UserBatch::from_records(&records[3..]));
        assert_eq!(batches.len(), 4);
        assert_eq!(
            batches.user_ids().collect::<Vec<_>>(),
            ["u-æ", "u-ø", "", "u-å"]
        );
        assert_eq!(batches.to_records(), records);
    }

    #[test]
    fn push_from_copies_one_user() {
        let records = samples();
        let source = UserBatch::from_records(&records);
        let mut batch = UserBatch::default();
        batch.push_from(&source, 3);
        batch.push_from(&source, 1);
        assert_eq!(batch.to_records(), [records[3].clone(), records[1].clone()]);
    }
}
