DROP TABLE algorithm_status;
DROP TABLE clients;
