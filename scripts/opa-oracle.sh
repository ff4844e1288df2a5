#!/usr/bin/env bash
# OPA as the oracle: record OPA's answers for tests/fidelity/corpus into the
# golden file, compare Portcullis with OPA live, or run the random case
# generator. See scripts/opa_oracle.py for the commands.
set -euo pipefail
exec python3 "$(dirname "$0")/opa_oracle.py" "$@"
