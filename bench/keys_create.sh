#!/usr/bin/env bash
# Key creation on SQLite, durable: POST /api/v2/keys against `kyok server --dev`, one server core.
#
#   bench/keys_create.sh                     # 3 runs x 10 s of wrk creating root keys
#   RUNS=5 DURATION=20 bench/keys_create.sh  # knobs as bench/wrap.sh; NO_DOC=1 leaves the docs alone
#
# Starts `kyok server --dev` exactly as bench/wrap.sh does (bench/lib.sh: fresh data dir, SQLite,
# fixed instance id and API key, pinned to CPU $SERVER_CPU) and drives it with wrk pinned to CPU
# $LOAD_CPU (bench/keys_create.py, bench/lua/kp_create.lua: every request names a new key).
# After each run it checks that the store holds every key wrk saw a 201 for and that the audit
# ledger grew by at least as many events. Prints JSON, keeps the raw output in
# bench/results/keys_create-<time>/ and rewrites the "Key creation on SQLite" section of
# docs/benchmarks.md. Everything it starts is stopped when it exits.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-16}
QUIET_PCT=${QUIET_PCT:-15}
QUIET_WAIT=${QUIET_WAIT:-300}

bench_traps
ensure_tools
ensure_kyok

OUT="$BENCH_DIR/results/keys_create-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

start_kyok

cmd="bench/keys_create.sh"
if [ "$RUNS $DURATION $WARMUP $CONNS" != "3 10 3 16" ]; then
    cmd="RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS bench/keys_create.sh"
fi
doc_flag=()
[ -z "${NO_DOC:-}" ] || doc_flag=(--no-doc)

python3 "$BENCH_DIR/keys_create.py" \
    --kyok-url "$KYOK_URL" --kyok-instance "$BENCH_INSTANCE_ID" --kyok-api-key "$BENCH_API_KEY" \
    --kyok-pid "$KYOK_PID" --kyok-python "$KYOK_VENV/bin/python" \
    --runs "$RUNS" --duration "$DURATION" --warmup "$WARMUP" --conns "$CONNS" \
    --server-cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU" --nice "$NICE" \
    --quiet-pct "$QUIET_PCT" --quiet-wait "$QUIET_WAIT" \
    --out "$OUT" --command "$cmd" "${doc_flag[@]}" &
DRIVER_PID=$!
BENCH_PIDS=("$DRIVER_PID" "${BENCH_PIDS[@]}")
wait "$DRIVER_PID"

tail -n 200 "$BENCH_TMP/kyok.log" > "$OUT/kyok-server.tail.log" 2>/dev/null || true
log "raw results in ${OUT#"$REPO"/}"
