# syntax=docker/dockerfile:1
# alsy's container image: build with the pinned toolchain, run as a non-root user with only the
# binary and CA certificates.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# Dependencies first, in their own layer: only the manifests and empty crate roots are copied, so
# editing sources does not rebuild the dependency graph.
COPY Cargo.toml Cargo.lock ./
COPY domain/Cargo.toml domain/
COPY app/Cargo.toml app/
COPY adapters-http/Cargo.toml adapters-http/
COPY adapters-postgres/Cargo.toml adapters-postgres/
COPY adapters-k8s/Cargo.toml adapters-k8s/
COPY adapters-fake/Cargo.toml adapters-fake/
COPY bin/Cargo.toml bin/
COPY tests/Cargo.toml tests/
RUN for crate in domain app adapters-http adapters-postgres adapters-k8s adapters-fake bin tests; do \
        mkdir -p "$crate/src" && touch "$crate/src/lib.rs"; \
    done \
    && echo 'fn main() {}' > bin/src/main.rs \
    && mkdir -p tests/tests/it && touch tests/tests/it/main.rs \
    && cargo build --release --locked -p alsy

# Now the sources; touch them so cargo sees them as newer than the placeholder build.
COPY . .
RUN find domain app adapters-* bin -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p alsy \
    && cp target/release/alsy /usr/local/bin/alsy

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin alsy
COPY --from=build /usr/local/bin/alsy /usr/local/bin/alsy
USER 10001:10001
EXPOSE 8080
ENV ALSY__HTTP__ADDRESS=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/alsy"]
