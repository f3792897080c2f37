-- Clients and their algorithm switches (README.md, "Storage: PostgreSQL"). A status row is created
-- in the same transaction as its client and dies with it.
CREATE TABLE clients (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    version integer NOT NULL,
    image text NOT NULL,
    cpu text NOT NULL,
    mem text NOT NULL,
    priority double precision NOT NULL,
    need_restart boolean NOT NULL DEFAULT false,
    spawned_at timestamptz NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE algorithm_status (
    id bigserial PRIMARY KEY,
    client_id bigint NOT NULL UNIQUE REFERENCES clients (id) ON DELETE CASCADE,
    vwap boolean NOT NULL DEFAULT false,
    twap boolean NOT NULL DEFAULT false,
    hft boolean NOT NULL DEFAULT false
);
