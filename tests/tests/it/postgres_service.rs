//! The whole service on PostgreSQL: state survives a restart of the process, the database going
//! away gives 503 (and readiness says so) until it returns, two replicas on one database never
//! reconcile at once and a write to the one without the lock is not lost (two real processes),
//! and a bad stored row holds back only its own client.

use std::time::{Duration, Instant};

use alsy_fake::{FakePodRuntime, Gate};
use alsy_tests::app::TestApp;
use alsy_tests::fixtures::{LOAD_MARGIN, client_body, eventually};
use alsy_tests::kube_server::{Fault, KubeServer, Verb};
use alsy_tests::postgres::TestDatabase;
use alsy_tests::process::{AlsyProcess, alsy_binary, free_port};
use alsy_tests::tcp_proxy::TcpProxy;
use reqwest::StatusCode;
use serde_json::json;

/// A replica of the service on `database`, its pods on `runtime`, which outlives it.
async fn replica(database: &TestDatabase, runtime: &FakePodRuntime) -> TestApp {
    TestApp::builder()
        .postgres(database)
        .runtime(runtime.clone())
        .spawn()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn restarting_the_service_keeps_every_client_and_the_next_pass_creates_no_duplicates() {
    let database = alsy_tests::test_database!();
    // The pods outlive the process, as they do on a cluster.
    let runtime = FakePodRuntime::new();
    let first = replica(&database, &runtime).await;
    let mut ids = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let id = first.create_client(name).await;
        first
            .put_status(
                id,
                json!({"VWAP": true, "TWAP": name == "beta", "HFT": false}),
            )
            .await;
        ids.push(id);
    }
    first
        .put(
            &format!("/api/v1/clients/{}?need_restart=true", ids[2]),
            &client_body("gamma"),
        )
        .await;
    let report = first.sync().await;
    assert_eq!(report["created"].as_array().unwrap().len(), 4);
    first
        .put(
            &format!("/api/v1/clients/{}?need_restart=true", ids[0]),
            &client_body("alpha"),
        )
        .await;
    first.shutdown().await;
    let operations_before = runtime.operations().len();

    let second = replica(&database, &runtime).await;
    let listed = second.get("/api/v1/clients").await;
    let names: Vec<_> = listed.body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("alpha"), json!("beta"), json!("gamma")]);
    assert_eq!(
        listed.body["data"]["items"][1]["status"],
        json!({"VWAP": true, "TWAP": true, "HFT": false})
    );

    // The start-up pass runs at once; this pass waits for it, so both are done afterwards.
    let report = second.sync().await;
    assert_eq!(report["created"], json!([]), "no duplicates");
    assert_eq!(report["deleted"], json!([]));
    let since: Vec<String> = runtime.operations()[operations_before..]
        .iter()
        .map(|op| format!("{} {}", op.operation, op.pod))
        .collect();
    assert_eq!(
        since,
        [format!("RESTART vwap-{}", ids[0])],
        "only the restart pending at shutdown"
    );
    assert_eq!(runtime.pods().len(), 4);
    let alpha = second.get(&format!("/api/v1/clients/{}", ids[0])).await;
    assert_eq!(alpha.body["data"]["need_restart"], false);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_going_away_gives_503_and_not_ready_until_it_returns() {
    let database = alsy_tests::test_database!();
    let proxy = TcpProxy::start(database.server_addr().await).await.unwrap();
    let url = database.url_via(proxy.addr());
    let read_timeout = Duration::from_secs(1);
    let app = TestApp::builder()
        .postgres_url(&url)
        .env("ALSY__STORAGE__READ_TIMEOUT", "1s")
        .env("ALSY__STORAGE__WRITE_TIMEOUT", "1s")
        .spawn()
        .await;
    let id = app.create_client("resilient").await;
    assert_eq!(app.get("/api/ready").await.status, StatusCode::OK);

    proxy.pause();
    for path in ["/api/ready".to_owned(), format!("/api/v1/clients/{id}")] {
        let started = Instant::now();
        let reply = app.get(&path).await;
        let took = started.elapsed();
        eprintln!(
            "{path} while the database is unreachable: {} in {took:?}",
            reply.status
        );
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {:?}",
            reply.body
        );
        // The paused database never answers: within the read timeout + LOAD_MARGIN means the
        // timeout answered.
        assert!(
            took < read_timeout + LOAD_MARGIN,
            "{path} answered in {took:?}"
        );
    }
    let write = app
        .put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    assert_eq!(write.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(write.message(), "storage unavailable");
    assert!(
        !write.body.to_string().contains("postgres"),
        "no internals in the body: {}",
        write.body
    );
    assert!(
        app.logs
            .lines()
            .iter()
            .any(|l| l.component == "storage/postgres" && l.level == "WARN"),
        "a log line says storage is unavailable"
    );

    proxy.restore();
    eventually(
        "ready again without a restart",
        Duration::from_secs(10),
        || async { app.get("/api/ready").await.status == StatusCode::OK },
    )
    .await;
    let fetched = app.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(
        fetched.body["data"]["status"]["VWAP"], false,
        "the failed write did not half-apply"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_database_never_reconcile_at_once() {
    let database = alsy_tests::test_database!();
    let runtime = FakePodRuntime::new();
    let one = replica(&database, &runtime).await;
    let two = replica(&database, &runtime).await;
    for name in ["a", "b", "c", "d"] {
        let id = one.create_client(name).await;
        two.put_status(id, json!({"VWAP": true, "TWAP": true, "HFT": true}))
            .await;
    }
    // Replica one's pass holds the lock and waits at the gate while replica two asks for one.
    let gate = Gate::new();
    runtime.hold_next_list(&gate);
    let (first, second) = tokio::join!(
        one.request(reqwest::Method::POST, "/api/v1/sync", None),
        async {
            gate.arrived(1).await;
            let second = two
                .request(reqwest::Method::POST, "/api/v1/sync", None)
                .await;
            gate.open();
            second
        },
    );
    assert_eq!(first.body["data"]["outcome"], "completed");
    assert_eq!(
        second.body["data"]["outcome"], "skipped",
        "the other replica skipped while the lock was held"
    );
    assert_eq!(runtime.pods().len(), 12);
    assert_eq!(
        runtime.operations().len(),
        12,
        "every pod created exactly once"
    );
    let skipped_logged = [&one, &two].iter().any(|app| {
        app.logs.lines().iter().any(|l| {
            l.msg
                .starts_with("pass skipped: another replica holds the reconcile lock")
        })
    });
    assert!(skipped_logged);
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_stored_row_holds_back_only_its_own_client() {
    let database = alsy_tests::test_database!();
    let runtime = FakePodRuntime::new();
    let app = replica(&database, &runtime).await;
    let bad = app.create_client("edited-by-hand").await;
    let good = app.create_client("well-kept").await;
    app.put_status(bad, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    app.sync().await;
    assert_eq!(app.pod_names(), [format!("vwap-{bad}")]);

    // A row edited by hand (or written before a rule was tightened): the cpu no longer parses.
    let sql = database.sql().await;
    sql.execute("UPDATE clients SET cpu = 'lots' WHERE id = $1", &[&bad])
        .await
        .unwrap();
    app.put_status(good, json!({"VWAP": false, "TWAP": true, "HFT": false}))
        .await;

    let reply = app
        .request(reqwest::Method::POST, "/api/v1/sync", None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let report = &reply.body["data"];
    assert_eq!(report["outcome"], "completed", "{report}");
    assert_eq!(report["created"], json!([format!("twap-{good}")]));
    assert_eq!(
        report["deleted"],
        json!([]),
        "the held client's pod is left alone"
    );
    let held = report["held"].as_array().expect("held");
    assert_eq!(held.len(), 1, "{report}");
    assert_eq!(held[0]["client_id"], bad);
    assert!(
        held[0]["reason"].as_str().unwrap().starts_with("cpu:"),
        "{report}"
    );
    assert_eq!(
        app.pod_names(),
        [format!("twap-{good}"), format!("vwap-{bad}")]
    );
    let logged = app.logs.lines().into_iter().any(|l| {
        l.level == "ERROR" && l.msg.starts_with("client held back") && l.field("client_id") == bad
    });
    assert!(logged, "the held client is logged at ERROR with its id");
    let summary = app
        .logs
        .lines()
        .into_iter()
        .rfind(|l| l.msg == "pass finished")
        .expect("a pass summary");
    assert_eq!(summary.field("held"), 1);

    // The API names the bad row instead of answering 500 or 503.
    let fetched = app.get(&format!("/api/v1/clients/{bad}")).await;
    assert_eq!(fetched.status, StatusCode::CONFLICT, "{:?}", fetched.body);
    assert!(fetched.message().contains(&format!("client {bad}")));
    assert!(fetched.message().contains("cpu:"), "{}", fetched.message());
    let listed = app.get("/api/v1/clients").await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["data"]["items"][0]["id"], good);
    assert_eq!(listed.body["data"]["unusable"][0]["id"], bad);
    assert_eq!(app.get("/api/ready").await.status, StatusCode::OK);

    // Replacing it with PUT makes it usable again: the next pass no longer holds it.
    let fixed = app
        .put(
            &format!("/api/v1/clients/{bad}"),
            &client_body("edited-by-hand"),
        )
        .await;
    assert_eq!(fixed.status, StatusCode::OK, "{:?}", fixed.body);
    assert_eq!(app.sync().await["held"], json!([]));
    app.shutdown().await;
}

/// An `alsy` process of the built binary on `database`, its pods on the test API server.
fn replica_process(
    binary: &std::path::Path,
    database: &TestDatabase,
    kubeconfig: &std::path::Path,
) -> (AlsyProcess, String) {
    let port = free_port();
    let env: Vec<(String, String)> = [
        ("ALSY__STORAGE__KIND", "postgres"),
        ("ALSY__STORAGE__URL", database.url()),
        ("ALSY__RUNTIME__KIND", "kubernetes"),
        ("ALSY__K8S__KUBECONFIG", kubeconfig.to_str().unwrap()),
        // Longer than the test: the gate, not a timeout, ends the held list.
        ("ALSY__K8S__REQUEST_TIMEOUT", "10m"),
        ("ALSY__HTTP__ADDRESS", &format!("127.0.0.1:{port}")),
        // Only start-up and nudges run passes during the test.
        ("ALSY__SYNC__INTERVAL", "1h"),
        ("ALSY__SYNC__DEBOUNCE", "200ms"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    (
        AlsyProcess::start(binary, &env, &[]),
        format!("http://127.0.0.1:{port}"),
    )
}

/// The last pass report `base` shows (`GET /api/v1/sync`), `null` before the first.
async fn last_pass(http: &reqwest::Client, base: &str) -> serde_json::Value {
    match http.get(format!("{base}/api/v1/sync")).send().await {
        Ok(reply) => reply.json::<serde_json::Value>().await.unwrap_or_default()["data"].clone(),
        Err(_) => serde_json::Value::Null,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_to_the_replica_without_the_lock_is_reconciled_after_the_holders_pass() {
    let binary = alsy_binary();
    let database = alsy_tests::test_database!();
    let server = KubeServer::start().await;
    let kubeconfig = server.write_kubeconfig("alsy-replicas");
    let http = reqwest::Client::new();
    let clock = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.2?}] {what}", clock.elapsed());

    // Replica A's start-up pass takes the lock, reads the (empty) desired state, then lists the
    // pods: the test API server holds that list until the gate opens.
    let gate = Gate::new();
    server.inject(Verb::List, None, 1, Fault::Hold(gate.clone()));
    let (a, a_base) = replica_process(&binary, &database, &kubeconfig);
    gate.arrived(1).await;
    step("replica A holds the lock; its start-up pass waits at the gate");

    let (b, b_base) = replica_process(&binary, &database, &kubeconfig);
    eventually(
        "replica B's start-up pass was skipped",
        Duration::from_secs(30),
        || async { last_pass(&http, &b_base).await["outcome"] == "skipped" },
    )
    .await;
    step("replica B started; its start-up pass skipped (A holds the lock)");

    let created = http
        .post(format!("{b_base}/api/v1/clients"))
        .body(client_body("written-to-b").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<serde_json::Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    let switched = http
        .put(format!("{b_base}/api/v1/status/{id}"))
        .body(r#"{"VWAP":true,"TWAP":false,"HFT":false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), StatusCode::OK);
    eventually(
        "replica B's nudged pass was skipped",
        Duration::from_secs(30),
        || async {
            let report = last_pass(&http, &b_base).await;
            report["trigger"] == "nudge" && report["outcome"] == "skipped"
        },
    )
    .await;
    step(&format!(
        "wrote client {id} to B; B's nudged pass skipped (A still holds the lock)"
    ));

    gate.open();
    let opened = Instant::now();
    step("gate opened: A's start-up pass finishes on the desired state it read before the write");
    let pod = format!("vwap-{id}");
    // No interval pass and no new write: only B's retried nudge can reconcile it.
    eventually(
        "the write to B is reconciled after A's pass",
        Duration::from_secs(30),
        || async { last_pass(&http, &b_base).await["created"] == json!([pod]) },
    )
    .await;
    step(&format!(
        "B's retried nudge pass created {pod}, {:?} after the gate opened",
        opened.elapsed()
    ));
    let a_report = last_pass(&http, &a_base).await;
    let b_report = last_pass(&http, &b_base).await;
    eprintln!("replica A's last pass: {a_report}");
    eprintln!("replica B's last pass: {b_report}");
    assert_eq!(a_report["trigger"], "startup");
    assert_eq!(a_report["created"], json!([]), "A read before the write");
    assert_eq!(b_report["trigger"], "nudge");
    assert!(server.pod("alsy-replicas", &pod).is_some());
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_password_never_reaches_a_log_line_or_an_error() {
    let database = alsy_tests::test_database!();
    let proxy = TcpProxy::start(database.server_addr().await).await.unwrap();
    // Trust authentication ignores both passwords, so the service really runs on this URL.
    let via = database.url_via(proxy.addr());
    let (scheme, rest) = via.split_once("://").unwrap();
    let (user_info, host_and_path) = rest.split_once('@').unwrap();
    let user = user_info.split(':').next().unwrap();
    let separator = if host_and_path.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!(
        "{scheme}://{user}:s3cret-in-userinfo@{host_and_path}{separator}password=s3cret-in-query"
    );
    assert!(url.contains("s3cret-in-userinfo@") && url.contains("password=s3cret-in-query"));
    let secret = |text: &str| text.contains("s3cret") || text.contains("password=s3");

    let env = [
        ("ALSY__STORAGE__KIND", "postgres"),
        ("ALSY__STORAGE__URL", url.as_str()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let settings = alsy::config::load_from(["alsy"], env).unwrap();
    assert!(!secret(&format!("{settings:?}")), "{settings:?}");

    let app = TestApp::builder()
        .postgres_url(&url)
        .env("ALSY__STORAGE__READ_TIMEOUT", "1s")
        .env("ALSY__STORAGE__WRITE_TIMEOUT", "1s")
        .spawn()
        .await;
    let id = app.create_client("secretive").await;
    proxy.pause();
    let mut replies = vec![
        app.get("/api/ready").await,
        app.get(&format!("/api/v1/clients/{id}")).await,
        app.request(reqwest::Method::POST, "/api/v1/sync", None)
            .await,
    ];
    proxy.restore();
    replies.push(app.get("/api/v1/nowhere").await);
    let logs = app.logs.clone();
    app.shutdown().await;
    for reply in &replies {
        assert!(!secret(&reply.body.to_string()), "{:?}", reply.body);
    }

    // A start-up that cannot reach the database, and a URL that does not even parse.
    let unreachable = format!(
        "postgres://postgres:s3cret-in-userinfo@127.0.0.1:{}/x?password=s3cret-in-query",
        free_port()
    );
    let env = [
        ("ALSY__STORAGE__KIND", "postgres"),
        ("ALSY__STORAGE__URL", unreachable.as_str()),
        ("ALSY__STORAGE__START_TIMEOUT", "1s"),
        ("ALSY__HTTP__ADDRESS", "127.0.0.1:0"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let settings = alsy::config::load_from(["alsy"], env).unwrap();
    let start_error = alsy::start(settings, logs.logger(), alsy::Overrides::default())
        .await
        .err()
        .expect("nothing listens there");
    assert!(!secret(&format!("{start_error:#}")), "{start_error:#}");
    let bad = [(
        "ALSY__STORAGE__URL".to_owned(),
        "postgres://u:s3cret@[::1/db?password=s3cret".to_owned(),
    )];
    let config_error = alsy::config::load_from(["alsy"], bad).unwrap_err();
    assert!(!secret(&config_error.to_string()), "{config_error}");

    let lines = logs.lines();
    assert!(
        lines.iter().any(|l| l.level == "WARN"),
        "the outage was logged"
    );
    for line in lines {
        let text = format!(
            "{} {}",
            line.msg,
            serde_json::Value::Object(line.fields.clone())
        );
        assert!(!secret(&text), "{text}");
    }
}
