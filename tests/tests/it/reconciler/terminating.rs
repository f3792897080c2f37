//! Restarts that never hold a pass, and `Terminating` as a state: on a fake runtime whose
//! deletions leave pods terminating for a grace period the test chooses (ended by
//! `finish_terminating`, or by virtual time).

use std::time::Duration;

use alsy_app::{ClientRepository, Operation, RECHECK_MAX, Service, Trigger};
use alsy_domain::{Algorithm, PodName, PodPhase};
use alsy_tests::fixtures::{pod, spec};

use super::{World, names, passes, past};

/// Longer than any test: the pods terminate until the test ends their grace period.
const FOR_EVER: Duration = Duration::from_secs(24 * 3600);

fn just(pod: &PodName) -> Vec<String> {
    vec![pod.to_string()]
}

fn messages(world: &World, msg: &str) -> usize {
    world.logs.lines().iter().filter(|l| l.msg == msg).count()
}

#[tokio::test]
async fn a_restart_returns_while_the_old_pod_terminates_and_a_later_pass_creates_its_successor() {
    let world = World::new();
    let a = world.client("a", true, false, false).await;
    let reconciler = world.reconciler();
    reconciler.run_pass(Trigger::Startup).await;
    let vwap = pod(Algorithm::named("VWAP"), a.id);
    let old_uid = world.runtime.pod(&vwap).unwrap().uid;
    world.runtime.set_termination_grace(FOR_EVER);
    world.repo.update(a.id, &spec("a"), true).await.unwrap();

    // The restart deletes the old pod and returns; the client stays marked.
    let begun = reconciler.run_pass(Trigger::Nudge).await;
    assert_eq!(names(&begun.restarted), just(&vwap));
    assert_eq!(names(&begun.terminating), just(&vwap));
    assert!(begun.created.is_empty());
    assert_eq!(
        world.runtime.pod(&vwap).unwrap().phase,
        PodPhase::Terminating
    );
    assert!(world.repo.get(a.id).await.unwrap().need_restart);

    // While it terminates, passes touch nothing and acknowledge nothing.
    let waiting = reconciler.run_pass(Trigger::Recheck).await;
    assert!(waiting.restarted.is_empty() && waiting.created.is_empty());
    assert!(waiting.deleted.is_empty() && waiting.failed.is_empty());
    assert_eq!(names(&waiting.terminating), just(&vwap));
    assert_eq!(world.runtime.pod(&vwap).unwrap().uid, old_uid);
    assert!(world.repo.get(a.id).await.unwrap().need_restart);

    // Once it is gone, the next pass creates the successor and only then acknowledges.
    assert_eq!(world.runtime.finish_terminating(), 1);
    let done = reconciler.run_pass(Trigger::Recheck).await;
    assert_eq!(names(&done.created), just(&vwap));
    assert!(done.terminating.is_empty());
    let successor = world.runtime.pod(&vwap).unwrap();
    assert_ne!(successor.uid, old_uid);
    let a = world.repo.get(a.id).await.unwrap();
    assert!(!a.need_restart, "acknowledged once the replacement exists");
    assert!(a.spawned_at.is_some());

    // Settled: the replacement carries the acknowledged mark and is left alone.
    let quiet = reconciler.run_pass(Trigger::Interval).await;
    assert!(quiet.created.is_empty() && quiet.restarted.is_empty());
    assert_eq!(
        messages(
            &world,
            "pod restart begun: the old pod is terminating; a later pass creates its successor once it is gone"
        ),
        1
    );
    let restarts = world
        .runtime
        .operations()
        .iter()
        .filter(|op| op.operation == Operation::Restart)
        .count();
    assert_eq!(restarts, 1, "restarted once, however many passes it took");
}

#[tokio::test]
async fn a_terminating_pod_is_deleted_once_and_logged_once() {
    let world = World::new();
    let a = world.client("a", true, true, false).await;
    let reconciler = world.reconciler();
    reconciler.run_pass(Trigger::Startup).await;
    world.runtime.set_termination_grace(FOR_EVER);
    world
        .switch_on(a.id, &[Algorithm::named("VWAP")], false)
        .await;

    let first = reconciler.run_pass(Trigger::Nudge).await;
    assert_eq!(
        names(&first.deleted),
        names(&[pod(Algorithm::named("TWAP"), a.id)])
    );
    for _ in 0..3 {
        let again = reconciler.run_pass(Trigger::Interval).await;
        assert!(
            again.deleted.is_empty(),
            "deleted again: {:?}",
            again.deleted
        );
        // Nothing that should run waits for it.
        assert!(again.terminating.is_empty());
    }
    assert_eq!(messages(&world, "pod deleted"), 1);
    let twap = world
        .runtime
        .pod(&pod(Algorithm::named("TWAP"), a.id))
        .unwrap();
    assert_eq!(twap.phase, PodPhase::Terminating);
}

#[tokio::test]
async fn a_pod_that_should_run_is_not_created_again_while_its_old_self_terminates() {
    let world = World::new();
    let a = world.client("a", true, false, false).await;
    let reconciler = world.reconciler();
    reconciler.run_pass(Trigger::Startup).await;
    world.runtime.set_termination_grace(FOR_EVER);
    // Someone deletes it behind alsy's back; it terminates while still wanted.
    let vwap = pod(Algorithm::named("VWAP"), a.id);
    alsy_app::PodRuntime::delete(&world.runtime, &vwap)
        .await
        .unwrap();

    let report = reconciler.run_pass(Trigger::Interval).await;

    assert!(report.created.is_empty() && report.restarted.is_empty());
    assert_eq!(names(&report.terminating), just(&vwap));
    world.runtime.finish_terminating();
    let report = reconciler.run_pass(Trigger::Interval).await;
    assert_eq!(names(&report.created), just(&vwap));
}

#[tokio::test(start_paused = true)]
async fn the_watcher_rechecks_until_the_old_pods_are_gone_then_stops() {
    let world = World::new();
    let a = world.client("a", true, false, true).await;
    let debounce = Duration::from_secs(1);
    let watcher = world.watcher(debounce);
    let service = Service::new(
        std::sync::Arc::new(world.repo.clone()),
        std::sync::Arc::new(world.runtime.clone()),
        watcher.handle(),
    );
    past(debounce).await;
    let grace = Duration::from_secs(30);
    world.runtime.set_termination_grace(grace);

    service.update_client(a.id, spec("a"), true).await.unwrap();
    past(debounce).await;
    let last = watcher.handle().last_report().unwrap();
    assert_eq!(last.terminating.len(), 2, "{last:?}");

    // The old pods go after the grace period; a recheck follows within RECHECK_MAX.
    tokio::time::sleep(grace + RECHECK_MAX).await;
    assert!(!world.repo.get(a.id).await.unwrap().need_restart);
    let phases: Vec<PodPhase> = world.runtime.pods().iter().map(|p| p.phase).collect();
    assert_eq!(phases, [PodPhase::Running, PodPhase::Running]);
    let rechecks = passes(&world).iter().filter(|t| *t == "recheck").count();
    // 1 + 2 + 4 + 5 + 5 + ... seconds: about nine passes over 35 s, not one per poll.
    assert!((5..=12).contains(&rechecks), "{rechecks} rechecks");

    // Nothing terminates any more: the rechecks stop.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let later = passes(&world).iter().filter(|t| *t == "recheck").count();
    assert_eq!(later, rechecks);
    watcher.stop().await;
}
