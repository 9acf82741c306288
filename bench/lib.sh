# shellcheck shell=bash
# Shared by bench/wrap.sh and bench/profile.sh (sourced, not run).
# Installs what the benchmarks need, starts servers pinned to one core, and stops everything
# this shell started when it exits, however it exits (normal end, failure, Ctrl-C, SIGTERM).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BENCH_VENV="$BENCH_DIR/.venv-moto"       # bench-only: moto[server] and py-spy, never the project's
KYOK_VENV="$REPO/.venv"

# Fixed dev credentials (a fresh data directory each time, so these are always the ones in use).
BENCH_INSTANCE_ID=6b3c1f2e-0000-4000-8000-00000000be4c
BENCH_API_KEY=kyok_bench_0123456789abcdefghijklmnopqrstuv

SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
if [ -z "${NICE+x}" ]; then
    if [ "$(id -u)" = 0 ]; then NICE=-10; else NICE=0; fi
fi

BENCH_PIDS=()
BENCH_TMP=""

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# --------------------------------------------------------------------------- cleanup

bench_cleanup() {
    local rc=$? pid _
    trap - EXIT INT TERM
    for pid in "${BENCH_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for _ in $(seq 1 100); do             # up to 20 s: kyok lets requests finish, then seals
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "process $pid did not stop on SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ]; then
        rm -rf "$BENCH_TMP"
    fi
    exit "$rc"
}

bench_traps() {
    trap bench_cleanup EXIT
    trap 'log "interrupted"; exit 130' INT
    trap 'log "terminated"; exit 143' TERM
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kyok-bench.XXXXXX")
}

# --------------------------------------------------------------------------- installs

ensure_tools() {
    command -v taskset >/dev/null || die "taskset (util-linux) is missing"
    command -v curl >/dev/null || die "curl is missing"
    command -v python3 >/dev/null || die "python3 is missing"
    [ "$(nproc)" -ge 2 ] || die "needs 2 cores (server on CPU $SERVER_CPU, load on CPU $LOAD_CPU)"
    if ! command -v wrk >/dev/null; then
        log "installing wrk (Debian package)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    fi
}

ensure_kyok() {
    if [ ! -x "$KYOK_VENV/bin/kyok" ]; then
        log "kyok is not installed: make venv"
        make -C "$REPO" venv
    fi
}

# ensure_bench_venv FILE...: the bench-only venv with the pinned requirements files installed.
ensure_bench_venv() {
    local req stamp
    [ -x "$BENCH_VENV/bin/python" ] || python3 -m venv "$BENCH_VENV"
    for req in "$@"; do
        stamp="$BENCH_VENV/.$(basename "$req").stamp"
        if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ]; then
            log "installing $(basename "$req") into ${BENCH_VENV#"$REPO"/}"
            "$BENCH_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
            touch "$stamp"
        fi
    done
}

# --------------------------------------------------------------------------- servers

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL PID SECONDS: until URL answers (any HTTP status) or the process dies.
wait_http() {
    local url=$1 pid=$2 secs=$3 _
    for _ in $(seq 1 $((secs * 5))); do
        kill -0 "$pid" 2>/dev/null || return 1
        if curl -s -o /dev/null --max-time 2 "$url"; then return 0; fi
        sleep 0.2
    done
    return 1
}

# launch_kyok NAME CMD...: run CMD (a `kyok server`-like command line, to which the dev options
# are appended) on 127.0.0.1 (free port) with a fresh data dir $BENCH_TMP/NAME-data, the fixed
# dev credentials, pinned to SERVER_CPU, log in $BENCH_TMP/NAME.log. Sets LAUNCHED_PID and
# LAUNCHED_URL.
launch_kyok() {
    local name=$1 data="$BENCH_TMP/$1-data" port
    shift
    mkdir -p "$data"
    port=$(free_port)
    # Only the defaults are measured: drop any KYOK_* setting of the caller's environment.
    # shellcheck disable=SC2046  # one "-u NAME" pair per variable, split on purpose
    env $(env | sed -n 's/^\(KYOK_[A-Za-z0-9_]*\)=.*/-u \1/p') \
        KYOK_DEV_INSTANCE_ID="$BENCH_INSTANCE_ID" KYOK_DEV_API_KEY="$BENCH_API_KEY" \
        nice -n "$NICE" taskset -c "$SERVER_CPU" \
        "$@" --dev --data-dir "$data" --host 127.0.0.1 --port "$port" \
        >"$BENCH_TMP/$name.log" 2>&1 &
    LAUNCHED_PID=$!
    BENCH_PIDS+=("$LAUNCHED_PID")
    LAUNCHED_URL="http://127.0.0.1:$port"
    if ! wait_http "$LAUNCHED_URL/health" "$LAUNCHED_PID" 60; then
        tail -n 30 "$BENCH_TMP/$name.log" >&2
        die "$name did not start"
    fi
}

# start_kyok: kyok server --dev on 127.0.0.1 (free port), fresh data dir, fixed credentials,
# pinned to SERVER_CPU. Sets KYOK_PID and KYOK_URL.
start_kyok() {
    launch_kyok kyok "$KYOK_VENV/bin/kyok" server
    KYOK_PID=$LAUNCHED_PID
    KYOK_URL=$LAUNCHED_URL
    log "kyok server --dev: pid $KYOK_PID, $KYOK_URL, CPU $SERVER_CPU"
}

# start_kyok_noledger: the same, but bench/noledger_server.py: `kyok server --dev` with the audit
# middleware taken out (BENCH ONLY: the "without the ledger" baseline of bench/wrap.sh; kyok
# itself cannot run without its ledger). Its own fresh data dir. Sets NOLEDGER_PID, NOLEDGER_URL.
start_kyok_noledger() {
    launch_kyok kyok-noledger "$KYOK_VENV/bin/python" "$BENCH_DIR/noledger_server.py"
    NOLEDGER_PID=$LAUNCHED_PID
    NOLEDGER_URL=$LAUNCHED_URL
    grep -q "NO AUDIT LEDGER" "$BENCH_TMP/kyok-noledger.log" \
        || die "bench/noledger_server.py did not confirm that the audit middleware is out"
    log "kyok without ledger (bench/noledger_server.py): pid $NOLEDGER_PID, $NOLEDGER_URL, CPU $SERVER_CPU"
}

# start_moto: moto_server on 127.0.0.1 (free port), pinned to SERVER_CPU. Sets MOTO_PID, MOTO_URL.
start_moto() {
    local port
    port=$(free_port)
    nice -n "$NICE" taskset -c "$SERVER_CPU" \
        "$BENCH_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$BENCH_TMP/moto.log" 2>&1 &
    MOTO_PID=$!
    BENCH_PIDS+=("$MOTO_PID")
    MOTO_URL="http://127.0.0.1:$port"
    if ! wait_http "$MOTO_URL/moto-api/" "$MOTO_PID" 60; then
        tail -n 30 "$BENCH_TMP/moto.log" >&2
        die "moto_server did not start"
    fi
    log "moto_server: pid $MOTO_PID, $MOTO_URL, CPU $SERVER_CPU"
}
