// Overview: every server with its figures over the last hour, hub health, and what needs
// attention first.

import { h, mount, badge, table, fmtMs, sparkline } from "./dom.js";
import { get, enc } from "./api.js";

/** Per-server figures from activity rows: calls, errors, p95, calls per minute (60 buckets). */
export function figures(rows, now) {
  const by = new Map();
  for (const r of rows) {
    if (!r.server) continue;
    const f = by.get(r.server) || { calls: 0, errors: 0, durations: [], minutes: new Array(60).fill(0) };
    f.calls++;
    if (r.status === "error") f.errors++;
    f.durations.push(r.duration_us / 1000);
    const ago = Math.floor((now - r.at) / 60000);
    if (ago >= 0 && ago < 60) f.minutes[59 - ago]++;
    by.set(r.server, f);
  }
  for (const f of by.values()) {
    f.durations.sort((a, b) => a - b);
    f.p95 = f.durations[Math.max(0, Math.ceil(0.95 * f.durations.length) - 1)];
  }
  return by;
}

export async function overview() {
  const [list, logs, ready] = await Promise.all([
    get("servers"),
    get("logs?since=1h&limit=1000").catch(() => ({ items: [] })),
    fetch("ready").then((r) => r.json()).catch(() => null),
  ]);
  const now = Date.now();
  const figs = figures(logs.items || [], now);
  const servers = list.servers || [];
  const total = (logs.items || []).length;
  const errors = (logs.items || []).filter((r) => r.status === "error").length;
  const readyCount = servers.filter((s) => s.status && s.status.state === "ready").length;

  const attention = [];
  for (const s of servers) {
    const st = s.status ? s.status.state : (s.enabled ? "not started" : "disabled");
    if (s.enabled && st !== "ready") attention.push([s.name, `is ${st}` + (s.status && s.status.last_error ? `: ${s.status.last_error}` : "")]);
    const f = figs.get(s.name);
    if (f && f.calls >= 5 && f.errors / f.calls > 0.1) attention.push([s.name, `${Math.round((100 * f.errors) / f.calls)}% of calls failed in the last hour`]);
  }
  const changes = await Promise.all(servers.slice(0, 25).map((s) =>
    get(`servers/${enc(s.name)}/tools/changes`).then((c) => [s.name, c]).catch(() => null)));
  for (const c of changes) {
    if (c && c[1].changes && c[1].changes.length) attention.push([c[0], `${c[1].changes.length} tool definition change(s) wait for approval`]);
  }

  mount(
    h("h1", "Overview"),
    h("div.cards",
      card("Hub", ready ? ready.status : "unknown", ready && ready.status === "ok" ? "s-ok" : "s-bad"),
      card("Servers ready", `${readyCount} / ${servers.length}`),
      card("Calls (1 h)", total),
      card("Error rate", total ? `${((100 * errors) / total).toFixed(1)}%` : "–"),
      card("Store", ready ? ready.store : "unknown")),
    h("section.panel", { "aria-labelledby": "att" },
      h("h2", { id: "att" }, "Needs attention"),
      attention.length
        ? h("ul", attention.map(([n, t]) => h("li", h("a", { href: `#/servers/${enc(n)}` }, n), " ", t)))
        : h("p.muted", "Nothing: every enabled server is ready.")),
    h("h2", "Servers"),
    servers.length ? table(["Server", "State", "Transport", "#Tools", "#Calls/min", "#Errors", "#p95", "Last hour", "Last error"],
      servers.map((s) => {
        const f = figs.get(s.name) || { calls: 0, errors: 0, minutes: new Array(60).fill(0) };
        const st = s.status || {};
        return h("tr",
          h("td", h("a", { href: `#/servers/${enc(s.name)}` }, s.name)),
          h("td", badge(s.enabled ? st.state : "disabled")),
          h("td", st.transport || s.config.type || ""),
          h("td.num", st.tools ?? "–"),
          h("td.num", (f.calls / 60).toFixed(2)),
          h("td.num", f.calls ? `${((100 * f.errors) / f.calls).toFixed(1)}%` : "–"),
          h("td.num", fmtMs(f.p95)),
          h("td", sparkline(f.minutes, `calls per minute for ${s.name}`)),
          h("td.muted", st.last_error || ""));
      }))
      : h("p.muted", "No servers yet. ", h("a", { href: "#/servers" }, "Add one."))
  );
}

function card(k, v, cls) {
  return h("div.card", h("div.k", k), h("div.v" + (cls ? "." + cls : ""), String(v)));
}
