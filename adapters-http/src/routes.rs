//! The route table of README.md's "HTTP API" as warp filters.
//!
//! Every route matches its path first and its method second, so a known path with the wrong
//! method is 405 and an unknown path is 404. Handlers never reject: they return an
//! [`Outcome`], and what warp itself rejects (no route, wrong method, an undecodable query) is
//! caught in one place. Either way [`render`] turns failures into the JSON envelope, so every
//! response, errors included, has the same shape.
//!
//! [`ROUTES`] lists every route template with its methods: it gives the metrics their `route`
//! label and 405 answers their `Allow` header, and a test checks it against both what this
//! router serves and the OpenAPI document.

use std::convert::Infallible;

use alsy_app::Service;
use slog::{Logger, error, o, warn};
use warp::filters::BoxedFilter;
use warp::http::Method;
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::auth::Authenticator;
use crate::body::{self, BodyDeadline};
use crate::envelope;
use crate::error::{ApiError, from_rejection};
use crate::handlers::{self, Failed, Outcome};
use crate::input::Query;
use crate::metrics::Metrics;
use crate::request_id::RequestId;

/// A route template and the methods it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRoute {
    /// The path, `{id}` standing for one segment.
    pub template: &'static str,
    /// The methods served, in the order `Allow` lists them.
    pub methods: &'static [&'static str],
}

/// Every route this router serves.
pub const ROUTES: &[ApiRoute] = &[
    ApiRoute {
        template: "/api/health",
        methods: &["GET"],
    },
    ApiRoute {
        template: "/api/ready",
        methods: &["GET"],
    },
    ApiRoute {
        template: "/metrics",
        methods: &["GET"],
    },
    ApiRoute {
        template: "/api/openapi.json",
        methods: &["GET"],
    },
    ApiRoute {
        template: "/api/v1/clients",
        methods: &["GET", "POST"],
    },
    ApiRoute {
        template: "/api/v1/clients/{id}",
        methods: &["GET", "PUT", "DELETE"],
    },
    ApiRoute {
        template: "/api/v1/status/{id}",
        methods: &["GET", "PUT"],
    },
    ApiRoute {
        template: "/api/v1/pods",
        methods: &["GET"],
    },
    ApiRoute {
        template: "/api/v1/sync",
        methods: &["GET", "POST"],
    },
    ApiRoute {
        template: "/api/client",
        methods: &["POST", "PUT", "DELETE"],
    },
    ApiRoute {
        template: "/api/algorithms",
        methods: &["POST"],
    },
];

/// The route whose template `path` fits, if any.
///
/// Every request asks this (for the metrics' `route` label), so it compares bytes in one walk
/// per template instead of splitting both into segments: splitting cost about 4,000 instructions
/// a request, 3–4 % of a whole read (callgrind, bench/README.md).
pub(crate) fn route_of(path: &str) -> Option<&'static ApiRoute> {
    ROUTES.iter().find(|route| fits(route.template, path))
}

/// Whether `path` fits `template`, where `{id}` stands for one non-empty segment.
fn fits(template: &str, path: &str) -> bool {
    let (template, path) = (template.as_bytes(), path.as_bytes());
    let (mut t, mut p) = (0, 0);
    while t < template.len() {
        if template[t..].starts_with(b"{id}") {
            let segment = path[p..].iter().take_while(|&&b| b != b'/').count();
            if segment == 0 {
                return false;
            }
            (t, p) = (t + 4, p + segment);
        } else if path.get(p) == Some(&template[t]) {
            (t, p) = (t + 1, p + 1);
        } else {
            return false;
        }
    }
    p == path.len()
}

/// What wraps the routes in every exchange: who may call, and what gets counted.
#[derive(Clone)]
pub(crate) struct Guard {
    pub auth: Authenticator,
    pub metrics: Metrics,
    pub log: Logger,
}

/// The whole API, ready for [`crate::serve`]: the routes, and the guard around them.
#[derive(Clone)]
pub struct Routes {
    pub(crate) filter: BoxedFilter<(Response,)>,
    pub(crate) guard: Guard,
}

/// Builds every route of the API over `service`, with `auth` deciding who may call and
/// `metrics` counting; failures are logged under component `api/http`.
pub fn routes(service: Service, auth: Authenticator, metrics: Metrics, log: &Logger) -> Routes {
    let log = log.new(o!("component" => "api/http"));
    let api = system(&service, &metrics)
        .or(clients(&service))
        .unify()
        .or(statuses(&service))
        .unify()
        .or(sync(&service))
        .unify()
        .or(earlier(&service))
        .unify();
    let recovered = api.or_else(|rejection: Rejection| async move {
        Ok::<(Outcome,), Infallible>((Err(Failed::Rejected(rejection)),))
    });
    let context = warp::ext::optional::<RequestId>()
        .map(|id: Option<RequestId>| id.unwrap_or_else(RequestId::generate))
        .and(warp::method())
        .and(warp::path::full());
    let render_log = log.clone();
    let filter = context
        .and(recovered)
        .map(
            move |id: RequestId, method: Method, path: FullPath, outcome: Outcome| {
                render(&render_log, &id, &method, path.as_str(), outcome)
            },
        )
        .boxed();
    Routes {
        filter,
        guard: Guard { auth, metrics, log },
    }
}

type Route = BoxedFilter<(Outcome,)>;

fn with_service(
    service: &Service,
) -> impl Filter<Extract = (Service,), Error = Infallible> + Clone + use<> {
    let service = service.clone();
    warp::any().map(move || service.clone())
}

/// The request body, read with the size limit and the read deadline.
fn body() -> impl Filter<Extract = (Result<Vec<u8>, ApiError>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::ext::optional::<BodyDeadline>())
        .and(warp::body::stream())
        .then(body::read)
}

fn query() -> impl Filter<Extract = (Query,), Error = Rejection> + Clone {
    warp::query::<Query>()
}

/// For a route that takes no query parameters: any parameter is 400, as on every other route.
fn no_query() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    query()
        .and_then(|query: Query| async move {
            crate::input::no_parameters(&query)
                .map_err(|message| warp::reject::custom(UnknownQuery(message)))
        })
        .untuple_one()
}

/// A query parameter the route does not take; [`from_rejection`] makes it a 400.
#[derive(Debug)]
pub(crate) struct UnknownQuery(pub(crate) String);

impl warp::reject::Reject for UnknownQuery {}

/// `/api/health`, `/api/ready`, `/api/v1/pods`, `/metrics`, `/api/openapi.json`.
fn system(service: &Service, metrics: &Metrics) -> Route {
    let health = warp::path!("api" / "health")
        .and(warp::get())
        .and(no_query())
        .then(handlers::health);
    let ready = warp::path!("api" / "ready")
        .and(warp::get())
        .and(no_query())
        .and(with_service(service))
        .then(handlers::ready);
    let pods = warp::path!("api" / "v1" / "pods")
        .and(warp::get())
        .and(no_query())
        .and(with_service(service))
        .then(handlers::pods);
    let metrics = metrics.clone();
    let scrape = warp::path!("metrics")
        .and(warp::get())
        .and(with_service(service))
        .then(move |service| handlers::metrics(service, metrics.clone()));
    // Built once, for the configured catalogue; a failure is answered 500 on each request.
    let document = std::sync::Arc::new(crate::openapi::document(service.catalogue()));
    let description = warp::path!("api" / "openapi.json")
        .and(warp::get())
        .map(move || document.clone())
        .then(handlers::openapi);
    health
        .or(ready)
        .unify()
        .or(pods)
        .unify()
        .or(scrape)
        .unify()
        .or(description)
        .unify()
        .boxed()
}

/// `/api/v1/clients` and `/api/v1/clients/{id}`.
fn clients(service: &Service) -> Route {
    let list = warp::path!("api" / "v1" / "clients")
        .and(warp::get())
        .and(with_service(service))
        .and(query())
        .then(handlers::list_clients);
    let create = warp::path!("api" / "v1" / "clients")
        .and(warp::post())
        .and(no_query())
        .and(with_service(service))
        .and(body())
        .then(handlers::create_client);
    let item = || warp::path!("api" / "v1" / "clients" / String);
    let get = item()
        .and(warp::get())
        .and(no_query())
        .and(with_service(service))
        .then(handlers::get_client);
    let update = item()
        .and(warp::put())
        .and(with_service(service))
        .and(query())
        .and(body())
        .then(handlers::update_client);
    let delete = item()
        .and(warp::delete())
        .and(no_query())
        .and(with_service(service))
        .then(handlers::delete_client);
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

/// `/api/v1/status/{id}`.
fn statuses(service: &Service) -> Route {
    let item = || warp::path!("api" / "v1" / "status" / String);
    let get = item()
        .and(warp::get())
        .and(no_query())
        .and(with_service(service))
        .then(handlers::get_client);
    let set = item()
        .and(warp::put())
        .and(with_service(service))
        .and(query())
        .and(body())
        .then(handlers::set_status);
    get.or(set).unify().boxed()
}

/// `/api/v1/sync`.
fn sync(service: &Service) -> Route {
    let last = warp::path!("api" / "v1" / "sync")
        .and(warp::get())
        .and(no_query())
        .and(with_service(service))
        .then(handlers::last_pass);
    let now = warp::path!("api" / "v1" / "sync")
        .and(warp::post())
        .and(no_query())
        .and(with_service(service))
        .then(handlers::sync_now);
    last.or(now).unify().boxed()
}

/// syncService's `/api/client` and `/api/algorithms` (`crate::earlier`).
fn earlier(service: &Service) -> Route {
    let client = || warp::path!("api" / "client");
    let create = client()
        .and(warp::post())
        .and(no_query())
        .and(with_service(service))
        .and(body())
        .then(crate::earlier::create_client);
    let update = client()
        .and(warp::put())
        .and(no_query())
        .and(with_service(service))
        .and(body())
        .then(crate::earlier::update_client);
    let delete = client()
        .and(warp::delete())
        .and(no_query())
        .and(with_service(service))
        .and(body())
        .then(crate::earlier::delete_client);
    let status = warp::path!("api" / "algorithms")
        .and(warp::post())
        .and(no_query())
        .and(with_service(service))
        .and(body())
        .then(crate::earlier::set_status);
    create
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(status)
        .unify()
        .boxed()
}

/// The one place a failure becomes a response: its status, its public message, and for 5xx a
/// log line with the detail and the request id the client was given.
fn render(log: &Logger, id: &RequestId, method: &Method, path: &str, outcome: Outcome) -> Response {
    let err = match outcome {
        Ok(response) => return response,
        Err(Failed::Api(err)) => err,
        Err(Failed::Rejected(rejection)) => from_rejection(&rejection, method.as_str(), path),
    };
    if let Some(detail) = err.detail() {
        let status = err.status().as_u16();
        if matches!(err, ApiError::Internal(_)) {
            error!(log, "request failed"; "request_id" => %id, "method" => %method, "path" => path,
                "status" => status, "error" => detail);
        } else {
            warn!(log, "request failed"; "request_id" => %id, "method" => %method, "path" => path,
                "status" => status, "error" => detail);
        }
    }
    let response = envelope::error(err.status(), &err.public_message(id));
    match (&err, route_of(path)) {
        // RFC 9110: a 405 says which methods the resource does serve.
        (ApiError::MethodNotAllowed { .. }, Some(route)) => envelope::with_header(
            response,
            warp::http::header::ALLOW,
            &route.methods.join(", "),
        ),
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(path: &str) -> Option<&'static str> {
        route_of(path).map(|r| r.template)
    }

    #[test]
    fn a_path_fits_its_template_and_an_id_is_one_non_empty_segment() {
        assert_eq!(template("/api/v1/clients"), Some("/api/v1/clients"));
        assert_eq!(template("/api/v1/clients/7"), Some("/api/v1/clients/{id}"));
        assert_eq!(
            template("/api/v1/clients/abc"),
            Some("/api/v1/clients/{id}")
        );
        assert_eq!(
            template("/api/v1/status/12345"),
            Some("/api/v1/status/{id}")
        );
        assert_eq!(template("/metrics"), Some("/metrics"));
        for unmatched in [
            "",
            "/",
            "/api/v1/clients/",
            "/api/v1/clients//",
            "/api/v1/clients/7/",
            "/api/v1/clients/7/x",
            "/api/v1/client",
            "/api/v1/clientsx",
            "/api/v1/clients7",
            "/metricsx",
            "/api/v1/status",
            "api/v1/clients",
        ] {
            assert_eq!(template(unmatched), None, "{unmatched:?}");
        }
    }
}
