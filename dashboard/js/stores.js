// The store list. Rows are keyed by store name and updated in place on every poll, so focus,
// hover and text selection survive the 2-second refresh. API data goes in with textContent.

import { absoluteTime, elapsed, parseTime, relativeTime } from "./time.js";

const ENGINE_LABELS = { woocommerce: "WooCommerce", medusa: "MedusaJS" };
const KNOWN_STATUSES = new Set(["provisioning", "ready", "failed", "deleting"]);

/**
 * Render `stores` into `list` (a <ul>), reusing rows by name.
 * `onDelete(name, button)` runs when a row's Delete button is pressed.
 */
export function renderStores(list, stores, now, onDelete) {
  const rows = new Map();
  for (const row of list.children) rows.set(row.dataset.name, row);
  let previous = null;
  for (const store of sortStores(stores)) {
    let row = rows.get(store.name);
    if (row) {
      rows.delete(store.name);
    } else {
      row = createRow(store.name, onDelete);
    }
    updateRow(row, store, now);
    const expected = previous ? previous.nextElementSibling : list.firstElementChild;
    if (row !== expected) list.insertBefore(row, expected);
    previous = row;
  }
  for (const gone of rows.values()) gone.remove();
}

/** Newest first; stores without a creation time last, then by name. */
export function sortStores(stores) {
  const time = (s) => parseTime(s.createdAt)?.getTime() ?? -Infinity;
  return [...stores].sort((a, b) => time(b) - time(a) || a.name.localeCompare(b.name));
}

/** Only http(s) links from the API become clickable (no javascript: or data: URLs). */
export function safeUrl(value) {
  if (typeof value !== "string" || value === "") return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function createRow(name, onDelete) {
  const row = el("li", "store");
  row.dataset.name = name;

  const main = el("div", "store__main");
  const heading = el("div", "store__heading");
  const title = el("h3", "store__name mono", name);
  const badge = el("span", "badge");
  badge.append(el("span", "badge__dot"), el("span", "badge__text"));
  heading.append(title, badge);

  const meta = el("p", "store__meta");
  const engine = el("span", "store__engine");
  const created = el("time", "store__created");
  meta.append(engine, el("span", "store__sep", " · created "), created);

  const progress = el("p", "store__detail store__progress");
  const progressBody = el("span", "store__progress-body");
  progressBody.append(el("span", "store__progress-text"), el("span", "store__elapsed"));
  progress.append(el("span", "spinner"), progressBody);

  const reason = el("p", "store__detail store__reason");
  reason.append(el("strong", "store__reason-label", "Failed: "), el("span", "store__reason-text"));

  const links = el("div", "store__links");
  links.append(link("store__storefront", "Storefront"), link("store__admin", "Admin"));

  main.append(heading, meta, progress, reason, links);

  const actions = el("div", "store__actions");
  const remove = el("button", "button button--danger-ghost store__delete", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${name}`);
  remove.addEventListener("click", () => onDelete(name, remove));
  actions.append(remove);

  row.append(main, actions);
  return row;
}

function updateRow(row, store, now) {
  const status = typeof store.status === "string" && store.status ? store.status : "unknown";
  row.dataset.status = status;
  row.toggleAttribute("data-pending", Boolean(store.pending));

  const badge = row.querySelector(".badge");
  badge.dataset.status = KNOWN_STATUSES.has(status) ? status : "unknown";
  setText(badge.querySelector(".badge__text"), status);

  const engine = typeof store.engine === "string" ? store.engine : "";
  setText(row.querySelector(".store__engine"), ENGINE_LABELS[engine] ?? (engine || "unknown engine"));

  const createdAt = parseTime(store.createdAt);
  const created = row.querySelector(".store__created");
  const sep = row.querySelector(".store__sep");
  created.hidden = sep.hidden = !createdAt;
  if (createdAt) {
    created.dateTime = createdAt.toISOString();
    created.title = absoluteTime(createdAt);
    setText(created, relativeTime(createdAt, now));
  }

  const progress = row.querySelector(".store__progress");
  const busy = status === "provisioning" || status === "deleting";
  progress.hidden = !busy;
  if (busy) {
    const fallback = status === "provisioning"
      ? "waiting for the install Job"
      : "removing the Helm release and namespace";
    const hint = typeof store.progress === "string" && store.progress ? store.progress : fallback;
    setText(row.querySelector(".store__progress-text"), hint);
    const since = status === "provisioning" && createdAt ? `${elapsed(createdAt, now)} elapsed` : "";
    setText(row.querySelector(".store__elapsed"), since);
  }

  const reason = row.querySelector(".store__reason");
  reason.hidden = status !== "failed";
  if (status === "failed") {
    const text = typeof store.reason === "string" && store.reason ? store.reason : "no reason recorded";
    setText(row.querySelector(".store__reason-text"), text);
  }

  const storefront = safeUrl(store.storefrontUrl);
  const admin = safeUrl(store.adminUrl);
  const links = row.querySelector(".store__links");
  links.hidden = status !== "ready" || !(storefront || admin);
  setLink(row.querySelector(".store__storefront"), storefront, `${store.name} storefront`);
  setLink(row.querySelector(".store__admin"), admin, `${store.name} admin`);

  // A delete that failed or was never delivered is retried by deleting again (docs/contract.md).
  const retryDelete = status === "failed" && store.failedAction === "delete";
  const remove = row.querySelector(".store__delete");
  setText(remove, retryDelete ? "Retry delete" : "Delete");
  remove.setAttribute("aria-label", `${retryDelete ? "Retry delete of" : "Delete"} ${store.name}`);
  remove.hidden = status === "deleting";
}

function link(className, text) {
  const a = el("a", `button button--link ${className}`, text);
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.append(el("span", "external", ""));
  return a;
}

function setLink(a, href, label) {
  a.hidden = !href;
  if (href) {
    if (a.href !== href) a.href = href;
    a.title = href;
    a.setAttribute("aria-label", `${label} (opens in a new tab)`);
  } else {
    a.removeAttribute("href");
  }
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
