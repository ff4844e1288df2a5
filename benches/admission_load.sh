#!/usr/bin/env bash
# Admission webhook load over HTTPS keep-alive at concurrency 8: a ~21 KB Pod
# AdmissionReview (a fresh uid on every request) evaluated against
# data.admission and 10 Gatekeeper constraints, with the decision cache on
# (the default) and off, and a Lease update (the fast path that evaluates
# nothing). Server on SERVER_CPU, wrk on LOAD_CPU, ROUNDS x DURATION seconds
# each, medians reported.
#
# Usage: benches/admission_load.sh   (env: DURATION, ROUNDS, SERVER_CPU, LOAD_CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ADDR=127.0.0.1:18443
POD=benches/admission-pod-20k.json
LEASE=benches/admission-lease.json

ensure_wrk
cargo build --release --bin portcullis >&2
work=$(mktemp -d)
server=""
stop_server() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=""; fi; }
trap 'stop_server; rm -rf "$work"' EXIT
webhook-config/gen-certs.sh --out "$work" >/dev/null 2>&1

start_server() { # cache on|off
  cat > "$work/config.yaml" <<YAML
server:
  addr: 127.0.0.1:18182
bundles:
  - policies
  - bundles
  - tests/fixtures/gatekeeper/bundle
  - tests/fixtures/gatekeeper/inventory
watch:
  enabled: false
admission:
  enabled: true
  addr: $ADDR
  cert_file: $work/tls.crt
  key_file: $work/tls.key
cache:
  enabled: $([ "$1" = on ] && echo true || echo false)
log:
  level: warn
YAML
  taskset -c "$SERVER_CPU" target/release/portcullis serve --config "$work/config.yaml" &
  server=$!
  wait_for "https://$ADDR/health"
  curl -sk "https://$ADDR/v1/admit" --data-binary @$POD | grep -q '"allowed":true' \
    || { echo "the Pod review is not allowed" >&2; exit 1; }
}

run() { # body -> "rps p50 p99"
  local out
  out=$(BODY_FILE="$1" taskset -c "$LOAD_CPU" wrk -t1 -c8 -d"${DURATION}s" --latency -s benches/wrk-admission.lua "https://$ADDR/v1/admit")
  if echo "$out" | grep -q "Non-2xx"; then echo "non-2xx answers" >&2; exit 1; fi
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="50%" {print $2}' | to_us) $(echo "$out" | awk '$1=="99%" {print $2}' | to_us)"
}

results=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  start_server on
  echo "pod_cached $(run $POD)" >>"$results"
  echo "lease $(run $LEASE)" >>"$results"
  stop_server
  start_server off
  echo "pod_uncached $(run $POD)" >>"$results"
  stop_server
done
echo
echo "admission over HTTPS, concurrency 8, ${ROUNDS} rounds x ${DURATION}s, server cpu $SERVER_CPU, wrk cpu $LOAD_CPU"
echo "policies: data.admission + 10 Gatekeeper constraints (tests/fixtures/gatekeeper/bundle)"
printf '%-36s %10s %9s %9s   %s\n' review req/s p50_us p99_us "p99_us per round"
for t in pod_cached pod_uncached lease; do
  case $t in
    pod_cached) label="Pod $(wc -c < $POD) B, cache on";;
    pod_uncached) label="Pod $(wc -c < $POD) B, cache off";;
    lease) label="Lease (fast path)";;
  esac
  printf '%-36s %10.0f %9.1f %9.1f   %s\n' "$label" \
    "$(awk -v t=$t '$1==t {print $2}' "$results" | median)" \
    "$(awk -v t=$t '$1==t {print $3}' "$results" | median)" \
    "$(awk -v t=$t '$1==t {print $4}' "$results" | median)" \
    "$(awk -v t=$t '$1==t {printf "%.0f ", $4}' "$results")"
done
