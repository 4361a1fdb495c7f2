#!/usr/bin/env bash
# The one test command for Switchboard (what the README and CI run): installs the
# interop test dependencies (scripts/test-deps.sh), exports their locations from
# .test-deps/env.sh, builds every binary of the workspace (integration tests spawn
# them), then runs all workspace tests with cargo-nextest when it is installed, else
# with cargo test.  Extra arguments are passed to the test runner, e.g.
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

if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --locked --workspace --no-fail-fast "$@"
else
    exec cargo test --locked --workspace --no-fail-fast "$@"
fi
