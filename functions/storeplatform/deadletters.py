"""Dead letters: events the Broker gave up delivering, kept as Kubernetes Events so people
(and GET /stores) see them. Pure: a record from a CloudEvent, its Event, records read back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent

from storeplatform import contract
from storeplatform.status import one_line

Obj = dict[str, Any]


def record(event: BaseCloudEvent) -> Obj:
    """What a person needs to know about an event that could not be delivered."""
    error_data = event.get_extension("knativeerrordata") or ""
    try:
        detail = base64.b64decode(error_data).decode("utf-8", "replace")
    except ValueError:
        detail = str(error_data)
    code = event.get_extension("knativeerrorcode")
    dest = event.get_extension("knativeerrordest")
    error = one_line(" ".join(part for part in (
        f"HTTP {code}" if code else "", f"from {dest}" if dest else "", detail) if part))
    time = event.get_time()
    return {
        "id": event.get_id(),
        "type": event.get_type(),
        "subject": event.get_subject(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ") if time else None,
        "error": error or "undeliverable",
    }


def kube_event(letter: Mapping[str, Any], platform_namespace: str) -> Obj:
    """A core/v1 Event that keeps a dead letter visible (the API server's event TTL applies)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "dead-letter-", "namespace": platform_namespace,
                     "labels": {contract.LABEL_MANAGED_BY: contract.MANAGED_BY}},
        # The Broker that gave up on the event (so `kubectl describe broker` shows it too).
        "involvedObject": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                           "name": "default", "namespace": platform_namespace},
        "reason": contract.DEAD_LETTER_REASON,
        "type": "Warning",
        "message": json.dumps(letter),
        "source": {"component": "list-stores"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def read_back(events: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The records kept in dead-letter Events, newest first."""
    letters = []
    for event in events:
        try:
            letters.append(json.loads(event.get("message") or "{}"))
        except ValueError:
            continue
    return sorted(letters, key=lambda letter: letter.get("time") or "", reverse=True)
