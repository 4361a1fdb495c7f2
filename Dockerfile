# syntax=docker/dockerfile:1
#
# Switchboard image: the hub binary on Debian slim, run as an unprivileged user.
#
#   docker build -t switchboard .
#   docker run --rm -p 5010:5010 -p 5011:5011 \
#       -e SWITCHBOARD_ADMIN_TOKEN=... -e SWITCHBOARD_SECRET_KEY=... switchboard
#
# With several replicas, every one needs the same SWITCHBOARD_DATABASE_URL (PostgreSQL),
# SWITCHBOARD_SECRET_KEY and SWITCHBOARD_ADMIN_TOKEN: see deploy/README.md.
#
# The runtime stage has no Node.js or Python. stdio servers started with `npx` or `uvx`
# need an image derived from this one that installs them, e.g.
#
#   FROM switchboard
#   USER root
#   RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \
#       && rm -rf /var/lib/apt/lists/*
#   USER 10001:10001

# ---- build ------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The registry and target directories are build caches: a rebuild after a source change
# does not download or recompile the dependencies again.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p switchboard --bin switchboard \
    && install -D -m 0755 target/release/switchboard /out/switchboard

# ---- runtime ----------------------------------------------------------------------------
FROM debian:bookworm-slim
# CA roots for https:// upstream servers and PostgreSQL over TLS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# The `switchboard` user (uid and gid 10001) owns the data directory and nothing else.
RUN groupadd --system --gid 10001 switchboard \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/switchboard \
        --no-create-home --shell /usr/sbin/nologin switchboard \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/switchboard
COPY --from=build /out/switchboard /usr/local/bin/switchboard

# With PostgreSQL the data directory only holds per-process state (the stdio servers'
# process-group record, the embedding cache); it needs no volume.
ENV SWITCHBOARD_DATA_DIR=/var/lib/switchboard \
    HOME=/var/lib/switchboard
WORKDIR /var/lib/switchboard
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001

# 5010: main service (dashboard, management API, authenticated /mcp).
# 5011: MCP service (/mcp, /sse, /messages).
EXPOSE 5010 5011

# The binary has no probe subcommand and the image has no curl: bash's /dev/tcp asks the
# main service for /ready and checks for a 200 status line.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5010 && printf 'GET /ready HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/switchboard"]
# Off loopback the MCP service must demand credentials (`serve` refuses to start otherwise).
CMD ["serve", "--main-addr", "0.0.0.0:5010", "--mcp-addr", "0.0.0.0:5011", "--mcp-auth", "required"]
