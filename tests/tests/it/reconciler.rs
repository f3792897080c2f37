//! The reconciler and the watcher over the in-memory adapters, driven directly: the pass itself,
//! its report, failure isolation, drift, restarts and their compare-and-set acknowledge.
//! Restarts through terminating pods are in `terminating`; the watcher nudged by the runtime's
//! change feed is in `drift`; per-pod retry schedules in `retries`.

mod drift;
mod retries;
mod terminating;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alsy_app::{
    ClientRepository, FailedPart, HeldPassLock, Operation, PassLock, PassOutcome, PassReport,
    Reconciler, RepoError, Service, SyncSettings, Trigger, Watcher,
};
use alsy_domain::{Algorithm, AlgorithmStatus, Backoff, Catalogue, Client, ClientId, PodPhase};
use alsy_fake::{FakePodRuntime, Gate, InMemoryRepository, LocalPassLock, ManualClock};
use alsy_tests::fixtures::{eventually, pod, spec};
use alsy_tests::logs::Logs;
use async_trait::async_trait;
use tokio::task::JoinHandle;

struct World {
    repo: InMemoryRepository,
    runtime: FakePodRuntime,
    lock: LocalPassLock,
    /// Moved by hand; only [`World::reconciler_on_clock`]'s reconcilers read it.
    clock: ManualClock,
    logs: Logs,
}

impl World {
    fn new() -> World {
        World {
            repo: InMemoryRepository::new(),
            runtime: FakePodRuntime::new(),
            lock: LocalPassLock::new(),
            clock: ManualClock::default(),
            logs: Logs::default(),
        }
    }

    fn reconciler(&self) -> Reconciler {
        self.reconciler_locked_by(Arc::new(self.lock.clone()))
    }

    /// A reconciler taking `lock` instead of this world's.
    fn reconciler_locked_by(&self, lock: Arc<dyn PassLock>) -> Reconciler {
        Reconciler::new(
            Arc::new(self.repo.clone()),
            Arc::new(self.runtime.clone()),
            lock,
            16,
            &self.logs.logger(),
        )
    }

    /// A reconciler on this world's hand-moved clock, retrying failed operations between `base`
    /// and `max`.
    fn reconciler_on_clock(&self, base: Duration, max: Duration) -> Reconciler {
        self.reconciler()
            .with_backoff(Backoff::new(base, max).unwrap())
            .with_clock(Arc::new(self.clock.clone()))
    }

    /// A watcher over this world's reconciler, passing every hour and `debounce` after a nudge.
    fn watcher(&self, debounce: Duration) -> Watcher {
        let config = SyncSettings {
            interval: Duration::from_secs(3600),
            debounce,
            ..SyncSettings::default()
        };
        Watcher::start(self.reconciler(), config, &self.logs.logger())
    }

    /// Starts `reconciler`'s pass in the background and returns once it has called the runtime,
    /// and so holds the lock and has read the desired state.
    async fn pass_under_way(
        &self,
        reconciler: &Arc<Reconciler>,
        trigger: Trigger,
    ) -> JoinHandle<PassReport> {
        let calls_before = self.runtime.calls_started();
        let pass = tokio::spawn({
            let reconciler = reconciler.clone();
            async move { reconciler.run_pass(trigger).await }
        });
        eventually(
            "the pass has called the runtime",
            Duration::from_secs(5),
            || async { self.runtime.calls_started() > calls_before },
        )
        .await;
        pass
    }

    async fn client(&self, name: &str, vwap: bool, twap: bool, hft: bool) -> Client {
        let client = self.repo.create(&spec(name)).await.unwrap();
        self.repo
            .set_status(
                client.id,
                alsy_tests::fixtures::switches(vwap, twap, hft),
                false,
            )
            .await
            .unwrap()
    }

    /// Switches on exactly the algorithms in `on` for client `id`, marking it for a restart if
    /// `need_restart`. Every algorithm of the default catalogue is named, as the API's bodies
    /// do: a status write keeps the stored switches it does not name.
    async fn switch_on(&self, id: ClientId, on: &[Algorithm], need_restart: bool) {
        let mut status: AlgorithmStatus = Catalogue::DEFAULT.iter().map(|a| (*a, false)).collect();
        for algorithm in on {
            status.set(*algorithm, true);
        }
        self.repo
            .set_status(id, status, need_restart)
            .await
            .unwrap();
    }

    fn pod_names(&self) -> Vec<String> {
        self.runtime
            .pods()
            .into_iter()
            .map(|p| p.spec.name.to_string())
            .collect()
    }
}

fn names(pods: &[alsy_domain::PodName]) -> Vec<String> {
    pods.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn a_pass_creates_a_pod_for_every_algorithm_that_is_on_and_only_those() {
    let world = World::new();
    let a = world.client("a", true, false, true).await;
    let b = world.client("b", false, true, false).await;
    world.client("c", false, false, false).await;

    let report = world.reconciler().run_pass(Trigger::Request).await;

    assert_eq!(report.outcome, PassOutcome::Completed);
    let expected = [
        pod(Algorithm::named("HFT"), a.id),
        pod(Algorithm::named("TWAP"), b.id),
        pod(Algorithm::named("VWAP"), a.id),
    ];
    assert_eq!(names(&report.created), names(&expected));
    assert_eq!(world.pod_names(), names(&expected));
    assert!(report.failed.is_empty() && report.deleted.is_empty() && report.restarted.is_empty());
    let a = world.repo.get(a.id).await.unwrap();
    assert!(
        a.spawned_at.is_some(),
        "spawned_at is set once its pods start"
    );
}

#[tokio::test]
async fn a_second_pass_with_nothing_changed_does_nothing() {
    let world = World::new();
    world.client("a", true, true, true).await;
    let reconciler = world.reconciler();
    reconciler.run_pass(Trigger::Startup).await;
    let second = reconciler.run_pass(Trigger::Interval).await;
    assert!(second.created.is_empty() && second.deleted.is_empty() && second.restarted.is_empty());
    assert_eq!(world.runtime.operations().len(), 3);
}

#[tokio::test]
async fn switching_off_and_deleting_remove_pods() {
    let world = World::new();
    let a = world.client("a", true, false, true).await;
    let b = world.client("b", true, false, false).await;
    let reconciler = world.reconciler();
    reconciler.run_pass(Trigger::Startup).await;

    world
        .switch_on(a.id, &[Algorithm::named("HFT")], false)
        .await;
    world.repo.delete(b.id).await.unwrap();
    let report = reconciler.run_pass(Trigger::Nudge).await;

    assert_eq!(
        names(&report.deleted),
        names(&[
            pod(Algorithm::named("VWAP"), a.id),
            pod(Algorithm::named("VWAP"), b.id)
        ])
    );
    assert_eq!(
        world.pod_names(),
        names(&[pod(Algorithm::named("HFT"), a.id)])
    );
}

#[tokio::test]
async fn one_pod_failing_does_not_stop_the_others_and_is_retried() {
    let world = World::new();
    let a = world.client("a", true, true, true).await;
    let failing = pod(Algorithm::named("TWAP"), a.id);
    world.runtime.fail_next(&failing, 1);
    let reconciler = world.reconciler();

    let first = reconciler.run_pass(Trigger::Startup).await;
    assert_eq!(first.failed.len(), 1);
    assert_eq!(first.failed[0].pod, failing);
    assert_eq!(first.failed[0].operation, Operation::Create);
    assert!(
        first.failed[0].error.contains("twap-1"),
        "the error names the pod: {}",
        first.failed[0].error
    );
    assert_eq!(
        names(&first.created),
        names(&[
            pod(Algorithm::named("HFT"), a.id),
            pod(Algorithm::named("VWAP"), a.id)
        ])
    );
    assert_eq!(
        world.repo.get(a.id).await.unwrap().spawned_at,
        None,
        "not acknowledged while a pod failed"
    );

    // A request applies at once what waits for its retry time (`retries.rs` has the schedule).
    let second = reconciler.run_pass(Trigger::Request).await;
    assert_eq!(names(&second.created), [failing.to_string()]);
    assert!(second.failed.is_empty());
    assert!(world.repo.get(a.id).await.unwrap().spawned_at.is_some());
}

#[tokio::test]
async fn a_pod_dropped_behind_our_back_comes_back_and_a_failed_pod_is_replaced() {
    let world = World::new();
    let a = world.client("a", true, true, false).await;
    let reconciler = world.reconciler();
    reconciler.run_pass(Trigger::Startup).await;
    let vwap = pod(Algorithm::named("VWAP"), a.id);
    let twap = pod(Algorithm::named("TWAP"), a.id);
    let old_uid = world.runtime.pod(&twap).unwrap().uid;

    assert!(world.runtime.drop_pod(&vwap));
    assert!(world.runtime.set_phase(&twap, PodPhase::Failed));
    let report = reconciler.run_pass(Trigger::Interval).await;

    assert_eq!(names(&report.created), [vwap.to_string()]);
    assert_eq!(names(&report.restarted), [twap.to_string()]);
    let replaced = world.runtime.pod(&twap).unwrap();
    assert_eq!(replaced.phase, PodPhase::Running);
    assert_ne!(replaced.uid, old_uid);
    assert!(world.runtime.pod(&vwap).is_some());
}

#[tokio::test]
async fn a_restart_restarts_each_pod_exactly_once_clears_the_flag_and_sets_spawned_at() {
    let world = World::new();
    let a = world.client("a", true, false, true).await;
    let reconciler = world.reconciler();
    reconciler.run_pass(Trigger::Startup).await;
    let first_spawn = world.repo.get(a.id).await.unwrap().spawned_at.unwrap();

    world.repo.update(a.id, &spec("a"), true).await.unwrap();
    let report = reconciler.run_pass(Trigger::Nudge).await;
    reconciler.run_pass(Trigger::Interval).await;

    assert_eq!(
        names(&report.restarted),
        names(&[
            pod(Algorithm::named("HFT"), a.id),
            pod(Algorithm::named("VWAP"), a.id)
        ])
    );
    let mut restarts: Vec<_> = world
        .runtime
        .operations()
        .into_iter()
        .filter(|op| op.operation == Operation::Restart)
        .map(|op| op.pod)
        .collect();
    restarts.sort();
    assert_eq!(
        restarts,
        [
            pod(Algorithm::named("HFT"), a.id),
            pod(Algorithm::named("VWAP"), a.id)
        ],
        "each pod restarted exactly once over two passes"
    );
    let a = world.repo.get(a.id).await.unwrap();
    assert!(!a.need_restart);
    assert!(a.spawned_at.unwrap() > first_spawn);
}

#[tokio::test]
async fn a_failed_restart_keeps_the_mark_and_is_retried() {
    let world = World::new();
    let a = world.client("a", true, false, false).await;
    let reconciler = world.reconciler();
    reconciler.run_pass(Trigger::Startup).await;
    world.repo.update(a.id, &spec("a"), true).await.unwrap();
    world
        .runtime
        .fail_next(&pod(Algorithm::named("VWAP"), a.id), 1);

    let failed = reconciler.run_pass(Trigger::Nudge).await;
    assert_eq!(failed.failed.len(), 1);
    assert!(
        world.repo.get(a.id).await.unwrap().need_restart,
        "the mark survives a failed restart"
    );

    let retried = reconciler.run_pass(Trigger::Request).await;
    assert_eq!(
        names(&retried.restarted),
        names(&[pod(Algorithm::named("VWAP"), a.id)])
    );
    assert!(!world.repo.get(a.id).await.unwrap().need_restart);
}

#[tokio::test]
async fn an_update_arriving_during_a_restart_is_not_lost() {
    let world = World::new();
    let a = world.client("a", true, false, false).await;
    let reconciler = Arc::new(world.reconciler());
    reconciler.run_pass(Trigger::Startup).await;
    world.repo.update(a.id, &spec("a"), true).await.unwrap();

    // Slow the runtime so the update lands while the pass is restarting the pod.
    world.runtime.set_latency(Duration::from_millis(300));
    // The runtime is called only after the desired state was read: once it has been, the update
    // below lands between the pass's read and its acknowledge.
    let pass = world.pass_under_way(&reconciler, Trigger::Nudge).await;
    world
        .repo
        .update(a.id, &spec("a-renamed"), true)
        .await
        .unwrap();
    let report = pass.await.unwrap();
    world.runtime.set_latency(Duration::ZERO);

    assert_eq!(report.restarted.len(), 1);
    let after = world.repo.get(a.id).await.unwrap();
    assert!(
        after.need_restart,
        "the second restart request survives the first acknowledge"
    );
    let again = reconciler.run_pass(Trigger::Interval).await;
    assert_eq!(
        again.restarted.len(),
        1,
        "and is carried out on the next pass"
    );
    assert!(!world.repo.get(a.id).await.unwrap().need_restart);
}

#[tokio::test]
async fn every_pod_operation_is_logged_with_its_pod_operation_field() {
    let world = World::new();
    let a = world.client("a", true, true, false).await;
    let reconciler = world.reconciler();
    world
        .runtime
        .fail_next(&pod(Algorithm::named("TWAP"), a.id), 1);
    reconciler.run_pass(Trigger::Startup).await;
    world
        .switch_on(a.id, &[Algorithm::named("VWAP")], true)
        .await;
    reconciler.run_pass(Trigger::Nudge).await;

    let ops: Vec<(String, String, String)> = world
        .logs
        .lines()
        .into_iter()
        .filter_map(|l| {
            let op = l.get("pod_operation")?.to_owned();
            assert_eq!(l.component, "sync/watcher");
            Some((l.level.clone(), l.msg.clone(), op))
        })
        .collect();
    let expect =
        |level: &str, msg: &str, op: &str| (level.to_owned(), msg.to_owned(), op.to_owned());
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert!(ops.contains(&expect("INFO", "pod created", "<CREATE> vwap-1")));
    assert!(ops.contains(&expect("ERROR", "pod create failed", "<CREATE> twap-1")));
    assert!(ops.contains(&expect("INFO", "pod restarted", "<RESTART> vwap-1")));
    let summaries = world
        .logs
        .lines()
        .into_iter()
        .filter(|l| l.msg == "pass finished")
        .count();
    assert_eq!(summaries, 2, "one summary line per pass");
}

#[tokio::test]
async fn two_reconcilers_sharing_a_lock_never_run_a_pass_at_once() {
    let world = World::new();
    world.client("a", true, false, false).await;
    world.runtime.set_latency(Duration::from_millis(200));
    let first = Arc::new(world.reconciler());
    let second = world.reconciler();

    // The lock is taken before the runtime is first called.
    let running = world.pass_under_way(&first, Trigger::Interval).await;
    let skipped = second.run_pass(Trigger::Interval).await;
    assert_eq!(skipped.outcome, PassOutcome::Skipped);
    assert_eq!(running.await.unwrap().outcome, PassOutcome::Completed);
}

/// A reconcile lock that never refuses and counts the passes holding it at once: under it only the
/// watcher itself can keep passes apart.
#[derive(Clone, Default)]
pub(crate) struct CountingLock {
    holders: Arc<AtomicUsize>,
    /// The most passes that held it at once.
    pub(crate) most: Arc<AtomicUsize>,
    /// How many passes took it.
    pub(crate) taken: Arc<AtomicUsize>,
}

struct CountedHold(Arc<AtomicUsize>);

#[async_trait]
impl HeldPassLock for CountedHold {
    async fn release(self: Box<Self>) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl PassLock for CountingLock {
    async fn try_acquire(&self) -> Result<Option<Box<dyn HeldPassLock>>, RepoError> {
        let now = self.holders.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.taken.fetch_add(1, Ordering::SeqCst);
        Ok(Some(Box::new(CountedHold(self.holders.clone()))))
    }
}

#[tokio::test]
async fn the_watchers_passes_never_overlap_whatever_triggers_them() {
    let world = World::new();
    world.client("a", true, true, true).await;
    // Every runtime call waits, so a pass is still running when the next trigger fires.
    world.runtime.set_latency(Duration::from_millis(20));
    let lock = CountingLock::default();
    let reconciler = world.reconciler_locked_by(Arc::new(lock.clone()));
    let config = SyncSettings {
        interval: Duration::from_millis(5),
        debounce: Duration::from_millis(1),
        ..SyncSettings::default()
    };
    let watcher = Watcher::start(reconciler, config, &world.logs.logger());
    let handle = watcher.handle();

    // Start-up, interval ticks, nudges and eight requests at once all compete for passes.
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.sync_now().await })
        })
        .collect();
    for _ in 0..8 {
        handle.nudge();
        tokio::task::yield_now().await;
    }
    for request in requests {
        let report = request.await.unwrap().unwrap();
        assert_eq!(
            report.outcome,
            PassOutcome::Completed,
            "a request waits for the running pass instead of skipping"
        );
    }
    watcher.stop().await;

    assert!(
        lock.taken.load(Ordering::SeqCst) >= 9,
        "start-up + 8 requests"
    );
    assert_eq!(
        lock.most.load(Ordering::SeqCst),
        1,
        "two passes of one watcher ran at once"
    );
}

#[tokio::test]
async fn a_pass_that_cannot_list_pods_fails_whole_and_applies_nothing() {
    let world = World::new();
    world.client("a", true, false, false).await;
    world.runtime.fail_next_lists(1);
    let report = world.reconciler().run_pass(Trigger::Startup).await;
    assert!(
        matches!(&report.outcome, PassOutcome::Failed { part: FailedPart::Runtime, reason } if reason.contains("listing pods")),
        "{:?}",
        report.outcome
    );
    assert!(world.runtime.pods().is_empty());
}

#[tokio::test]
async fn the_watcher_runs_a_startup_pass_and_a_pass_after_a_nudge() {
    let world = World::new();
    let a = world.client("a", true, false, false).await;
    let watcher = world.watcher(Duration::from_millis(20));
    let handle = watcher.handle();
    eventually(
        "the start-up pass created vwap-1",
        Duration::from_secs(5),
        || async {
            world
                .runtime
                .pod(&pod(Algorithm::named("VWAP"), a.id))
                .is_some()
        },
    )
    .await;

    world
        .switch_on(a.id, &[Algorithm::named("HFT")], false)
        .await;
    handle.nudge();
    eventually(
        "the nudged pass swapped vwap for hft",
        Duration::from_secs(5),
        || async { world.pod_names() == names(&[pod(Algorithm::named("HFT"), a.id)]) },
    )
    .await;
    assert_eq!(
        handle.last_report().map(|r| r.trigger),
        Some(Trigger::Nudge)
    );
    watcher.stop().await;
}

#[tokio::test]
async fn sync_now_waits_for_the_running_pass_and_reflects_every_earlier_write() {
    let world = World::new();
    let a = world.client("a", true, false, false).await;
    let gate = Gate::new();
    world.runtime.hold_next_list(&gate);
    let watcher = world.watcher(Duration::ZERO);
    // The start-up pass has read the desired state (vwap only) and waits at the gate while this
    // write lands.
    gate.arrived(1).await;
    world
        .switch_on(
            a.id,
            &[Algorithm::named("VWAP"), Algorithm::named("TWAP")],
            false,
        )
        .await;
    let handle = watcher.handle();
    // `join!` polls `sync_now` first: it is asked while the start-up pass still runs.
    let (report, ()) = tokio::join!(handle.sync_now(), async {
        tokio::task::yield_now().await;
        gate.open();
    });
    let report = report.unwrap();
    assert_eq!(report.trigger, Trigger::Request);
    assert_eq!(
        report.outcome,
        PassOutcome::Completed,
        "it waited for the running pass instead of being turned away by the lock"
    );
    assert_eq!(
        report.created,
        [pod(Algorithm::named("TWAP"), a.id)],
        "the write before the request is reconciled"
    );
    let operations: Vec<_> = world
        .runtime
        .operations()
        .iter()
        .map(|op| op.pod.clone())
        .collect();
    assert_eq!(
        operations,
        [
            pod(Algorithm::named("VWAP"), a.id),
            pod(Algorithm::named("TWAP"), a.id)
        ],
        "the start-up pass ran first, on what it had read"
    );
    watcher.stop().await;
}

#[tokio::test]
async fn stopping_the_watcher_lets_the_running_pass_finish_and_refuses_new_ones() {
    let world = World::new();
    for name in ["a", "b", "c"] {
        world.client(name, true, true, true).await;
    }
    world.runtime.set_latency(Duration::from_millis(100));
    let watcher = world.watcher(Duration::ZERO);
    let handle = watcher.handle();
    eventually(
        "the start-up pass is under way",
        Duration::from_secs(5),
        || async { !world.runtime.operations().is_empty() },
    )
    .await;
    watcher.stop().await;
    assert_eq!(world.runtime.pods().len(), 9, "the running pass finished");
    assert_eq!(handle.last_report().map(|r| r.created.len()), Some(9));
    assert!(handle.sync_now().await.is_err(), "no pass after stop");
}

/// The passes the world's log reports, in order, by trigger.
fn passes(world: &World) -> Vec<String> {
    world
        .logs
        .lines()
        .into_iter()
        .filter(|l| l.msg == "pass finished")
        .map(|l| l.field("trigger").as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Lets virtual time run well past `debounce`, so any nudged pass has run (time is paused: this
/// waits for nothing real, it only moves the test's clock).
async fn past(debounce: Duration) {
    tokio::time::sleep(debounce * 5).await;
}

#[tokio::test(start_paused = true)]
async fn status_writes_deletes_and_restarts_nudge_a_pass_and_creates_and_plain_updates_do_not() {
    let world = World::new();
    let debounce = Duration::from_secs(1);
    let watcher = world.watcher(debounce);
    let service = Service::new(
        Arc::new(world.repo.clone()),
        Arc::new(world.runtime.clone()),
        watcher.handle(),
    );
    past(debounce).await;
    assert_eq!(passes(&world), ["startup"]);

    let a = service.create_client(spec("a")).await.unwrap();
    past(debounce).await;
    assert_eq!(
        passes(&world),
        ["startup"],
        "nothing should run yet: no nudge"
    );

    service.update_client(a.id, spec("a"), false).await.unwrap();
    past(debounce).await;
    assert_eq!(passes(&world), ["startup"], "a plain update does not nudge");

    let on = alsy_tests::fixtures::named_switches(&[("VWAP", true)]);
    service.set_status(a.id, on, false).await.unwrap();
    past(debounce).await;
    assert_eq!(passes(&world), ["startup", "nudge"]);
    assert_eq!(
        world.pod_names(),
        names(&[pod(Algorithm::named("VWAP"), a.id)])
    );

    service.update_client(a.id, spec("a"), true).await.unwrap();
    past(debounce).await;
    assert_eq!(passes(&world), ["startup", "nudge", "nudge"]);
    let last = watcher.handle().last_report().unwrap();
    assert_eq!(
        names(&last.restarted),
        names(&[pod(Algorithm::named("VWAP"), a.id)])
    );

    service.delete_client(a.id).await.unwrap();
    past(debounce).await;
    assert_eq!(passes(&world), ["startup", "nudge", "nudge", "nudge"]);
    assert!(
        world.pod_names().is_empty(),
        "the deleted client's pod went"
    );
    watcher.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_interval_ticker_runs_a_pass_that_repairs_drift() {
    let world = World::new();
    let a = world.client("a", true, false, false).await;
    let interval = Duration::from_secs(3600);
    let watcher = world.watcher(Duration::ZERO);
    past(Duration::from_secs(1)).await;
    assert_eq!(passes(&world), ["startup"]);
    assert!(world.runtime.drop_pod(&pod(Algorithm::named("VWAP"), a.id)));

    tokio::time::sleep(interval - Duration::from_secs(10)).await;
    assert_eq!(passes(&world), ["startup"], "no tick before the interval");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(passes(&world), ["startup", "interval"]);
    assert_eq!(
        world.pod_names(),
        names(&[pod(Algorithm::named("VWAP"), a.id)])
    );
    watcher.stop().await;
}

#[tokio::test(start_paused = true)]
async fn at_most_concurrency_pod_operations_are_in_flight_at_once() {
    let world = World::new();
    for n in 0..10 {
        world.client(&format!("c{n}"), true, false, false).await;
    }
    world.runtime.set_latency(Duration::from_millis(100));
    let reconciler = Reconciler::new(
        Arc::new(world.repo.clone()),
        Arc::new(world.runtime.clone()),
        Arc::new(world.lock.clone()),
        3,
        &world.logs.logger(),
    );
    let report = reconciler.run_pass(Trigger::Request).await;
    assert_eq!(report.created.len(), 10);
    assert_eq!(
        world.runtime.max_in_flight(),
        3,
        "ALSY__SYNC__CONCURRENCY=3: three at once, never more"
    );
}
