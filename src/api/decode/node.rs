//! A JSON value tree for the properties the documentation does not name.
//!
//! Undocumented properties are rare, so they are parsed into this small
//! tree and converted into `serde_json` values only when a user has some.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The token under which serde_json's `arbitrary_precision` hands a number
/// to a visitor: a one-entry map whose value is the number's text.
pub(super) const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A JSON value of a response body. Strings without escapes borrow from the
/// body, numbers keep their text as sent, and objects keep their members in
/// order, duplicates included, so that a user costs a few allocations
/// instead of an ordered hash map per object.
#[derive(Debug)]
pub(super) enum Node<'a> {
    Null,
    Bool(bool),
    Number(Cow<'a, str>),
    Text(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// An object's members, in the order sent.
pub(super) type Members<'a> = Vec<(Cow<'a, str>, Node<'a>)>;

impl Node<'_> {
    /// Converts to a `serde_json::Value`, as undocumented properties are kept.
    pub(super) fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(text) => text
                .parse::<serde_json::Number>()
                .map_or_else(|_| Value::String(text.to_string()), Value::Number),
            Node::Text(text) => Value::String(text.to_string()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(members) => Value::Object(to_map(members.iter())),
        }
    }
}

/// Builds a map as serde_json would parse the object: a repeated key keeps
/// its first position and its last value.
pub(super) fn to_map<'n, 'a: 'n>(
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
        Ok(Node::Number(Cow::Owned(value.to_string())))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Cow::Owned(value.to_string())))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Node<'de>, E> {
        Ok(serde_json::Number::from_f64(value)
            .map_or(Node::Null, |n| Node::Number(Cow::Owned(n.to_string()))))
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
                let Key(text) = map.next_value()?;
                return Ok(Node::Number(text));
            }
            members.push((key, map.next_value()?));
        }
        Ok(Node::Object(members))
    }
}

/// An object key, borrowed from the body when it has no escapes.
pub(super) struct Key<'a>(pub(super) Cow<'a, str>);

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
