-- Whether any pod of the client has a retry schedule in pod_retries, so that a client's read
-- looks the schedules up only then (README.md, "Retries and sync state"). The replica holding the
-- reconcile lock keeps it, in the transaction that writes the schedules.
ALTER TABLE algorithm_status ADD COLUMN has_retries boolean NOT NULL DEFAULT false;

UPDATE algorithm_status s SET has_retries = true
WHERE EXISTS (SELECT 1 FROM pod_retries r WHERE r.client_id = s.client_id);
