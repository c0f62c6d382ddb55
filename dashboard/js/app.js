// The dashboard: polls the gateway, renders stores, and drives the create/delete/token forms,
// the list's filters, retries and the admin-password reset.

import * as api from "./api.js";
import { renderDeadLetters } from "./deadletters.js";
import { ListView } from "./listview.js";
import { storeNameProblem } from "./names.js";
import { ResetDialog } from "./reset.js";
import { retryAction, StoreList } from "./stores.js";

const POLL_MS = 2_000;
const HIDDEN_POLL_MS = 10_000; // a background tab still updates, just less often
// How long a store we asked for may be missing from the list (events are asynchronous),
// and how long a delete we asked for may still show the old status, before the list wins.
const PENDING_MS = 60_000;
// How long a retried failed store shows "retry requested" before the list wins.
const RETRY_PENDING_MS = 30_000;

const $ = (id) => document.getElementById(id);
const ui = {
  banner: $("banner"),
  bannerTitle: $("banner-title"),
  bannerMessage: $("banner-message"),
  connection: $("connection"),
  connectionText: $("connection-text"),
  tokenButton: $("token-button"),
  createForm: $("create-form"),
  nameInput: $("store-name"),
  nameError: $("store-name-error"),
  engineSelect: $("store-engine"),
  createButton: $("create-button"),
  createResult: $("create-result"),
  storesSection: $("stores-section"),
  storesHeading: $("stores-heading"),
  storesCount: $("stores-count"),
  storesLoading: $("stores-loading"),
  storesEmpty: $("stores-empty"),
  storesNoMatch: $("stores-no-match"),
  storesNoMatchText: $("stores-no-match-text"),
  clearFilters: $("clear-filters"),
  storeList: $("store-list"),
  deadLetters: $("dead-letters"),
  announcer: $("announcer"),
  deleteDialog: $("delete-dialog"),
  deleteForm: $("delete-form"),
  deleteNameTitle: $("delete-name-title"),
  deleteNameBody: $("delete-name-body"),
  deleteError: $("delete-error"),
  deleteConfirm: $("delete-confirm"),
  deleteCancel: $("delete-cancel"),
  tokenDialog: $("token-dialog"),
  tokenForm: $("token-form"),
  tokenReason: $("token-reason"),
  tokenInput: $("token-input"),
  tokenError: $("token-error"),
  tokenCancel: $("token-cancel"),
};

const state = {
  configured: false,
  loaded: false,
  stores: [],
  deadLetters: [],
  statuses: new Map(), // name -> last status seen, to announce changes
  pendingCreates: new Map(), // name -> {store, until}
  pendingDeletes: new Map(), // name -> until
  pendingRetries: new Map(), // name -> {until, at}
  deleting: null, // name shown in the delete dialog
};

const storeList = new StoreList(ui.storeList, {
  onDelete: (name) => openDeleteDialog(name),
  onRetry: (store) => retry(store),
  onReset: (store) => resetDialog.open(store),
});
const listView = new ListView(() => {
  if (state.loaded) render();
});
const resetDialog = new ResetDialog((message) => tokenRejected(message));

let pollTimer = 0;
let polling = false;
let pollAgain = false;

// ---- polling ---------------------------------------------------------------------------

async function poll() {
  clearTimeout(pollTimer);
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  let waitForToken = false;
  try {
    if (!state.configured) await configure();
    if (api.isAuthRequired() && !api.getToken()) {
      waitForToken = true; // resumes when a token is entered
      requestToken("This gateway requires a token. It is kept in this browser tab only.");
      return;
    }
    const { stores, deadLetters } = await api.listStores();
    state.stores = stores;
    state.deadLetters = deadLetters;
    state.loaded = true;
    hideBanner();
    setConnection("live", "Live");
    render();
  } catch (err) {
    waitForToken = handleFailure(err);
  } finally {
    polling = false;
    if (!waitForToken) {
      const delay = pollAgain ? 0 : document.hidden ? HIDDEN_POLL_MS : POLL_MS;
      pollAgain = false;
      pollTimer = setTimeout(poll, delay);
    }
  }
}

async function configure() {
  const config = await api.loadConfig();
  state.configured = true;
  ui.tokenButton.hidden = !config.authRequired;
}

/** Show what went wrong with a poll; true when polling must wait for a new token. */
function handleFailure(err) {
  if (err instanceof api.UnreachableError) {
    setConnection("down", "Offline");
    showBanner("Cannot reach gateway…",
      `No answer from ${err.url}. Retrying every ${POLL_MS / 1000} seconds; this message `
      + "clears when the gateway is back.");
  } else if (err instanceof api.ApiError && err.status === 401) {
    tokenRejected(err.message);
    return true;
  } else if (err instanceof api.ApiError) {
    setConnection("degraded", "Error");
    const title = state.configured
      ? `The gateway answered HTTP ${err.status}`
      : `Cannot load config.json (HTTP ${err.status})`;
    showBanner(title, err.message);
  } else {
    setConnection("degraded", "Error");
    showBanner("Unexpected answer from the gateway", String(err?.message ?? err));
    console.error(err);
  }
  if (!state.loaded) ui.storesLoading.hidden = true;
  return false;
}

// ---- rendering -------------------------------------------------------------------------

function render() {
  performance.mark("storeplatform-render-start");
  const now = new Date();
  const stores = withPending(state.stores, now.getTime());
  const focused = ui.storeList.contains(document.activeElement) ? document.activeElement : null;
  const shownAs = listView.update(stores);
  const shown = storeList.render(stores, now, shownAs);
  // A row removed (store deleted) or a button hidden under the keyboard focus hands it back.
  if (focused && !(focused.isConnected && focused.checkVisibility())) ui.storesHeading.focus();
  announceChanges(stores);
  ui.storesSection.setAttribute("aria-busy", "false");
  ui.storesLoading.hidden = true;
  ui.storesEmpty.hidden = stores.length > 0;
  ui.storesNoMatch.hidden = stores.length === 0 || shown > 0;
  if (!ui.storesNoMatch.hidden) ui.storesNoMatchText.textContent = `No store has ${listView.describe()}.`;
  const total = stores.length === 1 ? "1 store" : `${stores.length} stores`;
  ui.storesCount.textContent = shown === stores.length ? total : `${shown} of ${total}`;
  renderDeadLetters(ui.deadLetters, state.deadLetters, now);
  performance.measure("storeplatform-render", "storeplatform-render-start");
}

ui.clearFilters.addEventListener("click", () => listView.clear());

/** The list from the server, plus what we asked for and the server has not caught up with. */
function withPending(stores, nowMs) {
  const byName = new Map(stores.map((s) => [s.name, s]));
  for (const [name, pending] of state.pendingCreates) {
    if (byName.has(name) || pending.until < nowMs || deadLettered(name, pending.requestedAt)) {
      state.pendingCreates.delete(name);
    } else {
      byName.set(name, pending.store);
    }
  }
  for (const [name, { until, at }] of state.pendingRetries) {
    const current = byName.get(name);
    if (!current || current.status !== "failed" || until < nowMs) {
      state.pendingRetries.delete(name);
    } else if (retryAction(current) === "create") {
      byName.set(name, { ...current, status: "provisioning", reason: null, nextStep: null,
        timeline: { queued: at }, progress: "retry requested, waiting for the platform",
        pending: true });
    }
  }
  for (const [name, until] of state.pendingDeletes) {
    const current = byName.get(name);
    if (!current || current.status === "deleting" || until < nowMs) {
      state.pendingDeletes.delete(name);
    } else {
      byName.set(name, { ...current, status: "deleting", progress: "delete requested" });
    }
  }
  return [...byName.values()];
}

/** True when the Broker gave up on a create for `name` sent at or after `sinceMs`. */
function deadLettered(name, sinceMs) {
  const slackMs = 30_000; // the browser's clock and the cluster's need not agree
  return state.deadLetters.some((letter) => letter.subject === name
    && Date.parse(letter.time) >= sinceMs - slackMs);
}

function announceChanges(stores) {
  const seen = new Map(stores.map((s) => [s.name, s.status]));
  const messages = [];
  if (state.loaded && state.statuses.size + seen.size > 0) {
    for (const [name, status] of seen) {
      const before = state.statuses.get(name);
      if (before !== undefined && before !== status) messages.push(`${name} is ${status}`);
    }
    for (const name of state.statuses.keys()) {
      if (!seen.has(name)) messages.push(`${name} is gone`);
    }
  }
  state.statuses = seen;
  if (messages.length) ui.announcer.textContent = `${messages.join(". ")}.`;
}

function showBanner(title, message) {
  ui.bannerTitle.textContent = title;
  ui.bannerMessage.textContent = message;
  ui.banner.hidden = false;
}

function hideBanner() {
  ui.banner.hidden = true;
}

function setConnection(kind, text) {
  ui.connection.dataset.state = kind;
  ui.connectionText.textContent = text;
}

// ---- create ----------------------------------------------------------------------------

function showNameProblem(problem) {
  ui.nameInput.setAttribute("aria-invalid", problem ? "true" : "false");
  ui.nameError.textContent = problem ?? "";
}

ui.nameInput.addEventListener("input", () => {
  // Once a problem is on screen, follow the typing so it clears the moment the name is fixed.
  if (ui.nameInput.getAttribute("aria-invalid") === "true") {
    showNameProblem(storeNameProblem(ui.nameInput.value));
  }
  clearResult();
});

ui.nameInput.addEventListener("blur", () => {
  if (ui.nameInput.value !== "") showNameProblem(storeNameProblem(ui.nameInput.value));
});

ui.createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = ui.nameInput.value;
  const engine = ui.engineSelect.value;
  const problem = storeNameProblem(name);
  showNameProblem(problem);
  if (problem) {
    clearResult();
    ui.nameInput.focus();
    return;
  }
  ui.createButton.disabled = true;
  ui.createForm.setAttribute("aria-busy", "true");
  showResult("info", `Requesting ${name}…`);
  try {
    if (!state.configured) await configure();
    await api.createStore(name, engine);
    state.pendingCreates.set(name, {
      requestedAt: Date.now(),
      until: Date.now() + PENDING_MS,
      store: {
        name,
        engine,
        status: "provisioning",
        progress: "request accepted, waiting for the platform",
        createdAt: new Date().toISOString(),
        pending: true,
      },
    });
    showResult("success", `${name} requested. It appears below and turns ready by itself.`);
    ui.nameInput.value = "";
    if (state.loaded) render();
    poll();
  } catch (err) {
    showResult("error", changeErrorText(err));
    if (err instanceof api.ApiError && err.status === 401) tokenRejected(err.message);
  } finally {
    ui.createButton.disabled = false;
    ui.createForm.removeAttribute("aria-busy");
  }
});

/** The server's own message for 4xx/5xx; our words only when there was no answer. */
function changeErrorText(err) {
  if (err instanceof api.ApiError) return err.message;
  if (err instanceof api.UnreachableError) {
    return `No answer from the gateway at ${err.url}. Check the list before trying again.`;
  }
  return String(err?.message ?? err);
}

function showResult(kind, text) {
  ui.createResult.dataset.kind = kind;
  ui.createResult.textContent = text;
}

function clearResult() {
  if (ui.createResult.dataset.kind === "info") return;
  ui.createResult.textContent = "";
  delete ui.createResult.dataset.kind;
}

// ---- retry -----------------------------------------------------------------------------

/** A failed store, asked for again: a create (same name, engine), or a delete after a
 * failed delete. The row says so at once; the list takes over as soon as it knows. */
async function retry(store) {
  const action = retryAction(store);
  try {
    if (action === "delete") {
      await api.deleteStore(store.name);
      state.pendingDeletes.set(store.name, Date.now() + PENDING_MS);
    } else {
      await api.createStore(store.name, store.engine || "woocommerce");
      state.pendingRetries.set(store.name,
        { until: Date.now() + RETRY_PENDING_MS, at: new Date().toISOString() });
    }
    ui.announcer.textContent = `${action === "delete" ? "Deleting" : "Creating"} ${store.name} again.`;
    render();
    poll();
  } catch (err) {
    showBanner(`Retry of ${store.name} refused`, changeErrorText(err));
    if (err instanceof api.ApiError && err.status === 401) tokenRejected(err.message);
  }
}

// ---- delete ----------------------------------------------------------------------------

function openDeleteDialog(name) {
  state.deleting = name;
  ui.deleteNameTitle.textContent = name;
  ui.deleteNameBody.textContent = name;
  ui.deleteConfirm.textContent = `Delete ${name}`;
  ui.deleteConfirm.disabled = false;
  ui.deleteError.textContent = "";
  ui.deleteDialog.showModal();
  ui.deleteCancel.focus();
}

ui.deleteCancel.addEventListener("click", () => ui.deleteDialog.close());

ui.deleteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = state.deleting;
  if (!name) return;
  ui.deleteConfirm.disabled = true;
  ui.deleteConfirm.textContent = "Deleting…";
  ui.deleteError.textContent = "";
  try {
    await api.deleteStore(name);
    state.pendingDeletes.set(name, Date.now() + PENDING_MS);
    ui.deleteDialog.close();
    ui.announcer.textContent = `Deleting ${name}.`;
    render();
    poll();
  } catch (err) {
    ui.deleteConfirm.disabled = false;
    ui.deleteConfirm.textContent = `Delete ${name}`;
    ui.deleteError.textContent = changeErrorText(err);
    if (err instanceof api.ApiError && err.status === 401) {
      ui.deleteDialog.close();
      tokenRejected(err.message);
    }
  }
});

ui.deleteDialog.addEventListener("close", () => {
  state.deleting = null;
});

// ---- token -----------------------------------------------------------------------------

function requestToken(reason) {
  ui.tokenButton.hidden = false;
  ui.tokenReason.textContent = reason;
  ui.tokenError.textContent = "";
  ui.tokenInput.setAttribute("aria-invalid", "false");
  ui.tokenInput.value = "";
  if (!ui.tokenDialog.open) ui.tokenDialog.showModal();
  ui.tokenInput.focus();
}

function tokenRejected(message) {
  api.markAuthRequired();
  api.clearToken();
  setConnection("degraded", "Token needed");
  showBanner("The gateway rejected the request (HTTP 401)", message);
  requestToken(`The gateway said: ${message}`);
}

ui.tokenButton.addEventListener("click", () => {
  requestToken("Enter the gateway token. It is kept in this browser tab only.");
});

ui.tokenCancel.addEventListener("click", () => ui.tokenDialog.close());

ui.tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ui.tokenInput.value.trim();
  if (!token) {
    ui.tokenInput.setAttribute("aria-invalid", "true");
    ui.tokenError.textContent = "Enter a token.";
    ui.tokenInput.focus();
    return;
  }
  api.setToken(token);
  ui.tokenInput.value = "";
  ui.tokenDialog.close();
  poll();
});

ui.tokenDialog.addEventListener("close", () => {
  if (api.isAuthRequired() && !api.getToken()) {
    setConnection("degraded", "Token needed");
    showBanner("A gateway token is required",
      "Stores cannot be listed or changed without it. Use the “Gateway token” button above.");
    ui.storesLoading.hidden = true;
  }
});

// ---- start -----------------------------------------------------------------------------

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !polling) poll();
});

poll();
