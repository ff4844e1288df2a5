#!/usr/bin/env bash
# The hardening figures in RELIABILITY.md: each hostile request's time and
# the server's peak resident memory while it runs, then the latency of
# ordinary decisions alone and while four hostile clients loop.
#
# The server (release build, shipped policies, cache off) is pinned to one
# core (SERVER_CPU), the clients and wrk to the other (LOAD_CPU).
# Bounded: a few seconds per hostile request, 3 x DURATION seconds of wrk.
#
# Usage: scripts/hostile.sh [--duration S]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ADDR=127.0.0.1:18191
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
ensure_wrk
cargo build --release --bin portcullis >&2

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

PORTCULLIS_CACHE=false taskset -c "$SERVER_CPU" target/release/portcullis serve \
  --addr "$ADDR" --log-level error &
server=$!
pids+=("$server")
wait_for "http://$ADDR/health"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }

# Run one request while sampling the server's RSS every 10 ms; print the
# time, the HTTP status and the peak RSS.
measure() {
  local name=$1 file=$2 url=$3
  local before peak sample out
  before=$(rss_kb); peak=$before
  taskset -c "$LOAD_CPU" curl -s -o "$work/out" -w '%{http_code} %{time_total}\n' \
    --max-time 30 -H 'content-type: application/json' --data-binary "@$file" \
    "http://$ADDR$url" > "$work/timing" &
  local client=$!
  while kill -0 "$client" 2>/dev/null; do
    sample=$(rss_kb); [ "$sample" -gt "$peak" ] && peak=$sample
    sleep 0.01
  done
  read -r status seconds < "$work/timing"
  printf '| %s | %s | %.3f s | %d MB | %d MB |\n' "$name" "$status" "$seconds" \
    $((before / 1024)) $((peak / 1024))
}

q() { printf '{"query": %s}' "$(printf '%s' "$1" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" > "$2"; }
q 'x := count(numbers.range(1, 50000000))' "$work/range.json"
q 'x := count(numbers.range(1, 1e9))' "$work/range9.json"
q 'x := sprintf("%0999999999d", [1])' "$work/sprintf.json"
q 'x := count([1 | some i in numbers.range(1, 100000); some j in numbers.range(1, 100000)])' "$work/loop.json"
python3 - "$work/batch.json" <<'EOF'
import json, sys
json.dump({"inputs": {f"i{i}": {"n": i} for i in range(1000)}}, open(sys.argv[1], "w"))
EOF
# The batch asks for the consistency checks over all of the platform data,
# the costliest document the shipped policies have.
echo "| request | status | time | RSS before | RSS peak |"
echo "|---|---|---|---|---|"
measure "query count(numbers.range(1, 5e7))" "$work/range.json" /v1/query
measure "query count(numbers.range(1, 1e9))" "$work/range9.json" /v1/query
measure 'query sprintf("%0999999999d", [1])' "$work/sprintf.json" /v1/query
measure "query: 1e10-step comprehension (runs to the time limit)" "$work/loop.json" /v1/query
measure "batch of 1000 inputs, system/check/errors" "$work/batch.json" /v1/batch/data/system/check/errors

# Ordinary decisions: alone, then with four clients looping on the
# comprehension that runs to the time limit, then on the 1000-input batch.
ordinary() {
  BODY_FILE=examples/feature-payments.json taskset -c "$LOAD_CPU" \
    wrk -t1 -c4 -d"${DURATION}s" --latency -s benches/wrk-post.lua \
    "http://$ADDR/v1/data/provisioning/decision" > "$work/wrk"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk" | to_us)
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk" | to_us)
  printf '| %s | %s | %s µs | %s µs |\n' "$1" "$rps" "$p50" "$p99"
}
clients=()
hostile_clients() {
  local file=$1 url=$2
  clients=()
  for _ in 1 2 3 4; do
    ( end=$((SECONDS + DURATION + 2))
      while [ $SECONDS -lt $end ]; do
        taskset -c "$LOAD_CPU" curl -s -o /dev/null --max-time 10 \
          -H 'content-type: application/json' --data-binary "@$file" "http://$ADDR$url"
      done ) &
    clients+=($!)
    pids+=($!)
  done
}
echo
echo "| ordinary decisions (wrk -c4, ${DURATION} s) | req/s | p50 | p99 |"
echo "|---|---|---|---|"
ordinary "alone"
hostile_clients "$work/loop.json" /v1/query
sleep 1
ordinary "with 4 clients looping on a time-limit query"
wait "${clients[@]}"
hostile_clients "$work/batch.json" /v1/batch/data/system/check/errors
sleep 1
ordinary "with 4 clients looping on a 1000-input batch"
wait "${clients[@]}"
echo
echo "RSS after: $(( $(rss_kb) / 1024 )) MB"
