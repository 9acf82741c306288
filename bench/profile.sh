#!/usr/bin/env bash
# Where a kyok wrap request's time goes, under the same load as bench/wrap.sh.
#
#   bench/profile.sh            # DURATION=10 seconds per sampled run; NO_DOC=1 leaves the docs alone
#
# Starts `kyok server --dev` as bench/wrap.sh does (fresh data dir, pinned to CPU $SERVER_CPU),
# runs the wrap load with wrk on CPU $LOAD_CPU once unprofiled and twice with py-spy attached
# (raw stacks, then a flame graph), stops the server, then times the pieces of a request
# in-process (bench/breakdown.py, pinned to CPU $SERVER_CPU). Keeps everything in
# bench/results/profile-<time>/ and rewrites the "where the time goes" section of
# docs/benchmarks.md. py-spy goes into the bench-only venv bench/.venv-moto.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
RATE=${RATE:-250}

bench_traps
ensure_tools
ensure_kyok
ensure_bench_venv "$BENCH_DIR/requirements-moto.txt" "$BENCH_DIR/requirements-profile.txt"

OUT="$BENCH_DIR/results/profile-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
start_kyok

python3 "$BENCH_DIR/profile.py" sample \
    --kyok-url "$KYOK_URL" --kyok-instance "$BENCH_INSTANCE_ID" --kyok-api-key "$BENCH_API_KEY" \
    --kyok-pid "$KYOK_PID" --kyok-python "$KYOK_VENV/bin/python" \
    --moto-python "$BENCH_VENV/bin/python" --py-spy "$BENCH_VENV/bin/py-spy" \
    --duration "$DURATION" --rate "$RATE" --conns "$CONNS" \
    --server-cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU" --nice "$NICE" --out "$OUT" &
SAMPLER_PID=$!
BENCH_PIDS=("$SAMPLER_PID" "${BENCH_PIDS[@]}")
wait "$SAMPLER_PID"

# The server is stopped before the in-process timings, so that they have the core to themselves.
kill -TERM "$KYOK_PID"
wait "$KYOK_PID" 2>/dev/null || true
log "timing the pieces of a wrap request in-process (bench/breakdown.py)"
nice -n "$NICE" taskset -c "$SERVER_CPU" "$KYOK_VENV/bin/python" "$BENCH_DIR/breakdown.py" \
    > "$OUT/breakdown.json" &
BREAKDOWN_PID=$!
BENCH_PIDS=("$BREAKDOWN_PID" "${BENCH_PIDS[@]}")
wait "$BREAKDOWN_PID"

doc_flag=()
[ -z "${NO_DOC:-}" ] || doc_flag=(--no-doc)
cmd="bench/profile.sh"
[ "$DURATION" = 10 ] || cmd="DURATION=$DURATION bench/profile.sh"
python3 "$BENCH_DIR/profile.py" finish --out "$OUT" --breakdown "$OUT/breakdown.json" \
    --command "$cmd" "${doc_flag[@]}"
log "raw profile in ${OUT#"$REPO"/}"
