#!/usr/bin/env bash
# The one test command for Switchboard (what the README and CI run): installs the
# interop test dependencies (scripts/test-deps.sh), exports their locations from
# .test-deps/env.sh, builds every binary of the workspace (integration tests spawn
# them), checks formatting and runs clippy on every target (warnings are errors), runs
# the official MCP conformance suite against the fixture directly and through the hub
# (scripts/conformance.sh; skipped when extra arguments narrow the run, or with
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

# The PostgreSQL tests need a server on 127.0.0.1:5432 (trust auth). Start the local
# cluster when it is down, as .ci/run does; when that is impossible, skip those tests and
# say so loudly (nextest only; `cargo test` runs them and they fail).
pg_filter=()
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if [[ -d /etc/postgresql ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
        pg_version="$(ls /etc/postgresql | sort -V | tail -n 1)"
        echo "test.sh: PostgreSQL is down; starting cluster $pg_version/main" >&2
        pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start || true
        for _ in $(seq 1 30); do
            pg_isready -q -h 127.0.0.1 -p 5432 && break
            sleep 1
        done
    fi
fi
if ! { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }; then
    echo "" >&2
    echo "################################################################################" >&2
    echo "test.sh: NO PostgreSQL on 127.0.0.1:5432: the PostgreSQL tests are SKIPPED." >&2
    echo "         Install and start PostgreSQL (trust auth) to run the full suite." >&2
    echo "################################################################################" >&2
    echo "" >&2
    if [[ $# -eq 0 ]]; then
        pg_filter=(-E 'not test(/postgres/)')
    fi
fi

status=0
# Lints: rustfmt's check, then clippy on every target, warnings are errors (skipped when
# arguments narrow the run, or with SWITCHBOARD_SKIP_CLIPPY=1).
if [[ $# -eq 0 && "${SWITCHBOARD_SKIP_CLIPPY:-0}" != 1 ]]; then
    if cargo fmt --version >/dev/null 2>&1; then
        cargo fmt --all -- --check || status=$?
    else
        echo "test.sh: rustfmt is not installed (rustup component add rustfmt); format check skipped" >&2
    fi
    if cargo clippy --version >/dev/null 2>&1; then
        cargo clippy --locked --workspace --all-targets -- -D warnings || status=$?
    else
        echo "test.sh: clippy is not installed (rustup component add clippy); lints skipped" >&2
    fi
fi
# Conformance first, so the test runner's summary is the last thing printed.
if [[ $# -eq 0 && "${SWITCHBOARD_SKIP_CONFORMANCE:-0}" != 1 ]]; then
    bash scripts/conformance.sh --no-build || status=$?
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast "${pg_filter[@]}" "$@" || status=$?
else
    cargo test --locked --workspace --no-fail-fast "$@" || status=$?
fi
exit "$status"
