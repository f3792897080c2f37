//! The watcher nudged by the fake runtime's change feed: a managed pod deleted from
//! outside, turned `Failed`, or appearing unasked brings a pass after the debounce, with no API
//! write and long before the interval; the passes' own creates, deletes and restarts never bring
//! another. Time is paused: `past` moves the clock, so "no further pass" is a real observation.

use std::time::Duration;

use alsy_domain::{
    Algorithm, ClientId, DesiredPod, ImageRef, PodName, PodPhase, Priority, Quantity, Version,
};

use super::{World, names, passes, past};
use alsy_tests::fixtures::pod;

const DEBOUNCE: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_managed_pod_deleted_from_outside_comes_back_after_the_debounce() {
    let world = World::new();
    let a = world.client("a", true, true, false).await;
    let watcher = world.watcher(DEBOUNCE);
    past(DEBOUNCE).await;
    assert_eq!(passes(&world), ["startup"]);
    let vwap = pod(Algorithm::named("VWAP"), a.id);

    assert!(world.runtime.drop_pod(&vwap));
    past(DEBOUNCE).await;

    assert_eq!(passes(&world), ["startup", "nudge"]);
    let report = watcher.handle().last_report().unwrap();
    assert_eq!(names(&report.created), [vwap.to_string()]);
    assert!(world.runtime.pod(&vwap).is_some());
    let drift = world
        .logs
        .lines()
        .into_iter()
        .find(|l| l.msg.starts_with("managed pods drifted"))
        .expect("the drift is logged");
    assert_eq!(
        drift.field("first").as_str(),
        Some(&*format!("{vwap} missing"))
    );
    watcher.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_pod_is_replaced_after_the_debounce() {
    let world = World::new();
    let a = world.client("a", false, false, true).await;
    let watcher = world.watcher(DEBOUNCE);
    past(DEBOUNCE).await;
    let hft = pod(Algorithm::named("HFT"), a.id);
    let old = world.runtime.pod(&hft).unwrap().uid;

    assert!(world.runtime.set_phase(&hft, PodPhase::Failed));
    past(DEBOUNCE).await;

    assert_eq!(passes(&world), ["startup", "nudge"]);
    let replaced = world.runtime.pod(&hft).unwrap();
    assert_ne!(replaced.uid, old);
    assert_eq!(replaced.phase, PodPhase::Running);
    watcher.stop().await;
}

fn unasked(id: i64) -> DesiredPod {
    let client_id = ClientId::new(id).unwrap();
    DesiredPod {
        name: PodName::of(Algorithm::named("TWAP"), client_id),
        client_id,
        algorithm: Algorithm::named("TWAP"),
        image: ImageRef::parse("ghcr.io/acme/algo:1.0").unwrap(),
        cpu: Quantity::parse("1").unwrap(),
        mem: Quantity::parse("1Gi").unwrap(),
        version: Version::parse(1).unwrap(),
        priority: Priority::parse(1.0).unwrap(),
        restart_mark: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_managed_pod_nobody_asked_for_is_deleted_after_the_debounce() {
    let world = World::new();
    world.client("a", true, false, false).await;
    let watcher = world.watcher(DEBOUNCE);
    past(DEBOUNCE).await;
    let stray = unasked(99);

    world.runtime.add_unasked_pod(&stray);
    past(DEBOUNCE).await;

    assert_eq!(passes(&world), ["startup", "nudge"]);
    assert!(world.runtime.pod(&stray.name).is_none());
    watcher.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_passes_own_creates_deletes_and_restarts_never_bring_another_pass() {
    let world = World::new();
    let a = world.client("a", true, true, true).await;
    let b = world.client("b", true, false, false).await;
    let watcher = world.watcher(DEBOUNCE);
    past(DEBOUNCE).await;
    assert_eq!(
        world.runtime.pods().len(),
        4,
        "the start-up pass created them"
    );

    // Switch some off, one on, mark one for restart: one nudged pass does all of it.
    world
        .switch_on(a.id, &[Algorithm::named("HFT")], true)
        .await;
    world
        .switch_on(
            b.id,
            &[Algorithm::named("VWAP"), Algorithm::named("TWAP")],
            false,
        )
        .await;
    watcher.handle().nudge();
    past(DEBOUNCE).await;
    let report = watcher.handle().last_report().unwrap();
    assert_eq!(
        (
            report.created.len(),
            report.deleted.len(),
            report.restarted.len()
        ),
        (1, 2, 1),
        "{report:?}"
    );

    // Its writes came back on the feed as changes it expected: no pass follows, however long.
    past(DEBOUNCE * 100).await;
    assert_eq!(passes(&world), ["startup", "nudge"]);
    watcher.stop().await;
}

#[tokio::test(start_paused = true)]
async fn with_nudges_off_drift_waits_for_the_interval() {
    let world = World::new();
    let a = world.client("a", true, false, false).await;
    let watcher = world.watcher(Duration::ZERO);
    past(DEBOUNCE).await;

    assert!(world.runtime.drop_pod(&pod(Algorithm::named("VWAP"), a.id)));
    past(DEBOUNCE * 100).await;

    assert_eq!(
        passes(&world),
        ["startup"],
        "ALSY__SYNC__DEBOUNCE=0: no nudges"
    );
    watcher.stop().await;
}
