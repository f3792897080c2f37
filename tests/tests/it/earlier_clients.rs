//! The earlier services' clients, unchanged, against alsy on PostgreSQL over real HTTP:
//! syncService's four calls with the bodies its Go structs encode, and PSY's status call with
//! algorithms X, Y and Z. Each result is checked through the v1 API and the fake runtime's pods.
//!
//! The bodies are literal JSON, written out from syncService's README: `encoding/json` encodes
//! every field of `Client` and `AlgorithmStatus`, in declaration order, with a zero `time.Time`
//! as `"0001-01-01T00:00:00Z"`.

use alsy_tests::app::TestApp;
use alsy_tests::test_database;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// syncService's `POST /api/client` body: a `Client` with `ID` 0 and zero times.
const GO_NEW_CLIENT: &str = r#"{"id":0,"client_name":"Jimbo","version":1,"image":"ghcr.io/acme/vwap:1.0","cpu":"500m","memory":"512Mi","priority":0.26,"needRestart":false,"spawned_at":"0001-01-01T00:00:00Z","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}"#;

/// syncService's `PUT /api/client` body for client `id`: version 2 and a restart.
fn go_changed_client(id: i64) -> String {
    format!(
        r#"{{"id":{id},"client_name":"Jimbo","version":2,"image":"ghcr.io/acme/vwap:2.0","cpu":"1","memory":"1Gi","priority":0.5,"needRestart":true,"spawned_at":"0001-01-01T00:00:00Z","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}}"#
    )
}

/// syncService's `DELETE /api/client` body for client `id`: a `Client` with only `ID` set.
fn go_deleted_client(id: i64) -> String {
    format!(
        r#"{{"id":{id},"client_name":"","version":0,"image":"","cpu":"","memory":"","priority":0,"needRestart":false,"spawned_at":"0001-01-01T00:00:00Z","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}}"#
    )
}

/// syncService's `POST /api/algorithms` body: an `AlgorithmStatus`.
fn go_algorithm_status(client_id: i64, vwap: bool, twap: bool, hft: bool) -> String {
    format!(
        r#"{{"algorithm_id":0,"client_id":{client_id},"vwap":{vwap},"twap":{twap},"hft":{hft}}}"#
    )
}

async fn client(app: &TestApp, id: i64) -> Value {
    let reply = app.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_services_four_calls_work_unchanged() {
    let database = test_database!();
    let app = TestApp::spawn_on_postgres(&database).await;

    let created = app.post("/api/client", GO_NEW_CLIENT).await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    assert_eq!(created.body["status"], "ok");
    assert_eq!(created.message(), "client created successfully");
    let id = created.body["data"]["id"].as_i64().expect("data.id");
    let stored = client(&app, id).await;
    assert_eq!(
        (&stored["name"], &stored["mem"], &stored["version"]),
        (&json!("Jimbo"), &json!("512Mi"), &json!(1))
    );
    assert_eq!(
        stored["spawned_at"],
        Value::Null,
        "the Go zero time is ignored"
    );

    let switched = app
        .post(
            "/api/algorithms",
            go_algorithm_status(id, true, false, true),
        )
        .await;
    assert_eq!(switched.status, StatusCode::OK, "{:?}", switched.body);
    assert_eq!(switched.message(), "status updated successfully");
    assert_eq!(
        client(&app, id).await["status"],
        json!({"VWAP": true, "TWAP": false, "HFT": true})
    );
    app.sync().await;
    assert_eq!(app.pod_names(), [format!("hft-{id}"), format!("vwap-{id}")]);

    let updated = app.put("/api/client", go_changed_client(id)).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.message(), "client updated successfully");
    let stored = client(&app, id).await;
    assert_eq!(
        (&stored["version"], &stored["mem"], &stored["need_restart"]),
        (&json!(2), &json!("1Gi"), &json!(true)),
        "needRestart marks the client as need_restart does"
    );
    let report = app.sync().await;
    assert_eq!(
        report["restarted"],
        json!([format!("hft-{id}"), format!("vwap-{id}")])
    );
    let pods = app.runtime().pods();
    assert!(
        pods.iter()
            .all(|p| p.spec.image.as_str() == "ghcr.io/acme/vwap:2.0"),
        "{pods:?}"
    );
    assert_eq!(client(&app, id).await["need_restart"], false);

    let deleted = app
        .request(Method::DELETE, "/api/client", Some(&go_deleted_client(id)))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    assert_eq!(
        deleted.body,
        json!({"status": "ok", "message": "client deleted successfully"})
    );
    app.get(&format!("/api/v1/clients/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not found");
    app.sync().await;
    assert!(app.pod_names().is_empty(), "{:?}", app.pod_names());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_services_failures_are_409_400_and_404() {
    let database = test_database!();
    let app = TestApp::spawn_on_postgres(&database).await;
    let id = app.post("/api/client", GO_NEW_CLIENT).await.body["data"]["id"]
        .as_i64()
        .expect("data.id");

    app.post("/api/client", GO_NEW_CLIENT)
        .await
        .assert_error(StatusCode::CONFLICT, "Jimbo");
    app.post("/api/client", GO_NEW_CLIENT.replace("512Mi", "lots"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "memory");
    app.post("/api/algorithms", r#"{"client_id":1,"vwap":true}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "twap");

    let unknown = id + 1000;
    app.put("/api/client", go_changed_client(unknown))
        .await
        .assert_error(StatusCode::NOT_FOUND, &unknown.to_string());
    app.request(
        Method::DELETE,
        "/api/client",
        Some(&go_deleted_client(unknown)),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, &unknown.to_string());
    app.post(
        "/api/algorithms",
        go_algorithm_status(unknown, true, true, true),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, &unknown.to_string());
    assert_eq!(
        client(&app, id).await["status"],
        json!({"VWAP": false, "TWAP": false, "HFT": false}),
        "nothing was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn psys_x_y_z_status_call_creates_its_pods() {
    let database = test_database!();
    let app = TestApp::builder()
        .postgres(&database)
        .env("ALSY__SYNC__ALGORITHMS", "X,Y,Z")
        .spawn()
        .await;
    // PSY's create body is alsy's v1 body.
    let id = app.create_client("Jimbo").await;

    let reply = app.put_status(id, r#"{"X":true,"Y":false,"Z":true}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.message(), "status updated successfully");
    assert_eq!(
        reply.body["data"]["status"],
        json!({"X": true, "Y": false, "Z": true})
    );
    app.sync().await;
    assert_eq!(app.pod_names(), [format!("x-{id}"), format!("z-{id}")]);
    let algorithms: Vec<String> = app
        .runtime()
        .pods()
        .iter()
        .map(|p| p.spec.algorithm.to_string())
        .collect();
    assert_eq!(algorithms, ["X", "Z"], "the pods' ALGORITHM");

    app.put_status(id, r#"{"VWAP":true,"TWAP":false,"HFT":true}"#)
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            r#"unknown field "VWAP" (expected X, Y and Z)"#,
        );
    let document = app.get("/api/openapi.json").await.body;
    assert_eq!(
        document["components"]["schemas"]["StatusInput"]["required"],
        json!(["X", "Y", "Z"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_algorithm_dropped_from_the_catalogue_loses_its_pods_and_keeps_its_switch() {
    let database = test_database!();
    let app = TestApp::spawn_on_postgres(&database).await;
    let runtime = app.runtime().clone();
    let id = app.create_client("Jimbo").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": true, "HFT": false}))
        .await;
    app.sync().await;
    assert_eq!(
        app.pod_names(),
        [format!("twap-{id}"), format!("vwap-{id}")]
    );
    app.shutdown().await;

    let without_twap = TestApp::builder()
        .postgres(&database)
        .runtime(runtime.clone())
        .env("ALSY__SYNC__ALGORITHMS", "VWAP,HFT")
        .spawn()
        .await;
    // The start-up pass already ran: the dropped algorithm's pod is gone.
    assert_eq!(without_twap.pod_names(), [format!("vwap-{id}")]);
    assert_eq!(
        client(&without_twap, id).await["status"],
        json!({"VWAP": true, "HFT": false})
    );
    let reply = without_twap
        .put_status(id, json!({"VWAP": true, "HFT": true}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    without_twap.shutdown().await;

    let back = TestApp::builder()
        .postgres(&database)
        .runtime(runtime)
        .spawn()
        .await;
    assert_eq!(
        client(&back, id).await["status"],
        json!({"VWAP": true, "TWAP": true, "HFT": true}),
        "TWAP's switch was kept while it was out of the catalogue"
    );
    assert_eq!(
        back.pod_names(),
        [
            format!("hft-{id}"),
            format!("twap-{id}"),
            format!("vwap-{id}")
        ]
    );
}
