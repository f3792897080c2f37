//! The Kubernetes runtime's watch, on the test API server: once its store has synced a list sends
//! no request; changes made behind alsy's back come on the change feed; a dropped stream resumes
//! from the last version it saw (no new list), a `410 Gone` lists again, and either way nothing
//! that happened meanwhile is missed; bookmarks move the version a watch resumes from.

use std::time::Duration;

use alsy_app::{PodChange, PodChanges, PodRuntime};
use alsy_domain::{Algorithm, PodPhase};
use alsy_fake::Gate;
use alsy_tests::fixtures::eventually;
use alsy_tests::kube_server::{Fault, KubeServer, Verb};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;

use super::{Kube, NS, desired, watched_settings};

const PATIENCE: Duration = Duration::from_secs(30);

/// A kube client of someone else (`kubectl`, a controller) on the same server.
async fn outsider(server: &KubeServer) -> Api<Pod> {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.write_kubeconfig(NS)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Api::namespaced(kube::Client::try_from(config).unwrap(), NS)
}

/// A watched runtime with `names` created, whose store has synced and whose watch is open.
async fn watched_with(pods: &[(Algorithm, i64)]) -> Kube {
    let kube = Kube::start_with(watched_settings()).await;
    for (algorithm, id) in pods {
        kube.runtime
            .create(&desired(*algorithm, *id))
            .await
            .unwrap();
    }
    // The first list waits for the watch's own list.
    assert_eq!(kube.runtime.list().await.unwrap().len(), pods.len());
    eventually("the watch is open", PATIENCE, || async {
        kube.server.open_watches() == 1
    })
    .await;
    kube
}

/// Waits until the feed has reported every one of `wanted` (each pod's latest state).
async fn feed_reports(changes: &mut PodChanges, wanted: &[PodChange]) {
    let mut latest = std::collections::BTreeMap::new();
    let waited = tokio::time::timeout(PATIENCE, async {
        while !wanted.iter().all(|w| latest.get(w.name()) == Some(w)) {
            for change in changes.next().await {
                latest.insert(change.name().clone(), change);
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the feed reported {latest:?}, not all of {wanted:?}"
    );
}

fn gone(algorithm: Algorithm, id: i64) -> PodChange {
    PodChange::Gone(desired(algorithm, id).name)
}

fn seen(algorithm: Algorithm, id: i64, phase: PodPhase) -> PodChange {
    PodChange::Seen(alsy_domain::ObservedPod::new(
        desired(algorithm, id).name,
        phase,
    ))
}

#[tokio::test]
async fn once_synced_a_list_sends_no_request_and_sees_what_others_did() {
    let kube = watched_with(&[(Algorithm::named("VWAP"), 1), (Algorithm::named("HFT"), 1)]).await;
    let mut changes = kube
        .runtime
        .changes()
        .expect("a watched runtime has a feed");
    let before = kube.server.requests().len();
    for _ in 0..5 {
        assert_eq!(kube.runtime.list().await.unwrap().len(), 2);
    }
    assert!(
        kube.server.requests_after(before).is_empty(),
        "{:?}",
        kube.server.requests_after(before)
    );

    let outside = outsider(&kube.server).await;
    outside
        .delete("vwap-1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(kube.server.set_phase(NS, "hft-1", "Failed"));
    feed_reports(
        &mut changes,
        &[
            gone(Algorithm::named("VWAP"), 1),
            seen(Algorithm::named("HFT"), 1, PodPhase::Failed),
        ],
    )
    .await;
    let listed = kube.runtime.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].phase),
        ("hft-1", PodPhase::Failed)
    );
}

#[tokio::test]
async fn alsys_own_writes_show_in_the_next_list_at_once() {
    let kube = watched_with(&[(Algorithm::named("VWAP"), 1)]).await;
    // The watch is held back: only the answers to the writes can tell the store.
    let gate = Gate::new();
    kube.server
        .inject(Verb::Watch, None, 1, Fault::Hold(gate.clone()));
    kube.server.drop_watches();
    gate.arrived(1).await;
    kube.runtime
        .create(&desired(Algorithm::named("TWAP"), 2))
        .await
        .unwrap();
    kube.runtime
        .delete(&desired(Algorithm::named("VWAP"), 1).name)
        .await
        .unwrap();
    let names: Vec<String> = kube
        .runtime
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name.to_string())
        .collect();
    assert_eq!(names, ["twap-2"]);
    // The watch comes back and brings the same changes as events: nothing changes. (A bookmark
    // and a drop behind them: once the watch resumes again, it has taken every event.)
    gate.open();
    eventually("the watch is open again", PATIENCE, || async {
        kube.server.open_watches() == 1
    })
    .await;
    kube.server.send_bookmark();
    kube.server.drop_watches();
    eventually("the watch has taken every event", PATIENCE, || async {
        kube.server.watches_opened() == 3
    })
    .await;
    let listed = kube.runtime.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name.as_str(), "twap-2");
}

/// Ends the watch, and holds the client's next watch request until the test has changed things.
async fn drop_the_watch_and_hold_its_return(kube: &Kube) -> Gate {
    let gate = Gate::new();
    kube.server
        .inject(Verb::Watch, None, 1, Fault::Hold(gate.clone()));
    kube.server.drop_watches();
    gate.arrived(1).await;
    gate
}

async fn change_behind_alsys_back(kube: &Kube) {
    let outside = outsider(&kube.server).await;
    outside
        .delete("vwap-1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(kube.server.set_phase(NS, "twap-1", "Failed"));
}

fn lists(kube: &Kube) -> usize {
    let requests = kube.server.requests();
    requests
        .iter()
        .filter(|r| r.verb == Some(Verb::List))
        .count()
}

#[tokio::test]
async fn a_dropped_watch_resumes_from_the_last_version_and_misses_nothing() {
    let kube = watched_with(&[(Algorithm::named("VWAP"), 1), (Algorithm::named("TWAP"), 1)]).await;
    let mut changes = kube.runtime.changes().unwrap();
    let first_watch = kube
        .server
        .requests()
        .into_iter()
        .find(|r| r.verb == Some(Verb::Watch));
    let lists_before = lists(&kube);

    let at_drop = kube.server.resource_version();
    let gate = drop_the_watch_and_hold_its_return(&kube).await;
    change_behind_alsys_back(&kube).await;
    gate.open();

    feed_reports(
        &mut changes,
        &[
            gone(Algorithm::named("VWAP"), 1),
            seen(Algorithm::named("TWAP"), 1, PodPhase::Failed),
        ],
    )
    .await;
    assert_eq!(lists(&kube), lists_before, "resumed, not listed again");
    let watches: Vec<_> = kube
        .server
        .requests()
        .into_iter()
        .filter(|r| r.verb == Some(Verb::Watch))
        .collect();
    let version = |request: &alsy_tests::kube_server::RecordedRequest| -> u64 {
        request.param("resourceVersion").unwrap().parse().unwrap()
    };
    assert_eq!(watches.len(), 2);
    let (first, resumed) = (version(&first_watch.unwrap()), version(&watches[1]));
    assert!(
        first <= resumed && resumed <= at_drop,
        "resumed from {resumed}: not from before the first watch ({first}) nor after the drop ({at_drop})"
    );
}

#[tokio::test]
async fn a_410_gone_makes_the_watch_list_again_and_report_what_changed_meanwhile() {
    let kube = watched_with(&[(Algorithm::named("VWAP"), 1), (Algorithm::named("TWAP"), 1)]).await;
    let mut changes = kube.runtime.changes().unwrap();
    let lists_before = lists(&kube);

    let gate = drop_the_watch_and_hold_its_return(&kube).await;
    change_behind_alsys_back(&kube).await;
    // The server forgets what happened: the version the watch resumes from is too old.
    kube.server.expire_watch_history();
    gate.open();

    feed_reports(
        &mut changes,
        &[
            gone(Algorithm::named("VWAP"), 1),
            seen(Algorithm::named("TWAP"), 1, PodPhase::Failed),
        ],
    )
    .await;
    assert_eq!(lists(&kube), lists_before + 1, "listed again after the 410");
    let listed = kube.runtime.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].phase),
        ("twap-1", PodPhase::Failed)
    );
}

#[tokio::test]
async fn the_watch_asks_for_bookmarks_and_resumes_from_the_last_one() {
    let kube = watched_with(&[(Algorithm::named("VWAP"), 1)]).await;
    let watch = kube
        .server
        .requests()
        .into_iter()
        .find(|r| r.verb == Some(Verb::Watch))
        .unwrap();
    assert_eq!(watch.param("allowWatchBookmarks"), Some("true"));
    assert_eq!(
        watch.param("labelSelector"),
        Some("app.kubernetes.io/managed-by=alsy")
    );
    // Changes the selector keeps from alsy move the version on; a bookmark tells alsy so.
    kube.server.insert_foreign_pod(NS, "nginx");
    kube.server.insert_foreign_pod(NS, "redis");
    kube.server.send_bookmark();
    let bookmarked = kube.server.resource_version();
    // The bookmark has reached the client once a dropped watch resumes from it.
    kube.server.drop_watches();
    eventually("the watch resumes", PATIENCE, || async {
        kube.server.watches_opened() == 2
    })
    .await;
    let resumed = kube
        .server
        .requests()
        .into_iter()
        .filter(|r| r.verb == Some(Verb::Watch))
        .nth(1)
        .unwrap();
    assert_eq!(
        resumed.param("resourceVersion"),
        Some(bookmarked.to_string().as_str())
    );
}
