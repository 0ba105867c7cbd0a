//! One pass over a page body that sorts each user's values into slots.
//!
//! serde_json drives a set of visitors, one for each level of the page.
//! Documented properties land in slots that borrow their text from the body,
//! so a repeated key keeps its last value and nothing is allocated for a
//! string without escapes. Undocumented properties are parsed into
//! [`Node`]s. When a user object ends, [`super::finish_user`] checks its
//! slots and appends the user to the page's [`UserBatch`].

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::DecodeError;
use super::node::{Key, Members, NUMBER_TOKEN};
use crate::snapshot::batch::UserBatch;
use crate::snapshot::record::COUNTER_FIELDS;

/// A documented scalar as sent. Integers that fit 64 bits arrive as numbers,
/// and other numbers keep their text, as serde_json's `arbitrary_precision`
/// hands them over.
#[derive(Debug)]
pub(super) enum Raw<'de> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Number(Cow<'de, str>),
    Text(Cow<'de, str>),
    /// An array or an object, named by its kind. Its content is skipped.
    Other(&'static str),
}

impl Raw<'_> {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Bool(_) => "a boolean",
            Raw::Unsigned(_) | Raw::Signed(_) | Raw::Number(_) => "a number",
            Raw::Text(_) => "a string",
            Raw::Other(kind) => kind,
        }
    }
}

/// The handler of one level of the page. It turns scalars into a [`Raw`]
/// and skips arrays and objects unless it reads them.
trait Level<'de>: Sized {
    type Value;

    fn scalar(self, raw: Raw<'de>) -> Self::Value;

    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.scalar(Raw::Other("an array")))
    }

    /// Reads an object whose first key, if any, is already taken from `map`.
    fn object<A: MapAccess<'de>>(
        self,
        first: Option<Cow<'de, str>>,
        mut map: A,
    ) -> Result<Self::Value, A::Error> {
        if first.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(self.scalar(Raw::Other("an object")))
    }
}

/// Runs a [`Level`] on the next value of the input.
struct Dispatch<'de, L>(L, PhantomData<&'de ()>);

fn dispatch<'de, L: Level<'de>>(level: L) -> Dispatch<'de, L> {
    Dispatch(level, PhantomData)
}

impl<'de, L: Level<'de>> DeserializeSeed<'de> for Dispatch<'de, L> {
    type Value = L::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<L::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, L: Level<'de>> Visitor<'de> for Dispatch<'de, L> {
    type Value = L::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<L::Value, E> {
        Ok(self.0.scalar(Raw::Null))
    }

    fn visit_none<E>(self) -> Result<L::Value, E> {
        Ok(self.0.scalar(Raw::Null))
    }

    fn visit_bool<E>(self, value: bool) -> Result<L::Value, E> {
        Ok(self.0.scalar(Raw::Bool(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<L::Value, E> {
        Ok(self.0.scalar(Raw::Unsigned(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<L::Value, E> {
        Ok(self.0.scalar(Raw::Signed(value)))
    }

    fn visit_f64<E>(self, value: f64) -> Result<L::Value, E> {
        // Not reached with `arbitrary_precision`, which sends such numbers
        // as text; kept so that the visitor stays correct without it.
        let raw = serde_json::Number::from_f64(value).map_or(Raw::Null, |number| {
            Raw::Number(Cow::Owned(number.to_string()))
        });
        Ok(self.0.scalar(raw))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<L::Value, E> {
        Ok(self.0.scalar(Raw::Text(Cow::Borrowed(value))))
    }

    fn visit_str<E>(self, value: &str) -> Result<L::Value, E> {
        Ok(self.0.scalar(Raw::Text(Cow::Owned(value.to_string()))))
    }

    fn visit_string<E>(self, value: String) -> Result<L::Value, E> {
        Ok(self.0.scalar(Raw::Text(Cow::Owned(value))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<L::Value, A::Error> {
        self.0.array(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<L::Value, A::Error> {
        let first = map.next_key::<Key<'de>>()?.map(|Key(key)| key);
        if first.as_deref() == Some(NUMBER_TOKEN) {
            let Key(text) = map.next_value()?;
            return Ok(self.0.scalar(Raw::Number(text)));
        }
        self.0.object(first, map)
    }
}

/// Calls `each` with every key of an object and the map to read its value from.
fn for_each_key<'de, A: MapAccess<'de>>(
    first: Option<Cow<'de, str>>,
    mut map: A,
    mut each: impl FnMut(Cow<'de, str>, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut key = first;
    while let Some(name) = key {
        each(name, &mut map)?;
        key = map.next_key::<Key<'de>>()?.map(|Key(key)| key);
    }
    Ok(())
}

/// A scalar slot's value: [`Raw`] for scalars, the kind for anything else.
struct RawLevel;

impl<'de> Level<'de> for RawLevel {
    type Value = Raw<'de>;

    fn scalar(self, raw: Raw<'de>) -> Raw<'de> {
        raw
    }
}

fn read_raw<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Raw<'de>>, A::Error> {
    map.next_value_seed(dispatch(RawLevel)).map(Some)
}

/// The kind of value found for a nested object or array property.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nested {
    /// Null or absent.
    #[default]
    Null,
    /// The expected object or array, read into its slots.
    Read,
    /// Another kind of value, named by its kind.
    Wrong(&'static str),
}

fn nested_of(raw: &Raw<'_>) -> Nested {
    match raw {
        Raw::Null => Nested::Null,
        other => Nested::Wrong(other.kind()),
    }
}

/// The `result` property: what it was.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResultValue {
    #[default]
    Missing,
    Null,
    Array,
    Other(&'static str),
}

/// The parts of a page object.
#[derive(Debug, Default)]
pub(super) struct PageParts<'de> {
    pub(super) count: Option<Raw<'de>>,
    pub(super) fetched: Option<Raw<'de>>,
    pub(super) result: ResultValue,
    pub(super) users: UserBatch,
    /// The first user that could not be decoded, in page order.
    pub(super) first_error: Option<DecodeError>,
}

/// The top level: a page object, or `None` for any other JSON value.
pub(super) struct PageLevel;

impl<'de> Level<'de> for PageLevel {
    type Value = Option<PageParts<'de>>;

    fn scalar(self, _raw: Raw<'de>) -> Option<PageParts<'de>> {
        None
    }

    fn object<A: MapAccess<'de>>(
        self,
        first: Option<Cow<'de, str>>,
        map: A,
    ) -> Result<Option<PageParts<'de>>, A::Error> {
        let mut parts = PageParts::default();
        for_each_key(first, map, |key, map| {
            match key.as_ref() {
                "count" => parts.count = read_raw(map)?,
                "fetched" => parts.fetched = read_raw(map)?,
                "result" => {
                    // A repeated `result` replaces the users of the earlier one.
                    parts.users = UserBatch::default();
                    parts.first_error = None;
                    parts.result = map.next_value_seed(dispatch(ResultLevel {
                        users: &mut parts.users,
                        first_error: &mut parts.first_error,
                    }))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        })?;
        Ok(Some(parts))
    }
}

/// Parses a whole body. Returns `Ok(None)` when its top level is not an object.
pub(super) fn parse_page(body: &[u8]) -> Result<Option<PageParts<'_>>, serde_json::Error> {
    // Checking the whole body once is cheaper than serde_json checking each
    // string of a byte slice. On invalid UTF-8 the byte slice is parsed, so
    // that serde_json's error gives the position.
    match std::str::from_utf8(body) {
        Ok(text) => parse_with(serde_json::Deserializer::from_str(text)),
        Err(_) => parse_with(serde_json::Deserializer::from_slice(body)),
    }
}

fn parse_with<'de, R: serde_json::de::Read<'de>>(
    mut deserializer: serde_json::Deserializer<R>,
) -> Result<Option<PageParts<'de>>, serde_json::Error> {
    let parts = dispatch(PageLevel).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(parts)
}

struct ResultLevel<'p> {
    users: &'p mut UserBatch,
    first_error: &'p mut Option<DecodeError>,
}

impl<'de> Level<'de> for ResultLevel<'_> {
    type Value = ResultValue;

    fn scalar(self, raw: Raw<'de>) -> ResultValue {
        match raw {
            Raw::Null => ResultValue::Null,
            other => ResultValue::Other(other.kind()),
        }
    }

    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ResultValue, A::Error> {
        // One set of slots serves every entry, so that a user's slots are
        // reset in place rather than built and moved.
        let mut entry = EntrySlots::default();
        let mut groups = Vec::new();
        let mut index = 0;
        loop {
            if self.first_error.is_some() {
                // The page is rejected; the rest only has to be valid JSON.
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                continue;
            }
            let level = EntryLevel {
                entry: &mut entry,
                groups: &mut groups,
            };
            let Some(is_object) = seq.next_element_seed(dispatch(level))? else {
                break;
            };
            let slots = is_object.then_some(&entry);
            if let Err(error) = super::finish_user(slots, &groups, index, self.users) {
                *self.first_error = Some(error);
            }
            index += 1;
        }
        Ok(ResultValue::Array)
    }
}

/// One group entry of `user.groups`.
#[derive(Debug)]
pub(super) enum GroupSlot<'de> {
    Entry {
        id: Option<Raw<'de>>,
        name: Option<Raw<'de>>,
    },
    /// An entry that is not an object, named by its kind.
    NotObject(&'static str),
}

/// The slots of one `result` entry. `None` in a slot means absent.
#[derive(Debug, Default)]
pub(super) struct EntrySlots<'de> {
    /// The counters in the order of [`COUNTER_FIELDS`].
    pub(super) counters: [Option<Raw<'de>>; 9],
    pub(super) last_action: Option<Raw<'de>>,
    pub(super) average_score: Option<Raw<'de>>,
    /// Whether `user` is an object. It is `false` when absent or of another kind.
    pub(super) has_user: bool,
    pub(super) user: UserSlots<'de>,
    pub(super) unknown: Members<'de>,
}

/// The slots of a `user` object.
#[derive(Debug, Default)]
pub(super) struct UserSlots<'de> {
    pub(super) id: Option<Raw<'de>>,
    pub(super) email: Option<Raw<'de>>,
    pub(super) created: Option<Raw<'de>>,
    pub(super) name: Option<Raw<'de>>,
    pub(super) first_name: Option<Raw<'de>>,
    pub(super) last_name: Option<Raw<'de>>,
    pub(super) meta: Nested,
    /// `companyName`, `manager`, `managerEmail`, `department`, `country`.
    pub(super) meta_values: [Option<Raw<'de>>; 5],
    pub(super) meta_unknown: Members<'de>,
    pub(super) branch: Nested,
    /// `id` and `name`.
    pub(super) branch_values: [Option<Raw<'de>>; 2],
    pub(super) branch_unknown: Members<'de>,
    /// The entries themselves are in the vector passed to [`super::finish_user`].
    pub(super) groups: Nested,
    pub(super) unknown: Members<'de>,
}

/// The documented properties of `user.meta`, in [`UserSlots::meta_values`] order.
pub(super) const META_KEYS: [&str; 5] = [
    "companyName",
    "manager",
    "managerEmail",
    "department",
    "country",
];

/// The documented properties of `user.branch`, in [`UserSlots::branch_values`] order.
const BRANCH_KEYS: [&str; 2] = ["id", "name"];

/// One `result` entry, read into `entry`. Its value is whether it was an object.
struct EntryLevel<'g, 'de> {
    entry: &'g mut EntrySlots<'de>,
    groups: &'g mut Vec<GroupSlot<'de>>,
}

/// Returns the position of a counter's API name in [`COUNTER_FIELDS`].
pub(super) fn counter_index(key: &str) -> Option<usize> {
    let index = match key {
        "enrolledCourses" => 0,
        "notCompletedCourses" => 1,
        "overdueCourses" => 2,
        "enrolledMaterials" => 3,
        "notCompletedMaterials" => 4,
        "phishingCampaigns" => 5,
        "emailsSent" => 6,
        "linksClicked" => 7,
        "dataSubmitted" => 8,
        _ => return None,
    };
    debug_assert_eq!(COUNTER_FIELDS[index].0, key);
    Some(index)
}

impl<'de> Level<'de> for EntryLevel<'_, 'de> {
    type Value = bool;

    fn scalar(self, _raw: Raw<'de>) -> bool {
        false
    }

    fn object<A: MapAccess<'de>>(
        self,
        first: Option<Cow<'de, str>>,
        map: A,
    ) -> Result<bool, A::Error> {
        let entry = self.entry;
        *entry = EntrySlots::default();
        self.groups.clear();
        for_each_key(first, map, |key, map| {
            if let Some(index) = counter_index(&key) {
                entry.counters[index] = read_raw(map)?;
                return Ok(());
            }
            match key.as_ref() {
                "lastAction" => entry.last_action = read_raw(map)?,
                "averageScore" => entry.average_score = read_raw(map)?,
                "user" => {
                    // A repeated `user` replaces the earlier one as a whole.
                    entry.user = UserSlots::default();
                    self.groups.clear();
                    entry.has_user = map.next_value_seed(dispatch(UserLevel {
                        slots: &mut entry.user,
                        groups: self.groups,
                    }))?;
                }
                _ => entry.unknown.push((key, map.next_value()?)),
            }
            Ok(())
        })?;
        Ok(true)
    }
}

/// The `user` object. Its value is whether it was an object.
struct UserLevel<'s, 'de> {
    slots: &'s mut UserSlots<'de>,
    groups: &'s mut Vec<GroupSlot<'de>>,
}

impl<'de> Level<'de> for UserLevel<'_, 'de> {
    type Value = bool;

    fn scalar(self, _raw: Raw<'de>) -> bool {
        false
    }

    fn object<A: MapAccess<'de>>(
        self,
        first: Option<Cow<'de, str>>,
        map: A,
    ) -> Result<bool, A::Error> {
        let slots = self.slots;
        let groups = self.groups;
        for_each_key(first, map, |key, map| {
            match key.as_ref() {
                "id" => slots.id = read_raw(map)?,
                "email" => slots.email = read_raw(map)?,
                "created" => slots.created = read_raw(map)?,
                "name" => slots.name = read_raw(map)?,
                "firstName" => slots.first_name = read_raw(map)?,
                "lastName" => slots.last_name = read_raw(map)?,
                "meta" => {
                    slots.meta_values = Default::default();
                    slots.meta_unknown.clear();
                    slots.meta = map.next_value_seed(dispatch(KnownKeysLevel {
                        keys: &META_KEYS,
                        values: &mut slots.meta_values,
                        unknown: &mut slots.meta_unknown,
                    }))?;
                }
                "branch" => {
                    slots.branch_values = Default::default();
                    slots.branch_unknown.clear();
                    slots.branch = map.next_value_seed(dispatch(KnownKeysLevel {
                        keys: &BRANCH_KEYS,
                        values: &mut slots.branch_values,
                        unknown: &mut slots.branch_unknown,
                    }))?;
                }
                "groups" => {
                    groups.clear();
                    slots.groups = map.next_value_seed(dispatch(GroupsLevel {
                        groups: &mut *groups,
                    }))?;
                }
                _ => slots.unknown.push((key, map.next_value()?)),
            }
            Ok(())
        })?;
        Ok(true)
    }
}

/// An object with documented keys (`user.meta`, `user.branch`): each key
/// of `keys` fills the slot at its position in `values`, and other members
/// go to `unknown`.
struct KnownKeysLevel<'s, 'de> {
    keys: &'static [&'static str],
    values: &'s mut [Option<Raw<'de>>],
    unknown: &'s mut Members<'de>,
}

impl<'de> Level<'de> for KnownKeysLevel<'_, 'de> {
    type Value = Nested;

    fn scalar(self, raw: Raw<'de>) -> Nested {
        nested_of(&raw)
    }

    fn object<A: MapAccess<'de>>(
        self,
        first: Option<Cow<'de, str>>,
        map: A,
    ) -> Result<Nested, A::Error> {
        for_each_key(first, map, |key, map| {
            match self.keys.iter().position(|known| *known == key) {
                Some(index) => self.values[index] = read_raw(map)?,
                None => self.unknown.push((key, map.next_value()?)),
            }
            Ok(())
        })?;
        Ok(Nested::Read)
    }
}

struct GroupsLevel<'s, 'de> {
    groups: &'s mut Vec<GroupSlot<'de>>,
}

impl<'de> Level<'de> for GroupsLevel<'_, 'de> {
    type Value = Nested;

    fn scalar(self, raw: Raw<'de>) -> Nested {
        nested_of(&raw)
    }

    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nested, A::Error> {
        while let Some(slot) = seq.next_element_seed(dispatch(GroupLevel))? {
            self.groups.push(slot);
        }
        Ok(Nested::Read)
    }
}

/// One entry of `user.groups`. Properties besides `id` and `name` are not kept.
struct GroupLevel;

impl<'de> Level<'de> for GroupLevel {
    type Value = GroupSlot<'de>;

    fn scalar(self, raw: Raw<'de>) -> GroupSlot<'de> {
        GroupSlot::NotObject(raw.kind())
    }

    fn object<A: MapAccess<'de>>(
        self,
        first: Option<Cow<'de, str>>,
        map: A,
    ) -> Result<GroupSlot<'de>, A::Error> {
        let mut id = None;
        let mut name = None;
        for_each_key(first, map, |key, map| {
            match key.as_ref() {
                "id" => id = read_raw(map)?,
                "name" => name = read_raw(map)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        })?;
        Ok(GroupSlot::Entry { id, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_index_covers_every_counter() {
        for (index, (api_name, _)) in COUNTER_FIELDS.iter().enumerate() {
            assert_eq!(counter_index(api_name), Some(index), "{api_name}");
        }
        assert_eq!(counter_index("lastAction"), None);
    }
}
