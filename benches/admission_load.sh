#!/usr/bin/env bash
# Admission webhook load over HTTPS keep-alive: a ~20 KB Pod AdmissionReview
# (evaluated against data.admission) and a Lease update (the fast path that
# evaluates nothing), at concurrency 8, server on SERVER_CPU and wrk on
# LOAD_CPU, ROUNDS x DURATION seconds each, medians reported.
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

ensure_wrk
cargo build --release --bin portcullis >&2
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
webhook-config/gen-certs.sh --out "$work" >/dev/null 2>&1
cat > "$work/config.yaml" <<YAML
server:
  addr: 127.0.0.1:18182
admission:
  enabled: true
  addr: $ADDR
  cert_file: $work/tls.crt
  key_file: $work/tls.key
log:
  level: warn
YAML
taskset -c "$SERVER_CPU" target/release/portcullis serve --config "$work/config.yaml" &
for _ in $(seq 1 100); do curl -sk -o /dev/null "https://$ADDR/health" && break; sleep 0.1; done
curl -sk "https://$ADDR/v1/admit" --data-binary @benches/admission-pod-20k.json | grep -q '"allowed":true' \
  || { echo "the Pod review is not allowed" >&2; exit 1; }

run() { # body -> "rps p50 p99"
  local out
  out=$(BODY_FILE="$1" taskset -c "$LOAD_CPU" wrk -t1 -c8 -d"${DURATION}s" --latency -s benches/wrk-post.lua "https://$ADDR/v1/admit")
  if echo "$out" | grep -q "Non-2xx"; then echo "non-2xx answers" >&2; exit 1; fi
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="50%" {print $2}' | to_us) $(echo "$out" | awk '$1=="99%" {print $2}' | to_us)"
}
results=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  echo "pod $(run benches/admission-pod-20k.json)" >>"$results"
  echo "lease $(run benches/admission-lease.json)" >>"$results"
done
echo
echo "admission over HTTPS, concurrency 8, ${ROUNDS} rounds x ${DURATION}s, server cpu $SERVER_CPU, wrk cpu $LOAD_CPU"
printf '%-28s %10s %9s %9s\n' review req/s p50_us p99_us
for t in pod lease; do
  label=$([ "$t" = pod ] && echo "Pod, $(wc -c < benches/admission-pod-20k.json) bytes" || echo "Lease (fast path)")
  printf '%-28s %10.0f %9.1f %9.1f\n' "$label" \
    "$(awk -v t=$t '$1==t {print $2}' "$results" | median)" \
    "$(awk -v t=$t '$1==t {print $3}' "$results" | median)" \
    "$(awk -v t=$t '$1==t {print $4}' "$results" | median)"
done
rm -f "$results"
