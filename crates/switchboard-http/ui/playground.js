// Playground: find a tool with the smart index, fill a form generated from its schema, call it
// over /mcp as the signed-in user, and watch progress, log messages and the result.

import { h, mount, field, toast, fmtMs } from "./dom.js";
import { get, enc, callTool } from "./api.js";
import { build } from "./schemaform.js";

export async function playground(arg) {
  const q = h("input", { type: "search", name: "q", placeholder: "e.g. add two numbers", autocomplete: "off" });
  const group = h("input", { name: "group", placeholder: "(all)", autocomplete: "off" });
  const results = h("ul.list", { id: "tool-results", "aria-label": "Tools found" });
  const detail = h("div", { id: "tool-detail" }, h("p.muted", "Search for a tool and pick one."));
  let timer = null;
  const search = async () => {
    const text = q.value.trim();
    if (!text) { results.replaceChildren(); return; }
    try {
      const g = group.value.trim();
      const r = await get(`tools/search?q=${enc(text)}&limit=20${g ? `&group=${enc(g)}` : ""}`);
      results.replaceChildren(...r.tools.map((t) => h("li", h("button", { type: "button", "data-tool": t.name, "aria-pressed": "false",
        onclick: (e) => {
          for (const b of results.querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
          e.currentTarget.setAttribute("aria-pressed", "true");
          showTool(detail, t, g);
        } }, h("strong", t.name), h("br"), h("span.muted", (t.tool.description || "").slice(0, 120))))));
      if (!r.tools.length) results.append(h("li.muted", "No tool matches."));
    } catch (e) { results.replaceChildren(h("li.error", e.message)); }
  };
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  group.addEventListener("change", search);
  mount(
    h("h1", "Playground"),
    h("div.two",
      h("section.panel.stack", h("form.stack", { role: "search", onsubmit: (e) => { e.preventDefault(); search(); } },
        field("Search tools", q), field("Group", group, "search and call through /mcp/{group}")), results),
      h("section.panel", detail)));
  if (arg) { q.value = arg; await search(); }
  q.focus();
}

function showTool(box, found, group) {
  const tool = found.tool;
  const schema = tool.inputSchema || { type: "object" };
  let form = build(schema, "arguments", false);
  const raw = h("textarea", { rows: 8, "aria-label": "Arguments (JSON)", hidden: true, value: "{}" });
  const rawToggle = h("input", { type: "checkbox", id: "raw-toggle" });
  rawToggle.addEventListener("change", () => {
    if (rawToggle.checked) { try { raw.value = JSON.stringify(form.read(), null, 2); } catch { /* keep */ } }
    raw.hidden = !rawToggle.checked;
    form.el.hidden = rawToggle.checked;
  });
  const progress = h("progress", { hidden: true, max: 1, "aria-label": "Progress" });
  const events = h("ul.events", { id: "call-events", "aria-live": "polite" });
  const out = h("div", { id: "call-result" });
  const callBtn = h("button.primary", { type: "submit", id: "call" }, "Call");
  const cancelBtn = h("button", { type: "button", hidden: true }, "Cancel");
  let abort = null;
  cancelBtn.addEventListener("click", () => abort && abort.abort());
  box.replaceChildren(...[
    h("h2", found.name),
    tool.description ? h("p", tool.description) : null,
    h("form.stack", { id: "call-form", onsubmit: async (e) => {
      e.preventDefault();
      let args;
      try { args = rawToggle.checked ? JSON.parse(raw.value || "{}") : form.read(); }
      catch (x) { toast(x.message, true); return; }
      events.replaceChildren(); out.replaceChildren();
      progress.hidden = false; progress.removeAttribute("value");
      callBtn.disabled = true; cancelBtn.hidden = false;
      abort = new AbortController();
      const t0 = performance.now();
      try {
        const reply = await callTool(group ? `mcp/${enc(group)}` : "mcp", found.name, args, (m) => onEvent(m, progress, events), abort.signal);
        showResult(out, reply, performance.now() - t0);
      } catch (x) {
        out.replaceChildren(h("p.error", { role: "alert" }, x.message));
      } finally {
        progress.hidden = true; callBtn.disabled = false; cancelBtn.hidden = true;
      }
    } },
    form.el, h("label.inline", rawToggle, "Edit as raw JSON"), raw,
    h("div.actions", callBtn, cancelBtn)),
    progress, events, out].filter(Boolean));
}

function onEvent(m, progress, events) {
  const p = m.params || {};
  if (m.method === "notifications/progress") {
    if (p.total) { progress.max = p.total; progress.value = p.progress; }
    events.append(h("li.progress-event", `progress ${p.progress}${p.total ? ` / ${p.total}` : ""}${p.message ? `: ${p.message}` : ""}`));
  } else if (m.method === "notifications/message") {
    const data = typeof p.data === "string" ? p.data : JSON.stringify(p.data);
    events.append(h("li.log-event", `[${p.level}${p.logger ? ` ${p.logger}` : ""}] ${data}`));
  } else {
    events.append(h("li", m.method));
  }
}

function showResult(out, reply, ms) {
  const parts = [h("p", { id: "duration" }, `Took ${fmtMs(ms)}`)];
  if (reply.error) {
    parts.push(h("p.error", { role: "alert" }, `Error ${reply.error.code}: ${reply.error.message}`));
  } else {
    const r = reply.result || {};
    if (r.isError) parts.push(h("p.error", "The tool reported an error:"));
    for (const c of r.content || []) parts.push(content(c));
    if (r.structuredContent) parts.push(h("h3", "Structured content"), h("pre", JSON.stringify(r.structuredContent, null, 2)));
  }
  out.replaceChildren(...parts);
}

function content(c) {
  if (c.type === "text") return h("pre.result-text", c.text);
  if (c.type === "image" && /^image\/(png|jpeg|gif|webp)$/.test(c.mimeType || "")) {
    return h("img.result", { src: `data:${c.mimeType};base64,${c.data}`, alt: "image returned by the tool" });
  }
  if (c.type === "resource" && c.resource) {
    const r = c.resource;
    return h("div.panel", h("p", h("strong", "Resource "), h("code", r.uri || ""), r.mimeType ? ` (${r.mimeType})` : ""),
      r.text !== undefined ? h("pre", r.text) : h("p.muted", `${(r.blob || "").length} base64 characters`));
  }
  if (c.type === "resource_link") return h("p", "Link: ", h("code", c.uri), c.name ? ` ${c.name}` : "");
  return h("pre", JSON.stringify(c, null, 2));
}
