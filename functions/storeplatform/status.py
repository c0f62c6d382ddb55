"""Where a store's status comes from: pure derivation from the Kubernetes objects of a store.

Inputs are plain dicts as the API returns them; what "up" means per engine comes from engines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from storeplatform import contract, engines
from storeplatform.engines.engine import Engine

PROVISIONING, READY, FAILED, DELETING = "provisioning", "ready", "failed", "deleting"

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


def _failure_reason(job: Obj, pods: list[Obj]) -> str:
    """The runner's one-line termination message, else the Job's failure condition."""
    messages = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode") and terminated.get("message"):
                messages.append((terminated.get("finishedAt") or "", terminated["message"]))
    if messages:
        return one_line(max(messages)[1])
    cond = _condition(job, "Failed") or _condition(job, "FailureTarget") or {}
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


def store_status(ns: Obj, jobs: list[Obj], pods: list[Obj], deployments: list[Obj],
                 ingresses: list[Obj]) -> dict[str, Any]:
    """One store's public view (docs/contract.md, 'Store')."""
    name = _meta(ns)["name"]
    engine = _engine(ns)
    jobs_by_name = {_meta(j)["name"]: j for j in jobs if _is_newer(j, ns)}
    install = jobs_by_name.get(contract.job_name(contract.ACTION_INSTALL, name))
    delete = jobs_by_name.get(contract.job_name(contract.ACTION_DELETE, name))
    annotations = _annotations(ns)
    phase = annotations.get(contract.ANNOTATION_PHASE)

    def pods_of(job: Obj) -> list[Obj]:
        job_name = _meta(job)["name"]
        return [p for p in pods if _labels(p).get("job-name") == job_name]

    status, reason, progress = PROVISIONING, None, None
    terminating = (ns.get("status") or {}).get("phase") == "Terminating"
    if delete is not None or terminating or phase == DELETING:
        status = DELETING
        if delete is not None and job_state(delete) == "failed" and not terminating:
            status, reason = FAILED, "delete failed: " + _failure_reason(delete, pods_of(delete))
        elif delete is not None and job_state(delete) == "running":
            progress = _job_progress(delete, pods_of(delete), "uninstall")
        else:
            progress = "removing the namespace"
    elif install is not None and job_state(install) == "running":
        progress = _job_progress(install, pods_of(install), "install")
    elif install is not None and job_state(install) == "failed":
        status, reason = FAILED, _failure_reason(install, pods_of(install))
    elif install is None and phase == FAILED:
        reason = annotations.get(contract.ANNOTATION_REASON) or "provisioning failed"
        status = FAILED
    elif (install is not None or phase == READY) and _storefront_available(engine, deployments):
        status = READY
    elif install is not None or phase == READY:
        progress = f"waiting for {engine.storefront_title} to become available"
    else:
        progress = "waiting for the provisioning job"

    storefront, admin = _urls(engine, ingresses)
    return {
        "name": name,
        "engine": _labels(ns).get(contract.LABEL_ENGINE, engines.DEFAULT),
        "status": status,
        "reason": reason,
        "progress": progress,
        "storefrontUrl": storefront,
        "adminUrl": admin,
        "createdAt": _created_at(ns),
    }


def list_stores(namespaces: list[Obj], jobs: list[Obj], pods: list[Obj],
                deployments: list[Obj], ingresses: list[Obj]) -> list[dict[str, Any]]:
    """Every store, oldest first, from one list of each kind of object."""
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
                                   _in_namespace(ingresses_by.get(name, []), name)))
    return sorted(stores, key=lambda s: (s["createdAt"] or "", s["name"]))

