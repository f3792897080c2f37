//! The release binary started natively with exactly the environment `docker-compose.yaml` gives
//! the `watcher` service — its storage URL pointed at the local PostgreSQL instead of the
//! `storage` container, and a free loopback port instead of 8080 — checked the way an operator
//! would: the health check, a client round trip, and the `pod_operation` log line on stdout.

use std::process::{Child, Command};
use std::time::Duration;

use alsy_tests::fixtures::eventually;
use alsy_tests::postgres::TestDatabase;
use alsy_tests::process::{AlsyProcess, free_port, release_binary};
use serde_json::{Value, json};

/// The `watcher` service's environment as docker compose would pass it, `${VAR}` filled in.
fn compose_environment(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    let path = format!("{}/../docker-compose.yaml", env!("CARGO_MANIFEST_DIR"));
    let compose: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let environment = compose["services"]["watcher"]["environment"]
        .as_object()
        .expect("watcher.environment is a mapping");
    environment
        .iter()
        .map(|(key, value)| {
            let value = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            (key.clone(), interpolate(&value, vars))
        })
        .collect()
}

/// Compose's `${NAME}` and `${NAME:-default}`, with `vars` standing in for `.env`.
fn interpolate(value: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${…}") + start;
        let (name, default) = match rest[start + 2..end].split_once(":-") {
            Some((name, default)) => (name, default),
            None => (&rest[start + 2..end], ""),
        };
        let found = vars.iter().find(|(var, _)| *var == name).map(|(_, v)| *v);
        out.push_str(found.unwrap_or(default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Sends `request` and reads its body as JSON.
async fn json(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("the service answers");
    response.json().await.expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_release_binary_runs_with_the_compose_environment() {
    let binary = release_binary();
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let server = db.server_addr().await;

    let mut env = compose_environment(&[
        ("POSTGRES_USER", "postgres"),
        ("POSTGRES_PASSWORD", "unused-with-trust-auth"),
        ("POSTGRES_DB", db.name()),
    ]);
    for (key, value) in &mut env {
        if key == "ALSY__STORAGE__URL" {
            assert!(value.contains("@storage:5432/"), "{value}");
            *value = value.replace("@storage:5432/", &format!("@{server}/"));
        }
    }
    let port = free_port();
    env.push(("ALSY__HTTP__ADDRESS".into(), format!("127.0.0.1:{port}")));
    let service = AlsyProcess::start(&binary, &env, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    eventually(
        "the service answers /api/health",
        Duration::from_secs(30),
        || async {
            http.get(format!("{base}/api/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    let probe = Command::new(&binary)
        .arg("healthcheck")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .unwrap();
    assert!(probe.success(), "the compose health check command passes");
    assert_eq!(
        http.get(format!("{base}/api/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let created = json(http
        .post(format!("{base}/api/v1/clients"))
        .body(json!({"name":"smoke","version":1,"image":"ghcr.io/acme/vwap:1.0","cpu":"500m","mem":"512Mi","priority":0.26}).to_string())).await;
    let id = created["data"]["id"].as_i64().expect("created with an id");
    let fetched = json(http.get(format!("{base}/api/v1/clients/{id}"))).await;
    assert_eq!(fetched["data"]["name"], "smoke");
    let switched = http
        .put(format!("{base}/api/v1/status/{id}"))
        .body(r#"{"VWAP":true,"TWAP":false,"HFT":false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    // The nudge (1s debounce by default) may already have created the pod; a pass now makes sure.
    let report = json(http.post(format!("{base}/api/v1/sync"))).await;
    let created_now = report["data"]["created"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pods = json(http.get(format!("{base}/api/v1/pods"))).await;
    assert_eq!(
        pods["data"][0]["name"],
        format!("vwap-{id}"),
        "pods: {pods}; last pass created {created_now:?}"
    );

    let expected = format!("<CREATE> vwap-{id}");
    eventually(
        "the pod_operation line is on stdout",
        Duration::from_secs(10),
        || {
            let found = service.lines().iter().any(|l| l.contains(&expected));
            async move { found }
        },
    )
    .await;
    let line = service
        .json_lines()
        .into_iter()
        .find(|l| l.get("pod_operation").and_then(Value::as_str) == Some(expected.as_str()))
        .unwrap();
    // serde_json's map sorts keys: the order is checked on the raw line.
    let raw = service
        .lines()
        .into_iter()
        .find(|l| l.contains(&expected))
        .unwrap();
    let positions: Vec<usize> = ["time", "level", "msg", "component", "pod_operation"]
        .iter()
        .map(|key| {
            raw.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} in {raw}"))
        })
        .collect();
    assert!(
        raw.starts_with("{\"time\":") && positions.is_sorted(),
        "keys in the documented order (time, level, msg, component): {raw}"
    );
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["msg"], "pod created");
    assert_eq!(line["component"], "sync/watcher");
    let time = line["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.split('.').nth(1).is_some_and(|f| f.len() == 10),
        "nanoseconds, UTC: {time}"
    );

    let pid = service.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut service = service;
    let status = wait_for_exit(&mut service.child, Duration::from_secs(15));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIGTERM shuts down cleanly"
    );
    assert!(
        service
            .all_lines()
            .iter()
            .any(|l| l.contains("shutting down")),
        "the shutdown is logged"
    );
}

fn wait_for_exit(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
