#!/usr/bin/env bash
# Container test (DESIGN.md section 5): build the project's Dockerfile without a Docker engine and
# prove that the image starts, answers HTTP and runs as a non-root user.
#
#   1. tools       apt-get install debootstrap, podman, buildah, curl (only what is missing)
#   2. base        debootstrap a minbase bookworm with python3, python3-venv, ca-certificates and
#                  `podman import` it as localhost/debian-python:bookworm (reused when it exists)
#   3. build       buildah bud --isolation=chroot --build-arg PYTHON_IMAGE=<that base> -t localhost/lossd:ci
#   4. run         buildah from + buildah run --isolation=chroot <the image's CMD> on a free port
#   5. checks      /healthz, non-root server process, the image's HEALTHCHECK, no test extras in the
#                  image, and POST /v1/losses/mse with the seed example
#
# Run as root from anywhere: `bash .ci/container-test.sh` (or `make container-test`).
# Prints one PASS/FAIL line per check and exits non-zero when any check fails.
# Knobs (environment): LOSSD_CT_REBUILD_BASE=1 rebuilds the base image even when it exists;
# LOSSD_CT_STARTUP_TIMEOUT (seconds, default 60); LOSSD_CT_KEEP_IMAGE=0 removes the built image;
# LOSSD_CT_BASE_IMAGE and LOSSD_CT_IMAGE rename the two images (e.g. for concurrent runs).
set -Eeuo pipefail
# Stage timeouts use `timeout --foreground`: a plain `timeout` puts its command in a process group
# of its own, which a signal to this script's group (Ctrl-C, CI's timeout) would then miss.

cd "$(dirname "$0")/.."
PROJECT_DIR=$(pwd)

BASE_IMAGE=${LOSSD_CT_BASE_IMAGE:-localhost/debian-python:bookworm}
IMAGE=${LOSSD_CT_IMAGE:-localhost/lossd:ci}
SUITE=bookworm
STARTUP_TIMEOUT=${LOSSD_CT_STARTUP_TIMEOUT:-60}
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
export DEBIAN_FRONTEND=noninteractive

WORK=$(mktemp -d /tmp/lossd-container-test.XXXXXX)
CONTAINER=""
SERVER_PID=""
FAILURES=0
PASSES=0
STAGE_NAME=""
STAGE_START=0
BUILD_RUNNING=0
CONTAINERS_BEFORE_BUILD=""
SUMMARY=()

# HTTP requests retry briefly: a busy shared machine can refuse or drop one connection.
CURL=(curl -sS --retry 3 --retry-connrefused --retry-delay 1)

server_state() {  # for failure messages
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "server process alive"
    else
        echo "server process gone"
    fi
}

log() { printf '[container-test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() { PASSES=$((PASSES + 1)); printf 'PASS: %s\n' "$*"; }
fail() { FAILURES=$((FAILURES + 1)); printf 'FAIL: %s\n' "$*"; }

stage() {  # stage NAME: ends the previous stage (recording its duration) and starts NAME
    local now
    now=$(date +%s)
    if [[ -n $STAGE_NAME ]]; then
        SUMMARY+=("$(printf '%-8s %4ss' "$STAGE_NAME" $((now - STAGE_START)))")
    fi
    STAGE_NAME=$1
    STAGE_START=$now
    [[ -n $1 ]] && log "=== stage: $1 ==="
    return 0
}

# A fatal error ends the test: report it as a failure and let the EXIT trap clean up.
die() {
    fail "$*"
    exit 1
}

descendants() {  # all descendant PIDs of $1 (children first), read from /proc
    local parent=$1 pid stat ppid
    for stat in /proc/[0-9]*/stat; do
        pid=${stat#/proc/}
        pid=${pid%/stat}
        ppid=$(sed -E 's/^.*\) [A-Za-z] ([0-9]+) .*$/\1/' "$stat" 2>/dev/null) || continue
        if [[ $ppid == "$parent" ]]; then
            echo "$pid"
            descendants "$pid"
        fi
    done
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    local pids i
    pids=$(descendants "$SERVER_PID" || true)
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for i in $(seq 1 20); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    for pid in $pids; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

cleanup() {
    local rc=$?
    set +e
    trap '' INT TERM  # a second signal must not cut the cleanup short (it is bounded: ~15 s)
    stage ""
    stop_server
    if ((BUILD_RUNNING)); then
        # An interrupted `buildah bud` leaves its intermediate containers behind: remove the ones
        # that appeared since the build started.
        for id in $(buildah containers --quiet --notruncate 2>/dev/null); do
            grep -qx "$id" <<<"$CONTAINERS_BEFORE_BUILD" || buildah rm "$id" >/dev/null 2>&1
        done
    fi
    if [[ -n $CONTAINER ]]; then
        buildah rm "$CONTAINER" >/dev/null 2>&1 || log "warning: could not remove container $CONTAINER"
    fi
    if [[ ${LOSSD_CT_KEEP_IMAGE:-1} == 0 ]]; then
        buildah rmi "$IMAGE" >/dev/null 2>&1
    fi
    if ((FAILURES > 0)) && [[ -s $WORK/server.log ]]; then
        log "last lines of the server log:"
        tail -n 40 "$WORK/server.log" | sed 's/^/    | /'
    fi
    rm -rf "$WORK"
    log "stage durations:"
    for line in "${SUMMARY[@]}"; do log "  $line"; done
    if ((rc != 0 || FAILURES > 0)); then
        printf 'CONTAINER TEST: FAIL (%d passed, %d failed, exit %d)\n' "$PASSES" "$FAILURES" "$rc"
        ((rc != 0)) || rc=1
    else
        printf 'CONTAINER TEST: PASS (%d checks)\n' "$PASSES"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

retry() {  # retry N DELAY CMD...: run CMD up to N times
    local n=$1 delay=$2 i
    shift 2
    for ((i = 1; i <= n; i++)); do
        "$@" && return 0
        ((i < n)) && log "attempt $i/$n failed: $*; retrying in ${delay}s" && sleep "$delay"
    done
    return 1
}

free_port() {  # a TCP port nobody listens on, below the kernel's ephemeral range (32768-60999)
    local port i
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

debian_mirror() {  # the first URIs: of the Debian sources, else deb.debian.org
    local uri=""
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit}' /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# ---------------------------------------------------------------------------------------------
stage tools
[[ $(id -u) == 0 ]] || die "must run as root (debootstrap, podman import and buildah need it)"

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap debian-archive-keyring)
command -v podman >/dev/null || missing+=(podman)
command -v buildah >/dev/null || missing+=(buildah)
command -v curl >/dev/null || missing+=(curl)
[[ -r $HOST_CA_BUNDLE ]] || missing+=(ca-certificates)
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    apt_install() {
        apt-get -q -o Acquire::Retries=3 update &&
            apt-get -q -y -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 install --no-install-recommends \
                "${missing[@]}"
    }
    retry 3 10 apt_install >"$WORK/apt.log" 2>&1 || {
        tail -n 30 "$WORK/apt.log"
        die "apt-get install ${missing[*]}"
    }
fi
log "$(podman --version), $(buildah --version | cut -d'(' -f1), debootstrap $(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null || echo '?')"

# ---------------------------------------------------------------------------------------------
stage base
if [[ ${LOSSD_CT_REBUILD_BASE:-0} != 1 ]] && podman image exists "$BASE_IMAGE"; then
    log "reusing $BASE_IMAGE"
else
    mirror=$(debian_mirror)
    log "debootstrap --variant=minbase $SUITE from $mirror (about a minute)"
    bootstrap() {
        rm -rf "$WORK/rootfs"
        timeout --foreground 900 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            "$SUITE" "$WORK/rootfs" "$mirror"
    }
    retry 2 10 bootstrap >"$WORK/debootstrap.log" 2>&1 || {
        tail -n 30 "$WORK/debootstrap.log"
        [[ -f $WORK/rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$WORK/rootfs/debootstrap/debootstrap.log"
        die "debootstrap $SUITE"
    }
    # apt lists and caches are of no use in a base image.
    rm -rf "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/var/cache/apt/*.bin \
        "$WORK"/rootfs/var/cache/apt/archives/*.deb
    log "podman import -> $BASE_IMAGE"
    tar --numeric-owner -C "$WORK/rootfs" -c . |
        podman import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["python3"]' - "$BASE_IMAGE" >"$WORK/import.log" 2>&1 || {
        cat "$WORK/import.log"
        die "podman import $BASE_IMAGE"
    }
    rm -rf "$WORK/rootfs"
fi
pass "base image $BASE_IMAGE ($(podman image inspect --format '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"

# ---------------------------------------------------------------------------------------------
stage build
build_args=(--build-arg "PYTHON_IMAGE=$BASE_IMAGE")
volumes=()
if [[ -r $HOST_CA_BUNDLE ]]; then
    # The machine's CA bundle is what lets pip inside the build reach the package index (the
    # egress may intercept TLS); PIP_CERT makes pip use it whatever pip the base ships.
    volumes+=(-v "$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
    build_args+=(--build-arg "PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
fi
# A package-index mirror configured on the host (environment or pip config) is used too, when it
# is an http(s) URL (file:// indexes on the host's disk are not visible inside the build).
pip_setting() {  # pip_setting ENV_NAME CONFIG_KEY
    local value=${!1:-}
    if [[ -z $value ]] && command -v pip3 >/dev/null; then
        value=$(pip3 config get "$2" 2>/dev/null || true)
    fi
    local url out=()
    for url in $value; do
        [[ $url == http://* || $url == https://* ]] && out+=("$url")
    done
    echo "${out[*]:-}"
}
index_url=$(pip_setting PIP_INDEX_URL global.index-url)
extra_index_url=$(pip_setting PIP_EXTRA_INDEX_URL global.extra-index-url)
[[ -n $index_url ]] && build_args+=(--build-arg "PIP_INDEX_URL=$index_url")
[[ -n $extra_index_url ]] && build_args+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra_index_url")
log "buildah bud --isolation=chroot --layers --force-rm --format docker ${build_args[*]} ${volumes[*]} -t $IMAGE ."
old_image_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
build() {
    timeout --foreground --kill-after=10 900 buildah bud --isolation=chroot --layers --force-rm --format docker \
        "${build_args[@]}" "${volumes[@]}" -t "$IMAGE" "$PROJECT_DIR"
}
CONTAINERS_BEFORE_BUILD=$(buildah containers --quiet --notruncate 2>/dev/null || true)
BUILD_RUNNING=1
if retry 2 5 build 2>&1 | tee "$WORK/build.log" | sed 's/^/    | /'; then
    pass "image $IMAGE built from the Dockerfile ($(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
else
    die "buildah bud (log above)"
fi
BUILD_RUNNING=0
# The build moved the tag: drop the image it replaced (kept if something still uses it).
new_image_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [[ -n $old_image_id && $old_image_id != "$new_image_id" ]]; then
    buildah rmi "$old_image_id" >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------------------------------------
stage config
inspect() { buildah inspect --type image --format "$1" "$IMAGE"; }
mapfile -t CMD < <(inspect '{{range .Docker.Config.Cmd}}{{.}}{{"\n"}}{{end}}')
mapfile -t HEALTHCHECK < <(inspect '{{if .Docker.Config.Healthcheck}}{{range .Docker.Config.Healthcheck.Test}}{{.}}{{"\n"}}{{end}}{{end}}')
IMAGE_USER=$(inspect '{{.Docker.Config.User}}')
EXPOSED=$(inspect '{{range $port, $_ := .Docker.Config.ExposedPorts}}{{$port}} {{end}}')
ENVIRONMENT=$(inspect '{{range .Docker.Config.Env}}{{.}}{{"\n"}}{{end}}')

[[ ${CMD[*]:-} == "lossd serve" ]] && pass "CMD is [lossd, serve]" || fail "CMD is '${CMD[*]:-}', expected 'lossd serve'"
[[ -n $IMAGE_USER && ${IMAGE_USER%%:*} != root && ${IMAGE_USER%%:*} != 0 ]] &&
    pass "image USER is non-root ($IMAGE_USER)" || fail "image USER is '${IMAGE_USER}' (root)"
[[ $EXPOSED == *8000/tcp* ]] && pass "EXPOSE 8000" || fail "exposed ports: '$EXPOSED'"
grep -qx 'LOSSD_HOST=0.0.0.0' <<<"$ENVIRONMENT" && pass "LOSSD_HOST=0.0.0.0 in the image" ||
    fail "LOSSD_HOST=0.0.0.0 missing from the image environment"
[[ ${HEALTHCHECK[0]:-} == CMD* ]] && pass "HEALTHCHECK kept in the image" ||
    fail "no HEALTHCHECK in the image config"

# ---------------------------------------------------------------------------------------------
stage start
CONTAINER=$(buildah from --name "lossd-ci-$$" "$IMAGE")
PORT=$(free_port) || die "no free TCP port"
BASE_URL="http://127.0.0.1:$PORT"
((${#CMD[@]})) || die "the image has no CMD to run"
log "buildah run --isolation=chroot -e LOSSD_PORT=$PORT $CONTAINER -- ${CMD[*]}"
buildah run --isolation=chroot -e "LOSSD_PORT=$PORT" "$CONTAINER" -- "${CMD[@]}" \
    >"$WORK/server.log" 2>&1 </dev/null &
SERVER_PID=$!

started=0
deadline=$((SECONDS + STARTUP_TIMEOUT))
while ((SECONDS < deadline)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
    fi
    if curl -fsS -m 2 -o /dev/null "$BASE_URL/healthz" 2>/dev/null; then
        started=1
        break
    fi
    sleep 0.5
done
if ((started)); then
    pass "server answered /healthz on port $PORT after $((SECONDS - deadline + STARTUP_TIMEOUT))s"
else
    kill -0 "$SERVER_PID" 2>/dev/null && why="no answer within ${STARTUP_TIMEOUT}s" || why="the server exited"
    die "server did not start: $why (log below)"
fi

# ---------------------------------------------------------------------------------------------
stage checks

# 1. liveness
status=$("${CURL[@]}" -m 10 -o "$WORK/healthz.json" -w '%{http_code}' "$BASE_URL/healthz" || true)
body=$(tr -d ' \n' <"$WORK/healthz.json" 2>/dev/null || true)
if [[ $status == 200 && $body == '{"status":"ok"}' ]]; then
    pass "GET /healthz -> 200 $body"
else
    fail "GET /healthz -> $status $body (expected 200 {\"status\":\"ok\"}; $(server_state))"
fi

# 2. the server process (not just the image config) runs as a non-root user
server_uids=""
for pid in $(descendants "$SERVER_PID"); do
    [[ -r /proc/$pid/cmdline ]] || continue
    if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'lossd serve'; then
        uid=$(awk '/^Uid:/ {print $3}' "/proc/$pid/status")  # effective uid
        server_uids+="$pid:$uid "
    fi
done
if [[ -z $server_uids ]]; then
    fail "could not find the server process under PID $SERVER_PID"
elif [[ " $server_uids" == *":0 "* ]]; then
    fail "server process runs as root (pid:uid $server_uids)"
else
    pass "server process runs as a non-root user (pid:uid $server_uids)"
fi

# 3. the image's HEALTHCHECK command itself succeeds (it must not need curl)
if ((${#HEALTHCHECK[@]} > 1)); then
    if [[ ${HEALTHCHECK[0]} == CMD-SHELL ]]; then
        hc=(/bin/sh -c "${HEALTHCHECK[1]}")
    else
        hc=("${HEALTHCHECK[@]:1}")
    fi
    if timeout --foreground 30 buildah run --isolation=chroot -e "LOSSD_PORT=$PORT" "$CONTAINER" -- "${hc[@]}" \
        >"$WORK/healthcheck.log" 2>&1; then
        pass "HEALTHCHECK command succeeds inside the container"
    else
        fail "HEALTHCHECK command failed: $(tail -n 3 "$WORK/healthcheck.log")"
    fi
fi

# 4. the image holds the runtime dependencies only (no dev/conformance extras)
extras=$(timeout --foreground 60 buildah run --isolation=chroot "$CONTAINER" -- python -c \
    'import importlib.util as u; print(" ".join(m for m in ("pytest", "hypothesis", "mypy", "ruff", "keras", "jax", "scipy") if u.find_spec(m)))' \
    2>&1) || extras="(check failed: $extras)"
[[ -z $extras ]] && pass "no dev/conformance packages in the image" ||
    fail "test-only packages in the image: $extras"

# 5. the v1 API on the seed example (SEEDS/002): mean_squared_error per sample
seed='{"y_true": [[0,1,1],[0,0,1]], "y_pred": [[1,1,0],[1,0,1]]}'
status=$("${CURL[@]}" -m 30 -o "$WORK/mse.json" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data "$seed" "$BASE_URL/v1/losses/mse" || true)
body=$(tr -d ' \n' <"$WORK/mse.json" 2>/dev/null || true)
per_sample=$(sed -nE 's/.*"per_sample":\[([^]]*)\].*/\1/p' <<<"$body")
loss=$(sed -nE 's/.*"loss":"([^"]*)".*/\1/p' <<<"$body")
if [[ $status == 200 && $loss == mean_squared_error ]] &&
    awk -v got="$per_sample" 'BEGIN {
        n = split(got, v, ","); split("0.6666667,0.33333334", want, ",")
        if (n != 2) exit 1
        for (i = 1; i <= 2; i++) { d = v[i] - want[i]; if (d < 0) d = -d; if (d > 1e-6) exit 1 }
    }'; then
    pass "POST /v1/losses/mse (seed example) -> per_sample [$per_sample]"
else
    fail "POST /v1/losses/mse (seed example) -> $status ${body:0:300} (expected 200, loss mean_squared_error, per_sample [0.6666667,0.33333334]; $(server_state))"
fi

stage ""
((FAILURES == 0))
