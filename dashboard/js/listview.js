// How the store list is shown: the status filter (the counts are its buttons), the name
// search, the order and the layout. The order and the layout are remembered in this browser.

import { countByStatus, STATUSES } from "./stores.js";

const ORDER_KEY = "storeplatform.order";
const VIEW_KEY = "storeplatform.view";
// Past this many stores a list with no saved layout starts compact.
const COMPACT_FROM = 30;

export class ListView {
  /** onChange() runs whenever a control changes what is shown. */
  constructor(onChange) {
    this.tools = document.getElementById("list-tools");
    this.filter = document.getElementById("status-filter");
    this.search = document.getElementById("store-search");
    this.sort = document.getElementById("store-sort");
    this.toggle = document.getElementById("view-toggle");
    this.list = document.getElementById("store-list");
    this.status = null;
    this.query = "";
    this.order = readSetting(ORDER_KEY, ["newest", "name"]) ?? "newest";
    this.view = readSetting(VIEW_KEY, ["cards", "compact"]);
    this.sort.value = this.order;
    this.onChange = onChange;

    this.filter.addEventListener("click", (event) => {
      const chip = event.target.closest("button[data-status]");
      if (!chip) return;
      const status = chip.dataset.status || null;
      this.setStatus(status === this.status ? null : status);
    });
    this.search.addEventListener("input", () => {
      this.query = this.search.value;
      this.onChange();
    });
    this.sort.addEventListener("change", () => {
      this.order = this.sort.value;
      saveSetting(ORDER_KEY, this.order);
      this.onChange();
    });
    this.toggle.addEventListener("click", (event) => {
      const chip = event.target.closest("button[data-view]");
      if (!chip) return;
      this.view = chip.dataset.view;
      saveSetting(VIEW_KEY, this.view);
      this.onChange();
    });
  }

  setStatus(status) {
    this.status = STATUSES.includes(status) ? status : null;
    this.onChange();
  }

  clear() {
    this.status = null;
    this.query = "";
    this.search.value = "";
    this.onChange();
  }

  /** Counts on the filter buttons, pressed states, the layout; what render() should show. */
  update(stores) {
    const counts = countByStatus(stores);
    this.tools.hidden = stores.length === 0;
    for (const chip of this.filter.querySelectorAll("button[data-status]")) {
      const status = chip.dataset.status || "all";
      const count = chip.querySelector(".chip__count");
      const text = String(counts[status] ?? 0);
      if (count.textContent !== text) count.textContent = text;
      count.toggleAttribute("data-zero", text === "0");
      chip.setAttribute("aria-pressed", String((chip.dataset.status || null) === this.status));
    }
    const view = this.view ?? (stores.length >= COMPACT_FROM ? "compact" : "cards");
    if (this.list.dataset.view !== view) this.list.dataset.view = view;
    for (const chip of this.toggle.querySelectorAll("button[data-view]")) {
      chip.setAttribute("aria-pressed", String(chip.dataset.view === view));
    }
    return { status: this.status, query: this.query, order: this.order, counts };
  }

  /** "the word “x”" / "status failed" for the no-match message. */
  describe() {
    const parts = [];
    if (this.status) parts.push(`status ${this.status}`);
    if (this.query.trim()) parts.push(`names containing “${this.query.trim()}”`);
    return parts.join(" and ");
  }
}

function readSetting(key, allowed) {
  try {
    const value = localStorage.getItem(key);
    return allowed.includes(value) ? value : null;
  } catch {
    return null;
  }
}

function saveSetting(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // storage refused (private mode): the choice lasts for this page only
  }
}
