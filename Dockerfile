# alsy's container image: build with the pinned toolchain, run as a non-root user with only the
# binary and CA certificates. Works with BuildKit and with the legacy builder (DOCKER_BUILDKIT=0),
# and fetches no frontend image (no `syntax` line).

# cargo-chef turns the workspace's manifests into a recipe, so the dependency layer follows the
# workspace on its own: adding a crate needs no edit here.
FROM rust:1.95-slim-bookworm AS chef
# make: the jemalloc allocator (tikv-jemalloc-sys) builds with its own configure and make, which
# the slim image lacks.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make >/dev/null \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --version 0.1.78 --locked --quiet
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# Dependencies first, in their own layer: it is rebuilt only when a manifest or Cargo.lock changes.
FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p alsy --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p alsy \
    && cp target/release/alsy /usr/local/bin/alsy

# Debian's CA bundle, from its own stage: the runtime image needs only the bundle, not apt's
# caches or the openssl tools the package pulls in. debconf's pre-configuration needs apt-utils
# and without it only prints a warning: it is off for this one install.
FROM debian:bookworm-slim AS certs
RUN echo '#clear DPkg::Pre-Install-Pkgs;' >/etc/apt/apt.conf.d/99-no-preconfigure \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null

FROM debian:bookworm-slim
# A named user and group with the same id; 10001 is above the system range, so no --system
# (useradd would warn).
RUN groupadd --gid 10001 alsy \
    && useradd --uid 10001 --gid alsy --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin alsy
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /usr/local/bin/alsy /usr/local/bin/alsy
USER 10001:10001
EXPOSE 8080
ENV ALSY__HTTP__ADDRESS=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/alsy"]
