#!/usr/bin/env bash
# `promtool check metrics` on the live /metrics endpoint, after traffic that
# touches every metric family: Data API decisions (cached and not, errors),
# batch, ad-hoc queries, data writes, admission reviews over TLS against the
# Gatekeeper fixtures (allowed, denied, fast path), decision logs, an
# overload refusal is not provoked (it needs a held connection; the test
# suite covers it).
#
# promtool comes from Debian's `prometheus` package, installed when missing.
#
# Usage: scripts/check-metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
API=127.0.0.1:18271
ADMIT=127.0.0.1:18471

if ! command -v promtool >/dev/null; then
  echo "installing promtool (Debian package prometheus)" >&2
  apt-get install -y prometheus >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y prometheus >/dev/null; }
fi
cargo build --release --bin portcullis >&2

WORK=$(mktemp -d /tmp/portcullis-metrics.XXXXXX)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
cat >"$WORK/config.yaml" <<YAML
server:
  addr: $API
bundles: [policies, bundles, tests/fixtures/gatekeeper/bundle, tests/fixtures/gatekeeper/inventory]
admission:
  enabled: true
  addr: $ADMIT
  cert_file: $WORK/tls.crt
  key_file: $WORK/tls.key
decision_logs:
  enabled: true
  sink: file
  file:
    path: $WORK/decisions.jsonl
log:
  level: warn
YAML
target/release/portcullis serve --config "$WORK/config.yaml" &
PDP=$!
trap 'kill $PDP 2>/dev/null || true; rm -rf "$WORK"' EXIT
wait_for "http://$API/health/ready"

post() { curl -s -o /dev/null "http://$API$1" -d "$2"; }
for _ in 1 2; do post /v1/data/provisioning/decision @examples/feature-payments.json; done
post /v1/data/secrets/access/decision @examples/secret-request.json
post /v1/data/edge/nothing '{"input": {}}'
post /v1/data/provisioning/decision '{"input": '
post /v1/batch/data/provisioning/decision "{\"inputs\": {\"a\": $(jq -c .input examples/feature-payments.json)}}"
post /v1/query '{"query": "x := 1"}'
curl -s -o /dev/null -X PUT "http://$API/v1/data/live/usage" -d '{"cpu": 1}'
for review in examples/admission-pod.json examples/admission-pod-denied.json benches/admission-lease.json; do
  body=$(jq -c 'if has("input") then .input else . end' "$review")
  curl -sk -o /dev/null "https://$ADMIT/v1/admit" -H 'content-type: application/json' -d "$body"
done

curl -s "http://$API/metrics" >"$WORK/metrics.txt"
echo "families: $(grep -c '^# TYPE' "$WORK/metrics.txt")" >&2
grep "^# TYPE" "$WORK/metrics.txt" | cut -d" " -f3 | tr "\n" " " >&2; echo >&2
promtool check metrics <"$WORK/metrics.txt"
echo "promtool check metrics: OK"
