//! The SQL the PostgreSQL adapter runs (`adapters-postgres/src/queries.rs`, as diesel renders
//! it), restated for pgbench and psql so that PostgreSQL's own ceiling is measured on the same
//! statements. Keep in step with the adapter.

/// `PUT /api/v1/status/{id}` → `queries::set_status`: one statement of two `UPDATE …
/// RETURNING`, the client row first, the switches merged into the stored jsonb from the JSON text
/// the adapter binds. (The pool's check-out `SELECT 1` is alsy's own cost and is left out.)
/// pgbench prepends `\set id random(first, last)`.
pub const PGBENCH_WRITE: &str = r#"
\set vwap random(0, 1)
\set twap random(0, 1)
\set hft random(0, 1)
WITH c AS (UPDATE clients SET need_restart = need_restart OR false, updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond') WHERE id = :id RETURNING id, name, version, image, cpu, mem, priority, need_restart, spawned_at, created_at, updated_at), s AS (UPDATE algorithm_status SET switches = switches || ('{"VWAP":' || (:vwap = 1) || ',"TWAP":' || (:twap = 1) || ',"HFT":' || (:hft = 1) || '}')::jsonb WHERE client_id = (SELECT id FROM c) RETURNING client_id, switches) SELECT c.*, s.switches FROM c JOIN s ON s.client_id = c.id;
"#;

/// `GET /api/v1/clients/{id}` → `queries::find`: the client joined with its status, `first()`.
pub const PGBENCH_READ: &str = r"
SELECT clients.id, clients.name, clients.version, clients.image, clients.cpu, clients.mem, clients.priority, clients.need_restart, clients.spawned_at, clients.created_at, clients.updated_at, algorithm_status.switches FROM (clients INNER JOIN algorithm_status ON (algorithm_status.client_id = clients.id)) WHERE (clients.id = :id) LIMIT 1;
";

/// The reconciler's desired state → `queries::everything`: every client with its status.
pub const DESIRED_STATE: &str = "SELECT clients.id, clients.name, clients.version, clients.image, clients.cpu, clients.mem, clients.priority, clients.need_restart, clients.spawned_at, clients.created_at, clients.updated_at, algorithm_status.switches FROM (clients INNER JOIN algorithm_status ON (algorithm_status.client_id = clients.id)) ORDER BY clients.id ASC";
