//! The audit trail: one INFO line per successful write, saying who (the token's name), what
//! (the action, the client, the fields written) and under which request id.
//!
//! A handler knows what it changed but not who asked; the exchange knows who asked. So the
//! handler attaches an [`Audit`] to its response and the exchange writes the line.

use alsy_domain::{AlgorithmStatus, Catalogue, ClientId};
use warp::reply::Response;

/// What a write did, carried from its handler to the exchange in the response's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Audit {
    /// `client created`, `client updated`, `client deleted`, `status updated`, `sync requested`.
    pub action: &'static str,
    /// The client written, if the write is about one.
    pub client_id: Option<i64>,
    /// The fields written (never secret values: a client has none, and switches are booleans).
    pub changed: String,
}

impl Audit {
    /// A client's spec fields: a create or an update writes all of them.
    pub const SPEC_FIELDS: &'static str = "name,version,image,cpu,mem,priority";

    /// A write to one client.
    pub fn client(action: &'static str, id: ClientId, changed: String) -> Audit {
        Audit {
            action,
            client_id: Some(id.get()),
            changed,
        }
    }

    /// `POST /api/v1/sync`: it changes no data, but it acts on the cluster.
    pub fn sync() -> Audit {
        Audit {
            action: "sync requested",
            client_id: None,
            changed: String::new(),
        }
    }

    /// The switches as written, in catalogue order: `VWAP=on,TWAP=off,HFT=on`.
    pub fn switches(status: &AlgorithmStatus, catalogue: &Catalogue) -> String {
        catalogue
            .algorithms()
            .iter()
            .map(|a| format!("{a}={}", if status.is_on(*a) { "on" } else { "off" }))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `changed` plus the restart mark, when the write set it.
    pub fn restart_marked(changed: String, need_restart: bool) -> String {
        if need_restart {
            format!("{changed},need_restart")
        } else {
            changed
        }
    }

    /// Puts the audit into `response` for the exchange to log.
    pub fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}
