//! syncService's routes, so that its Go clients keep working against alsy unchanged:
//! `POST`, `PUT` and `DELETE /api/client` and `POST /api/algorithms`, with that service's field
//! names (`client_name`, `memory`, `needRestart`, `client_id`). They run the same use cases as
//! `/api/v1`; only the shape of the request differs.
//!
//! As that service did, success is 200 (with alsy's envelope as the body), a taken name 409 and
//! bad input 400; unlike it, an id that names no client is 404 rather than a silent 200. Its Go
//! structs encode every field, so the fields a route does not use (`id` on create, the times
//! `spawned_at`, `created_at` and `updated_at`, which Go sends as zero times, `algorithm_id`)
//! are accepted, type-checked and ignored.

use alsy_app::Service;
use alsy_domain::{ClientId, ClientSpec};
use serde_json::Value;
use warp::http::StatusCode;

use crate::audit::{Audit, Changed};
use crate::dto::ClientDto;
use crate::envelope;
use crate::handlers::{self, Body, Outcome, bad_request};
use crate::input::{self, Entries, SpecFields};

/// The names of syncService's `Client` fields.
pub(crate) const SPEC: SpecFields = SpecFields {
    name: "client_name",
    version: "version",
    image: "image",
    cpu: "cpu",
    mem: "memory",
    priority: "priority",
};

/// The times of syncService's `Client`: accepted and ignored (alsy keeps its own).
pub(crate) const TIMES: [&str; 3] = ["spawned_at", "created_at", "updated_at"];

/// syncService's name for the restart mark.
pub(crate) const NEED_RESTART: &str = "needRestart";

/// The fields of `POST /api/algorithms` besides the switches.
pub(crate) const CLIENT_ID: &str = "client_id";
pub(crate) const ALGORITHM_ID: &str = "algorithm_id";

/// Fields that may be present and are then only type-checked.
fn check_ignored(entries: &Entries, fields: &[(&str, Kind)]) -> Result<(), String> {
    for (field, kind) in fields {
        let Some((_, value)) = entries.iter().find(|(k, _)| k == field) else {
            continue;
        };
        let fits = match kind {
            Kind::String => value.is_string(),
            Kind::Boolean => value.is_boolean(),
            Kind::Number => value.is_number(),
            Kind::Integer => value.as_f64().is_some_and(|f| f.fract() == 0.0),
        };
        if !fits {
            return Err(input::invalid_type(field, kind.expected(), value));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    String,
    Boolean,
    Number,
    Integer,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Boolean => "a boolean",
            Kind::Number => "a number",
            Kind::Integer => "an integer",
        }
    }
}

fn times() -> impl Iterator<Item = (&'static str, Kind)> {
    TIMES.into_iter().map(|t| (t, Kind::String))
}

/// A client id in a body: a positive integer that fits in 64 bits (`7` or `7.0`).
fn client_id(entries: &Entries, field: &str) -> Result<ClientId, String> {
    let value = input::take(entries, field);
    let id = match value {
        Value::Number(n) if n.is_i64() => n.as_i64(),
        Value::Number(n) if n.is_u64() => None,
        // i64::MAX as f64 rounds up to 2^63, which is already out of range.
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 => (f.abs() < 9.223_372_036_854_775e18).then_some(f as i64),
            _ => return Err(input::invalid_type(field, "an integer", value)),
        },
        other => return Err(input::invalid_type(field, "an integer", other)),
    };
    id.and_then(ClientId::new).ok_or_else(|| {
        format!(
            "{field}: must be a client id, an integer from 1 to {}",
            i64::MAX
        )
    })
}

/// `POST /api/client`: a syncService `Client`; `id` and the times are ignored, and so is
/// `needRestart` (a new client has no pods to restart).
pub(crate) fn new_client(body: &[u8]) -> Result<ClientSpec, String> {
    let mut optional = vec!["id", NEED_RESTART];
    optional.extend(TIMES);
    let entries = input::fields(input::object(body)?, &SPEC.all(), &optional)?;
    let ignored: Vec<_> = [("id", Kind::Integer), (NEED_RESTART, Kind::Boolean)]
        .into_iter()
        .chain(times())
        .collect();
    check_ignored(&entries, &ignored)?;
    input::spec_from(&entries, &SPEC)
}

/// `PUT /api/client`: the client `id` names, its new spec, and whether to restart its pods.
pub(crate) fn changed_client(body: &[u8]) -> Result<(ClientId, ClientSpec, bool), String> {
    let mut required = vec!["id"];
    required.extend(SPEC.all());
    let mut optional = vec![NEED_RESTART];
    optional.extend(TIMES);
    let entries = input::fields(input::object(body)?, &required, &optional)?;
    check_ignored(&entries, &times().collect::<Vec<_>>())?;
    let id = client_id(&entries, "id")?;
    let spec = input::spec_from(&entries, &SPEC)?;
    let need_restart = match entries.iter().any(|(k, _)| k == NEED_RESTART) {
        true => input::boolean(&entries, NEED_RESTART)?,
        false => false,
    };
    Ok((id, spec, need_restart))
}

/// `DELETE /api/client`: the client `id` names; the rest of a `Client` may come along, ignored.
pub(crate) fn deleted_client(body: &[u8]) -> Result<ClientId, String> {
    let mut optional = SPEC.all().to_vec();
    optional.push(NEED_RESTART);
    optional.extend(TIMES);
    let entries = input::fields(input::object(body)?, &["id"], &optional)?;
    let ignored: Vec<_> = [
        (SPEC.name, Kind::String),
        (SPEC.version, Kind::Integer),
        (SPEC.image, Kind::String),
        (SPEC.cpu, Kind::String),
        (SPEC.mem, Kind::String),
        (SPEC.priority, Kind::Number),
        (NEED_RESTART, Kind::Boolean),
    ]
    .into_iter()
    .chain(times())
    .collect();
    check_ignored(&entries, &ignored)?;
    client_id(&entries, "id")
}

/// `POST /api/algorithms`: `client_id` and a switch for every algorithm of the catalogue, keyed
/// in lower case as syncService's Go tags spell them (`vwap`), or by the name (`VWAP`).
pub(crate) fn status(
    body: &[u8],
    catalogue: &alsy_domain::Catalogue,
) -> Result<(ClientId, alsy_domain::AlgorithmStatus), String> {
    let entries = input::object(body)?.into_entries();
    for field in [CLIENT_ID, ALGORITHM_ID] {
        if entries.iter().filter(|(k, _)| k == field).count() > 1 {
            return Err(format!("duplicate field {field:?}"));
        }
    }
    if !entries.iter().any(|(k, _)| k == CLIENT_ID) {
        return Err(format!("missing field {CLIENT_ID:?}"));
    }
    let status = input::switches(&entries, catalogue, &[CLIENT_ID, ALGORITHM_ID], true)?;
    check_ignored(&entries, &[(ALGORITHM_ID, Kind::Integer)])?;
    Ok((client_id(&entries, CLIENT_ID)?, status))
}

/// `POST /api/client`.
pub(crate) async fn create_client(service: Service, body: Body) -> Outcome {
    let spec = new_client(&body?).map_err(bad_request)?;
    let client = service.create_client(spec).await?;
    let response = envelope::ok(
        StatusCode::OK,
        Some("client created successfully"),
        Some(&ClientDto::new(&client, service.catalogue())),
    );
    Ok(Audit::client(
        "client created",
        client.id,
        Changed::fields(Changed::SPEC_FIELDS),
    )
    .attach(response))
}

/// `PUT /api/client`.
pub(crate) async fn update_client(service: Service, body: Body) -> Outcome {
    let (id, spec, need_restart) = changed_client(&body?).map_err(bad_request)?;
    handlers::update(service, id, spec, need_restart).await
}

/// `DELETE /api/client`.
pub(crate) async fn delete_client(service: Service, body: Body) -> Outcome {
    let id = deleted_client(&body?).map_err(bad_request)?;
    service.delete_client(id).await?;
    let response = envelope::ok::<()>(StatusCode::OK, Some("client deleted successfully"), None);
    Ok(Audit::client("client deleted", id, Changed::fields("client")).attach(response))
}

/// `POST /api/algorithms`.
pub(crate) async fn set_status(service: Service, body: Body) -> Outcome {
    let (id, status) = status(&body?, service.catalogue()).map_err(bad_request)?;
    handlers::switch(service, id, status, false).await
}

#[cfg(test)]
#[path = "earlier_tests.rs"]
mod tests;
