//! The `switches` column: a client's switches as one jsonb object, algorithm name → on
//! (`{"HFT": true, "TWAP": false, "VWAP": true}`), for any catalogue.
//!
//! Read straight from PostgreSQL's binary jsonb into an [`AlgorithmStatus`], without building a
//! JSON tree: the desired-state read parses 100k of these a pass. A value that is not such an
//! object (only a hand edit makes one) is kept as the reason its client is unusable, never a
//! failed query.

use std::fmt;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::{Pg, PgValue};
use diesel::sql_types::Jsonb;
use serde::de::{Deserializer, MapAccess, Visitor};

use alsy_domain::{Algorithm, AlgorithmStatus};

/// A stored `switches` value, parsed, or why it does not parse.
#[derive(Debug, FromSqlRow)]
#[diesel(sql_type = Jsonb)]
pub(crate) struct StoredSwitches(pub(crate) Result<AlgorithmStatus, String>);

/// The version byte PostgreSQL puts before the JSON text of a binary jsonb value.
const JSONB_VERSION: u8 = 1;

impl FromSql<Jsonb, Pg> for StoredSwitches {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        match value.as_bytes().split_first() {
            Some((&JSONB_VERSION, text)) => Ok(StoredSwitches(parse(text))),
            // Not a format a row can hold: the connection speaks another protocol.
            _ => Err("unsupported jsonb format version".into()),
        }
    }
}

/// Parses `{"NAME": bool, ...}`.
pub(crate) fn parse(text: &[u8]) -> Result<AlgorithmStatus, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    deserializer
        .deserialize_map(SwitchesVisitor)
        .map_err(|e| format!("switches: {e}"))
}

struct SwitchesVisitor;

impl<'de> Visitor<'de> for SwitchesVisitor {
    type Value = AlgorithmStatus;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of algorithm names and booleans")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AlgorithmStatus, A::Error> {
        let mut status = AlgorithmStatus::default();
        while let Some(Key(algorithm)) = map.next_key()? {
            status.set(algorithm, map.next_value::<bool>()?);
        }
        Ok(status)
    }
}

/// A key, parsed as an algorithm name where it lies in the row's bytes: no string allocated.
struct Key(Algorithm);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an algorithm name")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                Algorithm::parse(key).map(Key).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The JSON object of `switches`, as a status write merges it into the stored one.
pub(crate) fn json(switches: impl Iterator<Item = (Algorithm, bool)>) -> String {
    // `{"NAME":false,…}`: a name of at most 15 bytes and its value fit in 24.
    let mut text = String::with_capacity(2 + 24 * switches.size_hint().0);
    text.push('{');
    for (i, (algorithm, on)) in switches.enumerate() {
        if i > 0 {
            text.push(',');
        }
        // A name is `[A-Z][A-Z0-9]*`: nothing in it needs escaping.
        text.push('"');
        text.push_str(algorithm.as_str());
        text.push_str("\":");
        text.push_str(if on { "true" } else { "false" });
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_object_reads_back_as_its_switches() {
        let status = parse(br#"{"X": true, "HFT": false, "VWAP": true}"#).unwrap();
        let on: Vec<String> = status.enabled().map(|a| a.to_string()).collect();
        assert_eq!(on, ["VWAP", "X"]);
        assert_eq!(status.switches().count(), 3);
        assert_eq!(
            json(status.switches()),
            r#"{"HFT":false,"VWAP":true,"X":true}"#
        );
        assert_eq!(parse(json(status.switches()).as_bytes()), Ok(status));
    }

    #[test]
    fn anything_else_says_why() {
        for (text, problem) in [
            (&br#"{"vwap": true}"#[..], "not an algorithm name"),
            (br#"{"VWAP": 1}"#, "expected a boolean"),
            (br#"[true]"#, "invalid type"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(
                error.starts_with("switches: ") && error.contains(problem),
                "{error}"
            );
        }
    }
}
