"""The shape every CloudEvent function shares: decode the event, call the core, respond."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask, jsonify, request

from storeplatform import config as cfg
from storeplatform import kube
from storeplatform.errors import ApiError, register_error_handlers
from storeplatform.events import parse_event

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024

Handler = Callable[[BaseCloudEvent], Any]


def configure(spec: Mapping[str, Any], overrides: Mapping[str, Any] | None,
              clients: kube.Clients | None = None) -> tuple[dict[str, Any], kube.Clients]:
    """Configuration enters once: a function's settings, its logging and its API clients."""
    settings = cfg.load(spec, overrides)
    cfg.setup_logging(settings["LOG_LEVEL"])
    return settings, clients or kube.clients_from(settings)


def base_app(name: str, max_body: int = MAX_EVENT_BYTES) -> Flask:
    """A Flask app with JSON errors, a body limit and GET /health."""
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_body
    register_error_handlers(app)

    @app.get("/health")
    def health():
        """Liveness and readiness."""
        return jsonify({"status": "ok"})

    return app


def decode(event_types: tuple[str, ...]) -> BaseCloudEvent:
    """Step 1: the request as a CloudEvent of one of the accepted types, else 400."""
    event = parse_event(request.headers, request.get_data(cache=False))
    if event.get_type() not in event_types:
        raise ApiError(400, "unexpected_event_type",
                       f"event type {event.get_type()!r} is not handled here; "
                       f"expected {', '.join(event_types)}")
    return event


def function_app(name: str, event_types: tuple[str, ...], handle: Handler) -> Flask:
    """A function that answers CloudEvents POSTed to `/` with handle(event)."""
    app = base_app(name)

    @app.post("/")
    def receive():
        """Receive one CloudEvent (binary or structured mode)."""
        event = decode(event_types)
        try:
            result = kube.api_errors(handle, event)
        except ApiError as err:
            log.info("event %s %s subject=%s -> %s %s", event.get_id(), event.get_type(),
                     event.get_subject(), err.status, err.code)
            raise
        log.info("event %s %s subject=%s -> ok", event.get_id(), event.get_type(),
                 event.get_subject())
        return result

    return app
