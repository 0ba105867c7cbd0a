//! The common page, decoded straight into the batch.
//!
//! Most pages contain documented properties only, each once per object, with
//! the documented kinds of value. Such a page is read here byte by byte
//! into the page's [`UserBatch`], without the visitors of [`super::stream`]
//! and without allocating for a string that has no escapes. Anything
//! else stops the reader with [`Unusual`]: an undocumented or repeated
//! property, a value of another kind, a user that would be an error, a
//! syntax error, a lone surrogate escape. The caller then decodes the body
//! with the general decoder, whose page or error is returned, so this
//! reader only has to agree with it on the pages it accepts.
//!
//! Values go through the general decoder's readers wherever they differ
//! from plain text, so a value accepted here is the value it would give.

use std::borrow::Cow;

use super::stream::{META_KEYS, Raw, counter_index};
use super::{Page, id_text, lenient_float, page_count, parse_timestamp, raw_int};
use crate::snapshot::batch::{GroupText, UserBatch, UserRow};

/// The page is not one this reader decodes; the general decoder takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unusual;

type Read<T> = Result<T, Unusual>;

fn accepted<T, E>(result: Result<T, E>) -> Read<T> {
    result.map_err(|_| Unusual)
}

/// The maximum number of users a batch is sized for before its page is
/// read, so that a very large requested page size reserves at most this
/// much up front.
const MAX_EXPECTED_USERS: usize = 10_000;

/// Decodes a whole body of documented properties only, sizing the batch
/// for `expected` users.
pub(super) fn decode(text: &str, expected: usize) -> Read<Page> {
    let mut reader = Reader::new(text);
    reader.expect(b'{')?;
    let (mut count, mut fetched, mut users) = (None, None, None);
    let mut members = Members::new();
    while let Some(key) = members.next_key(&mut reader)? {
        match &*key {
            "count" if count.is_none() => count = Some(reader.scalar()?),
            "fetched" if fetched.is_none() => fetched = Some(reader.scalar()?),
            "result" if users.is_none() => users = Some(result(&mut reader, expected)?),
            _ => return Err(Unusual),
        }
    }
    reader.finish()?;
    Ok(Page {
        count: accepted(page_count(count.as_ref(), "count"))?,
        fetched: accepted(page_count(fetched.as_ref(), "fetched"))?,
        users: users.ok_or(Unusual)?,
    })
}

fn result(reader: &mut Reader<'_>, expected: usize) -> Read<UserBatch> {
    reader.expect(b'[')?;
    let mut users = UserBatch::with_capacity(expected.min(MAX_EXPECTED_USERS));
    let mut groups = Vec::new();
    let mut elements = Elements::new();
    while elements.next(reader)? {
        entry(reader, &mut users, &mut groups)?;
    }
    Ok(users)
}

/// A set of the properties of an object read so far, one bit each, so
/// that a repeated one stops the reader.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn first(&mut self, bit: usize) -> Read<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return Err(Unusual);
        }
        self.0 |= mask;
        Ok(())
    }
}

/// Reads one `result` entry and appends its user.
fn entry<'de>(
    reader: &mut Reader<'de>,
    users: &mut UserBatch,
    groups: &mut Vec<GroupText<'de>>,
) -> Read<()> {
    reader.expect(b'{')?;
    let mut row = UserRow::default();
    let mut seen = Seen::default();
    let mut has_user = false;
    let mut has_groups = false;
    let mut members = Members::new();
    while let Some(key) = members.next_key(reader)? {
        if let Some(index) = counter_index(&key) {
            seen.first(index)?;
            row.counters[index] = reader.counter()?;
            continue;
        }
        match &*key {
            "lastAction" => {
                seen.first(9)?;
                row.last_action = reader.text()?;
            }
            "averageScore" => {
                seen.first(10)?;
                row.average_score = accepted(lenient_float(Some(&reader.scalar()?)))?;
            }
            "user" => {
                seen.first(11)?;
                has_groups = user(reader, &mut row, groups)?;
                has_user = true;
            }
            _ => return Err(Unusual),
        }
    }
    if !has_user {
        return Err(Unusual);
    }
    users.push(&UserRow {
        groups: has_groups.then_some(groups.as_slice()),
        ..row
    });
    Ok(())
}

/// Reads the `user` object into `row`, and its groups into `groups`.
/// Returns whether `groups` was a list rather than null or absent.
fn user<'de>(
    reader: &mut Reader<'de>,
    row: &mut UserRow<'de>,
    groups: &mut Vec<GroupText<'de>>,
) -> Read<bool> {
    reader.expect(b'{')?;
    let mut seen = Seen::default();
    let mut has_id = false;
    let mut has_groups = false;
    let mut members = Members::new();
    while let Some(key) = members.next_key(reader)? {
        match &*key {
            "id" => {
                seen.first(0)?;
                row.user_id = reader.id()?;
                has_id = true;
            }
            "email" => {
                seen.first(1)?;
                row.email = reader.text()?;
            }
            "created" => {
                seen.first(2)?;
                row.user_created = match reader.text()? {
                    None => None,
                    Some(text) => Some(accepted(parse_timestamp(&text))?),
                };
            }
            "name" => {
                seen.first(3)?;
                row.name = reader.text()?;
            }
            "firstName" => {
                seen.first(4)?;
                row.first_name = reader.text()?;
            }
            "lastName" => {
                seen.first(5)?;
                row.last_name = reader.text()?;
            }
            "meta" => {
                seen.first(6)?;
                meta(reader, row)?;
            }
            "branch" => {
                seen.first(7)?;
                branch(reader, row)?;
            }
            "groups" => {
                seen.first(8)?;
                has_groups = read_groups(reader, groups)?;
            }
            _ => return Err(Unusual),
        }
    }
    if has_id { Ok(has_groups) } else { Err(Unusual) }
}

fn meta<'de>(reader: &mut Reader<'de>, row: &mut UserRow<'de>) -> Read<()> {
    if !reader.open_or_null(b'{')? {
        return Ok(());
    }
    let mut seen = Seen::default();
    let mut members = Members::new();
    while let Some(key) = members.next_key(reader)? {
        let index = META_KEYS
            .iter()
            .position(|known| *known == key)
            .ok_or(Unusual)?;
        seen.first(index)?;
        let value = reader.text()?;
        let slot = match index {
            0 => &mut row.company_name,
            1 => &mut row.manager,
            2 => &mut row.manager_email,
            3 => &mut row.department,
            _ => &mut row.country,
        };
        *slot = value;
    }
    Ok(())
}

fn branch<'de>(reader: &mut Reader<'de>, row: &mut UserRow<'de>) -> Read<()> {
    if !reader.open_or_null(b'{')? {
        return Ok(());
    }
    let mut seen = Seen::default();
    let mut members = Members::new();
    while let Some(key) = members.next_key(reader)? {
        match &*key {
            "id" => {
                seen.first(0)?;
                row.branch_id = if reader.peek()? == b'n' {
                    reader.literal(b"null")?;
                    None
                } else {
                    Some(reader.id()?)
                };
            }
            "name" => {
                seen.first(1)?;
                row.branch_name = reader.text()?;
            }
            _ => return Err(Unusual),
        }
    }
    Ok(())
}

/// Reads `user.groups` into `groups`. Returns whether it was a list
/// rather than null.
fn read_groups<'de>(reader: &mut Reader<'de>, groups: &mut Vec<GroupText<'de>>) -> Read<bool> {
    groups.clear();
    if !reader.open_or_null(b'[')? {
        return Ok(false);
    }
    let mut elements = Elements::new();
    while elements.next(reader)? {
        reader.expect(b'{')?;
        let mut seen = Seen::default();
        let (mut id, mut name) = (None, None);
        let mut members = Members::new();
        while let Some(key) = members.next_key(reader)? {
            match &*key {
                "id" => {
                    seen.first(0)?;
                    id = Some(reader.id()?);
                }
                "name" => {
                    seen.first(1)?;
                    name = reader.text()?;
                }
                _ => return Err(Unusual),
            }
        }
        groups.push((id.ok_or(Unusual)?, name));
    }
    Ok(true)
}

/// A cursor over a body known to be UTF-8.
struct Reader<'de> {
    text: &'de str,
    bytes: &'de [u8],
    pos: usize,
}

/// Checks whether a byte ends the plain run of a string: a quote, a
/// backslash or a control character, which JSON does not allow unescaped.
fn ends_run(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// Marks the bytes of `word` (little-endian) that end a plain run, each
/// with its top bit. Bits above the lowest mark may be wrong, because a
/// borrow runs on from a marked byte, so only the lowest one counts.
fn run_enders(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let below = |limit: u8| word.wrapping_sub(ONES * u64::from(limit)) & !word & TOPS;
    let zero = |bits: u64| bits.wrapping_sub(ONES) & !bits & TOPS;
    below(0x20) | zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')))
}

impl<'de> Reader<'de> {
    fn new(text: &'de str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Returns the next byte that is not whitespace, without reading it.
    fn peek(&mut self) -> Read<u8> {
        self.skip_whitespace();
        self.bytes.get(self.pos).copied().ok_or(Unusual)
    }

    /// Reads `byte` after any whitespace.
    fn expect(&mut self, byte: u8) -> Read<()> {
        if self.peek()? != byte {
            return Err(Unusual);
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads the opening bracket, or `null`. Returns whether it was the bracket.
    fn open_or_null(&mut self, bracket: u8) -> Read<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(false);
        }
        self.expect(bracket).map(|()| true)
    }

    /// Checks that only whitespace follows.
    fn finish(&mut self) -> Read<()> {
        self.skip_whitespace();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(Unusual)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Read<()> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Unusual)
        }
    }

    /// Reads a string or null, the kinds of value a text property may have.
    fn text(&mut self) -> Read<Option<Cow<'de, str>>> {
        match self.peek()? {
            b'"' => self.string().map(Some),
            b'n' => self.literal(b"null").map(|()| None),
            _ => Err(Unusual),
        }
    }

    /// Reads an id: a string or a number, as the general decoder keeps it.
    fn id(&mut self) -> Read<Cow<'de, str>> {
        match self.peek()? {
            b'"' => match self.string()? {
                // Trimmed here, so that the id borrows from the body.
                Cow::Borrowed(text) if !text.trim().is_empty() => Ok(Cow::Borrowed(text.trim())),
                text => {
                    let raw = Raw::Text(text);
                    accepted(id_text(Some(&raw)).map(|id| Cow::Owned(id.into_owned())))
                }
            },
            b'-' | b'0'..=b'9' => {
                // Without an exponent, which [`Reader::number`] rejects,
                // the general decoder keeps a number's text as sent: an
                // integer printed again has the digits it was sent with,
                // since JSON allows no leading zero or plus sign.
                let start = self.pos;
                self.number()?;
                Ok(Cow::Borrowed(&self.text[start..self.pos]))
            }
            _ => Err(Unusual),
        }
    }

    /// Reads a counter: an integer or null.
    fn counter(&mut self) -> Read<Option<i64>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b'1'..=b'9' => {
                // Most counters are a few digits, read here directly. A
                // longer or other number goes through the general reader.
                let start = self.pos;
                let mut value = 0i64;
                while let Some(&digit @ b'0'..=b'9') = self.bytes.get(self.pos) {
                    if self.pos - start == 15 {
                        self.pos = start;
                        return accepted(raw_int(Some(&self.number()?)));
                    }
                    value = value * 10 + i64::from(digit - b'0');
                    self.pos += 1;
                }
                if let Some(b'.' | b'e' | b'E') = self.bytes.get(self.pos) {
                    self.pos = start;
                    return accepted(raw_int(Some(&self.number()?)));
                }
                Ok(Some(value))
            }
            b'-' | b'0' => accepted(raw_int(Some(&self.number()?))),
            _ => Err(Unusual),
        }
    }

    /// Reads a string, a number, a boolean or null.
    fn scalar(&mut self) -> Read<Raw<'de>> {
        match self.peek()? {
            b'"' => self.string().map(Raw::Text),
            b'-' | b'0'..=b'9' => self.number(),
            b'n' => self.literal(b"null").map(|()| Raw::Null),
            b't' => self.literal(b"true").map(|()| Raw::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Raw::Bool(false)),
            _ => Err(Unusual),
        }
    }

    /// Reads a string whose opening quote is the next byte.
    fn string(&mut self) -> Read<Cow<'de, str>> {
        let start = self.pos + 1;
        let mut end = start;
        // Eight bytes at a time up to the first that ends the plain run;
        // the loop below reads that byte.
        while let Some(chunk) = self.bytes.get(end..end + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            let found = run_enders(word);
            if found != 0 {
                end += found.trailing_zeros() as usize / 8;
                break;
            }
            end += 8;
        }
        while let Some(&byte) = self.bytes.get(end) {
            if !ends_run(byte) {
                end += 1;
                continue;
            }
            return match byte {
                b'"' => {
                    self.pos = end + 1;
                    // Both ends are ASCII quotes, so the slice falls on
                    // character boundaries.
                    Ok(Cow::Borrowed(&self.text[start..end]))
                }
                b'\\' => self.escaped_string(start, end).map(Cow::Owned),
                _ => Err(Unusual),
            };
        }
        Err(Unusual)
    }

    /// Finishes a string with escapes: `start` is its first byte and `at`
    /// the first backslash.
    fn escaped_string(&mut self, start: usize, mut at: usize) -> Read<String> {
        let mut text = String::with_capacity(at - start + 16);
        text.push_str(&self.text[start..at]);
        loop {
            let byte = *self.bytes.get(at).ok_or(Unusual)?;
            match byte {
                b'"' => {
                    self.pos = at + 1;
                    return Ok(text);
                }
                b'\\' => {
                    let escape = *self.bytes.get(at + 1).ok_or(Unusual)?;
                    at += 2;
                    let character = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let (character, used) = self.unicode_escape(at)?;
                            at += used;
                            character
                        }
                        _ => return Err(Unusual),
                    };
                    text.push(character);
                }
                0..=0x1f => return Err(Unusual),
                _ => {
                    let run = at;
                    while at < self.bytes.len() && !ends_run(self.bytes[at]) {
                        at += 1;
                    }
                    text.push_str(&self.text[run..at]);
                }
            }
        }
    }

    /// Reads the four hex digits at `at` of a `\u` escape, and the low half
    /// of a surrogate pair after them. Returns the character and the bytes
    /// used. A lone surrogate stops the reader.
    fn unicode_escape(&self, at: usize) -> Read<(char, usize)> {
        let high = self.hex4(at)?;
        if (0xDC00..0xE000).contains(&high) {
            return Err(Unusual);
        }
        if !(0xD800..0xDC00).contains(&high) {
            return char::from_u32(high).map(|c| (c, 4)).ok_or(Unusual);
        }
        if self.bytes.get(at + 4..at + 6) != Some(b"\\u") {
            return Err(Unusual);
        }
        let low = self.hex4(at + 6)?;
        if !(0xDC00..0xE000).contains(&low) {
            return Err(Unusual);
        }
        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        char::from_u32(code).map(|c| (c, 10)).ok_or(Unusual)
    }

    fn hex4(&self, at: usize) -> Read<u32> {
        let digits = self.bytes.get(at..at + 4).ok_or(Unusual)?;
        digits.iter().try_fold(0, |value, &digit| {
            let nibble = (digit as char).to_digit(16).ok_or(Unusual)?;
            Ok(value * 16 + nibble)
        })
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Reads a number that starts at the next byte, as serde_json with
    /// `arbitrary_precision` hands it over: an integer that fits `u64` or
    /// `i64` as that integer, any other number as its text. A number with
    /// an exponent, which serde_json respells, stops the reader.
    fn number(&mut self) -> Read<Raw<'de>> {
        let start = self.pos;
        let negative = self.bytes[start] == b'-';
        if negative {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
                    return Err(Unusual);
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Unusual),
        }
        let integer_end = self.pos;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(Unusual);
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            return Err(Unusual);
        }
        let text = &self.text[start..self.pos];
        if self.pos == integer_end {
            if !negative {
                if let Ok(n) = text.parse::<u64>() {
                    return Ok(Raw::Unsigned(n));
                }
            } else if text != "-0" {
                if let Ok(n) = text.parse::<i64>() {
                    return Ok(Raw::Signed(n));
                }
            }
        }
        Ok(Raw::Number(Cow::Borrowed(text)))
    }
}

/// The state of reading an object's members after its opening brace.
struct Members {
    first: bool,
}

impl Members {
    fn new() -> Self {
        Members { first: true }
    }

    /// Reads the next key and its colon; `None` after the closing brace.
    fn next_key<'de>(&mut self, reader: &mut Reader<'de>) -> Read<Option<Cow<'de, str>>> {
        let mut next = reader.peek()?;
        if next == b'}' {
            reader.pos += 1;
            return Ok(None);
        }
        if !self.first {
            if next != b',' {
                return Err(Unusual);
            }
            reader.pos += 1;
            next = reader.peek()?;
        }
        self.first = false;
        // A brace after a comma stops here, as serde_json rejects it.
        if next != b'"' {
            return Err(Unusual);
        }
        let key = reader.string()?;
        reader.expect(b':')?;
        Ok(Some(key))
    }
}

/// The state of reading an array's elements after its opening bracket.
struct Elements {
    first: bool,
}

impl Elements {
    fn new() -> Self {
        Elements { first: true }
    }

    /// Returns whether an element follows, reading the comma before it;
    /// `false` after the closing bracket.
    fn next(&mut self, reader: &mut Reader<'_>) -> Read<bool> {
        let next = reader.peek()?;
        if next == b']' {
            reader.pos += 1;
            return Ok(false);
        }
        if !self.first {
            if next != b',' {
                return Err(Unusual);
            }
            reader.pos += 1;
            // `[1,]` stops where the element should start.
        }
        self.first = false;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::super::{Page, decode_general};
    use super::*;
    use crate::mock::{OrgConfig, Organisation};

    /// Builds a page of `users` as the mock serves it, in serde_json's layout.
    fn mock_page(users: usize) -> String {
        let organisation = Organisation::new(OrgConfig {
            users,
            ..OrgConfig::default()
        });
        let results = organisation.users_at(60);
        serde_json::json!({"count": results.len(), "fetched": results.len(), "result": results})
            .to_string()
    }

    /// Checks that both pages print the same: users, counts, and floats
    /// with their signs.
    fn same(page: &Page, general: &Page) -> bool {
        format!("{page:?}") == format!("{general:?}")
    }

    fn check_agreement(body: &str) -> Result<(), TestCaseError> {
        let Ok(page) = decode(body, 3) else {
            return Ok(());
        };
        match decode_general(body.as_bytes()) {
            Ok(general) => prop_assert!(same(&page, &general), "pages differ for {}", body),
            Err(error) => prop_assert!(false, "the general decoder gives {:?} for {}", error, body),
        }
        Ok(())
    }

    #[test]
    fn mock_pages_use_direct_reader() {
        for users in [1, 50, 300] {
            let body = mock_page(users);
            let page = decode(&body, 3).expect("a mock page is a common page");
            let general = decode_general(body.as_bytes()).unwrap();
            assert_eq!(page.users.len(), general.users.len());
            assert_eq!(page.users, general.users);
            assert!(same(&page, &general));
        }
        let pretty: serde_json::Value = serde_json::from_str(&mock_page(20)).unwrap();
        let pretty = serde_json::to_string_pretty(&pretty).unwrap();
        assert!(
            decode(&pretty, 3).is_ok(),
            "whitespace between tokens is read"
        );
    }

    #[test]
    fn unusual_pages_use_general_decoder() {
        let cases = [
            // An undocumented property, kept in `extra` by the general decoder.
            r#"{"count":1,"fetched":1,"result":[{"riskLevel":"high","user":{"id":1}}]}"#,
            // A repeated property, whose last value wins there.
            r#"{"count":1,"fetched":1,"result":[{"user":{"id":1,"id":2}}]}"#,
            // A counter sent as text.
            r#"{"count":1,"fetched":1,"result":[{"emailsSent":"3","user":{"id":1}}]}"#,
            // An exponent, which serde_json respells.
            r#"{"count":1,"fetched":1,"result":[{"averageScore":1E2,"user":{"id":1}}]}"#,
            // A lone surrogate.
            r#"{"count":1,"fetched":1,"result":[{"user":{"id":"\ud800"}}]}"#,
            // A user that is an error, and a syntax error.
            r#"{"count":1,"fetched":1,"result":[{"user":{"id":" "}}]}"#,
            r#"{"count":1,"fetched":1,"result":[{"user":{"id":1},}]}"#,
            // A missing `result`, and text after the page.
            r#"{"count":0,"fetched":0}"#,
            r#"{"count":0,"fetched":0,"result":[]} x"#,
        ];
        for body in cases {
            assert_eq!(decode(body, 3).err(), Some(Unusual), "{body}");
        }
        let escaped = r#"{"count":1,"fetched":1,"result":[{"user":{"id":" \u00d8-1 ","name":"S\u00f8ren \ud83d\ude00\n"}}]}"#;
        let page = decode(escaped, 3).expect("escapes are read");
        assert_eq!(page.users.user_id(0), "Ø-1");
        assert_eq!(page.users.name.get(0), Some("Søren 😀\n"));
    }

    #[test]
    fn numbers_match_general_decoder() {
        let body = r#"{"count":2,"fetched":2,"result":[
            {"emailsSent":9223372036854775807,"linksClicked":-0,"averageScore":-0,
             "user":{"id":-0,"branch":{"id":123456789012345678901234567890,"name":null},
                     "groups":[{"id":1.50,"name":"Alle"}]}},
            {"averageScore":18446744073709551615,"user":{"id":18446744073709551615}}]}"#;
        let page = decode(body, 3).expect("a common page");
        assert_eq!(page.users.counters[6][0], Some(i64::MAX));
        assert_eq!(page.users.counters[7][0], Some(0));
        assert!(page.users.average_score[0].is_some_and(|s| s == 0.0 && s.is_sign_negative()));
        assert_eq!(page.users.user_id(0), "-0");
        assert_eq!(
            page.users.branch_id.get(0),
            Some("123456789012345678901234567890")
        );
        assert_eq!(page.users.groups.entries().0.get(0), Some("1.50"));
        assert_eq!(
            page.users.average_score[1],
            Some(18_446_744_073_709_551_615.0)
        );
        assert!(same(&page, &decode_general(body.as_bytes()).unwrap()));
    }

    #[test]
    fn run_enders_finds_first_special_byte() {
        let bytes = *b"ab\"c\\d\x1fe\xc3\xa6\x7f\x80 q!";
        for start in 0..bytes.len() - 8 {
            let word = u64::from_le_bytes(bytes[start..start + 8].try_into().unwrap());
            let expected = bytes[start..start + 8].iter().position(|&b| ends_run(b));
            let found = run_enders(word);
            let found = (found != 0).then(|| found.trailing_zeros() as usize / 8);
            assert_eq!(found, expected, "from byte {start}");
        }
    }

    proptest! {
        #[test]
        fn run_enders_agrees_with_ends_run(bytes in prop::array::uniform8(any::<u8>())) {
            let expected = bytes.iter().position(|&b| ends_run(b));
            let found = run_enders(u64::from_le_bytes(bytes));
            prop_assert_eq!((found != 0).then(|| found.trailing_zeros() as usize / 8), expected);
        }
    }

    /// Generates JSON strings of letters, Nordic and other non-ASCII text,
    /// and valid escapes, surrogate pairs included.
    fn string_value() -> BoxedStrategy<String> {
        let piece = select(vec![
            "a",
            "Z",
            "7",
            " ",
            "æ",
            "ø",
            "Å",
            "@",
            ".",
            "-",
            "😀",
            "\\\"",
            "\\\\",
            "\\/",
            "\\n",
            "\\t",
            "\\b",
            "\\u00e6",
            "\\u00C5",
            "\\u0000",
            "\\ud83d\\ude00",
            "\u{7f}",
        ]);
        prop::collection::vec(piece, 0..6)
            .prop_map(|pieces| format!("\"{}\"", pieces.concat()))
            .boxed()
    }

    /// Generates a string with a mistake: a lone surrogate, an invalid
    /// escape or an unescaped control character.
    fn broken_string() -> BoxedStrategy<String> {
        let mistake = select(vec![
            "\\ud83d", "\\udc00", "\\ud83dx", "\\x", "\\u12", "\u{1}",
        ]);
        (string_value(), mistake)
            .prop_map(|(text, mistake)| format!("{}{mistake}\"", &text[..text.len() - 1]))
            .boxed()
    }

    /// Generates numbers of every form, some beyond 64 bits or not JSON.
    fn number_value() -> BoxedStrategy<String> {
        select(vec![
            "0",
            "7",
            "42",
            "-3",
            "-0",
            "12.50",
            "3.0",
            "1e5",
            "1E+2",
            "2.5e-3",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "+1",
        ])
        .prop_map(str::to_string)
        .boxed()
    }

    fn other_value() -> BoxedStrategy<String> {
        select(vec![
            "true",
            "false",
            "[]",
            "{}",
            "[1,2]",
            "{\"a\":1}",
            "nul",
            "tru",
            "[",
            "",
        ])
        .prop_map(str::to_string)
        .boxed()
    }

    /// Generates a value outside the documented kinds, or a broken one.
    fn unusual_value() -> BoxedStrategy<String> {
        prop_oneof![number_value(), other_value(), broken_string()].boxed()
    }

    fn null() -> BoxedStrategy<String> {
        Just("null".to_string()).boxed()
    }

    fn time_value() -> BoxedStrategy<String> {
        select(vec![
            "\"2024-02-29T00:00:00Z\"",
            "\"2024-02-29\"",
            "\"2024-02-29T01:00:00+01:00\"",
            "\"2024-02-29 00:00:01\"",
            "\"2024-02-29T00:00:00.5\"",
        ])
        .prop_map(str::to_string)
        .boxed()
    }

    /// Generates a value of a text property: mostly a string or null.
    fn text_value() -> BoxedStrategy<String> {
        prop_oneof![80 => string_value(), 20 => null(), 1 => unusual_value()].boxed()
    }

    fn id_value() -> BoxedStrategy<String> {
        prop_oneof![
            40 => (0u64..100_000).prop_map(|n| n.to_string()),
            40 => string_value(),
            1 => unusual_value(),
            1 => null(),
        ]
        .boxed()
    }

    fn counter_value() -> BoxedStrategy<String> {
        prop_oneof![
            70 => (0u32..50).prop_map(|n| n.to_string()),
            10 => (0u64..100_000_000_000_000_000).prop_map(|n| n.to_string()),
            8 => null(),
            1 => unusual_value(),
            1 => string_value(),
        ]
        .boxed()
    }

    fn score_value() -> BoxedStrategy<String> {
        prop_oneof![
            20 => (0u32..100).prop_map(|n| n.to_string()),
            20 => (0u32..1000).prop_map(|n| format!("{}.{}", n / 10, n % 10)),
            8 => null(),
            1 => unusual_value(),
            1 => string_value(),
        ]
        .boxed()
    }

    fn separator() -> BoxedStrategy<&'static str> {
        select(vec!["", "", " ", "\n  ", "\t", "\r\n"]).boxed()
    }

    /// Generates an object of the given members in any order, now and then
    /// with a member repeated or an undocumented one. A member that the
    /// general decoder requires is nearly always present, the others mostly.
    fn object(members: Vec<(&'static str, BoxedStrategy<String>)>) -> BoxedStrategy<String> {
        const REQUIRED: [&str; 5] = ["count", "fetched", "result", "user", "id"];
        let present: Vec<_> = members
            .into_iter()
            .map(|(key, value)| {
                let chance = if REQUIRED.contains(&key) { 0.995 } else { 0.9 };
                prop::option::weighted(chance, value.prop_map(move |v| (key, v)))
            })
            .collect();
        (
            present.prop_shuffle(),
            prop::option::weighted(0.01, any::<prop::sample::Index>()),
            prop::option::weighted(0.01, text_value()),
            separator(),
        )
            .prop_map(|(members, repeat, unknown, space)| {
                let mut members: Vec<(&str, String)> = members.into_iter().flatten().collect();
                if let Some(index) = repeat.filter(|_| !members.is_empty()) {
                    let member = members[index.index(members.len())].clone();
                    members.push(member);
                }
                if let Some(value) = unknown {
                    members.push(("riskLevel", value));
                }
                let body: Vec<String> = members
                    .iter()
                    .map(|(key, value)| format!("{space}\"{key}\"{space}:{space}{value}"))
                    .collect();
                format!("{{{}{space}}}", body.join(","))
            })
            .boxed()
    }

    fn array(item: BoxedStrategy<String>, max: usize) -> BoxedStrategy<String> {
        (prop::collection::vec(item, 0..max), separator())
            .prop_map(|(items, space)| format!("[{space}{}{space}]", items.join(",")))
            .boxed()
    }

    /// Generates a nested object or list, mostly as documented.
    fn nested(documented: BoxedStrategy<String>) -> BoxedStrategy<String> {
        prop_oneof![100 => documented, 10 => null(), 1 => unusual_value()].boxed()
    }

    fn user() -> BoxedStrategy<String> {
        let meta = object(META_KEYS.iter().map(|key| (*key, text_value())).collect());
        let branch = object(vec![("id", id_value()), ("name", text_value())]);
        let group = object(vec![("id", id_value()), ("name", text_value())]);
        object(vec![
            ("id", id_value()),
            ("email", text_value()),
            (
                "created",
                prop_oneof![40 => time_value(), 4 => null(), 1 => text_value()].boxed(),
            ),
            ("name", text_value()),
            ("firstName", text_value()),
            ("lastName", text_value()),
            ("meta", nested(meta)),
            ("branch", nested(branch)),
            ("groups", nested(array(group, 4))),
        ])
    }

    fn entry_value() -> BoxedStrategy<String> {
        let mut members: Vec<(&'static str, BoxedStrategy<String>)> = vec![(
            "user",
            prop_oneof![200 => user(), 1 => unusual_value()].boxed(),
        )];
        members.extend(
            crate::snapshot::record::COUNTER_FIELDS
                .iter()
                .map(|(key, _)| (*key, counter_value())),
        );
        members.push(("lastAction", text_value()));
        members.push(("averageScore", score_value()));
        prop_oneof![200 => object(members), 1 => unusual_value()].boxed()
    }

    fn page_value() -> BoxedStrategy<String> {
        object(vec![
            (
                "result",
                prop_oneof![100 => array(entry_value(), 4), 1 => unusual_value()].boxed(),
            ),
            ("count", (0u32..5).prop_map(|n| n.to_string()).boxed()),
            ("fetched", counter_value()),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Checks that every page the direct reader accepts decodes to the
        /// same users and counts in the general decoder.
        #[test]
        fn direct_reader_matches_general_decoder(body in page_value()) {
            check_agreement(&body)?;
        }

        /// Checks the same for a mock page with a few bytes removed, added
        /// or changed, so that syntax errors fall anywhere.
        #[test]
        fn direct_reader_rejects_broken_pages(
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), 0u8..3, select(b"\"{}[],: \\0123456789-+.eEnul\x01".to_vec())),
                1..4,
            )
        ) {
            let mut body = mock_page(3).into_bytes();
            for (at, kind, byte) in edits {
                let at = at.index(body.len());
                match kind {
                    0 => { body.remove(at); }
                    1 => body.insert(at, byte),
                    _ => body[at] = byte,
                }
            }
            if let Ok(text) = String::from_utf8(body) {
                check_agreement(&text)?;
            }
        }
    }
}
