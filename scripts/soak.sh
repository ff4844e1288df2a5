#!/usr/bin/env bash
# Fault and soak test, all on loopback, bounded in time.
#
# Runs Portcullis from a release build with a local bundle (watched), a
# remote bundle from a local HTTP bundle server, the admission listener over
# TLS and decision logs to a file (never-drop), and drives it at a fixed rate
# (examples/soak_load.rs: the orchestrator, the secret broker and the API
# server) while, on a schedule:
#   every  5 s  the local data bundle is replaced by a new revision;
#   every 20 s  a policy with a syntax error is dropped into the local
#               bundle for 3 s (the activation must fail, serving goes on);
#   every 30 s  the remote bundle is replaced by a corrupt archive for 5 s,
#               and then by one whose .manifest was tampered with (a file
#               outside its roots) for 5 s;
#   every 60 s  the bundle server is killed and restarted 5 s later;
#   every 45 s  the admission certificate is rotated.
# At the end SIGTERM arrives while load continues. The report gives failed
# requests (must be 0 apart from those after SIGTERM), p99 per minute,
# resident memory per minute, activations and failures, and decisions
# logged versus decisions answered.
#
# Usage: scripts/soak.sh [--minutes N] [--rate R]     (default 10 minutes, 200 req/s)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
REPO=$(pwd)

MINUTES=10
RATE=200
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
SECONDS_TOTAL=$((MINUTES * 60))
API_PORT=${API_PORT:-18281}
ADMIT_PORT=${ADMIT_PORT:-18443}
BUNDLE_PORT=${BUNDLE_PORT:-18380}

command -v openssl >/dev/null || { echo "soak.sh needs openssl" >&2; exit 1; }
command -v python3 >/dev/null || { echo "soak.sh needs python3 (the bundle server)" >&2; exit 1; }
cargo build --release --bin portcullis --example soak_load >&2
BIN=$REPO/target/release/portcullis
LOAD=$REPO/target/release/examples/soak_load

WORK=$(mktemp -d /tmp/portcullis-soak.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${BUNDLE_PID:-}" ] && kill "$BUNDLE_PID" 2>/dev/null || true
}
trap cleanup EXIT
echo "work directory: $WORK" >&2

# --- certificates ---------------------------------------------------------
make_cert() { # dir
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1/ca.key" -out "$1/ca.crt" -days 2 -subj "/CN=soak-ca" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1/tls.key.new" -out "$1/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$1/san.ext"
  openssl x509 -req -in "$1/tls.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial \
    -days 2 -extfile "$1/san.ext" -out "$1/tls.crt.new" 2>/dev/null
}
mkdir -p "$WORK/certs"
make_cert "$WORK/certs"
mv "$WORK/certs/tls.key.new" "$WORK/certs/tls.key"
mv "$WORK/certs/tls.crt.new" "$WORK/certs/tls.crt"
rotate_cert() { # same CA, new key and certificate, swapped in by rename
  local c=$WORK/certs
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$c/tls.key.new" -out "$c/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  openssl x509 -req -in "$c/tls.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial \
    -days 2 -extfile "$c/san.ext" -out "$c/tls.crt.new" 2>/dev/null
  mv "$c/tls.key.new" "$c/tls.key"
  mv "$c/tls.crt.new" "$c/tls.crt"
}

# --- bundles ----------------------------------------------------------------
cp -r policies "$WORK/policies"
cp -r bundles "$WORK/bundles"
mkdir -p "$WORK/remote/soak" "$WORK/www"
cat >"$WORK/remote/soak/soak.rego" <<'REGO'
package soak

import rego.v1

healthy if data.soak.state == "ok"
REGO
remote_revision() { # n
  printf '{"revision": "soak-%s", "roots": ["soak"]}\n' "$1" >"$WORK/remote/.manifest"
  printf '{"state": "ok", "n": %s}\n' "$1" >"$WORK/remote/soak/data.json"
  "$BIN" bundle build "$WORK/remote" -o "$WORK/www/soak.tar.gz.new" --revision "soak-$1" >/dev/null
  mv "$WORK/www/soak.tar.gz.new" "$WORK/www/soak.tar.gz"
}
remote_revision 0
start_bundle_server() {
  (cd "$WORK/www" && exec python3 -m http.server "$BUNDLE_PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
  BUNDLE_PID=$!
}
start_bundle_server
wait_for "http://127.0.0.1:$BUNDLE_PORT/soak.tar.gz"

cat >"$WORK/config.yaml" <<YAML
server:
  addr: 127.0.0.1:$API_PORT
bundles: [$WORK/policies, $WORK/bundles]
remote_bundles:
  - name: soak
    url: http://127.0.0.1:$BUNDLE_PORT/soak.tar.gz
    min_delay_ms: 1000
    max_delay_ms: 2000
    timeout_ms: 2000
persist_dir: $WORK/persist
admission:
  enabled: true
  addr: 127.0.0.1:$ADMIT_PORT
  cert_file: $WORK/certs/tls.crt
  key_file: $WORK/certs/tls.key
decision_logs:
  enabled: true
  sink: file
  never_drop: true
  file:
    path: $WORK/decisions.jsonl
log:
  level: warn
YAML

"$BIN" serve --config "$WORK/config.yaml" 2>"$WORK/portcullis.log" &
PDP=$!
pids+=("$PDP")
wait_for "http://127.0.0.1:$API_PORT/health/ready" || { cat "$WORK/portcullis.log" >&2; exit 1; }

metric() { # name with labels -> value
  curl -s "http://127.0.0.1:$API_PORT/metrics" | awk -v m="$1" '$1==m {print $2}'
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PDP/status"; }

# --- load -------------------------------------------------------------------
LOAD_SECONDS=$((SECONDS_TOTAL - 10))
"$LOAD" --api "http://127.0.0.1:$API_PORT" --admission "https://127.0.0.1:$ADMIT_PORT" \
  --ca "$WORK/certs/ca.crt" --rate "$RATE" --seconds "$SECONDS_TOTAL" \
  --stop-marker "$WORK/sigterm" --repo "$REPO" >"$WORK/load.jsonl" &
LOADER=$!
pids+=("$LOADER")

# --- faults -----------------------------------------------------------------
echo "minute,rss_kb,activations_ok,activations_failed" >"$WORK/minutes.csv"
start=$(date +%s)
next_revision=1
bundle_server_down_until=0
tick=0
while [ $(( $(date +%s) - start )) -lt "$LOAD_SECONDS" ]; do
  sleep 1
  tick=$((tick + 1))
  if [ $((tick % 5)) -eq 0 ]; then   # a new revision of the local data bundle
    sed -E "s/\"revision\": *\"[^\"]*\"/\"revision\": \"soak-data-$tick\"/" "$WORK/bundles/.manifest" >"$WORK/manifest.new"
    mv "$WORK/manifest.new" "$WORK/bundles/.manifest"
  fi
  if [ $((tick % 20)) -eq 7 ]; then  # a policy that does not compile
    printf 'package broken\n\nallow if {\n' >"$WORK/policies/system/zz_broken.rego"
  fi
  if [ $((tick % 20)) -eq 10 ]; then
    rm -f "$WORK/policies/system/zz_broken.rego"
  fi
  if [ $((tick % 30)) -eq 12 ]; then  # a corrupt remote archive
    cp "$WORK/www/soak.tar.gz" "$WORK/good.tar.gz"
    head -c 300 /dev/urandom >"$WORK/www/soak.tar.gz"
  fi
  if [ $((tick % 30)) -eq 17 ]; then  # a tampered remote bundle: data outside its roots
    python3 - "$WORK/remote" "$WORK/www/soak.tar.gz" <<'PY'
import io, os, sys, tarfile
src, out = sys.argv[1], sys.argv[2]
with tarfile.open(out + ".new", "w:gz") as tar:
    def add(name, data):
        info = tarfile.TarInfo("/" + name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    for root, _, files in os.walk(src):
        for f in files:
            path = os.path.join(root, f)
            add(os.path.relpath(path, src), open(path, "rb").read())
    add("elsewhere/data.json", b'{"sneaky": true}')
os.replace(out + ".new", out)
PY
  fi
  if [ $((tick % 30)) -eq 22 ]; then  # back to a good revision
    remote_revision "$next_revision"
    next_revision=$((next_revision + 1))
  fi
  if [ $((tick % 60)) -eq 40 ]; then  # the bundle server dies ...
    kill "$BUNDLE_PID" 2>/dev/null || true
    wait "$BUNDLE_PID" 2>/dev/null || true
    bundle_server_down_until=$((tick + 5))
  fi
  if [ "$bundle_server_down_until" -ne 0 ] && [ "$tick" -ge "$bundle_server_down_until" ]; then
    start_bundle_server                # ... and comes back
    bundle_server_down_until=0
  fi
  if [ $((tick % 45)) -eq 30 ]; then  # cert-manager rotates the certificate
    rotate_cert
  fi
  if [ $((tick % 60)) -eq 0 ]; then
    echo "$((tick / 60)),$(rss_kb),$(metric 'portcullis_bundle_activations_total{result="success"}'),$(metric 'portcullis_bundle_activations_total{result="failure"}')" >>"$WORK/minutes.csv"
  fi
done
rm -f "$WORK/policies/system/zz_broken.rego"
echo "final,$(rss_kb),$(metric 'portcullis_bundle_activations_total{result="success"}'),$(metric 'portcullis_bundle_activations_total{result="failure"}')" >>"$WORK/minutes.csv"
dropped=$(curl -s "http://127.0.0.1:$API_PORT/metrics" | awk '/^portcullis_decision_log_dropped_total/ {s += $2} END {print s + 0}')

# --- SIGTERM during load ----------------------------------------------------
touch "$WORK/sigterm"
kill -TERM "$PDP"
exit_code=0
wait "$PDP" || exit_code=$?
wait "$LOADER" || true

# --- report -----------------------------------------------------------------
summary=$(grep '"summary"' "$WORK/load.jsonl")
answered=$(echo "$summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["decisions_answered"])')
failed=$(echo "$summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["failed"])')
logged=$(cat "$WORK"/decisions.jsonl* 2>/dev/null | wc -l)
echo
echo "== soak: ${MINUTES} min at ${RATE} req/s, work directory $WORK"
echo "-- load per minute (ok, failed, failed after SIGTERM, p50/p99 in µs)"
grep '"minute"' "$WORK/load.jsonl"
echo "-- resident memory and activations per minute"
cat "$WORK/minutes.csv"
echo "-- summary"
echo "$summary"
echo "exit code after SIGTERM: $exit_code"
echo "decisions answered: $answered   decisions logged: $logged   dropped: $dropped"
status=0
[ "$failed" = 0 ] || { echo "FAIL: $failed requests failed before SIGTERM"; status=1; }
[ "$exit_code" = 0 ] || { echo "FAIL: exit code $exit_code after SIGTERM"; status=1; }
[ "$answered" = "$logged" ] || { echo "FAIL: $answered decisions answered, $logged logged"; status=1; }
[ "$status" = 0 ] && echo "PASS"
exit $status
