//! The audit trail: one INFO line per successful write, saying who (the token's name), what
//! (the action, the client, the fields written) and under which request id.
//!
//! A handler knows what it changed but not who asked; the exchange knows who asked. So the
//! handler attaches an [`Audit`] to its response and the exchange writes the line.

use std::fmt;

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
    pub changed: Changed,
}

/// The fields a write changed, written out only when the audit line is logged: at a level above
/// INFO, a status write does not pay for formatting its switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Changed {
    /// Fields by name (`name,version,…`, `client`), and `need_restart` when the write set it.
    Fields {
        names: &'static str,
        need_restart: bool,
    },
    /// A status write: the switches as written, in catalogue order (`VWAP=on,TWAP=off,HFT=on`),
    /// and `need_restart` when the write set it.
    Switches {
        status: AlgorithmStatus,
        catalogue: Catalogue,
        need_restart: bool,
    },
}

impl Changed {
    /// A client's spec fields: a create or an update writes all of them.
    pub const SPEC_FIELDS: &'static str = "name,version,image,cpu,mem,priority";

    /// Fields by name, the restart mark not set.
    pub fn fields(names: &'static str) -> Changed {
        Changed::Fields {
            names,
            need_restart: false,
        }
    }
}

impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let need_restart = match self {
            Changed::Fields {
                names,
                need_restart,
            } => {
                f.write_str(names)?;
                *need_restart
            }
            Changed::Switches {
                status,
                catalogue,
                need_restart,
            } => {
                for (i, algorithm) in catalogue.algorithms().iter().enumerate() {
                    let on = if status.is_on(*algorithm) {
                        "on"
                    } else {
                        "off"
                    };
                    write!(f, "{}{algorithm}={on}", if i > 0 { "," } else { "" })?;
                }
                *need_restart
            }
        };
        if need_restart {
            f.write_str(",need_restart")?;
        }
        Ok(())
    }
}

impl slog::Value for Changed {
    fn serialize(
        &self,
        _record: &slog::Record<'_>,
        key: slog::Key,
        serializer: &mut dyn slog::Serializer,
    ) -> slog::Result {
        serializer.emit_arguments(key, &format_args!("{self}"))
    }
}

impl Audit {
    /// A write to one client.
    pub fn client(action: &'static str, id: ClientId, changed: Changed) -> Audit {
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
            changed: Changed::fields(""),
        }
    }

    /// Puts the audit into `response` for the exchange to log.
    pub fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}
