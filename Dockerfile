# The manager image used by deploy/helm/flotilla: `docker build -t ghcr.io/flotilla/flotilla:0.1.0 .`
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
# Dependencies first, so a source change does not re-install them. `npm ci` installs the dev
# dependencies too: bin/flotilla.mjs runs the TypeScript sources through tsx.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY web ./web
COPY tsconfig.json ./
USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/flotilla.mjs"]
CMD ["up", "--host", "0.0.0.0"]
