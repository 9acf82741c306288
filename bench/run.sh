#!/usr/bin/env bash
# Every performance figure of docs/benchmarks.md, one command (issue 7):
#
#   bench/run.sh            # all benches in turn, each rewriting its own section of the doc
#   ONLY="batch start" bench/run.sh     # a subset: wrap workers kmip batch keys_create keys_list
#                                       # keys_list_sqlite start envelope
#
# The benches run one after another (never two at once: each pins its server to CPU 0 and its
# load to CPU 1) and each installs what it lacks (wrk, the bench-only venvs of moto, PyKMIP, the
# envelope peers). Knobs of the single scripts (RUNS, DURATION, NO_DOC=1, ...) pass through.
# Peers measured in the same run: moto (bench/wrap.sh, wrk), the PyKMIP server (bench/kmip_peer.py,
# one Python generator for both it and kyok: KMIP is TTLV over mutual TLS, which wrk cannot send),
# aws-encryption-sdk and Tink (bench/envelope.py). Takes about 50 minutes (the SQLite listing
# bench seeds a million keys: ~20 of them); a log of each bench
# is kept in bench/results/run-<time>/. bench/start.py prints JSON only (start to serving of the
# dev node); the others rewrite their sections of docs/benchmarks.md.
set -uo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
cd "$REPO" || exit 1
[ -x .venv/bin/python ] || make venv >/dev/null || exit 1
PY=.venv/bin/python
OUT="$BENCH_DIR/results/run-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
ALL="wrap workers kmip batch keys_create keys_list keys_list_sqlite start envelope"
failed=()
for name in ${ONLY:-$ALL}; do
    case $name in
        wrap) cmd=(bash bench/wrap.sh) ;;
        workers) cmd=("$PY" bench/workers.py) ;;
        keys_create) cmd=(bash bench/keys_create.sh) ;;
        kmip) cmd=("$PY" bench/kmip_peer.py) ;;
        batch) cmd=("$PY" bench/batch.py) ;;
        keys_list) cmd=("$PY" bench/keys_list.py) ;;
        keys_list_sqlite) cmd=(env STORE=sqlite "$PY" bench/keys_list.py) ;;
        start) cmd=("$PY" bench/start.py) ;;
        envelope) cmd=("$PY" bench/envelope.py) ;;
        *) echo "bench/run.sh: unknown bench '$name' (one of: $ALL)" >&2; exit 2 ;;
    esac
    echo "[run] $name: ${cmd[*]}" >&2
    start=$(date +%s)
    if "${cmd[@]}" >"$OUT/$name.json" 2>"$OUT/$name.log"; then
        echo "[run] $name done in $(( $(date +%s) - start )) s" >&2
    else
        echo "[run] $name FAILED (see $OUT/$name.log)" >&2
        failed+=("$name")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "[run] failed: ${failed[*]}" >&2
    exit 1
fi
echo "[run] all done; results in $OUT, figures in docs/benchmarks.md" >&2
