"""list-stores: every store and its status, read from Kubernetes alone (no database).

A constant number of list calls, whatever the number of stores. It also records the events
the Broker could not deliver (its dead-letter sink) as Kubernetes Events, so people see them.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask, jsonify

from storeplatform import contract as c
from storeplatform import kube
from storeplatform.app import configure, decode, function_app
from storeplatform.errors import ApiError
from storeplatform.events import event_response, new_event
from storeplatform.status import list_stores, one_line

log = logging.getLogger(__name__)

SETTINGS = {
    "KUBECONFIG": "",
    "KUBE_TIMEOUT": 10.0,
    "PLATFORM_NAMESPACE": c.PLATFORM_NAMESPACE,
    "LOG_LEVEL": "INFO",
}
DEAD_LETTER_REASON = "DeadLetter"
STORE_SELECTOR = c.LABEL_STORE
RUNNER_SELECTOR = f"{c.LABEL_COMPONENT}={c.RUNNER_COMPONENT}"
MANAGED_SELECTOR = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"


def _items(response: Any) -> list[dict[str, Any]]:
    """The raw JSON items of a list call (no model objects: ten times faster to read)."""
    return json.loads(response.data)["items"]


def read_state(kc: kube.Clients, platform_ns: str) -> dict[str, list[dict[str, Any]]]:
    """The six list calls the whole view is derived from."""
    raw = {"_request_timeout": kc.timeout, "_preload_content": False}
    return {
        "namespaces": _items(kc.core.list_namespace(label_selector=MANAGED_SELECTOR, **raw)),
        "jobs": _items(kc.batch.list_namespaced_job(
            platform_ns, label_selector=RUNNER_SELECTOR, **raw)),
        "pods": _items(kc.core.list_namespaced_pod(
            platform_ns, label_selector=RUNNER_SELECTOR, **raw)),
        "deployments": _items(kc.apps.list_deployment_for_all_namespaces(
            label_selector=STORE_SELECTOR, **raw)),
        "ingresses": _items(kc.networking.list_ingress_for_all_namespaces(
            label_selector=STORE_SELECTOR, **raw)),
        "events": _items(kc.core.list_namespaced_event(
            platform_ns, field_selector=f"reason={DEAD_LETTER_REASON}", **raw)),
    }


def dead_letters(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recorded undeliverable events, newest first."""
    letters = []
    for event in events:
        try:
            letters.append(json.loads(event.get("message") or "{}"))
        except ValueError:
            continue
    return sorted(letters, key=lambda d: d.get("time") or "", reverse=True)


def view(state: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The list answer: {"stores": [...], "deadLetters": [...]}."""
    stores = list_stores(state["namespaces"], state["jobs"], state["pods"],
                         state["deployments"], state["ingresses"])
    return {"stores": stores, "deadLetters": dead_letters(state["events"])}


def dead_letter_record(event: BaseCloudEvent) -> dict[str, Any]:
    """What a person needs to know about an event that could not be delivered."""
    error_data = event.get_extension("knativeerrordata") or ""
    try:
        detail = base64.b64decode(error_data).decode("utf-8", "replace")
    except ValueError:
        detail = str(error_data)
    code = event.get_extension("knativeerrorcode")
    dest = event.get_extension("knativeerrordest")
    error = one_line(" ".join(x for x in (
        f"HTTP {code}" if code else "", f"from {dest}" if dest else "", detail) if x))
    time = event.get_time()
    return {
        "id": event.get_id(),
        "type": event.get_type(),
        "subject": event.get_subject(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ") if time else None,
        "error": error or "undeliverable",
    }


def kube_event(record: Mapping[str, Any], platform_ns: str) -> dict[str, Any]:
    """A core/v1 Event that keeps a dead letter visible (apiserver event TTL applies)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "dead-letter-", "namespace": platform_ns,
                     "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY}},
        # The Broker that gave up on the event (so `kubectl describe broker` shows it too).
        "involvedObject": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                           "name": "default", "namespace": platform_ns},
        "reason": DEAD_LETTER_REASON,
        "type": "Warning",
        "message": json.dumps(record),
        "source": {"component": "list-stores"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def create_app(overrides: Mapping[str, Any] | None = None,
               clients: kube.Clients | None = None) -> Flask:
    """The list-stores function (gunicorn 'storeplatform.list_stores:create_app()')."""
    settings, kc = configure(SETTINGS, overrides, clients)
    platform_ns = settings["PLATFORM_NAMESPACE"]

    def handle(event: BaseCloudEvent):
        if event.get_data() not in (None, {}):
            raise ApiError(400, "unknown_field", "list events carry no data; send {} or nothing")
        answer = new_event(c.LIST + ".result", "/storeplatform/list-stores", None,
                           view(read_state(kc, platform_ns)))
        return event_response(answer)

    app = function_app("list-stores", (c.LIST,), handle)

    @app.post("/dead-letter")
    def dead_letter():
        """Record an event the Broker gave up delivering."""
        event = decode((c.CREATE, c.DELETE, c.LIST))
        record = dead_letter_record(event)
        log.warning("dead letter %s %s subject=%s: %s", record["id"], record["type"],
                    record["subject"], record["error"])
        kube.api_errors(kc.core.create_namespaced_event, platform_ns,
                        kube_event(record, platform_ns), _request_timeout=kc.timeout)
        return jsonify({"recorded": record["id"]}), 202

    return app
