#!/usr/bin/env bash
# Drive Portcullis with a real OPA client library: PyPI's opa-python-client,
# installed into a fresh virtual environment under target/ (not vendored),
# against a server started on loopback with the shipped policies.
#
# Usage: scripts/client-compat.sh [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
PORT=18291
[ "${1:-}" = "--port" ] && PORT=$2

VENV=target/client-compat-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade opa-python-client
echo "opa-python-client $("$VENV/bin/pip" show opa-python-client | awk '/^Version/ {print $2}')" >&2

cargo build --release --bin portcullis >&2
target/release/portcullis serve --addr "127.0.0.1:$PORT" --log-level warn &
PDP=$!
trap 'kill $PDP 2>/dev/null || true' EXIT
wait_for "http://127.0.0.1:$PORT/health/ready"
"$VENV/bin/python" tests/clients/opa_python_client_check.py "$PORT"
