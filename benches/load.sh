#!/usr/bin/env bash
# Decision-API load test: Portcullis against the bare-axum floor, side by side.
#
# Both servers are pinned to one core (SERVER_CPU), the load generator (wrk)
# to another (LOAD_CPU). Each round drives the floor and then Portcullis at
# every concurrency for DURATION seconds with keep-alive connections; the
# report gives the median over ROUNDS of req/s, p50 and p99, and each figure
# as a ratio to the floor's in the same round set.
#
# With --decision-log, a third target runs: Portcullis with decision logging
# to a file (JSONL, masked, rotated at 100 MiB), pinned to the same core, so
# the logging cost shows as the ratio between the two Portcullis rows.
#
# Usage: benches/load.sh [--duration S] [--rounds N] [--path DATA_PATH] [--body FILE] [--decision-log]
# Bounded: ROUNDS x (2 or 3) targets x 2 concurrencies x DURATION seconds, plus start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
DATA_PATH=${DATA_PATH:-provisioning/decision}
BODY=${BODY:-examples/feature-payments.json}
CONCURRENCIES=${CONCURRENCIES:-"1 32"}
FLOOR_ADDR=127.0.0.1:18180
PDP_ADDR=127.0.0.1:18181
LOGGED_ADDR=127.0.0.1:18182
DECISION_LOG=${DECISION_LOG:-0}

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --path) DATA_PATH=$2; shift 2 ;;
    --body) BODY=$2; shift 2 ;;
    --decision-log) DECISION_LOG=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

ensure_wrk

cargo build --release --bin portcullis --example floor >&2
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

taskset -c "$SERVER_CPU" target/release/examples/floor "$FLOOR_ADDR" 2>/dev/null &
pids+=($!)
taskset -c "$SERVER_CPU" target/release/portcullis serve --addr "$PDP_ADDR" --log-level warn &
pids+=($!)
addrs=("$FLOOR_ADDR" "$PDP_ADDR")
targets="floor portcullis"
if [ "$DECISION_LOG" = 1 ]; then
  log_dir=$(mktemp -d)
  PORTCULLIS_DECISION_LOGS=true PORTCULLIS_DECISION_LOGS_SINK=file \
    PORTCULLIS_DECISION_LOGS_FILE="$log_dir/decisions.jsonl" \
    taskset -c "$SERVER_CPU" target/release/portcullis serve --addr "$LOGGED_ADDR" --log-level warn &
  pids+=($!)
  addrs+=("$LOGGED_ADDR")
  targets="$targets logged"
fi
for addr in "${addrs[@]}"; do
  wait_for "http://$addr/" -d '{}'
done

# Check the request really is a decision before measuring it.
curl -sf -X POST -H 'content-type: application/json' --data-binary @"$BODY" \
  "http://$PDP_ADDR/v1/data/$DATA_PATH" | grep -q '"result"' \
  || { echo "the decision request does not produce a result" >&2; exit 1; }


run() { # target url concurrency -> "rps p50 p99"
  local out
  out=$(BODY_FILE="$BODY" taskset -c "$LOAD_CPU" wrk -t1 -c"$2" -d"${DURATION}s" --latency -s benches/wrk-post.lua "$1")
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}' | to_us)
  p99=$(echo "$out" | awk '$1=="99%" {print $2}' | to_us)
  errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  if [ -n "$errors" ]; then echo "non-2xx answers during the run: $errors" >&2; exit 1; fi
  echo "$rps $p50 $p99"
}

results=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  for c in $CONCURRENCIES; do
    echo "round $round: floor c=$c" >&2
    echo "floor $c $(run "http://$FLOOR_ADDR/" "$c")" >>"$results"
    echo "round $round: portcullis c=$c" >&2
    echo "portcullis $c $(run "http://$PDP_ADDR/v1/data/$DATA_PATH" "$c")" >>"$results"
    if [ "$DECISION_LOG" = 1 ]; then
      echo "round $round: portcullis with decision log c=$c" >&2
      echo "logged $c $(run "http://$LOGGED_ADDR/v1/data/$DATA_PATH" "$c")" >>"$results"
    fi
  done
done

stat() { awk -v t="$1" -v c="$2" -v col="$3" '$1==t && $2==c {print $col}' "$results" | median; }

echo
echo "decision path: /v1/data/$DATA_PATH   body: $BODY   ${ROUNDS} rounds x ${DURATION}s, server cpu $SERVER_CPU, wrk cpu $LOAD_CPU"
printf '%-11s %4s %10s %9s %9s %10s %10s %10s\n' target conc req/s p50_us p99_us rps/floor p50/floor p99/floor
for c in $CONCURRENCIES; do
  f_rps=$(stat floor "$c" 3); f_p50=$(stat floor "$c" 4); f_p99=$(stat floor "$c" 5)
  for t in $targets; do
    rps=$(stat "$t" "$c" 3); p50=$(stat "$t" "$c" 4); p99=$(stat "$t" "$c" 5)
    awk -v t="$t" -v c="$c" -v r="$rps" -v p="$p50" -v q="$p99" -v fr="$f_rps" -v fp="$f_p50" -v fq="$f_p99" \
      'BEGIN {printf "%-11s %4s %10.0f %9.1f %9.1f %10.2f %10.2f %10.2f\n", t, c, r, p, q, r/fr, p/fp, q/fq}'
  done
done
for c in $CONCURRENCIES; do
  for t in $targets; do
    echo "$t c=$c req/s per round: $(awk -v t="$t" -v c="$c" '$1==t && $2==c {printf "%.0f ", $3}' "$results")"
  done
done
if [ "$DECISION_LOG" = 1 ]; then
  for c in $CONCURRENCIES; do
    awk -v c="$c" -v a="$(stat portcullis "$c" 3)" -v b="$(stat logged "$c" 3)" \
      'BEGIN {printf "decision log to file, c=%s: throughput %.3f of unlogged (cost %.1f %%)\n", c, b/a, (1-b/a)*100}'
    # Each round runs the two back to back, so the ratio within a round is
    # less exposed to the machine's drift than the ratio of medians.
    ratios=$(paste <(awk -v c="$c" '$1=="portcullis" && $2==c {print $3}' "$results") \
      <(awk -v c="$c" '$1=="logged" && $2==c {print $3}' "$results") | awk '{printf "%.3f\n", $2/$1}')
    echo "  logged/unlogged per round: $(echo "$ratios" | tr '\n' ' ')median $(echo "$ratios" | median)"
  done
  echo "events logged: $(wc -l <"$log_dir/decisions.jsonl") (+ rotated: $(ls "$log_dir" | wc -l) files)"
  rm -rf "$log_dir"
fi
rm -f "$results"
