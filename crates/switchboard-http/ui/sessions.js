// Proxy sessions (seed 002): open one to a remote MCP server, refresh its lifetime, close it.
// The API keeps no list of session ids (an id is a secret shown once), so this page lists the
// sessions opened from this browser tab and looks each one up.

import { h, mount, field, table, toast, confirmDialog } from "./dom.js";
import { api, enc } from "./api.js";

const KEY = "switchboard.sessions";
const ids = () => JSON.parse(sessionStorage.getItem(KEY) || "[]");
const save = (list) => sessionStorage.setItem(KEY, JSON.stringify(list));

export async function sessions() {
  const rows = [];
  const kept = [];
  for (const id of ids()) {
    try {
      const s = await api("GET", `server/${enc(id)}`);
      kept.push(id);
      rows.push(h("tr",
        h("td", h("code", s.prefix)), h("td", s.remote_url), h("td", s.transport), h("td", s.state), h("td", s.expires_at),
        h("td", h("div.actions",
          h("button", { type: "button", onclick: async () => {
            try { await api("POST", `server/${enc(id)}/refresh`, {}); toast("Refreshed"); sessions(); } catch (e) { toast(e.message, true); }
          } }, "Refresh"),
          h("button.danger", { type: "button", onclick: async () => {
            if (!(await confirmDialog(`Close session ${s.prefix}?`, "Close"))) return;
            try { await api("DELETE", `server/${enc(id)}`); save(ids().filter((x) => x !== id)); toast("Closed"); sessions(); } catch (e) { toast(e.message, true); }
          } }, "Close")))));
    } catch { /* expired or closed elsewhere: dropped from the list */ }
  }
  save(kept);
  const url = h("input", { name: "remote_url", type: "url", required: true, placeholder: "https://example.org/mcp" });
  const token = h("input", { name: "token", type: "password", autocomplete: "off" });
  const ttl = h("input", { name: "ttl", type: "number", min: 1, placeholder: "3600" });
  const transport = h("select", { name: "transport" }, h("option", { value: "" }, "auto"), h("option", { value: "streamable-http" }, "Streamable HTTP"), h("option", { value: "sse" }, "SSE"));
  const err = h("p.error", { role: "alert" });
  mount(
    h("h1", "Proxy sessions"),
    rows.length ? table(["Prefix", "Remote", "Transport", "State", "Expires", "Actions"], rows) : h("p.muted", "No sessions opened from this tab."),
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
