"""The gateway: the seed's HTTP API in front, CloudEvents behind, and the dashboard.

Create and delete become events posted to the Broker (K_SINK); list is a store.list event
sent straight to list-stores (LIST_URL). It loads no Kubernetes client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from storeplatform import access, config, contract, dashboard, upstream
from storeplatform.app import base_app
from storeplatform.errors import Kind, PlatformError

SETTINGS = {"K_SINK": config.REQUIRED, "LIST_URL": config.REQUIRED, "EVENT_TIMEOUT": 5.0,
            "LIST_TIMEOUT": 15.0, "GATEWAY_TOKEN": "", "DASHBOARD_DIR": "",
            "ALLOWED_ORIGINS": "", "LOG_LEVEL": "INFO",
            # docs/security.md: closed unless GATEWAY_AUTH=none; OIDC tokens (files the
            # kubelet keeps fresh) for the Broker and list-stores; the store cap; the limit.
            "GATEWAY_AUTH": access.AUTH_TOKEN, "BROKER_TOKEN_FILE": "", "LIST_TOKEN_FILE": "",
            "MAX_STORES": 20, "RATE_LIMIT": "10/minute;60/hour", "RATE_LIMIT_PROXY_HOPS": 0}
MAX_BODY_BYTES = 1024

stores = Blueprint("stores", __name__)


@stores.get("/stores")
def list_all():
    """All stores with their status, from the list-stores function."""
    return Response(_list_view(), mimetype="application/json")


@stores.post("/stores/<name>")
def create(name: str):
    """Ask for a new store; 202 with the event id (409 when the platform is full)."""
    contract.validate_store_name(name)
    engine = contract.requested_engine(request.get_data())
    _check_capacity(name)
    event_id = _publish(contract.CREATE, name, {"name": name, "engine": engine})
    return jsonify({"id": event_id, "name": name, "engine": engine,
                    "status": "provisioning"}), 202


@stores.delete("/stores/<name>")
def delete(name: str):
    """Ask for a store's removal; 202 with the event id."""
    contract.validate_store_name(name)
    event_id = _publish(contract.DELETE, name, {"name": name})
    return jsonify({"id": event_id, "name": name, "status": "deleting"}), 202


def _list_view() -> bytes:
    settings = current_app.config
    return upstream.list_view(settings["LIST_URL"], settings["LIST_TIMEOUT"],
                              settings["LIST_TOKEN_FILE"])


def _check_capacity(name: str) -> None:
    """The cap, counted from the cluster (through list-stores), so every replica sees the same
    count; create-store enforces it again where the store would be made."""
    cap = int(current_app.config["MAX_STORES"])
    names = {s.get("name") for s in json.loads(_list_view()).get("stores") or []}
    if name not in names and len(names) >= cap:
        raise PlatformError(Kind.LIMIT_REACHED, "store_limit_reached",
                            f"the platform already runs its maximum of {cap} stores; "
                            "delete one first")


def _publish(event_type: str, store: str, data: dict[str, Any]) -> str:
    settings = current_app.config
    return upstream.publish(settings["K_SINK"], event_type, store, data,
                            settings["EVENT_TIMEOUT"], settings["BROKER_TOKEN_FILE"])


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """The gateway (gunicorn 'storeplatform.gateway:create_app()')."""
    settings = config.start(SETTINGS, overrides)
    access.check_auth_settings(settings)
    app = base_app("gateway", MAX_BODY_BYTES)
    app.config.update(settings)
    access.guard(app)
    app.register_blueprint(stores)
    dashboard.register(app, settings["DASHBOARD_DIR"])
    return app
