#!/usr/bin/env python3
"""Instructions alsy executes per request, counted by callgrind: a figure that does not depend on
what else the machine runs, unlike req/s (bench/README.md, section 1b).

    bench/ab/instructions.py ALSY_BINARY [--token] [--requests 2000] [--clients 100]

Starts ALSY_BINARY under `valgrind --tool=callgrind --instr-atstart=no` on a fresh PostgreSQL
database (fake runtime, log level warn, no reconcile pass: the API bench's settings), creates
`--clients` clients and switches them on, sends 300 requests of each kind unmeasured, then counts
`--requests` status writes (`PUT /api/v1/status/{id}`) and as many reads
(`GET /api/v1/clients/{id}`), each over one keep-alive connection, with instrumentation switched
on around them only (`callgrind_control -i on|off`). Prints instructions per request for each.
With `--token` alsy gets a tokens file and every request a bearer token. PostgreSQL's work is
not counted (another process); the Python client's neither.

Needs valgrind (callgrind_control) and a PostgreSQL that trusts the postgres user on
127.0.0.1:5432 (or ALSY_TEST_DATABASE_URL's server).
"""

import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(server_url, sql):
    subprocess.run(["psql", "-qAt", server_url, "-c", sql], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("alsy")
    parser.add_argument("--token", action="store_true")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=100)
    args = parser.parse_args()

    server = os.environ.get("ALSY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    database = f"alsy_instructions_{os.getpid()}"
    parsed = urllib.parse.urlparse(server)
    db_url = urllib.parse.urlunparse(parsed._replace(path="/" + database))
    work = tempfile.mkdtemp(prefix="alsy-instructions-")
    port = free_port()
    env = dict(os.environ)
    env.update({
        "ALSY__STORAGE__KIND": "postgres",
        "ALSY__STORAGE__URL": db_url,
        "ALSY__RUNTIME__KIND": "fake",
        "ALSY__HTTP__ADDRESS": f"127.0.0.1:{port}",
        "ALSY__LOG__LEVEL": "warn",
        "ALSY__SYNC__DEBOUNCE": "0",
        "ALSY__SYNC__INTERVAL": "24h",
    })
    headers = {"content-type": "application/json"}
    if args.token:
        minted = subprocess.run([args.alsy, "token", "bench", "write"], capture_output=True,
                                text=True, check=True).stdout
        field = lambda name: re.search(rf"^{name}:\s*(\S.*)$", minted, re.M).group(1).strip()
        tokens = os.path.join(work, "tokens")
        with open(tokens, "w") as f:
            f.write(field("line") + "\n")
        env["ALSY__AUTH__TOKENS_FILE"] = tokens
        headers["authorization"] = "Bearer " + field("token")

    psql(server, f"CREATE DATABASE {database}")
    out = os.path.join(work, "callgrind.out")
    alsy = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         args.alsy],
        env=env, stdout=open(os.path.join(work, "alsy.log"), "w"), stderr=subprocess.STDOUT)
    try:
        connection = None
        for _ in range(600):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request("GET", "/api/ready")
                if connection.getresponse().read() is not None:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            sys.exit(f"alsy did not answer; its log is in {work}")

        def call(method, path, body=None):
            connection.request(method, path, body=json.dumps(body) if body is not None else None,
                               headers=headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status >= 300:
                sys.exit(f"{method} {path}: {response.status} {payload[:200]!r}")
            return payload

        ids = []
        for n in range(args.clients):
            created = json.loads(call("POST", "/api/v1/clients", {
                "name": f"instructions {n}", "version": 1, "image": "ghcr.io/acme/algo:1",
                "cpu": "100m", "mem": "64Mi", "priority": 0.5}))
            ids.append(created["data"]["id"])
        catalogue = ["VWAP", "TWAP", "HFT"]

        def write(i):
            id_ = ids[i % len(ids)]
            call("PUT", f"/api/v1/status/{id_}", {a: (i + k) % 2 == 0 for k, a in enumerate(catalogue)})

        def read(i):
            call("GET", f"/api/v1/clients/{ids[i % len(ids)]}")

        counts = {}
        for name, request in (("write", write), ("read", read)):
            for i in range(300):
                request(i)
            subprocess.run(["callgrind_control", "-z", str(alsy.pid)], check=True,
                           capture_output=True)
            subprocess.run(["callgrind_control", "-i", "on", str(alsy.pid)], check=True,
                           capture_output=True)
            for i in range(args.requests):
                request(i)
            subprocess.run(["callgrind_control", "-i", "off", str(alsy.pid)], check=True,
                           capture_output=True)
            dumped = subprocess.run(["callgrind_control", "-d", name, str(alsy.pid)], check=True,
                                    capture_output=True, text=True)
            files = [f for f in os.listdir(work) if f.startswith("callgrind.out")]
            newest = max((os.path.join(work, f) for f in files), key=os.path.getmtime)
            with open(newest) as f:
                text = f.read()
            total = re.search(r"^totals:\s*(\d+)", text, re.M)
            if total is None:
                sys.exit(f"no total in {newest}: {dumped.stdout}")
            counts[name] = int(total.group(1))
        for name, total in counts.items():
            print(f"{name}: {total / args.requests:,.0f} instructions per request "
                  f"({total:,} for {args.requests})")
    finally:
        alsy.terminate()
        try:
            alsy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            alsy.kill()
        psql(server, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main()
