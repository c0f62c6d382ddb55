"""The engines a store can run: those available now, and those planned but not built yet.

A new engine is a module here (its Engine data), one line in AVAILABLE, and its templates
in store-chart/.
"""

from __future__ import annotations

from storeplatform.engines import woocommerce
from storeplatform.engines.engine import Engine

AVAILABLE: dict[str, Engine] = {engine.name: engine for engine in (woocommerce.ENGINE,)}
PLANNED: tuple[str, ...] = ("medusa",)
DEFAULT = woocommerce.ENGINE.name


def get(name: str) -> Engine:
    """An available engine by name (KeyError for any other: validate first)."""
    return AVAILABLE[name]
