// DOM helpers: elements are built with text nodes, never from HTML strings, so nothing a
// server or tool sends can become markup.

/** h("tag.class", {attr, onclick}, ...children) */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG = "http://www.w3.org/2000/svg";
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Replaces the main area's content. */
export function mount(...children) {
  const main = document.getElementById("main");
  main.replaceChildren();
  append(main, children);
}

let uid = 0;
/** A labelled control: field("Name", input) */
export function field(label, control, hint) {
  if (!control.id) control.id = "f" + (++uid);
  return h("label", { for: control.id }, label, control, hint ? h("span.muted", hint) : null);
}

export function badge(state) {
  const cls = String(state || "unknown").replace(/[^a-z-]/g, "");
  return h("span.badge.s-" + cls, state || "unknown");
}

export function toast(text, bad) {
  const box = document.getElementById("toast");
  const d = h("div", { role: bad ? "alert" : null }, text);
  box.append(d);
  setTimeout(() => d.remove(), 5000);
}

export function table(headers, rows) {
  return h("div.table-wrap", h("table",
    h("thead", h("tr", headers.map((x) => h("th", { scope: "col", class: x.startsWith("#") ? "num" : null }, x.replace(/^#/, ""))))),
    h("tbody", rows)));
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  return ms < 10 ? ms.toFixed(1) + " ms" : ms < 10000 ? Math.round(ms) + " ms" : (ms / 1000).toFixed(1) + " s";
}

export function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString() : "–";
}

/** A small line chart of `values`, as an SVG. */
export function sparkline(values, label) {
  const w = 90, hgt = 22, max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * w},${hgt - 2 - (v / max) * (hgt - 4)}`);
  return s("svg", { class: "spark", width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: "img", "aria-label": label },
    s("polyline", { points: pts.join(" ") }));
}

/** Asks before something destructive; resolves true when confirmed. */
export function confirmDialog(text, action) {
  return new Promise((resolve) => {
    const d = h("dialog", { "aria-label": "Confirm" },
      h("p", text),
      h("div.actions",
        h("button.danger", { type: "button", onclick: () => { d.close(); resolve(true); } }, action),
        h("button", { type: "button", onclick: () => { d.close(); resolve(false); } }, "Cancel")));
    d.addEventListener("close", () => { d.remove(); resolve(false); });
    document.body.append(d);
    d.showModal();
  });
}

export async function copy(text) {
  try { await navigator.clipboard.writeText(text); toast("Copied"); }
  catch { toast("Copy failed: select the text and copy it by hand", true); }
}
