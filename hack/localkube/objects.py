"""Applying objects to a cluster: server-side apply, so a rerun converges instead of failing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubernetes import client, dynamic


def apply(api: client.ApiClient, objects: Iterable[dict[str, Any]], field_manager: str) -> None:
    """Server-side apply each object (conflicts forced: this field manager owns them)."""
    dyn = dynamic.DynamicClient(api)
    for obj in objects:
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        resource.server_side_apply(body=obj, namespace=obj["metadata"].get("namespace"),
                                   field_manager=field_manager, force_conflicts=True)
