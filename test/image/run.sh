#!/usr/bin/env bash
# The container image, built from the Dockerfile and run as a user runs it (`npm run test:image`).
#
# Needs root (rootful podman with runc) and Debian's podman, runc, mmdebstrap and slirp4netns, which it installs
# with apt-get when missing. Bases it cannot pull it makes from Debian's archive: a stand-in for the Bun image
# (a minimal Debian root plus the bun binary of node_modules) and one for distroless cc (its packages' files, its
# users and folders, no shell). Everything lives in a private podman storage under one temporary directory, and
# every container, image, layer and process it starts is removed on exit or interrupt. Runs use `--network none`
# with the fake Envoy's admin socket bind-mounted, or slirp4netns publishing the sidecar's port on 127.0.0.1 only;
# the build alone uses the host network, to reach the npm registry. The last line is "N passed, M failed", or
# "skipped: <why>" where the engine cannot run here.
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "ok      $*"
}
fail() {
  failed=$((failed + 1))
  echo "FAILED  $*"
}
# check NAME COMMAND...: one pass or failure, named for what a user would notice.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
figure() { echo "figure  $*"; }
skip() {
  echo "skipped: $*"
  exit 0
}

# ---- what the test needs ---------------------------------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || skip "the image test needs root (rootful podman with runc); run it as root"

declare -A package_of=([podman]=podman [runc]=runc [mmdebstrap]=mmdebstrap [slirp4netns]=slirp4netns [curl]=curl)
missing=()
for command in "${!package_of[@]}"; do command -v "$command" >/dev/null || missing+=("${package_of[$command]}"); done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || skip "missing ${missing[*]} and no apt-get to install them"
  echo "installing from Debian's packages: ${missing[*]}"
  # Not named `install`: the stand-in base copies bun in with coreutils' install(1) further down.
  apt_install() {
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends "${missing[@]}" \
      >/dev/null
  }
  apt_install || { timeout 300 apt-get -o DPkg::Lock::Timeout=300 -qq update && apt_install; } ||
    skip "apt-get could not install ${missing[*]}"
  for command in "${!package_of[@]}"; do command -v "$command" >/dev/null || skip "$command is not on PATH even after apt-get"; done
fi

# The bun binary the npm package ships (the platform package's, or where bun's postinstall moved it).
case "$(uname -m)" in
x86_64) bun_arch=x64 ;;
aarch64) bun_arch=aarch64 ;;
*) skip "no bun binary for $(uname -m) in node_modules" ;;
esac
bun=
for candidate in node_modules/@oven/bun-linux-"$bun_arch"*/bin/bun node_modules/bun/bin/bun.exe; do
  if [ -x "$candidate" ]; then
    bun=$repo/$candidate
    break
  fi
done
[ -n "$bun" ] || skip "no bun binary in node_modules: run npm install (or npm ci) first"

# The two bases, as the Dockerfile names them.
build_base=$(awk '$1 == "FROM" && $3 == "AS" { print $2; exit }' Dockerfile)
run_base=$(awk '$1 == "FROM" && $3 != "AS" { print $2 }' Dockerfile | tail -n 1)
bun_version=$("$bun" --version)
[ "${build_base##*:}" = "$bun_version" ] ||
  skip "node_modules has bun $bun_version but the Dockerfile builds on $build_base: run npm ci"

# ---- one temporary directory for everything; the trap removes what is in it --------------------------------------

work=$(mktemp -d /tmp/esm-image-test.XXXXXX)
podman_=(podman --root "$work/storage" --runroot "$work/run" --runtime runc --events-backend none)
background=()

# Every podman call is bounded; $bound seconds unless the caller sets another.
pm() { timeout "${bound:-60}" "${podman_[@]}" "$@"; }

cleanup() {
  trap '' INT TERM
  local pid
  for pid in "${background[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; done
  for pid in "${background[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  done
  if [ -d "$work/storage" ]; then
    # Build containers (an interrupted build's) show only with --external.
    pm ps -a --external -q 2>/dev/null | xargs -r timeout 60 "${podman_[@]}" rm -f -t 0 >/dev/null 2>&1
    pm rmi -a -f >/dev/null 2>&1
  fi
  # Only plain files may remain: never remove across a mount point.
  local mount
  for mount in $(awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do umount "$mount" 2>/dev/null || umount -l "$mount"; done
  if awk -v w="$work" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "left behind: mounts under $work (remove them by hand)"
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT
trap 'echo "terminated"; exit 143' TERM

# Runs COMMAND in the background, in its own process group so the trap can end it and its children.
spawn() {
  setsid "$@" &
  background+=("$!")
}

# Waits, bounded, for a long foreground step, so that an interrupt reaches the trap at once.
run_step() {
  local log=$1
  shift
  setsid "$@" >"$log" 2>&1 &
  local pid=$!
  background+=("$pid")
  wait "$pid"
}

# wait_for SECONDS COMMAND...: polls until COMMAND succeeds; false if SECONDS pass first.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

ulimit_of() {
  local limit
  limit=$(ulimit "-H$1")
  if [ "$limit" = unlimited ] || [ "$limit" -gt "$2" ]; then echo "$2"; else echo "$limit"; fi
}
# Explicit limits: the engine's default open-file limit is above what this host allows its processes.
nofile=$(ulimit_of n 65536)
nproc=$(ulimit_of u 4096)
limits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

bound=30 pm info >"$work/info.log" 2>&1 || skip "podman cannot run here: $(grep -m1 -i error "$work/info.log")"

# ---- the bases: pulled when the registry answers, otherwise made from Debian's archive ----------------------------

arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
debian_root() {
  [ -f "$work/debian.tar" ] && return 0
  echo "making a minimal Debian 12 root with mmdebstrap"
  bound=600 TMPDIR=$work run_step "$work/mmdebstrap.log" timeout 600 mmdebstrap --mode=unshare --variant=essential \
    --architectures="$arch" --skip=output/dev \
    --include=ca-certificates,libstdc++6,libgcc-s1,libssl3,libgomp1,tzdata,netbase \
    bookworm "$work/debian.tar" http://deb.debian.org/debian ||
    {
      tail -n 5 "$work/mmdebstrap.log"
      return 1
    }
  mkdir "$work/debian"
  tar -C "$work/debian" -xf "$work/debian.tar"
}

# oven/bun: the Debian root with the npm package's bun binary, as the official image installs it.
make_bun_base() {
  debian_root || return 1
  local root=$work/debian
  install -m 0755 "$bun" "$root/usr/local/bin/bun" && ln -sf bun "$root/usr/local/bin/bunx" || return 1
  tar -C "$root" --numeric-owner -cf - . | bound=300 pm import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /home/bun/app' --change 'CMD ["/usr/local/bin/bun"]' - "$build_base" >/dev/null
}

# distroless cc: the files of its Debian packages (no dpkg, no shell), its CA bundle, users and folders.
make_distroless_base() {
  debian_root || return 1
  local root=$work/debian stage=$work/distroless package list
  mkdir -p "$stage"/{etc/ssl/certs,home/nonroot,tmp}
  for package in base-files netbase tzdata libc6 libssl3 libgcc-s1 libgomp1 libstdc++6; do
    list=$root/var/lib/dpkg/info/$package:$arch.list
    [ -f "$list" ] || list=$root/var/lib/dpkg/info/$package.list
    cat "$list"
  done | sed -E 's#^/(bin|sbin|lib|lib64)(/|$)#/usr/\1\2#' | sort -u | while read -r path; do
    if [ -L "$root$path" ] || { [ -e "$root$path" ] && [ ! -d "$root$path" ]; }; then echo ".$path"; fi
  done >"$work/distroless.files"
  tar -C "$root" --no-recursion -cf - -T "$work/distroless.files" | tar -C "$stage" -xf -
  for link in bin sbin lib lib64; do [ -e "$root/$link" ] && cp -P "$root/$link" "$stage/$link"; done
  cp "$root/etc/ssl/certs/ca-certificates.crt" "$stage/etc/ssl/certs/"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$stage/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$stage/etc/group"
  chown 65532:65532 "$stage/home/nonroot"
  chmod 0700 "$stage/home/nonroot"
  chmod 1777 "$stage/tmp"
  [ ! -e "$stage/bin/sh" ] || return 1
  tar -C "$stage" --numeric-owner -cf - . | bound=300 pm import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532' --change 'WORKDIR /home/nonroot' - "$run_base" >/dev/null
}

# An image name as docker reads it: a first part without a dot, a colon or "localhost" is on Docker Hub.
qualified() {
  case "$1" in
  */*) case "${1%%/*}" in *.* | *:* | localhost) echo "$1" ;; *) echo "docker.io/$1" ;; esac ;;
  *) echo "docker.io/library/$1" ;;
  esac
}
build_base=$(qualified "$build_base")
run_base=$(qualified "$run_base")

# base IMAGE MAKER: pulls IMAGE where IMAGE_TEST_PULL=1 says a registry is reachable, or makes a stand-in with MAKER.
# Without it nothing is pulled: the test reaches no address but loopback and Debian's archive.
base() {
  if [ "${IMAGE_TEST_PULL:-0}" != 1 ]; then
    echo "base $1: not pulled (IMAGE_TEST_PULL=1 pulls it); making a stand-in"
    "$2"
    return
  fi
  if bound=120 pm pull -q "$1" >"$work/pull.log" 2>&1; then
    echo "base $1: pulled"
    return 0
  fi
  echo "base $1: cannot be pulled (…$(tail -n 1 "$work/pull.log" | tail -c 90)); making a stand-in"
  "$2"
}
check "the build base $build_base is there (pulled or made)" base "$build_base" make_bun_base
check "the run base $run_base is there (pulled or made)" base "$run_base" make_distroless_base
rm -rf --one-file-system "$work/debian" "$work/debian.tar" "$work/distroless"

# The engine must start a container at all here; if not, say why and stop.
if ! bound=60 pm run --rm --network none --pull=never "${limits[@]}" "$build_base" bun --version >"$work/smoke.log" 2>&1; then
  skip "podman cannot start a container here: $(tail -n 1 "$work/smoke.log" | cut -c1-200)"
fi

# ---- the build ---------------------------------------------------------------------------------------------------

# Behind a TLS-intercepting proxy the install step needs its CA: the bundle NODE_EXTRA_CA_CERTS names, as a secret.
secret=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$NODE_EXTRA_CA_CERTS" ]; then
  secret=(--secret "id=npm_ca,src=$NODE_EXTRA_CA_CERTS")
  echo "build secret npm_ca: $NODE_EXTRA_CA_CERTS (from NODE_EXTRA_CA_CERTS)"
fi
image=localhost/envoy-shutdown-manager:image-test
build_started=$SECONDS
if bound=900 run_step "$work/build.log" timeout 900 "${podman_[@]}" build --pull=never --network host "${limits[@]}" \
  "${secret[@]}" --layers=false -t "$image" -f Dockerfile .; then
  pass "the Dockerfile builds, unchanged, with pulls disabled ($((SECONDS - build_started)) s)"
else
  fail "the Dockerfile builds, unchanged, with pulls disabled"
  tail -n 20 "$work/build.log"
  echo "${passed} passed, ${failed} failed"
  exit 1
fi
size=$(pm image inspect --format '{{.Size}}' "$image")
figure "image size: $((size / 1024 / 1024)) MiB ($size bytes, uncompressed)"

# ---- runs, as a user runs the image ------------------------------------------------------------------------------

# As Kubernetes runs it with readOnlyRootFilesystem: nothing writable but the volumes it is given.
run_options=(--pull=never --read-only --read-only-tmpfs=false "${limits[@]}")
# The sidecar's port published on the host's loopback only; nothing else leaves the container's network.
published=(--network slirp4netns:allow_host_loopback=false -p 127.0.0.1::8090)

# fake_envoy DIR: the repo's fake Envoy on the host, its admin API on DIR/admin.sock (which the container's user may
# use) and a live data plane on loopback; sets data_port.
fake_envoy() {
  local dir=$1
  mkdir -p "$dir"
  chmod 0777 "$dir"
  spawn bash -c 'umask 0; exec "$0" test/support/fake-envoy-cli.ts --admin-socket "$1/admin.sock" --info-dir "$1" 2>>"$1/fake.log"' \
    "$bun" "$dir"
  wait_for 10 test -S "$dir/admin.sock" -a -f "$dir/epoch-0.json" || return 1
  data_port=$(grep -o '"dataPort":[0-9]*' "$dir/epoch-0.json" | cut -d: -f2)
}

# The fake Envoy's health-check state as its /ready says it: LIVE or DRAINING.
envoy_state() { curl -s --max-time 2 --unix-socket "$1/admin.sock" http://envoy/ready; }

# sidecar NAME OPTIONS... -- IMAGE-ARGS...: starts a container; sets pid (its process on the host) and port.
sidecar() {
  local name=esm-image-test-$1 options=()
  shift
  while [ "$1" != -- ]; do
    options+=("$1")
    shift
  done
  shift
  pm run -d --name "$name" "${run_options[@]}" "${options[@]}" "$image" "$@" >/dev/null || return 1
  container=$name
  pid=$(pm inspect --format '{{.State.Pid}}' "$name")
  port=$(pm port "$name" 8090/tcp 2>/dev/null | sed 's/.*://')
}

healthz() { [ "$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ]; }

# The process's real and effective uid and gid, as the kernel has them.
runs_as_nonroot() {
  awk '/^Uid:|^Gid:/ { for (i = 2; i <= 5; i++) if ($i != 65532) bad = 1 } END { exit bad }' "/proc/$pid/status"
}

# traffic DIR: keep-alive clients on the fake's data plane until its drain closes them; bounded.
traffic() {
  spawn bash -c 'timeout 60 "$0" test/image/traffic.ts "$1" 5 45000 >"$2/traffic.out" 2>&1; echo $? >"$2/traffic.rc"' \
    "$bun" "$data_port" "$1"
  wait_for 10 grep -qs connected "$1/traffic.out"
}
drained_by_envoy() {
  wait_for 10 test -f "$1/traffic.rc" && [ "$(cat "$1/traffic.rc")" = 0 ]
}
exit_code() { pm inspect --format '{{.State.ExitCode}}' "$1"; }
stopped() { [ "$(pm inspect --format '{{.State.Status}}' "$1")" = exited ]; }

# --- --help and the links Contour's and Envoy Gateway's manifests start it by
pm run --rm --network none "${run_options[@]}" "$image" --help >"$work/help.out" 2>&1
check "--help lists the commands" grep -q 'shutdown-manager' "$work/help.out"
pm run --rm --network none "${run_options[@]}" --entrypoint /bin/contour "$image" envoy shutdown --help >"$work/contour.out" 2>&1
check "/bin/contour speaks Contour's flags (envoy shutdown --help)" grep -q -- '--check-delay' "$work/contour.out"
pm run --rm --network none "${run_options[@]}" --entrypoint /usr/local/bin/envoy-gateway "$image" envoy shutdown-manager --help \
  >"$work/gateway.out" 2>&1
check "envoy-gateway speaks Envoy Gateway's flags (envoy shutdown-manager --help)" grep -q -- '--ready-timeout' "$work/gateway.out"
no_shell() {
  ! pm run --rm --network none "${run_options[@]}" --entrypoint /bin/sh "$image" -c true >"$work/shell.out" 2>&1 &&
    grep -qi 'no such file' "$work/shell.out"
}
check "the image has no shell" no_shell
check "the image runs as 65532:65532" test "$(pm image inspect --format '{{.Config.User}}' "$image")" = 65532:65532

# --- the sidecar as the httpGet wiring runs it: read-only root, /admin on a tmpfs, Envoy's admin socket mounted
envoy=$work/envoy-httpget
if fake_envoy "$envoy" && sidecar httpget "${published[@]}" --tmpfs /admin:rw,mode=1777,size=1m -v "$envoy:/envoy" -- \
  shutdown-manager --admin-address=/envoy/admin.sock --check-delay=0s --check-interval=1s; then
  started=$(date -d "$(pm inspect --format '{{.State.StartedAt}}' "$container" | sed 's/ [A-Z]*$//')" +%s%N)
  if wait_for 10 healthz; then
    pass "the sidecar answers /healthz on its published port"
    figure "first /healthz answer: $((($(date +%s%N) - started) / 1000000)) ms after the container started (polled every 50 ms)"
  else
    fail "the sidecar answers /healthz on its published port"
    pm logs "$container" | tail -n 5
  fi
  check "the sidecar's process runs as uid and gid 65532" runs_as_nonroot
  sleep 2
  figure "idle memory: $(awk '/^VmRSS:/ { printf "%.1f MiB RSS", $2 / 1024 }' "/proc/$pid/status") 2 s after start"
  if traffic "$envoy"; then
    code=$(curl -s --max-time 40 -o "$envoy/shutdown.out" -w '%{http_code}' "http://127.0.0.1:$port/shutdown")
    check "httpGet /shutdown answers 200 once the drain is complete" test "$code" = 200
    check "Envoy's health checks were failed (DRAINING)" test "$(envoy_state "$envoy")" = DRAINING
    check "every keep-alive client was drain-closed, no request lost" drained_by_envoy "$envoy"
    cat "$envoy/traffic.out" | tail -n 1 | sed 's/^/        traffic: /'
  else
    fail "keep-alive clients reach the fake Envoy"
  fi
  # A hook told to write its ready file outside /admin meets the read-only root, and says so before it starts.
  pm exec "$container" /usr/local/bin/envoy-shutdown-manager shutdown --ready-file=/ok >"$envoy/readonly.out" 2>&1
  readonly_code=$?
  sed 's/^/        hook: /' "$envoy/readonly.out"
  check "the root filesystem is read-only: a hook's ready file at /ok is refused in one line (EROFS, exit 2)" \
    test "$readonly_code-$(grep -c EROFS "$envoy/readonly.out")-$(wc -l <"$envoy/readonly.out")" = 2-1-1
  stop_started=$SECONDS
  bound=30 pm stop -t 20 "$container" >/dev/null
  check "SIGTERM after the drain: the sidecar exits 0 at once ($((SECONDS - stop_started)) s)" \
    test "$(exit_code "$container")-$((SECONDS - stop_started < 5))" = 0-1
else
  fail "the httpGet sidecar starts"
  pm logs "$container" 2>&1 | tail -n 5
fi

# --- kubelet's race in the httpGet wiring: SIGTERM reaches the sidecar before Envoy's hook does
envoy=$work/envoy-race
if fake_envoy "$envoy" && sidecar race "${published[@]}" --tmpfs /admin:rw,mode=1777,size=1m -v "$envoy:/envoy" -- \
  shutdown-manager --admin-address=/envoy/admin.sock --check-delay=0s --check-interval=1s && wait_for 10 healthz &&
  traffic "$envoy"; then
  pm kill -s TERM "$container" >/dev/null
  code=$(curl -s --max-time 40 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/shutdown")
  check "SIGTERM first: a /shutdown within --hook-wait is still served to the end of the drain" test "$code" = 200
  check "SIGTERM first: every client was drain-closed" drained_by_envoy "$envoy"
  check "SIGTERM first: the sidecar then exits 0" wait_for 20 stopped "$container"
  [ "$(exit_code "$container")" = 0 ] || fail "the exit code after SIGTERM is 0 (got $(exit_code "$container"))"
else
  fail "the sidecar for the SIGTERM race starts"
fi

# exec_hook NAME ENTRYPOINT SIDECAR-ARGS HOOK-ARGS ADMIN-OPTIONS...: the exec-hook wiring (as Contour wires it):
# Envoy's httpGet /shutdown waits while kubelet execs the hook in the sidecar's container; the ready file releases it.
exec_hook() {
  local name=$1 entrypoint=$2 sidecar_args=$3 hook_args=$4 envoy=$work/envoy-$1
  shift 4
  fake_envoy "$envoy" || {
    fail "$name: the fake Envoy starts"
    return
  }
  # shellcheck disable=SC2086 # the argument lists are single words
  if ! { sidecar "$name" "${published[@]}" --entrypoint "$entrypoint" "$@" -- $sidecar_args && wait_for 10 healthz; }; then
    fail "$name: the sidecar starts"
    pm logs "$container" 2>&1 | tail -n 5
    return
  fi
  traffic "$envoy" || fail "$name: keep-alive clients reach the fake Envoy"
  spawn bash -c 'curl -s --max-time 40 -o /dev/null -w "%{http_code}" "http://127.0.0.1:$0/shutdown" >"$1/envoy-hook.code"' "$port" "$envoy"
  sleep 0.2
  # shellcheck disable=SC2086
  if bound=40 pm exec "$container" "$entrypoint" $hook_args >"$envoy/hook.out" 2>&1; then
    pass "$name: the exec hook exits 0 once drained"
  else
    fail "$name: the exec hook exits 0 once drained"
    tail -n 5 "$envoy/hook.out"
  fi
  check "$name: Envoy's waiting httpGet /shutdown is released with 200" \
    wait_for 10 grep -q 200 "$envoy/envoy-hook.code"
  check "$name: Envoy's health checks were failed (DRAINING)" test "$(envoy_state "$envoy")" = DRAINING
  check "$name: every keep-alive client was drain-closed, no request lost" drained_by_envoy "$envoy"
  bound=30 pm stop -t 20 "$container" >/dev/null
  check "$name: SIGTERM after the drain: exit 0" test "$(exit_code "$container")" = 0
}

# The project's own exec wiring (examples/envoy-daemonset-exec.yaml): the hook joins the sidecar's drain, which runs
# on the sidecar's flags; the ready file on the tmpfs at /admin, Envoy's admin socket mounted apart.
exec_hook exec /usr/local/bin/envoy-shutdown-manager \
  "shutdown-manager --admin-address=/envoy/admin.sock --check-delay=0s --check-interval=1s --ready-file=/admin/ok" \
  "shutdown --ready-file=/admin/ok --check-delay=0s --drain-timeout=30s" \
  --tmpfs /admin:rw,mode=1777,size=1m -v "$work/envoy-exec:/envoy"
# Contour's DaemonSet, unchanged: /bin/contour, the admin socket and the ready file on the shared /admin volume.
exec_hook contour /bin/contour "envoy shutdown-manager" "envoy shutdown --check-delay=0s" -v "$work/envoy-contour:/admin"
check "contour: the ready file on the shared volume says drained" grep -qx drained "$work/envoy-contour/ok"

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
