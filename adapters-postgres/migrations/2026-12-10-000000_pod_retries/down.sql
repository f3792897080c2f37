DROP TABLE pod_retries;
