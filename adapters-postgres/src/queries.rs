//! The SQL of each repository operation, on one connection. Writes of more than one statement
//! run in one transaction; the repository adds timeouts and error mapping around these.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use alsy_domain::{AlgorithmStatus, ClientId, ClientSpec};

use crate::rows::{ClientRow, Joined, SpecColumns, StatusColumns, StatusRow};
use crate::schema::{algorithm_status, clients};

/// The `updated_at` of an API write: now, but strictly after the previous value even when two
/// writes land in the same microsecond (or the clock steps back), so the reconciler's
/// compare-and-set always sees that a write happened. Under concurrent writes the second waits
/// for the first's row lock and then evaluates this against the row the first committed.
fn next_write_time() -> diesel::expression::SqlLiteral<Timestamptz> {
    sql::<Timestamptz>("greatest(clock_timestamp(), clients.updated_at + interval '1 microsecond')")
}

/// One client with its status.
pub(crate) async fn find(
    conn: &mut AsyncPgConnection,
    id: ClientId,
) -> QueryResult<Option<Joined>> {
    clients::table
        .inner_join(algorithm_status::table)
        .filter(clients::id.eq(id.get()))
        .select(<Joined>::as_select())
        .first(conn)
        .await
        .optional()
}

/// Up to `limit` clients with ids above `after`, in id order.
pub(crate) async fn page(
    conn: &mut AsyncPgConnection,
    after: Option<ClientId>,
    limit: i64,
) -> QueryResult<Vec<Joined>> {
    clients::table
        .inner_join(algorithm_status::table)
        .filter(clients::id.gt(after.map_or(0, ClientId::get)))
        .order(clients::id.asc())
        .limit(limit)
        .select(<Joined>::as_select())
        .load(conn)
        .await
}

/// Every client with its status, in id order: one statement, so one consistent snapshot.
pub(crate) async fn everything(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Joined>> {
    clients::table
        .inner_join(algorithm_status::table)
        .order(clients::id.asc())
        .select(<Joined>::as_select())
        .load(conn)
        .await
}

/// Inserts a client and its status row (every switch off) in one transaction.
pub(crate) async fn insert(conn: &mut AsyncPgConnection, spec: &ClientSpec) -> QueryResult<Joined> {
    conn.transaction(async |conn| {
        let client: ClientRow = diesel::insert_into(clients::table)
            .values(SpecColumns::from(spec))
            .returning(ClientRow::as_returning())
            .get_result(conn)
            .await?;
        let status: StatusRow = diesel::insert_into(algorithm_status::table)
            .values(algorithm_status::client_id.eq(client.id))
            .returning(StatusRow::as_returning())
            .get_result(conn)
            .await?;
        Ok((client, status))
    })
    .await
}

/// Replaces a client's spec; `mark` sets the restart mark, never clears it. `None` if missing.
pub(crate) async fn update(
    conn: &mut AsyncPgConnection,
    id: ClientId,
    spec: &ClientSpec,
    mark: bool,
) -> QueryResult<Option<Joined>> {
    conn.transaction(async |conn| {
        let client: Option<ClientRow> = diesel::update(clients::table.find(id.get()))
            .set((
                SpecColumns::from(spec),
                clients::need_restart.eq(clients::need_restart.or(mark.into_sql::<Bool>())),
                clients::updated_at.eq(next_write_time()),
            ))
            .returning(ClientRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        let Some(client) = client else {
            return Ok(None);
        };
        let status: StatusRow = algorithm_status::table
            .filter(algorithm_status::client_id.eq(id.get()))
            .select(StatusRow::as_select())
            .first(conn)
            .await?;
        Ok(Some((client, status)))
    })
    .await
}

/// Sets all three switches and bumps `updated_at`; `mark` as in [`update`]. `None` if missing.
/// The client row is written (and so locked) first, in the same order as `update` and `delete`.
pub(crate) async fn set_status(
    conn: &mut AsyncPgConnection,
    id: ClientId,
    status: AlgorithmStatus,
    mark: bool,
) -> QueryResult<Option<Joined>> {
    conn.transaction(async |conn| {
        let client: Option<ClientRow> = diesel::update(clients::table.find(id.get()))
            .set((
                clients::need_restart.eq(clients::need_restart.or(mark.into_sql::<Bool>())),
                clients::updated_at.eq(next_write_time()),
            ))
            .returning(ClientRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        let Some(client) = client else {
            return Ok(None);
        };
        let status: StatusRow = diesel::update(algorithm_status::table)
            .filter(algorithm_status::client_id.eq(id.get()))
            .set(StatusColumns::from(status))
            .returning(StatusRow::as_returning())
            .get_result(conn)
            .await?;
        Ok(Some((client, status)))
    })
    .await
}

/// Deletes a client; its status row goes with it (`ON DELETE CASCADE`). Whether it existed.
pub(crate) async fn delete(conn: &mut AsyncPgConnection, id: ClientId) -> QueryResult<bool> {
    let deleted = diesel::delete(clients::table.find(id.get()))
        .execute(conn)
        .await?;
    Ok(deleted > 0)
}

/// `spawned_at = at`; with `restart_seen` also clears the mark, only if `updated_at` is still
/// that value. Whether a row changed.
pub(crate) async fn acknowledge(
    conn: &mut AsyncPgConnection,
    id: ClientId,
    restart_seen: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    let client = clients::table.find(id.get());
    let changed = match restart_seen {
        Some(seen) => {
            diesel::update(client.filter(clients::updated_at.eq(seen)))
                .set((
                    clients::need_restart.eq(false),
                    clients::spawned_at.eq(Some(at)),
                ))
                .execute(conn)
                .await?
        }
        None => {
            diesel::update(client)
                .set(clients::spawned_at.eq(Some(at)))
                .execute(conn)
                .await?
        }
    };
    Ok(changed > 0)
}
