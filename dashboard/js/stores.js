// The store list. Rows are keyed by store name, kept across polls (also while filtered out)
// and updated in place, so focus, hover and text selection survive the 2-second refresh and
// a poll of 500 stores touches only what changed. API data goes in with textContent.

import { absoluteTime, elapsed, parseTime, relativeTime } from "./time.js";
import { duration, timelineSteps } from "./timeline.js";

const ENGINE_LABELS = { woocommerce: "WooCommerce", medusa: "MedusaJS" };
export const STATUSES = ["provisioning", "ready", "failed", "deleting"];
const KNOWN_STATUSES = new Set(STATUSES);

/** Newest first (stores without a creation time last), or by name; ties by name: stable. */
export function sortStores(stores, order = "newest") {
  const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  if (order === "name") return [...stores].sort(byName);
  const time = (s) => parseTime(s.createdAt)?.getTime() ?? -Infinity;
  return [...stores].sort((a, b) => time(b) - time(a) || byName(a, b));
}

/** {all, provisioning, ready, failed, deleting} counts. */
export function countByStatus(stores) {
  const counts = { all: stores.length };
  for (const status of STATUSES) counts[status] = 0;
  for (const store of stores) if (KNOWN_STATUSES.has(store.status)) counts[store.status] += 1;
  return counts;
}

/** The store passes the status filter (null: any) and its name contains the query. */
export function matches(store, status, query) {
  if (status && store.status !== status) return false;
  const needle = query.trim().toLowerCase();
  return needle === "" || store.name.includes(needle);
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

/** The request that retries a failed store: the server's `failedAction` (docs/contract.md:
 * a failed or undelivered delete is retried with a delete); else, by the reason, a failed
 * delete with a delete and anything else with a create. */
export function retryAction(store) {
  if (store.failedAction === "delete" || store.failedAction === "create") return store.failedAction;
  return typeof store.reason === "string" && store.reason.startsWith("delete failed")
    ? "delete" : "create";
}

export class StoreList {
  /** handlers: {onDelete(name), onRetry(store), onReset(store)} */
  constructor(list, handlers) {
    this.list = list;
    this.handlers = handlers;
    this.rows = new Map(); // name -> <li>, kept while the store exists
    this.stores = new Map(); // name -> the store the row shows
  }

  /** Show the stores that match, in order; returns how many are shown. */
  render(stores, now, { status = null, query = "", order = "newest" } = {}) {
    const present = new Set();
    let previous = null;
    let shown = 0;
    for (const store of sortStores(stores, order)) {
      present.add(store.name);
      let row = this.rows.get(store.name);
      if (!row) {
        row = this.createRow(store.name);
        this.rows.set(store.name, row);
      }
      this.stores.set(store.name, store);
      if (!matches(store, status, query)) {
        if (row.isConnected) row.remove();
        continue;
      }
      updateRow(row, store, now);
      const expected = previous ? previous.nextElementSibling : this.list.firstElementChild;
      if (row !== expected) this.list.insertBefore(row, expected);
      previous = row;
      shown += 1;
    }
    for (const [name, row] of this.rows) {
      if (!present.has(name)) {
        row.remove();
        this.rows.delete(name);
        this.stores.delete(name);
      }
    }
    return shown;
  }

  createRow(name) {
    const row = el("li", "store");
    row.dataset.name = name;

    const main = el("div", "store__main");
    const heading = el("div", "store__heading");
    const title = el("h3", "store__name mono", name);
    const badge = el("span", "badge");
    badge.append(el("span", "badge__dot"), el("span", "badge__text"));
    heading.append(title, badge);

    const meta = el("p", "store__meta");
    meta.append(el("span", "store__engine"), el("span", "store__sep", " · created "),
      el("time", "store__created"));

    const progress = el("p", "store__detail store__progress");
    const progressBody = el("span", "store__progress-body");
    progressBody.append(el("span", "store__progress-text"), el("span", "store__elapsed"));
    progress.append(el("span", "spinner"), progressBody);

    const steps = el("ol", "timeline");
    steps.setAttribute("aria-label", `Provisioning steps of ${name}`);

    const failure = el("div", "store__failure");
    const reason = el("p", "store__detail store__reason");
    reason.append(el("strong", "store__reason-label", "Failed: "), el("span", "store__reason-text"));
    const next = el("p", "store__next");
    next.append(el("strong", "store__next-label", "Next: "), el("span", "store__next-text"));
    failure.append(reason, next);

    const links = el("div", "store__links");
    links.append(link("store__storefront", "Storefront"), link("store__admin", "Admin"));

    main.append(heading, meta, progress, steps, failure, links);

    const actions = el("div", "store__actions");
    const retry = button("button button--primary-ghost store__retry", "Retry");
    retry.addEventListener("click", () => this.handlers.onRetry(this.stores.get(name)));
    const reset = button("button button--ghost store__reset", "Reset ");
    reset.append(el("span", "store__reset-long", "admin "), "password");
    reset.setAttribute("aria-label", `Reset the admin password of ${name}`);
    reset.addEventListener("click", () => this.handlers.onReset(this.stores.get(name)));
    const remove = button("button button--danger-ghost store__delete", "Delete");
    remove.setAttribute("aria-label", `Delete ${name}`);
    remove.addEventListener("click", () => this.handlers.onDelete(name, remove));
    actions.append(retry, reset, remove);

    row.append(main, actions);
    return row;
  }
}

function updateRow(row, store, now) {
  const status = typeof store.status === "string" && store.status ? store.status : "unknown";
  if (row.dataset.status !== status) row.dataset.status = status;
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
    const iso = createdAt.toISOString();
    if (created.dateTime !== iso) {
      created.dateTime = iso;
      created.title = absoluteTime(createdAt);
    }
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

  updateTimeline(row.querySelector(".timeline"), store, status, now);

  const failure = row.querySelector(".store__failure");
  failure.hidden = status !== "failed";
  if (status === "failed") {
    const text = typeof store.reason === "string" && store.reason ? store.reason : "no reason recorded";
    setText(row.querySelector(".store__reason-text"), text);
    const next = typeof store.nextStep === "string" ? store.nextStep : "";
    row.querySelector(".store__next").hidden = !next;
    setText(row.querySelector(".store__next-text"), next);
  }

  const storefront = safeUrl(store.storefrontUrl);
  const admin = safeUrl(store.adminUrl);
  const links = row.querySelector(".store__links");
  links.hidden = status !== "ready" || !(storefront || admin);
  setLink(row.querySelector(".store__storefront"), storefront, `${store.name} storefront`);
  setLink(row.querySelector(".store__admin"), admin, `${store.name} admin`);

  const retry = row.querySelector(".store__retry");
  retry.hidden = status !== "failed" || Boolean(store.pending);
  if (!retry.hidden) {
    const action = retryAction(store);
    retry.dataset.action = action;
    retry.setAttribute("aria-label", action === "delete"
      ? `Retry deleting ${store.name}` : `Retry creating ${store.name}`);
  }
  row.querySelector(".store__reset").hidden = status !== "ready";
  row.querySelector(".store__delete").hidden = status === "deleting";
}

function updateTimeline(list, store, status, now) {
  const show = status === "provisioning" || status === "ready" || status === "failed";
  const steps = show ? timelineSteps(store.timeline, status, now, store.createdAt) : [];
  list.hidden = steps.length === 0 || steps.every((s) => s.state === "pending");
  if (list.hidden) return;
  if (list.children.length !== steps.length) {
    list.replaceChildren(...steps.map(() => {
      const item = el("li", "timeline__step");
      item.append(el("span", "timeline__label"), el("span", "timeline__time"));
      return item;
    }));
  }
  steps.forEach((step, i) => {
    const item = list.children[i];
    if (item.dataset.state !== step.state) item.dataset.state = step.state;
    item.dataset.step = step.key;
    setText(item.children[0], step.label);
    let time = "";
    if (step.seconds !== null) time = step.key === "ready" ? `total ${duration(step.seconds)}` : duration(step.seconds);
    else if (step.state === "skipped") time = "—";
    setText(item.children[1], time);
  });
}

function button(className, text) {
  const node = el("button", className, text);
  node.type = "button";
  return node;
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
    if (a.title !== href) a.title = href;
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
