//! A client's sync state (README.md, "Retries and sync state"): for each algorithm, whether it should run, the pod that
//! runs for it, and how far what runs is from what should; and a summary for the client. Derived,
//! never stored: from the client's row, the pods the runtime reports, and the pods' retry
//! schedules ([`PodRetry`]).

use std::time::SystemTime;

use crate::{Algorithm, Catalogue, Client, ObservedPod, PodName, PodPhase, PodRetry};

/// How far one algorithm's pod is from what its switch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// What runs is what should: a running pod for a switch that is on, no pod for one that is off.
    Synced,
    /// alsy is on its way: the pod is to be created, deleted or restarted by the next pass, or is
    /// starting.
    Pending,
    /// The last operation on the pod failed (it is retried on its schedule), or the client is held
    /// back (it breaks the policy): see `error`.
    Failing,
    /// The pod is being deleted and has not gone yet.
    Terminating,
}

impl SyncState {
    /// Every state, in the order the API documents them.
    pub const ALL: [SyncState; 4] = [
        SyncState::Synced,
        SyncState::Pending,
        SyncState::Failing,
        SyncState::Terminating,
    ];

    /// Lower-case name for the API: `synced`, `pending`, `failing`, `terminating`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "synced",
            SyncState::Pending => "pending",
            SyncState::Failing => "failing",
            SyncState::Terminating => "terminating",
        }
    }
}

/// A client's sync state in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncSummary {
    /// Every algorithm is synced.
    Synced,
    /// Nothing is failing, something is still on its way.
    Progressing,
    /// At least one algorithm is failing: a human may be needed.
    Degraded,
}

impl SyncSummary {
    /// Every summary, in the order the API documents them.
    pub const ALL: [SyncSummary; 3] = [
        SyncSummary::Synced,
        SyncSummary::Progressing,
        SyncSummary::Degraded,
    ];

    /// Lower-case name for the API: `synced`, `progressing`, `degraded`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncSummary::Synced => "synced",
            SyncSummary::Progressing => "progressing",
            SyncSummary::Degraded => "degraded",
        }
    }

    /// The summary named by [`SyncSummary::as_str`].
    pub fn parse(name: &str) -> Option<SyncSummary> {
        SyncSummary::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One algorithm of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmSync {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Its switch is on.
    pub desired: bool,
    /// The pod the runtime reports for it, if any.
    pub pod: Option<PodName>,
    /// That pod's phase.
    pub phase: Option<PodPhase>,
    /// How far it is from what should run.
    pub state: SyncState,
    /// Why it is failing.
    pub error: Option<String>,
    /// Failures in a row of the pod's current operation (0 when nothing failed).
    pub attempts: u32,
    /// When the failed operation is tried again.
    pub next_retry_at: Option<SystemTime>,
}

/// A client's sync state: each algorithm, in catalogue order, and the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSync {
    /// One entry per algorithm.
    pub algorithms: Vec<AlgorithmSync>,
    /// The client in one word.
    pub summary: SyncSummary,
}

impl ClientSync {
    /// The sync state of `client` for each algorithm of `catalogue`: `held` is why the
    /// reconciler holds it back (it breaks the policy), `observed` the pods the runtime reports
    /// (any; only the client's are looked at), `retries` the retry schedules (likewise).
    pub fn of(
        client: &Client,
        catalogue: &Catalogue,
        held: Option<&str>,
        observed: &[ObservedPod],
        retries: &[PodRetry],
    ) -> ClientSync {
        // A client with nothing switched on is never held back: its leftover pods just go.
        let held = held.filter(|_| client.status.enabled().any(|a| catalogue.contains(a)));
        let algorithms: Vec<AlgorithmSync> = catalogue
            .algorithms()
            .iter()
            .map(|&algorithm| {
                let name = PodName::of(algorithm, client.id);
                let seen = observed.iter().find(|p| p.name == name);
                let retry = retries.iter().find(|r| r.pod == name);
                let desired = client.status.is_on(algorithm);
                let mut sync = AlgorithmSync {
                    algorithm,
                    desired,
                    pod: seen.map(|p| p.name.clone()),
                    phase: seen.map(|p| p.phase),
                    state: state(desired, seen.map(|p| p.phase), client.need_restart),
                    error: None,
                    attempts: 0,
                    next_retry_at: None,
                };
                if let Some(retry) = retry {
                    sync.state = SyncState::Failing;
                    sync.error = Some(retry.error.clone());
                    sync.attempts = retry.attempts;
                    sync.next_retry_at = Some(retry.next_retry_at);
                }
                // Held back, the reconciler touches none of its pods: whatever differs stays so.
                if let Some(reason) = held
                    && (desired || seen.is_some())
                {
                    sync.state = SyncState::Failing;
                    sync.error = Some(reason.to_owned());
                }
                sync
            })
            .collect();
        let summary = if algorithms.iter().any(|a| a.state == SyncState::Failing) {
            SyncSummary::Degraded
        } else if algorithms.iter().all(|a| a.state == SyncState::Synced) {
            SyncSummary::Synced
        } else {
            SyncSummary::Progressing
        };
        ClientSync {
            algorithms,
            summary,
        }
    }
}

/// The state of an algorithm with nothing failing.
fn state(desired: bool, phase: Option<PodPhase>, need_restart: bool) -> SyncState {
    match (desired, phase) {
        // Deleted (by alsy or from outside) and not gone yet, wanted or not: a successor, if
        // any, waits for it.
        (_, Some(PodPhase::Terminating)) => SyncState::Terminating,
        (false, None) => SyncState::Synced,
        // To be deleted by the next pass.
        (false, Some(_)) => SyncState::Pending,
        (true, None) => SyncState::Pending,
        (true, Some(_)) if need_restart => SyncState::Pending,
        (true, Some(PodPhase::Running)) => SyncState::Synced,
        // Starting, or stopped and about to be replaced.
        (true, Some(_)) => SyncState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{AlgorithmStatus, ClientId, Intent, Operation, PodRetry};

    fn client(status: AlgorithmStatus, need_restart: bool) -> Client {
        crate::plan::tests::client(1, status, need_restart)
    }

    fn seen(name: &str, phase: PodPhase) -> ObservedPod {
        ObservedPod::new(PodName::parse(name).unwrap(), phase)
    }

    fn of(
        client: &Client,
        held: Option<&str>,
        observed: &[ObservedPod],
        retries: &[PodRetry],
    ) -> ClientSync {
        ClientSync::of(client, &Catalogue::default(), held, observed, retries)
    }

    fn retry(name: &str, attempts: u32) -> PodRetry {
        PodRetry {
            pod: PodName::parse(name).unwrap(),
            client_id: ClientId::new(1),
            operation: Operation::Create,
            intent: Intent(1),
            attempts,
            error: "runtime unavailable: HTTP 500".into(),
            rejected: false,
            failed_at: SystemTime::UNIX_EPOCH,
            next_retry_at: SystemTime::UNIX_EPOCH + Duration::from_secs(2),
        }
    }

    fn states(sync: &ClientSync) -> Vec<(&str, &'static str)> {
        sync.algorithms
            .iter()
            .map(|a| (a.algorithm.as_str(), a.state.as_str()))
            .collect()
    }

    fn vwap_and_hft() -> AlgorithmStatus {
        ["VWAP", "HFT"]
            .map(|name| (Algorithm::named(name), true))
            .into_iter()
            .collect()
    }

    #[test]
    fn running_pods_for_switches_on_and_none_for_switches_off_are_synced() {
        let pods = [
            seen("vwap-1", PodPhase::Running),
            seen("hft-1", PodPhase::Running),
        ];
        let sync = of(&client(vwap_and_hft(), false), None, &pods, &[]);
        assert_eq!(sync.summary, SyncSummary::Synced);
        assert_eq!(
            states(&sync),
            [("VWAP", "synced"), ("TWAP", "synced"), ("HFT", "synced")]
        );
        assert_eq!(sync.algorithms[0].pod.as_ref().unwrap().as_str(), "vwap-1");
        assert_eq!(sync.algorithms[1].pod, None);
    }

    #[test]
    fn missing_starting_unwanted_and_restarting_pods_are_pending() {
        let pods = [
            seen("hft-1", PodPhase::Pending),
            seen("twap-1", PodPhase::Running),
        ];
        let sync = of(&client(vwap_and_hft(), false), None, &pods, &[]);
        assert_eq!(sync.summary, SyncSummary::Progressing);
        assert_eq!(
            states(&sync),
            [("VWAP", "pending"), ("TWAP", "pending"), ("HFT", "pending")]
        );

        let running = [
            seen("vwap-1", PodPhase::Running),
            seen("hft-1", PodPhase::Running),
        ];
        let restarting = of(&client(vwap_and_hft(), true), None, &running, &[]);
        assert_eq!(restarting.algorithms[0].state, SyncState::Pending);
        assert_eq!(restarting.summary, SyncSummary::Progressing);
    }

    #[test]
    fn a_failed_operation_is_failing_with_its_error_attempts_and_retry_time() {
        let pods = [seen("vwap-1", PodPhase::Running)];
        let sync = of(
            &client(vwap_and_hft(), false),
            None,
            &pods,
            &[retry("hft-1", 3)],
        );
        assert_eq!(sync.summary, SyncSummary::Degraded);
        let hft = &sync.algorithms[2];
        assert_eq!(hft.state, SyncState::Failing);
        assert_eq!(hft.attempts, 3);
        assert_eq!(hft.error.as_deref(), Some("runtime unavailable: HTTP 500"));
        assert!(hft.next_retry_at.is_some());
        assert_eq!(sync.algorithms[0].state, SyncState::Synced);
    }

    #[test]
    fn a_held_client_is_failing_with_the_reason_where_it_differs_or_should_run() {
        let pods = [seen("vwap-1", PodPhase::Running)];
        let reason = "image: not allowed by the image policy";
        let sync = of(&client(vwap_and_hft(), false), Some(reason), &pods, &[]);
        assert_eq!(sync.summary, SyncSummary::Degraded);
        assert_eq!(
            states(&sync),
            [("VWAP", "failing"), ("TWAP", "synced"), ("HFT", "failing")]
        );
        assert_eq!(sync.algorithms[2].error.as_deref(), Some(reason));

        // Nothing on: not held back, its leftover pod is simply deleted.
        let off = of(
            &client(AlgorithmStatus::default(), false),
            Some(reason),
            &pods,
            &[],
        );
        assert_eq!(off.summary, SyncSummary::Progressing);
    }

    #[test]
    fn only_the_clients_own_pods_and_retries_count() {
        let pods = [
            seen("vwap-10", PodPhase::Running),
            seen("vwap-1", PodPhase::Running),
        ];
        let sync = of(
            &client(
                [(Algorithm::named("VWAP"), true)].into_iter().collect(),
                false,
            ),
            None,
            &pods,
            &[retry("vwap-10", 1)],
        );
        assert_eq!(sync.summary, SyncSummary::Synced);
    }

    #[test]
    fn a_pod_being_deleted_is_terminating_and_the_client_progressing() {
        let pods = [
            seen("vwap-1", PodPhase::Terminating),
            seen("hft-1", PodPhase::Running),
        ];
        let sync = of(&client(vwap_and_hft(), false), None, &pods, &[]);
        assert_eq!(sync.algorithms[0].state, SyncState::Terminating);
        assert_eq!(sync.algorithms[0].phase, Some(PodPhase::Terminating));
        assert_eq!(sync.summary, SyncSummary::Progressing);
    }

    #[test]
    fn summaries_parse_from_their_names_only() {
        for summary in SyncSummary::ALL {
            assert_eq!(SyncSummary::parse(summary.as_str()), Some(summary));
        }
        assert_eq!(SyncSummary::parse("Degraded"), None);
        assert_eq!(SyncSummary::parse("failing"), None);
    }
}
