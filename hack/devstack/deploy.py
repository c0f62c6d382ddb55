"""Apply knative/ the way `make up` (hack/up.sh) does: file by file in name order, and after
each file that holds Knative objects, wait until every one of them reports Ready.

SinkBindings are the exception: they are applied before the Services they bind (so the
webhook sets K_SINK when each Service is created), and the SinkBinding reconciler reports
SubjectMissing until that Service exists, so they are waited for after the last file.
Two waits make K_SINK sure, not likely (knative.dev/pkg webhook/psbinding): the webhook
only intercepts the kinds its configuration names, and it adds a kind when it sees the
first binding of it, so the Services are applied once `sinkbindings.webhook.sources.
knative.dev` names theirs; and a SinkBinding counts as done only when its subject really
carries K_SINK (one that does not is nudged, so its reconciler binds it again).

The order of the files is what makes every wait end: the dead-letter sink's Service before
the Broker, the Broker before the SinkBindings, those before the Services they bind, the
Triggers last (tests/unit/test_knative_manifests.py checks the dependencies; the
integration tests run this against the real Eventing controllers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube import objects, polling

log = logging.getLogger("devstack.deploy")

KNATIVE_DIR = Path(__file__).resolve().parents[2] / "knative"
FIELD_MANAGER = "storeplatform"  # the same as up.sh's `kubectl apply --field-manager`
READY_TIMEOUT = 300.0
API_TIMEOUT = 10
# Ready only once objects of later files exist: waited for after the last file.
WAITED_LAST = frozenset({"SinkBinding"})
SINKBINDING_WEBHOOK = "sinkbindings.webhook.sources.knative.dev"
NUDGE_AFTER = 10.0  # s Ready without K_SINK in the subject before the binding is nudged
NUDGE_ANNOTATION = "storeplatform.io/rebind-at"

Doc = dict[str, Any]


def is_knative(doc: Doc) -> bool:
    """A Knative object: it reports a Ready condition that the apply waits for."""
    return doc["apiVersion"].split("/")[0].endswith(".knative.dev")


def waits_after(docs: list[Doc]) -> bool:
    """Whether the objects of a file are waited for right after it is applied (up.sh's
    `waits_after`): Knative objects, except those waited for after the last file."""
    return any(is_knative(d) for d in docs) and not any(d["kind"] in WAITED_LAST for d in docs)


def manifest_files(knative_dir: Path = KNATIVE_DIR) -> list[tuple[Path, list[Doc]]]:
    """(file, its objects) in apply order."""
    return [(path, [d for d in yaml.safe_load_all(path.read_text()) if d])
            for path in sorted(knative_dir.glob("*.yaml"))]


def _plural(doc: Doc) -> tuple[str, str, str]:
    group, version = doc["apiVersion"].split("/")
    return group, version, _PLURALS[doc["kind"]]


_PLURALS = {"Broker": "brokers", "Trigger": "triggers", "SinkBinding": "sinkbindings",
            "Service": "services", "EventPolicy": "eventpolicies"}


def ready(custom: client.CustomObjectsApi, doc: Doc) -> tuple[bool, str]:
    """Whether the object is Ready for its current generation, and why not."""
    group, version, plural = _plural(doc)
    meta = doc["metadata"]
    try:
        obj = custom.get_namespaced_custom_object(group, version, meta["namespace"], plural,
                                                  meta["name"], _request_timeout=API_TIMEOUT)
    except ApiException as err:
        return False, f"not readable ({err.status})"
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return False, "not reconciled yet"
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if cond and cond.get("status") == "True":
        return True, ""
    return False, (cond or {}).get("message") or (cond or {}).get("reason") or "no Ready condition"


@dataclass(frozen=True)
class Waited:
    file: str
    obj: str
    seconds: float


def deploy(api: client.ApiClient, knative_dir: Path = KNATIVE_DIR,
           timeout: float = READY_TIMEOUT,
           render: Callable[[Doc], Doc] = lambda doc: doc) -> list[Waited]:
    """Apply every file in order, waiting after each for its Knative objects to be Ready.

    Raises TimeoutError naming the object and the reason it gave when a wait does not end.
    """
    custom = client.CustomObjectsApi(api)
    waited: list[Waited] = []
    last: list[tuple[str, Doc]] = []
    for path, docs in manifest_files(knative_dir):
        rendered = [render(doc) for doc in docs]
        objects.apply(api, rendered, FIELD_MANAGER)
        started = time.monotonic()
        knative = [d for d in rendered if is_knative(d)]
        bindings = [d for d in rendered if d["kind"] == "SinkBinding"]
        if bindings:
            wait_intercepted(api, path.name, bindings, timeout)
        if waits_after(rendered):
            waited += [wait_ready(custom, path.name, doc, started, timeout) for doc in knative]
        else:
            last += [(path.name, doc) for doc in knative]
    started = time.monotonic()
    waited += [wait_ready(custom, file, doc, started, timeout) for file, doc in last]
    for file, doc in last:
        if doc["kind"] == "SinkBinding":
            wait_bound(custom, file, doc, timeout)
    return waited


def intercepted(webhook: Doc | None, subject: Doc) -> bool:
    """Whether the SinkBinding webhook's configuration covers the subject's kind (its rules
    name `<plural>/*` per group, which the API server matches for the resource itself)."""
    group = subject["apiVersion"].rpartition("/")[0]
    resource = _PLURALS.get(subject["kind"], subject["kind"].lower() + "s") + "/*"
    return any(group in rule.get("apiGroups", []) and resource in rule.get("resources", [])
               and "CREATE" in rule.get("operations", [])
               for hook in (webhook or {}).get("webhooks") or []
               for rule in hook.get("rules") or [])


def wait_intercepted(api: client.ApiClient, file: str, bindings: list[Doc],
                     timeout: float) -> None:
    """Until the webhook intercepts every subject kind of the bindings: Services applied
    sooner would be created without K_SINK."""
    admission = client.AdmissionregistrationV1Api(api)

    def intercepts() -> bool:
        webhook = api.sanitize_for_serialization(admission.read_mutating_webhook_configuration(
            SINKBINDING_WEBHOOK, _request_timeout=API_TIMEOUT))
        return all(intercepted(webhook, b["spec"]["subject"]) for b in bindings)

    polling.until(f"{SINKBINDING_WEBHOOK} to name the subjects of {file}", intercepts,
                  time.monotonic() + timeout, tolerate=(ApiException,))
    log.info("%s: the SinkBinding webhook intercepts the subjects", file)


def bound(custom: client.CustomObjectsApi, doc: Doc) -> tuple[bool, str]:
    """Whether the SinkBinding's subject carries K_SINK = the binding's sink, and why not."""
    meta, subject = doc["metadata"], doc["spec"]["subject"]
    group, _, version = subject["apiVersion"].rpartition("/")
    try:
        binding = custom.get_namespaced_custom_object(
            "sources.knative.dev", "v1", meta["namespace"], "sinkbindings", meta["name"],
            _request_timeout=API_TIMEOUT)
        target = custom.get_namespaced_custom_object(
            group, version, meta["namespace"], _PLURALS[subject["kind"]], subject["name"],
            _request_timeout=API_TIMEOUT)
    except ApiException as err:
        return False, f"not readable ({err.status})"
    sink = (binding.get("status") or {}).get("sinkUri")
    containers = target["spec"]["template"]["spec"]["containers"]
    missing = [c["name"] for c in containers
               if {e["name"]: e.get("value") for e in c.get("env") or []}.get("K_SINK") != sink]
    return (not missing, f"{subject['name']} has no K_SINK={sink} in {', '.join(missing)}")


def wait_bound(custom: client.CustomObjectsApi, file: str, doc: Doc, timeout: float) -> None:
    meta = doc["metadata"]
    started = time.monotonic()
    nudged = False
    while True:
        ok, why = bound(custom, doc)
        if ok:
            return
        waited = time.monotonic() - started
        if waited > timeout:
            raise TimeoutError(f"{file}: SinkBinding {meta['name']}: {why}")
        if not nudged and waited > NUDGE_AFTER:
            log.warning("%s: SinkBinding %s is Ready but %s: nudging it", file, meta["name"],
                        why)
            custom.patch_namespaced_custom_object(
                "sources.knative.dev", "v1", meta["namespace"], "sinkbindings", meta["name"],
                {"metadata": {"annotations": {NUDGE_ANNOTATION: str(time.time())}}},
                _request_timeout=API_TIMEOUT)
            nudged = True
        time.sleep(0.2)


def wait_ready(custom: client.CustomObjectsApi, file: str, doc: Doc, started: float,
               timeout: float) -> Waited:
    name = f"{doc['kind']} {doc['metadata']['namespace']}/{doc['metadata']['name']}"
    deadline = time.monotonic() + timeout
    while True:
        ok, why = ready(custom, doc)
        if ok:
            log.info("%s: %s Ready", file, name)
            return Waited(file, name, time.monotonic() - started)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{file}: {name} not Ready after {timeout:.0f} s: {why}")
        time.sleep(0.2)
