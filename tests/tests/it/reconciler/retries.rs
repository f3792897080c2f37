//! Per-pod retries, driven through the reconciler and the watcher over the in-memory adapters: a
//! failed operation waits for its own retry time (stepped with a hand-moved clock, never slept
//! for), backs off within its bounds, starts afresh when the pod should become something else,
//! honours `Retry-After` and refusals, and outlives the replica that recorded it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use alsy_app::{
    ClientRepository, Operation, PassOutcome, PassReport, Reconciler, SyncSettings, Trigger,
    Watcher,
};
use alsy_domain::{Algorithm, Backoff, Client, PodName};
use alsy_fake::FakeFailure;
use alsy_tests::fixtures::{eventually, pod, spec};
use serde_json::json;

use super::{CountingLock, World};

const VWAP: Algorithm = Algorithm::named("VWAP");
const TWAP: Algorithm = Algorithm::named("TWAP");
const HFT: Algorithm = Algorithm::named("HFT");

/// The default schedule, 1 s to 5 min, on the world's clock.
fn default_reconciler(world: &World) -> Reconciler {
    let backoff = Backoff::default();
    world.reconciler_on_clock(backoff.base(), backoff.max())
}

/// A client with exactly the algorithms in `on` switched on.
async fn client(world: &World, name: &str, on: &[Algorithm]) -> Client {
    let client = world.repo.create(&spec(name)).await.unwrap();
    world.switch_on(client.id, on, false).await;
    world.repo.get(client.id).await.unwrap()
}

/// The reconciler's now.
fn now(world: &World) -> SystemTime {
    alsy_app::Clock::now(&world.clock)
}

fn exists(world: &World, name: &PodName) -> bool {
    world.runtime.pod(name).is_some()
}

fn waiting_pods(report: &PassReport) -> Vec<String> {
    report.waiting.iter().map(|w| w.pod.to_string()).collect()
}

#[tokio::test]
async fn a_failed_operation_waits_for_its_retry_time_while_other_passes_run() {
    let world = World::new();
    let a = client(&world, "a", &[VWAP]).await;
    let vwap = pod(VWAP, a.id);
    world.runtime.fail_next(&vwap, 1);
    let reconciler = default_reconciler(&world);

    let failed = reconciler.run_pass(Trigger::Startup).await;
    assert_eq!(failed.failed.len(), 1, "{failed:?}");
    let failure = &failed.failed[0];
    assert_eq!((failure.attempt, failure.operation), (1, Operation::Create));
    assert_eq!(
        failure.next_retry_at,
        now(&world) + Duration::from_secs(1),
        "the first retry waits the base"
    );
    assert_eq!(failed.retries_pending, 1);
    assert_eq!(failed.next_retry_at, Some(failure.next_retry_at));

    // Nudges and the interval come before the retry time: they leave the pod alone.
    world.clock.advance(Duration::from_millis(999));
    let calls = world.runtime.calls_started();
    for trigger in [Trigger::Nudge, Trigger::Interval, Trigger::Retry] {
        let early = reconciler.run_pass(trigger).await;
        assert!(
            early.failed.is_empty() && early.created.is_empty(),
            "{early:?}"
        );
        assert_eq!(waiting_pods(&early), [vwap.to_string()]);
        assert_eq!(early.waiting[0].attempts, 1);
        assert_eq!(early.retries_pending, 1);
    }
    assert_eq!(
        world.runtime.calls_started() - calls,
        3,
        "only the three lists: no create before the retry time"
    );
    assert!(!exists(&world, &vwap));
    assert_eq!(
        world.repo.get(a.id).await.unwrap().spawned_at,
        None,
        "a waiting pod is not acknowledged"
    );

    world.clock.advance(Duration::from_millis(1));
    let retried = reconciler.run_pass(Trigger::Retry).await;
    assert_eq!(retried.created, [vwap]);
    assert!(retried.waiting.is_empty());
    assert_eq!((retried.retries_pending, retried.next_retry_at), (0, None));
    assert!(world.repo.pod_retries().await.unwrap().is_empty());
    assert!(world.repo.get(a.id).await.unwrap().spawned_at.is_some());
}

#[tokio::test]
async fn a_request_pass_retries_every_waiting_operation_now() {
    let world = World::new();
    let a = client(&world, "a", &[VWAP, HFT]).await;
    world.runtime.fail_next(&pod(VWAP, a.id), 1);
    world.runtime.fail_next(&pod(HFT, a.id), 1);
    let reconciler = default_reconciler(&world);
    assert_eq!(reconciler.run_pass(Trigger::Startup).await.failed.len(), 2);

    // The operator asked for a pass now: nothing waits.
    let requested = reconciler.run_pass(Trigger::Request).await;
    assert_eq!(requested.created.len(), 2, "{requested:?}");
    assert!(requested.waiting.is_empty());
    assert_eq!(requested.retries_pending, 0);
}

#[tokio::test]
async fn failures_in_a_row_back_off_within_the_bounds_and_a_success_ends_the_schedule() {
    let world = World::new();
    let a = client(&world, "a", &[TWAP]).await;
    let twap = pod(TWAP, a.id);
    let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
    let reconciler = world.reconciler_on_clock(base, max);
    world.runtime.fail_next(&twap, 7);

    let mut report = reconciler.run_pass(Trigger::Startup).await;
    for attempt in 1..=7u32 {
        assert_eq!(report.failed.len(), 1, "attempt {attempt}: {report:?}");
        let failure = &report.failed[0];
        assert_eq!(failure.attempt, attempt);
        let wait = failure.next_retry_at.duration_since(now(&world)).unwrap();
        // base·1.3^(attempt−1), at most max: the domain's property tests pin the arithmetic.
        let ceiling = Backoff::new(base, max).unwrap().ceiling(attempt);
        assert!(
            base <= wait && wait <= ceiling,
            "attempt {attempt}: waits {wait:?}, not within {base:?}..={ceiling:?}"
        );
        let stored = world.repo.client_pod_retries(a.id).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            (stored[0].attempts, stored[0].next_retry_at),
            (attempt, failure.next_retry_at)
        );
        world.clock.set(failure.next_retry_at);
        report = reconciler.run_pass(Trigger::Retry).await;
    }
    assert_eq!(report.created, [twap], "the eighth attempt succeeds");
    assert!(world.repo.pod_retries().await.unwrap().is_empty());

    // A later failure of the same pod starts again at the first attempt.
    world.runtime.drop_pod(&pod(TWAP, a.id));
    world.runtime.fail_next(&pod(TWAP, a.id), 1);
    let again = reconciler.run_pass(Trigger::Interval).await;
    assert_eq!(again.failed[0].attempt, 1);
}

#[tokio::test]
async fn a_change_to_what_the_pod_should_be_is_tried_at_once_with_a_fresh_schedule() {
    let world = World::new();
    let a = client(&world, "a", &[VWAP]).await;
    let vwap = pod(VWAP, a.id);
    let reconciler = default_reconciler(&world);
    world.runtime.fail_next(&vwap, 3);
    reconciler.run_pass(Trigger::Startup).await;
    world.clock.advance(Duration::from_secs(1));
    let second = reconciler.run_pass(Trigger::Retry).await;
    assert_eq!(second.failed[0].attempt, 2);

    // A new image: the create is another intent, tried by the very next pass.
    let mut image = spec("a");
    image.image = alsy_domain::ImageRef::parse("algo:2").unwrap();
    world.repo.update(a.id, &image, false).await.unwrap();
    let changed = reconciler.run_pass(Trigger::Nudge).await;
    assert!(changed.waiting.is_empty(), "{changed:?}");
    assert_eq!(changed.failed.len(), 1, "the third injected failure");
    assert_eq!(changed.failed[0].attempt, 1, "a fresh schedule");

    // Switched off: nothing is left to retry, and the schedule goes.
    world
        .repo
        .set_status(a.id, [(VWAP, false)].into_iter().collect(), false)
        .await
        .unwrap();
    let off = reconciler.run_pass(Trigger::Nudge).await;
    assert_eq!((off.retries_pending, off.waiting.len()), (0, 0));
    assert!(world.repo.pod_retries().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_rejected_operation_waits_the_maximum_and_keeps_its_reason() {
    let world = World::new();
    let a = client(&world, "a", &[HFT]).await;
    let hft = pod(HFT, a.id);
    let max = Duration::from_secs(300);
    let reconciler = world.reconciler_on_clock(Duration::from_secs(1), max);
    world.runtime.fail_next_with(&hft, 2, FakeFailure::Rejected);

    let first = reconciler.run_pass(Trigger::Startup).await;
    assert_eq!(first.failed[0].next_retry_at, now(&world) + max);
    assert!(
        first.failed[0].error.contains("rejected"),
        "{}",
        first.failed[0].error
    );
    world.clock.advance(max - Duration::from_secs(1));
    assert_eq!(
        waiting_pods(&reconciler.run_pass(Trigger::Nudge).await),
        [hft.to_string()]
    );
    world.clock.advance(Duration::from_secs(1));
    let second = reconciler.run_pass(Trigger::Retry).await;
    assert_eq!(second.failed[0].attempt, 2);
    assert_eq!(
        second.failed[0].next_retry_at,
        now(&world) + max,
        "every refusal waits the maximum"
    );
    let stored = &world.repo.pod_retries().await.unwrap()[0];
    assert!(stored.rejected);
    assert!(
        stored.error.contains("injected failure"),
        "{}",
        stored.error
    );
}

#[tokio::test]
async fn a_throttled_operation_waits_at_least_its_retry_after() {
    let world = World::new();
    let a = client(&world, "a", &[VWAP]).await;
    let vwap = pod(VWAP, a.id);
    let reconciler = world.reconciler_on_clock(Duration::from_millis(100), Duration::from_secs(5));
    world
        .runtime
        .fail_next_with(&vwap, 1, FakeFailure::Throttled(Duration::from_secs(30)));

    let throttled = reconciler.run_pass(Trigger::Startup).await;
    assert_eq!(
        throttled.failed[0].next_retry_at,
        now(&world) + Duration::from_secs(30),
        "Retry-After is a lower bound, above the maximum too"
    );
    world.clock.advance(Duration::from_secs(29));
    assert_eq!(
        waiting_pods(&reconciler.run_pass(Trigger::Retry).await),
        [vwap.to_string()]
    );
    world.clock.advance(Duration::from_secs(1));
    assert_eq!(reconciler.run_pass(Trigger::Retry).await.created, [vwap]);
}

#[tokio::test]
async fn a_replica_taking_over_the_lock_keeps_the_schedules() {
    let world = World::new();
    let a = client(&world, "a", &[VWAP]).await;
    let vwap = pod(VWAP, a.id);
    world.runtime.fail_next(&vwap, 2);
    let first = default_reconciler(&world);
    first.run_pass(Trigger::Startup).await;
    drop(first);

    // Another replica, on the same storage and cluster: the schedule was stored, not kept in
    // the replica that failed.
    let second = default_reconciler(&world);
    let early = second.run_pass(Trigger::Interval).await;
    assert_eq!(waiting_pods(&early), [vwap.to_string()]);
    world.clock.advance(Duration::from_secs(1));
    let retried = second.run_pass(Trigger::Retry).await;
    assert_eq!(
        retried.failed[0].attempt, 2,
        "counted on from the first replica's"
    );
}

#[tokio::test]
async fn the_pass_report_and_the_log_carry_the_attempt_and_the_next_retry_time() {
    let world = World::new();
    let a = client(&world, "a", &[VWAP]).await;
    world.runtime.fail_next(&pod(VWAP, a.id), 2);
    let reconciler = default_reconciler(&world);
    reconciler.run_pass(Trigger::Startup).await;
    world.clock.advance(Duration::from_secs(1));
    let report = reconciler.run_pass(Trigger::Retry).await;
    let failure = &report.failed[0];
    assert_eq!(failure.attempt, 2);

    let lines = world.logs.lines();
    let failed: Vec<_> = lines
        .iter()
        .filter(|l| l.msg == "pod create failed")
        .collect();
    assert_eq!(failed.len(), 2);
    let last = failed[1];
    assert_eq!(last.level, "ERROR");
    assert_eq!(last.component, "sync/watcher");
    assert_eq!(
        last.field("pod_operation"),
        &json!(format!("<CREATE> vwap-{}", a.id))
    );
    assert_eq!(last.field("attempt"), &json!(2));
    let logged_retry =
        humantime::parse_rfc3339(last.field("next_retry_at").as_str().unwrap()).unwrap();
    let since = failure
        .next_retry_at
        .duration_since(logged_retry)
        .unwrap_or_else(|e| e.duration());
    assert!(
        since < Duration::from_millis(1),
        "the log's time is the report's"
    );
    let summary = lines.iter().rfind(|l| l.msg == "pass finished").unwrap();
    assert_eq!(summary.field("failed"), &json!(1));
    assert_eq!(summary.field("retries_pending"), &json!(1));
    assert_eq!(summary.field("trigger"), &json!("retry"));
}

#[tokio::test]
async fn the_watcher_runs_a_retry_pass_when_a_retry_time_comes() {
    let world = World::new();
    let a = client(&world, "a", &[VWAP]).await;
    let vwap = pod(VWAP, a.id);
    world.runtime.fail_next(&vwap, 2);
    // The system clock and a short schedule: the watcher sleeps until each retry time.
    let reconciler = world
        .reconciler()
        .with_backoff(Backoff::new(Duration::from_millis(20), Duration::from_millis(50)).unwrap());
    let config = SyncSettings {
        interval: Duration::from_secs(3600),
        debounce: Duration::ZERO,
        ..SyncSettings::default()
    };
    let watcher = Watcher::start(reconciler, config, &world.logs.logger());
    let handle = watcher.handle();

    eventually(
        "the pod is created by a retry pass",
        Duration::from_secs(30),
        || async { exists(&world, &vwap) },
    )
    .await;
    let last = handle.last_report().expect("a pass finished");
    assert_eq!(last.trigger, Trigger::Retry);
    assert_eq!(last.outcome, PassOutcome::Completed);
    assert_eq!(last.created, [vwap]);
    let retries: Vec<_> = world
        .logs
        .lines()
        .into_iter()
        .filter(|l| l.msg == "pass finished" && l.field("trigger") == &json!("retry"))
        .collect();
    assert_eq!(
        retries.len(),
        2,
        "one retry pass per retry time, no busy loop"
    );
    watcher.stop().await;
}

#[tokio::test]
async fn retry_passes_never_overlap_other_passes() {
    let world = World::new();
    let mut vwaps = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let id = client(&world, name, &[VWAP, TWAP, HFT]).await.id;
        vwaps.push(pod(VWAP, id));
    }
    // Half of all operations fail and each runtime call takes a while; the retry schedule is
    // short, so retry times keep coming while requests (which run outside the watcher's loop)
    // and nudges make passes of their own. A pod deleted from outside before each request keeps
    // the passes busy once everything has converged.
    world.runtime.fail_randomly(0.5, 7);
    world.runtime.set_latency(Duration::from_millis(5));
    let lock = CountingLock::default();
    let reconciler = world
        .reconciler_locked_by(Arc::new(lock.clone()))
        .with_backoff(Backoff::new(Duration::from_millis(10), Duration::from_millis(20)).unwrap());
    let config = SyncSettings {
        interval: Duration::from_secs(3600),
        debounce: Duration::from_millis(1),
        ..SyncSettings::default()
    };
    let watcher = Watcher::start(reconciler, config, &world.logs.logger());
    let handle = watcher.handle();
    let requests = {
        let handle = handle.clone();
        let runtime = world.runtime.clone();
        tokio::spawn(async move {
            for vwap in vwaps.iter().cycle() {
                runtime.drop_pod(vwap);
                handle.sync_now().await.unwrap();
                handle.nudge();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let passes = |trigger: &str| {
        world
            .logs
            .lines()
            .into_iter()
            .filter(|l| l.msg == "pass finished" && l.field("trigger") == &json!(trigger))
            .count()
    };
    eventually(
        "retry, request and nudged passes ran",
        Duration::from_secs(60),
        || async { passes("retry") >= 5 && passes("request") >= 5 && passes("nudge") >= 1 },
    )
    .await;
    requests.abort();
    watcher.stop().await;

    assert!(world.runtime.random_failures_injected() > 0);
    assert_eq!(
        lock.most.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a retry ran while another pass held the reconcile lock"
    );
}
