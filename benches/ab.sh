#!/usr/bin/env bash
# A/B of two Portcullis binaries on the quota decision (cache off), with the
# bare-axum floor, in one run: server, floor and both binaries pinned to
# SERVER_CPU, wrk to LOAD_CPU; ROUNDS rounds of DURATION seconds at c=1 and
# c=32, the three targets interleaved so drift hits them alike.
#
# Usage: benches/ab.sh OLD_BINARY [NEW_BINARY]
#   e.g. git worktree add /tmp/old REV && (cd /tmp/old &&
#        CARGO_TARGET_DIR=/tmp/old-target cargo build --release --bin portcullis)
#        benches/ab.sh /tmp/old-target/release/portcullis
# Bounded: ROUNDS x 3 targets x 2 concurrencies x DURATION seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

OLD=${1:?usage: benches/ab.sh OLD_BINARY [NEW_BINARY]}
NEW=${2:-target/release/portcullis}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ensure_wrk
cargo build --release --bin portcullis --example floor >&2

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c "$SERVER_CPU" target/release/examples/floor 127.0.0.1:18380 2>/dev/null &
pids+=($!)
PORTCULLIS_CACHE=false taskset -c "$SERVER_CPU" "$OLD" serve --addr 127.0.0.1:18381 --log-level warn &
pids+=($!)
PORTCULLIS_CACHE=false taskset -c "$SERVER_CPU" "$NEW" serve --addr 127.0.0.1:18382 --log-level warn &
pids+=($!)
wait_for http://127.0.0.1:18381/health
wait_for http://127.0.0.1:18382/health

run() { # name addr concurrency
  BODY_FILE=examples/feature-payments.json taskset -c "$LOAD_CPU" \
    wrk -t1 -c"$3" -d"${DURATION}s" --latency -s benches/wrk-post.lua \
    "http://$2/v1/data/provisioning/decision" > /tmp/ab-wrk.out
  printf '%s %s %s %s %s\n' "$1" "$3" \
    "$(awk '/Requests\/sec/ {print $2}' /tmp/ab-wrk.out)" \
    "$(awk '$1 == "50%" {print $2}' /tmp/ab-wrk.out | to_us)" \
    "$(awk '$1 == "99%" {print $2}' /tmp/ab-wrk.out | to_us)"
}
results=$(mktemp)
for _ in $(seq 1 "$ROUNDS"); do
  for c in 1 32; do
    run floor 127.0.0.1:18380 "$c" >> "$results"
    run old 127.0.0.1:18381 "$c" >> "$results"
    run new 127.0.0.1:18382 "$c" >> "$results"
  done
done
echo "| target | c | req/s (median of $ROUNDS) | p50 µs | p99 µs | req/s ÷ floor |"
echo "|---|---|---|---|---|---|"
for c in 1 32; do
  floor=$(awk -v c="$c" '$1 == "floor" && $2 == c {print $3}' "$results" | median)
  for t in floor old new; do
    rps=$(awk -v t="$t" -v c="$c" '$1 == t && $2 == c {print $3}' "$results" | median)
    p50=$(awk -v t="$t" -v c="$c" '$1 == t && $2 == c {print $4}' "$results" | median)
    p99=$(awk -v t="$t" -v c="$c" '$1 == t && $2 == c {print $5}' "$results" | median)
    printf '| %s | %s | %.0f | %s | %s | %s |\n' "$t" "$c" "$rps" "$p50" "$p99" \
      "$(awk -v a="$rps" -v b="$floor" 'BEGIN {printf "%.3f", a / b}')"
  done
done
rm -f "$results"
