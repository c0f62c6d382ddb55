// Human-readable times: "3 min ago" with the exact time for a tooltip, and elapsed durations.

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const ABSOLUTE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const UNITS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];

/** A Date from an RFC 3339 string, or null when missing or unparseable. */
export function parseTime(value) {
  if (typeof value !== "string" || value === "") return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "just now", "5 minutes ago", "yesterday", relative to `now`. */
export function relativeTime(date, now) {
  const seconds = Math.round((date.getTime() - now.getTime()) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return RELATIVE.format(Math.round(seconds / size), unit);
  }
  return RELATIVE.format(Math.round(seconds / 60), "minute");
}

/** The exact local time, with the UTC instant for people comparing logs. */
export function absoluteTime(date) {
  return `${ABSOLUTE.format(date)} (${date.toISOString().replace(".000Z", "Z")})`;
}

/** "42 s", "3 min 05 s", "1 h 02 min" since `start`. */
export function elapsed(start, now) {
  return duration(Math.max(0, Math.floor((now.getTime() - start.getTime()) / 1000)));
}

/** "42 s", "3 min 05 s", "1 h 02 min" for a number of seconds. */
export function duration(total) {
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (hours > 0) return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  if (minutes > 0) return `${minutes} min ${String(seconds).padStart(2, "0")} s`;
  return `${seconds} s`;
}
