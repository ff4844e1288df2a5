#!/usr/bin/env bash
# CPU time the server spends per request, from the nanosecond run times
# of its threads (/proc/PID/task/*/schedstat) before and after a bounded
# wrk run: what a feature costs per decision on the core, independent of
# how the load generator fares. The decision-log writer thread's share is
# reported on its own.
#
# Usage: benches/cpu_per_request.sh LABEL [ENV=VALUE ...]
#   e.g. benches/cpu_per_request.sh logged PORTCULLIS_DECISION_LOGS=true PORTCULLIS_DECISION_LOGS_SINK=file
# The server (release build, shipped policies, given environment) runs on
# SERVER_CPU, wrk on LOAD_CPU, concurrency 32, RUNS runs of DURATION seconds,
# POST /v1/data/provisioning/decision with examples/feature-payments.json.
# A decision log, when enabled with the file sink, goes to a temporary
# directory removed afterwards. Bounded: RUNS x DURATION seconds plus start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

label=${1:?usage: benches/cpu_per_request.sh LABEL [ENV=VALUE ...]}
shift
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ADDR=127.0.0.1:18196

ensure_wrk
cargo build --release --bin portcullis >&2
log_dir=$(mktemp -d)
env "$@" PORTCULLIS_DECISION_LOGS_FILE="$log_dir/decisions.jsonl" \
  taskset -c "$SERVER_CPU" target/release/portcullis serve --addr "$ADDR" --log-level warn >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$log_dir"' EXIT
url="http://$ADDR/v1/data/provisioning/decision"
wait_for "$url" -d @examples/feature-payments.json
# "total_ns writer_ns": run time of all threads, and of the decision-log
# writer thread alone (0 when there is none).
cpu_ns() {
  local total=0 writer=0 task ns
  for task in /proc/"$pid"/task/*; do
    ns=$(awk '{print $1}' "$task/schedstat" 2>/dev/null || echo 0)
    total=$((total + ns))
    if [ "$(cat "$task/comm" 2>/dev/null)" = decision-log ]; then writer=$ns; fi
  done
  echo "$total $writer"
}
for run in $(seq 1 "$RUNS"); do
  read -r total0 writer0 < <(cpu_ns)
  out=$(BODY_FILE=examples/feature-payments.json taskset -c "$LOAD_CPU" \
    wrk -t1 -c32 -d"${DURATION}s" -s benches/wrk-post.lua "$url")
  read -r total1 writer1 < <(cpu_ns)
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  awk -v l="$label" -v r="$run" -v rps="$rps" -v t=$((total1 - total0)) -v w=$((writer1 - writer0)) -v n="$requests" \
    'BEGIN {printf "%s run %d: %.0f req/s, %.2f us of server CPU per request (decision-log writer %.2f us)\n", l, r, rps, t / 1e3 / n, w / 1e3 / n}'
done
