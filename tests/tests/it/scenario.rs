//! The service end to end over real HTTP with the fake runtime, each scenario once on the
//! in-memory store and once on PostgreSQL: the original service's scenario, drift, failure
//! isolation, restarts, logs, shutdown.

use std::time::Duration;

use alsy_app::Operation;
use alsy_domain::{Algorithm, ClientId, PodName, PodPhase};
use alsy_fake::Gate;
use alsy_tests::app::TestApp;
use alsy_tests::fixtures::{client_body, eventually};
use reqwest::StatusCode;
use serde_json::json;

/// Runs each scenario twice: on in-memory storage and on a PostgreSQL test database.
macro_rules! on_both_stores {
    ($($scenario:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    super::$scenario(alsy_tests::app::TestApp::spawn().await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let database = alsy_tests::test_database!();
                    super::$scenario(alsy_tests::app::TestApp::spawn_on_postgres(&database).await).await;
                }
            )+
        }
    };
}

// After the macro: the scenarios in it run on both stores too.
mod terminating;

on_both_stores!(
    the_original_scenario_create_switch_on_switch_off_restart_delete,
    drift_a_dropped_pod_returns_and_a_failed_pod_is_replaced_on_the_next_pass,
    one_pod_failing_to_create_does_not_stop_the_others_and_is_retried,
    an_update_arriving_during_a_restart_is_not_lost,
    pod_operations_are_logged_by_the_watcher_with_pod_operation,
    shutdown_while_a_pass_runs_lets_it_finish
);

fn pod(algorithm: Algorithm, id: i64) -> PodName {
    PodName::of(algorithm, ClientId::new(id).unwrap())
}

fn restarts_of(app: &TestApp, name: &PodName) -> usize {
    app.runtime()
        .operations()
        .iter()
        .filter(|op| op.operation == Operation::Restart && &op.pod == name)
        .count()
}

async fn the_original_scenario_create_switch_on_switch_off_restart_delete(app: TestApp) {
    // Create: 201 with the id and a Location.
    let created = app.post("/api/v1/clients", &client_body("Jimbo")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.message(), "client created successfully");
    let id = created.body["data"]["id"].as_i64().unwrap();
    assert_eq!(
        created.headers["location"],
        format!("/api/v1/clients/{id}").as_str()
    );
    assert_eq!(
        created.body["data"]["status"],
        json!({"VWAP": false, "TWAP": false, "HFT": false})
    );
    assert_eq!(created.body["data"]["spawned_at"], json!(null));

    // VWAP and HFT on: after a pass, their pods exist and TWAP's does not.
    let status = app
        .put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": true}))
        .await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.message(), "status updated successfully");
    let report = app.sync().await;
    assert_eq!(
        report["created"],
        json!([format!("hft-{id}"), format!("vwap-{id}")])
    );
    assert_eq!(app.pod_names(), [format!("hft-{id}"), format!("vwap-{id}")]);
    let pods = app.get("/api/v1/pods").await;
    assert_eq!(pods.body["data"][0]["name"], format!("hft-{id}"));
    assert_eq!(pods.body["data"][0]["client_id"], id);
    assert_eq!(pods.body["data"][0]["algorithm"], "HFT");
    assert_eq!(pods.body["data"][0]["phase"], "Running");
    let spawned =
        app.get(&format!("/api/v1/clients/{id}")).await.body["data"]["spawned_at"].clone();
    assert!(
        spawned.is_string(),
        "spawned_at set once its pods started: {spawned}"
    );

    // VWAP off: its pod is gone.
    app.put_status(id, json!({"VWAP": false, "TWAP": false, "HFT": true}))
        .await;
    app.sync().await;
    assert_eq!(app.pod_names(), [format!("hft-{id}")]);

    // Update with need_restart: its pod restarted exactly once, flag cleared, spawned_at moved.
    app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": true}))
        .await;
    app.sync().await;
    let mut updated_body = client_body("Jimbo");
    updated_body["version"] = json!(2);
    let updated = app
        .put(
            &format!("/api/v1/clients/{id}?need_restart=true"),
            &updated_body,
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.message(), "client updated successfully");
    assert_eq!(updated.body["data"]["need_restart"], true);
    let report = app.sync().await;
    assert_eq!(
        report["restarted"],
        json!([format!("hft-{id}"), format!("vwap-{id}")])
    );
    app.sync().await;
    assert_eq!(restarts_of(&app, &pod(Algorithm::named("VWAP"), id)), 1);
    assert_eq!(restarts_of(&app, &pod(Algorithm::named("HFT"), id)), 1);
    let client = app.get(&format!("/api/v1/clients/{id}")).await.body["data"].clone();
    assert_eq!(client["need_restart"], false);
    assert_eq!(client["version"], 2);
    assert!(
        client["spawned_at"].as_str() > spawned.as_str(),
        "{} > {spawned}",
        client["spawned_at"]
    );
    let restarted = app
        .runtime()
        .pod(&pod(Algorithm::named("VWAP"), id))
        .unwrap();
    assert_eq!(
        restarted.spec.version.get(),
        2,
        "the restarted pod runs the new version"
    );

    // Delete: 204 without a body, and its pods go.
    let deleted = app.delete(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, json!(null));
    let report = app.sync().await;
    assert_eq!(
        report["deleted"],
        json!([format!("hft-{id}"), format!("vwap-{id}")])
    );
    assert!(app.pod_names().is_empty());
    assert_eq!(
        app.get(&format!("/api/v1/clients/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    app.shutdown().await;
}

#[tokio::test]
async fn writes_nudge_the_watcher_when_nudges_are_on() {
    let app = TestApp::builder()
        .env("ALSY__SYNC__DEBOUNCE", "50ms")
        .spawn()
        .await;
    let id = app.create_client("nudged").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": true, "HFT": false}))
        .await;
    eventually(
        "a nudged pass created both pods",
        Duration::from_secs(10),
        || async { app.pod_names() == [format!("twap-{id}"), format!("vwap-{id}")] },
    )
    .await;
    let last = app.get("/api/v1/sync").await;
    assert_eq!(last.status, StatusCode::OK);
    assert_eq!(last.body["data"]["trigger"], "nudge");
    app.shutdown().await;
}

async fn drift_a_dropped_pod_returns_and_a_failed_pod_is_replaced_on_the_next_pass(app: TestApp) {
    let id = app.create_client("drifty").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": true, "HFT": false}))
        .await;
    app.sync().await;

    assert!(app.runtime().drop_pod(&pod(Algorithm::named("VWAP"), id)));
    assert!(
        app.runtime()
            .set_phase(&pod(Algorithm::named("TWAP"), id), PodPhase::Failed)
    );
    let report = app.sync().await;

    assert_eq!(report["created"], json!([format!("vwap-{id}")]));
    assert_eq!(report["restarted"], json!([format!("twap-{id}")]));
    let phases: Vec<_> = app.runtime().pods().iter().map(|p| p.phase).collect();
    assert_eq!(phases, [PodPhase::Running, PodPhase::Running]);
}

async fn one_pod_failing_to_create_does_not_stop_the_others_and_is_retried(app: TestApp) {
    let id = app.create_client("flaky").await;
    app.runtime()
        .fail_next(&pod(Algorithm::named("HFT"), id), 1);
    app.put_status(id, json!({"VWAP": true, "TWAP": true, "HFT": true}))
        .await;

    let first = app.sync().await;
    assert_eq!(
        first["created"],
        json!([format!("twap-{id}"), format!("vwap-{id}")])
    );
    assert_eq!(first["failed"][0]["pod"], format!("hft-{id}"));
    assert_eq!(first["failed"][0]["operation"], "create");
    assert!(
        first["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("hft-{id}"))
    );

    let second = app.sync().await;
    assert_eq!(second["created"], json!([format!("hft-{id}")]));
    assert_eq!(second["failed"], json!([]));
}

async fn an_update_arriving_during_a_restart_is_not_lost(app: TestApp) {
    let id = app.create_client("busy").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    app.sync().await;
    app.put(
        &format!("/api/v1/clients/{id}?need_restart=true"),
        &client_body("busy"),
    )
    .await;

    let gate = Gate::new();
    app.runtime().hold_next_list(&gate);
    let pass = app.request(reqwest::Method::POST, "/api/v1/sync", None);
    let late_update = async {
        // The pass lists pods after reading the desired state: this write lands after its read,
        // before it acknowledges.
        gate.arrived(1).await;
        let mut body = client_body("busy");
        body["version"] = json!(3);
        let update = app
            .put(&format!("/api/v1/clients/{id}?need_restart=true"), &body)
            .await;
        gate.open();
        update
    };
    let (pass, update) = tokio::join!(pass, late_update);
    assert_eq!(
        pass.body["data"]["restarted"],
        json!([format!("vwap-{id}")])
    );
    assert_eq!(update.status, StatusCode::OK);

    let client = app.get(&format!("/api/v1/clients/{id}")).await.body["data"].clone();
    assert_eq!(
        client["need_restart"], true,
        "the later restart request is kept"
    );
    let next = app.sync().await;
    assert_eq!(next["restarted"], json!([format!("vwap-{id}")]));
    assert_eq!(
        app.runtime()
            .pod(&pod(Algorithm::named("VWAP"), id))
            .unwrap()
            .spec
            .version
            .get(),
        3
    );
    assert_eq!(
        app.get(&format!("/api/v1/clients/{id}")).await.body["data"]["need_restart"],
        false
    );
}

async fn pod_operations_are_logged_by_the_watcher_with_pod_operation(app: TestApp) {
    let id = app.create_client("logged").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    app.sync().await;
    app.put(
        &format!("/api/v1/status/{id}?need_restart=true"),
        &json!({"VWAP": true, "TWAP": false, "HFT": false}),
    )
    .await;
    app.sync().await;
    app.delete(&format!("/api/v1/clients/{id}")).await;
    app.sync().await;

    let lines: Vec<(String, String)> = app
        .logs
        .lines()
        .into_iter()
        .filter(|l| l.component == "sync/watcher")
        .filter_map(|l| Some((l.msg.clone(), l.get("pod_operation")?.to_owned())))
        .collect();
    assert_eq!(
        lines,
        [
            ("pod created".to_owned(), format!("<CREATE> vwap-{id}")),
            ("pod restarted".to_owned(), format!("<RESTART> vwap-{id}")),
            ("pod deleted".to_owned(), format!("<DELETE> vwap-{id}")),
        ]
    );
}

async fn shutdown_while_a_pass_runs_lets_it_finish(app: TestApp) {
    for n in 0..4 {
        let id = app.create_client(&format!("c{n}")).await;
        app.put_status(id, json!({"VWAP": true, "TWAP": true, "HFT": true}))
            .await;
    }
    app.runtime().set_latency(Duration::from_millis(100));
    let calls = app.runtime().calls_started();
    let pass = tokio::spawn({
        let http = app.http.clone();
        let url = format!("{}/api/v1/sync", app.base);
        async move { http.post(url).send().await.map(|r| r.status()) }
    });
    eventually("the pass is under way", Duration::from_secs(5), || async {
        app.runtime().calls_started() > calls
    })
    .await;
    let runtime = app.runtime().clone();
    app.shutdown().await;

    assert_eq!(
        runtime.pods().len(),
        12,
        "the running pass finished all its pods before shutdown returned"
    );
    assert_eq!(
        pass.await.unwrap().ok(),
        Some(StatusCode::OK),
        "its request was answered"
    );
}
