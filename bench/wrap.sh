#!/usr/bin/env bash
# kyok wrap/unwrap, with and without its audit ledger, vs moto's AWS KMS Encrypt/Decrypt, one
# server core each, in the same run.
#
#   bench/wrap.sh                     # 3 runs x (kyok wrap, kyok wrap (no ledger), kyok unwrap,
#                                     #   kyok unwrap (no ledger), moto Encrypt, moto Decrypt)
#   RUNS=5 DURATION=20 bench/wrap.sh  # knobs below; NO_DOC=1 leaves docs/benchmarks.md alone
#
# Installs what is missing (wrk from Debian's packages; moto[server] into bench/.venv-moto; the
# project's venv with `make venv`), starts `kyok server --dev` (fresh data dir, fixed instance id
# and API key), bench/noledger_server.py (the same server with the audit middleware taken out, its
# own fresh data dir: the bench-only "without the ledger" baseline) and `moto_server`, all on
# 127.0.0.1 and pinned to CPU $SERVER_CPU (only one is loaded at a time), and drives them with wrk
# pinned to CPU $LOAD_CPU (bench/driver.py). Prints the table, keeps the raw output in
# bench/results/wrap-<time>/ and rewrites the kyok-vs-moto section of docs/benchmarks.md.
# Everything it starts is stopped when it exits, also on failure and Ctrl-C.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}              # measured runs of each workload (medians are taken over them)
DURATION=${DURATION:-10}     # seconds of each measured wrk run
WARMUP=${WARMUP:-3}          # seconds of warm-up before each measured run (not recorded)
CONNS=${CONNS:-16}           # wrk connections (one wrk thread)
QUIET_PCT=${QUIET_PCT:-15}   # wait before a run until other processes use < this % of a core
QUIET_WAIT=${QUIET_WAIT:-300}  # ... for at most this many seconds, then measure anyway

bench_traps
ensure_tools
ensure_kyok
ensure_bench_venv "$BENCH_DIR/requirements-moto.txt"

OUT="$BENCH_DIR/results/wrap-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

start_kyok
start_kyok_noledger
start_moto

cmd="bench/wrap.sh"
if [ "$RUNS $DURATION $WARMUP $CONNS" != "3 10 3 16" ]; then
    cmd="RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS bench/wrap.sh"
fi
doc_flag=()
[ -z "${NO_DOC:-}" ] || doc_flag=(--no-doc)

python3 "$BENCH_DIR/driver.py" measure \
    --kyok-url "$KYOK_URL" --kyok-instance "$BENCH_INSTANCE_ID" --kyok-api-key "$BENCH_API_KEY" \
    --kyok-pid "$KYOK_PID" --kyok-python "$KYOK_VENV/bin/python" \
    --noledger-url "$NOLEDGER_URL" --noledger-pid "$NOLEDGER_PID" \
    --moto-url "$MOTO_URL" --moto-pid "$MOTO_PID" --moto-python "$BENCH_VENV/bin/python" \
    --runs "$RUNS" --duration "$DURATION" --warmup "$WARMUP" --conns "$CONNS" \
    --server-cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU" --nice "$NICE" \
    --quiet-pct "$QUIET_PCT" --quiet-wait "$QUIET_WAIT" \
    --out "$OUT" --command "$cmd" "${doc_flag[@]}" &
# In the background and waited for, so that a SIGTERM to this script is handled at once.
DRIVER_PID=$!
BENCH_PIDS=("$DRIVER_PID" "${BENCH_PIDS[@]}")
wait "$DRIVER_PID"

tail -n 200 "$BENCH_TMP/kyok.log" > "$OUT/kyok-server.tail.log" 2>/dev/null || true
tail -n 200 "$BENCH_TMP/kyok-noledger.log" > "$OUT/kyok-noledger-server.tail.log" 2>/dev/null || true
tail -n 200 "$BENCH_TMP/moto.log" > "$OUT/moto-server.tail.log" 2>/dev/null || true
log "raw results in ${OUT#"$REPO"/}"
