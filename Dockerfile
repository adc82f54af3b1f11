# syntax=docker/dockerfile:1
# writeguard: idempotency sidecar for AI agents' writes to payment APIs.
#
#   docker build -t writeguard .
#   docker run --rm --stop-timeout 40 -p 127.0.0.1:8787:8787 -p 127.0.0.1:8788:8788 \
#     writeguard start --upstream https://api.example.com
#
# Without REDIS_URL the in-memory store is used; set REDIS_URL=redis://HOST:6379
# to share idempotency records between replicas and restarts.
# --stop-timeout: the drain deadline is 35 s by default (WRITEGUARD_DRAIN_MS), Docker's own stop
# timeout 10 s; a stop that kills mid-drain leaves in-flight writes outcome_unknown.

# ---- build: compile TypeScript, then drop devDependencies ------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app

# Install from the lockfile first so this layer is cached until deps change (--ignore-scripts: the
# package's prepare script builds, and src is not copied yet).
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
    && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: only production deps, compiled JS and example config ---------
FROM node:22-bookworm-slim AS runtime
WORKDIR /app

# Bind all interfaces: the default loopback address is unreachable from outside the container. Off
# loopback and without WRITEGUARD_ADMIN_TOKEN, the admin listener serves only /healthz, /readyz, /metrics.
ENV NODE_ENV=production \
    WRITEGUARD_HOST=0.0.0.0 \
    WRITEGUARD_ADMIN_HOST=0.0.0.0

# Files stay root-owned (read-only for the app); the process runs as `node`.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config

USER node

# 8787: proxy for the agent's requests; 8788: admin (/healthz, /readyz, /metrics).
EXPOSE 8787 8788

# The slim image has no curl; Node 22 has a global fetch.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.WRITEGUARD_ADMIN_PORT||8788)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["node", "dist/cli.js"]
# `start` reads its settings from WRITEGUARD_* / REDIS_URL env vars and flags.
CMD ["start"]
