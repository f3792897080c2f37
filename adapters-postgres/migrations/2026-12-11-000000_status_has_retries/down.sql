ALTER TABLE algorithm_status DROP COLUMN has_retries;
