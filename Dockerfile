# slotpool: multi-stage build. The runtime image holds only the binary, runs as an
# unprivileged user, keeps its journal in the /data volume and reports its health.
#
#   docker build -t slotpool .
#   docker run -p 8080:8080 -v slotpool-data:/data -e SLOTPOOL_ADMIN_TOKEN=... slotpool
FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace (every crate: events, journal, snapshots, actors, the cluster, the
# load generator; the assets pages embed with include_str!), less what .dockerignore keeps
# out (target, data folders, secrets, .git).
COPY . .
RUN cargo build --release --locked --bin slotpool \
 && strip target/release/slotpool

FROM debian:bookworm-slim
# curl for the health check only; ca-certificates for outgoing TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 slotpool \
 && useradd --system --uid 10001 --gid slotpool --home-dir /data --shell /usr/sbin/nologin slotpool \
 && install -d -o slotpool -g slotpool -m 0700 /data
COPY --from=build /src/target/release/slotpool /usr/local/bin/slotpool
COPY slotpool.sample.toml /etc/slotpool/slotpool.toml
USER slotpool:slotpool
VOLUME ["/data"]
ENV SLOTPOOL_DATA_DIR=/data \
    SLOTPOOL_LISTEN=0.0.0.0:8080 \
    SLOTPOOL_LOG_FORMAT=json
EXPOSE 8080
# Asks the address the service listens on (SLOTPOOL_LISTEN, which beats the config file),
# through loopback when it listens on every address.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD host="${SLOTPOOL_LISTEN%:*}"; port="${SLOTPOOL_LISTEN##*:}"; \
      case "$host" in 0.0.0.0) host=127.0.0.1 ;; "[::]") host="[::1]" ;; esac; \
      curl -fsSg "http://$host:$port/readyz" || exit 1
# SIGTERM drains, flushes the journal and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/slotpool"]
CMD ["serve", "--config", "/etc/slotpool/slotpool.toml"]
