#!/usr/bin/env python3
"""Instructions PostgreSQL executes per statement, counted by callgrind: the status write and the
client read as alsy sends them, before the catalogue (three boolean columns) and after (one jsonb
object), and variants of each (bench/RESULTS.md, "6. Issue 12: before and after the catalogue").

    bench/ab/pg_instructions.py [--retries N] [VARIANT ...]

Makes a throwaway cluster with initdb in a temporary directory (run as root, it runs PostgreSQL as
the `postgres` user), seeds 10,000 clients into both layouts, then for each variant starts the
postmaster under `valgrind --tool=callgrind --trace-children=yes` and runs the statement through
`pgbench -M prepared` (extended protocol, one prepared statement, parameters bound per call, as
diesel sends them; results in text where alsy asks for binary) 200 and then 1,200 times, each
from a fresh copy of the seeded cluster. The backend's instructions for 1,200 minus those for
200, over 1,000, are the statement's: start-up, connection and the first executions cancel out.
Counts do not depend on what else the machine runs. `--retries N` puts N schedules in
`pod_retries` (default 0, as in the API bench).

Needs valgrind and PostgreSQL's server binaries (initdb, postgres, pg_ctl, pgbench) in
/usr/lib/postgresql/*/bin or on PATH.
"""

import argparse
import glob
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

CLIENT = ("id, name, version, image, cpu, mem, priority, need_restart, spawned_at, created_at, "
          "updated_at")
C = ", ".join("c." + col.strip() for col in CLIENT.split(","))
RETRY = ("r.pod, r.client_id, r.operation, r.intent, r.attempts, r.error, r.rejected, "
         "r.failed_at, r.next_retry_at")
BUMP = ("UPDATE clients SET need_restart = need_restart OR false, updated_at = "
        "greatest(clock_timestamp(), updated_at + interval '1 microsecond') WHERE id = :id "
        f"RETURNING {CLIENT}")

# What each variant runs; `old_*` on the three-column table, the rest on the jsonb one.
VARIANTS = {
    # The status write before the catalogue (48a8ba5).
    "write-old": f"WITH c AS ({BUMP}), s AS (UPDATE status_old SET vwap = :a, twap = :b, "
                 f"hft = :c WHERE client_id = (SELECT id FROM c) RETURNING client_id, vwap, twap, "
                 f"hft) SELECT {C}, s.vwap, s.twap, s.hft FROM c JOIN s ON s.client_id = c.id",
    # After the catalogue until stop 13: the merged object sent back, the updates joined.
    "write-merged-back": f"WITH c AS ({BUMP}), s AS (UPDATE status_new SET switches = switches "
                         f"|| :sw::jsonb WHERE client_id = (SELECT id FROM c) RETURNING "
                         f"client_id, switches) SELECT {C}, s.switches FROM c JOIN s ON "
                         f"s.client_id = c.id",
    # The merged object through a scalar subquery instead of the join.
    "write-subquery": f"WITH c AS ({BUMP}), s AS (UPDATE status_new SET switches = switches || "
                      f":sw::jsonb WHERE client_id = (SELECT id FROM c) RETURNING switches) "
                      f"SELECT {C}, (SELECT switches FROM s) FROM c",
    # Stop 13: only the client's columns come back.
    "write-cte": f"WITH c AS ({BUMP}), s AS (UPDATE status_new SET switches = switches || "
                 f":sw::jsonb WHERE client_id = (SELECT id FROM c)) SELECT {CLIENT} FROM c",
    # Main: the client's UPDATE is the statement, the status row's an unread WITH (it runs after).
    "write-main": f"WITH s AS (UPDATE status_new SET switches = switches || :sw::jsonb "
                  f"WHERE client_id = :id) {BUMP}",
    # The client read before the catalogue.
    "read-old": f"SELECT {C}, s.vwap, s.twap, s.hft FROM clients c JOIN status_old s ON "
                f"s.client_id = c.id WHERE c.id = :id",
    # The catalogue alone: the jsonb object instead of three booleans.
    "read-catalogue": f"SELECT {C}, s.switches FROM clients c JOIN status_new s ON "
                      f"s.client_id = c.id WHERE c.id = :id",
    # Stop 13: with the pods' retry schedules (issue 10's sync state) as a LEFT JOIN.
    "read-join": f"SELECT {C}, s.switches, {RETRY} FROM clients c JOIN status_new s ON "
                 f"s.client_id = c.id LEFT JOIN pod_retries r ON r.client_id = c.id "
                 f"WHERE c.id = :id",
    # Stop 14: the schedules as one array of row_to_json texts.
    "read-array": f"SELECT {C}, s.switches, ARRAY(SELECT row_to_json(r)::text FROM pod_retries r "
                  f"WHERE r.client_id = c.id) FROM clients c JOIN status_new s ON "
                  f"s.client_id = c.id WHERE c.id = :id",
    # Main: the status row's has_retries says whether to look the schedules up; for a client
    # without any (every client here) this is the whole read.
    "read-main": f"SELECT {C}, s.switches, s.has_retries FROM clients c JOIN status_new s ON "
                 f"s.client_id = c.id WHERE c.id = :id",
}

SEED = """
CREATE TABLE clients (
    id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, version integer NOT NULL,
    image text NOT NULL, cpu text NOT NULL, mem text NOT NULL, priority double precision NOT NULL,
    need_restart boolean NOT NULL DEFAULT false, spawned_at timestamptz NULL,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE status_old (id bigserial PRIMARY KEY,
    client_id bigint NOT NULL UNIQUE REFERENCES clients (id) ON DELETE CASCADE,
    vwap boolean NOT NULL DEFAULT false, twap boolean NOT NULL DEFAULT false,
    hft boolean NOT NULL DEFAULT false);
CREATE TABLE status_new (id bigserial PRIMARY KEY,
    client_id bigint NOT NULL UNIQUE REFERENCES clients (id) ON DELETE CASCADE,
    switches jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT status_new_switches_is_an_object CHECK (jsonb_typeof(switches) = 'object'),
    has_retries boolean NOT NULL DEFAULT false);
CREATE TABLE pod_retries (pod text PRIMARY KEY, client_id bigint NULL, operation text NOT NULL,
    intent bigint NOT NULL, attempts integer NOT NULL, error text NOT NULL,
    rejected boolean NOT NULL, failed_at timestamptz NOT NULL, next_retry_at timestamptz NOT NULL);
CREATE INDEX pod_retries_client_id ON pod_retries (client_id);
INSERT INTO clients (name, version, image, cpu, mem, priority)
    SELECT 'client-' || g, 1, 'registry.internal:5000/algos/vwap:1.2.3', '500m', '512Mi', 1.5
    FROM generate_series(1, 10000) g;
INSERT INTO status_old (client_id, vwap, twap, hft)
    SELECT id, random() < 0.5, random() < 0.5, random() < 0.5 FROM clients;
INSERT INTO status_new (client_id, switches)
    SELECT client_id, jsonb_build_object('VWAP', vwap, 'TWAP', twap, 'HFT', hft) FROM status_old;
INSERT INTO pod_retries
    SELECT 'vwap-' || g, g, 'create', 1, 2, 'refused', false, now(), now()
    FROM generate_series(1, 10000, 10000 / greatest(:retries, 1)) g LIMIT :retries;
"""


def server_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        sys.exit(f"{name} not found")
    return path


def as_postgres(argv, **kw):
    """Runs argv as the postgres user when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    return subprocess.run(argv, check=True, **kw)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--retries", type=int, default=0)
    args = parser.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; known: {list(VARIANTS)}")

    work = tempfile.mkdtemp(prefix="alsy-pg-instructions-")
    if os.geteuid() == 0:
        os.chown(work, pwd.getpwnam("postgres").pw_uid, -1)
    seeded, data = os.path.join(work, "seeded"), os.path.join(work, "data")
    port = "5499"

    def start(datadir, valgrind_out=None):
        argv = [server_bin("postgres"), "-D", datadir, "-p", port, "-k", work]
        if valgrind_out:
            argv = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                    f"--callgrind-out-file={valgrind_out}"] + argv
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if subprocess.run(["pg_isready", "-q", "-h", work, "-p", port]).returncode == 0:
                return server
            time.sleep(0.2)
        sys.exit("the throwaway PostgreSQL did not start")

    def stop(datadir, server):
        as_postgres([server_bin("pg_ctl"), "-D", datadir, "stop", "-m", "fast", "-w"],
                    stdout=subprocess.DEVNULL)
        server.wait(timeout=120)

    try:
        as_postgres([server_bin("initdb"), "-D", seeded, "-U", "postgres", "-A", "trust"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = start(seeded)
        psql = ["psql", "-qX", "-v", "ON_ERROR_STOP=1", "-h", work, "-p", port, "-U", "postgres"]
        subprocess.run(psql + ["-c", "CREATE DATABASE bench"], check=True)
        subprocess.run(psql + ["-d", "bench", "-v", f"retries={args.retries}"], input=SEED,
                       text=True, check=True)
        subprocess.run(psql + ["-d", "bench", "-c", "VACUUM ANALYZE"], check=True)
        stop(seeded, server)

        print(f"{'variant':<20} {'instructions per statement':>28}")
        for variant in args.variants:
            script = os.path.join(work, f"{variant}.sql")
            with open(script, "w") as f:
                f.write("\\set id random(1, 10000)\n" + VARIANTS[variant] + ";\n")
            totals = {}
            for count in (200, 1200):
                shutil.rmtree(data, ignore_errors=True)
                as_postgres(["cp", "-a", seeded, data])
                out_dir = os.path.join(work, f"cg-{variant}-{count}")
                os.makedirs(out_dir)
                if os.geteuid() == 0:
                    os.chown(out_dir, pwd.getpwnam("postgres").pw_uid, -1)
                server = start(data, os.path.join(out_dir, "callgrind.%p"))
                subprocess.run(
                    ["pgbench", "-h", work, "-p", port, "-U", "postgres", "-n", "-M", "prepared",
                     "-c", "1", "-t", str(count), "-D", 'sw={"VWAP":true,"TWAP":false,"HFT":true}',
                     "-D", "a=true", "-D", "b=false", "-D", "c=true", "-f", script, "bench"],
                    check=True, stdout=subprocess.DEVNULL)
                stop(data, server)
                # The backend that served pgbench is the one process that ran a portal.
                backend = [p for p in glob.glob(os.path.join(out_dir, "callgrind.*"))
                           if "PortalRun" in open(p, errors="replace").read()]
                if len(backend) != 1:
                    sys.exit(f"expected one backend profile in {out_dir}, found {len(backend)}")
                text = open(backend[0], errors="replace").read()
                totals[count] = int(re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M).group(1))
            print(f"{variant:<20} {(totals[1200] - totals[200]) / 1000:>28,.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
