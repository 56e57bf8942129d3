# syntax=docker/dockerfile:1
# Build: the official Bun image compiles one self-contained executable.
FROM oven/bun:1.4.5 AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Runtime dependencies only (citty, consola, ofetch); no install scripts run.
RUN bun install --production --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
# --bytecode: precompiled JavaScript, for a faster start (npm run bench compares the builds; README, "Cost and speed").
RUN bun build src/cli/main.ts --compile --minify --bytecode --outfile /out/envoy-shutdown-manager

# Run: the executable links against glibc, so a distroless base with libc (and no shell), as a non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/envoy-shutdown-manager /usr/local/bin/envoy-shutdown-manager
USER 65532:65532
EXPOSE 8090
# Works with readOnlyRootFilesystem: the only file it writes is --ready-file (default /admin/ok), on a shared emptyDir.
ENTRYPOINT ["/usr/local/bin/envoy-shutdown-manager"]
CMD ["shutdown-manager"]
