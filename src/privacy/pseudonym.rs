//! Keyed pseudonyms for names and email addresses.
//!
//! A pseudonym is the HMAC-SHA-256 of the normalised value under a secret
//! key, cut to 48 bits and written in hex. The same key gives the same
//! pseudonym in every run, so tables from different runs still join, and
//! without the key nobody can test a guessed name against a pseudonym.
//! Names are normalised like the analysis groups them (trimmed, NFC, case
//! folded), so `Åse Ågren` and ` åse ågren ` share a pseudonym.

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use polars::prelude::{Column, DataFrame, IntoColumn, IntoSeries, PolarsResult};
use sha2::Sha256;

use crate::analysis::normalize_key;

/// Minimum key length in bytes. 16 random bytes are 128 bits, more than
/// anyone can guess; a key typed by hand has far fewer bits per byte.
pub const MIN_KEY_BYTES: usize = 16;
/// Hex digits kept of each HMAC. 48 bits make a collision among 100,000
/// distinct values about a 1 in 56,000 chance (birthday bound n²/2⁴⁹).
const HEX_DIGITS: usize = 12;
/// Prefix of a person pseudonym, e.g. `person-3f9a1c2b7d4e`.
pub const PERSON_PREFIX: &str = "person-";
/// Domain of an email pseudonym, e.g. `3f9a1c2b7d4e@pseudonym.invalid`. The
/// `.invalid` top-level domain is reserved (RFC 2606), so no mail is ever
/// delivered to one.
pub const EMAIL_DOMAIN: &str = "@pseudonym.invalid";

/// Columns that hold a person's name.
pub const NAME_COLUMNS: [&str; 4] = ["name", "first_name", "last_name", "manager"];
/// Columns that hold an email address.
pub const EMAIL_COLUMNS: [&str; 2] = ["email", "manager_email"];

/// What a value is, which decides its normalisation and pseudonym form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Person,
    Email,
}

impl Kind {
    /// Returns the kind of a column by its name, or `None` for other columns.
    pub fn of_column(name: &str) -> Option<Kind> {
        if NAME_COLUMNS.contains(&name) {
            Some(Kind::Person)
        } else if EMAIL_COLUMNS.contains(&name) {
            Some(Kind::Email)
        } else {
            None
        }
    }

    /// Returns the label mixed into the HMAC input, so a name and an email
    /// address with the same text get unrelated pseudonyms.
    fn label(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Email => "email",
        }
    }
}

/// The secret key of the pseudonyms. `Debug` prints no key material.
#[derive(Clone)]
pub struct PseudonymKey(Vec<u8>);

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey([redacted])")
    }
}

impl PseudonymKey {
    /// Builds a key from its text, trimmed of surrounding white space.
    /// Returns an error message when it is shorter than [`MIN_KEY_BYTES`].
    pub fn new(text: &str) -> Result<Self, String> {
        let bytes = text.trim().as_bytes().to_vec();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the pseudonym key has {} bytes, fewer than the {MIN_KEY_BYTES} required",
                bytes.len()
            ));
        }
        Ok(PseudonymKey(bytes))
    }

    /// Returns the pseudonym of `value`. Empty values stay empty, because
    /// they identify nobody, and a value that already is a pseudonym is
    /// returned unchanged, so applying the function twice changes nothing.
    pub fn pseudonym(&self, kind: Kind, value: &str) -> String {
        let normalized = match kind {
            Kind::Person => normalize_key(value),
            Kind::Email => value.trim().to_lowercase(),
        };
        if normalized.is_empty() {
            return String::new();
        }
        if is_pseudonym(kind, value.trim()) {
            return value.trim().to_string();
        }
        let digest = self.digest(kind, &normalized);
        match kind {
            Kind::Person => format!("{PERSON_PREFIX}{digest}"),
            Kind::Email => format!("{digest}{EMAIL_DOMAIN}"),
        }
    }

    fn digest(&self, kind: Kind, normalized: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts a key of any length");
        mac.update(kind.label().as_bytes());
        mac.update(&[0]);
        mac.update(normalized.as_bytes());
        let bytes = mac.finalize().into_bytes();
        bytes
            .iter()
            .take(HEX_DIGITS / 2)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Returns whether `text` has the exact form of a pseudonym of `kind`.
pub fn is_pseudonym(kind: Kind, text: &str) -> bool {
    let hex = match kind {
        Kind::Person => text.strip_prefix(PERSON_PREFIX),
        Kind::Email => text.strip_suffix(EMAIL_DOMAIN),
    };
    hex.is_some_and(|digits| {
        digits.len() == HEX_DIGITS
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Replaces every name and email column of `frame` (see [`NAME_COLUMNS`]
/// and [`EMAIL_COLUMNS`]) by its pseudonyms. Other columns are unchanged.
pub fn pseudonymize_frame(frame: &DataFrame, key: &PseudonymKey) -> PolarsResult<DataFrame> {
    let columns = frame
        .columns()
        .iter()
        .map(|column| match Kind::of_column(column.name()) {
            Some(kind) => pseudonymize_column(column, kind, key),
            None => Ok(column.clone()),
        })
        .collect::<PolarsResult<Vec<Column>>>()?;
    DataFrame::new(frame.height(), columns)
}

/// Replaces each non-null value of a String column by its pseudonym,
/// computing the HMAC once per distinct value.
pub fn pseudonymize_column(
    column: &Column,
    kind: Kind,
    key: &PseudonymKey,
) -> PolarsResult<Column> {
    let series = column.as_materialized_series();
    let mut cache: HashMap<String, String> = HashMap::new();
    let replaced = series.str()?.apply_into_string_amortized(|text, out| {
        let pseudonym = cache
            .entry(text.to_owned())
            .or_insert_with(|| key.pseudonym(kind, text));
        out.push_str(pseudonym);
    });
    Ok(replaced
        .into_series()
        .with_name(series.name().clone())
        .into_column())
}

/// Replaces the `value` and `key` of the `manager` rows of `group_rates`
/// by the manager's pseudonym. The `(none)` group, whose key is empty,
/// keeps its label.
pub fn pseudonymize_manager_groups(
    table: &DataFrame,
    key: &PseudonymKey,
) -> PolarsResult<DataFrame> {
    let pseudonyms = pseudonymize_column(table.column("value")?, Kind::Person, key)?;
    let dimensions = table.column("dimension")?.str()?;
    let keys = table.column("key")?.str()?;
    let values = table.column("value")?.str()?;
    let replaced = pseudonyms.str()?;
    let mut new_values = Vec::with_capacity(table.height());
    let mut new_keys = Vec::with_capacity(table.height());
    for i in 0..table.height() {
        let is_person =
            dimensions.get(i) == Some("manager") && keys.get(i).is_some_and(|k| !k.is_empty());
        if is_person {
            new_values.push(replaced.get(i));
            new_keys.push(replaced.get(i));
        } else {
            new_values.push(values.get(i));
            new_keys.push(keys.get(i));
        }
    }
    let mut out = table.clone();
    out.with_column(Column::new("value".into(), new_values))?;
    out.with_column(Column::new("key".into(), new_keys))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> PseudonymKey {
        PseudonymKey::new(text).unwrap()
    }

    #[test]
    fn short_key_rejected() {
        let error = PseudonymKey::new("  fifteen-bytes!! ").unwrap_err();
        assert!(error.contains("15 bytes"), "{error}");
        assert!(PseudonymKey::new("sixteen-bytes-ok").is_ok());
    }

    #[test]
    fn key_hidden_from_debug() {
        let text = format!("{:?}", key("a-secret-key-of-some-length"));
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn pseudonym_matches_hmac_sha256() {
        // The key "Søren" folds to "søren". Computed with Python's hmac module:
        // hmac.new(b"0123456789abcdef", "person\x00søren".encode(), "sha256").hexdigest()[:12]
        let pseudonym = key("0123456789abcdef").pseudonym(Kind::Person, "Søren");
        assert_eq!(pseudonym, "person-ab0aff58b48c");
    }

    #[test]
    fn spellings_share_a_pseudonym() {
        let key = key("0123456789abcdef");
        let nfc = key.pseudonym(Kind::Person, "Åse Ågren");
        let nfd = key.pseudonym(Kind::Person, " A\u{030A}se A\u{030A}GREN ");
        assert_eq!(nfc, nfd);
        assert_eq!(
            key.pseudonym(Kind::Email, "Ase.Agren@Nordlys.dk "),
            key.pseudonym(Kind::Email, "ase.agren@nordlys.dk")
        );
    }

    #[test]
    fn kinds_and_keys_differ() {
        let first = key("0123456789abcdef");
        let second = key("fedcba9876543210");
        let text = "ase@nordlys.dk";
        assert_ne!(
            first.pseudonym(Kind::Person, text),
            second.pseudonym(Kind::Person, text)
        );
        let person = first.pseudonym(Kind::Person, text);
        let email = first.pseudonym(Kind::Email, text);
        assert_ne!(
            person.strip_prefix(PERSON_PREFIX),
            email.strip_suffix(EMAIL_DOMAIN)
        );
    }

    #[test]
    fn pseudonyms_pass_through_unchanged() {
        let key = key("0123456789abcdef");
        for kind in [Kind::Person, Kind::Email] {
            let once = key.pseudonym(kind, "Bjørn Þórsdóttir");
            assert!(is_pseudonym(kind, &once), "{once}");
            assert_eq!(key.pseudonym(kind, &once), once);
        }
        assert_eq!(key.pseudonym(Kind::Person, "   "), "");
        assert!(!is_pseudonym(Kind::Person, "person-3F9A1C2B7D4E"));
        assert!(!is_pseudonym(Kind::Email, "3f9a1c2b7d4@pseudonym.invalid"));
    }

    #[test]
    fn frame_columns_replaced_by_name() {
        let frame = polars::df!(
            "name" => [Some("Søren"), None],
            "email" => [Some("s@x.dk"), Some("")],
            "department" => [Some("Økonomi"), Some("IT")],
        )
        .unwrap();
        let key = key("0123456789abcdef");
        let out = pseudonymize_frame(&frame, &key).unwrap();
        let names = out.column("name").unwrap().str().unwrap();
        assert_eq!(
            names.get(0),
            Some(key.pseudonym(Kind::Person, "Søren").as_str())
        );
        assert_eq!(names.get(1), None);
        let emails = out.column("email").unwrap().str().unwrap();
        assert_eq!(
            emails.get(0),
            Some(key.pseudonym(Kind::Email, "s@x.dk").as_str())
        );
        assert_eq!(emails.get(1), Some(""));
        let departments = out.column("department").unwrap().str().unwrap();
        assert_eq!(departments.get(0), Some("Økonomi"));
    }

    #[test]
    fn manager_groups_replaced_others_kept() {
        let table = polars::df!(
            "dimension" => ["manager", "manager", "department"],
            "value" => ["Åse Ågren", "(none)", "Økonomi"],
            "key" => ["åse ågren", "", "økonomi"],
        )
        .unwrap();
        let key = key("0123456789abcdef");
        let out = pseudonymize_manager_groups(&table, &key).unwrap();
        let expected = key.pseudonym(Kind::Person, "Åse Ågren");
        let values: Vec<Option<&str>> =
            out.column("value").unwrap().str().unwrap().iter().collect();
        assert_eq!(
            values,
            [Some(expected.as_str()), Some("(none)"), Some("Økonomi")]
        );
        let keys: Vec<Option<&str>> = out.column("key").unwrap().str().unwrap().iter().collect();
        assert_eq!(keys, [Some(expected.as_str()), Some(""), Some("økonomi")]);
    }
}
