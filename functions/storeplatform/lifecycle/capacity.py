"""The platform-wide cap on stores (MAX_STORES), enforced where stores are made.

Counting namespaces alone would let two create-store replicas both see room for one more.
So a new store first takes a place in one ConfigMap (contract.STORES_CONFIG_MAP), written
with the resourceVersion it was read at: of two concurrent claims the API server accepts
one, the other is retried (RETRY_LATER) and counts again. A place is the claim time until
the store's namespace is made, then MADE (fulfil). The places held are the store namespaces
that exist, plus claims younger than CLAIM_SECONDS whose namespace is not made yet; a MADE
place whose namespace is gone is free again, however soon after the claim it went.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from storeplatform import contract, fanout
from storeplatform.errors import Kind, PlatformError
from storeplatform.kube import CONFLICT, Kube, Obj

SETTINGS: dict[str, Any] = {"MAX_STORES": 20}
CLAIM_SECONDS = 300  # a claim whose namespace never came (a crash in between) lapses
MADE = "made"  # the place of a store whose namespace was made


def places(claims: Mapping[str, str], existing: set[str], now: float) -> dict[str, str]:
    """The places held: every existing store, and recent claims of stores not made yet."""
    held = dict.fromkeys(existing, MADE)
    for store, claimed_at in claims.items():
        if store not in held and claimed_at.isdigit() and now - int(claimed_at) < CLAIM_SECONDS:
            held[store] = claimed_at
    return held


def claim(kube: Kube, store: str, settings: Mapping[str, Any],
          clock: Callable[[], float] = time.time) -> Obj | None:
    """Take a place for a new store, or LIMIT_REACHED when MAX_STORES are held. The
    ConfigMap as written (fulfil writes on it), or None when the store held a place."""
    cap, platform_ns = int(settings["MAX_STORES"]), settings["PLATFORM_NAMESPACE"]
    standing, namespaces = fanout.all_of(
        lambda: kube.read_or_none("ConfigMap", contract.STORES_CONFIG_MAP, platform_ns),
        lambda: kube.list_items("Namespace", labels=contract.MANAGED_SELECTOR))
    existing = {ns["metadata"]["name"] for ns in namespaces if contract.manages(ns)}
    now = clock()
    held = places((standing or {}).get("data") or {}, existing, now)
    if store in held:
        return None
    if len(held) >= cap:
        raise PlatformError(Kind.LIMIT_REACHED, "store_limit_reached",
                            f"the platform already runs its maximum of {cap} stores; "
                            "delete one first")
    config_map: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": contract.STORES_CONFIG_MAP, "namespace": platform_ns,
                     "labels": {contract.LABEL_MANAGED_BY: contract.MANAGED_BY}},
        "data": held | {store: str(int(now))},
    }
    if standing is None:
        made = kube.create_or_keep(config_map)
        if made is None:  # another claim made it first
            raise _concurrent()
        return made
    config_map["metadata"]["resourceVersion"] = standing["metadata"]["resourceVersion"]
    return kube.replace(config_map)


def fulfil(kube: Kube, store: str, settings: Mapping[str, Any],
           claimed: Obj | None = None) -> None:
    """The store's namespace is made: its place is MADE, so that it is freed as soon as the
    namespace is gone (a mere claim would hold it for CLAIM_SECONDS). With the ConfigMap
    claim wrote, no read: it is written at that version, and read again only if another
    claim changed it since."""
    standing = claimed or kube.read_or_none("ConfigMap", contract.STORES_CONFIG_MAP,
                                            settings["PLATFORM_NAMESPACE"])
    data = (standing or {}).get("data") or {}
    if standing is None or data.get(store, MADE) == MADE:
        return
    try:
        kube.replace(standing | {"data": data | {store: MADE}})  # at the version read
    except PlatformError as err:
        if claimed is None or err.code != CONFLICT:
            raise
        fulfil(kube, store, settings)


def _concurrent() -> PlatformError:
    return PlatformError(Kind.RETRY_LATER, "store_claim_conflict",
                         "another store was claimed at the same moment; retry")
