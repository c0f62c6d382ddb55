"""The cluster read behind list-stores: six list calls, whatever the number of stores, and
the answer derived from them (status.py, deadletters.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from storeplatform import contract, deadletters, status
from storeplatform.kube import Kube, Obj

State = dict[str, list[Obj]]


def read_state(kube: Kube, platform_ns: str) -> State:
    """Every object the whole view is derived from, one list call per kind."""
    return {
        "namespaces": kube.list_items("Namespace", labels=contract.MANAGED_SELECTOR),
        "jobs": kube.list_items("Job", platform_ns, labels=contract.RUNNER_SELECTOR),
        "pods": kube.list_items("Pod", platform_ns, labels=contract.RUNNER_SELECTOR),
        "deployments": kube.list_items("Deployment", labels=contract.STORE_SELECTOR),
        "ingresses": kube.list_items("Ingress", labels=contract.STORE_SELECTOR),
        "events": kube.list_items("Event", platform_ns,
                                  fields=f"reason={contract.DEAD_LETTER_REASON}"),
    }


def view(state: Mapping[str, list[Obj]], now: datetime | None = None) -> dict[str, Any]:
    """The list answer: {"stores": [...], "deadLetters": [...]} (as of now)."""
    letters = deadletters.read_back(state["events"])
    stores = status.list_stores(state["namespaces"], state["jobs"], state["pods"],
                                state["deployments"], state["ingresses"], letters, now)
    return {"stores": stores, "deadLetters": letters}
