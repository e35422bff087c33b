# ldap-scim image: the sync daemon (`ldap-scim run`) as a non-root container.
#
#   docker build -t ldap-scim .
#   docker run -d --name ldap-scim \
#     -v /etc/ldap-scim:/etc/ldap-scim:ro \
#     -v ldap-scim-state:/var/lib/ldap-scim \
#     -p 127.0.0.1:9464:9464 ldap-scim
#
# Container contract:
# - Config: /etc/ldap-scim/config.yaml (mount the folder read-only). Relative paths in it are relative to that folder.
# - In the config, for a container: server.host: 0.0.0.0 (else a published port reaches nothing),
#   state.path: /var/lib/ldap-scim/snapshot.json, and secrets as bindPasswordFile/tokenFile under /run/secrets/...
#   (or bindPassword: ${LDAP_PASSWORD} / token: ${SCIM_TOKEN} with -e). Secret files must be readable by uid 1000.
# - State: the volume /var/lib/ldap-scim, owned by node (uid 1000). Losing it is safe but costs a rebuild from the
#   SCIM side on the next start.
# - Health: HEALTHCHECK asks http://127.0.0.1:$LDAP_SCIM_HEALTH_PORT/healthz (default 9464). If server.port in the
#   config is not 9464, set LDAP_SCIM_HEALTH_PORT to it (docker run -e / compose environment).
# - Signals: node is PID 1 (exec form) and handles SIGTERM itself (finishes in-flight calls, saves, exits 0) and
#   SIGHUP (reloads the config). `docker stop -t 30` leaves it time to finish.
# - Other commands: docker run --rm ... ldap-scim check --config /etc/ldap-scim/config.yaml (or sync, plan, ...).

# For reproducible builds pin the base by digest: FROM node:20-bookworm-slim@sha256:...
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency's install script runs; the build only needs tsc.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -depth -type d -empty -delete \
 && find dist -name '*.map' -delete

FROM node:20-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ldap-scim" \
      org.opencontainers.image.description="Keeps an Atlassian organization's users and groups in step with an LDAP directory over SCIM 2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="node:20-bookworm-slim"
ENV NODE_ENV=production \
    LDAP_SCIM_HEALTH_PORT=9464
WORKDIR /app
# Package managers are not needed at run time: removing them takes their bundled dependencies off the attack surface.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && mkdir -p /etc/ldap-scim /var/lib/ldap-scim \
 && chown node:node /var/lib/ldap-scim \
 && chmod 0700 /var/lib/ldap-scim
# Code and examples stay root-owned: the node user can read but not change them.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config ./config
USER node
# Declared after the chown, so a new named volume starts owned by node.
VOLUME /var/lib/ldap-scim
EXPOSE 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.LDAP_SCIM_HEALTH_PORT || 9464) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM/SIGHUP directly (no shell in between).
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["run", "--config", "/etc/ldap-scim/config.yaml"]
