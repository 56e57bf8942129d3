# Build: the official Bun image compiles one self-contained executable.
FROM oven/bun:1.4.5 AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Runtime dependencies only (citty, consola, ofetch), exactly as package-lock.json pins them (bun reads it; a
# package.json that disagrees fails the build instead of re-resolving); no install scripts run. Behind a
# TLS-intercepting proxy, pass its CA bundle as a build secret (`--secret id=npm_ca,src=ca.pem`): it is mounted for
# this step only and never stored in a layer.
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then set -- --cafile=/run/secrets/npm_ca; fi \
 && bun install --production --ignore-scripts --frozen-lockfile "$@"
COPY tsconfig.json ./
COPY src ./src
# The flags of `npm run build` (a test keeps them equal): --bytecode, precompiled JavaScript for a faster start;
# --splitting, the commands other than the sidecar in chunks of their own, which an idle sidecar never loads; as
# ES modules (less start-up memory than the CommonJS default); --compile-jit-policy, start-up code left to the
# interpreter (docs/benchmarks.md); and no .env or bunfig.toml read from the working directory: flags and
# ENVOY_SHUTDOWN_* variables are the only settings.
RUN bun build src/cli/main.ts --compile --minify --bytecode --splitting --format esm --compile-jit-policy 10 --no-compile-autoload-dotenv --no-compile-autoload-bunfig --outfile /out/local-bin/envoy-shutdown-manager
# The names Contour's and Envoy Gateway's manifests start their shutdown managers by, so that swapping the image is
# all a drop-in takes: started as `contour` or `envoy-gateway`, `envoy shutdown-manager|shutdown` speaks that tool's flags.
RUN mkdir -p /out/bin \
 && ln -s /usr/local/bin/envoy-shutdown-manager /out/bin/contour \
 && ln -s envoy-shutdown-manager /out/local-bin/envoy-gateway

# Run: the executable links against glibc, so a distroless base with libc (and no shell), as a non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
# Directories are copied with their symbolic links as links.
COPY --from=build /out/local-bin/ /usr/local/bin/
COPY --from=build /out/bin/ /bin/
USER 65532:65532
EXPOSE 8090
# Works with readOnlyRootFilesystem: the only file it writes is --ready-file (default /admin/ok), on a shared emptyDir.
ENTRYPOINT ["/usr/local/bin/envoy-shutdown-manager"]
CMD ["shutdown-manager"]
