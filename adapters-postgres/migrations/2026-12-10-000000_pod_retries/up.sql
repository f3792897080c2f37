-- The retry schedule of every pod whose last operation failed (README.md, "Retries and sync
-- state"). The replica holding the reconcile lock writes it at the end of each pass; every replica
-- reads it to answer a client's sync state. No foreign key to clients: the pods of a deleted
-- client keep their schedule until their deletion succeeds.
CREATE TABLE pod_retries (
    pod text PRIMARY KEY,
    client_id bigint NULL,
    operation text NOT NULL,
    intent bigint NOT NULL,
    attempts integer NOT NULL,
    error text NOT NULL,
    rejected boolean NOT NULL,
    failed_at timestamptz NOT NULL,
    next_retry_at timestamptz NOT NULL
);

CREATE INDEX pod_retries_client_id ON pod_retries (client_id);
