// Proxy sessions (seed 002): the tenant's live sessions (GET /api/v1/sessions: admins and
// managers see all of the tenant's, everyone else their own), opening one, refreshing and
// closing. An id is a secret shown once and never listed, so refresh and close by id work for
// the sessions opened from this browser tab (their ids are kept in sessionStorage); admins and
// managers close any session of the tenant by its prefix.

import { h, mount, field, table, toast, confirmDialog, badge, fmtTime } from "./dom.js";
import { api, enc, session } from "./api.js";

const KEY = "switchboard.sessions";
const ids = () => JSON.parse(sessionStorage.getItem(KEY) || "[]");
const save = (list) => sessionStorage.setItem(KEY, JSON.stringify(list));

async function act(fn, done) {
  try { await fn(); toast(done); } catch (e) { toast(e.message, true); }
  sessions();
}

/** This tab's sessions by prefix ({id, s}); ids that expired or were closed are dropped. */
async function tabSessions() {
  const mine = new Map();
  for (const id of ids()) {
    try { const s = await api("GET", `server/${enc(id)}`); mine.set(s.prefix, { id, s }); }
    catch { /* expired or closed elsewhere */ }
  }
  save([...mine.values()].map((x) => x.id));
  return mine;
}

function row(s, tab) {
  const closeById = () => act(async () => { await api("DELETE", `server/${enc(tab.id)}`); save(ids().filter((x) => x !== tab.id)); }, "Closed");
  const closeByPrefix = () => act(() => api("DELETE", `sessions/${enc(s.prefix)}`), "Closed");
  const close = tab ? closeById : session.canManage ? closeByPrefix : null;
  return h("tr", { "data-prefix": s.prefix },
    h("td", h("code", s.prefix), tab ? [" ", h("span.badge", "this tab")] : null),
    h("td", s.remote_url), h("td.hide-narrow", s.transport), h("td", s.created_by || "–"),
    h("td.hide-narrow", fmtTime(s.created_at_ms)), h("td", fmtTime(s.expires_at_ms)),
    h("td", badge(s.state)), h("td.hide-narrow", s.mounted_here ? "yes" : "no"),
    h("td", h("div.actions",
      tab ? h("button", { type: "button", onclick: () => act(() => api("POST", `server/${enc(tab.id)}/refresh`, {}), "Refreshed") },
        "Refresh", h("span.skip", ` ${s.prefix}`)) : null,
      close ? h("button.danger", { type: "button", "data-close": s.prefix, onclick: async () => {
        if (await confirmDialog(`Close session ${s.prefix}? Its tools leave /mcp and its id stops working.`, "Close")) close();
      } }, "Close", h("span.skip", ` ${s.prefix}`)) : null)));
}

export async function sessions() {
  const mine = await tabSessions();
  let listed = [];
  let failed = null;
  try { listed = (await api("GET", "sessions")).sessions || []; } catch (e) { failed = e.message; }
  const rows = listed.map((s) => row(s, mine.get(s.prefix)));
  // This tab's sessions the list lacks (an admin looking at another tenant: sessions are
  // opened in the caller's own tenant).
  for (const [prefix, tab] of mine) if (!listed.some((s) => s.prefix === prefix)) rows.push(row(tab.s, tab));
  const whose = session.canManage ? `Live sessions of tenant ${session.tenant}` : "Your live sessions";
  const url = h("input", { name: "remote_url", type: "url", required: true, placeholder: "https://example.org/mcp" });
  const token = h("input", { name: "token", type: "password", autocomplete: "off" });
  const ttl = h("input", { name: "ttl", type: "number", min: 1, placeholder: "3600" });
  const transport = h("select", { name: "transport" }, h("option", { value: "" }, "auto"), h("option", { value: "streamable-http" }, "Streamable HTTP"), h("option", { value: "sse" }, "SSE"));
  const err = h("p.error", { role: "alert" });
  mount(
    h("h1", "Proxy sessions"),
    h("section", { "aria-labelledby": "sessions-title" },
      h("h2", { id: "sessions-title" }, whose),
      failed ? h("p.notice.bad", { role: "alert" }, failed) : null,
      rows.length
        ? h("div", { id: "session-rows" }, table(["Prefix", "Remote", "Transport", "Created by", "Created", "Expires", "State", "Mounted here", "Actions"], rows))
        : h("p.muted", { id: "session-rows" }, "No live sessions."),
      h("p.muted", "Refresh and close by id work for sessions opened from this tab (ids are shown once and never listed)",
        session.canManage ? "; you can also close any session of the tenant by its prefix." : ".")),
    h("form.stack.panel", { id: "session-form", onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = "";
      const body = { remote_url: url.value.trim() };
      if (token.value) body.token = token.value;
      if (ttl.value) body.ttl_seconds = Number(ttl.value);
      if (transport.value) body.transport = transport.value;
      try {
        const s = await api("POST", "server", body);
        save([...ids(), s.session_id]);
        toast(`Session ${s.prefix} open`);
        sessions();
      } catch (x) { err.textContent = x.message; }
    } },
    h("h2", "Open a session"),
    field("Remote MCP URL", url), field("Bearer token (optional)", token), field("Lifetime (seconds)", ttl), field("Transport", transport),
    err, h("button.primary", { type: "submit" }, "Open")));
}
