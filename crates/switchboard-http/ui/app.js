// The dashboard's entry: sign-in, navigation by role, and the hash router (#/page/arg).

import { h, mount, field, toast } from "./dom.js";
import { session, loadSession, login, logout, get } from "./api.js";

// Each page's module is loaded when it is first opened, so a first visit fetches only the
// shell, this file, api.js, dom.js and the page it shows.
const lazy = (file, name) => async (...args) => (await import(file))[name](...args);

// Who sees what: "manage" pages need the admin or manager role, as the API does.
const PAGES = [
  { path: "", title: "Overview", render: lazy("./overview.js", "overview"), manage: true },
  { path: "servers", title: "Servers", render: lazy("./servers.js", "servers"), manage: true },
  { path: "groups", title: "Groups", render: lazy("./groups.js", "groups"), manage: true },
  { path: "playground", title: "Playground", render: lazy("./playground.js", "playground") },
  { path: "activity", title: "Activity", render: lazy("./activity.js", "activity") },
  { path: "sessions", title: "Proxy sessions", render: lazy("./sessions.js", "sessions") },
  { path: "access", title: "Access", render: lazy("./access.js", "access") },
  { path: "connect", title: "Connect", render: lazy("./access.js", "connect") },
];
const serverDetail = lazy("./servers.js", "serverDetail");

function route() {
  const [page, ...rest] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { page: page || "", arg: rest.join("/") };
}

function nav(current) {
  const el = document.getElementById("nav");
  if (!session.user) { el.replaceChildren(); return; }
  el.replaceChildren(...PAGES.filter((p) => !p.manage || session.canManage).map((p) =>
    h("a", { href: "#/" + p.path, "aria-current": p.path === current ? "page" : null }, p.title)));
}

async function who() {
  const el = document.getElementById("who");
  if (!session.user) { el.replaceChildren(); return; }
  const parts = [h("span", { id: "whoami" }, `${session.user.username} · ${session.user.role}`)];
  if (session.isAdmin) {
    const sel = h("select", { "aria-label": "Tenant", id: "tenant-select",
      onchange: () => { session.setTenant(sel.value); render(); } });
    try {
      const t = await get("tenants");
      for (const x of t.tenants || []) sel.append(h("option", { value: x.name, selected: x.name === session.tenant }, x.name));
      parts.push(sel);
    } catch { /* no tenant list: the switcher stays hidden */ }
  } else {
    parts.push(h("span", `tenant ${session.user.tenant}`));
  }
  parts.push(h("button", { type: "button", id: "signout", onclick: async () => { await logout(); location.hash = "#/"; start(); } }, "Sign out"));
  el.replaceChildren(...parts);
}

function signIn() {
  nav(null);
  who();
  const user = h("input", { name: "username", autocomplete: "username", required: true });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const err = h("p.error", { role: "alert" });
  const form = h("form.stack.panel", { id: "login", onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = "";
    try { await login(user.value, pass.value); start(); }
    catch (x) { err.textContent = x.message; pass.select(); }
  } },
  h("h1", "Sign in"),
  field("User name", user),
  field("Password", pass),
  err,
  h("button.primary", { type: "submit" }, "Sign in"));
  mount(h("div.login", form));
  user.focus();
  rendered();
}

let rendering = 0;
async function render() {
  if (!session.user) return signIn();
  const { page, arg } = route();
  // A plain user's home is the playground.
  let p = PAGES.find((x) => x.path === (page || (session.canManage ? "" : "playground")));
  if (page === "servers" && arg) p = { ...p, render: (a) => serverDetail(a) };
  nav(p ? p.path : null);
  const ticket = ++rendering;
  if (!p) { mount(h("h1", "Not found"), h("p", "There is no such page.")); rendered(); return; }
  document.title = `${p.title} · Switchboard`;
  if (p.manage && !session.canManage) {
    mount(h("h1", p.title), h("p.notice.bad", { id: "forbidden", role: "alert" },
      "This page needs the admin or manager role. You can use the Playground, Activity and Access pages."));
    rendered();
    return;
  }
  try {
    await p.render(arg, () => ticket === rendering);
  } catch (e) {
    if (e.status === 401) { await start(); return; }
    mount(h("h1", p.title), h("p.notice.bad", { role: "alert" }, e.message));
  }
  if (ticket === rendering) {
    document.getElementById("main").focus({ preventScroll: true });
    rendered();
  }
}

// Marks when the page became usable (read by the browser test's time-to-interactive figure).
function rendered() {
  document.documentElement.dataset.rendered = String(Math.round(performance.now()));
}

async function start() {
  try { await loadSession(); } catch (e) { toast(e.message, true); }
  await who();
  render();
}

// With <base href>, "#/x" resolves against the base, not this document: follow such links
// in place so the app is never reloaded (nor the route lost) when the URL has a query.
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest('a[href^="#"]');
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  const href = a.getAttribute("href");
  if (href.startsWith("#/")) location.hash = href;
  else document.getElementById(href.slice(1))?.focus();
});
window.addEventListener("hashchange", render);
window.addEventListener("unhandledrejection", (e) => { toast(String(e.reason && e.reason.message || e.reason), true); });
start();
