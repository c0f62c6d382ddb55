// The "Undelivered events" panel: events the Broker gave up on, shown only when there are any.

import { absoluteTime, parseTime, relativeTime } from "./time.js";

/** Fill `panel` (hidden when empty) with one table row per dead letter, newest first. */
export function renderDeadLetters(panel, deadLetters, now) {
  panel.hidden = deadLetters.length === 0;
  panel.querySelector("#dead-letters-count").textContent =
    deadLetters.length === 1 ? "1 event" : `${deadLetters.length} events`;
  const rows = [...deadLetters]
    .sort((a, b) => (parseTime(b.time)?.getTime() ?? 0) - (parseTime(a.time)?.getTime() ?? 0))
    .map((letter) => row(letter, now));
  panel.querySelector("#dead-letter-rows").replaceChildren(...rows);
}

function row(letter, now) {
  const tr = document.createElement("tr");
  const when = document.createElement("td");
  const date = parseTime(letter.time);
  if (date) {
    const time = document.createElement("time");
    time.dateTime = date.toISOString();
    time.title = absoluteTime(date);
    time.textContent = relativeTime(date, now);
    when.append(time);
  } else {
    when.textContent = "—";
  }
  when.dataset.label = "Time";
  tr.append(
    when,
    cell("Event", shortType(letter.type), "mono", typeof letter.type === "string" ? letter.type : ""),
    cell("Store", text(letter.subject), "mono"),
    cell("Error", text(letter.error), "dead-letter-table__error"),
  );
  return tr;
}

// "io.storeplatform.store.create" reads as "store.create"; the full type stays in the tooltip.
function shortType(type) {
  const value = text(type);
  return value.startsWith("io.storeplatform.") ? value.slice("io.storeplatform.".length) : value;
}

function text(value) {
  return typeof value === "string" && value !== "" ? value : "—";
}

// data-label heads each cell when narrow screens stack the table into cards.
function cell(label, content, className, title) {
  const td = document.createElement("td");
  td.dataset.label = label;
  td.className = className;
  td.textContent = content;
  if (title) td.title = title;
  return td;
}
