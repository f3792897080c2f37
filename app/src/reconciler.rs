//! One reconcile pass: read what should run and what runs, plan the difference, apply it with
//! bounded concurrency — leaving the operations whose retry time has not come — acknowledge
//! finished restarts, keep the retry schedules. Level-triggered: every pass starts afresh.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use slog::{Logger, error, info, o, warn};

use alsy_domain::{
    Acknowledgement, Backoff, Catalogue, Client, ClientId, DesiredState, PodAction, PodName,
    PodRetry, Policy, plan,
};

use crate::blocking::off_the_workers;
use crate::drift::{Drift, Expectation};
use crate::feed::{PodChange, PodChanges};
use crate::observer::{PassFigures, PassObserver};
use crate::ports::{
    ClientRepository, Clock, PassLock, PodRuntime, Restarted, RuntimeError, SystemClock,
};

use crate::report::{
    FailedPart, HeldClient, Operation, PassOutcome, PassReport, PodFailure, PodWaiting, Trigger,
};
use crate::retries::RetryBook;

/// Acknowledgements per storage call: at most two statements on PostgreSQL (one for plain
/// acknowledgements, one for restart marks), well within the write timeout.
const ACK_BATCH: usize = 10_000;

/// Batches of acknowledgements in flight at once. They touch disjoint clients, so they cannot
/// block each other. Two at a time cut the acknowledging of a first pass over 100k clients (10
/// batches) by a third on a 2-core machine, 0.66 → 0.44 s (bench/RESULTS.md, "6. Issue 12:
/// before and after the catalogue"), and leave the rest of the pool to the API.
const ACK_CONCURRENCY: usize = 2;

/// Runs reconcile passes. Passes must not overlap; the [`crate::Watcher`] makes sure of that.
pub struct Reconciler {
    repo: Arc<dyn ClientRepository>,
    runtime: Arc<dyn PodRuntime>,
    lock: Arc<dyn PassLock>,
    concurrency: usize,
    policy: Arc<Policy>,
    catalogue: Catalogue,
    backoff: Backoff,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn PassObserver>>,
    /// What the last pass that read its inputs wanted; `None` before the first one.
    expected: Mutex<Option<Expectation>>,
    log: Logger,
}

impl Reconciler {
    /// A reconciler applying at most `concurrency` pod operations at once (at least one).
    pub fn new(
        repo: Arc<dyn ClientRepository>,
        runtime: Arc<dyn PodRuntime>,
        lock: Arc<dyn PassLock>,
        concurrency: usize,
        log: &Logger,
    ) -> Reconciler {
        Reconciler {
            repo,
            runtime,
            lock,
            concurrency: concurrency.max(1),
            policy: Arc::new(Policy::default()),
            catalogue: Catalogue::default(),
            backoff: Backoff::default(),
            clock: Arc::new(SystemClock),
            observer: None,
            expected: Mutex::new(None),
            log: log.new(o!("component" => "sync/watcher")),
        }
    }

    /// Holds back every client that breaks `policy` (checked again on every pass, so a policy
    /// tightened after a client was stored still applies).
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Reconciler {
        self.policy = policy;
        self
    }

    /// Runs the algorithms of `catalogue` (the default: VWAP, TWAP, HFT); a switch of any other
    /// algorithm counts as off, so its pods are deleted.
    pub fn with_catalogue(mut self, catalogue: Catalogue) -> Reconciler {
        self.catalogue = catalogue;
        self
    }

    /// Retries failed pod operations on `backoff`'s schedule (default: 1 s to 5 min).
    pub fn with_backoff(mut self, backoff: Backoff) -> Reconciler {
        self.backoff = backoff;
        self
    }

    /// The retry schedule's bounds.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Reads the time from `clock` (default: the system's) for retry schedules.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Reconciler {
        self.clock = clock;
        self
    }

    /// The clock retry times are read on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Tells `observer` about every finished pass.
    pub fn with_observer(mut self, observer: Arc<dyn PassObserver>) -> Reconciler {
        self.observer = Some(observer);
        self
    }

    /// A subscription to the runtime's change feed, if it has one.
    pub(crate) fn changes(&self) -> Option<PodChanges> {
        self.runtime.changes()
    }

    /// The changes among `changes` that make what runs differ from what the last pass wanted;
    /// none before a pass has read its inputs (the start-up pass looks at everything anyway).
    pub(crate) fn drift(&self, changes: &[PodChange]) -> Vec<(PodChange, Drift)> {
        let expected = self.expected.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(expected) = expected.as_ref() else {
            return Vec::new();
        };
        changes
            .iter()
            .filter_map(|change| expected.drift(change).map(|why| (change.clone(), why)))
            .collect()
    }

    /// Runs one pass and reports what it did. Never fails as a whole: a pass that could not read
    /// its inputs reports [`PassOutcome::Failed`].
    pub async fn run_pass(&self, trigger: Trigger) -> PassReport {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let mut report = PassReport {
            trigger,
            outcome: PassOutcome::Completed,
            started_at,
            finished_at: started_at,
            duration: Default::default(),
            created: Vec::new(),
            deleted: Vec::new(),
            restarted: Vec::new(),
            terminating: Vec::new(),
            failed: Vec::new(),
            waiting: Vec::new(),
            retries_pending: 0,
            next_retry_at: None,
            held: Vec::new(),
        };
        let mut figures = None;
        match self.lock.try_acquire().await {
            Ok(Some(held)) => {
                match self.reconcile(trigger, &mut report).await {
                    Ok(read) => figures = Some(read),
                    Err((part, reason)) => {
                        error!(self.log, "pass failed"; "trigger" => trigger.as_str(), "error" => &reason);
                        report.outcome = PassOutcome::Failed { part, reason };
                    }
                }
                held.release().await;
            }
            Ok(None) => {
                info!(self.log, "pass skipped: another replica holds the reconcile lock";
                    "trigger" => trigger.as_str(), "retried" => trigger == Trigger::Nudge);
                report.outcome = PassOutcome::Skipped;
            }
            Err(e) => {
                let reason = format!("could not take the reconcile lock: {e}");
                error!(self.log, "pass failed"; "trigger" => trigger.as_str(), "error" => &reason);
                report.outcome = PassOutcome::Failed {
                    part: FailedPart::Storage,
                    reason,
                };
            }
        }
        report.finished_at = SystemTime::now();
        report.duration = clock.elapsed();
        info!(self.log, "pass finished";
            "trigger" => trigger.as_str(),
            "outcome" => match &report.outcome {
                PassOutcome::Completed => "completed",
                PassOutcome::Skipped => "skipped",
                PassOutcome::Failed { .. } => "failed",
            },
            "created" => report.created.len(),
            "deleted" => report.deleted.len(),
            "restarted" => report.restarted.len(),
            "terminating" => report.terminating.len(),
            "failed" => report.failed.len(),
            "waiting" => report.waiting.len(),
            "retries_pending" => report.retries_pending,
            "next_retry_at" => report.next_retry_at.map(rfc3339),
            "held" => report.held.len(),
            "duration_ms" => report.duration.as_secs_f64() * 1000.0,
        );
        if let Some(observer) = &self.observer {
            observer.pass_finished(&report, figures);
        }
        report
    }

    /// Steps 1–5 of a pass, returning the sizes it read; `Err` only when the inputs could not
    /// be read.
    async fn reconcile(
        &self,
        trigger: Trigger,
        report: &mut PassReport,
    ) -> Result<PassFigures, (FailedPart, String)> {
        let retries = self
            .repo
            .pod_retries()
            .await
            .map_err(|e| (FailedPart::Storage, format!("reading retry schedules: {e}")))?;
        let mut book = RetryBook::new(retries, self.backoff);
        let stored = self
            .repo
            .desired_state()
            .await
            .map_err(|e| (FailedPart::Storage, format!("reading desired state: {e}")))?;
        for unusable in &stored.unusable {
            error!(self.log, "client held back: its stored values are unusable; its pods are left as they are";
                "client_id" => unusable.id.get(), "reason" => &unusable.reason);
            report.held.push(HeldClient {
                client_id: unusable.id,
                reason: unusable.reason.clone(),
            });
        }
        // Deriving what should run from every client, and the plan from that, are the pass's
        // CPU-bound steps: tens of milliseconds at 10,000 clients on a slow core. They run on
        // tokio's blocking threads, so that no HTTP request waits behind them on a worker.
        let (policy, catalogue) = (self.policy.clone(), self.catalogue.clone());
        let unusable: Vec<(ClientId, String)> = stored
            .unusable
            .into_iter()
            .map(|u| (u.id, u.reason))
            .collect();
        let clients = stored.clients;
        let client_count = clients.len() + unusable.len();
        let (desired, breaking) = off_the_workers(move || {
            let breaking = policy_breaches(&policy, &catalogue, &clients);
            let desired = DesiredState::from_clients(&clients, &catalogue)
                .holding(unusable)
                .holding(breaking.iter().cloned());
            (desired, breaking)
        })
        .await;
        for (client_id, reason) in breaking {
            warn!(self.log, "client held back: it breaks the policy; its pods are left as they are";
                "client_id" => client_id.get(), "reason" => &reason);
            report.held.push(HeldClient { client_id, reason });
        }
        report.held.sort_by_key(|h| h.client_id);
        let observed = self
            .runtime
            .list()
            .await
            .map_err(|e| (FailedPart::Runtime, format!("listing pods: {e}")))?;
        let figures = PassFigures {
            clients: client_count,
            desired_pods: desired.pods.len(),
            observed_pods: observed.len(),
        };
        // The inputs are dropped there too: on a first pass over 100k clients they are hundreds
        // of thousands of pods.
        let (plan, expectation) =
            off_the_workers(move || (plan(&desired, &observed), Expectation::of(&desired))).await;
        // Set before applying, so the changes the pass's own writes cause are expected ones.
        *self.expected.lock().unwrap_or_else(PoisonError::into_inner) = Some(expectation);

        report.terminating = plan.waiting;
        // Whether all of a client's operations are done: succeeded, and for a restart, the
        // successor created (not just the old pod deleted).
        let mut client_done: BTreeMap<ClientId, bool> = BTreeMap::new();
        let planned: BTreeSet<PodName> =
            plan.actions.iter().map(|a| a.pod_name().clone()).collect();
        // An operator's `POST /api/v1/sync` retries everything now; every other pass leaves an
        // operation that failed before until its retry time.
        let now = self.clock.now();
        let (due, waiting): (Vec<PodAction>, Vec<PodAction>) = plan
            .actions
            .into_iter()
            .partition(|action| trigger == Trigger::Request || book.waiting(action, now).is_none());
        for action in &waiting {
            if let Some((_, client)) = action.pod_name().owner() {
                client_done.insert(client, false);
            }
            if let Some(retry) = book.waiting(action, now) {
                report.waiting.push(PodWaiting {
                    pod: retry.pod.clone(),
                    operation: retry.operation,
                    attempts: retry.attempts,
                    next_retry_at: retry.next_retry_at,
                });
            }
        }
        let mut results = futures::stream::iter(due)
            .map(|action| async move {
                let result = match &action {
                    PodAction::Create(pod) => self.runtime.create(pod).await.map(|()| Done::Yes),
                    PodAction::Delete(name) => self.runtime.delete(name).await.map(|()| Done::Yes),
                    PodAction::Restart { pod, .. } => {
                        self.runtime
                            .restart(pod)
                            .await
                            .map(|restarted| match restarted {
                                Restarted::Replaced => Done::Yes,
                                Restarted::OldPodTerminating => Done::WaitingForOldPod,
                            })
                    }
                };
                (action, result)
            })
            .buffer_unordered(self.concurrency);
        while let Some((action, result)) = results.next().await {
            let name = action.pod_name().clone();
            let operation = action.operation();
            // Pods not named by alsy are only ever deleted: no client to acknowledge.
            if let Some((_, client)) = name.owner() {
                *client_done.entry(client).or_insert(true) &= matches!(result, Ok(Done::Yes));
            }
            match result {
                Ok(done) => {
                    // A restart that left the old pod terminating succeeded too: its successor
                    // is a create of a later pass, with a schedule of its own if it fails.
                    book.succeeded(&action);
                    self.log_success(operation, &name, done);
                    if done == Done::WaitingForOldPod {
                        report.terminating.push(name.clone());
                    }
                    match operation {
                        Operation::Create => report.created.push(name),
                        Operation::Delete => report.deleted.push(name),
                        Operation::Restart => report.restarted.push(name),
                    }
                }
                Err(e) => {
                    let retry = book.failed(&action, &e, self.clock.now());
                    self.log_failure(retry, &e);
                    report.failed.push(PodFailure {
                        pod: name,
                        operation,
                        error: e.to_string(),
                        attempt: retry.attempts,
                        next_retry_at: retry.next_retry_at,
                    });
                }
            }
        }
        drop(results);
        for list in [
            &mut report.created,
            &mut report.deleted,
            &mut report.restarted,
            &mut report.terminating,
        ] {
            list.sort();
        }
        report.failed.sort_by(|a, b| a.pod.cmp(&b.pod));

        self.keep_schedules(book, &planned, report).await;

        // A client with a failed or waiting operation keeps its mark until a later pass settles
        // it; one whose restart left the old pod terminating keeps it until a later pass has
        // created the successor.
        let acks: Vec<Acknowledgement> = plan
            .acknowledgements
            .into_iter()
            .filter(|ack| client_done.get(&ack.client_id).copied().unwrap_or(true))
            .collect();
        let now = SystemTime::now();
        // The calls are made up front (a future does nothing until polled): a stream that maps
        // borrowed batches to futures is not `Send` enough for `tokio::spawn`.
        let calls: Vec<_> = acks
            .chunks(ACK_BATCH)
            .map(|batch| async move { (batch, self.repo.acknowledge_all(batch, now).await) })
            .collect();
        let mut batches = futures::stream::iter(calls).buffer_unordered(ACK_CONCURRENCY);
        while let Some((batch, acknowledged)) = batches.next().await {
            match acknowledged {
                Ok(changed) => {
                    for (ack, _) in batch.iter().zip(changed).filter(|(_, changed)| !changed) {
                        warn!(self.log, "not acknowledged: the client changed or was deleted during the pass; the next pass looks again";
                            "client_id" => ack.client_id.get(), "restart" => ack.restart_seen.is_some());
                    }
                }
                Err(e) => {
                    error!(self.log, "could not acknowledge the clients' pods; the next pass tries again";
                    "clients" => batch.len(), "error" => %e)
                }
            }
        }
        Ok(figures)
    }

    /// Stores what the pass changed in the retry schedules, and reports them.
    async fn keep_schedules(
        &self,
        book: RetryBook,
        planned: &BTreeSet<PodName>,
        report: &mut PassReport,
    ) {
        let changes = book.finish(planned);
        report.retries_pending = changes.pending.len();
        report.next_retry_at = changes.pending.iter().map(|r| r.next_retry_at).min();
        if changes.is_empty() {
            return;
        }
        if let Err(e) = self
            .repo
            .save_pod_retries(&changes.changed, &changes.cleared)
            .await
        {
            // The next pass reads the schedules as they were: a retry may come early or an
            // attempt go uncounted, nothing worse.
            error!(self.log, "could not store the retry schedules";
                "changed" => changes.changed.len(), "cleared" => changes.cleared.len(), "error" => %e);
        }
    }

    fn log_success(&self, operation: Operation, pod: &PodName, done: Done) {
        let pod_operation = format!("<{}> {}", operation.tag(), pod);
        if done == Done::WaitingForOldPod {
            info!(self.log, "pod restart begun: the old pod is terminating; a later pass creates its successor once it is gone";
                "pod_operation" => pod_operation);
            return;
        }
        let msg = match operation {
            Operation::Create => "pod created",
            Operation::Delete => "pod deleted",
            Operation::Restart => "pod restarted",
        };
        info!(self.log, "{}", msg; "pod_operation" => pod_operation);
    }

    fn log_failure(&self, retry: &PodRetry, error: &RuntimeError) {
        let msg = match retry.operation {
            Operation::Create => "pod create failed",
            Operation::Delete => "pod delete failed",
            Operation::Restart => "pod restart failed",
        };
        error!(self.log, "{}", msg;
            "pod_operation" => format!("<{}> {}", retry.operation.tag(), retry.pod),
            "error" => %error,
            "retryable" => error.is_retryable(),
            "attempt" => retry.attempts,
            "next_retry_at" => rfc3339(retry.next_retry_at),
        );
    }
}

/// The clients with something of the catalogue's to run that break `policy` (checked on every
/// pass, so a policy tightened after a client was stored applies), with the rule each breaks.
/// A client with nothing switched on is not held, so its leftover pods go; nor is one whose only
/// switches are of algorithms dropped from the catalogue: those pods must go too.
fn policy_breaches(
    policy: &Policy,
    catalogue: &Catalogue,
    clients: &[Client],
) -> Vec<(ClientId, String)> {
    if policy.is_open() {
        return Vec::new();
    }
    clients
        .iter()
        .filter(|c| c.status.enabled().any(|a| catalogue.contains(a)))
        .filter_map(|c| policy.check(&c.spec).err().map(|v| (c.id, v.to_string())))
        .collect()
}

/// A time for the log: RFC 3339, UTC, milliseconds.
fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Whether a successful pod operation finished what it was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// Yes: created, deleted, or deleted and created again.
    Yes,
    /// A restart deleted the old pod, which is still terminating: its successor is for a later
    /// pass.
    WaitingForOldPod,
}
