# syntax=docker/dockerfile:1
# The blog app: compiled TypeScript on Node 24, production dependencies only, non-root.
# Same Node release as the `node` devDependency the tests run on.
ARG NODE_IMAGE=node:24.21.0-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script that matters locally is the `node` devDependency
# downloading a second Node binary, which the image does not need.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY otel ./otel
# tsc directly: `npm run build` would put node_modules/.bin first on PATH, and its `node`
# (from the skipped install script) does not work.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    UPLOAD_DIR=/app/uploads
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY views ./views
COPY public ./public
# Owned by the runtime user, so a new named volume mounted here starts writable.
RUN mkdir -p /app/uploads && chown node:node /app/uploads
USER node
EXPOSE 8000
# Liveness for `docker run` and Compose alike: GET /health on PORT (the slim image has no curl or
# wget; Node's fetch does the job). test/unit/compose.test.ts holds compose's probe equal to it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--require", "./dist/otel/bootstrap.js", "dist/src/server.js"]
