//! What the API accepts, parsed at the edge: JSON bodies into a `ClientSpec` or an
//! `AlgorithmStatus`, query strings into `need_restart` and a `PageRequest`, path segments into a
//! `ClientId`. Every error names the field or parameter at fault.
//!
//! Bodies are checked field by field on a generic JSON object rather than with a derived
//! `Deserialize`, so every message has one shape (`missing field "cpu"`, `unknown field "colour"`,
//! `invalid type for "version": expected an integer, found a string`) and a key given twice is
//! caught instead of silently keeping the last value.

use std::fmt;

use alsy_domain::{Algorithm, AlgorithmStatus, ClientId, ClientSpec, ClientSpecInput, PageRequest};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A JSON object with its keys in the order given, duplicates included.
struct Object(Vec<(String, Value)>);

/// A body parsed once: an object with every key as given (serde_json's own map keeps only the
/// last of a repeated key), or the kind of the value that is not an object.
enum Top {
    Object(Object),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Top, D::Error> {
        struct TopVisitor;
        impl<'de> Visitor<'de> for TopVisitor {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Top::Object(Object(entries)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Top::Other("an array"))
            }
            fn visit_unit<E>(self) -> Result<Top, E> {
                Ok(Top::Other("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
                Ok(Top::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
                Ok(Top::Other("an integer"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
                Ok(Top::Other("an integer"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
                Ok(Top::Other("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Top, E> {
                Ok(Top::Other("a string"))
            }
        }
        deserializer.deserialize_any(TopVisitor)
    }
}

/// Parses a body, once, as one JSON object, whatever the Content-Type said.
fn object(body: &[u8]) -> Result<Object, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("request body is empty; expected a JSON object".into());
    }
    match serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))? {
        Top::Object(object) => Ok(object),
        Top::Other(kind) => Err(format!("request body must be a JSON object, found {kind}")),
    }
}

/// A JSON value's type, as messages name it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid_type(field: &str, expected: &str, found: &Value) -> String {
    format!(
        "invalid type for {field:?}: expected {expected}, found {}",
        kind(found)
    )
}

/// The fields of an object, checked: no unknown or repeated keys, none of `fields` missing.
fn fields(object: Object, expected: &[&str]) -> Result<Vec<(String, Value)>, String> {
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in &object.0 {
        let Some(known) = expected.iter().find(|f| **f == key) else {
            return Err(format!("unknown field {key:?}"));
        };
        if seen.contains(known) {
            return Err(format!("duplicate field {key:?}"));
        }
        seen.push(known);
    }
    if let Some(missing) = expected.iter().find(|f| !seen.contains(f)) {
        return Err(format!("missing field {missing:?}"));
    }
    Ok(object.0)
}

fn take<'v>(entries: &'v [(String, Value)], field: &str) -> &'v Value {
    entries
        .iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v)
        .unwrap_or(&Value::Null)
}

fn string(entries: &[(String, Value)], field: &str) -> Result<String, String> {
    match take(entries, field) {
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid_type(field, "a string", other)),
    }
}

/// The body of `POST /api/v1/clients` and `PUT /api/v1/clients/{id}`, validated.
pub(crate) fn client_spec(body: &[u8]) -> Result<ClientSpec, String> {
    const FIELDS: [&str; 6] = ["name", "version", "image", "cpu", "mem", "priority"];
    let entries = fields(object(body)?, &FIELDS)?;
    let version = match take(&entries, "version") {
        Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or_default(),
        // Above i64: still an integer, and out of range, which the domain rule reports.
        Value::Number(n) if n.is_u64() => i64::MAX,
        // `3.0` and `3e0` are integers too (JSON Schema counts any number without a fraction);
        // the cast saturates, so one out of range is reported by the domain rule.
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            n.as_f64().unwrap_or_default() as i64
        }
        other => return Err(invalid_type("version", "an integer", other)),
    };
    let priority = match take(&entries, "priority") {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        other => return Err(invalid_type("priority", "a number", other)),
    };
    let input = ClientSpecInput {
        name: string(&entries, "name")?,
        version,
        image: string(&entries, "image")?,
        cpu: string(&entries, "cpu")?,
        mem: string(&entries, "mem")?,
        priority,
    };
    ClientSpec::parse(input).map_err(|e| e.to_string())
}

/// The body of `PUT /api/v1/status/{id}`: all three switches, each keyed upper- or lower-case.
pub(crate) fn algorithm_status(body: &[u8]) -> Result<AlgorithmStatus, String> {
    let object = object(body)?;
    let mut status = AlgorithmStatus::default();
    let mut given: Vec<(Algorithm, &str)> = Vec::new();
    for (key, value) in &object.0 {
        let algorithm: Algorithm = key
            .parse()
            .map_err(|_| format!("unknown field {key:?} (expected VWAP, TWAP and HFT)"))?;
        if let Some((_, first)) = given.iter().find(|(a, _)| *a == algorithm) {
            return Err(if first == key {
                format!("duplicate field {key:?}")
            } else {
                format!("duplicate field {key:?}: {algorithm} is already given as {first:?}")
            });
        }
        let Value::Bool(on) = value else {
            return Err(invalid_type(key, "a boolean", value));
        };
        status.set(algorithm, *on);
        given.push((algorithm, key));
    }
    if let Some(missing) = Algorithm::ALL
        .iter()
        .find(|a| !given.iter().any(|(g, _)| g == *a))
    {
        return Err(format!("missing field {:?}", missing.as_str()));
    }
    Ok(status)
}

/// A `{id}` path segment: digits only, a positive number that fits in 64 bits. Anything else
/// names no client, so the caller answers 404.
pub(crate) fn client_id(segment: &str) -> Option<ClientId> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse::<i64>().ok().and_then(ClientId::new)
}

/// Query parameters as decoded pairs.
pub(crate) type Query = Vec<(String, String)>;

/// Rejects parameters the route does not know: a misspelt `need_restrat=true` silently ignored
/// would skip the restart the caller asked for.
fn known_only(query: &Query, known: &[&str]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in query {
        if !known.contains(&key.as_str()) {
            return Err(match known {
                [] => format!("unknown query parameter {key:?} (this route takes none)"),
                _ => format!(
                    "unknown query parameter {key:?} (expected {})",
                    known.join(" or ")
                ),
            });
        }
        if seen.contains(&key.as_str()) {
            return Err(format!("query parameter {key:?} given more than once"));
        }
        seen.push(key);
    }
    Ok(())
}

fn param<'q>(query: &'q Query, name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `?need_restart=true|false|1|0`, false when absent.
pub(crate) fn need_restart(query: &Query) -> Result<bool, String> {
    known_only(query, &["need_restart"])?;
    match param(query, "need_restart") {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(format!(
            "invalid query parameter \"need_restart\"={other:?}: expected true, false, 1 or 0"
        )),
    }
}

/// The query of a route that takes no parameters: it must be empty.
pub(crate) fn no_parameters(query: &Query) -> Result<(), String> {
    known_only(query, &[])
}

/// `?after=ID&limit=N` of the client list.
pub(crate) fn page(query: &Query) -> Result<PageRequest, String> {
    known_only(query, &["after", "limit"])?;
    let after = match param(query, "after") {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            // `after=0` is the start of the list, like no `after` at all.
            Ok(0) => None,
            Ok(id) if id > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => ClientId::new(id),
            _ => {
                return Err(format!(
                    "invalid query parameter \"after\"={raw:?}: expected a client id (a non-negative integer)"
                ));
            }
        },
    };
    let limit = match param(query, "limit") {
        None => PageRequest::DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| {
                (1..=PageRequest::MAX_LIMIT).contains(n) && raw.bytes().all(|b| b.is_ascii_digit())
            })
            .ok_or_else(|| {
                format!(
                    "invalid query parameter \"limit\"={raw:?}: expected an integer from 1 to {}",
                    PageRequest::MAX_LIMIT
                )
            })?,
    };
    Ok(PageRequest { after, limit })
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
