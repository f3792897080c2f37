//! syncService's routes in the OpenAPI document (`crate::earlier`): its bodies, with the same
//! input rules as the v1 bodies under syncService's field names, and its operations.

// The operation declarations are functions only `utoipa::path` reads.
#![allow(dead_code)]

use std::borrow::Cow;

use alsy_domain::Catalogue;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use super::{ClientReply, ErrorReply, MessageReply, closed, spec_properties, switches};
use crate::earlier::{self, TIMES};

/// A client id in a syncService body.
fn body_client_id(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(i64::MAX))
        .description(Some(description))
}

/// The fields of syncService's `Client` that alsy ignores: `needRestart` (on create) and the
/// times, which its Go clients send as zero times.
fn ignored_times(builder: ObjectBuilder) -> ObjectBuilder {
    TIMES.into_iter().fold(builder, |builder, time| {
        builder.property(
            time,
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("accepted and ignored (Go sends 0001-01-01T00:00:00Z)")),
        )
    })
}

fn need_restart(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .description(Some(description))
}

/// The example syncService clients send: a Go `Client` with its zero values.
fn sync_client_example(id: i64) -> serde_json::Value {
    serde_json::json!({
        "id": id, "client_name": "Jimbo", "version": 1, "image": "ghcr.io/acme/vwap:1.0",
        "cpu": "500m", "memory": "512Mi", "priority": 0.26, "needRestart": false,
        "spawned_at": "0001-01-01T00:00:00Z", "created_at": "0001-01-01T00:00:00Z",
        "updated_at": "0001-01-01T00:00:00Z"
    })
}

/// The body of syncService's `POST /api/client`.
pub(crate) struct SyncNewClient;

impl PartialSchema for SyncNewClient {
    fn schema() -> RefOr<Schema> {
        let object = spec_properties(closed(ObjectBuilder::new()), &earlier::SPEC, false)
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .description(Some("ignored: the new client gets its id from alsy")),
            )
            .property(
                earlier::NEED_RESTART,
                need_restart("ignored: a new client has no pods"),
            );
        let object = ignored_times(object).examples([sync_client_example(0)]);
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for SyncNewClient {
    fn name() -> Cow<'static, str> {
        "SyncServiceNewClient".into()
    }
}

/// The body of syncService's `PUT /api/client`.
pub(crate) struct SyncChangedClient;

impl PartialSchema for SyncChangedClient {
    fn schema() -> RefOr<Schema> {
        let object = spec_properties(closed(ObjectBuilder::new()), &earlier::SPEC, false)
            .property("id", body_client_id("the client to update"))
            .required("id")
            .property(
                earlier::NEED_RESTART,
                need_restart("mark the client for restart, as ?need_restart=true does"),
            );
        let object = ignored_times(object).examples([sync_client_example(1)]);
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for SyncChangedClient {
    fn name() -> Cow<'static, str> {
        "SyncServiceChangedClient".into()
    }
}

/// The body of syncService's `DELETE /api/client`.
pub(crate) struct SyncDeletedClient;

impl PartialSchema for SyncDeletedClient {
    fn schema() -> RefOr<Schema> {
        let object = spec_properties(closed(ObjectBuilder::new()), &earlier::SPEC, true)
            .property("id", body_client_id("the client to delete"))
            .required("id")
            .property(earlier::NEED_RESTART, need_restart("ignored"));
        let object = ignored_times(object)
            .description(Some("only `id` is used; the other fields of a Go `Client` may come along and are ignored"))
            .examples([serde_json::json!({"id": 1})]);
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for SyncDeletedClient {
    fn name() -> Cow<'static, str> {
        "SyncServiceDeletedClient".into()
    }
}

/// The body of syncService's `POST /api/algorithms` for `catalogue`.
pub(super) fn sync_status_schema(catalogue: &Catalogue) -> Object {
    let names: Vec<String> = catalogue
        .algorithms()
        .iter()
        .map(|a| a.slug().to_string())
        .collect();
    let object = closed(ObjectBuilder::new())
        .description(Some(format!(
            "syncService's AlgorithmStatus: client_id and a switch for every algorithm, {} (the upper-case names are accepted too)",
            names.join(", ")
        )))
        .property(earlier::CLIENT_ID, body_client_id("the client whose switches these are"))
        .required(earlier::CLIENT_ID)
        .property(
            earlier::ALGORITHM_ID,
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some("ignored")),
        );
    let mut object = switches(object, catalogue, true).build();
    // The example names a client, as a syncService client would.
    if let Some(serde_json::Value::Object(example)) = object.examples.first_mut() {
        example.insert(earlier::CLIENT_ID.to_owned(), 1.into());
    }
    object
}

/// The body of syncService's `POST /api/algorithms`.
pub(crate) struct SyncStatusInput;

impl PartialSchema for SyncStatusInput {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::Object(sync_status_schema(&Catalogue::default())))
    }
}

impl ToSchema for SyncStatusInput {
    fn name() -> Cow<'static, str> {
        "SyncServiceStatus".into()
    }
}

#[utoipa::path(post, path = "/api/client", tag = "syncService", operation_id = "syncservice_create_client",
    request_body(content = SyncNewClient, content_type = "application/json"),
    responses(
        (status = 200, description = "client created successfully", body = ClientReply),
        (status = 400, description = "malformed body, a field breaking its rule, or the policy", body = ErrorReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 408, description = "the body did not arrive in time", body = ErrorReply),
        (status = 409, description = "the name is taken", body = ErrorReply),
        (status = 413, description = "body over 64 KiB", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
pub(super) fn create_client() {}

#[utoipa::path(put, path = "/api/client", tag = "syncService", operation_id = "syncservice_update_client",
    request_body(content = SyncChangedClient, content_type = "application/json"),
    responses(
        (status = 200, description = "client updated successfully", body = ClientReply),
        (status = 400, description = "malformed body, a field breaking its rule, or the policy", body = ErrorReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 404, description = "no client has this id", body = ErrorReply),
        (status = 408, description = "the body did not arrive in time", body = ErrorReply),
        (status = 409, description = "the name is taken", body = ErrorReply),
        (status = 413, description = "body over 64 KiB", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
pub(super) fn update_client() {}

#[utoipa::path(delete, path = "/api/client", tag = "syncService", operation_id = "syncservice_delete_client",
    request_body(content = SyncDeletedClient, content_type = "application/json"),
    responses(
        (status = 200, description = "client deleted successfully; its pods go on the next pass", body = MessageReply),
        (status = 400, description = "malformed body or a bad id", body = ErrorReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 404, description = "no client has this id", body = ErrorReply),
        (status = 408, description = "the body did not arrive in time", body = ErrorReply),
        (status = 413, description = "body over 64 KiB", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
pub(super) fn delete_client() {}

#[utoipa::path(post, path = "/api/algorithms", tag = "syncService", operation_id = "syncservice_set_status",
    request_body(content = SyncStatusInput, content_type = "application/json"),
    responses(
        (status = 200, description = "status updated successfully", body = ClientReply),
        (status = 400, description = "malformed body, a missing switch, or a stored spec breaking the policy", body = ErrorReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 404, description = "no client has this id", body = ErrorReply),
        (status = 408, description = "the body did not arrive in time", body = ErrorReply),
        (status = 413, description = "body over 64 KiB", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
pub(super) fn set_status() {}
