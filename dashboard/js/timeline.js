// A store's provisioning steps in time, from the `timeline` the platform records
// (step -> start time; functions/storeplatform/timeline.py). Pure: no DOM here.

import { parseTime } from "./time.js";

export { duration } from "./time.js";

export const STEPS = [
  ["queued", "queued"],
  ["install", "helm install"],
  ["setup", "set-up"],
  ["test", "test order"],
  ["ready", "ready"],
];

/**
 * Each step with its state and duration in seconds:
 * done | running | failed | pending (not reached) | skipped (a later step started first).
 * The last step ("ready") carries the total time from queued to ready.
 */
export function timelineSteps(timeline, status, now, createdAt) {
  const at = {};
  for (const [key] of STEPS) at[key] = parseTime(timeline?.[key]);
  const failedAt = parseTime(timeline?.failed);
  if (!at.queued && status === "provisioning") at.queued = parseTime(createdAt);
  const work = STEPS.slice(0, 4).map(([key]) => key);
  const lastStarted = work.filter((key) => at[key]).pop();
  const end = at.ready ?? failedAt ?? null;
  const steps = [];
  for (const [index, key] of work.entries()) {
    const start = at[key];
    const label = STEPS[index][1];
    if (!start) {
      const laterStarted = work.slice(index + 1).some((k) => at[k]);
      steps.push({ key, label, state: laterStarted ? "skipped" : "pending", seconds: null });
      continue;
    }
    const next = work.slice(index + 1).map((k) => at[k]).find(Boolean) ?? end;
    let state = "done";
    if (key === lastStarted && !at.ready) {
      if (failedAt || status === "failed") state = "failed";
      else if (status === "provisioning") state = "running";
    }
    const until = next ?? (state === "running" ? now : null);
    steps.push({ key, label, state, seconds: until ? seconds(start, until) : null });
  }
  const total = at.ready && at.queued ? seconds(at.queued, at.ready) : null;
  steps.push({ key: "ready", label: "ready", state: at.ready ? "done" : "pending", seconds: total });
  return steps;
}

function seconds(from, to) {
  return Math.max(0, Math.round((to.getTime() - from.getTime()) / 1000));
}
