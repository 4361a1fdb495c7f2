// Servers: the list with actions, the add form (stdio / Streamable HTTP / SSE, secrets masked),
// JSON import with its per-entry report, and a server's detail page.

import { h, mount, field, badge, table, toast, confirmDialog, fmtTime } from "./dom.js";
import { api, get, enc, session } from "./api.js";

async function act(fn, done) {
  try { await fn(); if (done) toast(done); } catch (e) { toast(e.message, true); }
}

export async function servers() {
  return draw(null);
}

/** The page, with `report` (an import's outcome) under the import form. */
async function draw(report) {
  const list = await get("servers");
  const rows = (list.servers || []).map((s) => {
    const st = s.status || {};
    return h("tr",
      h("td", h("a", { href: `#/servers/${enc(s.name)}` }, s.name)),
      h("td", badge(s.enabled ? st.state : "disabled")),
      h("td", st.transport || s.config.type || ""),
      h("td.num", st.tools ?? "–"),
      h("td.hide-narrow", s.origin),
      h("td", h("div.actions",
        h("button", { type: "button", onclick: () => act(() => api("POST", `servers/${enc(s.name)}/${s.enabled ? "disable" : "enable"}`), s.enabled ? "Disabled" : "Enabled").then(servers) },
          s.enabled ? "Disable" : "Enable", h("span.skip", ` ${s.name}`)),
        h("button", { type: "button", onclick: () => act(() => api("POST", `servers/${enc(s.name)}/restart`), "Restarting").then(servers) }, "Restart", h("span.skip", ` ${s.name}`)),
        h("button.danger", { type: "button", "data-delete": s.name, onclick: async () => {
          if (await confirmDialog(`Delete server ${s.name}? Its tools disappear from every endpoint.`, "Delete")) act(() => api("DELETE", `servers/${enc(s.name)}`), "Deleted").then(servers);
        } }, "Delete", h("span.skip", ` ${s.name}`)))));
  });
  mount(
    h("h1", "Servers"),
    rows.length ? table(["Name", "State", "Transport", "#Tools", "Owner", "Actions"], rows) : h("p.muted", "No servers yet."),
    h("div.two", addForm(), importForm(report)));
}

/** Rows of name/value inputs whose values are masked (headers, env). */
function pairs(label, keyName) {
  const box = h("div.stack");
  const add = (k = "", v = "") => {
    const key = h("input", { value: k, "aria-label": `${label} name`, placeholder: keyName });
    const val = h("input", { value: v, type: "password", autocomplete: "off", "aria-label": `${label} value`, placeholder: "value (secret)" });
    const row = h("div.row", key, val, h("button", { type: "button", onclick: () => row.remove() }, "Remove"));
    box.append(row);
  };
  const fs = h("fieldset", h("legend", label), box,
    h("button", { type: "button", onclick: () => add() }, `Add ${label.toLowerCase().replace(/s$/, "")}`));
  fs.read = () => {
    const out = {};
    for (const row of box.children) {
      const [k, v] = row.querySelectorAll("input");
      if (k.value.trim()) out[k.value.trim()] = v.value;
    }
    return out;
  };
  return fs;
}

function addForm() {
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9_.\\-]+", autocomplete: "off" });
  const type = h("select", { name: "type" },
    h("option", { value: "streamable-http" }, "Streamable HTTP"),
    h("option", { value: "sse" }, "SSE (legacy)"),
    h("option", { value: "stdio" }, "stdio (local command)"));
  const url = h("input", { name: "url", type: "url", placeholder: "https://example.org/mcp" });
  const command = h("input", { name: "command", placeholder: "npx" });
  const args = h("textarea", { name: "args", placeholder: "one argument per line" });
  const headers = pairs("Headers", "Authorization");
  const env = pairs("Environment", "API_KEY");
  const remote = h("div.stack", field("URL", url), headers);
  const local = h("div.stack", field("Command", command), field("Arguments", args), env);
  const sync = () => { const stdio = type.value === "stdio"; remote.hidden = stdio; local.hidden = !stdio; };
  type.addEventListener("change", sync);
  sync();
  const err = h("p.error", { role: "alert" });
  const form = h("form.stack.panel", { id: "add-server", onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = "";
    const body = { name: name.value.trim(), type: type.value };
    if (type.value === "stdio") {
      body.command = command.value.trim();
      body.args = args.value.split("\n").map((x) => x.trim()).filter(Boolean);
      body.env = env.read();
    } else {
      body.url = url.value.trim();
      body.headers = headers.read();
    }
    try {
      await api("POST", "servers", body);
      toast(`Added ${body.name}`);
      location.hash = `#/servers/${enc(body.name)}`;
    } catch (x) { err.textContent = x.message; }
  } },
  h("h2", "Add a server"),
  field("Name", name, "letters, digits, . _ -"),
  field("Transport", type),
  remote, local, err,
  h("button.primary", { type: "submit" }, "Add server"));
  if (!session.isAdmin) form.append(h("p.muted", "Managers may add stdio servers only with a launcher the operator allowed (--stdio-allow)."));
  return form;
}

function importForm(report) {
  const text = h("textarea", { name: "import", rows: 10, placeholder: '{"mcpServers": {"name": {"command": "…"}}}' });
  const out = h("div", report);
  return h("form.stack.panel", { id: "import", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren();
    let doc;
    try { doc = JSON.parse(text.value); } catch (x) { out.append(h("p.error", { role: "alert" }, `Not JSON: ${x.message}`)); return; }
    try {
      const r = await api("POST", "import", doc);
      await draw(h("div", { role: "status" },
        h("p", `Format: ${r.format}. Added: ${r.added.join(", ") || "none"}. Kept (name taken): ${r.kept.join(", ") || "none"}.`),
        (r.notes || []).length ? table(["Entry", "Action", "Detail"], r.notes.map((n) => h("tr", h("td", n.entry), h("td", n.action), h("td", n.detail)))) : null));
    } catch (x) { out.append(h("p.error", { role: "alert" }, x.message)); }
  } },
  h("h2", "Import"),
  field("Paste an mcpServers, VS Code or MCPHub JSON file", text),
  h("button", { type: "submit" }, "Import"), out);
}

export async function serverDetail(name) {
  const [s, tools, changes] = await Promise.all([
    get(`servers/${enc(name)}`),
    get(`servers/${enc(name)}/tools`).catch(() => ({ tools: [] })),
    get(`servers/${enc(name)}/tools/changes`).catch(() => null),
  ]);
  const st = s.status || {};
  const reload = () => serverDetail(name);
  const cfg = h("textarea", { rows: 8, "aria-label": "Configuration (JSON)", value: JSON.stringify(s.config, null, 2) });
  mount(
    h("p", h("a", { href: "#/servers" }, "← Servers")),
    h("h1", s.name, " ", badge(s.enabled ? st.state : "disabled")),
    h("div.actions",
      h("button", { type: "button", onclick: () => act(() => api("POST", `servers/${enc(name)}/${s.enabled ? "disable" : "enable"}`)).then(reload) }, s.enabled ? "Disable" : "Enable"),
      h("button", { type: "button", onclick: () => act(() => api("POST", `servers/${enc(name)}/restart`), "Restarting").then(reload) }, "Restart"),
      h("button", { type: "button", onclick: reload }, "Refresh")),
    h("section.panel", h("dl.kv",
      kv("Transport", st.transport), kv("State", st.state), kv("Protocol", st.protocol), kv("Tools", st.tools),
      kv("Restarts", st.restarts), kv("Uptime", st.uptime_secs != null ? `${st.uptime_secs} s` : null),
      kv("Last error", st.last_error), kv("Owner", s.origin), kv("Updated", `${fmtTime(s.updated_at)} by ${s.updated_by}`))),
    changesPanel(name, changes, reload),
    h("h2", "Tools"),
    toolsTable(name, tools.tools || [], reload),
    s.stderr_tail ? [h("h2", "stderr (last lines)"), h("pre", { id: "stderr" }, s.stderr_tail.join("\n") || "(empty)")] : null,
    h("h2", "Edit"),
    h("form.stack.panel", { onsubmit: async (e) => {
      e.preventDefault();
      let c; try { c = JSON.parse(cfg.value); } catch (x) { toast(`Not JSON: ${x.message}`, true); return; }
      act(() => api("PUT", `servers/${enc(name)}`, c), "Saved").then(reload);
    } }, field("Configuration (secrets stay masked; send ******** back to keep them)", cfg), h("button.primary", { type: "submit" }, "Save")));
}

function kv(k, v) {
  return [h("dt", k), h("dd", v === undefined || v === null || v === "" ? "–" : String(v))];
}

function changesPanel(name, c, reload) {
  if (!c || !c.changes || !c.changes.length) return null;
  return h("section.panel.notice", { id: "changes" },
    h("h2", `Tool-definition changes waiting for approval (${c.on_tool_change})`),
    h("ul", c.changes.map((x) => h("li", `${x.tool}: ${x.status}${x.hidden ? " (hidden)" : ""}`,
      x.fields ? h("pre", JSON.stringify(x.fields, null, 2)) : null))),
    h("button.primary", { type: "button", onclick: () => act(() => api("POST", `servers/${enc(name)}/tools/changes/approve`, { tools: c.changes.map((x) => x.tool) }), "Approved").then(reload) }, "Approve all"));
}

function toolsTable(server, tools, reload) {
  if (!tools.length) return h("p.muted", "No tools (the server is not connected, or lists none).");
  return table(["Enabled", "Tool", "Exported as", "Rename", "Description"], tools.map((t) => {
    const id = `tool-${t.name}`;
    const rename = h("input", { value: t.rename || "", "aria-label": `Rename ${t.name}`, placeholder: "(none)" });
    const desc = h("input", { value: t.description_override || "", "aria-label": `Description of ${t.name}`, placeholder: t.description || "" });
    const save = (patch) => act(() => api("PATCH", `servers/${enc(server)}/tools/${enc(t.name)}`, patch), "Saved").then(reload);
    rename.addEventListener("change", () => save({ rename: rename.value }));
    desc.addEventListener("change", () => save({ description: desc.value }));
    return h("tr",
      h("td", h("input", { type: "checkbox", id, "data-tool": t.name, checked: t.enabled, "aria-label": `Enable ${t.name}`,
        onchange: (e) => save({ enabled: e.target.checked }) })),
      h("td", h("label", { for: id }, t.name)),
      h("td", h("code", t.exported_name || "hidden")),
      h("td", rename),
      h("td", desc));
  }));
}
