"""What the platform knows of one store engine; its chart templates know the rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Engine:
    """One engine as plain data: read by manifests (what to install) and status (is it up)."""

    name: str  # the `engine` of events, of the namespace label and of the chart values
    chart_values: Mapping[str, Any]  # values that make store-chart render this engine
    credential_keys: tuple[str, ...]  # random credentials of the store's Secret, made once
    storefront_component: str  # app.kubernetes.io/component of the Deployment serving the shop
    storefront_title: str  # how progress messages name that Deployment
    storefront_path: str  # the storefront below the store's base URL
    admin_path: str  # the admin UI below the store's base URL
