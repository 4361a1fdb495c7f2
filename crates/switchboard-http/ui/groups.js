// Groups: named subsets of servers (and optionally tools) served at /mcp/{group}.

import { h, mount, field, table, toast, confirmDialog, copy } from "./dom.js";
import { api, get, enc } from "./api.js";

function endpoint(group) {
  return new URL(`mcp/${enc(group)}`, document.baseURI).href;
}

export async function groups() {
  const [g, s] = await Promise.all([get("groups"), get("servers")]);
  const servers = (s.servers || []).map((x) => x.name);
  const list = g.groups || [];
  mount(
    h("h1", "Groups"),
    list.length ? table(["Group", "Servers", "Tools", "Endpoint", "Actions"], list.map((x) => h("tr",
      h("td", x.name),
      h("td", (x.members || []).join(", ")),
      h("td", x.tools ? x.tools.join(", ") : "all"),
      h("td", h("code", endpoint(x.name))),
      h("td", h("div.actions",
        h("button", { type: "button", onclick: () => copy(endpoint(x.name)) }, "Copy URL"),
        h("button", { type: "button", onclick: () => mount(h("h1", `Edit ${x.name}`), editor(servers, x)) }, "Edit"),
        h("button.danger", { type: "button", onclick: async () => {
          if (!(await confirmDialog(`Delete group ${x.name}?`, "Delete"))) return;
          try { await api("DELETE", `groups/${enc(x.name)}`); toast("Deleted"); groups(); } catch (e) { toast(e.message, true); }
        } }, "Delete")))))) : h("p.muted", "No groups yet."),
    editor(servers, null));
}

function editor(servers, group) {
  const name = h("input", { name: "group", required: true, value: group ? group.name : "", readonly: !!group });
  const checks = servers.map((n) => h("input", { type: "checkbox", value: n, checked: group && (group.members || []).includes(n) }));
  const chosen = new Set(group && group.tools ? group.tools : []);
  const toolBox = h("div.stack", { id: "group-tools" });
  // The exported tools of the checked servers; none checked means every tool.
  const drawTools = async () => {
    const lists = await Promise.all(checks.filter((c) => c.checked).map((c) =>
      get(`servers/${enc(c.value)}/tools`).then((t) => t.tools || []).catch(() => [])));
    const names = lists.flat().map((t) => t.exported_name).filter(Boolean);
    toolBox.replaceChildren(...(names.length ? names.map((n) => h("label.inline",
      h("input", { type: "checkbox", value: n, checked: chosen.has(n), onchange: (e) => (e.target.checked ? chosen.add(n) : chosen.delete(n)) }), n))
      : [h("p.muted", "Pick servers to choose among their tools.")]));
  };
  for (const c of checks) c.addEventListener("change", drawTools);
  drawTools();
  const err = h("p.error", { role: "alert" });
  return h("form.stack.panel", { id: "group-form", onsubmit: async (e) => {
    e.preventDefault();
    const members = checks.filter((c) => c.checked).map((c) => c.value);
    const shown = new Set([...toolBox.querySelectorAll("input:checked")].map((c) => c.value));
    const body = { name: name.value.trim(), members, tools: shown.size ? [...shown] : null };
    try {
      await api(group ? "PUT" : "POST", group ? `groups/${enc(group.name)}` : "groups", body);
      toast("Saved");
      groups();
    } catch (x) { err.textContent = x.message; }
  } },
  h("h2", group ? "Edit group" : "Create a group"),
  field("Name", name),
  h("fieldset", h("legend", "Servers"), servers.length ? checks.map((c, i) => h("label.inline", c, servers[i])) : h("p.muted", "No servers.")),
  h("fieldset", h("legend", "Tools (none checked: all of them)"), toolBox),
  err,
  h("button.primary", { type: "submit" }, group ? "Save" : "Create group"));
}
