#!/usr/bin/env bash
# Proves the README's first command on a real Docker engine, with the committed files unchanged:
# `docker compose up -d --build`, both health checks, the README's quick start verbatim, the pod
# operation in the watcher's log, data kept across `restart` and `down` + `up -d`, a non-root
# watcher, the image size limit; then the same file with `docker-compose` 1.29. Always ends with
# `down -v`, which deletes this checkout's compose volume: run it in a CI clone, not next to data
# you keep.
#
# On a machine without Docker it installs the engine and both Compose CLIs from Debian's packages
# and starts `dockerd`. Where `docker pull` of a base image fails (no registry access), it builds
# a stand-in under the same tag from Debian's packages and says so; stand-ins are kept and reused.
# The project's image is always built from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly IMAGE_LIMIT_MB=105          # the watcher image, in MB of 10^6 bytes (as `docker images`)
readonly HEALTHY_DEADLINE=180        # seconds for both health checks after `up`
readonly API=localhost:8081
# Both CLIs then address the same project (from the directory, Compose 1.29 derives another name
# than v2 when it holds `-` or `_`), and the check never touches a stack of the user's own.
export COMPOSE_PROJECT_NAME=alsy-compose-check

started=$SECONDS
step_started=$SECONDS
step_name=""
step() {
  if [ -n "$step_name" ]; then
    printf '    (%s: %ds)\n' "$step_name" $((SECONDS - step_started))
  fi
  step_name=$1
  step_started=$SECONDS
  printf '\n--- compose-check: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"
}
fail() {
  printf 'compose-check: FAILED: %s\n' "$*" >&2
  exit 1
}

# --- engine and CLIs ------------------------------------------------------------------------------

apt_updated=false
apt_install() {
  if [ "$apt_updated" = false ]; then
    apt-get update -qq
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian 12 ships Compose v2 only in Debian 13; its CLI plugin is one static binary that runs here.
# The trixie package lists live in their own directory, used only to download: the host stays on
# its own release.
install_trixie_plugin() {
  local package=$1 plugin=$2 dir
  dir=$(mktemp -d)
  mkdir -p "$dir/sources" "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/root"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    >"$dir/sources/trixie.sources"
  local options=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$dir/sources"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o Dir::State::status=/dev/null
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${options[@]}" update -qq
  (cd "$dir" && apt-get "${options[@]}" download -qq "$package")
  dpkg-deb -x "$dir"/"${package}"_*.deb "$dir/root"
  install -D -m 0755 "$dir/root/usr/libexec/docker/cli-plugins/$plugin" \
    "/usr/local/lib/docker/cli-plugins/$plugin"
  rm -rf "$dir"
}

ensure_engine() {
  command -v dockerd >/dev/null || { echo "installing docker.io (no Docker engine on this machine)"; apt_install docker.io; }
  command -v docker-compose >/dev/null || { echo "installing docker-compose 1.29 from Debian 12"; apt_install docker-compose; }
  command -v debootstrap >/dev/null || { echo "installing debootstrap (for stand-in base images)"; apt_install debootstrap; }
  docker compose version >/dev/null 2>&1 ||
    { echo "installing the Compose v2 CLI plugin from Debian 13's docker-compose"; install_trixie_plugin docker-compose docker-compose; }
  docker buildx version >/dev/null 2>&1 ||
    { echo "installing the buildx CLI plugin (BuildKit) from Debian 13's docker-buildx"; install_trixie_plugin docker-buildx docker-buildx; }
  if ! docker info >/dev/null 2>&1; then
    echo "no Docker engine answers: starting dockerd in the background (log: /var/log/dockerd.log)"
    # A dockerd that was killed leaves its pid file, and a new one refuses to start over it.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
      rm -f /var/run/docker.pid
    fi
    nohup dockerd >>/var/log/dockerd.log 2>&1 &
    local deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
      [ $SECONDS -lt $deadline ] || fail "dockerd did not answer within 60 s; see /var/log/dockerd.log"
      sleep 1
    done
  fi
  docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
  docker compose version
  docker-compose version --short | sed 's/^/docker-compose /'
}

# --- base images: the real one when it can be pulled, else a stand-in under the same tag ----------

# The Dockerfile's base images, read from the Dockerfile itself so the two cannot disagree.
from_image() { # $1: a pattern the image matches
  awk 'toupper($1) == "FROM" { print $2 }' Dockerfile | grep -E "$1" | head -n 1
}

ensure_image() { # $1: tag, $2: function building its stand-in, $3: what the stand-in is made of
  local tag=$1 why
  if docker image inspect "$tag" >/dev/null 2>&1; then
    if [ -n "$(docker image inspect -f '{{index .Config.Labels "alsy.stand-in"}}' "$tag")" ]; then
      echo "$tag: reusing the stand-in built on an earlier run"
    else
      echo "$tag: present"
    fi
    return
  fi
  if why=$(docker pull -q "$tag" 2>&1); then
    echo "$tag: pulled"
    return
  fi
  echo "$tag: building a stand-in from $3, because docker pull failed: ${why##*$'\n'}"
  "$2" "$tag"
}

# debian:SUITE-slim from debootstrap's minbase, slimmed as the official image is (no docs, man
# pages or locales), with apt set up for the release, its updates and its security fixes.
standin_debian() {
  local tag=$1 suite rootfs
  suite=${tag#debian:}
  suite=${suite%-slim}
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/lintian/*' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
  debootstrap --variant=minbase "$suite" "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1 ||
    { tail -n 20 "$rootfs.log"; fail "debootstrap $suite failed"; }
  find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  rm -f "$rootfs/etc/apt/sources.list"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$suite" "$suite" "$suite" >"$rootfs/etc/apt/sources.list.d/debian.sources"
  # The official image's apt settings: no package caches or downloaded packages left in a layer.
  printf '%s\n' \
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' >"$rootfs/etc/apt/apt.conf.d/docker-clean"
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  : >"$rootfs/etc/resolv.conf"
  tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["bash"]' --change 'LABEL alsy.stand-in="debootstrap minbase"' - "$tag" >/dev/null
  rm -rf "$rootfs" "$rootfs.log"
}

# rust:VERSION-slim-SUITE: this machine's toolchain, laid out as in the official image
# (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo on PATH). Outbound TLS here passes
# through this machine's own certificate authorities, so the builder trusts its CA bundle; the
# project's runtime image never gets it.
standin_rust() {
  local tag=$1 version suite sysroot ctx host_version
  version=${tag#rust:}
  version=${version%%-*}
  suite=${tag##*-}
  host_version=$(rustc --version | awk '{ print $2 }')
  case "$host_version" in
    "$version" | "$version".*) ;;
    *) fail "$tag: this machine's rustc is $host_version, not $version: install it (rustup toolchain install $version) to build the stand-in" ;;
  esac
  ensure_image "debian:$suite-slim" standin_debian "debootstrap --variant=minbase"
  sysroot=$(rustc --print sysroot)
  ctx=$(mktemp -d)
  mkdir -p "$ctx/rustup/toolchains/$host_version-x86_64-unknown-linux-gnu" "$ctx/cargo/bin"
  tar -C "$sysroot" --exclude=./share/doc -c . |
    tar -C "$ctx/rustup/toolchains/$host_version-x86_64-unknown-linux-gnu" -x
  printf 'version = "12"\ndefault_toolchain = "%s-x86_64-unknown-linux-gnu"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$host_version" >"$ctx/rustup/settings.toml"
  cp "$(command -v rustup)" "$ctx/cargo/bin/rustup"
  for proxy in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
    ln -s rustup "$ctx/cargo/bin/$proxy"
  done
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  cat >"$ctx/Dockerfile" <<EOF
FROM debian:$suite-slim
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$host_version
RUN apt-get update -qq \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates gcc libc6-dev >/dev/null \\
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN cargo --version && rustc --version
LABEL alsy.stand-in="this machine's Rust toolchain"
EOF
  docker build -q -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# postgres:MAJOR from Debian 13's postgresql-MAJOR, with an entrypoint that honours
# POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB, takes scram passwords from other hosts, and stops
# cleanly on SIGINT (fast) and SIGTERM (smart), as the official image does.
standin_postgres() {
  local tag=$1 major ctx
  major=${tag#postgres:}
  ensure_image debian:trixie-slim standin_debian "debootstrap --variant=minbase"
  ctx=$(mktemp -d)
  cat >"$ctx/entrypoint.sh" <<'EOF'
#!/bin/sh
# Stand-in for the official postgres image's entrypoint: a first start creates the cluster with
# POSTGRES_USER/POSTGRES_PASSWORD and the database POSTGRES_DB; later starts keep what is there.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -s start
    createdb --username="$user" -- "$db"
    pg_ctl -D "$PGDATA" -m fast -w -s stop
  fi
  echo "stand-in postgres: initialised $PGDATA for user $user, database $db"
fi
exec postgres -D "$PGDATA" "$@"
EOF
  chmod 0755 "$ctx/entrypoint.sh"
  cat >"$ctx/Dockerfile" <<EOF
FROM debian:trixie-slim
RUN mkdir -p /etc/postgresql-common/createcluster.d \\
    && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/no-main-cluster.conf \\
    && apt-get update -qq \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-$major >/dev/null \\
    && rm -rf /var/lib/apt/lists/* \\
    && install -d -o postgres -g postgres -m 2775 /run/postgresql \\
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/$major/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
VOLUME /var/lib/postgresql/data
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
LABEL alsy.stand-in="Debian 13's postgresql-$major"
EOF
  docker build -q -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# --- the stack ------------------------------------------------------------------------------------

container() { # $1: service; the container id of the current CLI's project
  "${COMPOSE[@]}" ps -q "$1" 2>/dev/null | head -n 1
}

health() { # $1: service
  local id
  id=$(container "$1")
  if [ -z "$id" ]; then echo missing; return; fi
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}no health check{{end}}' "$id"
}

wait_healthy() { # $1: when the wait is counted from ($SECONDS), $2: what started then
  local since=$1 deadline=$((SECONDS + HEALTHY_DEADLINE)) storage watcher
  while :; do
    storage=$(health storage)
    watcher=$(health watcher)
    [ "$storage" = healthy ] && [ "$watcher" = healthy ] && break
    [ $SECONDS -lt $deadline ] ||
      fail "not healthy after ${HEALTHY_DEADLINE}s: storage $storage, watcher $watcher"
    sleep 1
  done
  healthy_after=$((SECONDS - since))
  echo "both health checks healthy ${healthy_after}s after \`$2\` started"
}

# The README's quick start, read from the README so the two cannot drift apart: the shell block
# after "Then create a client", continuation lines joined.
quick_start=()
quick_start_expected=""
read_quick_start() {
  local line joined=""
  while IFS= read -r line; do
    if [[ $line == *\\ ]]; then
      joined+="${line%\\} "
      continue
    fi
    line="$joined$line"
    joined=""
    case "$line" in
      '# '*) quick_start_expected=${line#'# '} ;;
      '') ;;
      *) quick_start+=("$line") ;;
    esac
  done < <(awk '/^Then create a client/ { found = 1; next }
                found && /^```sh/ { inside = 1; next }
                inside && /^```/ { exit }
                inside { print }' README.md)
  [ "${#quick_start[@]}" -eq 3 ] && [ -n "$quick_start_expected" ] ||
    fail "README.md: the quick start is not three commands and an expected answer: ${quick_start[*]:-none}"
}

run_readme() { # $1: the README's command, run as written; prints its answer
  bash -c "$1"
}

expect_contains() { # $1: what, $2: the answer, $3: the fragment it must contain
  [[ $2 == *"$3"* ]] || fail "$1: expected $3 in: $2"
  echo "$1: $2"
}

# Waits (deadline 30 s) until the README's GET /api/v1/pods answers what the README shows: the
# watcher creates the pod on its debounced nudge (~1 s) or its start-up pass.
wait_for_pods() { # $1: when
  local deadline=$((SECONDS + 30)) answer
  while :; do
    answer=$(run_readme "${quick_start[2]}" || true)
    [ "$answer" = "$quick_start_expected" ] && break
    [ $SECONDS -lt $deadline ] ||
      fail "$1: GET /api/v1/pods answered '$answer', the README shows '$quick_start_expected'"
    sleep 0.5
  done
  echo "$1: $answer (as the README shows)"
}

expect_client_kept() { # $1: when
  local answer
  answer=$(curl -sS "$API/api/v1/clients/1") || fail "$1: GET /api/v1/clients/1 failed"
  [[ $answer == *'"name":"Jimbo"'*'"status":{"VWAP":true,'* ]] ||
    fail "$1: GET /api/v1/clients/1 is not Jimbo with VWAP on: $answer"
  echo "$1: GET /api/v1/clients/1: Jimbo, VWAP on"
  wait_for_pods "$1"
}

watcher_log_line() { # $1: a grep pattern; prints the first line of the watcher's log matching it
  local logs
  logs=$("${COMPOSE[@]}" logs --no-color watcher) || return 1
  grep -m 1 -e "$1" <<<"$logs"
}

expect_pod_logged() {
  local line
  line=$(watcher_log_line '"msg":"pod created".*"pod_operation":"<CREATE> vwap-1"') || fail "no 'pod created' line with pod_operation <CREATE> vwap-1 in \`${COMPOSE[*]} logs watcher\`"
  echo "watcher log: ${line#*| }"
}

# --- main -------------------------------------------------------------------------------------------

COMPOSE=(docker compose)
on_exit() {
  local status=$?
  trap - EXIT
  if [ "$status" -ne 0 ]; then
    printf '\n--- compose-check: the stack when it failed\n'
    "${COMPOSE[@]}" ps -a || true
    "${COMPOSE[@]}" logs --no-color --tail=30 || true
  fi
  step "down -v (always)"
  docker compose down -v --remove-orphans || status=1
  step "end"
  if [ "$status" -eq 0 ]; then
    echo "compose-check: all steps passed in $((SECONDS - started))s"
  else
    echo "compose-check: FAILED (exit $status) after $((SECONDS - started))s" >&2
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

step "engine and Compose CLIs"
ensure_engine

step "base images"
ensure_image "$(from_image '^debian:')" standin_debian "debootstrap --variant=minbase"
ensure_image "$(from_image '^rust:')" standin_rust "this machine's Rust toolchain (rustup show)"
storage_image=$(docker compose config --images | grep '^postgres:') ||
  fail "docker-compose.yaml: no postgres image for storage"
ensure_image "$storage_image" standin_postgres "Debian 13's postgresql package"

step "leftovers of an earlier run"
docker compose down -v --remove-orphans
read_quick_start

step "docker compose up -d --build (the README's first command)"
up_started=$SECONDS
docker compose up -d --build
echo "\`docker compose up -d --build\` returned after $((SECONDS - up_started))s (image build included)"
wait_healthy "$up_started" "docker compose up -d --build"

step "the README's quick start, verbatim"
expect_contains "POST /api/v1/clients" "$(run_readme "${quick_start[0]}")" '"status":"ok"'
expect_contains "PUT /api/v1/status/1" "$(run_readme "${quick_start[1]}")" '"status":"ok"'
wait_for_pods "GET /api/v1/pods"
expect_pod_logged

step "the watcher runs as a named non-root user"
watcher_id=$(container watcher)
pid=$(docker inspect -f '{{.State.Pid}}' "$watcher_id")
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[ "$uid" != 0 ] || fail "the watcher's process runs as root"
identity=$(docker compose exec -T watcher id)
[ "$identity" = "uid=$uid(alsy) gid=$uid(alsy) groups=$uid(alsy)" ] ||
  fail "the watcher's user and group are not both named alsy with the same id: $identity"
echo "watcher process uid $uid; in the container: $identity"

step "image size"
watcher_image=$(docker inspect -f '{{.Config.Image}}' "$watcher_id")
size=$(docker image inspect -f '{{.Size}}' "$watcher_image")
size_mb=$(((size + 500000) / 1000000))
echo "$watcher_image: $size_mb MB ($size bytes; limit $IMAGE_LIMIT_MB MB)"
[ "$size_mb" -le "$IMAGE_LIMIT_MB" ] || fail "$watcher_image is $size_mb MB, over the $IMAGE_LIMIT_MB MB limit"

step "docker compose restart watcher keeps the data"
restart_started=$SECONDS
docker compose restart watcher
wait_healthy "$restart_started" "docker compose restart watcher"
expect_client_kept "after restart"

step "docker compose down, then up -d, keeps the data"
docker compose down
up_started=$SECONDS
docker compose up -d
wait_healthy "$up_started" "docker compose up -d"
expect_client_kept "after down + up -d"
docker compose down

# As a user who sets a new password in .env after the first start (the committed files stay
# unchanged: the environment overrides .env).
step "a password changed after the first start: the watcher says why, in one line"
POSTGRES_PASSWORD=changed-after-first-start docker compose up -d
deadline=$((SECONDS + 60))
until refused=$(watcher_log_line 'password authentication failed.*docker compose down -v'); do
  [ $SECONDS -lt $deadline ] ||
    fail "no start-up error naming \`docker compose down -v\` in \`docker compose logs watcher\` within 60s"
  sleep 1
done
echo "watcher log: ${refused#*| }"
docker compose down

step "the same file with docker-compose $(docker-compose version --short)"
COMPOSE=(docker-compose)
docker-compose config -q && echo "docker-compose config: valid"
up_started=$SECONDS
docker-compose up -d --build
wait_healthy "$up_started" "docker-compose up -d --build"
expect_client_kept "docker-compose up -d --build, same volume"
expect_pod_logged
docker-compose down -v
COMPOSE=(docker compose)
