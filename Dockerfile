# syntax=docker/dockerfile:1
# One image for the three Switchyard binaries and the `switchyard` CLI; the Deployment
# (or `docker run`) picks the command:
#   docker build -t switchyard .
#   docker run --rm switchyard /usr/local/bin/switchyard-ingress --config /etc/switchyard/config/switchyard.toml
# Multi-stage: the build stage has the Rust toolchain; the runtime stage is distroless
# (glibc, CA certificates, no shell, no package manager) and runs as uid 65532.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target folder between builds; the binaries
# are copied out of the mounted target before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p switchyard-ingress -p switchyard-normalizer -p switchyard-dispatcher -p switchyard-cli \
    && mkdir -p /out \
    && cp target/release/switchyard-ingress target/release/switchyard-normalizer \
          target/release/switchyard-dispatcher target/release/switchyard /out/

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="Webhook ingestion, normalization and signed delivery" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /usr/local/bin/
# The shipped connector catalog and the unified models beside it (catalog =
# "/etc/switchyard/catalog"); the configuration is mounted at /etc/switchyard/config/.
COPY connectors/catalog /etc/switchyard/catalog
COPY connectors/unified /etc/switchyard/unified
WORKDIR /etc/switchyard
USER nonroot:nonroot
# ingress (webhooks, /metrics), admin API, normalizer ops, dispatcher ops.
EXPOSE 8080 8081 9091 9092
ENTRYPOINT []
CMD ["/usr/local/bin/switchyard-ingress", "--config", "/etc/switchyard/config/switchyard.toml"]
