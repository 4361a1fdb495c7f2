#!/usr/bin/env python3
"""Instructions per relayed `tools/call`, by observability configuration, counted by callgrind.

Timed benchmarks on a shared 2-core VM move by 2x between runs; instruction counts do not.
For each configuration this starts a JSON-mode fixture upstream and a hub under
`valgrind --tool=callgrind` (instrumentation off until the warm-up is done), makes WARM
sequential calls through one keep-alive connection, switches instrumentation on, and then
measures twice: CALLS/4 calls, a pause for the activity writer and the OTLP exporter to
flush, a dump; CALLS calls, the same pause, a dump. Per call is the difference of the two
dumps divided by the difference of their call counts, so what does not grow with calls
(timers ticking during the pauses, the flush itself) cancels out. Counted: the hub's whole
process, every thread (request handling, activity writer, SQLite, exporter).

The `traces*` configurations have metrics and the activity log off, so they show the cost
of traces alone: every request exported, a 1% `parentbased_traceidratio` sample
(`--trace-sample-ratio 0.01`; the calls carry no `traceparent`, so the ratio decides), and
`OTEL_TRACES_SAMPLER=always_off` (context still propagated, nothing exported).

Usage: python3 scripts/observe-cost.py BIN_DIR [--calls N] [--warm N] [--only NAME,...] [--keep]
  BIN_DIR holds the `switchboard` and `switchboard-fixture` binaries (a release build:
  `cargo build --release -p switchboard -p switchboard-fixture`; for a quicker A/B build,
  add `--config 'profile.release.lto="off"'`).
Needs valgrind (callgrind_control included). Prints one Markdown table row per configuration.
"""

import argparse
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

# name: (flags, environment); "{otlp}" becomes the loopback OTLP sink's URL.
QUIET = ["--no-metrics", "--no-activity-log"]
TRACES = QUIET + ["--otlp-endpoint", "{otlp}"]
CONFIGS = {
    "off": (QUIET, {}),
    "metrics": (["--no-activity-log"], {}),
    "log": (["--no-metrics"], {}),
    "metrics+log": ([], {}),
    "metrics+log+traces": (["--otlp-endpoint", "{otlp}"], {}),
    "traces": (TRACES, {}),
    "traces-ratio-0.01": (TRACES + ["--trace-sample-ratio", "0.01"], {}),
    "traces-always-off": (TRACES, {"OTEL_TRACES_SAMPLER": "always_off"}),
}
# Variables of the caller's environment that would change what a configuration measures.
CLEARED = [
    "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "SWITCHBOARD_TRACE_SAMPLE_RATIO",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that accepts and discards every export."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Mcp:
    """A Streamable HTTP client on one keep-alive connection."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.session = None
        self.next_id = 0

    def post(self, body):
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if self.session:
            headers["Mcp-Session-Id"] = self.session
            headers["MCP-Protocol-Version"] = "2025-11-25"
        self.conn.request("POST", "/mcp", json.dumps(body), headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            sys.exit(f"observe-cost: HTTP {resp.status}: {data[:300]!r}")
        if resp.getheader("Mcp-Session-Id"):
            self.session = resp.getheader("Mcp-Session-Id")
        return data

    def request(self, method, params):
        self.next_id += 1
        return self.post({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})

    def start(self):
        self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "observe-cost", "version": "1"},
            },
        )
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def echo(self):
        data = self.request("tools/call", {"name": "echo__echo", "arguments": {"text": "hello"}})
        if b"hello" not in data:
            sys.exit(f"observe-cost: unexpected reply {data[:300]!r}")


def wait_ready(port, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("observe-cost: the hub exited during start-up")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/ready")
            r = c.getresponse()
            body = r.read()
            if json.loads(body or b"{}").get("ready") == 1:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    sys.exit("observe-cost: the hub was not ready in time")


def measure(bins, name, config, fixture_url, otlp, warm, calls, work):
    flags, extra_env = config
    servers = os.path.join(work, f"servers-{name}.json")
    with open(servers, "w") as f:
        json.dump({"mcpServers": {"echo": {"type": "streamable-http", "url": fixture_url}}}, f)
    mcp, main = free_port(), free_port()
    out = os.path.join(work, f"callgrind-{name}.out")
    cmd = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        os.path.join(bins, "switchboard"), "serve", "--servers", servers,
        "--mcp-addr", f"127.0.0.1:{mcp}", "--main-addr", f"127.0.0.1:{main}",
        "--data-dir", os.path.join(work, f"data-{name}"), "--log", "warn",
        "--rate-limit-key", "off", "--rate-limit-tenant", "off",
    ] + [a.replace("{otlp}", otlp) for a in flags]
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(extra_env)
    log = open(os.path.join(work, f"hub-{name}.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_ready(mcp, proc)
        client = Mcp(mcp)
        client.start()
        for _ in range(warm):
            client.echo()
        time.sleep(1.5)  # let the writer and exporter drain the warm-up
        subprocess.run(["callgrind_control", "--instr=on", str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        small = max(calls // 4, 1)
        for n in (small, calls):
            for _ in range(n):
                client.echo()
            time.sleep(1.5)  # the activity writer flushes every 100 ms, the exporter every 1 s
            subprocess.run(["callgrind_control", "--dump", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    dumps = {}
    for path in os.listdir(work):
        m = re.fullmatch(re.escape(f"callgrind-{name}.out") + r"\.(\d+)", path)
        if not m:
            continue
        with open(os.path.join(work, path)) as f:
            for line in f:
                t = re.match(r"(?:summary|totals): (\d+)", line)
                if t:
                    dumps[int(m.group(1))] = int(t.group(1))
                    break
    if sorted(dumps) != [1, 2]:
        sys.exit(f"observe-cost: expected two callgrind dumps for {name}, found {sorted(dumps)}")
    return (dumps[2] - dumps[1]) / (calls - small)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bins")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=500)
    ap.add_argument("--only", default=",".join(CONFIGS))
    ap.add_argument("--keep", action="store_true",
                    help="keep the callgrind files (for callgrind_annotate) and say where")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="observe-cost-")
    fixture = subprocess.Popen(
        [os.path.join(args.bins, "switchboard-fixture"), "http", "--addr", "127.0.0.1:0", "--json"],
        stdout=subprocess.PIPE, text=True,
    )
    line = fixture.stdout.readline()
    fixture_url = line.split()[1]
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    otlp = f"http://127.0.0.1:{sink.server_address[1]}"
    try:
        base = None
        print("| configuration | instructions per call | over off |")
        print("|---|--:|--:|")
        for name in args.only.split(","):
            per_call = measure(args.bins, name, CONFIGS[name], fixture_url, otlp,
                               args.warm, args.calls, work)
            if name == "off":
                base = per_call
            over = f"+{per_call - base:,.0f}" if base is not None and name != "off" else ""
            print(f"| {name} | {per_call:,.0f} | {over} |", flush=True)
    finally:
        fixture.terminate()
        sink.shutdown()
        if args.keep:
            print(f"callgrind files kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
