// The only module that talks to the network: config.json first, then the gateway's API
// (docs/contract.md). Every call has a timeout; every failure becomes one of two errors.
// The list is polled with If-None-Match, so an unchanged list costs a 304 and no body.

const TOKEN_KEY = "storeplatform.gatewayToken";
const CONFIG_TIMEOUT_MS = 10_000;
const LIST_TIMEOUT_MS = 20_000; // the gateway itself waits up to 15 s for list-stores
const CHANGE_TIMEOUT_MS = 15_000;

/** The gateway answered, with an error status; `message` is the server's own text. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** No answer at all: connection refused, DNS, timeout, CORS. */
export class UnreachableError extends Error {
  constructor(url, cause) {
    super(`cannot reach gateway at ${url}`);
    this.name = "UnreachableError";
    this.url = url;
    this.cause = cause;
  }
}

let gatewayBase = null;
let authRequired = false;

/** Read config.json next to the page: where the gateway is and whether it wants a token. */
export async function loadConfig() {
  const url = new URL("config.json", document.baseURI);
  const config = await send(url, { method: "GET" }, CONFIG_TIMEOUT_MS, false);
  const configured = config && typeof config.gatewayUrl === "string" ? config.gatewayUrl : "";
  // An empty gatewayUrl means "the origin that served this page".
  const base = new URL(configured || "/", document.baseURI);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  gatewayBase = base;
  authRequired = Boolean(config && config.authRequired);
  return { gatewayUrl: base.href, authRequired };
}

/** Where the gateway lives, for messages ("cannot reach gateway at …"). */
export function gatewayLabel() {
  return gatewayBase ? gatewayBase.href : new URL("/", document.baseURI).href;
}

export function isAuthRequired() {
  return authRequired;
}

/** A 401 proves the gateway wants a token, whatever config.json said. */
export function markAuthRequired() {
  authRequired = true;
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// The last list and its ETag: a poll sends If-None-Match, and a 304 means "the same again".
let lastList = null;
let lastEtag = "";

/**
 * GET /stores: {stores: [Store], deadLetters: [DeadLetter], changed}, always two arrays;
 * `changed` is false when the gateway answered 304 Not Modified (nothing to redraw).
 */
export async function listStores() {
  const headers = lastEtag && lastList ? { "If-None-Match": lastEtag } : {};
  const answer = await send(endpoint("stores"), { method: "GET", headers }, LIST_TIMEOUT_MS,
    true, true);
  if (answer.status === 304 && lastList) return { ...lastList, changed: false };
  const body = answer.body;
  const stores = Array.isArray(body?.stores) ? body.stores : [];
  const deadLetters = Array.isArray(body?.deadLetters) ? body.deadLetters : [];
  lastList = {
    stores: stores.filter((s) => s && typeof s.name === "string"),
    deadLetters: deadLetters.filter((d) => d && typeof d === "object"),
  };
  lastEtag = answer.etag;
  return { ...lastList, changed: true };
}

// Every POST is JSON (the gateway refuses any other type: no cross-site form can post).
const JSON_POST = Object.freeze({
  method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
});

/** POST /stores/{name}/admin-password: 202 {id, name, status: "resetting"}. */
export function resetAdminPassword(name) {
  return send(endpoint(`stores/${encodeURIComponent(name)}/admin-password`),
    JSON_POST, CHANGE_TIMEOUT_MS, true);
}

/**
 * POST /stores/{name}/admin-password/{id}: {status, body}: 200 {user, password} once,
 * 202 while the reset runs; 409 (failed) and 410 (shown, expired) arrive as ApiError.
 */
export function revealAdminPassword(name, id) {
  const url = endpoint(`stores/${encodeURIComponent(name)}/admin-password/${encodeURIComponent(id)}`);
  return send(url, JSON_POST, CHANGE_TIMEOUT_MS, true, true);
}

/** POST /stores/{name}: 202 {id, name, engine, status}. Also the retry of a failed store. */
export function createStore(name, engine) {
  const init = {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ engine }),
  };
  return send(storeEndpoint(name), init, CHANGE_TIMEOUT_MS, true);
}

/** DELETE /stores/{name}: 202 {id, name, status}. */
export function deleteStore(name) {
  return send(storeEndpoint(name), { method: "DELETE" }, CHANGE_TIMEOUT_MS, true);
}

function endpoint(path) {
  if (!gatewayBase) throw new Error("loadConfig() must run before the API is used");
  return new URL(path, gatewayBase);
}

function storeEndpoint(name) {
  return endpoint(`stores/${encodeURIComponent(name)}`);
}

// With `full`, the answer is {status, etag, body} (a 304 included) instead of the body.
async function send(url, init, timeoutMs, withAuth, full = false) {
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  const token = withAuth ? getToken() : "";
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let response;
  let text;
  try {
    response = await fetch(url, {
      ...init,
      headers,
      cache: "no-store",
      credentials: "omit",
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await response.text();
  } catch (err) {
    throw new UnreachableError(gatewayLabel(), err);
  }
  const body = parseJson(text);
  if (full && response.status === 304) return { status: 304, etag: "", body: null };
  if (!response.ok) {
    const error = body?.error;
    if (error && typeof error.message === "string") {
      throw new ApiError(response.status, String(error.code ?? ""), error.message);
    }
    const reason = response.statusText ? ` ${response.statusText}` : "";
    throw new ApiError(response.status, "", `HTTP ${response.status}${reason}`);
  }
  return full ? { status: response.status, etag: response.headers.get("ETag") || "", body } : body;
}

function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
