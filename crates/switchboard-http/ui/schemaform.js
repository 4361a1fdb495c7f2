// A form generated from a tool's JSON Schema: strings, numbers, integers, enums, booleans,
// arrays, nested objects; anything else (or on request) a raw JSON field.

import { h, field } from "./dom.js";

const MAX_DEPTH = 6;

/**
 * Builds controls for `schema`; returns { el, read } where read() gives the value (or
 * undefined when left empty) and throws an Error naming the field when input is invalid.
 */
export function build(schema, name, required, depth = 0) {
  schema = schema || {};
  const label = (schema.title || name) + (required ? " *" : "");
  const hint = schema.description;
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (depth > MAX_DEPTH) return rawJson(name, label, hint, schema);
  if (Array.isArray(schema.enum) && schema.enum.every((v) => ["string", "number", "boolean"].includes(typeof v))) {
    const sel = h("select", { name, required: !!required },
      required ? null : h("option", { value: "" }, "(none)"),
      schema.enum.map((v, i) => h("option", { value: String(i), selected: schema.default === v }, String(v))));
    return { el: field(label, sel, hint), read: () => (sel.value === "" ? undefined : schema.enum[Number(sel.value)]) };
  }
  if (type === "boolean") {
    const cb = h("input", { type: "checkbox", name, checked: schema.default === true });
    return { el: h("label.inline", cb, label, hint ? h("span.muted", ` ${hint}`) : null), read: () => cb.checked };
  }
  if (type === "number" || type === "integer") {
    const inp = h("input", { type: "number", name, step: type === "integer" ? "1" : "any", required: !!required,
      min: schema.minimum, max: schema.maximum, value: schema.default ?? "" });
    return { el: field(label, inp, hint), read: () => {
      if (inp.value === "") return undefined;
      const n = Number(inp.value);
      if (!Number.isFinite(n) || (type === "integer" && !Number.isInteger(n))) throw new Error(`${name}: not ${type === "integer" ? "an integer" : "a number"}`);
      return n;
    } };
  }
  if (type === "string") {
    const long = (schema.maxLength || 0) > 200 || /text|content|body|query|prompt/i.test(name);
    const inp = long ? h("textarea", { name, rows: 3, required: !!required, value: schema.default ?? "" })
      : h("input", { name, required: !!required, value: schema.default ?? "" });
    return { el: field(label, inp, hint), read: () => (inp.value === "" ? undefined : inp.value) };
  }
  if (type === "array" && schema.items && typeof schema.items === "object") {
    const box = h("div.stack");
    const items = [];
    const add = () => {
      const item = build(schema.items, `${name}[${items.length}]`, false, depth + 1);
      const row = h("div.row", item.el, h("button", { type: "button", onclick: () => { row.remove(); items.splice(items.indexOf(item), 1); } }, "Remove"));
      items.push(item);
      box.append(row);
    };
    const fs = h("fieldset", h("legend", label), hint ? h("p.muted", hint) : null, box,
      h("button", { type: "button", onclick: add }, "Add item"));
    return { el: fs, read: () => {
      const v = items.map((i) => i.read()).filter((x) => x !== undefined);
      return v.length || required ? v : undefined;
    } };
  }
  if (type === "object" || (!type && schema.properties)) {
    const props = schema.properties || {};
    const req = new Set(schema.required || []);
    const keys = Object.keys(props);
    if (!keys.length) return rawJson(name, label, hint, schema);
    const parts = keys.map((k) => [k, build(props[k], k, req.has(k), depth + 1)]);
    const body = parts.map(([, p]) => p.el);
    const el = depth === 0 ? h("div.stack", body) : h("fieldset", h("legend", label), hint ? h("p.muted", hint) : null, body);
    return { el, read: () => {
      const out = {};
      for (const [k, p] of parts) {
        const v = p.read();
        if (v !== undefined) out[k] = v;
        else if (req.has(k)) throw new Error(`${k} is required`);
      }
      return Object.keys(out).length || required || depth === 0 ? out : undefined;
    } };
  }
  return rawJson(name, label, hint, schema);
}

function rawJson(name, label, hint, schema) {
  const ta = h("textarea", { name, rows: 3, placeholder: "JSON", value: schema.default !== undefined ? JSON.stringify(schema.default) : "" });
  return { el: field(`${label} (JSON)`, ta, hint), read: () => {
    if (!ta.value.trim()) return undefined;
    try { return JSON.parse(ta.value); } catch (e) { throw new Error(`${label}: not JSON (${e.message})`); }
  } };
}
