//! What the API sends: clients, pages, pods and pass reports as JSON, with times in RFC 3339 UTC.
//! These shapes are the API contract (README.md, "HTTP API"), kept apart from the domain types so
//! either can change without silently changing the other.

use std::time::SystemTime;

use alsy_app::{PassOutcome, PassReport, PodView};
use alsy_domain::{AlgorithmStatus, Catalogue, Client, Page, UnusableClient};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::openapi::status_schema;
use crate::sync_state::ListedClientDto;

/// A client with its switches.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Client)]
pub(crate) struct ClientDto<'a> {
    #[schema(minimum = 1)]
    id: i64,
    name: &'a str,
    #[schema(minimum = 0)]
    version: i32,
    image: &'a str,
    cpu: &'a str,
    mem: &'a str,
    #[schema(minimum = 0)]
    priority: f64,
    need_restart: bool,
    /// When its pods were last (re)started; null until they first start.
    #[schema(format = DateTime)]
    spawned_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// One switch per algorithm of the catalogue (the document states the configured one).
    #[schema(schema_with = default_status_schema)]
    status: StatusDto<'a>,
}

/// The switches of the catalogue's algorithms, in catalogue order: `{"VWAP":true,...}`. A
/// stored switch of an algorithm outside the catalogue is not shown: it does not run.
#[derive(Debug)]
pub(crate) struct StatusDto<'a> {
    status: &'a AlgorithmStatus,
    catalogue: &'a Catalogue,
}

impl Serialize for StatusDto<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let algorithms = self.catalogue.algorithms();
        let mut map = serializer.serialize_map(Some(algorithms.len()))?;
        for algorithm in algorithms {
            map.serialize_entry(algorithm.as_str(), &self.status.is_on(*algorithm))?;
        }
        map.end()
    }
}

fn default_status_schema() -> utoipa::openapi::schema::Object {
    status_schema(&Catalogue::default())
}

impl<'a> ClientDto<'a> {
    /// `client` as the API shows it, with the switches of `catalogue`'s algorithms.
    pub(crate) fn new(client: &'a Client, catalogue: &'a Catalogue) -> Self {
        ClientDto {
            id: client.id.get(),
            name: client.spec.name.as_str(),
            version: client.spec.version.get(),
            image: client.spec.image.as_str(),
            cpu: client.spec.cpu.as_str(),
            mem: client.spec.mem.as_str(),
            priority: client.spec.priority.get(),
            need_restart: client.need_restart,
            spawned_at: client.spawned_at.map(timestamp),
            created_at: timestamp(client.created_at),
            updated_at: timestamp(client.updated_at),
            status: StatusDto {
                status: &client.status,
                catalogue,
            },
        }
    }
}

/// A page of clients: `{"items":[...],"unusable":[{"id":ID,"reason":"..."}],"next":ID|null}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClientPage)]
pub(crate) struct PageDto<'a> {
    pub(crate) items: Vec<ListedClientDto<'a>>,
    /// Stored rows that no longer parse, with why.
    pub(crate) unusable: Vec<UnusableDto<'a>>,
    /// Pass as `after` for the next page; null on the last page (with `state`: once the scan
    /// reached the last client).
    pub(crate) next: Option<i64>,
}

/// A stored client that can no longer be read, with the reason.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UnusableClient)]
pub(crate) struct UnusableDto<'a> {
    id: i64,
    reason: &'a str,
}

impl<'a> From<&'a UnusableClient> for UnusableDto<'a> {
    fn from(unusable: &'a UnusableClient) -> Self {
        UnusableDto {
            id: unusable.id.get(),
            reason: &unusable.reason,
        }
    }
}

impl<'a> PageDto<'a> {
    /// `page` as the API shows it.
    pub(crate) fn new(page: &'a Page, catalogue: &'a Catalogue) -> Self {
        PageDto {
            items: page
                .items
                .iter()
                .map(|c| ListedClientDto::new(c, catalogue))
                .collect(),
            unusable: page.unusable.iter().map(UnusableDto::from).collect(),
            next: page.next.map(|id| id.get()),
        }
    }
}

/// A pod the runtime reports.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Pod)]
pub(crate) struct PodDto<'a> {
    name: &'a str,
    client_id: Option<i64>,
    algorithm: Option<&'a str>,
    /// `Terminating`: being deleted, gone once its grace period ends.
    #[schema(
        value_type = String,
        pattern = "^(Pending|Running|Succeeded|Failed|Unknown|Terminating)$"
    )]
    phase: &'static str,
}

impl<'a> From<&'a PodView> for PodDto<'a> {
    fn from(pod: &'a PodView) -> Self {
        PodDto {
            name: pod.name.as_str(),
            client_id: pod.client_id.map(|id| id.get()),
            algorithm: pod.algorithm.as_ref().map(|a| a.as_str()),
            phase: pod.phase.as_str(),
        }
    }
}

/// One reconcile pass's report.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PassReport)]
pub(crate) struct ReportDto<'a> {
    /// `recheck`: a pass run again shortly after one that left pods terminating; `retry`: a
    /// pass run when a failed pod operation's retry time came.
    #[schema(
        value_type = String,
        pattern = "^(startup|interval|nudge|request|recheck|retry)$"
    )]
    trigger: &'static str,
    #[schema(value_type = String, pattern = "^(completed|skipped|failed)$")]
    outcome: &'static str,
    /// Why a failed pass failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[schema(format = DateTime)]
    started_at: String,
    #[schema(format = DateTime)]
    finished_at: String,
    duration_ms: u64,
    created: Vec<&'a str>,
    deleted: Vec<&'a str>,
    /// Pods restarted: deleted, and created again unless also under `terminating`.
    restarted: Vec<&'a str>,
    /// Pods that should run whose old pod is still terminating (a restart in progress): a
    /// later pass creates their successors once the old pods are gone.
    terminating: Vec<&'a str>,
    /// Operations that failed, each with its attempt and retry time.
    failed: Vec<FailureDto<'a>>,
    /// Operations left for their retry time (their pods' earlier failures).
    waiting: Vec<WaitingDto<'a>>,
    /// Pods with a retry schedule after the pass.
    #[schema(minimum = 0)]
    retries_pending: usize,
    /// The earliest retry time after the pass, when the watcher runs a pass; null when nothing
    /// waits.
    #[schema(format = DateTime)]
    next_retry_at: Option<String>,
    /// Clients held back (a stored row that no longer parses, or a client breaking the
    /// policy): their pods were left as they were.
    held: Vec<HeldDto<'a>>,
}

/// A pod operation that failed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PodFailure)]
pub(crate) struct FailureDto<'a> {
    pod: &'a str,
    #[schema(value_type = String, pattern = "^(create|delete|restart)$")]
    operation: &'static str,
    error: &'a str,
    /// Failures in a row of this operation, this one included.
    #[schema(minimum = 1)]
    attempt: u32,
    /// When it is tried again.
    #[schema(format = DateTime)]
    next_retry_at: String,
}

/// A planned operation the pass left for its retry time.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PodWaiting)]
pub(crate) struct WaitingDto<'a> {
    pod: &'a str,
    #[schema(value_type = String, pattern = "^(create|delete|restart)$")]
    operation: &'static str,
    /// Its failures in a row so far.
    #[schema(minimum = 1)]
    attempts: u32,
    /// When it is tried again.
    #[schema(format = DateTime)]
    next_retry_at: String,
}

/// A client a pass held back, and why.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HeldClient)]
pub(crate) struct HeldDto<'a> {
    client_id: i64,
    reason: &'a str,
}

impl<'a> From<&'a PassReport> for ReportDto<'a> {
    fn from(report: &'a PassReport) -> Self {
        let (outcome, error) = match &report.outcome {
            PassOutcome::Completed => ("completed", None),
            PassOutcome::Skipped => ("skipped", None),
            PassOutcome::Failed { reason, .. } => ("failed", Some(reason.as_str())),
        };
        let names = |pods: &'a [alsy_domain::PodName]| pods.iter().map(|p| p.as_str()).collect();
        ReportDto {
            trigger: report.trigger.as_str(),
            outcome,
            error,
            started_at: timestamp(report.started_at),
            finished_at: timestamp(report.finished_at),
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            created: names(&report.created),
            deleted: names(&report.deleted),
            restarted: names(&report.restarted),
            terminating: names(&report.terminating),
            failed: report
                .failed
                .iter()
                .map(|f| FailureDto {
                    pod: f.pod.as_str(),
                    operation: f.operation.as_str(),
                    error: &f.error,
                    attempt: f.attempt,
                    next_retry_at: timestamp(f.next_retry_at),
                })
                .collect(),
            waiting: report
                .waiting
                .iter()
                .map(|w| WaitingDto {
                    pod: w.pod.as_str(),
                    operation: w.operation.as_str(),
                    attempts: w.attempts,
                    next_retry_at: timestamp(w.next_retry_at),
                })
                .collect(),
            retries_pending: report.retries_pending,
            next_retry_at: report.next_retry_at.map(timestamp),
            held: report
                .held
                .iter()
                .map(|h| HeldDto {
                    client_id: h.client_id.get(),
                    reason: &h.reason,
                })
                .collect(),
        }
    }
}

/// RFC 3339 in UTC with microseconds: PostgreSQL's precision, so a time read back compares equal.
pub(crate) fn timestamp(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use alsy_app::{Operation, PodFailure, Trigger};
    use alsy_domain::{ClientId, ClientSpec, ClientSpecInput, PodName};
    use serde_json::{Value, json};

    fn client() -> Client {
        let at = UNIX_EPOCH + Duration::from_secs(1_721_348_122);
        Client {
            id: ClientId::new(3).unwrap(),
            spec: ClientSpec::parse(ClientSpecInput {
                name: "Jimbo".into(),
                version: 2,
                image: "ghcr.io/acme/vwap:1.0".into(),
                cpu: "500m".into(),
                mem: "512Mi".into(),
                priority: 0.25,
            })
            .unwrap(),
            status: [("VWAP", true), ("TWAP", false), ("HFT", true)]
                .into_iter()
                .map(|(name, on)| (alsy_domain::Algorithm::parse(name).unwrap(), on))
                .collect(),
            need_restart: false,
            spawned_at: None,
            created_at: at,
            updated_at: at + Duration::from_micros(1500),
        }
    }

    #[test]
    fn a_client_has_exactly_the_fields_of_the_contract_in_order() {
        let client = client();
        let text = serde_json::to_string(&ClientDto::new(&client, &Catalogue::default())).unwrap();
        assert_eq!(
            text,
            r#"{"id":3,"name":"Jimbo","version":2,"image":"ghcr.io/acme/vwap:1.0","cpu":"500m","mem":"512Mi","priority":0.25,"need_restart":false,"spawned_at":null,"created_at":"2024-07-19T00:15:22.000000Z","updated_at":"2024-07-19T00:15:22.001500Z","status":{"VWAP":true,"TWAP":false,"HFT":true}}"#
        );
    }

    #[test]
    fn status_shows_the_catalogues_switches_in_its_order_and_nothing_else() {
        let mut client = client();
        client
            .status
            .set(alsy_domain::Algorithm::parse("POV").unwrap(), true);
        let catalogue = Catalogue::parse("HFT,X,VWAP").unwrap();
        let text = serde_json::to_string(&ClientDto::new(&client, &catalogue)).unwrap();
        assert!(
            text.ends_with(r#""status":{"HFT":true,"X":false,"VWAP":true}}"#),
            "{text}"
        );
    }

    #[test]
    fn a_page_lists_items_and_the_next_cursor() {
        let page = Page {
            items: vec![client()],
            unusable: vec![alsy_domain::UnusableClient {
                id: ClientId::new(2).unwrap(),
                reason: "name: must not be blank".into(),
            }],
            next: ClientId::new(3),
        };
        let value: Value =
            serde_json::to_value(PageDto::new(&page, &Catalogue::default())).unwrap();
        assert_eq!(value["next"], json!(3));
        assert_eq!(
            value["unusable"],
            json!([{"id": 2, "reason": "name: must not be blank"}])
        );
        assert_eq!(value["items"][0]["id"], json!(3));
    }

    #[test]
    fn a_failed_pass_reports_its_error_and_failures() {
        let at = UNIX_EPOCH;
        let report = PassReport {
            trigger: Trigger::Request,
            outcome: PassOutcome::Failed {
                part: alsy_app::FailedPart::Runtime,
                reason: "listing pods: runtime unavailable".into(),
            },
            started_at: at,
            finished_at: at + Duration::from_millis(12),
            duration: Duration::from_millis(12),
            created: vec![PodName::parse("vwap-1").unwrap()],
            deleted: vec![],
            restarted: vec![],
            terminating: vec![],
            failed: vec![PodFailure {
                pod: PodName::parse("hft-1").unwrap(),
                operation: Operation::Create,
                error: "boom".into(),
                attempt: 2,
                next_retry_at: at + Duration::from_secs(3),
            }],
            waiting: vec![alsy_app::PodWaiting {
                pod: PodName::parse("twap-1").unwrap(),
                operation: Operation::Delete,
                attempts: 1,
                next_retry_at: at + Duration::from_secs(1),
            }],
            retries_pending: 2,
            next_retry_at: Some(at + Duration::from_secs(1)),
            held: vec![alsy_app::HeldClient {
                client_id: ClientId::new(4).unwrap(),
                reason: "cpu: bad".into(),
            }],
        };
        let value = serde_json::to_value(ReportDto::from(&report)).unwrap();
        assert_eq!(
            value,
            json!({
                "trigger": "request",
                "outcome": "failed",
                "error": "listing pods: runtime unavailable",
                "started_at": "1970-01-01T00:00:00.000000Z",
                "finished_at": "1970-01-01T00:00:00.012000Z",
                "duration_ms": 12,
                "created": ["vwap-1"],
                "deleted": [],
                "restarted": [],
                "terminating": [],
                "failed": [{"pod": "hft-1", "operation": "create", "error": "boom",
                            "attempt": 2, "next_retry_at": "1970-01-01T00:00:03.000000Z"}],
                "waiting": [{"pod": "twap-1", "operation": "delete", "attempts": 1,
                             "next_retry_at": "1970-01-01T00:00:01.000000Z"}],
                "retries_pending": 2,
                "next_retry_at": "1970-01-01T00:00:01.000000Z",
                "held": [{"client_id": 4, "reason": "cpu: bad"}]
            })
        );
    }
}
