#!/usr/bin/env python3
"""Summarises one scripts/conformance.sh run.

Input: RUN/<suite>/<target>/stdout.txt (the conformance CLI's output) and
RUN/<suite>/<target>/out/server-<scenario>-<timestamp>/checks.json (its
machine-readable results, one file per scenario, written by `-o`).

A scenario's cell is FAIL if any check has status FAILURE, pass if some
check succeeded or warned, else skip (only SKIPPED checks) or info (only INFO
checks: nothing scored); the counts after it are SUCCESS (✓), WARNING (⚠) and
FAILURE (✗) checks. A scenario missing from a target's
output (the CLI crashed or never reached it) is "missing" and counts as a
failure.

Prints a table per suite, writes it as Markdown (--md) and as JSON
(RUN/results.json), and exits 1 if a hub target fails a scenario the fixture
passes directly, else 0. Every suite gates. The only exceptions are the
CROSS_ERA scenarios below on the targets whose upstream hop is session-based
(2025-11-25): what a stateless client asks of a session-era server that the
older revision has no way to say. They are listed as known limits, with the
reason, and gate too with --strict-2026. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# (id, title, gating)
SUITES = [
    ("v0.1.16-all", "0.1.16 `--suite all`", True),
    ("v0.2.0-alpha.12-2025-11-25", "0.2.0-alpha.12 `--requirements 2025-11-25`", True),
    ("v0.2.0-alpha.12-2026-07-28", "0.2.0-alpha.12 `--requirements 2026-07-28`", True),
]
# Hub targets whose upstream hop is a 2025-11-25 session.
SESSION_HOPS = {"hub-stdio", "hub-streamable-http", "hub-sse"}
# 2026-07-28 scenarios a session-era upstream cannot satisfy through any gateway, by
# scenario name or name prefix (ending in "-"), with the reason.
CROSS_ERA = {
    "input-required-result-basic-elicitation": (
        "checks the server's own inputRequests key; a session-era server asks with an "
        "unnamed elicitation/create request, so the hub has to name it (q1)"
    ),
    "tasks-": (
        "Tasks extension (unscored): a session-era server has no 2026 tasks; the hub does not "
        "offer the extension across eras"
    ),
}


# On the stdio hop only: a shared stdio server is one process whatever its clients declare
# (so its state is not split between copies), and that process's session declared the
# union of what the hub can bridge. A session-era server that adapts its behaviour to the
# capabilities its session declared cannot see that one stateless client declared less; the
# hub refuses per request what that client lacks (-32021) instead. Remote session-era
# servers get a session declaring exactly the client's capabilities, and pass.
STDIO_SHARED_WHY = (
    "a shared stdio server stays one process, whose session declared every capability the "
    "hub can bridge; the server cannot adapt to a client that declared less"
)
STDIO_SHARED = {
    "server-stateless": STDIO_SHARED_WHY,
    "input-required-result-capability-check": STDIO_SHARED_WHY,
}


def cross_era(suite: str, target: str, scenario: str) -> str | None:
    if suite != "v0.2.0-alpha.12-2026-07-28" or target not in SESSION_HOPS:
        return None
    if target == "hub-stdio" and scenario in STDIO_SHARED:
        return STDIO_SHARED[scenario]
    for key, why in CROSS_ERA.items():
        if scenario == key or (key.endswith("-") and scenario.startswith(key)):
            return why
    return None
TARGETS = [
    ("fixture", "fixture direct"),
    ("hub-stdio", "hub/stdio"),
    ("hub-streamable-http", "hub/streamable-http"),
    ("hub-sse", "hub/sse"),
    ("hub-http-2026", "hub/http (2026 upstream)"),
    ("hub-stdio-2026", "hub/stdio (2026 upstream)"),
]
SUMMARY_LINE = re.compile(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed\s*$")
UNSCORED_LINE = re.compile(r"^\s+[✓✗] (\S+) \(([\w-]+)\)\s*$")
RESULT_DIR = re.compile(r"^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")


def load_target(path: Path) -> dict:
    """Scenario -> {status, success, warning, failure, problems} for one run."""
    scenarios: dict[str, dict] = {}
    unscored: dict[str, str] = {}
    stdout = path / "stdout.txt"
    text = stdout.read_text(errors="replace") if stdout.exists() else ""
    for line in text.splitlines():
        m = SUMMARY_LINE.match(line)
        if m:
            scenarios.setdefault(m.group(1), {"success": 0, "warning": 0, "failure": 0, "skipped": 0})
        m = UNSCORED_LINE.match(line)
        if m:
            unscored[m.group(1)] = m.group(2)
    out = path / "out"
    if out.is_dir():
        for result_dir in sorted(out.iterdir()):
            m = RESULT_DIR.match(result_dir.name)
            checks_file = result_dir / "checks.json"
            if not m or not checks_file.exists():
                continue
            try:
                checks = json.loads(checks_file.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            entry = {"success": 0, "warning": 0, "failure": 0, "skipped": 0, "problems": []}
            for check in checks if isinstance(checks, list) else []:
                status = check.get("status")
                key = {
                    "SUCCESS": "success",
                    "WARNING": "warning",
                    "FAILURE": "failure",
                    "SKIPPED": "skipped",
                }.get(status)
                if key:
                    entry[key] += 1
                if status in ("FAILURE", "WARNING"):
                    entry["problems"].append(
                        {
                            "check": check.get("id"),
                            "status": status,
                            "message": (check.get("errorMessage") or "")[:400],
                        }
                    )
            entry["dir"] = str(result_dir)
            scenarios[m.group(1)] = entry
    for name, entry in scenarios.items():
        if "problems" not in entry:
            # In the summary but no checks.json: count as a failure.
            entry.update(failure=max(entry["failure"], 1), problems=[
                {"check": None, "status": "FAILURE", "message": "no checks.json written"}
            ])
        if entry["failure"]:
            entry["status"] = "FAIL"
        elif entry["success"] or entry["warning"]:
            entry["status"] = "pass"
        else:
            # Only INFO (or SKIPPED) checks: the scenario found nothing to score.
            entry["status"] = "skip" if entry.get("skipped") else "info"
    return {"scenarios": scenarios, "unscored": unscored, "ran": bool(text)}


def cell(entry: dict | None) -> str:
    if entry is None:
        return "missing"
    if entry["status"] in ("skip", "info"):
        return entry["status"]
    counts = f"{entry['success']}✓"
    if entry["warning"]:
        counts += f" {entry['warning']}⚠"
    if entry["failure"]:
        counts += f" {entry['failure']}✗"
    return f"{entry['status']} {counts}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--strict-2026", action="store_true")
    parser.add_argument("--header", default="", help="text put above the Markdown tables")
    args = parser.parse_args()

    results: dict = {"suites": {}, "regressions": [], "differences": []}
    md: list[str] = []
    if args.header:
        md += [args.header, ""]
    console: list[str] = []
    for suite_id, title, gating in SUITES:
        suite_dir = args.run / suite_id
        if not suite_dir.is_dir():
            continue
        per_target = {t: load_target(suite_dir / t) for t, _ in TARGETS if (suite_dir / t).is_dir()}
        if not per_target:
            continue
        names: list[str] = []
        unscored: dict[str, str] = {}
        for data in per_target.values():
            for name in data["scenarios"]:
                if name not in names:
                    names.append(name)
            unscored.update(data["unscored"])
        fixture = per_target.get("fixture", {"scenarios": {}})["scenarios"]
        suite_result = {"title": title, "gating": gating, "unscored": unscored, "targets": {}}
        for target, data in per_target.items():
            suite_result["targets"][target] = data["scenarios"]
            if target == "fixture":
                continue
            for name in names:
                hub = data["scenarios"].get(name)
                direct = fixture.get(name)
                if direct is None or direct["status"] == "FAIL":
                    continue
                hub_status = hub["status"] if hub else "missing"
                record = {"suite": suite_id, "target": target, "scenario": name}
                if hub_status in ("FAIL", "missing"):
                    record["problems"] = hub["problems"] if hub else []
                    limit = cross_era(suite_id, target, name)
                    record["gating"] = gating and (limit is None or args.strict_2026)
                    if limit:
                        record["detail"] = f"known cross-era limit: {limit}"
                    results["regressions"].append(record)
                elif hub["success"] < direct["success"] or hub["warning"] > direct["warning"]:
                    record["detail"] = (
                        f"fixture {cell(direct)} vs hub {cell(hub)}"
                    )
                    record["problems"] = hub["problems"]
                    results["differences"].append(record)
        results["suites"][suite_id] = suite_result

        headers = ["scenario"] + [label for t, label in TARGETS if t in per_target]
        rows = []
        for name in names:
            label = name + (f" (unscored: {unscored[name]})" if name in unscored else "")
            rows.append([label] + [cell(per_target[t]["scenarios"].get(name)) for t, _ in TARGETS if t in per_target])
        totals = ["**failing scenarios**"] + [
            str(sum(1 for n in names if (per_target[t]["scenarios"].get(n) or {"status": "FAIL"})["status"] == "FAIL"))
            for t, _ in TARGETS
            if t in per_target
        ]
        md += [f"### {title}" + ("" if gating else " (informational)"), ""]
        md.append("| " + " | ".join(headers) + " |")
        md.append("|" + "|".join("---" for _ in headers) + "|")
        for row in rows + [totals]:
            md.append("| " + " | ".join(row) + " |")
        md.append("")
        widths = [max(len(r[i]) for r in [headers] + rows + [totals]) for i in range(len(headers))]
        console.append(f"== {title.replace('`', '')}" + ("" if gating else "  (informational)"))
        for row in [headers] + rows + [totals]:
            console.append("  ".join(c.replace("*", "").ljust(w) for c, w in zip(row, widths)))
        console.append("")

    gating_regressions = [r for r in results["regressions"] if r["gating"]]
    info_regressions = [r for r in results["regressions"] if not r["gating"]]

    def describe(items: list[dict], heading: str) -> None:
        if not items:
            return
        md.append(f"#### {heading}")
        md.append("")
        console.append(heading + ":")
        for r in items:
            first = next((p for p in r.get("problems", []) if p["status"] == "FAILURE"), None)
            first = first or (r.get("problems") or [{}])[0]
            why = r.get("detail") or ""
            if first.get("check") or first.get("message"):
                why = (why + "; " if why else "") + f"{first.get('check')}: {first.get('message', '')}"
            line = f"{r['suite']} / {r['target']} / {r['scenario']}: {why}".replace("\n", " ")
            escaped = line.replace("|", "\\|")
            md.append(f"- {escaped}")
            console.append("  - " + line)
        md.append("")
        console.append("")

    describe(gating_regressions, "Hub fails where the fixture passes (gating)")
    describe(info_regressions, "Hub fails where the fixture passes: known cross-era limits (not gating)")
    describe(results["differences"], "Hub passes with fewer successful checks or more warnings")

    (args.run / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    if args.md:
        args.md.write_text("\n".join(md).rstrip() + "\n")
    print("\n".join(console))
    if gating_regressions:
        print(f"conformance: {len(gating_regressions)} gating regression(s) through the hub", file=sys.stderr)
        return 1
    print("conformance: the hub passes every gating scenario the fixture passes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
