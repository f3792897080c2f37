//! What the API accepts, parsed at the edge: JSON bodies into a `ClientSpec` or an
//! `AlgorithmStatus` (keyed by the configured catalogue), query strings into `need_restart` and a
//! `PageRequest`, path segments into a `ClientId`. Every error names the field or parameter at
//! fault. The earlier services' bodies (`crate::earlier`) are built from the same pieces.
//!
//! Bodies are checked field by field on a generic JSON object rather than with a derived
//! `Deserialize`, so every message has one shape (`missing field "cpu"`, `unknown field "colour"`,
//! `invalid type for "version": expected an integer, found a string`) and a key given twice is
//! caught instead of silently keeping the last value.

use std::fmt;

use alsy_domain::{
    Algorithm, AlgorithmStatus, Catalogue, ClientId, ClientSpec, ClientSpecInput, PageRequest,
    SyncSummary,
};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A JSON object with its keys in the order given, duplicates included.
pub(crate) struct Object(Vec<(String, Value)>);

impl Object {
    /// Its fields as given, unchecked.
    pub(crate) fn into_entries(self) -> Entries {
        self.0
    }
}

/// An object's fields, checked by [`fields`].
pub(crate) type Entries = Vec<(String, Value)>;

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
pub(crate) fn object(body: &[u8]) -> Result<Object, String> {
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

pub(crate) fn invalid_type(field: &str, expected: &str, found: &Value) -> String {
    format!(
        "invalid type for {field:?}: expected {expected}, found {}",
        kind(found)
    )
}

/// The fields of an object, checked: no unknown or repeated keys, none of `required` missing;
/// `optional` ones may be left out.
pub(crate) fn fields(
    object: Object,
    required: &[&str],
    optional: &[&str],
) -> Result<Entries, String> {
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in &object.0 {
        let Some(known) = required.iter().chain(optional).find(|f| **f == key) else {
            return Err(format!("unknown field {key:?}"));
        };
        if seen.contains(known) {
            return Err(format!("duplicate field {key:?}"));
        }
        seen.push(known);
    }
    if let Some(missing) = required.iter().find(|f| !seen.contains(f)) {
        return Err(format!("missing field {missing:?}"));
    }
    Ok(object.0)
}

/// A field's value; `null` when absent (only optional fields can be).
pub(crate) fn take<'v>(entries: &'v [(String, Value)], field: &str) -> &'v Value {
    entries
        .iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v)
        .unwrap_or(&Value::Null)
}

pub(crate) fn string(entries: &[(String, Value)], field: &str) -> Result<String, String> {
    match take(entries, field) {
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid_type(field, "a string", other)),
    }
}

/// An integer field. `3.0` and `3e0` are integers too (JSON Schema counts any number without a
/// fraction, so a client following the document may send them). One beyond 64 bits saturates:
/// still an integer, and out of range, which the rule of the field reports.
pub(crate) fn integer(entries: &[(String, Value)], field: &str) -> Result<i64, String> {
    match take(entries, field) {
        Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
        Value::Number(n) if n.is_u64() => Ok(i64::MAX),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            Ok(n.as_f64().unwrap_or_default() as i64)
        }
        other => Err(invalid_type(field, "an integer", other)),
    }
}

pub(crate) fn boolean(entries: &[(String, Value)], field: &str) -> Result<bool, String> {
    match take(entries, field) {
        Value::Bool(b) => Ok(*b),
        other => Err(invalid_type(field, "a boolean", other)),
    }
}

/// A client spec from the fields of a body, `names` saying what each is called in it
/// (`mem` here, `memory` in syncService's body).
pub(crate) fn spec_from(
    entries: &[(String, Value)],
    names: &SpecFields,
) -> Result<ClientSpec, String> {
    let priority = match take(entries, names.priority) {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        other => return Err(invalid_type(names.priority, "a number", other)),
    };
    let input = ClientSpecInput {
        name: string(entries, names.name)?,
        version: integer(entries, names.version)?,
        image: string(entries, names.image)?,
        cpu: string(entries, names.cpu)?,
        mem: string(entries, names.mem)?,
        priority,
    };
    ClientSpec::parse(input).map_err(|e| {
        // The domain names its own fields; say the name the body used.
        let field = match e.field {
            "name" => names.name,
            "version" => names.version,
            "image" => names.image,
            "cpu" => names.cpu,
            "mem" => names.mem,
            _ => names.priority,
        };
        format!("{field}: {}", e.problem)
    })
}

/// The JSON names of a client spec's fields in one API's bodies.
pub(crate) struct SpecFields {
    pub name: &'static str,
    pub version: &'static str,
    pub image: &'static str,
    pub cpu: &'static str,
    pub mem: &'static str,
    pub priority: &'static str,
}

impl SpecFields {
    /// Every field, in the order of the body.
    pub(crate) fn all(&self) -> [&'static str; 6] {
        [
            self.name,
            self.version,
            self.image,
            self.cpu,
            self.mem,
            self.priority,
        ]
    }
}

/// The v1 API's names.
pub(crate) const V1_SPEC: SpecFields = SpecFields {
    name: "name",
    version: "version",
    image: "image",
    cpu: "cpu",
    mem: "mem",
    priority: "priority",
};

/// The body of `POST /api/v1/clients` and `PUT /api/v1/clients/{id}`, validated.
pub(crate) fn client_spec(body: &[u8]) -> Result<ClientSpec, String> {
    let entries = fields(object(body)?, &V1_SPEC.all(), &[])?;
    spec_from(&entries, &V1_SPEC)
}

/// The body of `PUT /api/v1/status/{id}`: a switch for every algorithm of the catalogue, each
/// keyed by its name or its lower-case form.
pub(crate) fn algorithm_status(
    body: &[u8],
    catalogue: &Catalogue,
) -> Result<AlgorithmStatus, String> {
    switches(&object(body)?.0, catalogue, &[], false)
}

/// The switches among `entries`: every key not in `other` names an algorithm of the catalogue
/// (by its name or its lower-case form), each of them once, all of them present. Messages
/// spell the names as the body does: in lower case when `lower_case`.
pub(crate) fn switches(
    entries: &[(String, Value)],
    catalogue: &Catalogue,
    other: &[&str],
    lower_case: bool,
) -> Result<AlgorithmStatus, String> {
    let spelt = |algorithm: &Algorithm| match lower_case {
        true => algorithm.slug().to_string(),
        false => algorithm.as_str().to_owned(),
    };
    let mut status = AlgorithmStatus::default();
    let mut given: Vec<(Algorithm, &str)> = Vec::new();
    for (key, value) in entries.iter().filter(|(k, _)| !other.contains(&k.as_str())) {
        let algorithm = catalogue.find(key).ok_or_else(|| {
            let expected: Vec<String> = (other.iter().map(|o| (*o).to_owned()))
                .chain(catalogue.algorithms().iter().map(spelt))
                .collect();
            format!("unknown field {key:?} (expected {})", and_list(&expected))
        })?;
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
    if let Some(missing) = catalogue
        .algorithms()
        .iter()
        .find(|a| !given.iter().any(|(g, _)| g == *a))
    {
        return Err(format!("missing field {:?}", spelt(missing)));
    }
    Ok(status)
}

/// `A`, `A and B`, `A, B and C`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
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

/// `?after=ID&limit=N&state=S` of the client list: the page, and the sync summary to filter on.
pub(crate) fn client_list(query: &Query) -> Result<(PageRequest, Option<SyncSummary>), String> {
    known_only(query, &["after", "limit", "state"])?;
    let state = match param(query, "state") {
        None => None,
        Some(raw) => Some(SyncSummary::parse(raw).ok_or_else(|| {
            let names: Vec<&str> = SyncSummary::ALL.iter().map(|s| s.as_str()).collect();
            format!(
                "invalid query parameter \"state\"={raw:?}: expected {}",
                names.join(", ")
            )
        })?),
    };
    Ok((page(query)?, state))
}

/// `?after=ID&limit=N` of the client list (the caller checks for unknown parameters).
fn page(query: &Query) -> Result<PageRequest, String> {
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
