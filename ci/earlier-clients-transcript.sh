#!/usr/bin/env bash
# Prints README.md's transcripts of the earlier services' clients ("Coming from syncService or
# PSY") from a real run: starts alsy (in-memory storage, the fake runtime) on 127.0.0.1:18081 and
# :18082, sends syncService's four calls and PSY's X/Y/Z status call with curl, and prints each
# command and alsy's answer as a console block. Needs curl and jq.
#   ci/earlier-clients-transcript.sh [path to alsy]   (default: target/debug/alsy)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-target/debug/alsy}")"
dir="$(mktemp -d)"
mkdir "$dir/bin" && ln -s "$bin" "$dir/bin/alsy"
export PATH="$dir/bin:$PATH"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

# Prints a command as typed, then what it printed.
show() {
  printf '$ %s\n' "$1"
  local out
  out="$(bash -c "$1" 2>&1)" || true
  printf '%s\n' "$out"
}

# Starts alsy with the given settings (shown as typed) and waits until it serves.
start() {
  printf '$ %s alsy &\n' "$*"
  env "$@" alsy >"$dir/alsy.log" 2>&1 &
  local address="${*: -1}"
  for _ in $(seq 1 100); do
    curl -sf "http://${address#*=}/api/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  printf '$ H=localhost:%s\n' "${address##*:}"
  export H="localhost:${address##*:}"
}

zero='"spawned_at":"0001-01-01T00:00:00Z","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"'
pass="curl -s -X POST \$H/api/v1/sync | jq -c '.data | {created, deleted, restarted}'"

echo 'syncService, with the default catalogue:'
echo
echo '```console'
start ALSY__STORAGE__KIND=memory ALSY__RUNTIME__KIND=fake ALSY__HTTP__ADDRESS=127.0.0.1:18081
show "curl -s -X POST \$H/api/client -d '{\"id\":0,\"client_name\":\"Jimbo\",\"version\":1,\"image\":\"ghcr.io/acme/vwap:1.0\",\"cpu\":\"500m\",\"memory\":\"512Mi\",\"priority\":0.26,\"needRestart\":false,$zero}'"
show "curl -s -X POST \$H/api/algorithms -d '{\"algorithm_id\":0,\"client_id\":1,\"vwap\":true,\"twap\":false,\"hft\":true}'"
show "$pass"
show "curl -s -X PUT \$H/api/client -d '{\"id\":1,\"client_name\":\"Jimbo\",\"version\":2,\"image\":\"ghcr.io/acme/vwap:2.0\",\"cpu\":\"1\",\"memory\":\"1Gi\",\"priority\":0.5,\"needRestart\":true,$zero}'"
show "$pass"
show "curl -s -X PUT \$H/api/client -d '{\"id\":7,\"client_name\":\"Jimbo\",\"version\":2,\"image\":\"ghcr.io/acme/vwap:2.0\",\"cpu\":\"1\",\"memory\":\"1Gi\",\"priority\":0.5,\"needRestart\":false,$zero}'"
show "curl -s -X DELETE \$H/api/client -d '{\"id\":1,\"client_name\":\"\",\"version\":0,\"image\":\"\",\"cpu\":\"\",\"memory\":\"\",\"priority\":0,\"needRestart\":false,$zero}'"
show "$pass"
kill %1 && wait %1 2>/dev/null || true
echo '```'
echo
echo 'PSY, with X, Y and Z:'
echo
echo '```console'
start ALSY__SYNC__ALGORITHMS=X,Y,Z ALSY__STORAGE__KIND=memory ALSY__RUNTIME__KIND=fake ALSY__HTTP__ADDRESS=127.0.0.1:18082
show "curl -s -X POST \$H/api/v1/clients -d '{\"name\":\"Jimbo\",\"version\":1,\"image\":\"ghcr.io/acme/algo:1.0\",\"cpu\":\"500m\",\"mem\":\"512Mi\",\"priority\":0.26}' | jq -c '{status, message, id: .data.id}'"
show "curl -s -X PUT \$H/api/v1/status/1 -d '{\"X\":true,\"Y\":false,\"Z\":true}' | jq -c '{status, message, switches: .data.status}'"
show "$pass"
show "curl -s \$H/api/v1/pods"
show "curl -s -X PUT \$H/api/v1/status/1 -d '{\"VWAP\":true,\"TWAP\":false,\"HFT\":true}'"
kill %1 && wait %1 2>/dev/null || true
echo '```'
echo
echo 'A bad catalogue:'
echo
echo '```console'
show 'ALSY__SYNC__ALGORITHMS=X,x ALSY__STORAGE__KIND=memory alsy; echo "exit code $?"'
echo '```'
