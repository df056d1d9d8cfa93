# syntax=docker/dockerfile:1
# dvt-cds: multi-stage build. The release build needs about 4.5 GB of memory (fhir-sdk).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin dvt-cds \
    && cp target/release/dvt-cds /usr/local/bin/dvt-cds

FROM debian:bookworm-slim
# ca-certificates: TLS to FHIR servers and JWKS; curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/dvt-cds dvt
COPY --from=build /usr/local/bin/dvt-cds /usr/local/bin/dvt-cds
USER dvt
WORKDIR /var/lib/dvt-cds
ENV DVT_CDS_FEEDBACK_DB=/var/lib/dvt-cds/feedback.sqlite3
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["dvt-cds"]
# Development mode (no EHR authentication). For real use, replace with e.g.
# ["serve", "--listen", "0.0.0.0:8080", "--auth-config", "/etc/dvt-cds/auth.toml"].
CMD ["serve", "--dev", "--listen", "0.0.0.0:8080"]
