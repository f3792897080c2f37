//! The SQL of each repository operation, on one connection. Writes of more than one statement
//! run in one transaction; the repository adds timeouts and error mapping around these.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use alsy_domain::{AlgorithmStatus, ClientId, ClientSpec};

use crate::retries::{self, RetryRow};
use crate::rows::{ClientRow, Joined, SpecColumns, StatusRow};
use crate::schema::{algorithm_status, clients, pod_retries};
use crate::switches;

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

/// One client with its status and its pods' retry schedules; `None` if the client does not
/// exist. The schedules are looked up, in a second statement, only when the status row says
/// there are some (`has_retries`, which [`crate::retries::save`] keeps). Nearly every read is of
/// a client with none, and for those the lookup in the same statement (an `ARRAY(SELECT …)` of
/// `row_to_json` texts) cost PostgreSQL 20,800 instructions of 122,400, with `pod_retries` empty:
/// it opens and scans two more relations (`bench/ab/pg_instructions.py`, `read-array` against
/// `read-main`). The two statements see two snapshots; a schedule saved or cleared between them
/// is no different from one saved or cleared just after the read.
pub(crate) async fn find_with_retries(
    conn: &mut AsyncPgConnection,
    id: ClientId,
) -> QueryResult<Option<(Joined, Vec<RetryRow>)>> {
    let Some((client, has_retries)) = FindQuery { id: id.get() }
        .get_result::<(Joined, bool)>(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let retries = if has_retries {
        retries::load(conn, Some(id)).await?
    } else {
        Vec::new()
    };
    Ok(Some((client, retries)))
}

/// The first statement of [`find_with_retries`], written out. diesel-async builds a query's text
/// on every call, even when it runs the cached prepared statement: for the client read, as
/// diesel's query builder wrote it, that was 29,000 instructions of 134,000 (callgrind,
/// `bench/ab/instructions.py`). Written out, the text is one copied string. The columns are in
/// the order of the row structs' fields, which [`diesel::Query::SqlType`] is derived from.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct FindQuery {
    id: i64,
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for FindQuery {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql(
            "SELECT c.id, c.name, c.version, c.image, c.cpu, c.mem, c.priority, c.need_restart, \
             c.spawned_at, c.created_at, c.updated_at, s.switches, s.has_retries \
             FROM clients c JOIN algorithm_status s ON s.client_id = c.id WHERE c.id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.id)
    }
}

impl diesel::query_builder::Query for FindQuery {
    type SqlType = (
        diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<Joined, diesel::pg::Pg>>,
        Bool,
    );
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
            .values((
                algorithm_status::client_id.eq(client.id),
                // Schedules can precede their client: a managed pod that already had the new
                // client's name (left by an earlier database) and could not be deleted.
                algorithm_status::has_retries.eq(diesel::dsl::exists(
                    pod_retries::table.filter(pod_retries::client_id.eq(client.id)),
                )),
            ))
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

/// Sets the given switches and bumps `updated_at` (`mark` as in [`update`]) in ONE statement.
/// Hand-written with a static query id so diesel caches its prepared statement — diesel never
/// caches an `UpdateStatement` or a `sql_query` — which makes the hottest write one round trip
/// instead of five (BEGIN, two re-parsed UPDATEs, COMMIT).
///
/// The statement is the client's `UPDATE … RETURNING` with the status row's `UPDATE` in a `WITH`
/// that nothing reads. PostgreSQL runs such a sub-statement after the main one has finished
/// (`ExecPostprocessPlan`), so the client row is locked first, then its status row: the order of
/// `update` and `delete`, so a status write cannot deadlock with them. PostgreSQL's manual calls
/// the order of a `WITH`'s sub-statements unpredictable; the suite pins the order this server
/// keeps (`tests/tests/it/postgres_faults.rs`, `a_status_write_locks_the_client_row_before_its_status_row`).
/// The status row is found by its `client_id`: a client that does not exist has none, and the
/// statement changes nothing and returns no row.
///
/// The switches are merged into the stored object (`||`): a switch of an algorithm not in the
/// write, one dropped from the catalogue, keeps its stored value. Only the client's columns come
/// back, in [`ClientRow`]'s order, not the merged object. Against the release before the
/// catalogue (its two updates joined through a data-dependent `WITH`, three booleans sent back)
/// this costs PostgreSQL 12 % fewer instructions per statement (`bench/ab/pg_instructions.py`;
/// bench/RESULTS.md, "6. Issue 12: before and after the catalogue").
#[derive(Debug, Clone, diesel::query_builder::QueryId)]
struct SetStatusQuery {
    id: i64,
    mark: bool,
    switches: String,
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for SetStatusQuery {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool as B, Text};
        out.push_sql("WITH s AS (UPDATE algorithm_status SET switches = switches || ");
        out.push_bind_param::<Text, _>(&self.switches)?;
        out.push_sql("::jsonb WHERE client_id = ");
        out.push_bind_param::<BigInt, _>(&self.id)?;
        out.push_sql(") UPDATE clients SET need_restart = need_restart OR ");
        out.push_bind_param::<B, _>(&self.mark)?;
        out.push_sql(
            ", updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond') \
             WHERE id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.id)?;
        out.push_sql(
            " RETURNING id, name, version, image, cpu, mem, priority, need_restart, spawned_at, \
             created_at, updated_at",
        );
        Ok(())
    }
}

impl diesel::query_builder::Query for SetStatusQuery {
    type SqlType = diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<ClientRow, diesel::pg::Pg>>;
}

/// The client's row after [`SetStatusQuery`]; `None` if it does not exist. A data-modifying
/// `WITH` runs whether or not the statement reads it, so the status row is updated too.
pub(crate) async fn set_status(
    conn: &mut AsyncPgConnection,
    id: ClientId,
    status: &AlgorithmStatus,
    mark: bool,
) -> QueryResult<Option<ClientRow>> {
    SetStatusQuery {
        id: id.get(),
        mark,
        switches: switches::json(status.switches()),
    }
    .get_result::<ClientRow>(conn)
    .await
    .optional()
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

/// Acknowledges many clients in two statements: `spawned_at = at` for `plain` ids, and for
/// `restarts` (id, `updated_at` read) pairs also `need_restart = false` where `updated_at` still
/// matches. Returns the ids whose rows changed.
pub(crate) async fn acknowledge_all(
    conn: &mut AsyncPgConnection,
    plain: &[i64],
    restarts: &[(i64, DateTime<Utc>)],
    at: DateTime<Utc>,
) -> QueryResult<Vec<i64>> {
    let mut changed = Vec::with_capacity(plain.len() + restarts.len());
    if !plain.is_empty() {
        let ids: Vec<i64> = diesel::update(clients::table.filter(clients::id.eq_any(plain)))
            .set(clients::spawned_at.eq(Some(at)))
            .returning(clients::id)
            .get_results(conn)
            .await?;
        changed.extend(ids);
    }
    if !restarts.is_empty() {
        let (ids, seen): (Vec<i64>, Vec<DateTime<Utc>>) = restarts.iter().copied().unzip();
        let rows: Vec<ChangedId> = diesel::sql_query(
            "UPDATE clients SET need_restart = false, spawned_at = $1 \
             FROM unnest($2::bigint[], $3::timestamptz[]) AS seen(id, updated_at) \
             WHERE clients.id = seen.id AND clients.updated_at = seen.updated_at \
             RETURNING clients.id",
        )
        .bind::<Timestamptz, _>(at)
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Timestamptz>, _>(seen)
        .load(conn)
        .await?;
        changed.extend(rows.into_iter().map(|row| row.id));
    }
    Ok(changed)
}

#[derive(QueryableByName)]
struct ChangedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}
