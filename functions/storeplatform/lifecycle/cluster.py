"""The cluster read behind list-stores: one selection per kind of object, whatever the
number of stores (read by six list calls, or kept by a watch cache), and the answer derived
from them (status.py, deadletters.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from storeplatform import contract, deadletters, status
from storeplatform.kube import Kube, Obj, Selection

State = dict[str, list[Obj]]


def selections(platform_ns: str) -> dict[str, Selection]:
    """Every object the whole view is derived from, one selection per kind."""
    return {
        "namespaces": Selection("Namespace", labels=contract.MANAGED_SELECTOR),
        "jobs": Selection("Job", platform_ns, labels=contract.RUNNER_SELECTOR),
        "pods": Selection("Pod", platform_ns, labels=contract.RUNNER_SELECTOR),
        "deployments": Selection("Deployment", labels=contract.STORE_SELECTOR),
        "ingresses": Selection("Ingress", labels=contract.STORE_SELECTOR),
        "events": Selection("Event", platform_ns,
                            fields=f"reason={contract.DEAD_LETTER_REASON}"),
    }


def read_state(kube: Kube, platform_ns: str) -> State:
    """The selections read straight from the API server, one list call each."""
    return {key: kube.list_items(s.kind, s.namespace, labels=s.labels, fields=s.fields)
            for key, s in selections(platform_ns).items()}


def view(state: Mapping[str, list[Obj]], now: datetime | None = None) -> dict[str, Any]:
    """The list answer: {"stores": [...], "deadLetters": [...]} (as of now)."""
    letters = deadletters.read_back(state["events"])
    stores = status.list_stores(state["namespaces"], state["jobs"], state["pods"],
                                state["deployments"], state["ingresses"], letters, now)
    return {"stores": stores, "deadLetters": letters}
