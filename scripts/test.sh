#!/usr/bin/env bash
# The one test command for Switchboard (what the README and CI run): installs the
# interop test dependencies (scripts/test-deps.sh), exports their locations from
# .test-deps/env.sh, builds every binary of the workspace (integration tests spawn
# them), runs the official MCP conformance suite against the fixture directly and through
# the hub (scripts/conformance.sh; skipped when extra arguments narrow the run, or with
# SWITCHBOARD_SKIP_CONFORMANCE=1), then all workspace tests with cargo-nextest when it is
# installed, else with cargo test. Extra arguments go to the test runner, e.g.
#   bash scripts/test.sh -E 'test(interop)'     (nextest filter)
#   bash scripts/test.sh -p switchboard-core    (one crate)
# Works from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/test-deps.sh
# shellcheck source=/dev/null
source .test-deps/env.sh

cargo build --locked --workspace --bins

status=0
# Conformance first, so the test runner's summary is the last thing printed.
if [[ $# -eq 0 && "${SWITCHBOARD_SKIP_CONFORMANCE:-0}" != 1 ]]; then
    bash scripts/conformance.sh --no-build || status=$?
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast "$@" || status=$?
else
    cargo test --locked --workspace --no-fail-fast "$@" || status=$?
fi
exit "$status"
