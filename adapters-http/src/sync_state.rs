//! What the API sends about sync state (README.md, "Retries and sync state"): the `sync` object
//! of `GET /api/v1/clients/{id}` and `GET /api/v1/status/{id}`, and the items of
//! `GET /api/v1/clients?state=…`. Kept beside `dto.rs` and shaped the same way.

use alsy_app::{SyncPage, SyncView};
use alsy_domain::{AlgorithmSync, Catalogue, Client, ClientSync};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::dto::{ClientDto, PageDto, UnusableDto, timestamp};

/// One algorithm's sync state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlgorithmSync)]
pub(crate) struct AlgorithmSyncDto<'a> {
    /// Its switch is on.
    desired: bool,
    /// The pod the runtime reports for it; null when there is none.
    pod: Option<&'a str>,
    /// That pod's phase; null when there is no pod.
    #[schema(
        value_type = Option<String>,
        pattern = "^(Pending|Running|Succeeded|Failed|Unknown|Terminating)$"
    )]
    phase: Option<&'static str>,
    /// synced: what runs is what should; pending: on its way (to be created, deleted or
    /// restarted, or starting); failing: its last operation failed and waits for its retry, or
    /// the client breaks the policy (see error); terminating: its pod is being deleted.
    #[schema(value_type = String, pattern = "^(synced|pending|failing|terminating)$")]
    state: &'static str,
    /// Why it is failing; null otherwise.
    error: Option<&'a str>,
    /// Failures in a row of the pod's current operation; 0 when nothing failed.
    #[schema(minimum = 0)]
    attempts: u32,
    /// When the failed operation is tried again; null when nothing waits.
    #[schema(format = DateTime)]
    next_retry_at: Option<String>,
}

impl<'a> From<&'a AlgorithmSync> for AlgorithmSyncDto<'a> {
    fn from(sync: &'a AlgorithmSync) -> Self {
        AlgorithmSyncDto {
            desired: sync.desired,
            pod: sync.pod.as_ref().map(|p| p.as_str()),
            phase: sync.phase.map(|p| p.as_str()),
            state: sync.state.as_str(),
            error: sync.error.as_deref(),
            attempts: sync.attempts,
            next_retry_at: sync.next_retry_at.map(timestamp),
        }
    }
}

/// A client's sync state: a summary and each algorithm's.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClientSync)]
pub(crate) struct SyncDto<'a> {
    /// synced: every algorithm is; progressing: nothing fails, something is on its way;
    /// degraded: something fails (a human may be needed).
    #[schema(value_type = String, pattern = "^(synced|progressing|degraded)$")]
    summary: &'static str,
    /// Each algorithm of the catalogue, by name.
    #[schema(value_type = std::collections::BTreeMap<String, AlgorithmSyncDto>)]
    algorithms: Algorithms<'a>,
}

/// Algorithms in catalogue order (the order `status` lists them), as a JSON object.
#[derive(Debug)]
struct Algorithms<'a>(&'a [AlgorithmSync]);

impl Serialize for Algorithms<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for sync in self.0 {
            map.serialize_entry(sync.algorithm.as_str(), &AlgorithmSyncDto::from(sync))?;
        }
        map.end()
    }
}

impl<'a> From<&'a ClientSync> for SyncDto<'a> {
    fn from(sync: &'a ClientSync) -> Self {
        SyncDto {
            summary: sync.summary.as_str(),
            algorithms: Algorithms(&sync.algorithms),
        }
    }
}

/// A client with its switches and its sync state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClientWithSync)]
pub(crate) struct SyncedClientDto<'a> {
    #[serde(flatten)]
    client: ClientDto<'a>,
    /// Null when the pod runtime could not say which pods run (the message says so).
    sync: Option<SyncDto<'a>>,
}

impl<'a> SyncedClientDto<'a> {
    /// The client and its sync state, with the message to send when the state is unknown.
    pub(crate) fn of(
        client: &'a Client,
        catalogue: &'a Catalogue,
        sync: &'a SyncView,
    ) -> (Self, Option<&'static str>) {
        let (sync, message) = match sync {
            SyncView::Known(sync) => (Some(SyncDto::from(sync)), None),
            SyncView::Unknown(_) => (None, Some("sync state unknown: pod runtime unavailable")),
        };
        let dto = SyncedClientDto {
            client: ClientDto::new(client, catalogue),
            sync,
        };
        (dto, message)
    }
}

/// A client in a list: with its sync state when the list is filtered by state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ListedClient)]
pub(crate) struct ListedClientDto<'a> {
    #[serde(flatten)]
    client: ClientDto<'a>,
    /// Only in a list filtered by `state`.
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<SyncDto<'a>>,
}

impl<'a> ListedClientDto<'a> {
    /// `client` in a list that is not filtered by state.
    pub(crate) fn new(client: &'a Client, catalogue: &'a Catalogue) -> Self {
        ListedClientDto {
            client: ClientDto::new(client, catalogue),
            sync: None,
        }
    }
}

impl<'a> PageDto<'a> {
    /// A page filtered by state, each client with its sync state.
    pub(crate) fn with_sync(page: &'a SyncPage, catalogue: &'a Catalogue) -> Self {
        PageDto {
            items: page
                .items
                .iter()
                .map(|(client, sync)| ListedClientDto {
                    client: ClientDto::new(client, catalogue),
                    sync: Some(SyncDto::from(sync)),
                })
                .collect(),
            unusable: page.unusable.iter().map(UnusableDto::from).collect(),
            next: page.next.map(|id| id.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use alsy_domain::{
        Algorithm, ClientId, ClientSpec, ClientSpecInput, ObservedPod, PodName, PodPhase,
    };
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn a_client_carries_its_sync_state_after_its_fields_algorithms_in_catalogue_order() {
        let client = Client {
            id: ClientId::new(1).unwrap(),
            spec: ClientSpec::parse(ClientSpecInput {
                name: "Jimbo".into(),
                version: 1,
                image: "algo:1".into(),
                cpu: "1".into(),
                mem: "1Gi".into(),
                priority: 0.5,
            })
            .unwrap(),
            status: [(Algorithm::named("VWAP"), true)].into_iter().collect(),
            need_restart: false,
            spawned_at: None,
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1),
        };
        let pods = [ObservedPod::new(
            PodName::parse("vwap-1").unwrap(),
            PodPhase::Running,
        )];
        let catalogue = Catalogue::default();
        let view = SyncView::Known(ClientSync::of(&client, &catalogue, None, &pods, &[]));
        let (dto, message) = SyncedClientDto::of(&client, &catalogue, &view);
        assert_eq!(message, None);
        let text = serde_json::to_string(&dto).unwrap();
        assert!(text.contains(r#""status":{"VWAP":true,"TWAP":false,"HFT":false},"sync":{"summary":"synced","algorithms":{"VWAP":"#), "{text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["sync"]["algorithms"]["VWAP"],
            json!({"desired": true, "pod": "vwap-1", "phase": "Running", "state": "synced",
                   "error": null, "attempts": 0, "next_retry_at": null})
        );
        assert_eq!(
            value["sync"]["algorithms"]["HFT"],
            json!({"desired": false, "pod": null, "phase": null, "state": "synced",
                   "error": null, "attempts": 0, "next_retry_at": null})
        );
    }
}
