# ldap-scim image. Build:  docker build -t ldap-scim .
# Run one cycle:          docker run --rm -v /etc/ldap-scim:/etc/ldap-scim:ro -v ldap-scim-state:/var/lib/ldap-scim ldap-scim
# The config is read from /etc/ldap-scim/config.yaml; set state.path under /var/lib/ldap-scim so the snapshot
# outlives the container (losing it is safe, but costs a rebuild from the SCIM side).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config ./config
RUN mkdir -p /etc/ldap-scim /var/lib/ldap-scim && chown node:node /var/lib/ldap-scim
USER node
VOLUME /var/lib/ldap-scim
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["sync", "--config", "/etc/ldap-scim/config.yaml"]
