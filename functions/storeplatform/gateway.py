"""The gateway: the seed's HTTP API in front, CloudEvents behind.

Create and delete become events posted to the Broker (K_SINK); list is a `store.list` event
sent straight to list-stores, whose answer is returned. It also serves the dashboard.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request, send_from_directory

from storeplatform import config as cfg
from storeplatform import contract as c
from storeplatform.app import base_app
from storeplatform.errors import ApiError
from storeplatform.events import json_body, new_event, parse_event, send_event

log = logging.getLogger(__name__)

SETTINGS = {
    "K_SINK": cfg.REQUIRED,
    "LIST_URL": cfg.REQUIRED,
    "EVENT_TIMEOUT": 5.0,
    "LIST_TIMEOUT": 15.0,
    "GATEWAY_TOKEN": "",
    "DASHBOARD_DIR": "",
    "ALLOWED_ORIGINS": "",
    "LOG_LEVEL": "INFO",
}
SOURCE = "/storeplatform/gateway"
MAX_BODY_BYTES = 1024
CREATE_FIELDS = frozenset({"engine"})


def create_request(body: bytes) -> str:
    """The engine asked for in a POST /stores/{name} body (empty body: the default)."""
    if not body.strip():
        return c.validate_engine(None)
    data = json_body(body)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "body must be a JSON object like {\"engine\": ...}")
    c.validate_fields(data, CREATE_FIELDS)
    return c.validate_engine(data.get("engine"))


def check_token(expected: str, header: str | None) -> None:
    """With a configured token, require `Authorization: Bearer <token>`."""
    if not expected:
        return
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "a valid gateway token is required "
                       "(Authorization: Bearer <token>)")


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """The gateway (gunicorn 'storeplatform.gateway:create_app()')."""
    settings = cfg.load(SETTINGS, overrides)
    cfg.setup_logging(settings["LOG_LEVEL"])
    app = base_app("gateway", MAX_BODY_BYTES)
    sink, list_url = settings["K_SINK"], settings["LIST_URL"]
    origins = {o.strip() for o in settings["ALLOWED_ORIGINS"].split(",") if o.strip()}
    dashboard = Path(settings["DASHBOARD_DIR"]).resolve() if settings["DASHBOARD_DIR"] else None

    def publish(event_type: str, name: str, data: dict[str, Any]) -> str:
        event = new_event(event_type, SOURCE, name, data)
        status, body, _ = send_event(sink, event, settings["EVENT_TIMEOUT"])
        if status >= 300:
            log.warning("broker refused event %s: HTTP %s %s", event.get_id(), status, body[:200])
            raise ApiError(502, "sink_rejected",
                           f"event broker refused the event (HTTP {status})")
        log.info("published %s %s id=%s", event_type, name, event.get_id())
        return event.get_id()

    @app.before_request
    def authorize():
        if request.path.startswith("/stores") and request.method != "OPTIONS":
            check_token(settings["GATEWAY_TOKEN"], request.headers.get("Authorization"))

    @app.after_request
    def cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            response.headers["Vary"] = "Origin"
        return response

    @app.get("/stores")
    def list_all():
        """All stores with their status, from the list-stores function."""
        event = new_event(c.LIST, SOURCE, None, {})
        status, body, headers = send_event(list_url, event, settings["LIST_TIMEOUT"])
        if status >= 300:
            raise ApiError(503, "list_unavailable", f"list-stores answered HTTP {status}")
        answer = parse_event(headers, body)
        return jsonify(answer.get_data())

    @app.post("/stores/<name>")
    def create(name: str):
        """Ask for a new store; 202 with the event id."""
        c.validate_store_name(name)
        engine = create_request(request.get_data())
        event_id = publish(c.CREATE, name, {"name": name, "engine": engine})
        return jsonify({"id": event_id, "name": name, "engine": engine,
                        "status": "provisioning"}), 202

    @app.delete("/stores/<name>")
    def delete(name: str):
        """Ask for a store's removal; 202 with the event id."""
        c.validate_store_name(name)
        event_id = publish(c.DELETE, name, {"name": name})
        return jsonify({"id": event_id, "name": name, "status": "deleting"}), 202

    @app.get("/config.json")
    def dashboard_config():
        """What the dashboard needs to know: where the API is and whether it needs a token."""
        return jsonify({"gatewayUrl": "", "authRequired": bool(settings["GATEWAY_TOKEN"])})

    if dashboard is not None:
        @app.get("/")
        def index():
            """The dashboard."""
            return send_from_directory(dashboard, "index.html")

        @app.get("/<path:asset>")
        def asset(asset: str):
            """Dashboard assets (scripts, styles)."""
            return send_from_directory(dashboard, asset)

    return app


