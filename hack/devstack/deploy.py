"""Apply knative/ the way `make up` (hack/up.sh) does: file by file in name order, and after
each file that holds Knative objects, wait until every one of them reports Ready.

SinkBindings are the exception: they are applied before the Services they bind (so the
webhook sets K_SINK when each Service is created), and the SinkBinding reconciler reports
SubjectMissing until that Service exists, so they are waited for after the last file.

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

from localkube import objects

log = logging.getLogger("devstack.deploy")

KNATIVE_DIR = Path(__file__).resolve().parents[2] / "knative"
FIELD_MANAGER = "storeplatform"  # the same as up.sh's `kubectl apply --field-manager`
READY_TIMEOUT = 300.0
API_TIMEOUT = 10
# Ready only once objects of later files exist: waited for after the last file.
WAITED_LAST = frozenset({"SinkBinding"})

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
    plurals = {"Broker": "brokers", "Trigger": "triggers", "SinkBinding": "sinkbindings",
               "Service": "services", "EventPolicy": "eventpolicies"}
    return group, version, plurals[doc["kind"]]


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
        if waits_after(rendered):
            waited += [wait_ready(custom, path.name, doc, started, timeout) for doc in knative]
        else:
            last += [(path.name, doc) for doc in knative]
    started = time.monotonic()
    waited += [wait_ready(custom, file, doc, started, timeout) for file, doc in last]
    return waited


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
