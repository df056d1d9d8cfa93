# syntax=docker/dockerfile:1
# dvt-cds: multi-stage build. The release build needs about 4.5 GB of memory (fhir-sdk).
#
# The image runs the authenticated service. The operator provides:
#   - /etc/dvt-cds/auth.toml: the trusted EHR issuers (README, "Security"), with the
#     JWKS files it names, mounted read-only (e.g. -v "$PWD/auth:/etc/dvt-cds:ro");
#   - DVT_CDS_PUBLIC_URL: the URL the EHR calls (https, at the TLS proxy), which tokens
#     carry in `aud`. Without it the service refuses to start: on 0.0.0.0 no token's
#     `aud` could match.
#   - optionally a volume at /var/lib/dvt-cds to keep the feedback database.
# Local development without an EHR: `docker run ... serve --dev` (or the compose `dev`
# profile), never with real patient data.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin dvt-cds \
    && cp target/release/dvt-cds /usr/local/bin/dvt-cds \
    && mkdir -p /rootfs/var/lib/dvt-cds

# The runtime: distroless (glibc, libgcc, CA certificates, tzdata; no shell, no package
# manager, no coreutils). The binary links only libc, libm and libgcc_s (`ldd`), and its
# health check is the binary itself, so nothing else is needed.
FROM gcr.io/distroless/cc-debian12
ARG VERSION=0.1.0
ARG REVISION=unknown
# OCI annotations: what the image is, its licence and source (`docker inspect`).
LABEL org.opencontainers.image.title="dvt-cds" \
      org.opencontainers.image.description="CDS Hooks service: deep vein thrombosis assessment from FHIR R4 data" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="README.md, docs/intended-use.md"
COPY --from=build /usr/local/bin/dvt-cds /usr/local/bin/dvt-cds
# The data volume, owned by the service's user (the same uid and gid as the Kubernetes
# Deployment's runAsUser / fsGroup): a numeric user needs no passwd entry.
COPY --from=build --chown=10001:10001 /rootfs/var/lib/dvt-cds /var/lib/dvt-cds
COPY LICENSE NOTICE.md /usr/share/doc/dvt-cds/
USER 10001:10001
WORKDIR /var/lib/dvt-cds
# Settings as variables, not CMD flags, so that `dvt-cds healthcheck` reads the same
# DVT_CDS_LISTEN (and DVT_CDS_ADMIN_LISTEN, when the operator sets it) as `serve`.
# No DVT_CDS_FEEDBACK_DB: it may not be set together with DVT_CDS_STORE (PostgreSQL,
# for replicas); without either, the SQLite default dvt-cds-feedback.sqlite3 lands in
# the working directory, the data volume.
ENV DVT_CDS_LISTEN=0.0.0.0:8080 \
    DVT_CDS_AUTH_CONFIG=/etc/dvt-cds/auth.toml
VOLUME ["/var/lib/dvt-cds"]
EXPOSE 8080
# GET /readyz on loopback (the admin listener when set): 0 when ready, else 1 with the
# reason, which `docker inspect` shows.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["dvt-cds", "healthcheck"]
ENTRYPOINT ["dvt-cds"]
CMD ["serve"]
