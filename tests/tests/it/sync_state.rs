//! Retries and sync state over real HTTP: each client's `sync` in `GET /api/v1/clients/{id}` and
//! `GET /api/v1/status/{id}`, the `?state=` filter, the retries metric, every replica giving the
//! same answer, and 30 % injected failures converging with the default interval — on the fake
//! runtime and through the Kubernetes test API server.

use std::time::Duration;

use alsy_domain::{Algorithm, Catalogue, ClientId, PodPhase};
use alsy_fake::{FakeFailure, FakePodRuntime};
use alsy_tests::app::{TestApp, TestAppBuilder};
use alsy_tests::fixtures::{LOAD_MARGIN, eventually, pod};
use alsy_tests::kube_server::{KubeServer, Verb};
use reqwest::StatusCode;
use serde_json::{Value, json};

const VWAP: Algorithm = Algorithm::named("VWAP");
const TWAP: Algorithm = Algorithm::named("TWAP");
const HFT: Algorithm = Algorithm::named("HFT");

/// Client `id`'s pod for `algorithm`.
fn pod_of(algorithm: Algorithm, id: i64) -> alsy_domain::PodName {
    pod(algorithm, ClientId::new(id).unwrap())
}

/// `GET /api/v1/clients/{id}`'s `sync`.
async fn sync_of(app: &TestApp, id: i64) -> Value {
    let reply = app.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"]["sync"].clone()
}

/// `(algorithm, state)` of each algorithm of a `sync`, in catalogue order.
fn states(sync: &Value) -> Vec<(String, String)> {
    let algorithms = sync["algorithms"].as_object().expect("sync.algorithms");
    assert_eq!(algorithms.len(), Catalogue::DEFAULT.len(), "{sync}");
    Catalogue::DEFAULT
        .iter()
        .map(|a| {
            let state = algorithms[a.as_str()]["state"].as_str().unwrap();
            (a.as_str().to_owned(), state.to_owned())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, s)| (a.to_string(), s.to_string()))
        .collect()
}

const ALL_ON: &str = r#"{"VWAP":true,"TWAP":true,"HFT":true}"#;

#[tokio::test]
async fn a_clients_sync_state_shows_synced_pending_and_failing_through_the_api() {
    let app = TestApp::spawn().await;
    let id = app.create_client("Jimbo").await;
    let nothing_on = sync_of(&app, id).await;
    assert_eq!(nothing_on["summary"], "synced");
    assert_eq!(
        states(&nothing_on),
        pairs(&[("VWAP", "synced"), ("TWAP", "synced"), ("HFT", "synced")])
    );

    app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": true}))
        .await;
    let switched_on = sync_of(&app, id).await;
    assert_eq!(switched_on["summary"], "progressing", "no pass ran yet");
    assert_eq!(
        switched_on["algorithms"]["VWAP"],
        json!({"desired": true, "pod": null, "phase": null, "state": "pending",
               "error": null, "attempts": 0, "next_retry_at": null})
    );
    assert_eq!(switched_on["algorithms"]["TWAP"]["state"], "synced");

    let hft = pod_of(HFT, id);
    app.runtime().fail_next(&hft, 1);
    let report = app.sync().await;
    let failing = sync_of(&app, id).await;
    assert_eq!(failing["summary"], "degraded");
    assert_eq!(
        states(&failing),
        pairs(&[("VWAP", "synced"), ("TWAP", "synced"), ("HFT", "failing")])
    );
    let hft_sync = &failing["algorithms"]["HFT"];
    assert_eq!(hft_sync["attempts"], 1);
    assert_eq!(
        (&hft_sync["pod"], &hft_sync["phase"]),
        (&Value::Null, &Value::Null)
    );
    assert!(
        hft_sync["error"]
            .as_str()
            .unwrap()
            .contains("injected failure of CREATE"),
        "{hft_sync}"
    );
    assert_eq!(
        hft_sync["next_retry_at"], report["failed"][0]["next_retry_at"],
        "the state and the pass report agree on the retry time"
    );
    assert_eq!(failing["algorithms"]["VWAP"]["pod"], format!("vwap-{id}"));
    assert_eq!(failing["algorithms"]["VWAP"]["phase"], "Running");
    let status = app.get(&format!("/api/v1/status/{id}")).await;
    assert_eq!(
        status.body["data"]["sync"], failing,
        "the status route shows the same"
    );

    // A pod that is starting is pending, with its phase.
    app.runtime()
        .set_phase(&pod_of(VWAP, id), PodPhase::Pending);
    let retried = app.sync().await;
    assert_eq!(retried["created"], json!([hft.to_string()]), "{retried}");
    let starting = sync_of(&app, id).await;
    assert_eq!(starting["summary"], "progressing");
    assert_eq!(starting["algorithms"]["VWAP"]["phase"], "Pending");
    assert_eq!(starting["algorithms"]["VWAP"]["state"], "pending");
    assert_eq!(starting["algorithms"]["HFT"]["state"], "synced");
    assert_eq!(
        starting["algorithms"]["HFT"]["attempts"], 0,
        "the schedule ended"
    );

    // Switched off, a running pod is pending until a pass deletes it.
    app.runtime()
        .set_phase(&pod_of(VWAP, id), PodPhase::Running);
    app.put_status(id, json!({"VWAP": false, "TWAP": false, "HFT": true}))
        .await;
    let leaving = sync_of(&app, id).await;
    assert_eq!(leaving["algorithms"]["VWAP"]["desired"], false);
    assert_eq!(leaving["algorithms"]["VWAP"]["state"], "pending");
    app.sync().await;
    assert_eq!(sync_of(&app, id).await["summary"], "synced");
    app.shutdown().await;
}

#[tokio::test]
async fn a_runtime_that_cannot_answer_leaves_the_sync_state_unknown_and_still_shows_the_client() {
    let app = TestApp::spawn().await;
    let id = app.create_client("Jimbo").await;
    app.runtime().fail_next_lists(1);
    let reply = app.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["data"]["name"], "Jimbo");
    assert_eq!(reply.body["data"]["sync"], Value::Null);
    assert_eq!(
        reply.body["message"],
        "sync state unknown: pod runtime unavailable"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_refused_create_waits_the_maximum_and_shows_its_reason_in_the_sync_state() {
    // Nudges on, so that a write makes a pass that is not an operator's request.
    let app = TestApp::builder()
        .env("ALSY__SYNC__DEBOUNCE", "10ms")
        .env("ALSY__SYNC__RETRY_BASE", "1s")
        .env("ALSY__SYNC__RETRY_MAX", "10m")
        .spawn()
        .await;
    let id = app.create_client("Jimbo").await;
    let hft = pod_of(HFT, id);
    app.runtime().fail_next_with(&hft, 1, FakeFailure::Rejected);
    app.put_status(id, json!({"VWAP": false, "TWAP": false, "HFT": true}))
        .await;
    let failed = last_pass_with(&app, |report| {
        report["failed"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let failure = &failed["failed"][0];
    assert_eq!(failure["pod"], hft.to_string());
    assert_eq!(failure["attempt"], 1);
    let failed_at = time(&failure["next_retry_at"]) - Duration::from_secs(600);
    assert!(
        time(&failed["started_at"]) <= failed_at && failed_at <= time(&failed["finished_at"]),
        "a refusal waits the maximum, 10 minutes: {failed}"
    );

    let hft_sync = sync_of(&app, id).await["algorithms"]["HFT"].clone();
    assert_eq!(hft_sync["state"], "failing");
    assert_eq!(hft_sync["attempts"], 1);
    assert_eq!(hft_sync["next_retry_at"], failure["next_retry_at"]);
    let error = hft_sync["error"].as_str().unwrap();
    assert!(
        error.contains("runtime rejected the request")
            && error.contains("injected failure of CREATE"),
        "the refusal's reason: {error}"
    );

    // A write nudges a pass: it leaves the refused create for its retry time.
    let other = app.create_client("Other").await;
    app.put_status(other, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    let nudged = last_pass_with(&app, |report| {
        report["created"] == json!([pod_of(VWAP, other).to_string()])
    })
    .await;
    assert_eq!(nudged["trigger"], "nudge");
    assert_eq!(nudged["waiting"][0]["pod"], hft.to_string(), "{nudged}");
    assert_eq!(
        nudged["waiting"][0]["next_retry_at"],
        failure["next_retry_at"]
    );
    assert!(app.runtime().pod(&hft).is_none());
    assert_eq!(sync_of(&app, id).await["algorithms"]["HFT"], hft_sync);
    app.shutdown().await;
}

/// Waits for the last pass report (`GET /api/v1/sync`) to satisfy `condition`, and returns it.
async fn last_pass_with(app: &TestApp, condition: impl Fn(&Value) -> bool) -> Value {
    let until = tokio::time::Instant::now() + LOAD_MARGIN;
    loop {
        let last = app.get("/api/v1/sync").await.body["data"].clone();
        if condition(&last) {
            return last;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for the pass; the last report: {last}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An RFC 3339 time of the API.
fn time(value: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(value.as_str().expect("a time")).expect("RFC 3339")
}

#[tokio::test]
async fn the_client_list_filters_on_the_sync_summary() {
    let app = TestApp::spawn().await;
    let synced = app.create_client("synced").await;
    let degraded = app.create_client("degraded").await;
    let also_degraded = app.create_client("also degraded").await;
    for id in [synced, degraded, also_degraded] {
        app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": false}))
            .await;
    }
    app.runtime().fail_next(&pod_of(VWAP, degraded), 1);
    app.runtime().fail_next(&pod_of(VWAP, also_degraded), 1);
    app.sync().await;
    let progressing = app.create_client("progressing").await;
    app.put_status(
        progressing,
        json!({"VWAP": false, "TWAP": true, "HFT": false}),
    )
    .await;

    let ids = |reply: &Value| -> Vec<i64> {
        reply["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    let listed = app.get("/api/v1/clients?state=degraded").await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(ids(&listed.body), [degraded, also_degraded]);
    let item = &listed.body["data"]["items"][0];
    assert_eq!(item["sync"]["summary"], "degraded");
    assert_eq!(item["sync"]["algorithms"]["VWAP"]["state"], "failing");
    assert_eq!(item["status"]["VWAP"], true, "an item is the whole client");
    assert_eq!(listed.body["data"]["next"], Value::Null);

    let synced_list = app.get("/api/v1/clients?state=synced").await;
    assert_eq!(ids(&synced_list.body), [synced]);
    let progressing_list = app.get("/api/v1/clients?state=progressing").await;
    assert_eq!(ids(&progressing_list.body), [progressing]);

    // Pages of the filtered list follow `next`.
    let first = app.get("/api/v1/clients?state=degraded&limit=1").await;
    assert_eq!(ids(&first.body), [degraded]);
    assert_eq!(first.body["data"]["next"], degraded);
    let second = app
        .get(&format!(
            "/api/v1/clients?state=degraded&limit=1&after={degraded}"
        ))
        .await;
    assert_eq!(ids(&second.body), [also_degraded]);
    // A full page cannot tell whether a later client matches without scanning on; the next
    // page says so, empty.
    assert_eq!(second.body["data"]["next"], also_degraded);
    let third = app
        .get(&format!(
            "/api/v1/clients?state=degraded&limit=1&after={also_degraded}"
        ))
        .await;
    assert!(ids(&third.body).is_empty());
    assert_eq!(third.body["data"]["next"], Value::Null);

    // Without a filter, the list is as it was: no sync state.
    let plain = app.get("/api/v1/clients").await;
    assert_eq!(ids(&plain.body).len(), 4);
    assert!(plain.body["data"]["items"][0].get("sync").is_none());

    for bad in ["failing", "Degraded", ""] {
        app.get(&format!("/api/v1/clients?state={bad}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid query parameter \"state\"");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_retries_pending_metric_counts_the_pods_waiting_for_a_retry() {
    let app = TestApp::spawn().await;
    let id = app.create_client("Jimbo").await;
    app.put_status(id, ALL_ON).await;
    app.runtime().fail_next(&pod_of(VWAP, id), 1);
    app.runtime().fail_next(&pod_of(HFT, id), 1);
    app.sync().await;
    assert_eq!(retries_pending(&app).await, 2.0);
    app.sync().await;
    assert_eq!(retries_pending(&app).await, 0.0);
    app.shutdown().await;
}

async fn retries_pending(app: &TestApp) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("alsy_pod_retries_pending "))
        .unwrap_or_else(|| panic!("no alsy_pod_retries_pending in {text}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn every_replica_answers_the_same_sync_state() {
    let database = alsy_tests::test_database!();
    // Two replicas on one database and one cluster (the fake runtime they share).
    let runtime = FakePodRuntime::new();
    let replica = || {
        TestApp::builder()
            .postgres(&database)
            .runtime(runtime.clone())
    };
    let holder = replica().spawn().await;
    let other = replica().spawn().await;
    let id = holder.create_client("Jimbo").await;
    holder.put_status(id, ALL_ON).await;
    runtime.fail_next(&pod_of(TWAP, id), 1);
    let report = holder.sync().await;
    assert_eq!(report["failed"][0]["attempt"], 1, "{report}");

    let seen_by_holder = sync_of(&holder, id).await;
    let seen_by_other = sync_of(&other, id).await;
    assert_eq!(seen_by_other["summary"], "degraded");
    assert_eq!(seen_by_other["algorithms"]["TWAP"]["attempts"], 1);
    assert_eq!(seen_by_other, seen_by_holder);
    let degraded = other.get("/api/v1/clients?state=degraded").await;
    assert_eq!(degraded.body["data"]["items"][0]["id"], id);

    holder.sync().await;
    assert_eq!(sync_of(&other, id).await["summary"], "synced");
    holder.shutdown().await;
    other.shutdown().await;
}

/// The default interval, debounce and retry schedule: only the watcher's own triggers make the
/// passes.
fn with_default_schedule(builder: TestAppBuilder) -> TestAppBuilder {
    builder
        .default_for("ALSY__SYNC__INTERVAL")
        .default_for("ALSY__SYNC__DEBOUNCE")
        .default_for("ALSY__SYNC__RETRY_BASE")
        .default_for("ALSY__SYNC__RETRY_MAX")
}

/// Longest a test waits for 30 % injected failures to converge: well short of the 5-minute
/// interval, so convergence cannot come from an interval pass. With full jitter between 1 s and
/// 5 min, a pod failing six times in a row (one in 1,400) still retries within about a minute.
const CONVERGENCE_DEADLINE: Duration = Duration::from_secs(200);

/// Asserts that no interval pass ran: convergence came from nudges and retries alone.
fn assert_no_interval_pass(app: &TestApp) {
    let lines = app.logs.lines();
    let passes: Vec<&str> = lines
        .iter()
        .filter(|l| l.msg == "pass finished")
        .map(|l| l.get("trigger").unwrap_or_default())
        .collect();
    assert!(!passes.contains(&"interval"), "{passes:?}");
    assert!(passes.contains(&"retry"), "no retry pass ran: {passes:?}");
}

#[tokio::test]
async fn thirty_percent_injected_failures_converge_with_the_default_interval() {
    const CLIENTS: usize = 30;
    let runtime = FakePodRuntime::new();
    runtime.fail_randomly(0.3, 10);
    let app = with_default_schedule(TestApp::builder().runtime(runtime.clone()))
        .spawn()
        .await;
    for n in 0..CLIENTS {
        let id = app.create_client(&format!("client {n}")).await;
        app.put_status(id, ALL_ON).await;
    }
    eventually("every pod runs", CONVERGENCE_DEADLINE, || async {
        runtime.pods().len() == CLIENTS * 3
    })
    .await;
    let injected = runtime.random_failures_injected();
    assert!(injected >= 10, "only {injected} failures were injected");
    assert_no_interval_pass(&app);
    let log = app.logs.lines();
    let throttled = log.iter().any(|l| {
        l.msg == "pod create failed"
            && l.get("error")
                .is_some_and(|e| e.contains("asked to retry after 1s"))
    });
    assert!(
        throttled,
        "half the failures are throttled with a Retry-After"
    );
    eventually("the degraded list empties", LOAD_MARGIN, || async {
        let degraded = app.get("/api/v1/clients?state=degraded").await;
        degraded.body["data"]["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    app.shutdown().await;
}

#[tokio::test]
async fn thirty_percent_injected_failures_converge_on_the_kubernetes_test_server() {
    const CLIENTS: usize = 30;
    const NS: &str = "retries";
    let server = KubeServer::start().await;
    server.set_created_phase("Running");
    // Half 500, half 429 with `Retry-After: 1`, on creates and deletes.
    server.fail_randomly(&[Verb::Create, Verb::Delete], 0.3, 20);
    let kubeconfig = server.write_kubeconfig(NS);
    let app = with_default_schedule(TestApp::builder().kubernetes(&kubeconfig))
        .spawn()
        .await;
    let mut ids = Vec::new();
    for n in 0..CLIENTS {
        let id = app.create_client(&format!("client {n}")).await;
        app.put_status(id, ALL_ON).await;
        ids.push(id);
    }
    eventually("every pod exists", CONVERGENCE_DEADLINE, || async {
        server.pods(NS).len() == CLIENTS * 3
    })
    .await;
    for id in &ids {
        app.put_status(*id, json!({"VWAP": true, "TWAP": false, "HFT": true}))
            .await;
    }
    eventually("every TWAP pod is gone", CONVERGENCE_DEADLINE, || async {
        server.pods(NS).len() == CLIENTS * 2
    })
    .await;

    let injected = server.random_failures_injected();
    assert!(injected >= 10, "only {injected} failures were injected");
    assert_no_interval_pass(&app);
    let log = app.logs.lines();
    let failed: Vec<_> = log
        .iter()
        .filter(|l| l.msg == "pod create failed" || l.msg == "pod delete failed")
        .collect();
    assert!(
        failed.iter().any(|l| l
            .get("error")
            .is_some_and(|e| e.contains("runtime asked to retry after 1s"))),
        "the 429s' Retry-After reached the schedule"
    );
    assert!(
        failed
            .iter()
            .all(|l| l.field("attempt").is_u64() && l.get("next_retry_at").is_some())
    );
    eventually("every client is synced", LOAD_MARGIN, || async {
        let synced = app.get("/api/v1/clients?state=synced&limit=1000").await;
        synced.body["data"]["items"].as_array().map(Vec::len) == Some(CLIENTS)
    })
    .await;
    app.shutdown().await;
}
