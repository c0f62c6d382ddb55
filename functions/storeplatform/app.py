"""The HTTP layer every service shares: JSON errors, the status of each error kind, and the
shape of a CloudEvent function (decode the event, call the core, respond).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.v1.event import CloudEvent
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from storeplatform.errors import Kind, PlatformError
from storeplatform.events import event_response, parse_event

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024

# The one table from error kind to HTTP status. For the Broker, 5xx (and 429) mean "retry";
# other 4xx go to the dead-letter sink.
STATUS: dict[Kind, int] = {
    Kind.INVALID: 400,
    Kind.UNAUTHORIZED: 401,
    Kind.CONFLICT: 422,
    Kind.NOT_AVAILABLE: 501,
    Kind.MISCONFIGURED: 500,
    Kind.UPSTREAM_REJECTED: 502,
    Kind.RETRY_LATER: 503,
    Kind.UPSTREAM_UNAVAILABLE: 503,
    Kind.UPSTREAM_TIMEOUT: 504,
}

# What a function's core returns: something to log (the event is then acknowledged with an
# empty 202), or a CloudEvent to answer with.
Handler = Callable[[BaseCloudEvent], object]


def _error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def register_error_handlers(app: Flask) -> None:
    """Answer every error, ours or Werkzeug's, as {"error": {"code", "message"}}."""

    @app.errorhandler(PlatformError)
    def _platform_error(err: PlatformError):
        return jsonify(_error_body(err.code, err.message)), STATUS[err.kind]

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if err.code == 413:  # the API promises 400 for every malformed request
            return jsonify(_error_body("body_too_large",
                                       "request body is too large for this endpoint")), 400
        code = (err.name or "error").lower().replace(" ", "_")
        return jsonify(_error_body(code, err.description or "")), err.code

    @app.errorhandler(Exception)
    def _unexpected(_err: Exception):
        log.exception("unexpected error")
        return jsonify(_error_body("internal", "internal error; see the service log")), 500


def base_app(name: str, max_body: int = MAX_EVENT_BYTES) -> Flask:
    """A Flask app with JSON errors, a body limit and GET /health."""
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_body
    register_error_handlers(app)
    app.add_url_rule("/health", view_func=health)
    return app


def health():
    """Liveness and readiness."""
    return jsonify({"status": "ok"})


def decode(event_types: tuple[str, ...]) -> BaseCloudEvent:
    """Step 1: the request as a CloudEvent of one of the accepted types."""
    event = parse_event(request.headers, request.get_data(cache=False))
    if event.get_type() not in event_types:
        raise PlatformError(Kind.INVALID, "unexpected_event_type",
                            f"event type {event.get_type()!r} is not handled here; "
                            f"expected {', '.join(event_types)}")
    return event


def accepted() -> tuple[str, int]:
    """Done: 202 with an empty body, the only 2xx the Broker takes that is not an event."""
    return "", 202


def function_app(name: str, event_types: tuple[str, ...], handle: Handler) -> Flask:
    """A function that answers CloudEvents POSTed to `/` with handle(event); one log line each."""
    app = base_app(name)

    @app.post("/")
    def receive():
        """Receive one CloudEvent (binary or structured mode)."""
        event = decode(event_types)
        where = f"event {event.get_id()} {event.get_type()} subject={event.get_subject()}"
        try:
            outcome = handle(event)
        except PlatformError as err:
            log.info("%s -> %s %s", where, STATUS[err.kind], err.code)
            raise
        if isinstance(outcome, CloudEvent):
            log.info("%s -> reply %s", where, outcome.get_type())
            return event_response(outcome)
        log.info("%s -> %s", where, outcome)
        return accepted()

    return app
