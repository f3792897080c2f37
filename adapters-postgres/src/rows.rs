//! Rows as diesel reads and writes them, and their conversion to and from the domain. Stored
//! values are parsed back into domain types; a row that no longer parses (a rule tightened since,
//! a hand edit, a migration) is an [`UnusableClient`] that affects only itself, never a panic. Times are `timestamptz` ↔ `SystemTime` through chrono, at PostgreSQL's
//! microsecond precision, so an `updated_at` read back is exactly the stored compare-and-set token.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use alsy_app::RepoError;
use alsy_domain::{AlgorithmStatus, Client, ClientId, ClientSpec, ClientSpecInput, UnusableClient};

use crate::schema::{algorithm_status, clients};
use crate::switches::StoredSwitches;

/// A `clients` row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = clients, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ClientRow {
    pub(crate) id: i64,
    name: String,
    version: i32,
    image: String,
    cpu: String,
    mem: String,
    priority: f64,
    need_restart: bool,
    spawned_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The switches of an `algorithm_status` row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = algorithm_status, check_for_backend(diesel::pg::Pg))]
pub(crate) struct StatusRow {
    switches: StoredSwitches,
}

/// A client's own columns, as `create` inserts them and `update` sets them.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = clients)]
pub(crate) struct SpecColumns<'a> {
    name: &'a str,
    version: i32,
    image: &'a str,
    cpu: &'a str,
    mem: &'a str,
    priority: f64,
}

impl<'a> From<&'a ClientSpec> for SpecColumns<'a> {
    fn from(spec: &'a ClientSpec) -> Self {
        SpecColumns {
            name: spec.name.as_str(),
            version: spec.version.get(),
            image: spec.image.as_str(),
            cpu: spec.cpu.as_str(),
            mem: spec.mem.as_str(),
            priority: spec.priority.get(),
        }
    }
}

/// A client row joined with its status row.
pub(crate) type Joined = (ClientRow, StatusRow);

/// Turns a stored row back into a domain client: [`RepoError::Unusable`] if its values no longer
/// parse, `Internal` if even its id is not one (only a hand edit can do that).
pub(crate) fn client((row, status): Joined) -> Result<Client, RepoError> {
    client_with(row, status.switches.0)
}

/// [`client`] from a `clients` row and its switches, read or just written.
pub(crate) fn client_with(
    row: ClientRow,
    status: Result<AlgorithmStatus, String>,
) -> Result<Client, RepoError> {
    let id = ClientId::new(row.id).ok_or_else(|| {
        RepoError::Internal(format!("stored client id {} is not positive", row.id))
    })?;
    let unusable = |reason: String| RepoError::Unusable(UnusableClient { id, reason });
    let spec = ClientSpec::parse(ClientSpecInput {
        name: row.name,
        version: row.version.into(),
        image: row.image,
        cpu: row.cpu,
        mem: row.mem,
        priority: row.priority,
    })
    .map_err(|error| unusable(error.to_string()))?;
    let status = status.map_err(unusable)?;
    Ok(Client {
        id,
        spec,
        status,
        need_restart: row.need_restart,
        spawned_at: row.spawned_at.map(SystemTime::from),
        created_at: row.created_at.into(),
        updated_at: row.updated_at.into(),
    })
}

/// A time as PostgreSQL's `timestamptz` takes it. Sub-microsecond digits are dropped by the
/// database; a time beyond chrono's range (hundreds of millennia away) is an internal error.
pub(crate) fn db_time(time: SystemTime) -> Result<DateTime<Utc>, RepoError> {
    let out_of_range = || RepoError::Internal(format!("time {time:?} is out of range"));
    let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (i64::try_from(after.as_secs()).ok(), after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).ok().map(|s| -s);
            match before.subsec_nanos() {
                0 => (secs, 0),
                n => (secs.map(|s| s - 1), 1_000_000_000 - n),
            }
        }
    };
    secs.and_then(|secs| DateTime::from_timestamp(secs, nanos))
        .ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn row(name: &str) -> Joined {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        (
            ClientRow {
                id: 7,
                name: name.into(),
                version: 3,
                image: "ghcr.io/acme/vwap:1.0".into(),
                cpu: "500m".into(),
                mem: "512Mi".into(),
                priority: 0.5,
                need_restart: true,
                spawned_at: None,
                created_at: at,
                updated_at: at,
            },
            StatusRow {
                switches: StoredSwitches(crate::switches::parse(
                    br#"{"VWAP": true, "TWAP": false, "HFT": true}"#,
                )),
            },
        )
    }

    #[test]
    fn a_stored_row_becomes_a_client() {
        let client = client(row("Jimbo")).unwrap();
        assert_eq!(client.id.get(), 7);
        assert_eq!(client.spec.name.as_str(), "Jimbo");
        assert_eq!(client.spec.version.get(), 3);
        let on: Vec<String> = client.status.enabled().map(|a| a.to_string()).collect();
        assert_eq!(on, ["HFT", "VWAP"]);
        assert!(client.need_restart);
        assert_eq!(
            client.updated_at,
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000)
        );
    }

    #[test]
    fn a_stored_row_that_no_longer_parses_is_unusable_not_internal() {
        let error = client(row("  ")).unwrap_err();
        assert_eq!(
            error,
            RepoError::Unusable(UnusableClient {
                id: ClientId::new(7).unwrap(),
                reason: "name: must not be blank".into()
            })
        );
    }

    #[test]
    fn times_round_trip_through_chrono() {
        for time in [
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000),
            UNIX_EPOCH - Duration::new(5, 250_000_000),
            UNIX_EPOCH,
        ] {
            assert_eq!(SystemTime::from(db_time(time).unwrap()), time);
        }
    }
}
