//! `/metrics` and `/api/openapi.json` over real HTTP: counts after a known sequence, parsed by a
//! real OpenMetrics parser; one series per route template however many ids are requested; the
//! document and the router agree on every route, and a 405 says what is allowed.

use std::collections::BTreeSet;

use alsy_http::ROUTES;
use alsy_tests::app::TestApp;
use alsy_tests::fixtures::client_body;
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue, Sample};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

type Scrape = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

async fn scrape(app: &TestApp) -> Scrape {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .expect("the scrape parses as OpenMetrics")
}

fn label<'s>(sample: &'s Sample<OpenMetricsValue>, family: &'s str, name: &str) -> Option<String> {
    let _ = family;
    sample
        .get_labelset()
        .ok()
        .and_then(|set| set.get_label_value(name).map(str::to_owned))
}

/// The samples of family `name` (`alsy_http_requests` for `alsy_http_requests_total`) with
/// `labels`.
fn samples<'s>(
    scrape: &'s Scrape,
    name: &'s str,
    labels: &[(&str, &str)],
) -> Vec<&'s Sample<OpenMetricsValue>> {
    let Some(family) = scrape.families.get(name) else {
        return Vec::new();
    };
    family
        .iter_samples()
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| label(s, name, k).as_deref() == Some(*v))
        })
        .collect()
}

/// The value of the one sample of family `name` with `labels` (a histogram's: its count).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(scrape, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    match &found[0].value {
        OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
        OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
        OpenMetricsValue::Histogram(histogram) => histogram.count.unwrap_or_default() as f64,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_scrape_counts_a_known_sequence_of_requests_and_passes() {
    let app = TestApp::spawn().await;
    let first = app.create_client("One").await;
    let second = app.create_client("Two").await;
    app.get(&format!("/api/v1/clients/{first}")).await;
    app.get(&format!("/api/v1/clients/{second}")).await;
    app.get("/api/v1/clients/999").await;
    app.put_status(first, json!({"VWAP": true, "TWAP": true, "HFT": false}))
        .await;
    app.sync().await;
    let failing = alsy_domain::PodName::parse(&format!("vwap-{second}")).unwrap();
    app.runtime().fail_next(&failing, 1);
    app.put_status(second, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    app.sync().await;
    app.request(Method::PATCH, "/api/v1/pods", None).await;

    let scrape = scrape(&app).await;
    let requests = "alsy_http_requests";
    let item = "/api/v1/clients/{id}";
    assert_eq!(
        value(
            &scrape,
            requests,
            &[
                ("method", "POST"),
                ("route", "/api/v1/clients"),
                ("status", "201")
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &scrape,
            requests,
            &[("method", "GET"), ("route", item), ("status", "200")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &scrape,
            requests,
            &[("method", "GET"), ("route", item), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            requests,
            &[
                ("method", "PUT"),
                ("route", "/api/v1/status/{id}"),
                ("status", "200")
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &scrape,
            requests,
            &[
                ("method", "PATCH"),
                ("route", "/api/v1/pods"),
                ("status", "405")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "alsy_http_request_duration_seconds",
            &[("route", item)]
        ),
        3.0
    );
    let passes = "alsy_reconcile_passes";
    assert_eq!(
        value(
            &scrape,
            passes,
            &[("trigger", "startup"), ("outcome", "completed")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            passes,
            &[("trigger", "request"), ("outcome", "completed")]
        ),
        2.0
    );
    assert_eq!(
        value(&scrape, "alsy_reconcile_pass_duration_seconds", &[]),
        3.0
    );
    let operations = "alsy_pod_operations";
    assert_eq!(
        value(
            &scrape,
            operations,
            &[("operation", "create"), ("outcome", "succeeded")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &scrape,
            operations,
            &[("operation", "create"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(value(&scrape, "alsy_pods", &[("state", "desired")]), 3.0);
    assert_eq!(value(&scrape, "alsy_pods", &[("state", "observed")]), 2.0);
    assert_eq!(value(&scrape, "alsy_pod_retries_pending", &[]), 1.0);
    assert_eq!(value(&scrape, "alsy_clients", &[]), 2.0);
}

#[tokio::test]
async fn ten_thousand_client_ids_make_one_series_per_route() {
    let app = TestApp::spawn().await;
    for id in 1..=10_000 {
        app.http
            .get(app.url(&format!("/api/v1/clients/{id}")))
            .send()
            .await
            .unwrap();
    }
    let scrape = scrape(&app).await;
    let requests = samples(&scrape, "alsy_http_requests", &[]);
    let routes: BTreeSet<String> = requests
        .iter()
        .filter_map(|s| label(s, "alsy_http_requests", "route"))
        .collect();
    assert_eq!(
        routes,
        BTreeSet::from(["/api/v1/clients/{id}".to_owned()]),
        "{routes:?}"
    );
    let item = samples(
        &scrape,
        "alsy_http_requests",
        &[("route", "/api/v1/clients/{id}")],
    );
    assert_eq!(item.len(), 1, "one series: GET, 404");
    let total: usize = scrape
        .families
        .values()
        .map(|family| family.iter_samples().count())
        .sum();
    println!("series in the scrape after 10,000 distinct client ids: {total}");
    assert!(total < 100, "{total} series");
    assert_eq!(
        value(&scrape, "alsy_http_requests", &[("status", "404")]),
        10_000.0
    );
}

#[tokio::test]
async fn storage_connections_are_reported_on_postgres() {
    let Some(database) = alsy_tests::postgres::TestDatabase::create().await else {
        return;
    };
    let app = TestApp::spawn_on_postgres(&database).await;
    app.get("/api/v1/clients").await;
    let scrape = scrape(&app).await;
    let idle = value(&scrape, "alsy_storage_connections", &[("state", "idle")]);
    let in_use = value(&scrape, "alsy_storage_connections", &[("state", "in_use")]);
    assert!(idle + in_use >= 1.0, "idle {idle}, in use {in_use}");
}

/// Every (template, method) the document describes.
async fn documented(app: &TestApp) -> BTreeSet<(String, String)> {
    let doc = app.get("/api/openapi.json").await.body;
    assert_eq!(doc["openapi"], "3.1.0");
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .map(move |method| (path.clone(), method.to_uppercase()))
        })
        .collect()
}

#[tokio::test]
async fn the_document_and_the_router_serve_the_same_routes() {
    let app = TestApp::spawn().await;
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .flat_map(|r| {
            r.methods
                .iter()
                .map(|m| (r.template.to_owned(), (*m).to_owned()))
        })
        .collect();
    assert_eq!(documented(&app).await, table, "document vs route table");

    let id = app.create_client("Existing").await;
    // syncService's routes name their client in the body: one of their own, deleted last.
    let earlier = app.create_client("Earlier").await;
    let sync_service = |name: &str| {
        json!({"id": earlier, "client_name": name, "version": 1, "image": "ghcr.io/acme/algo:1.0",
            "cpu": "500m", "memory": "512Mi", "priority": 0.26})
    };
    let body = |template: &str, method: &Method| -> Option<String> {
        if template == "/api/client" {
            let name = if method == Method::POST {
                "ProbeSync"
            } else {
                "Earlier"
            };
            Some(sync_service(name).to_string())
        } else if template == "/api/algorithms" {
            Some(
                json!({"client_id": earlier, "vwap": false, "twap": false, "hft": false})
                    .to_string(),
            )
        } else if template.starts_with("/api/v1/status") {
            Some(json!({"VWAP": false, "TWAP": false, "HFT": false}).to_string())
        } else if template == "/api/v1/clients" {
            Some(client_body("Probe").to_string())
        } else if template.starts_with("/api/v1/clients") {
            Some(client_body("Existing").to_string())
        } else {
            None
        }
    };
    // Every documented route is served: no "no route" 404 and no 405 (DELETE last).
    let mut routes: Vec<&(String, String)> = table.iter().collect();
    routes.sort_by_key(|(_, method)| method == "DELETE");
    for (template, method) in routes {
        let path = template.replace("{id}", &id.to_string());
        let method: Method = method.parse().unwrap();
        let mut request = app.http.request(method.clone(), app.url(&path));
        // syncService's DELETE names its client in the body too.
        if method == Method::POST || method == Method::PUT || template == "/api/client" {
            request = request.body(body(template, &method).unwrap_or_default());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "{method} {path}: {status} {:?}",
            response.text().await
        );
    }
    // Every other method on a served path is 405 with the methods it does serve.
    for route in ROUTES {
        let path = route.template.replace("{id}", "1");
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            if route.methods.contains(&method) {
                continue;
            }
            let reply = app.request(method.parse().unwrap(), &path, None).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(
                reply.headers["allow"],
                route.methods.join(", ").as_str(),
                "{method} {path}"
            );
        }
    }
    // And a path that is in neither is not served.
    let unknown = app.get("/api/v1/unknown").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["status"], Value::from("error"));
}
