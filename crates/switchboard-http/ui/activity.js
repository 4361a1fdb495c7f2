// Activity: the call log with filters, live updates, a call's detail, and charts of calls,
// errors and latency per minute.

import { h, s, mount, field, table, badge, fmtMs, fmtTime } from "./dom.js";
import { get, raw, readSse } from "./api.js";

let live = null; // the open stream's AbortController

export async function activity(_arg, current) {
  if (live) { live.abort(); live = null; }
  const server = h("input", { name: "server", autocomplete: "off" });
  const tool = h("input", { name: "tool", autocomplete: "off" });
  const status = h("select", { name: "status" }, h("option", { value: "" }, "any"), h("option", { value: "ok" }, "ok"), h("option", { value: "error" }, "error"));
  const since = h("select", { name: "since" }, ["15m", "1h", "24h", "7d"].map((x) => h("option", { value: x, selected: x === "1h" }, x)));
  const liveBox = h("input", { type: "checkbox", id: "live", checked: true });
  const tbody = h("tbody", { id: "activity-rows" });
  const detail = h("section.panel", { id: "call-detail", hidden: true });
  const charts = h("div.grid", { id: "charts" });
  const params = () => {
    const p = new URLSearchParams();
    if (server.value.trim()) p.set("server", server.value.trim());
    if (tool.value.trim()) p.set("tool", tool.value.trim());
    if (status.value) p.set("status", status.value);
    return p;
  };
  const row = (r) => h("tr.clickable", { tabindex: "0", "data-id": r.id,
    onclick: () => show(detail, r), onkeydown: (e) => { if (e.key === "Enter") show(detail, r); } },
    h("td", new Date(r.at).toLocaleTimeString()),
    h("td", r.principal || ""),
    h("td", r.method),
    h("td", r.target || ""),
    h("td.hide-narrow", r.server || ""),
    h("td", badge(r.status)),
    h("td.num", fmtMs(r.duration_us / 1000)));
  const load = async () => {
    if (live) { live.abort(); live = null; }
    const p = params();
    p.set("since", since.value);
    p.set("limit", "200");
    const [logs, stats] = await Promise.all([get(`logs?${p}`), get(`stats?window=${since.value}`).catch(() => null)]);
    tbody.replaceChildren(...logs.items.map(row));
    charts.replaceChildren(...(stats ? chartsOf(stats) : [h("p.muted", "No statistics.")]));
    if (liveBox.checked && current()) follow();
  };
  const follow = async () => {
    live = new AbortController();
    const ctl = live;
    try {
      const r = await raw("GET", `api/v1/logs/stream?${params()}`, undefined, { Accept: "text/event-stream" });
      if (!r.ok) return;
      ctl.signal.addEventListener("abort", () => r.body.cancel().catch(() => {}));
      await readSse(r, (m) => {
        if (!m || !m.id) return;
        tbody.prepend(row(m));
        while (tbody.children.length > 500) tbody.lastChild.remove();
      });
    } catch { /* stream ended or aborted */ }
  };
  liveBox.addEventListener("change", () => { if (liveBox.checked) follow(); else if (live) { live.abort(); live = null; } });
  window.addEventListener("hashchange", () => { if (live) { live.abort(); live = null; } }, { once: true });
  mount(
    h("h1", "Activity"),
    h("form.row.panel", { id: "filters", onsubmit: (e) => { e.preventDefault(); load(); } },
      field("Server", server), field("Tool", tool), field("Status", status), field("Since", since),
      h("label.inline", liveBox, "Live"), h("button.primary", { type: "submit" }, "Apply")),
    charts,
    detail,
    h("div.table-wrap", h("table", h("thead", h("tr", ["Time", "Caller", "Method", "Tool", "Server", "Status", "Duration"].map((x) => h("th", { scope: "col" }, x)))), tbody)));
  await load();
}

function show(box, r) {
  box.hidden = false;
  box.replaceChildren(...[h("h2", `Call ${r.id}`), h("dl.kv",
    ...[["When", fmtTime(r.at)], ["Caller", r.principal], ["Endpoint", r.endpoint], ["Session", r.session], ["Server", r.server],
      ["Method", r.method], ["Target", r.target], ["Status", r.status], ["Error type", r.error_type], ["Error", r.error],
      ["Duration", fmtMs(r.duration_us / 1000)], ["Bytes in / out", `${r.bytes_in} / ${r.bytes_out}`], ["Trace", r.trace_id], ["Protocol", r.protocol]]
      .flatMap(([k, v]) => [h("dt", k), h("dd", v ?? "–")])),
  r.request ? [h("h3", "Request"), h("pre", r.request)] : null,
  r.response ? [h("h3", "Response"), h("pre", r.response)] : null].flat().filter(Boolean));
  box.scrollIntoView({ block: "nearest" });
}

/** Per-minute rows of `st.series` gathered into at most 60 buckets across the window. */
export function buckets(st, now) {
  const n = Math.max(1, Math.min(60, Math.round(st.window_secs / 60)));
  const size = (st.window_secs * 1000) / n;
  const out = Array.from({ length: n }, () => ({ calls: 0, errors: 0, p95_ms: 0 }));
  for (const x of st.series || []) {
    const i = Math.min(n - 1, Math.max(0, Math.floor((x.at - (now - st.window_secs * 1000)) / size)));
    out[i].calls += x.calls;
    out[i].errors += x.errors;
    out[i].p95_ms = Math.max(out[i].p95_ms, x.p95_ms);
  }
  return out;
}

/** Bar charts of calls and errors over the window, and a p95 latency line. */
function chartsOf(st) {
  const series = buckets(st, Date.now());
  const w = 300, hgt = 90, bw = w / series.length;
  const maxCalls = Math.max(1, ...series.map((x) => x.calls));
  const maxP95 = Math.max(1, ...series.map((x) => x.p95_ms));
  const y = (v, max) => hgt - 2 - (v / max) * (hgt - 6);
  const bars = (key, cls) => series.filter((x) => x[key] > 0).map((x) => s("rect", { class: cls,
    x: series.indexOf(x) * bw + 0.5, width: Math.max(1, bw - 1), y: y(x[key], maxCalls), height: hgt - 2 - y(x[key], maxCalls) }));
  const chart = (label, ...kids) => s("svg", { class: "chart", viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": label }, ...kids);
  const line = s("polyline", { points: series.map((x, i) => `${i * bw + bw / 2},${y(x.p95_ms, maxP95)}`).join(" ") });
  return [
    h("figure", chart("calls over time", ...bars("calls", "bar")), h("figcaption.muted", `${st.calls} calls (bar height up to ${maxCalls})`)),
    h("figure", chart("errors over time", ...bars("errors", "bar err")), h("figcaption.muted", `${st.errors} errors`)),
    h("figure", chart("p95 latency over time", line), h("figcaption.muted", `p95 latency (up to ${fmtMs(maxP95)})`)),
  ];
}
