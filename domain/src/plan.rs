//! The pure reconciliation diff: from what should run and what runs, the actions that make them
//! equal. Level-triggered: it assumes nothing about earlier passes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use crate::{Algorithm, Catalogue, Client, ClientId, DesiredPod, ObservedPod, PodName, PodPhase};

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
    /// Derives the desired pods and restart marks from stored clients. Only the `catalogue`'s
    /// algorithms run: a switch of an algorithm dropped from it counts as off.
    pub fn from_clients(clients: &[Client], catalogue: &Catalogue) -> DesiredState {
        fn running<'a>(
            client: &'a Client,
            catalogue: &'a Catalogue,
        ) -> impl Iterator<Item = Algorithm> + 'a {
            client.status.enabled().filter(|a| catalogue.contains(*a))
        }
        let count = clients.iter().map(|c| running(c, catalogue).count()).sum();
        let mut pods = Vec::with_capacity(count);
        pods.extend(clients.iter().flat_map(|client| {
            running(client, catalogue).map(move |algorithm| DesiredPod {
                name: PodName::of(algorithm, client.id),
                client_id: client.id,
                algorithm,
                image: client.spec.image.clone(),
                cpu: client.spec.cpu.clone(),
                mem: client.spec.mem.clone(),
                version: client.spec.version,
                priority: client.spec.priority,
                restart_mark: client.need_restart.then_some(client.updated_at),
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

/// Why a running pod is deleted and created again (its successor once it is gone).
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
    /// Delete a pod, then create it again from the current spec: at once if the runtime removes
    /// it at once, else in a later pass once it is gone.
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
    /// Clients to acknowledge once all their actions succeed (a restart whose old pod is still
    /// terminating has not succeeded yet), sorted by client id.
    pub acknowledgements: Vec<Acknowledgement>,
    /// Desired pods seen `Terminating`, sorted: left alone, their successors wait until they
    /// are gone.
    pub waiting: Vec<PodName>,
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
/// - a desired pod of a client marked for restart, or one that has terminated, is restarted;
/// - a pod being deleted (`Terminating`) is left alone: never deleted again, and a desired one
///   waits (see [`Plan::waiting`]) until it is gone, when a later pass sees it missing and
///   creates its successor.
///
/// How a pass knows where a client's restart stands, with no state of its own: the pods created
/// for a client marked `need_restart` carry the mark's `updated_at`
/// ([`DesiredPod::restart_mark`]). For each desired pod of a marked client:
/// - it runs and does not carry this mark: it is the old pod, so it is restarted (deleted; its
///   successor is created at once if the runtime removes it at once, else by a later pass);
/// - it is `Terminating`: the restart is in progress; wait;
/// - it is missing: the old pod is gone; create the successor, carrying the mark;
/// - it carries this mark: it is the replacement.
///
/// The client is acknowledged (mark cleared, compare-and-set on the same `updated_at`) once
/// every desired pod of it is a replacement or is created by this plan; never while one of
/// them is still terminating. A write that arrives meanwhile changes `updated_at`, so the
/// replacements no longer carry the current mark and are restarted once more: an update during
/// a restart costs one extra restart, never a lost one. The mark is compared for equality, not
/// order: it needs no clock shared by storage and the runtime.
///
/// Only `observed` pods are ever deleted, so a plan never names a pod outside the managed set,
/// and no action names a pod of a held client.
pub fn plan(desired: &DesiredState, observed: &[ObservedPod]) -> Plan {
    // Both sides keyed by (client, algorithm) — an integer and an inline name, nothing allocated —
    // sorted and merged: a
    // no-change pass over 100k clients walks 300k pods on each side. Only the (usually few)
    // actions are sorted by name.
    let held = |client: &ClientId| desired.held.contains_key(client);
    let mut wanted: Vec<((ClientId, Algorithm), &DesiredPod)> = desired
        .pods
        .iter()
        .filter(|p| !held(&p.client_id))
        .map(|p| ((p.client_id, p.algorithm), p))
        .collect();
    // from_clients already yields this order (clients by id, algorithms by name): cheap.
    wanted.sort_by_key(|(key, _)| *key);
    wanted.dedup_by_key(|(key, _)| *key);
    let mut actions = Vec::new();
    let mut running: Vec<((ClientId, Algorithm), &ObservedPod)> =
        Vec::with_capacity(observed.len());
    for pod in observed {
        match pod.name.owner() {
            Some((_, client)) if held(&client) => {}
            Some((algorithm, client)) => running.push(((client, algorithm), pod)),
            // Being deleted already: deleting it again would only repeat the request.
            None if pod.phase == PodPhase::Terminating => {}
            // Managed, but not in alsy's `{algorithm}-{id}` form: never desired.
            None => actions.push(PodAction::Delete(pod.name.clone())),
        }
    }
    running.sort_by_key(|(key, _)| *key);
    running.dedup_by_key(|(key, _)| *key);
    actions.dedup_by(|a, b| a.pod_name() == b.pod_name());

    let mut spawning = BTreeSet::new();
    // Clients with a desired pod still terminating: their pods are not all (re)started yet.
    let mut unsettled = BTreeSet::new();
    let mut waiting = Vec::new();
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
                .filter(|(_, seen)| seen.phase != PodPhase::Terminating)
                .map(|(_, seen)| PodAction::Delete(seen.name.clone())),
            Ordering::Equal => match (wanted.next(), running.next()) {
                (Some((_, pod)), Some((_, seen))) if seen.phase == PodPhase::Terminating => {
                    unsettled.insert(pod.client_id);
                    waiting.push(seen.name.clone());
                    None
                }
                (Some((_, pod)), Some((_, seen)))
                    if pod.restart_mark.is_some() && seen.restart_mark != pod.restart_mark =>
                {
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
    waiting.sort_unstable();

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
    acknowledgements.retain(|client_id, _| !unsettled.contains(client_id));
    Plan {
        actions,
        acknowledgements: acknowledgements.into_values().collect(),
        waiting,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::{Algorithm, AlgorithmStatus, ClientSpec, ClientSpecInput, PodPhase};

    const VWAP: Algorithm = Algorithm::named("VWAP");
    const TWAP: Algorithm = Algorithm::named("TWAP");
    const HFT: Algorithm = Algorithm::named("HFT");

    fn desired(clients: &[Client]) -> DesiredState {
        DesiredState::from_clients(clients, &Catalogue::default())
    }

    /// Client `id` with `status`, created at `id` seconds after the epoch.
    pub(crate) fn client(id: i64, status: AlgorithmStatus, need_restart: bool) -> Client {
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
        [(VWAP, vwap), (TWAP, twap), (HFT, hft)]
            .into_iter()
            .collect()
    }

    fn observed(name: &str, phase: PodPhase) -> ObservedPod {
        ObservedPod::new(PodName::parse(name).unwrap(), phase)
    }

    /// A pod created for `client`'s current restart mark: its replacement.
    fn replacement(name: &str, client: &Client) -> ObservedPod {
        ObservedPod {
            restart_mark: Some(client.updated_at),
            ..observed(name, PodPhase::Running)
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

    /// What the runtime holds after every action of `plan` succeeded, on a runtime that removes
    /// deleted pods at once.
    fn apply(plan: &Plan, observed: &[ObservedPod]) -> Vec<ObservedPod> {
        apply_with_grace(plan, observed, false)
    }

    /// Like [`apply`]; with `grace`, deleted pods (restarted ones included) stay `Terminating`
    /// and restarts create no successor, as on a cluster whose pods have a grace period.
    fn apply_with_grace(plan: &Plan, observed: &[ObservedPod], grace: bool) -> Vec<ObservedPod> {
        let mut pods: BTreeMap<PodName, ObservedPod> = observed
            .iter()
            .map(|p| (p.name.clone(), p.clone()))
            .collect();
        let terminate = |pods: &mut BTreeMap<PodName, ObservedPod>, name: &PodName| {
            if grace {
                if let Some(pod) = pods.get_mut(name) {
                    pod.phase = PodPhase::Terminating;
                }
            } else {
                pods.remove(name);
            }
        };
        for action in &plan.actions {
            match action {
                PodAction::Delete(name) => terminate(&mut pods, name),
                PodAction::Restart { pod, .. } if grace => terminate(&mut pods, &pod.name),
                PodAction::Create(pod) | PodAction::Restart { pod, .. } => {
                    let created = ObservedPod {
                        name: pod.name.clone(),
                        phase: PodPhase::Pending,
                        restart_mark: pod.restart_mark,
                    };
                    pods.insert(pod.name.clone(), created);
                }
            }
        }
        pods.into_values().collect()
    }

    /// The grace periods end: every terminating pod is gone.
    fn grace_ends(pods: Vec<ObservedPod>) -> Vec<ObservedPod> {
        pods.into_iter()
            .filter(|p| p.phase != PodPhase::Terminating)
            .collect()
    }

    /// What storage holds after every acknowledgement of `plan` succeeded.
    fn acknowledge(plan: &Plan, clients: &[Client]) -> Vec<Client> {
        acknowledge_unless(plan, clients, &BTreeSet::new())
    }

    /// Like [`acknowledge`], without the clients in `unfinished` (the reconciler drops the
    /// acknowledgement of a client whose restart left its old pod terminating).
    fn acknowledge_unless(
        plan: &Plan,
        clients: &[Client],
        unfinished: &BTreeSet<ClientId>,
    ) -> Vec<Client> {
        let mut clients = clients.to_vec();
        for ack in plan
            .acknowledgements
            .iter()
            .filter(|a| !unfinished.contains(&a.client_id))
        {
            let client = clients.iter_mut().find(|c| c.id == ack.client_id).unwrap();
            if ack.restart_seen == Some(client.updated_at) {
                client.need_restart = false;
            }
        }
        clients
    }

    /// The clients with a restart in `plan`.
    fn restarting(plan: &Plan) -> BTreeSet<ClientId> {
        plan.actions
            .iter()
            .filter_map(|a| match a {
                PodAction::Restart { pod, .. } => Some(pod.client_id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_original_scenario_plans_as_expected() {
        let clients = [client(1, status(true, false, true), false)];
        let first = plan(&desired(&clients), &[]);
        assert_eq!(names(&first), ["create hft-1", "create vwap-1"]);

        let running = [
            observed("hft-1", PodPhase::Running),
            observed("vwap-1", PodPhase::Running),
        ];
        let switched_off = [client(1, status(false, false, true), false)];
        let second = plan(&desired(&switched_off), &running);
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
        let plan = plan(&desired(&clients), &running);
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
        let plan = plan(&desired(&clients), &[]);
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
        let plan = plan(&desired(&clients), &running);
        assert_eq!(
            names(&plan),
            ["restart twap-1 Terminated", "restart vwap-1 Terminated"]
        );
    }

    #[test]
    fn a_held_client_keeps_its_running_pods_and_gets_no_new_ones() {
        let clients = [client(2, status(true, false, false), false)];
        let held = ClientId::new(1).unwrap();
        let desired = desired(&clients).holding([(held, "name: must not be blank".into())]);
        let running = [
            observed("vwap-1", PodPhase::Running),
            observed("twap-1", PodPhase::Failed),
        ];
        let plan = plan(&desired, &running);
        assert_eq!(names(&plan), ["create vwap-2"]);
        assert!(plan.acknowledgements.iter().all(|a| a.client_id != held));
    }

    #[test]
    fn an_algorithm_dropped_from_the_catalogue_counts_as_off_and_its_switch_is_kept() {
        let clients = [client(1, status(true, true, false), false)];
        let running = [
            observed("twap-1", PodPhase::Running),
            observed("vwap-1", PodPhase::Running),
        ];
        let without_twap = Catalogue::parse("VWAP,HFT").unwrap();
        let desired = DesiredState::from_clients(&clients, &without_twap);
        assert_eq!(names(&plan(&desired, &running)), ["delete twap-1"]);
        assert!(
            clients[0].status.is_on(TWAP),
            "the switch itself is untouched"
        );
        let back = plan(
            &DesiredState::from_clients(&clients, &Catalogue::default()),
            &[],
        );
        assert_eq!(names(&back), ["create twap-1", "create vwap-1"]);
    }

    #[test]
    fn x_y_z_pods_are_named_after_the_lower_case_names() {
        let xyz = Catalogue::parse("X,Y,Z").unwrap();
        let on: AlgorithmStatus = [("X", true), ("Y", false), ("Z", true)]
            .into_iter()
            .map(|(name, on)| (Algorithm::parse(name).unwrap(), on))
            .collect();
        let plan = plan(
            &DesiredState::from_clients(&[client(168317, on, false)], &xyz),
            &[],
        );
        assert_eq!(names(&plan), ["create x-168317", "create z-168317"]);
    }

    #[test]
    fn a_failed_pod_that_is_not_desired_is_deleted_not_restarted() {
        let plan = plan(
            &DesiredState::default(),
            &[observed("vwap-9", PodPhase::Failed)],
        );
        assert_eq!(names(&plan), ["delete vwap-9"]);
    }

    #[test]
    fn a_terminating_pod_is_never_deleted_again_nor_replaced_while_it_exists() {
        let clients = [client(1, status(true, false, false), false)];
        let observed = [
            observed("vwap-1", PodPhase::Terminating),
            observed("twap-1", PodPhase::Terminating),
            observed("not-alsys-form", PodPhase::Terminating),
        ];
        let plan = plan(&desired(&clients), &observed);
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.waiting, [PodName::parse("vwap-1").unwrap()]);
        assert!(plan.acknowledgements.is_empty());
    }

    #[test]
    fn a_restart_waits_for_the_old_pod_then_creates_the_successor_then_acknowledges() {
        let marked = [client(1, status(true, false, false), true)];
        let desired = desired(&marked);
        let running = [observed("vwap-1", PodPhase::Running)];

        // The old pod runs: restart it. Its old pod then terminates.
        let first = plan(&desired, &running);
        assert_eq!(names(&first), ["restart vwap-1 Requested"]);

        // Still marked, old pod terminating: wait, acknowledge nothing.
        let terminating = [observed("vwap-1", PodPhase::Terminating)];
        let second = plan(&desired, &terminating);
        assert!(second.is_empty(), "{second:?}");
        assert_eq!(names(&second), Vec::<String>::new());

        // Gone: create the successor, carrying the mark, and acknowledge once it exists.
        let third = plan(&desired, &[]);
        assert_eq!(names(&third), ["create vwap-1"]);
        let PodAction::Create(successor) = &third.actions[0] else {
            unreachable!()
        };
        assert_eq!(successor.restart_mark, Some(marked[0].updated_at));
        assert_eq!(
            third.acknowledgements,
            [Acknowledgement {
                client_id: marked[0].id,
                restart_seen: Some(marked[0].updated_at)
            }]
        );

        // The replacement exists but the acknowledgement was lost: acknowledge, touch nothing.
        let fourth = plan(&desired, &[replacement("vwap-1", &marked[0])]);
        assert!(fourth.actions.is_empty());
        assert_eq!(fourth.acknowledgements, third.acknowledgements);
    }

    #[test]
    fn an_update_during_a_restart_restarts_the_replacement_once_more() {
        let mut marked = client(1, status(true, false, false), true);
        let made_for_the_first_mark = replacement("vwap-1", &marked);
        marked.updated_at += Duration::from_secs(1);
        let plan = plan(&desired(&[marked]), &[made_for_the_first_mark]);
        assert_eq!(names(&plan), ["restart vwap-1 Requested"]);
    }

    #[test]
    fn a_client_is_acknowledged_only_when_none_of_its_pods_is_terminating() {
        let marked = client(1, status(true, true, false), true);
        let running = [
            replacement("vwap-1", &marked),
            observed("twap-1", PodPhase::Terminating),
        ];
        let plan = plan(&desired(&[marked]), &running);
        assert!(plan.is_empty(), "{plan:?}");
        assert_eq!(plan.waiting, [PodName::parse("twap-1").unwrap()]);
    }

    /// The names the generated catalogues, switches and pods are drawn from: catalogues are
    /// subsets of it, so clients have switches, and the runtime pods, of algorithms the catalogue
    /// does not run (dropped from it, or never in it).
    const POOL: [&str; 8] = [
        "VWAP",
        "TWAP",
        "HFT",
        "X",
        "Y",
        "Z",
        "POV2",
        "A23456789012345",
    ];

    fn pool(i: usize) -> Algorithm {
        Algorithm::parse(POOL[i]).unwrap()
    }

    /// 1 to 6 algorithms of the pool, in any order.
    fn arb_catalogue() -> impl Strategy<Value = Catalogue> {
        prop::sample::subsequence((0..POOL.len()).collect::<Vec<_>>(), 1..=6)
            .prop_shuffle()
            .prop_map(|picked| Catalogue::new(picked.into_iter().map(pool).collect()).unwrap())
    }

    fn arb_clients() -> impl Strategy<Value = Vec<Client>> {
        let switches = prop::collection::vec((0..POOL.len(), any::<bool>()), 0..6);
        prop::collection::btree_map(1i64..40, (switches, any::<bool>()), 0..20).prop_map(|m| {
            m.into_iter()
                .map(|(id, (switches, restart))| {
                    let status = switches.into_iter().map(|(a, on)| (pool(a), on)).collect();
                    client(id, status, restart)
                })
                .collect()
        })
    }

    fn arb_phase() -> impl Strategy<Value = PodPhase> {
        prop_oneof![
            Just(PodPhase::Pending),
            Just(PodPhase::Running),
            Just(PodPhase::Succeeded),
            Just(PodPhase::Failed),
            Just(PodPhase::Unknown),
            Just(PodPhase::Terminating),
        ]
    }

    /// Pods with alsy's names for clients that may or may not exist, and pods of other forms;
    /// some created for no restart mark, some for their client's current mark (as the
    /// `updated_at` of [`client`]), some for an older one.
    fn arb_observed() -> impl Strategy<Value = Vec<ObservedPod>> {
        let ours = (0..POOL.len(), 1i64..50).prop_map(|(a, id)| {
            PodName::of(pool(a), ClientId::new(id).unwrap())
                .as_str()
                .to_owned()
        });
        let other = "[a-z][a-z0-9-]{0,10}[a-z0-9]";
        let mark = prop::option::of(any::<bool>());
        prop::collection::btree_map(prop_oneof![ours, other], (arb_phase(), mark), 0..30).prop_map(
            |m| {
                m.into_iter()
                    .map(|(name, (phase, mark))| {
                        let name = PodName::parse(&name).unwrap();
                        let current = name.owner().map_or(0, |(_, id)| id.get() as u64);
                        let restart_mark = mark.map(|current_mark| {
                            let secs = if current_mark { current } else { 1000 };
                            SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
                        });
                        ObservedPod {
                            name,
                            phase,
                            restart_mark,
                        }
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn a_pod_running_as_wanted_is_left_alone(
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients, &catalogue);
            let wanted: BTreeSet<_> = desired.pods.iter().map(|p| &p.name).collect();
            let plan = plan(&desired, &observed);
            for pod in &observed {
                let mark = pod.name.owner().and_then(|(_, id)| desired.restarts.get(&id));
                let settled = wanted.contains(&pod.name)
                    && !pod.phase.is_terminated()
                    && mark.is_none_or(|mark| pod.restart_mark == Some(*mark));
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
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
            held in prop::collection::btree_set(1i64..50, 0..10),
        ) {
            let held: BTreeMap<ClientId, String> = held
                .into_iter()
                .map(|id| (ClientId::new(id).unwrap(), "unusable".to_owned()))
                .collect();
            let desired = DesiredState::from_clients(&clients, &catalogue).holding(held.clone());
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
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let first = plan(&DesiredState::from_clients(&clients, &catalogue), &observed);
            let after = apply(&first, &observed);
            let clients = acknowledge(&first, &clients);
            let second = plan(&DesiredState::from_clients(&clients, &catalogue), &after);
            prop_assert!(second.is_empty(), "{:?}", second);
        }

        #[test]
        fn every_desired_pod_is_present_and_nothing_else_afterwards(
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients, &catalogue);
            let after = apply(&plan(&desired, &observed), &observed);
            let wanted: BTreeSet<_> = desired.pods.iter().map(|p| &p.name).collect();
            // A pod still terminating stays until its grace period ends, desired or not; a
            // desired one stands for its successor, which comes once it is gone.
            let present: BTreeSet<_> = after.iter().map(|p| &p.name).collect();
            prop_assert!(wanted.is_subset(&present), "{wanted:?} {present:?}");
            for pod in after.iter().filter(|p| !wanted.contains(&p.name)) {
                prop_assert_eq!(pod.phase, PodPhase::Terminating, "{}", pod.name);
            }
        }

        #[test]
        fn a_terminating_pod_is_never_touched_and_holds_back_its_clients_acknowledgement(
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients, &catalogue);
            let wanted: BTreeSet<_> = desired.pods.iter().map(|p| &p.name).collect();
            let plan = plan(&desired, &observed);
            for pod in observed.iter().filter(|p| p.phase == PodPhase::Terminating) {
                prop_assert!(
                    !plan.actions.iter().any(|a| a.pod_name() == &pod.name),
                    "{} is terminating but the plan touches it", pod.name
                );
                prop_assert_eq!(plan.waiting.contains(&pod.name), wanted.contains(&pod.name));
                if let Some((_, client)) = pod.name.owner().filter(|_| wanted.contains(&pod.name)) {
                    prop_assert!(!plan.acknowledgements.iter().any(|a| a.client_id == client));
                }
            }
        }

        #[test]
        fn restarts_through_terminating_pods_replace_every_marked_pod_once_and_settle(
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients, &catalogue);
            let marked = desired.restarts.clone();
            // Pass 1 on a cluster with grace periods: deleted and restarted pods terminate;
            // a client whose restart left its old pod terminating is not acknowledged.
            let first = plan(&desired, &observed);
            let pods = apply_with_grace(&first, &observed, true);
            let clients = acknowledge_unless(&first, &clients, &restarting(&first));
            // Pass 2 while they terminate: nothing terminating is touched.
            let second = plan(&DesiredState::from_clients(&clients, &catalogue), &pods);
            for action in &second.actions {
                let pod = pods.iter().find(|p| &p.name == action.pod_name());
                prop_assert!(pod.is_none_or(|p| p.phase != PodPhase::Terminating), "{action:?}");
            }
            let pods = apply_with_grace(&second, &pods, true);
            let clients = acknowledge_unless(&second, &clients, &restarting(&second));
            // The grace periods end; pass 3 creates the successors and acknowledges.
            let pods = grace_ends(pods);
            let third = plan(&DesiredState::from_clients(&clients, &catalogue), &pods);
            let pods = apply(&third, &pods);
            let clients = acknowledge(&third, &clients);
            prop_assert!(clients.iter().all(|c| !c.need_restart));
            let settled = DesiredState::from_clients(&clients, &catalogue);
            let names: BTreeSet<_> = pods.iter().map(|p| &p.name).collect();
            let wanted: BTreeSet<_> = settled.pods.iter().map(|p| &p.name).collect();
            prop_assert_eq!(names, wanted);
            // Every pod of a client that was marked is a replacement made for its mark.
            for pod in &pods {
                if let Some(mark) = pod.name.owner().and_then(|(_, id)| marked.get(&id)) {
                    prop_assert_eq!(pod.restart_mark, Some(*mark), "{}", pod.name);
                }
            }
            prop_assert!(plan(&settled, &pods).is_empty());
        }

        #[test]
        fn no_action_names_a_pod_outside_the_managed_or_desired_set(
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients, &catalogue);
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
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients, &catalogue);
            for action in plan(&desired, &observed).actions {
                if let PodAction::Restart { pod, cause: RestartCause::Requested } = &action {
                    prop_assert!(desired.restarts.contains_key(&pod.client_id));
                }
            }
        }

        #[test]
        fn a_terminated_desired_pod_is_always_replaced(
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let desired = DesiredState::from_clients(&clients, &catalogue);
            let plan = plan(&desired, &observed);
            for pod in observed.iter().filter(|p| p.phase.is_terminated()) {
                let replaced = plan.actions.iter().any(|a| matches!(a, PodAction::Restart { pod: d, .. } if d.name == pod.name));
                let deleted = plan.actions.contains(&PodAction::Delete(pod.name.clone()));
                prop_assert!(replaced || deleted, "{} left terminated", pod.name);
            }
        }

        #[test]
        fn actions_are_sorted_with_one_per_pod(
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let plan = plan(&DesiredState::from_clients(&clients, &catalogue), &observed);
            let names: Vec<_> = plan.actions.iter().map(PodAction::pod_name).collect();
            prop_assert!(names.windows(2).all(|w| w[0] < w[1]));
        }

        #[test]
        fn only_the_catalogues_algorithms_run_and_every_other_pod_of_alsys_form_goes(
            catalogue in arb_catalogue(),
            clients in arb_clients(),
            observed in arb_observed(),
        ) {
            let plan = plan(&DesiredState::from_clients(&clients, &catalogue), &observed);
            for action in &plan.actions {
                if let PodAction::Create(pod) | PodAction::Restart { pod, .. } = action {
                    prop_assert!(catalogue.contains(pod.algorithm), "{} runs", pod.name);
                }
            }
            // A terminating pod is already going: it is never deleted again.
            for pod in observed.iter().filter(|p| p.phase != PodPhase::Terminating) {
                if pod.name.owner().is_some_and(|(a, _)| !catalogue.contains(a)) {
                    prop_assert!(plan.actions.contains(&PodAction::Delete(pod.name.clone())), "{} kept", pod.name);
                }
            }
        }
    }
}
