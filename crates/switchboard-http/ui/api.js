// Talking to the hub: the REST API and /mcp with the session cookie, the CSRF token on every
// write, one silent refresh when the access token expired.

let csrf = null;
let user = null;
let tenant = null; // admins: the tenant they act on

export const session = {
  get user() { return user; },
  get tenant() { return tenant || (user && user.tenant); },
  setTenant(t) { tenant = t && user && t !== user.tenant ? t : null; },
  get role() { return user ? user.role : null; },
  get canManage() { return user && (user.role === "admin" || user.role === "manager"); },
  get isAdmin() { return user && user.role === "admin"; },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

function headers(extra) {
  const hd = { Accept: "application/json", ...extra };
  if (csrf) hd["X-CSRF-Token"] = csrf;
  if (tenant) hd["X-Switchboard-Tenant"] = tenant;
  return hd;
}

// One refresh at a time: a refresh token works once, and presenting it twice revokes the login.
let refreshing = null;
function refresh() {
  if (!refreshing) refreshing = doRefresh().finally(() => { refreshing = null; });
  return refreshing;
}

async function doRefresh() {
  const r = await fetch("ui/refresh", { method: "POST", headers: headers(), credentials: "same-origin" });
  if (r.status === 403) {
    // Another tab refreshed first (new cookies, new CSRF token): take its session.
    const s = await fetch("ui/session", { credentials: "same-origin" }).then((x) => x.json()).catch(() => ({}));
    csrf = s.csrf || null; user = s.user || null;
    return !!user;
  }
  if (!r.ok) { user = null; csrf = null; return false; }
  const b = await r.json();
  csrf = b.csrf; user = b.user;
  return true;
}

/** Loads who is signed in; false when nobody is. */
export async function loadSession() {
  const r = await fetch("ui/session", { credentials: "same-origin" });
  if (!r.ok) return false;
  const b = await r.json();
  csrf = b.csrf || null;
  user = b.user;
  if (!user && b.expired && csrf) return refresh();
  return !!user;
}

export async function login(username, password) {
  const r = await fetch("ui/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const b = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, b);
  csrf = b.csrf; user = b.user; tenant = null;
}

export async function logout() {
  await fetch("ui/logout", { method: "POST", headers: headers(), credentials: "same-origin" });
  csrf = null; user = null; tenant = null;
}

/** A fetch with the session, retried once after a refresh on 401. */
export async function raw(method, path, body, extra) {
  const init = () => ({
    method, credentials: "same-origin",
    headers: headers(body !== undefined ? { "Content-Type": "application/json", ...extra } : extra),
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  let r = await fetch(path, init());
  if (r.status === 401 && csrf && (await refresh())) r = await fetch(path, init());
  return r;
}

/** A JSON call to `api/v1/{path}`; throws ApiError on failure. */
export async function api(method, path, body) {
  const r = await raw(method, "api/v1/" + path, body);
  if (r.status === 204) return null;
  const b = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, b);
  return b;
}

export const get = (p) => api("GET", p);
export const enc = encodeURIComponent;

/** Reads an SSE body, calling onMessage with each `data:` payload parsed as JSON. */
export async function readSse(resp, onMessage) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const chunk = buf.slice(0, i);
      buf = buf.slice(i).replace(/^\r?\n\r?\n/, "");
      const data = chunk.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (data) { try { onMessage(JSON.parse(data)); } catch { /* not JSON: skipped */ } }
    }
  }
}

/**
 * Calls `tool` on an MCP endpoint (`mcp` or `mcp/{group}`) of the main service as the signed-in
 * user: initialize, tools/call with a progress token, end the session. `onEvent` gets every
 * notification (progress, log messages); resolves with the JSON-RPC response.
 */
export async function callTool(endpoint, tool, args, onEvent, signal) {
  const base = { Accept: "application/json, text/event-stream" };
  let sid = null;
  let listen = null;
  const post = async (msg) => {
    const r = await raw("POST", endpoint, msg, sid ? { ...base, "Mcp-Session-Id": sid } : base);
    if (!r.ok && r.status !== 202) {
      const b = await r.json().catch(() => null);
      throw new ApiError(r.status, b && (b.error && b.error.message ? { message: b.error.message } : b));
    }
    return r;
  };
  const init = await post({ jsonrpc: "2.0", id: 1, method: "initialize", params: {
    protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "switchboard-dashboard", version: "1" } } });
  sid = init.headers.get("mcp-session-id");
  await readBody(init, () => {});
  try {
    await post({ jsonrpc: "2.0", method: "notifications/initialized" });
    await post({ jsonrpc: "2.0", id: 2, method: "logging/setLevel", params: { level: "debug" } }).then((r) => readBody(r, () => {})).catch(() => {});
    // Log messages of a shared upstream reach the session on its GET stream, not the call's.
    if (sid) {
      listen = new AbortController();
      const stream = await fetch(endpoint, { credentials: "same-origin", signal: listen.signal,
        headers: { ...headers({ Accept: "text/event-stream" }), "Mcp-Session-Id": sid } }).catch(() => null);
      if (stream && stream.ok) readSse(stream, (m) => { if (m.method) onEvent(m); }).catch(() => {});
    }
    let reply = null;
    const r = await raw("POST", endpoint, { jsonrpc: "2.0", id: 3, method: "tools/call",
      params: { name: tool, arguments: args, _meta: { progressToken: "dash-1" } } },
      sid ? { ...base, "Mcp-Session-Id": sid } : base);
    if (signal) signal.addEventListener("abort", () => post({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 3, reason: "cancelled in the dashboard" } }).catch(() => {}));
    await readBody(r, (m) => { if (m.id === 3) reply = m; else if (m.method) onEvent(m); });
    if (!reply) throw new Error("the hub closed the stream without a reply");
    return reply;
  } finally {
    if (listen) listen.abort();
    if (sid) raw("DELETE", endpoint, undefined, { "Mcp-Session-Id": sid }).catch(() => {});
  }
}

async function readBody(r, onMessage) {
  const ct = r.headers.get("content-type") || "";
  if (ct.includes("text/event-stream")) return readSse(r, onMessage);
  const text = await r.text();
  if (!text) return;
  const v = JSON.parse(text);
  (Array.isArray(v) ? v : [v]).forEach(onMessage);
}
