"""Where a store's status comes from: pure derivation from the Kubernetes objects of a store.

Inputs are plain dicts as the API returns them; what "up" means per engine comes from engines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from storeplatform import advice, contract, engines, logs, timeline
from storeplatform.engines.engine import Engine

PROVISIONING, READY, FAILED, DELETING = "provisioning", "ready", "failed", "deleting"
# A mark (deleting, provisioning, a new namespace) with no runner Job to carry it on for
# this long is stuck: longer than the Broker retries a delivery (5 retries, 60 s each, with
# backoff: about 6.5 min), and far shorter than a failed Job lives (JOB_TTL_SECONDS).
STUCK_AFTER_SECONDS = 600
KILLED = ("killed before it recorded a result (out of memory, evicted, or stopped at the "
          "Job deadline), and its Job is gone")

Obj = Mapping[str, Any]


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: Obj) -> Mapping[str, str]:
    return _meta(obj).get("labels") or {}


def _annotations(obj: Obj) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def _by_store(objects: Iterable[Obj]) -> dict[str, list[Obj]]:
    grouped: dict[str, list[Obj]] = {}
    for obj in objects:
        store = _labels(obj).get(contract.LABEL_STORE)
        if store:
            grouped.setdefault(store, []).append(obj)
    return grouped


def _in_namespace(objects: Iterable[Obj], namespace: str) -> list[Obj]:
    return [obj for obj in objects if _meta(obj).get("namespace") == namespace]


def _condition(job: Obj, kind: str) -> Mapping[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def job_state(job: Obj) -> str:
    """'running', 'succeeded' or 'failed' for a Job."""
    if _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet"):
        return "succeeded"
    if _condition(job, "Failed") or _condition(job, "FailureTarget"):
        return "failed"
    return "running"


def _pod_failure(pod: Obj) -> tuple[str, str] | None:
    """(when, why) a runner pod failed: evicted, OOM-killed, or the runner's own message."""
    pod_status = pod.get("status") or {}
    if pod_status.get("reason") == "Evicted":
        return ("", "the runner pod was evicted: " + one_line(pod_status.get("message") or ""))
    for container in pod_status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        when = terminated.get("finishedAt") or ""
        code = int(terminated.get("exitCode") or 0)
        if terminated.get("reason") == "OOMKilled":
            return (when, "the runner was killed: out of memory (OOMKilled)")
        if code > 128:  # killed by a signal it could not handle: SIGKILL, the container's end
            last = _runner_message(terminated.get("message") or "")
            return (when, f"the runner was killed (signal {code - 128}, exit {code})"
                    + (f"; its last output: {last}" if last else ""))
        if code and terminated.get("message"):
            return (when, _runner_message(terminated["message"]))
    return None


def _runner_message(text: str) -> str:
    """The runner's last line: a JSON log record's message, or the line as it is."""
    return one_line(logs.message_of(one_line(text, limit=4096)))


def _failure_reason(job: Obj, pods: list[Obj], ns: Obj | None = None) -> str:
    """Why a runner Job failed: its deadline, then the last failed pod (evicted, OOM-killed,
    the runner's termination message), then what the runner recorded on the namespace
    (its pod may be gone: deleted, or interrupted), then the Job's failure condition.
    """
    failures = [failure for failure in map(_pod_failure, pods) if failure]
    last = max(failures)[1] if failures else None
    annotations = _annotations(ns or {})
    if last is None and annotations.get(contract.ANNOTATION_PHASE) == FAILED:
        last = annotations.get(contract.ANNOTATION_REASON) or None
    cond = _condition(job, "Failed") or _condition(job, "FailureTarget") or {}
    if cond.get("reason") == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        stopped = f"stopped at the Job deadline ({deadline} s)" if deadline else (
            "stopped at the Job deadline")
        return one_line(f"{stopped}: {last}" if last else stopped)
    if last:
        return last
    return one_line(cond.get("message") or cond.get("reason") or "provisioning job failed")


def one_line(text: str, limit: int = 300) -> str:
    """The last non-empty line of text, cut to limit characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _job_progress(job: Obj, pods: list[Obj], verb: str) -> str:
    status = job.get("status") or {}
    attempt = int(status.get("failed") or 0) + 1
    attempts = int((job.get("spec") or {}).get("backoffLimit", 0)) + 1
    phases = {(p.get("status") or {}).get("phase") for p in pods}
    if "Running" in phases:
        step = f"helm {verb} running"
    elif not phases or "Pending" in phases:
        step = f"waiting for the helm {verb} pod to start"
    else:
        step = f"helm {verb} finished; recording the result"
    return f"{step} (attempt {attempt} of {attempts})"


def _engine(ns: Obj) -> Engine:
    """The store's engine; a label no available engine has is read as the default."""
    name = _labels(ns).get(contract.LABEL_ENGINE, engines.DEFAULT)
    return engines.AVAILABLE.get(name) or engines.get(engines.DEFAULT)


def _storefront_available(engine: Engine, deployments: list[Obj]) -> bool:
    serving = [d for d in deployments
               if _labels(d).get(contract.LABEL_COMPONENT) == engine.storefront_component]
    return bool(serving) and all(
        int((d.get("status") or {}).get("availableReplicas") or 0) >= 1 for d in serving)


def _urls(engine: Engine, ingresses: list[Obj]) -> tuple[str | None, str | None]:
    for ingress in ingresses:
        spec = ingress.get("spec") or {}
        for rule in spec.get("rules") or []:
            host = rule.get("host")
            if not host:
                continue
            tls_hosts = {h for tls in spec.get("tls") or [] for h in tls.get("hosts") or []}
            base = f"{'https' if host in tls_hosts else 'http'}://{host}/"
            return base + engine.storefront_path, base + engine.admin_path
    return None, None


def _created_at(ns: Obj) -> str | None:
    return (_annotations(ns).get(contract.ANNOTATION_CREATED_AT)
            or _meta(ns).get("creationTimestamp"))


def _is_newer(job: Obj, ns: Obj) -> bool:
    """A Job left over from an earlier store of the same name is older than the namespace."""
    job_time = _meta(job).get("creationTimestamp") or ""
    ns_time = _meta(ns).get("creationTimestamp") or ""
    return str(job_time) >= str(ns_time)


def _time(text: Any) -> datetime | None:
    """An RFC 3339 time of the API or of an annotation, aware; None when unreadable."""
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _stuck(since: Any, now: datetime) -> bool:
    when = _time(since)
    return when is not None and (now - when).total_seconds() > STUCK_AFTER_SECONDS


def _undelivered_delete(name: str, ns: Obj, jobs: Iterable[Obj],
                        dead_letters: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest delete of this store the Broker gave up on, unless a runner Job was made
    after it (a retried delete, or a newer create, took over)."""
    born = _time(_meta(ns).get("creationTimestamp"))
    letters = [(when, letter) for letter in dead_letters
               if letter.get("type") == contract.DELETE and letter.get("subject") == name
               and (when := _time(letter.get("time"))) is not None
               and (born is None or when >= born)]
    if not letters:
        return None
    when, letter = max(letters, key=lambda pair: pair[0])
    made_after = [j for j in jobs if (_time(_meta(j).get("creationTimestamp")) or when) > when]
    return None if made_after else letter


def _newer_than_mark(job: Obj | None, mark_at: Any) -> bool:
    """A runner Job made after the namespace's phase was marked (a create after a delete
    that never finished)."""
    made, marked = _time(_meta(job or {}).get("creationTimestamp")), _time(mark_at)
    return made is not None and marked is not None and made >= marked


def store_status(ns: Obj, jobs: list[Obj], pods: list[Obj], deployments: list[Obj],
                 ingresses: list[Obj], dead_letters: Sequence[Mapping[str, Any]] = (),
                 now: datetime | None = None) -> dict[str, Any]:
    """One store's public view (docs/contract.md, 'Store'). `failedAction` says which
    request retries a failure: `create` (POST again) or `delete` (DELETE again)."""
    now = now or datetime.now(UTC)
    name = _meta(ns)["name"]
    engine = _engine(ns)
    current = [j for j in jobs if _is_newer(j, ns)]
    jobs_by_name = {_meta(j)["name"]: j for j in current}
    install = jobs_by_name.get(contract.job_name(contract.ACTION_INSTALL, name))
    delete = jobs_by_name.get(contract.job_name(contract.ACTION_DELETE, name))
    annotations = _annotations(ns)
    phase = annotations.get(contract.ANNOTATION_PHASE)
    mark_at = annotations.get(contract.ANNOTATION_PHASE_AT)

    def pods_of(job: Obj) -> list[Obj]:
        job_name = _meta(job)["name"]
        return [p for p in pods if _labels(p).get("job-name") == job_name]

    status, reason, progress, failed_action = PROVISIONING, None, None, None
    terminating = (ns.get("status") or {}).get("phase") == "Terminating"
    marked_deleting = phase == DELETING and not _newer_than_mark(install, mark_at)
    letter = _undelivered_delete(name, ns, current, dead_letters)
    if letter is not None and not terminating:
        status, failed_action = FAILED, contract.ACTION_DELETE
        # The error may be long (the function's whole answer): cut it, keep the way out.
        error = one_line(str(letter.get("error") or "dead letter"), 200)
        reason = f"delete was not delivered ({error}); delete again to retry"
    elif delete is not None or terminating or marked_deleting:
        status = DELETING
        if delete is not None and job_state(delete) == "failed" and not terminating:
            status, failed_action = FAILED, contract.ACTION_DELETE
            why = _failure_reason(delete, pods_of(delete), ns)
            reason = why if why.startswith("delete failed") else "delete failed: " + why
        elif delete is not None and job_state(delete) == "running":
            progress = _job_progress(delete, pods_of(delete), "uninstall")
        elif delete is None and not terminating and _stuck(mark_at, now):
            status, failed_action = FAILED, contract.ACTION_DELETE
            reason = f"delete failed: the delete runner was {KILLED}; delete again to retry"
        else:
            progress = "removing the namespace"
    elif install is not None and job_state(install) == "running":
        progress = _job_progress(install, pods_of(install), "install")
    elif install is not None and job_state(install) == "failed":
        status, failed_action = FAILED, contract.ACTION_INSTALL
        reason = _failure_reason(install, pods_of(install), ns)
    elif install is None and phase == FAILED:
        reason = annotations.get(contract.ANNOTATION_REASON) or "provisioning failed"
        status = FAILED
        failed_action = (contract.ACTION_DELETE if reason.startswith("delete failed")
                         else contract.ACTION_INSTALL)
    elif (install is not None or phase == READY) and _storefront_available(engine, deployments):
        status = READY
    elif install is not None or phase == READY:
        progress = f"waiting for {engine.storefront_title} to become available"
    elif phase == PROVISIONING:  # the runner started (its Job existed) and is gone
        status, failed_action = FAILED, contract.ACTION_INSTALL
        reason = f"the install runner was {KILLED}; create the store again to retry"
    elif _stuck(mark_at or _created_at(ns), now):
        status, failed_action = FAILED, contract.ACTION_INSTALL
        reason = ("no install Job ran for this store and none recorded a result; "
                  "create the store again to retry")
    else:
        progress = "waiting for the provisioning job"

    storefront, admin = _urls(engine, ingresses)
    steps = timeline.of_store(ns, install)
    return {
        "name": name,
        "engine": _labels(ns).get(contract.LABEL_ENGINE, engines.DEFAULT),
        "status": status,
        "reason": reason,
        "progress": progress,
        "failedAction": _public_action(failed_action),
        "storefrontUrl": storefront,
        "adminUrl": admin,
        "createdAt": _created_at(ns),
        "timeline": steps,
        "nextStep": advice.next_step(name, reason, timeline.failed_step(steps))
        if status == FAILED else None,
    }


def _public_action(action: str | None) -> str | None:
    """The request that retries: install failures are retried by a create."""
    return {contract.ACTION_INSTALL: "create", contract.ACTION_DELETE: "delete"}.get(
        action or "")


def list_stores(namespaces: list[Obj], jobs: list[Obj], pods: list[Obj],
                deployments: list[Obj], ingresses: list[Obj],
                dead_letters: Sequence[Mapping[str, Any]] = (),
                now: datetime | None = None) -> list[dict[str, Any]]:
    """Every store, oldest first, from one list of each kind of object (and the dead
    letters, which show an undelivered delete on its store)."""
    now = now or datetime.now(UTC)
    jobs_by, pods_by = _by_store(jobs), _by_store(pods)
    deployments_by, ingresses_by = _by_store(deployments), _by_store(ingresses)
    stores = []
    for ns in namespaces:
        if not contract.manages(ns):
            continue
        name = _meta(ns)["name"]
        # Readiness and URLs only from the store's own namespace: a label is anyone's to
        # set, and an Ingress elsewhere must never change a store's admin link.
        stores.append(store_status(ns, jobs_by.get(name, []), pods_by.get(name, []),
                                   _in_namespace(deployments_by.get(name, []), name),
                                   _in_namespace(ingresses_by.get(name, []), name),
                                   dead_letters, now))
    return sorted(stores, key=lambda s: (s["createdAt"] or "", s["name"]))

