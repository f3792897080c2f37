//! Clients: the validated spec the API accepts, and the stored client with its switches.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::{AlgorithmStatus, ImageRef, Quantity};

/// A client's identifier: the database's `bigserial`, always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(i64);

impl ClientId {
    /// Wraps a stored id; `None` for zero or negative numbers, which no stored client has.
    pub fn new(id: i64) -> Option<ClientId> {
        (id > 0).then_some(ClientId(id))
    }

    /// The id as the database stores it.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A client's name: 1–100 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientName(String);

impl ClientName {
    const MAX_CHARS: usize = 100;

    /// Parses a name; the error says what is wrong.
    pub fn parse(raw: &str) -> Result<ClientName, String> {
        if raw.trim().is_empty() {
            return Err("must not be blank".into());
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(ClientName(raw.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client's algorithm version: an integer from 0 to `i32::MAX` (the column is `integer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Version(i32);

impl Version {
    /// Parses a version; the error says what is wrong.
    pub fn parse(raw: i64) -> Result<Version, String> {
        i32::try_from(raw)
            .ok()
            .filter(|v| *v >= 0)
            .map(Version)
            .ok_or_else(|| format!("must be an integer from 0 to {}", i32::MAX))
    }

    /// The version as the database stores it.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The client's scheduling priority: a finite number ≥ 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Priority(f64);

impl Priority {
    /// Parses a priority; the error says what is wrong.
    pub fn parse(raw: f64) -> Result<Priority, String> {
        if raw.is_finite() && raw >= 0.0 {
            // -0.0 passes `>= 0.0`; store it as plain zero.
            Ok(Priority(raw + 0.0))
        } else {
            Err("must be a finite number greater than or equal to 0".into())
        }
    }

    /// The priority as a number.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// The fields of a client as they arrive, before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSpecInput {
    /// Display name, unique among clients.
    pub name: String,
    /// Algorithm version.
    pub version: i64,
    /// Container image reference.
    pub image: String,
    /// CPU request and limit, a Kubernetes quantity.
    pub cpu: String,
    /// Memory request and limit, a Kubernetes quantity.
    pub mem: String,
    /// Scheduling priority.
    pub priority: f64,
}

/// A rule of the client spec that the input broke, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SpecError {
    /// The JSON field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// A client's validated settings: what the API accepts on create and update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientSpec {
    /// Display name, unique among clients.
    pub name: ClientName,
    /// Algorithm version.
    pub version: Version,
    /// Container image reference.
    pub image: ImageRef,
    /// CPU request and limit.
    pub cpu: Quantity,
    /// Memory request and limit.
    pub mem: Quantity,
    /// Scheduling priority.
    pub priority: Priority,
}

impl ClientSpec {
    /// Validates every field; the first field that breaks a rule is named in the error.
    pub fn parse(input: ClientSpecInput) -> Result<ClientSpec, SpecError> {
        let field = |field: &'static str| move |problem: String| SpecError { field, problem };
        Ok(ClientSpec {
            name: ClientName::parse(&input.name).map_err(field("name"))?,
            version: Version::parse(input.version).map_err(field("version"))?,
            image: ImageRef::parse(&input.image).map_err(field("image"))?,
            cpu: Quantity::parse(&input.cpu).map_err(field("cpu"))?,
            mem: Quantity::parse(&input.mem).map_err(field("mem"))?,
            priority: Priority::parse(input.priority).map_err(field("priority"))?,
        })
    }
}

impl TryFrom<ClientSpecInput> for ClientSpec {
    type Error = SpecError;

    fn try_from(input: ClientSpecInput) -> Result<Self, Self::Error> {
        ClientSpec::parse(input)
    }
}

/// A stored client with its switches.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// Storage-assigned id.
    pub id: ClientId,
    /// Its validated settings.
    pub spec: ClientSpec,
    /// Which algorithms are on.
    pub status: AlgorithmStatus,
    /// Its pods are to be restarted on the next pass.
    pub need_restart: bool,
    /// When its pods were last (re)started; `None` until they first start.
    pub spawned_at: Option<SystemTime>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it was last changed by the API; the reconciler's compare-and-set token.
    pub updated_at: SystemTime,
}

/// A page of the client list: clients with ids greater than `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this id (keyset pagination); `None` for the first page.
    pub after: Option<ClientId>,
    /// Page size, from 1 to [`PageRequest::MAX_LIMIT`].
    pub limit: u32,
}

impl PageRequest {
    /// The page size used when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The largest page served.
    pub const MAX_LIMIT: u32 = 1000;
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// One page of clients in id order, and the cursor of the next page if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The clients on this page.
    pub items: Vec<Client>,
    /// Stored clients in this page's id range that can no longer be read as clients.
    pub unusable: Vec<UnusableClient>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<ClientId>,
}

/// A stored client whose values no longer parse: written before a rule was tightened, edited by
/// hand, or migrated from an earlier service. It affects only itself: the reconciler holds it back
/// and the API names it, instead of one bad row failing every read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableClient {
    /// Its id.
    pub id: ClientId,
    /// Why it cannot be used, naming the field.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ClientSpecInput {
        ClientSpecInput {
            name: "Jimbo".into(),
            version: 1,
            image: "ghcr.io/acme/vwap:1.0".into(),
            cpu: "500m".into(),
            mem: "512Mi".into(),
            priority: 0.26,
        }
    }

    fn field_of(input: ClientSpecInput) -> &'static str {
        ClientSpec::parse(input).unwrap_err().field
    }

    #[test]
    fn a_valid_input_parses_unchanged() {
        let spec = ClientSpec::parse(input()).unwrap();
        assert_eq!(spec.name.as_str(), "Jimbo");
        assert_eq!(spec.version.get(), 1);
        assert_eq!(spec.image.as_str(), "ghcr.io/acme/vwap:1.0");
        assert_eq!(spec.cpu.as_str(), "500m");
        assert_eq!(spec.mem.as_str(), "512Mi");
        assert_eq!(spec.priority.get(), 0.26);
    }

    #[test]
    fn name_must_not_be_blank() {
        for blank in ["", " ", "\t \n"] {
            let err = ClientSpec::parse(ClientSpecInput {
                name: blank.into(),
                ..input()
            })
            .unwrap_err();
            assert_eq!(err.to_string(), "name: must not be blank");
        }
    }

    #[test]
    fn name_is_at_most_100_characters_counted_as_characters() {
        let hundred = "й".repeat(100);
        assert!(
            ClientSpec::parse(ClientSpecInput {
                name: hundred,
                ..input()
            })
            .is_ok()
        );
        let err = ClientSpec::parse(ClientSpecInput {
            name: "x".repeat(101),
            ..input()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "name: must be at most 100 characters");
    }

    #[test]
    fn name_rejects_control_characters() {
        assert_eq!(
            field_of(ClientSpecInput {
                name: "a\u{0}b".into(),
                ..input()
            }),
            "name"
        );
    }

    #[test]
    fn version_is_a_non_negative_32_bit_integer() {
        assert!(
            ClientSpec::parse(ClientSpecInput {
                version: 0,
                ..input()
            })
            .is_ok()
        );
        assert!(
            ClientSpec::parse(ClientSpecInput {
                version: i32::MAX.into(),
                ..input()
            })
            .is_ok()
        );
        for bad in [-1, i64::from(i32::MAX) + 1, i64::MIN] {
            assert_eq!(
                field_of(ClientSpecInput {
                    version: bad,
                    ..input()
                }),
                "version"
            );
        }
    }

    #[test]
    fn image_must_be_an_image_reference() {
        let err = ClientSpec::parse(ClientSpecInput {
            image: "Not An Image".into(),
            ..input()
        })
        .unwrap_err();
        assert_eq!(err.field, "image");
        assert!(err.problem.contains("not a container image reference"));
        assert_eq!(
            field_of(ClientSpecInput {
                image: String::new(),
                ..input()
            }),
            "image"
        );
    }

    #[test]
    fn cpu_and_mem_must_be_positive_quantities() {
        assert_eq!(
            field_of(ClientSpecInput {
                cpu: "0".into(),
                ..input()
            }),
            "cpu"
        );
        assert_eq!(
            field_of(ClientSpecInput {
                cpu: "lots".into(),
                ..input()
            }),
            "cpu"
        );
        assert_eq!(
            field_of(ClientSpecInput {
                mem: "-1Gi".into(),
                ..input()
            }),
            "mem"
        );
        assert_eq!(
            field_of(ClientSpecInput {
                mem: "".into(),
                ..input()
            }),
            "mem"
        );
    }

    #[test]
    fn priority_is_finite_and_not_negative() {
        assert!(
            ClientSpec::parse(ClientSpecInput {
                priority: 0.0,
                ..input()
            })
            .is_ok()
        );
        for bad in [-0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                field_of(ClientSpecInput {
                    priority: bad,
                    ..input()
                }),
                "priority"
            );
        }
    }

    #[test]
    fn negative_zero_priority_is_stored_as_zero() {
        let spec = ClientSpec::parse(ClientSpecInput {
            priority: -0.0,
            ..input()
        })
        .unwrap();
        assert!(spec.priority.get().is_sign_positive());
    }

    #[test]
    fn client_ids_are_positive() {
        assert_eq!(ClientId::new(0), None);
        assert_eq!(ClientId::new(-5), None);
        assert_eq!(ClientId::new(7).map(ClientId::get), Some(7));
    }
}
