//! `GET /api/openapi.json`: the API described as OpenAPI 3.1, generated with `utoipa` from the
//! response DTOs and the operation declarations below.
//!
//! The input rules that the edge enforces are stated as schema constraints, so a client (or a
//! fuzzer) that follows the document gets its writes accepted, and one that breaks it gets a
//! 400: the patterns here are tested against the domain parsers. The status bodies' keys come
//! from the configured catalogue, so the document is built for it when the routes are.
//! syncService's routes are described in `openapi_earlier.rs`.

// The operation declarations are functions only `utoipa::path` reads.
#![allow(dead_code)]

use std::borrow::Cow;

use alsy_domain::Catalogue;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::dto::{ClientDto, FailureDto, HeldDto, PageDto, PodDto, ReportDto, WaitingDto};
use crate::input::{SpecFields, V1_SPEC};
use crate::sync_state::{AlgorithmSyncDto, ListedClientDto, SyncDto, SyncedClientDto};

#[path = "openapi_earlier.rs"]
mod earlier;

use earlier::{
    SyncChangedClient, SyncDeletedClient, SyncNewClient, SyncStatusInput, sync_status_schema,
};

/// A client name: not blank (some character that is neither white space nor a control
/// character), and no control character anywhere. Spelled out rather than `\s`, whose meaning
/// differs between regex dialects; these are Rust's `char::is_whitespace` and `is_control`.
pub(crate) const NAME_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$";

/// A Kubernetes quantity greater than zero: an unsigned decimal with a non-zero digit, and an
/// optional binary, decimal or exponent suffix.
pub(crate) const QUANTITY_PATTERN: &str = r"^\+?([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$";

/// A container image reference, `[registry[:port]/]repo[:tag][@digest]`. A first component
/// with a dot (or a port, or upper case) is a registry and must be a valid host, which is why a
/// repository-only name may have a dot in its first component only when it has one component.
pub(crate) const IMAGE_PATTERN: &str = concat!(
    r"^(",
    // registry/path...
    r"([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]+)?",
    // an IPv6 literal counts as a registry only with a ':' or an upper-case letter in it
    r"|\[[0-9A-Fa-f:]*[:A-F][0-9A-Fa-f:]*\](:[0-9]+)?|\[[0-9a-f]+\]:[0-9]+)",
    r"/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*",
    // or path/path... with no dot in the first component
    r"|[a-z0-9]+((_|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)+",
    // or one path component
    r"|[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*",
    r")",
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?",
    r"(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?$",
);

pub(super) fn string(
    min: Option<usize>,
    max: usize,
    pattern: &str,
    description: &str,
) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(min)
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(description))
}

pub(super) fn closed(builder: ObjectBuilder) -> ObjectBuilder {
    builder
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
}

/// The properties of a client spec named as `names` says; required unless `loose`, in which
/// case they are also unchecked (syncService's `DELETE /api/client` ignores them).
pub(super) fn spec_properties(
    builder: ObjectBuilder,
    names: &SpecFields,
    loose: bool,
) -> ObjectBuilder {
    let quantity = |what: &str| match loose {
        true => ObjectBuilder::new().schema_type(Type::String),
        false => string(
            None,
            64,
            QUANTITY_PATTERN,
            &format!("{what}, a Kubernetes quantity greater than zero (500m, 2, 512Mi, 1G)"),
        ),
    };
    let checked = |builder: ObjectBuilder| {
        if loose {
            ObjectBuilder::new().schema_type(Type::String)
        } else {
            builder
        }
    };
    let mut version = ObjectBuilder::new().schema_type(Type::Integer);
    let mut priority = ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)));
    if !loose {
        version = version
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(0))
            .maximum(Some(i32::MAX));
        priority = priority.minimum(Some(0));
    }
    let builder = builder
        .property(
            names.name,
            checked(string(Some(1), 100, NAME_PATTERN, "unique; not blank, no control characters")),
        )
        .property(names.version, version)
        .property(
            names.image,
            checked(string(
                None,
                255,
                IMAGE_PATTERN,
                "container image reference [registry[:port]/]repo[:tag][@digest]; the operator's image policy may allow fewer (400 naming the rule)",
            )),
        )
        .property(names.cpu, quantity("CPU request and limit"))
        .property(names.mem, quantity("memory request and limit"))
        .property(names.priority, priority);
    match loose {
        true => builder,
        false => names
            .all()
            .into_iter()
            .fold(builder, ObjectBuilder::required),
    }
}

/// The body of `POST /api/v1/clients` and `PUT /api/v1/clients/{id}`.
pub(crate) struct ClientInput;

impl PartialSchema for ClientInput {
    fn schema() -> RefOr<Schema> {
        let object = spec_properties(closed(ObjectBuilder::new()), &V1_SPEC, false).examples([
            serde_json::json!({
                "name": "Jimbo", "version": 1, "image": "ghcr.io/acme/vwap:1.0",
                "cpu": "500m", "mem": "512Mi", "priority": 0.26
            }),
        ]);
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for ClientInput {
    fn name() -> Cow<'static, str> {
        "ClientInput".into()
    }
}

/// A client's switches, one boolean per algorithm of `catalogue`: the status body, and `status`
/// in a client.
pub(crate) fn status_schema(catalogue: &Catalogue) -> Object {
    let names: Vec<&str> = catalogue.algorithms().iter().map(|a| a.as_str()).collect();
    let object = closed(ObjectBuilder::new()).description(Some(format!(
        "every algorithm's switch: {} (the lower-case keys are accepted in a request too)",
        names.join(", ")
    )));
    switches(object, catalogue, false).build()
}

/// A boolean property for each algorithm of `catalogue`, all required, with an example that
/// switches the first one on.
pub(super) fn switches(
    mut object: ObjectBuilder,
    catalogue: &Catalogue,
    lower_case: bool,
) -> ObjectBuilder {
    let mut example = serde_json::Map::new();
    for (i, algorithm) in catalogue.algorithms().iter().enumerate() {
        let name = match lower_case {
            true => algorithm.slug().to_string(),
            false => algorithm.as_str().to_owned(),
        };
        object = object
            .property(&name, ObjectBuilder::new().schema_type(Type::Boolean))
            .required(&name);
        example.insert(name, serde_json::Value::Bool(i == 0));
    }
    object.examples([serde_json::Value::Object(example)])
}

/// The body of `PUT /api/v1/status/{id}`.
pub(crate) struct StatusInput;

impl PartialSchema for StatusInput {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::Object(status_schema(&Catalogue::default())))
    }
}

impl ToSchema for StatusInput {
    fn name() -> Cow<'static, str> {
        "StatusInput".into()
    }
}

/// Restates the schemas that depend on the catalogue for the configured one: the types above
/// can only describe the default.
struct ConfiguredCatalogue<'a>(&'a Catalogue);

impl Modify for ConfiguredCatalogue<'_> {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let status = || RefOr::T(Schema::Object(status_schema(self.0)));
        components
            .schemas
            .insert(StatusInput::name().into_owned(), status());
        components.schemas.insert(
            SyncStatusInput::name().into_owned(),
            RefOr::T(Schema::Object(sync_status_schema(self.0))),
        );
        if let Some(RefOr::T(Schema::Object(client))) = components.schemas.get_mut("Client") {
            client.properties.insert("status".to_owned(), status());
        }
    }
}

/// `?need_restart=`.
#[derive(ToSchema)]
enum NeedRestart {
    #[serde(rename = "true")]
    True,
    #[serde(rename = "false")]
    False,
    #[serde(rename = "1")]
    One,
    #[serde(rename = "0")]
    Zero,
}

/// `?state=`: a client sync summary.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
enum StateFilter {
    Synced,
    Progressing,
    Degraded,
}

/// `{"status":"ok"}`.
#[derive(ToSchema)]
struct OkReply {
    #[schema(pattern = "^ok$")]
    status: String,
}

/// A failure: `{"status":"error","message":"..."}`; the message names the problem.
#[derive(ToSchema)]
struct ErrorReply {
    #[schema(pattern = "^error$")]
    status: String,
    message: String,
}

/// A success with only a message: `{"status":"ok","message":"..."}`.
#[derive(ToSchema)]
struct MessageReply {
    #[schema(pattern = "^ok$")]
    status: String,
    message: String,
}

/// A client, in the envelope.
#[derive(ToSchema)]
struct ClientReply {
    #[schema(pattern = "^ok$")]
    status: String,
    message: Option<String>,
    data: ClientDto<'static>,
}

/// A client with its sync state, in the envelope; the message says when the state is unknown.
#[derive(ToSchema)]
struct ClientWithSyncReply {
    #[schema(pattern = "^ok$")]
    status: String,
    message: Option<String>,
    data: SyncedClientDto<'static>,
}

/// A page of clients, in the envelope.
#[derive(ToSchema)]
struct ClientPageReply {
    #[schema(pattern = "^ok$")]
    status: String,
    data: PageDto<'static>,
}

/// The pods the runtime reports, in the envelope.
#[derive(ToSchema)]
struct PodsReply {
    #[schema(pattern = "^ok$")]
    status: String,
    data: Vec<PodDto<'static>>,
}

/// The last pass's report (null before the first pass ends), in the envelope.
#[derive(ToSchema)]
struct LastPassReply {
    #[schema(pattern = "^ok$")]
    status: String,
    data: Option<ReportDto<'static>>,
}

/// A pass's report, in the envelope; a pass that could not read storage or the runtime is an
/// error that still carries its report.
#[derive(ToSchema)]
struct PassReply {
    #[schema(pattern = "^(ok|error)$")]
    status: String,
    message: Option<String>,
    data: ReportDto<'static>,
}

#[utoipa::path(get, path = "/api/health", tag = "probes",
    responses((status = 200, description = "the process is alive", body = OkReply)))]
fn health() {}

#[utoipa::path(get, path = "/api/ready", tag = "probes",
    responses(
        (status = 200, description = "storage answers", body = OkReply),
        (status = 503, description = "storage unavailable", body = ErrorReply)))]
fn ready() {}

#[utoipa::path(get, path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)",
        content_type = "application/openmetrics-text", body = String)))]
fn metrics() {}

#[utoipa::path(get, path = "/api/openapi.json", tag = "probes",
    responses((status = 200, description = "this document", body = Object)))]
fn openapi() {}

#[utoipa::path(get, path = "/api/v1/clients", tag = "clients",
    params(
        ("after" = Option<i64>, Query, minimum = 0, description = "list clients with ids above this one (0: from the start)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "page size, default 100"),
        ("state" = Option<StateFilter>, Query, description = "only the clients whose sync summary this is, each with its sync state (degraded: the clients that need a human); the page holds up to limit matches, and next is where the scan stopped"),
    ),
    responses(
        (status = 200, description = "a page of clients in id order", body = ClientPageReply),
        (status = 400, description = "a bad or unknown query parameter", body = ErrorReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 503, description = "storage unavailable, or with state, the pod runtime unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn list_clients() {}

#[utoipa::path(post, path = "/api/v1/clients", tag = "clients",
    request_body(content = ClientInput, content_type = "application/json"),
    responses(
        (status = 201, description = "client created successfully", body = ClientReply,
            headers(("Location" = String, description = "/api/v1/clients/{id}"))),
        (status = 400, description = "malformed body, a field breaking its rule, or the policy", body = ErrorReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 408, description = "the body did not arrive in time", body = ErrorReply),
        (status = 409, description = "the name is taken", body = ErrorReply),
        (status = 413, description = "body over 64 KiB", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn create_client() {}

#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients",
    params(("id" = i64, Path, minimum = 1, description = "the client's id")),
    responses(
        (status = 200, description = "the client with its switches and its sync state (null, with a message, when the pod runtime cannot say which pods run)", body = ClientWithSyncReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 404, description = "no such client", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn get_client() {}

#[utoipa::path(put, path = "/api/v1/clients/{id}", tag = "clients",
    params(
        ("id" = i64, Path, minimum = 1, description = "the client's id"),
        ("need_restart" = Option<NeedRestart>, Query, description = "mark the client for restart"),
    ),
    request_body(content = ClientInput, content_type = "application/json"),
    responses(
        (status = 200, description = "client updated successfully", body = ClientReply),
        (status = 400, description = "malformed body, a field breaking its rule, the policy, or a bad query parameter", body = ErrorReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 404, description = "no such client", body = ErrorReply),
        (status = 408, description = "the body did not arrive in time", body = ErrorReply),
        (status = 409, description = "the name is taken", body = ErrorReply),
        (status = 413, description = "body over 64 KiB", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn update_client() {}

#[utoipa::path(delete, path = "/api/v1/clients/{id}", tag = "clients",
    params(("id" = i64, Path, minimum = 1, description = "the client's id")),
    responses(
        (status = 204, description = "deleted; its pods go on the next pass"),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 404, description = "no such client", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn delete_client() {}

#[utoipa::path(get, path = "/api/v1/status/{id}", tag = "status",
    params(("id" = i64, Path, minimum = 1, description = "the client's id")),
    responses(
        (status = 200, description = "the client with its switches and its sync state (null, with a message, when the pod runtime cannot say which pods run)", body = ClientWithSyncReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 404, description = "no such client", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn get_status() {}

#[utoipa::path(put, path = "/api/v1/status/{id}", tag = "status",
    params(
        ("id" = i64, Path, minimum = 1, description = "the client's id"),
        ("need_restart" = Option<NeedRestart>, Query, description = "mark the client for restart"),
    ),
    request_body(content = StatusInput, content_type = "application/json"),
    responses(
        (status = 200, description = "status updated successfully", body = ClientReply),
        (status = 400, description = "malformed body, a missing switch, a stored spec breaking the policy, or a bad query parameter", body = ErrorReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 404, description = "no such client", body = ErrorReply),
        (status = 408, description = "the body did not arrive in time", body = ErrorReply),
        (status = 413, description = "body over 64 KiB", body = ErrorReply),
        (status = 503, description = "storage unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn set_status() {}

#[utoipa::path(get, path = "/api/v1/pods", tag = "reconciliation",
    responses(
        (status = 200, description = "the managed pods the runtime reports now", body = PodsReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 503, description = "pod runtime unavailable", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn pods() {}

#[utoipa::path(get, path = "/api/v1/sync", tag = "reconciliation",
    responses(
        (status = 200, description = "the last pass's report, null before the first", body = LastPassReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
    ),
    security(("bearer" = [])))]
fn last_pass() {}

#[utoipa::path(post, path = "/api/v1/sync", tag = "reconciliation",
    responses(
        (status = 200, description = "the report of a pass run now (after any running one)", body = PassReply),
        (status = 401, description = "no valid bearer token", body = ErrorReply),
        (status = 403, description = "the token's role is read", body = ErrorReply),
        (status = 503, description = "the pass could not read storage or the runtime (with its report), or did not finish within the write timeout", body = PassReply),
    ),
    security(("bearer" = [])))]
fn sync_now() {}

/// Links from a created client to the operations on it, so a client of the document (and the
/// fuzzer's stateful phase) knows that `data.id` of the 201 is the `{id}` of the others.
struct CreatedClientLinks;

impl Modify for CreatedClientLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let created = openapi
            .paths
            .paths
            .get_mut("/api/v1/clients")
            .and_then(|item| item.post.as_mut())
            .and_then(|post| post.responses.responses.get_mut("201"));
        let Some(RefOr::T(created)) = created else {
            return;
        };
        for (name, operation) in [
            ("GetClient", "get_client"),
            ("UpdateClient", "update_client"),
            ("DeleteClient", "delete_client"),
            ("GetStatus", "get_status"),
            ("SetStatus", "set_status"),
        ] {
            let link = LinkBuilder::new()
                .operation_id(operation)
                .parameter("id", "$response.body#/data/id")
                .build();
            created.links.insert(name.to_owned(), RefOr::T(link));
        }
    }
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "a token minted with `alsy token NAME ROLE`; role read may GET, role write may do everything. Only when the service has a tokens file.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "alsy", description = "Keeps Kubernetes pods equal to per-client algorithm switches. Every body is the envelope {\"status\",\"message\",\"data\"}; every response carries X-Request-Id."),
    paths(health, ready, metrics, openapi, list_clients, create_client, get_client, update_client,
        delete_client, get_status, set_status, pods, last_pass, sync_now,
        earlier::create_client, earlier::update_client, earlier::delete_client,
        earlier::set_status),
    components(schemas(ClientInput, StatusInput, NeedRestart, StateFilter, ClientDto, PageDto,
        ListedClientDto, SyncedClientDto, SyncDto, AlgorithmSyncDto, PodDto, ReportDto,
        FailureDto, WaitingDto, HeldDto, OkReply, MessageReply, ErrorReply, SyncNewClient,
        SyncChangedClient, SyncDeletedClient, SyncStatusInput)),
    modifiers(&BearerScheme, &CreatedClientLinks),
)]
struct ApiDoc;

/// The document for a service running `catalogue`'s algorithms, as JSON.
pub(crate) fn document(catalogue: &Catalogue) -> Result<String, String> {
    let mut doc = ApiDoc::openapi();
    ConfiguredCatalogue(catalogue).modify(&mut doc);
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut value = serde_json::to_value(&doc)
        .map_err(|e| format!("the OpenAPI document did not serialise: {e}"))?;
    camel_case_links(&mut value);
    Ok(value.to_string())
}

/// utoipa 5.5 writes a Link object's fields in snake case (`operation_id`), which no OpenAPI
/// tool reads; the specification spells them `operationId`, `operationRef`, `requestBody`.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
