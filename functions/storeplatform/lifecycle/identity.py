"""A store's own runner identity: its ServiceAccount (owned by the store's namespace, so it
goes with the store) and the RoleBinding that lets it into that namespace only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from storeplatform import contract, fanout, manifests
from storeplatform.errors import Kind, PlatformError
from storeplatform.kube import Kube


def ensure(kube: Kube, store: str, namespace: Mapping[str, Any], platform_ns: str, *,
           bind: bool = True) -> None:
    """The runner account of this very namespace exists (and, with bind, its RoleBinding).

    An account left by an earlier store of the same name belongs to a namespace that is gone:
    the garbage collector is about to remove it, so the request is retried (RETRY_LATER)
    rather than handing the new store an identity that vanishes under its Job.
    """
    account = manifests.runner_service_account(store, platform_ns, namespace)
    # The RoleBinding names the account; RBAC needs no account to bind it: both at once.
    made, _ = fanout.all_of(
        lambda: kube.create_or_keep(account),
        lambda: kube.create_or_keep(manifests.runner_role_binding(store, platform_ns))
        if bind else None)
    if made is None:
        standing = kube.read_or_none("ServiceAccount", contract.runner_account(store),
                                     platform_ns)
        owners = [ref.get("uid") for ref in
                  ((standing or {}).get("metadata") or {}).get("ownerReferences") or []]
        if standing is None or namespace["metadata"]["uid"] not in owners:
            raise PlatformError(Kind.RETRY_LATER, "runner_identity_pending",
                                f"the runner identity of an earlier {store} is still being "
                                "removed; retry")
