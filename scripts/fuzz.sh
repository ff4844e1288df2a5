#!/usr/bin/env bash
# Run every libFuzzer target for a bounded time (default 60 s each).
#
# Usage: scripts/fuzz.sh [--seconds N] [TARGET...]
#
# Needs cargo-fuzz, installed from crates.io when missing, and nightly
# compiler flags: rustup's `nightly` when it is installed, else the stable
# toolchain with RUSTC_BOOTSTRAP=1. Corpora live in fuzz/corpus/TARGET
# (seeded from the repository's own examples, or from fuzz/seeds/TARGET,
# by this script) and are kept in the repository; crashes and slow inputs
# land in fuzz/artifacts/TARGET and make the script fail. After a run the
# corpus is minimized (cargo fuzz cmin) so the repository keeps only inputs
# that add coverage. A fixed finding goes into fuzz/findings/TARGET, which
# tests/fuzz_findings.rs replays (for the harness targets).
set -euo pipefail
cd "$(dirname "$0")/.."

if cargo +nightly --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi
# regorus's parser backtracks through errors: with library backtraces on,
# each one captures a stack and parsing is several times slower.
export RUST_LIB_BACKTRACE=0

SECONDS_EACH=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    -*) echo "unknown flag: $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(bundle_archive bundle_directory api_bodies admission_review gatekeeper_yaml http_request rego_compile)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

seed() { # target files...
  local dir=fuzz/corpus/$1; shift
  mkdir -p "$dir"
  if [ -z "$(ls -A "$dir")" ]; then
    for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/seed-$(basename "$f")"; done
  fi
}
seed_archive() {
  local dir=fuzz/corpus/bundle_archive
  mkdir -p "$dir"
  if [ -z "$(ls -A "$dir")" ]; then
    cargo run -q --release -- bundle build tests/fixtures/edge -o "$dir/seed-edge.tar.gz"
  fi
}
seed_directory() {
  local dir=fuzz/corpus/bundle_directory
  mkdir -p "$dir"
  if [ -z "$(ls -A "$dir")" ]; then
    { printf '\x00'; cat policies/.manifest; } >"$dir/seed-manifest"
    { printf '\x01'; echo '{"admin": "ana", "teams": {"payments": {"cpu": 4}}}'; } >"$dir/seed-json"
    { printf '\x02'; printf 'admin: ana\nteams:\n  payments: {cpu: 4}\n'; } >"$dir/seed-yaml"
  fi
}

seed_archive
seed_directory
seed api_bodies examples/*.json
seed admission_review examples/admission-*.json benches/admission-*.json
seed gatekeeper_yaml tests/fixtures/gatekeeper/bundle/*/*.yaml tests/fixtures/gatekeeper/suites/*/suite.yaml
seed http_request fuzz/seeds/http_request/*
seed rego_compile fuzz/seeds/rego_compile/*

failed=0
for target in "${targets[@]}"; do
  echo "== $target: ${SECONDS_EACH}s" >&2
  if ! (cd fuzz && cargo "${toolchain[@]}" fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1); then
    echo "!! $target found a crash: see fuzz/artifacts/$target" >&2
    failed=1
    continue
  fi
  (cd fuzz && cargo "${toolchain[@]}" fuzz cmin -O "$target" "corpus/$target" >/dev/null 2>&1) || true
done
exit $failed
