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

/// A `pod_retries` row; also read as the JSON object `row_to_json` makes of it (a client's read,
/// [`crate::queries::find_with_retries`]).
#[derive(Debug, Queryable, Selectable, Insertable, serde::Deserialize)]
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

    /// The row from `row_to_json`'s text, or why it is not one.
    pub(crate) fn from_json(json: &str) -> Result<RetryRow, String> {
        serde_json::from_str(json).map_err(|e| format!("pod_retries row {json}: {e}"))
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

/// Forgets the schedules of `cleared` and stores `changed` ones, in one transaction.
pub(crate) async fn save(
    conn: &mut AsyncPgConnection,
    changed: &[RetryRow],
    cleared: &[String],
) -> QueryResult<()> {
    conn.transaction(async |conn| {
        if !cleared.is_empty() {
            diesel::delete(pod_retries::table.filter(pod_retries::pod.eq_any(cleared)))
                .execute(conn)
                .await?;
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
        Ok(())
    })
    .await
}
