//! Drift: a change the runtime saw that makes what runs differ from what the last pass wanted
//! (README.md, "Watching the pods"). A managed pod that is wanted and goes away or stops for good,
//! or one that appears unasked, nudges a pass; the pass's own creates and deletes do not, since
//! they move the pods toward what it wanted. That keeps the watch from feeding itself: a pass's
//! writes come back as changes that are expected, and nothing else happens.

use std::collections::BTreeSet;
use std::sync::Arc;

use slog::{Logger, info};

use alsy_domain::{Algorithm, ClientId, DesiredState};

use crate::feed::{PodChange, PodChanges};
use crate::watcher::Shared;

/// What the last pass that read its inputs wanted to run.
#[derive(Debug)]
pub(crate) struct Expectation {
    /// The (client, algorithm) of every wanted pod, sorted: integers, not names, so building it
    /// costs a pass over 300k pods a copy and no allocation per pod.
    wanted: Vec<(ClientId, Algorithm)>,
    /// Clients whose pods the pass left alone: nothing about them is drift.
    held: BTreeSet<ClientId>,
}

/// Why a change is drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drift {
    /// A wanted pod is gone.
    Missing,
    /// A wanted pod has stopped for good (`Failed`, `Succeeded`).
    Stopped,
    /// A managed pod that no pass asked for exists.
    Unasked,
}

impl Drift {
    fn as_str(self) -> &'static str {
        match self {
            Drift::Missing => "missing",
            Drift::Stopped => "stopped",
            Drift::Unasked => "unasked",
        }
    }
}

impl Expectation {
    /// What a pass planning from `desired` wants.
    pub(crate) fn of(desired: &DesiredState) -> Expectation {
        let mut wanted: Vec<(ClientId, Algorithm)> = desired
            .pods
            .iter()
            .map(|pod| (pod.client_id, pod.algorithm))
            .collect();
        // `from_clients` yields this order already, which makes the sort a linear check.
        wanted.sort_unstable();
        Expectation {
            wanted,
            held: desired.held.keys().copied().collect(),
        }
    }

    /// Whether `change` is drift, and why.
    pub(crate) fn drift(&self, change: &PodChange) -> Option<Drift> {
        let owner = change.name().owner();
        if owner.is_some_and(|(_, client)| self.held.contains(&client)) {
            return None;
        }
        let wanted = owner.is_some_and(|(algorithm, client)| {
            self.wanted.binary_search(&(client, algorithm)).is_ok()
        });
        match change {
            PodChange::Gone(_) if wanted => Some(Drift::Missing),
            PodChange::Seen(pod) if wanted && pod.phase.is_terminated() => Some(Drift::Stopped),
            PodChange::Seen(_) if !wanted => Some(Drift::Unasked),
            // Going away: a wanted pod is replaced once it is gone (a `Gone` follows), an
            // unwanted one is on its way out.
            _ => None,
        }
    }
}

/// Reads `changes` until the watcher is told to stop, and nudges a pass for every batch that
/// holds drift, saying so in the log.
pub(crate) async fn nudge_on_drift(shared: Arc<Shared>, mut changes: PodChanges, log: Logger) {
    let mut stopping = shared.stopping.subscribe();
    loop {
        tokio::select! {
            _ = stopping.changed() => return,
            () = changes.ready() => {}
        }
        // Taken and judged between passes only: a change seen while a pass runs may be newer
        // than what that pass listed, so it is judged against what that pass wanted, once it
        // has said so, and by the pod's latest state (a restart's old pod gone, then its
        // successor there, is no drift). A pod gone meanwhile from outside is.
        let drifted = {
            let _between = shared.pass.lock().await;
            shared.reconciler.drift(&changes.take())
        };
        if drifted.is_empty() {
            continue;
        }
        let shown: Vec<String> = drifted
            .iter()
            .take(10)
            .map(|(change, why)| format!("{} {}", change.name(), why.as_str()))
            .collect();
        info!(log, "managed pods drifted from what the last pass wanted; nudging a pass";
            "pods" => drifted.len(), "first" => shown.join(", "));
        shared.nudge();
    }
}

#[cfg(test)]
mod tests {
    use alsy_domain::{
        AlgorithmStatus, Catalogue, Client, ClientSpec, ClientSpecInput, ObservedPod, PodName,
        PodPhase,
    };

    use super::*;

    fn client(id: i64, vwap: bool) -> Client {
        let spec = ClientSpec::parse(ClientSpecInput {
            name: format!("client-{id}"),
            version: 1,
            image: "algo:1".into(),
            cpu: "1".into(),
            mem: "1Gi".into(),
            priority: 1.0,
        })
        .unwrap();
        let at = std::time::SystemTime::UNIX_EPOCH;
        Client {
            id: ClientId::new(id).unwrap(),
            spec,
            status: AlgorithmStatus::from_iter([(Algorithm::named("VWAP"), vwap)]),
            need_restart: false,
            spawned_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn seen(name: &str, phase: PodPhase) -> PodChange {
        PodChange::Seen(ObservedPod::new(PodName::parse(name).unwrap(), phase))
    }

    fn gone(name: &str) -> PodChange {
        PodChange::Gone(PodName::parse(name).unwrap())
    }

    fn expectation() -> Expectation {
        // Client 1 wants vwap-1; client 2 wants nothing; client 3 is held back.
        let desired =
            DesiredState::from_clients(&[client(1, true), client(2, false)], &Catalogue::default())
                .holding([(ClientId::new(3).unwrap(), "unusable".to_owned())]);
        Expectation::of(&desired)
    }

    #[test]
    fn a_wanted_pod_gone_or_stopped_and_an_unasked_pod_are_drift() {
        let expected = expectation();
        assert_eq!(expected.drift(&gone("vwap-1")), Some(Drift::Missing));
        assert_eq!(
            expected.drift(&seen("vwap-1", PodPhase::Failed)),
            Some(Drift::Stopped)
        );
        assert_eq!(
            expected.drift(&seen("twap-2", PodPhase::Running)),
            Some(Drift::Unasked)
        );
        assert_eq!(
            expected.drift(&seen("not-alsys-form", PodPhase::Running)),
            Some(Drift::Unasked)
        );
    }

    #[test]
    fn a_passs_own_creates_and_deletes_and_held_clients_pods_are_not_drift() {
        let expected = expectation();
        // The pass created vwap-1 and deleted twap-2.
        assert_eq!(expected.drift(&seen("vwap-1", PodPhase::Pending)), None);
        assert_eq!(expected.drift(&seen("vwap-1", PodPhase::Running)), None);
        assert_eq!(expected.drift(&gone("twap-2")), None);
        // What happens to a held client's pods is left to a human.
        assert_eq!(expected.drift(&gone("vwap-3")), None);
        assert_eq!(expected.drift(&seen("hft-3", PodPhase::Failed)), None);
    }
}
