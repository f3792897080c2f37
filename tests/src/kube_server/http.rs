//! The test API server's HTTP side: routes the pods API paths, records every request, applies
//! injected latency and faults, and answers with the store's JSON.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use tokio::time::Instant;
use warp::Filter;
use warp::http::{Method, header};
use warp::hyper::body::Bytes;
use warp::reply::{Reply, Response};

use super::store::{Answer, Store, injected, injected_with, status};
use super::{Fault, RecordedRequest, Verb, watch};

pub(crate) type Shared = Arc<Mutex<Store>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, Store> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a request asks for.
enum Route {
    Pods {
        verb: Verb,
        namespace: String,
        name: Option<String>,
    },
    Version,
    Unknown,
    WrongMethod,
}

impl Route {
    fn parse(method: &Method, path: &str) -> Route {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["version"] if method == Method::GET => Route::Version,
            ["api", "v1", "namespaces", ns, "pods"] => {
                let verb = match *method {
                    Method::GET => Verb::List,
                    Method::POST => Verb::Create,
                    _ => return Route::WrongMethod,
                };
                Route::Pods {
                    verb,
                    namespace: ns.to_string(),
                    name: None,
                }
            }
            ["api", "v1", "namespaces", ns, "pods", name] => {
                let verb = match *method {
                    Method::GET => Verb::Get,
                    Method::DELETE => Verb::Delete,
                    _ => return Route::WrongMethod,
                };
                let name = Some(name.to_string());
                Route::Pods {
                    verb,
                    namespace: ns.to_string(),
                    name,
                }
            }
            _ => Route::Unknown,
        }
    }
}

/// Every request goes to [`handle`].
pub(crate) fn routes(
    shared: Shared,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::<Vec<(String, String)>>())
        .and(warp::body::bytes())
        .and_then(move |method, path: warp::path::FullPath, query, body| {
            let shared = shared.clone();
            async move { handle(shared, method, path.as_str().to_owned(), query, body).await }
        })
}

async fn handle(
    shared: Shared,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Bytes,
) -> Result<Response, Infallible> {
    let mut route = Route::parse(&method, &path);
    let watching = query
        .iter()
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    if let Route::Pods {
        verb: verb @ Verb::List,
        ..
    } = &mut route
        && watching
    {
        *verb = Verb::Watch;
    }
    let (verb, pod) = match &route {
        Route::Pods {
            verb: Verb::Create, ..
        } => (Some(Verb::Create), name_in(&body)),
        Route::Pods { verb, name, .. } => (Some(*verb), name.clone()),
        _ => (None, None),
    };
    let (latency, fault) = {
        let mut store = lock(&shared);
        store.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            verb,
            pod: pod.clone(),
            at: Instant::now(),
        });
        let fault = verb.and_then(|v| store.take_fault(v, pod.as_deref()));
        (store.latency, fault)
    };
    if let Some(Fault::Hold(gate)) = &fault {
        gate.pass().await;
    }
    let delay = match &fault {
        Some(Fault::Delay(extra)) => latency + *extra,
        _ => latency,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let (
        None | Some(Fault::Delay(_) | Fault::Hold(_)),
        Route::Pods {
            verb: Verb::Watch,
            namespace,
            ..
        },
    ) = (&fault, &route)
    {
        return Ok(watch::respond(&shared, namespace, &query).unwrap_or_else(respond));
    }
    let answer = match (fault, route) {
        (Some(Fault::Status(code)), _) => injected(code, pod.as_deref()),
        (Some(Fault::Throttle { code, retry_after }), _) => {
            injected_with(code, pod.as_deref(), Some(retry_after))
        }
        (_, Route::Version) => version(),
        (_, Route::Unknown) => status(
            404,
            "the server could not find the requested resource".into(),
            None,
        ),
        (_, Route::WrongMethod) => status(405, format!("{method} is not supported here"), None),
        (
            _,
            Route::Pods {
                verb,
                namespace,
                name,
            },
        ) => {
            let mut store = lock(&shared);
            let name = name.unwrap_or_default();
            match verb {
                Verb::List | Verb::Watch => store.list(&namespace, &query),
                Verb::Get => store.get(&namespace, &name),
                Verb::Create => store.create(&namespace, &body),
                Verb::Delete => store.delete(&namespace, &name, &body),
            }
        }
    };
    Ok(respond(answer))
}

/// `metadata.name` of a create body, to match injections and record which pod was touched.
fn name_in(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    Some(value.get("metadata")?.get("name")?.as_str()?.to_owned())
}

fn version() -> Answer {
    let body = json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-alsy-test",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
    });
    Answer {
        code: 200,
        body,
        retry_after: None,
    }
}

fn respond(answer: Answer) -> Response {
    let mut builder = warp::http::Response::builder()
        .status(answer.code)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(seconds) = answer.retry_after {
        builder = builder.header(header::RETRY_AFTER, seconds.to_string());
    }
    builder.body(answer.body.to_string()).into_response()
}
