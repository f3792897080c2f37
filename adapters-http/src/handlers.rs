//! One handler per endpoint: parse the input, call the use case, shape the reply. Handlers
//! never reject; failures travel as [`Failed`] to the one place that renders them.

use alsy_app::{FailedPart, PassOutcome, Service, ServiceError};
use alsy_domain::{AlgorithmStatus, ClientId, ClientSpec};
use warp::http::StatusCode;
use warp::http::header::LOCATION;
use warp::reply::Response;

use crate::audit::{Audit, Changed};
use crate::dto::{ClientDto, PageDto, PodDto, ReportDto};
use crate::envelope;
use crate::error::ApiError;
use crate::input::{self, Query};
use crate::metrics::Metrics;
use crate::sync_state::SyncedClientDto;

/// Why a request failed: a handler's error, or warp's own rejection (no route, wrong method).
pub(crate) enum Failed {
    Api(ApiError),
    Rejected(warp::Rejection),
}

impl From<ApiError> for Failed {
    fn from(err: ApiError) -> Failed {
        Failed::Api(err)
    }
}

impl From<ServiceError> for Failed {
    fn from(err: ServiceError) -> Failed {
        Failed::Api(err.into())
    }
}

/// What a handler produces.
pub(crate) type Outcome = Result<Response, Failed>;

/// A body as read by [`crate::body::read`].
pub(crate) type Body = Result<Vec<u8>, ApiError>;

pub(crate) fn bad_request(message: String) -> Failed {
    ApiError::BadRequest(message).into()
}

/// The client a `{id}` segment names; a segment that cannot be an id names no client (404).
fn client_id(segment: &str) -> Result<ClientId, Failed> {
    input::client_id(segment).ok_or_else(|| {
        let short_digits = segment.len() <= 32 && segment.bytes().all(|b| b.is_ascii_digit());
        let message = if short_digits && !segment.is_empty() {
            format!("client {segment} not found")
        } else {
            "client not found".to_owned()
        };
        ApiError::NotFound(message).into()
    })
}

/// `GET /api/health`: the process is alive.
pub(crate) async fn health() -> Outcome {
    Ok(envelope::ok_empty(StatusCode::OK))
}

/// `GET /api/ready`: the watcher runs and storage answers.
pub(crate) async fn ready(service: Service) -> Outcome {
    match service.ready().await {
        Ok(()) => Ok(envelope::ok_empty(StatusCode::OK)),
        Err(err) => Err(match ApiError::from(err) {
            unavailable @ ApiError::Unavailable { .. } => unavailable,
            // Not ready, whatever the reason: 503 so a load balancer takes the replica out.
            other => ApiError::Unavailable {
                message: ApiError::STORAGE_UNAVAILABLE,
                detail: other.detail().unwrap_or_default().to_owned(),
            },
        }
        .into()),
    }
}

/// `POST /api/v1/clients`.
pub(crate) async fn create_client(service: Service, body: Body) -> Outcome {
    let spec = input::client_spec(&body?).map_err(bad_request)?;
    let client = service.create_client(spec).await?;
    let location = format!("/api/v1/clients/{}", client.id);
    let response = envelope::ok(
        StatusCode::CREATED,
        Some("client created successfully"),
        Some(&ClientDto::new(&client, service.catalogue())),
    );
    let response = envelope::with_header(response, LOCATION, &location);
    Ok(Audit::client(
        "client created",
        client.id,
        Changed::fields(Changed::SPEC_FIELDS),
    )
    .attach(response))
}

/// `GET /api/v1/clients?after=ID&limit=N[&state=S]`: a page of clients; with `state`, only the
/// clients whose sync summary it names, each with its sync state.
pub(crate) async fn list_clients(service: Service, query: Query) -> Outcome {
    let (page, state) = input::client_list(&query).map_err(bad_request)?;
    if let Some(state) = state {
        let page = service.clients_in_state(page, state).await?;
        return Ok(envelope::ok(
            StatusCode::OK,
            None,
            Some(&PageDto::with_sync(&page, service.catalogue())),
        ));
    }
    let page = service.clients(page).await?;
    Ok(envelope::ok(
        StatusCode::OK,
        None,
        Some(&PageDto::new(&page, service.catalogue())),
    ))
}

/// `GET /api/v1/clients/{id}` and `GET /api/v1/status/{id}`: the client with its switches and
/// its sync state.
pub(crate) async fn get_client(segment: String, service: Service) -> Outcome {
    let (client, sync) = service.client_with_sync(client_id(&segment)?).await?;
    let (dto, message) = SyncedClientDto::of(&client, service.catalogue(), &sync);
    Ok(envelope::ok(StatusCode::OK, message, Some(&dto)))
}

/// `PUT /api/v1/clients/{id}?need_restart=...`.
pub(crate) async fn update_client(
    segment: String,
    service: Service,
    query: Query,
    body: Body,
) -> Outcome {
    let id = client_id(&segment)?;
    let need_restart = input::need_restart(&query).map_err(bad_request)?;
    let spec = input::client_spec(&body?).map_err(bad_request)?;
    update(service, id, spec, need_restart).await
}

/// Updates client `id` and answers 200 with it: `PUT /api/v1/clients/{id}` and syncService's
/// `PUT /api/client`.
pub(crate) async fn update(
    service: Service,
    id: ClientId,
    spec: ClientSpec,
    need_restart: bool,
) -> Outcome {
    let client = service.update_client(id, spec, need_restart).await?;
    let response = envelope::ok(
        StatusCode::OK,
        Some("client updated successfully"),
        Some(&ClientDto::new(&client, service.catalogue())),
    );
    let changed = Changed::Fields {
        names: Changed::SPEC_FIELDS,
        need_restart,
    };
    Ok(Audit::client("client updated", id, changed).attach(response))
}

/// `DELETE /api/v1/clients/{id}`.
pub(crate) async fn delete_client(segment: String, service: Service) -> Outcome {
    let id = client_id(&segment)?;
    service.delete_client(id).await?;
    Ok(
        Audit::client("client deleted", id, Changed::fields("client"))
            .attach(envelope::no_content()),
    )
}

/// `PUT /api/v1/status/{id}?need_restart=...`.
pub(crate) async fn set_status(
    segment: String,
    service: Service,
    query: Query,
    body: Body,
) -> Outcome {
    let id = client_id(&segment)?;
    let need_restart = input::need_restart(&query).map_err(bad_request)?;
    let status = input::algorithm_status(&body?, service.catalogue()).map_err(bad_request)?;
    switch(service, id, status, need_restart).await
}

/// Stores client `id`'s switches and answers 200 with it: `PUT /api/v1/status/{id}` and
/// syncService's `POST /api/algorithms`.
pub(crate) async fn switch(
    service: Service,
    id: ClientId,
    status: AlgorithmStatus,
    need_restart: bool,
) -> Outcome {
    let client = service.set_status(id, status, need_restart).await?;
    let response = envelope::ok(
        StatusCode::OK,
        Some("status updated successfully"),
        Some(&ClientDto::new(&client, service.catalogue())),
    );
    // The switches as written (`set_status` answers with them), formatted only if logged.
    let changed = Changed::Switches {
        status: client.status,
        catalogue: service.catalogue().clone(),
        need_restart,
    };
    Ok(Audit::client("status updated", id, changed).attach(response))
}

/// `GET /api/v1/pods`.
pub(crate) async fn pods(service: Service) -> Outcome {
    let pods = service.pods().await?;
    let pods: Vec<PodDto> = pods.iter().map(PodDto::from).collect();
    Ok(envelope::ok(StatusCode::OK, None, Some(&pods)))
}

/// `GET /api/v1/sync`: the last pass's report, `null` before the first pass ends.
pub(crate) async fn last_pass(service: Service) -> Outcome {
    let report = service.last_pass();
    // `Some(None)`: the key is there, `"data": null`, meaning "no pass has finished yet".
    let report = report.as_deref().map(ReportDto::from);
    Ok(envelope::ok(StatusCode::OK, None, Some(&report)))
}

/// `POST /api/v1/sync`: a fresh pass's report. A pass that could not read storage or the
/// runtime is 503 with its report, so a caller sees both that it failed and why.
pub(crate) async fn sync_now(service: Service) -> Outcome {
    // The pass runs in its own task: a client that goes away, or the write timeout, must not
    // cancel a pass half-way through its pod operations.
    let report = tokio::spawn(async move { service.sync_now().await })
        .await
        .map_err(|e| ApiError::Internal(format!("the sync task failed: {e}")))??;
    let body = ReportDto::from(&*report);
    let audit = Audit::sync();
    match &report.outcome {
        PassOutcome::Completed | PassOutcome::Skipped => {
            Ok(audit.attach(envelope::ok(StatusCode::OK, None, Some(&body))))
        }
        PassOutcome::Failed { part, .. } => Ok(audit.attach(envelope::error_with(
            StatusCode::SERVICE_UNAVAILABLE,
            match part {
                FailedPart::Storage => ApiError::STORAGE_UNAVAILABLE,
                FailedPart::Runtime => ApiError::RUNTIME_UNAVAILABLE,
            },
            &body,
        ))),
    }
}

/// `GET /metrics`: Prometheus text, storage connections read from the pool now.
pub(crate) async fn metrics(service: Service, metrics: Metrics) -> Outcome {
    let text = metrics
        .encode(service.storage_connections())
        .map_err(ApiError::Internal)?;
    let mut response = warp::reply::Response::new(text.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    Ok(response)
}

/// `GET /api/openapi.json`: the API description, built with the routes.
pub(crate) async fn openapi(document: std::sync::Arc<Result<String, String>>) -> Outcome {
    let document = document.as_ref().clone().map_err(ApiError::Internal)?;
    let mut response = warp::reply::Response::new(document.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_that_cannot_be_a_client_is_not_found() {
        let message = |segment: &str| match client_id(segment) {
            Err(Failed::Api(err)) => err.to_string(),
            _ => String::new(),
        };
        assert_eq!(message("0"), "client 0 not found");
        assert_eq!(message("abc"), "client not found");
        assert_eq!(
            message("99999999999999999999"),
            "client 99999999999999999999 not found"
        );
        assert!(client_id("12").is_ok());
    }
}
