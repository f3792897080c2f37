//! Restarts and deletions on a runtime whose pods take a grace period to go, over HTTP: the
//! `POST /api/v1/sync` of a restart answers while the old pods terminate, `/api/v1/pods` shows
//! them `Terminating`, no pass deletes them again, and the restart is acknowledged once the
//! successors exist. The grace period lasts until the test ends it.

use std::time::Duration;

use alsy_tests::app::TestApp;
use serde_json::{Value, json};

on_both_stores!(
    a_restart_answers_while_the_old_pods_terminate_and_settles_once_they_are_gone,
    a_switched_off_pod_shows_terminating_and_is_deleted_once
);

/// Longer than any test: the pods terminate until the test ends their grace period.
const FOR_EVER: Duration = Duration::from_secs(24 * 3600);

async fn phases(app: &TestApp) -> Value {
    let pods = app.get("/api/v1/pods").await.body;
    pods["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!([p["name"], p["phase"]]))
        .collect()
}

async fn client(app: &TestApp, id: i64) -> Value {
    app.get(&format!("/api/v1/clients/{id}")).await.body["data"].clone()
}

fn count(app: &TestApp, msg: &str) -> usize {
    app.logs.lines().iter().filter(|l| l.msg == msg).count()
}

async fn a_restart_answers_while_the_old_pods_terminate_and_settles_once_they_are_gone(
    app: TestApp,
) {
    let id = app.create_client("graceful").await;
    let on = json!({"VWAP": true, "TWAP": false, "HFT": true});
    app.put_status(id, &on).await;
    app.sync().await;
    let spawned = client(&app, id).await["spawned_at"].clone();
    let (hft, vwap) = (format!("hft-{id}"), format!("vwap-{id}"));
    app.runtime().set_termination_grace(FOR_EVER);

    app.put(&format!("/api/v1/status/{id}?need_restart=true"), &on)
        .await;
    // Answered at all (the grace period is a day, the write timeout seconds): nothing waited.
    let begun = app.sync().await;
    assert_eq!(begun["restarted"], json!([hft, vwap]), "{begun}");
    assert_eq!(begun["terminating"], json!([hft, vwap]));
    assert_eq!(begun["created"], json!([]));
    assert_eq!(
        phases(&app).await,
        json!([[hft, "Terminating"], [vwap, "Terminating"]])
    );
    assert_eq!(client(&app, id).await["need_restart"], true);

    // Passes while they terminate touch nothing: the restart is in progress.
    let waiting = app.sync().await;
    for list in ["created", "deleted", "restarted", "failed"] {
        assert_eq!(waiting[list], json!([]), "{list}: {waiting}");
    }
    assert_eq!(waiting["terminating"], json!([hft, vwap]));
    assert_eq!(client(&app, id).await["need_restart"], true);

    // Gone: a pass creates the successors and acknowledges the restart.
    assert_eq!(app.runtime().finish_terminating(), 2);
    app.sync().await;
    assert_eq!(
        phases(&app).await,
        json!([[hft, "Running"], [vwap, "Running"]])
    );
    let settled = client(&app, id).await;
    assert_eq!(settled["need_restart"], false);
    assert_ne!(settled["spawned_at"], spawned);
    let quiet = app.sync().await;
    assert_eq!(quiet["created"], json!([]));
    assert_eq!(quiet["restarted"], json!([]));
    assert_eq!(count(&app, "pod deleted"), 0);
    assert_eq!(
        count(&app, "pod created"),
        4,
        "two at first, two successors"
    );
}

async fn a_switched_off_pod_shows_terminating_and_is_deleted_once(app: TestApp) {
    let id = app.create_client("switched").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": true, "HFT": false}))
        .await;
    app.sync().await;
    app.runtime().set_termination_grace(FOR_EVER);
    app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;

    let first = app.sync().await;
    let second = app.sync().await;

    let twap = format!("twap-{id}");
    assert_eq!(first["deleted"], json!([twap]));
    assert_eq!(second["deleted"], json!([]), "{second}");
    assert_eq!(
        phases(&app).await,
        json!([[twap, "Terminating"], [format!("vwap-{id}"), "Running"]])
    );
    assert_eq!(count(&app, "pod deleted"), 1);
}
