//! The pure reconciliation diff: from what should run and what runs, the actions that make them
//! equal. Level-triggered: it assumes nothing about earlier passes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use crate::{Algorithm, Client, ClientId, DesiredPod, ObservedPod, PodName};

/// What should run: a pod per switched-on algorithm, and the clients marked for restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    /// The pods that should run, at most one per name.
    pub pods: Vec<DesiredPod>,
    /// Clients marked `need_restart`, with the `updated_at` read alongside (the CAS token).
    pub restarts: BTreeMap<ClientId, SystemTime>,
    /// Clients the pass cannot use (a stored row that no longer parses), with the reason. Their
    /// pods are neither created, deleted nor restarted: what runs for them keeps running.
    pub held: BTreeMap<ClientId, String>,
}

impl DesiredState {
    /// Derives the desired pods and restart marks from stored clients.
    pub fn from_clients(clients: &[Client]) -> DesiredState {
        let count = clients.iter().map(|c| c.status.enabled().count()).sum();
        let mut pods = Vec::with_capacity(count);
        pods.extend(clients.iter().flat_map(|client| {
            client.status.enabled().map(move |algorithm| DesiredPod {
                name: PodName::of(algorithm, client.id),
                client_id: client.id,
                algorithm,
                image: client.spec.image.clone(),
                cpu: client.spec.cpu.clone(),
                mem: client.spec.mem.clone(),
                version: client.spec.version,
                priority: client.spec.priority,
            })
        }));
        let restarts = clients
            .iter()
            .filter(|c| c.need_restart)
            .map(|c| (c.id, c.updated_at))
            .collect();
        DesiredState {
            pods,
            restarts,
            held: BTreeMap::new(),
        }
    }

    /// The same desired state with `held` clients held back (see [`DesiredState::held`]).
    pub fn holding(mut self, held: impl IntoIterator<Item = (ClientId, String)>) -> DesiredState {
        self.held.extend(held);
        self
    }
}

/// Why a running pod is deleted and created again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    /// Its client was marked `need_restart`.
    Requested,
    /// The runtime reports it `Failed` or `Succeeded`: it no longer runs.
    Terminated,
}

/// One operation on one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum PodAction {
    /// Start a pod that should run and doesn't.
    Create(DesiredPod),
    /// Stop a pod that runs and shouldn't (switched off, or its client deleted).
    Delete(PodName),
    /// Delete a pod, then create it again from the current spec.
    Restart {
        /// The pod as it should run afterwards.
        pod: DesiredPod,
        /// Why it is restarted.
        cause: RestartCause,
    },
}

impl PodAction {
    /// The pod the action is about.
    pub fn pod_name(&self) -> &PodName {
        match self {
            PodAction::Create(pod) | PodAction::Restart { pod, .. } => &pod.name,
            PodAction::Delete(name) => name,
        }
    }
}

/// A client whose pods a plan starts, or whose restart mark it settles: to acknowledge
/// (`spawned_at = now()`, restart mark cleared) once all of the client's actions succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledgement {
    /// The client.
    pub client_id: ClientId,
    /// For a client marked `need_restart`: the `updated_at` read with the mark. The mark is
    /// cleared only if the row still has it, so an update that arrived meanwhile is not lost.
    pub restart_seen: Option<SystemTime>,
}

/// The actions of one pass, sorted by pod name, and the acknowledgements they lead to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// At most one action per pod, sorted by pod name.
    pub actions: Vec<PodAction>,
    /// Clients to acknowledge once all their actions succeed, sorted by client id.
    pub acknowledgements: Vec<Acknowledgement>,
}

impl Plan {
    /// Nothing to do and nothing to acknowledge.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.acknowledgements.is_empty()
    }
}

/// Compares what should run with what runs:
/// - a desired pod that is missing is created;
/// - an observed pod that is not desired is deleted;
/// - a desired pod of a client marked for restart, or one that has terminated, is restarted.
///
/// Only `observed` pods are ever deleted, so a plan never names a pod outside the managed set,
/// and no action names a pod of a held client.
pub fn plan(desired: &DesiredState, observed: &[ObservedPod]) -> Plan {
    // Both sides keyed by (client, algorithm) — integers, not strings — sorted and merged: a
    // no-change pass over 100k clients walks 300k pods on each side. Only the (usually few)
    // actions are sorted by name.
    let held = |client: &ClientId| desired.held.contains_key(client);
    let mut wanted: Vec<((ClientId, Algorithm), &DesiredPod)> = desired
        .pods
        .iter()
        .filter(|p| !held(&p.client_id))
        .map(|p| ((p.client_id, p.algorithm), p))
        .collect();
    wanted.sort_by_key(|(key, _)| *key); // from_clients already yields this order: cheap
    wanted.dedup_by_key(|(key, _)| *key);
    let mut actions = Vec::new();
    let mut running: Vec<((ClientId, Algorithm), &ObservedPod)> =
        Vec::with_capacity(observed.len());
    for pod in observed {
        match pod.name.owner() {
            Some((_, client)) if held(&client) => {}
            Some((algorithm, client)) => running.push(((client, algorithm), pod)),
            // Managed, but not in alsy's `{algorithm}-{id}` form: never desired.
            None => actions.push(PodAction::Delete(pod.name.clone())),
        }
    }
    running.sort_by_key(|(key, _)| *key);
    running.dedup_by_key(|(key, _)| *key);
    actions.dedup_by(|a, b| a.pod_name() == b.pod_name());

    let mut spawning = BTreeSet::new();
    let (mut wanted, mut running) = (
        wanted.into_iter().peekable(),
        running.into_iter().peekable(),
    );
    loop {
        let order = match (wanted.peek(), running.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((w, _)), Some((r, _))) => w.cmp(r),
        };
        let action = match order {
            Ordering::Less => wanted.next().map(|(_, pod)| PodAction::Create(pod.clone())),
            Ordering::Greater => running
                .next()
                .map(|(_, seen)| PodAction::Delete(seen.name.clone())),
            Ordering::Equal => match (wanted.next(), running.next()) {
                (Some((_, pod)), _) if desired.restarts.contains_key(&pod.client_id) => {
                    Some(PodAction::Restart {
                        pod: pod.clone(),
                        cause: RestartCause::Requested,
                    })
                }
                (Some((_, pod)), Some((_, seen))) if seen.phase.is_terminated() => {
                    Some(PodAction::Restart {
                        pod: pod.clone(),
                        cause: RestartCause::Terminated,
                    })
                }
                _ => None,
            },
        };
        let Some(action) = action else { continue };
        if let PodAction::Create(pod) | PodAction::Restart { pod, .. } = &action {
            spawning.insert(pod.client_id);
        }
        actions.push(action);
    }
    actions.sort_unstable_by(|a, b| a.pod_name().cmp(b.pod_name()));

    let mut acknowledgements: BTreeMap<ClientId, Acknowledgement> = spawning
        .into_iter()
        .map(|client_id| {
            (
                client_id,
                Acknowledgement {
                    client_id,
                    restart_seen: None,
                },
            )
        })
        .collect();
    for (&client_id, &seen) in desired.restarts.iter().filter(|(id, _)| !held(id)) {
        acknowledgements.insert(
            client_id,
            Acknowledgement {
                client_id,
                restart_seen: Some(seen),
            },
        );
    }
    Plan {
        actions,
        acknowledgements: acknowledgements.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::{Algorithm, AlgorithmStatus, ClientSpec, ClientSpecInput, PodPhase};

    fn client(id: i64, status: AlgorithmStatus, need_restart: bool) -> Client {
        let spec = ClientSpec::parse(ClientSpecInput {
            name: format!("client-{id}"),
            version: 1,
            image: "algo:1".into(),
            cpu: "1".into(),
            mem: "1Gi".into(),
            priority: 1.0,
        })
        .unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(id as u64);
        Client {
            id: ClientId::new(id).unwrap(),
            spec,
            status,
            need_restart,
            spawned_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn status(vwap: bool, twap: bool, hft: bool) -> AlgorithmStatus {
        AlgorithmStatus { vwap, twap, hft }
    }

    fn observed(name: &str, phase: PodPhase) -> ObservedPod {
        ObservedPod {
            name: PodName::parse(name).unwrap(),
            phase,
        }
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.actions
            .iter()
            .map(|a| match a {
                PodAction::Create(p) => format!("create {}", p.name),
                PodAction::Delete(n) => format!("delete {n}"),
                PodAction::Restart { pod, cause } => format!("restart {} {cause:?}", pod.name),
            })
            .collect()
    }

    /// What the runtime holds after every action of `plan` succeeded.
    fn apply(plan: &Plan, observed: &[ObservedPod]) -> Vec<ObservedPod> {
        let mut pods: BTreeMap<PodName, PodPhase> =
            observed.iter().map(|p| (p.name.clone(), p.phase)).collect();
        for action in &plan.actions {
            match action {
                PodAction::Delete(name) => {
                    pods.remove(name);
                }
                PodAction::Create(pod) | PodAction::Restart { pod, .. } => {
                    pods.insert(pod.name.clone(), PodPhase::Pending);
                }
            }
        }
        pods.into_iter()
            .map(|(name, phase)| ObservedPod { name, phase })
            .collect()
    }

    /// What storage holds after every acknowledgement of `plan` succeeded.
    fn acknowledge(plan: &Plan, clients: &[Client]) -> Vec<Client> {
        let mut clients = clients.to_vec();
        for ack in &plan.acknowledgements {
            let client = clients.iter_mut().find(|c| c.id == ack.client_id).unwrap();
            if ack.restart_seen == Some(client.updated_at) {
                client.need_restart = false;
            }
        }
        clients
    }

    #[test]
    fn the_original_scenario_plans_as_expected() {
        let clients = [client(1, status(true, false, true), false)];
        let first = plan(&DesiredState::from_clients(&clients), &[]);
        assert_eq!(names(&first), ["create hft-1", "create vwap-1"]);

        let running = [
            observed("hft-1", PodPhase::Running),
            observed("vwap-1", PodPhase::Running),
        ];
        let switched_off = [client(1, status(false, false, true), false)];
        let second = plan(&DesiredState::from_clients(&switched_off), &running);
        assert_eq!(names(&second), ["delete vwap-1"]);
        assert!(second.acknowledgements.is_empty());
    }

    #[test]
    fn a_client_marked_for_restart_restarts_each_of_its_running_pods() {
        let clients = [
            client(1, status(true, true, false), true),
            client(2, status(true, false, false), false),
        ];
        let running = [
            observed("vwap-1", PodPhase::Running),
            observed("twap-1", PodPhase::Running),
            observed("vwap-2", PodPhase::Running),
        ];
        let plan = plan(&DesiredState::from_clients(&clients), &running);
        assert_eq!(
            names(&plan),
            ["restart twap-1 Requested", "restart vwap-1 Requested"]
        );
        assert_eq!(
            plan.acknowledgements,
            [Acknowledgement {
                client_id: clients[0].id,
                restart_seen: Some(clients[0].updated_at)
            }]
        );
    }

    #[test]
    fn a_marked_client_without_pods_is_still_acknowledged() {
        let clients = [client(3, AlgorithmStatus::default(), true)];
        let plan = plan(&DesiredState::from_clients(&clients), &[]);
        assert!(plan.actions.is_empty());
        assert_eq!(plan.acknowledgements.len(), 1);
    }

    #[test]
    fn terminated_pods_are_replaced_and_unknown_ones_left_alone() {
        let clients = [client(1, status(true, true, true), false)];
        let running = [
            observed("vwap-1", PodPhase::Failed),
            observed("twap-1", PodPhase::Succeeded),
            observed("hft-1", PodPhase::Unknown),
        ];
        let plan = plan(&DesiredState::from_clients(&clients), &running);
        assert_eq!(
            names(&plan),
            ["restart twap-1 Terminated", "restart vwap-1 Terminated"]
        );
    }

    #[test]
    fn a_held_client_keeps_its_running_pods_and_gets_no_new_ones() {
        let clients = [client(2, status(true, false, false), false)];
        let held = ClientId::new(1).unwrap();
        let desired = DesiredState::from_clients(&clients)
            .holding([(held, "name: must not be blank".into())]);
        let running = [
            observed("vwap-1", PodPhase::Running),
            observed("twap-1", PodPhase::Failed),
        ];
        let plan = plan(&desired, &running);
        assert_eq!(names(&plan), ["create vwap-2"]);
        assert!(plan.acknowledgements.iter().all(|a| a.client_id != held));
    }

    #[test]
    fn a_failed_pod_that_is_not_desired_is_deleted_not_restarted() {
        let plan = plan(
            &DesiredState::default(),
            &[observed("vwap-9", PodPhase::Failed)],
        );
        assert_eq!(names(&plan), ["delete vwap-9"]);
    }

    fn arb_clients() -> impl Strategy<Value = Vec<Client>> {
        prop::collection::btree_map(1i64..40, (any::<[bool; 3]>(), any::<bool>()), 0..20).prop_map(
            |m| {
                m.into_iter()
                    .map(|(id, ([v, t, h], restart))| client(id, status(v, t, h), restart))
                    .collect()
            },
        )
    }

    fn arb_phase() -> impl Strategy<Value = PodPhase> {
        prop_oneof![
            Just(PodPhase::Pending),
            Just(PodPhase::Running),
            Just(PodPhase::Succeeded),
            Just(PodPhase::Failed),
            Just(PodPhase::Unknown),
        ]
    }

    /// Pods with alsy's names for clients that may or may not exist, and pods of other forms.
    fn arb_observed() -> impl Strategy<Value = Vec<ObservedPod>> {
        let ours = (0usize..3, 1i64..50).prop_map(|(a, id)| {
            PodName::of(Algorithm::ALL[a], ClientId::new(id).unwrap())
                .as_str()
                .to_owned()
        });
        let other = "[a-z][a-z0-9-]{0,10}[a-z0-9]";
        prop::collection::btree_map(prop_oneof![ours, other], arb_phase(), 0..30).prop_map(|m| {
            m.into_iter()
                .map(|(name, phase)| ObservedPod {
                    name: PodName::parse(&name).unwrap(),
                    phase,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn a_pod_running_as_wanted_is_left_alone(
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients);
            let wanted: BTreeSet<_> = desired.pods.iter().map(|p| &p.name).collect();
            let plan = plan(&desired, &observed);
            for pod in &observed {
                let settled = wanted.contains(&pod.name)
                    && !pod.phase.is_terminated()
                    && !pod.name.owner().is_some_and(|(_, id)| desired.restarts.contains_key(&id));
                if settled {
                    prop_assert!(
                        !plan.actions.iter().any(|a| a.pod_name() == &pod.name),
                        "{} runs as wanted but the plan touches it", pod.name
                    );
                }
            }
        }

        #[test]
        fn a_held_clients_pods_are_never_touched_nor_acknowledged(
            clients in arb_clients(),
            observed in arb_observed(),
            held in prop::collection::btree_set(1i64..50, 0..10),
        ) {
            let held: BTreeMap<ClientId, String> = held
                .into_iter()
                .map(|id| (ClientId::new(id).unwrap(), "unusable".to_owned()))
                .collect();
            let desired = DesiredState::from_clients(&clients).holding(held.clone());
            let plan = plan(&desired, &observed);
            for action in &plan.actions {
                let owner = action.pod_name().owner().map(|(_, id)| id);
                prop_assert!(!owner.is_some_and(|id| held.contains_key(&id)), "{:?}", action);
            }
            for ack in &plan.acknowledgements {
                prop_assert!(!held.contains_key(&ack.client_id));
            }
        }

        #[test]
        fn applying_a_plan_and_planning_again_gives_an_empty_plan(
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let first = plan(&DesiredState::from_clients(&clients), &observed);
            let after = apply(&first, &observed);
            let clients = acknowledge(&first, &clients);
            let second = plan(&DesiredState::from_clients(&clients), &after);
            prop_assert!(second.is_empty(), "{:?}", second);
        }

        #[test]
        fn every_desired_pod_is_present_and_nothing_else_afterwards(
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients);
            let after = apply(&plan(&desired, &observed), &observed);
            let after: BTreeSet<_> = after.iter().map(|p| &p.name).collect();
            let wanted: BTreeSet<_> = desired.pods.iter().map(|p| &p.name).collect();
            prop_assert_eq!(after, wanted);
        }

        #[test]
        fn no_action_names_a_pod_outside_the_managed_or_desired_set(
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients);
            let observed_names: BTreeSet<_> = observed.iter().map(|p| &p.name).collect();
            let wanted: BTreeSet<_> = desired.pods.iter().map(|p| &p.name).collect();
            for action in plan(&desired, &observed).actions {
                match &action {
                    PodAction::Delete(name) => prop_assert!(observed_names.contains(name)),
                    PodAction::Create(pod) => prop_assert!(wanted.contains(&pod.name) && !observed_names.contains(&pod.name)),
                    PodAction::Restart { pod, .. } => prop_assert!(wanted.contains(&pod.name) && observed_names.contains(&pod.name)),
                }
            }
        }

        #[test]
        fn requested_restarts_only_touch_marked_clients(
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients);
            for action in plan(&desired, &observed).actions {
                if let PodAction::Restart { pod, cause: RestartCause::Requested } = &action {
                    prop_assert!(desired.restarts.contains_key(&pod.client_id));
                }
            }
        }

        #[test]
        fn a_terminated_desired_pod_is_always_replaced(
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients);
            let plan = plan(&desired, &observed);
            for pod in observed.iter().filter(|p| p.phase.is_terminated()) {
                let replaced = plan.actions.iter().any(|a| matches!(a, PodAction::Restart { pod: d, .. } if d.name == pod.name));
                let deleted = plan.actions.contains(&PodAction::Delete(pod.name.clone()));
                prop_assert!(replaced || deleted, "{} left terminated", pod.name);
            }
        }

        #[test]
        fn actions_are_sorted_with_one_per_pod(
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let plan = plan(&DesiredState::from_clients(&clients), &observed);
            let names: Vec<_> = plan.actions.iter().map(PodAction::pod_name).collect();
            prop_assert!(names.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
