// Access: the caller's API keys (the secret is shown once), users and tenants for managers
// and admins, and "Connect a client" with config snippets for the chosen endpoint and key.

import { h, mount, field, table, toast, confirmDialog, copy, fmtTime } from "./dom.js";
import { api, get, enc, session } from "./api.js";

async function guarded(fn, done, after) {
  try { await fn(); if (done) toast(done); if (after) after(); } catch (e) { toast(e.message, true); }
}

export async function access() {
  const sections = [h("h1", "Access"), await keysSection()];
  if (session.canManage) sections.push(await usersSection());
  if (session.isAdmin) sections.push(await tenantsSection());
  mount(...sections);
}

// The key created last in this page's lifetime, offered on "Connect a client".
let lastKey = "";

function keysTable(keys, reload) {
  if (!keys.length) return h("p.muted", "No keys yet.");
  return table(["Name", "Limited to", "Created", "Last used", "Expires", "State", ""], keys.map((k) => h("tr",
    h("td", k.name), h("td", k.allow ? k.allow.join(", ") : "all grants"), h("td", fmtTime(k.created_at)), h("td", fmtTime(k.last_used_at)),
    h("td", k.expires_at ? fmtTime(k.expires_at) : "never"), h("td", k.revoked_at ? "revoked" : "active"),
    h("td", k.revoked_at ? "" : h("button.danger", { type: "button", onclick: async () => {
      if (await confirmDialog(`Revoke key ${k.name}? Clients using it stop working at once.`, "Revoke")) guarded(() => api("DELETE", `keys/${enc(k.id)}`), "Revoked", reload);
    } }, "Revoke", h("span.skip", ` ${k.name}`))))));
}

async function keysSection() {
  const list = h("div", { id: "keys" });
  const reload = async () => list.replaceChildren(keysTable((await get("keys")).keys || [], reload));
  await reload();
  const name = h("input", { name: "key-name", required: true, placeholder: "laptop" });
  const days = h("input", { name: "key-days", type: "number", min: 1, placeholder: "never" });
  const allow = h("input", { name: "key-allow", placeholder: "(the user's grants)" });
  const shown = h("div", { id: "new-key" });
  return h("section.panel",
    h("h2", "API keys"),
    list,
    h("form.row", { id: "key-form", onsubmit: async (e) => {
      e.preventDefault();
      const body = { name: name.value.trim() };
      if (days.value) body.expires_in_seconds = Number(days.value) * 86400;
      const a = allow.value.split(",").map((x) => x.trim()).filter(Boolean);
      if (a.length) body.allow = a;
      try {
        const k = await api("POST", "keys", body);
        lastKey = k.key;
        const secret = h("input", { readonly: true, value: k.key, id: "new-key-secret", "aria-label": "New key" });
        shown.replaceChildren(h("div.notice", h("p", h("strong", "Copy this key now: it is not shown again.")),
          h("div.row", secret, h("button", { type: "button", onclick: () => copy(k.key) }, "Copy"),
            h("a", { href: "#/connect" }, "Connect a client with it"))));
        secret.select();
        name.value = "";
        await reload();
      } catch (x) { toast(x.message, true); }
    } }, field("Name", name), field("Expires after (days)", days), field("Limit to groups/servers (comma separated)", allow),
    h("button.primary", { type: "submit" }, "Create key")),
    shown);
}

async function usersSection() {
  const users = (await get("users")).users || [];
  const name = h("input", { name: "new-username", required: true, autocomplete: "off" });
  const pass = h("input", { name: "new-password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const role = h("select", { name: "new-role" }, ["user", "manager", session.isAdmin ? "admin" : null].filter(Boolean).map((r) => h("option", { value: r }, r)));
  const grants = h("input", { name: "new-grants", placeholder: "* (everything)" });
  return h("section.panel",
    h("h2", `Users of ${session.tenant}`),
    table(["User", "Role", "Grants", "State", ""], users.map((u) => h("tr",
      h("td", u.username), h("td", u.role), h("td", u.grants.join(", ")), h("td", u.disabled ? "disabled" : "active"),
      h("td", h("div.actions",
        h("button", { type: "button", onclick: () => guarded(() => api("PATCH", `users/${enc(u.id)}`, { disabled: !u.disabled }), "Saved", access) }, u.disabled ? "Enable" : "Disable"),
        h("button.danger", { type: "button", onclick: async () => {
          if (await confirmDialog(`Delete user ${u.username} and their keys?`, "Delete")) guarded(() => api("DELETE", `users/${enc(u.id)}`), "Deleted", access);
        } }, "Delete")))))),
    h("form.row", { id: "user-form", onsubmit: (e) => {
      e.preventDefault();
      const body = { username: name.value.trim(), password: pass.value, role: role.value };
      const g = grants.value.split(",").map((x) => x.trim()).filter(Boolean);
      if (g.length) body.grants = g;
      guarded(() => api("POST", "users", body), "User created", access);
    } }, field("User name", name), field("Password", pass), field("Role", role), field("Grants", grants),
    h("button.primary", { type: "submit" }, "Create user")));
}

async function tenantsSection() {
  const tenants = (await get("tenants")).tenants || [];
  const name = h("input", { name: "new-tenant", required: true });
  return h("section.panel",
    h("h2", "Tenants"),
    table(["Tenant", "Created", ""], tenants.map((t) => h("tr", h("td", t.name), h("td", fmtTime(t.created_at)),
      h("td", t.name === "default" ? "" : h("button.danger", { type: "button", onclick: async () => {
        if (await confirmDialog(`Delete tenant ${t.name} with all its servers, users and keys?`, "Delete")) guarded(() => api("DELETE", `tenants/${enc(t.name)}`), "Deleted", access);
      } }, "Delete"))))),
    h("form.row", { id: "tenant-form", onsubmit: (e) => { e.preventDefault(); guarded(() => api("POST", "tenants", { name: name.value.trim() }), "Tenant created", access); } },
      field("Name", name), h("button.primary", { type: "submit" }, "Create tenant")));
}

/** The snippets for each client, for endpoint `url` and key `key`. */
export function snippets(url, key) {
  const k = key || "<your API key>";
  return [
    ["Claude Desktop (claude_desktop_config.json)", JSON.stringify({ mcpServers: { switchboard: { command: "switchboard", args: ["connect", url], env: { SWITCHBOARD_KEY: k } } } }, null, 2)],
    ["Cursor (.cursor/mcp.json)", JSON.stringify({ mcpServers: { switchboard: { url, headers: { Authorization: `Bearer ${k}` } } } }, null, 2)],
    ["VS Code (.vscode/mcp.json)", JSON.stringify({ servers: { switchboard: { type: "http", url, headers: { Authorization: `Bearer ${k}` } } } }, null, 2)],
    ["Python SDK", [
      "import asyncio",
      "from mcp import ClientSession",
      "from mcp.client.streamable_http import streamablehttp_client",
      "",
      "async def main():",
      `    async with streamablehttp_client(${JSON.stringify(url)}, headers={"Authorization": ${JSON.stringify("Bearer " + k)}}) as (read, write, _):`,
      "        async with ClientSession(read, write) as session:",
      "            await session.initialize()",
      "            print([t.name for t in (await session.list_tools()).tools])",
      "",
      "asyncio.run(main())",
    ].join("\n")],
  ];
}

export async function connect() {
  const groups = session.canManage ? ((await get("groups").catch(() => ({ groups: [] }))).groups || []) : [];
  const endpoint = h("select", { name: "endpoint" },
    h("option", { value: "mcp" }, "All servers (/mcp)"),
    h("option", { value: "mcp/$smart" }, "Smart routing (/mcp/$smart)"),
    groups.map((g) => h("option", { value: `mcp/${g.name}` }, `Group ${g.name}`)),
    (session.user.grants || []).filter((g) => g !== "*" && !groups.some((x) => x.name === g)).map((g) => h("option", { value: `mcp/${g}` }, g)));
  const key = h("input", { name: "connect-key", type: "password", autocomplete: "off", value: lastKey, placeholder: "paste a key from the Access page" });
  const out = h("div.stack", { id: "snippets" });
  const draw = () => {
    const url = new URL(endpoint.value, document.baseURI).href;
    out.replaceChildren(...snippets(url, key.value.trim()).map(([title, text]) => h("section.panel",
      h("h2", title), h("pre", text), h("button", { type: "button", onclick: () => copy(text) }, `Copy ${title.split(" (")[0]} config`))));
  };
  endpoint.addEventListener("change", draw);
  key.addEventListener("input", draw);
  mount(h("h1", "Connect a client"),
    h("div.panel.row", field("Endpoint", endpoint), field("API key", key, "create one under Access; it goes into the snippets only, nowhere else")),
    out);
  draw();
}
