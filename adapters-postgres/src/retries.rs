//! The `pod_retries` table: each failing pod's retry schedule, as rows and as the SQL that reads
//! and writes them. A row that no longer parses is left out of what is read (and logged by the
//! caller): at worst its pod is retried at once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use alsy_app::RepoError;
use alsy_domain::{ClientId, Intent, Operation, PodName, PodRetry};

use crate::rows::db_time;
use crate::schema::pod_retries;

/// A `pod_retries` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = pod_retries, check_for_backend(diesel::pg::Pg))]
pub(crate) struct RetryRow {
    pod: String,
    client_id: Option<i64>,
    operation: String,
    intent: i64,
    attempts: i32,
    error: String,
    rejected: bool,
    failed_at: DateTime<Utc>,
    next_retry_at: DateTime<Utc>,
}

impl RetryRow {
    /// The row of a schedule.
    pub(crate) fn of(retry: &PodRetry) -> Result<RetryRow, RepoError> {
        Ok(RetryRow {
            pod: retry.pod.to_string(),
            client_id: retry.client_id.map(ClientId::get),
            operation: retry.operation.as_str().to_owned(),
            // The intent's 64 bits, stored as PostgreSQL's signed bigint.
            intent: retry.intent.0 as i64,
            attempts: i32::try_from(retry.attempts).unwrap_or(i32::MAX),
            error: retry.error.clone(),
            rejected: retry.rejected,
            failed_at: db_time(retry.failed_at)?,
            next_retry_at: db_time(retry.next_retry_at)?,
        })
    }

    /// The schedule, or why the row is not one.
    pub(crate) fn parse(self) -> Result<PodRetry, String> {
        let pod = PodName::parse(&self.pod)
            .ok_or_else(|| format!("pod_retries row `{}`: not a pod name", self.pod))?;
        let operation = Operation::parse(&self.operation).ok_or_else(|| {
            format!(
                "pod_retries row `{}`: unknown operation `{}`",
                self.pod, self.operation
            )
        })?;
        Ok(PodRetry {
            client_id: self.client_id.and_then(ClientId::new),
            pod,
            operation,
            intent: Intent(self.intent as u64),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            error: self.error,
            rejected: self.rejected,
            failed_at: self.failed_at.into(),
            next_retry_at: self.next_retry_at.into(),
        })
    }
}

/// Every schedule, or one client's.
pub(crate) async fn load(
    conn: &mut AsyncPgConnection,
    client: Option<ClientId>,
) -> QueryResult<Vec<RetryRow>> {
    let mut query = pod_retries::table
        .select(RetryRow::as_select())
        .into_boxed();
    if let Some(client) = client {
        query = query.filter(pod_retries::client_id.eq(client.get()));
    }
    query.load(conn).await
}

/// Forgets the schedules of `cleared` and stores `changed` ones, and sets the `has_retries` of
/// their clients' status rows to whether any schedule of theirs is left, in one transaction.
pub(crate) async fn save(
    conn: &mut AsyncPgConnection,
    changed: &[RetryRow],
    cleared: &[String],
) -> QueryResult<()> {
    conn.transaction(async |conn| {
        let mut clients: Vec<i64> = changed.iter().filter_map(|row| row.client_id).collect();
        if !cleared.is_empty() {
            let owners: Vec<Option<i64>> =
                diesel::delete(pod_retries::table.filter(pod_retries::pod.eq_any(cleared)))
                    .returning(pod_retries::client_id)
                    .get_results(conn)
                    .await?;
            clients.extend(owners.into_iter().flatten());
        }
        // Nine parameters a row: PostgreSQL takes at most 65,535 in one statement.
        for rows in changed.chunks(5_000) {
            diesel::insert_into(pod_retries::table)
                .values(rows)
                .on_conflict(pod_retries::pod)
                .do_update()
                .set((
                    pod_retries::client_id.eq(excluded(pod_retries::client_id)),
                    pod_retries::operation.eq(excluded(pod_retries::operation)),
                    pod_retries::intent.eq(excluded(pod_retries::intent)),
                    pod_retries::attempts.eq(excluded(pod_retries::attempts)),
                    pod_retries::error.eq(excluded(pod_retries::error)),
                    pod_retries::rejected.eq(excluded(pod_retries::rejected)),
                    pod_retries::failed_at.eq(excluded(pod_retries::failed_at)),
                    pod_retries::next_retry_at.eq(excluded(pod_retries::next_retry_at)),
                ))
                .execute(conn)
                .await?;
        }
        if !clients.is_empty() {
            clients.sort_unstable();
            clients.dedup();
            mark_clients(conn, &clients).await?;
        }
        Ok(())
    })
    .await
}

/// Sets each of `clients`' `has_retries` to whether `pod_retries` holds a schedule of theirs,
/// writing only the rows whose flag changes. Only the replica holding the reconcile lock calls
/// this; an API write of the same status row waits for the transaction, and cannot deadlock
/// with it, as it holds no other status row.
async fn mark_clients(conn: &mut AsyncPgConnection, clients: &[i64]) -> QueryResult<usize> {
    // The rows whose flag is wrong, turned over.
    diesel::sql_query(
        "UPDATE algorithm_status s SET has_retries = NOT s.has_retries \
         FROM unnest($1::bigint[]) AS t(client_id) \
         WHERE s.client_id = t.client_id AND s.has_retries <> EXISTS \
         (SELECT 1 FROM pod_retries r WHERE r.client_id = t.client_id)",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(clients)
    .execute(conn)
    .await
}
