"""The HTTP layer every service shares: JSON errors, the status of each error kind, and the
shape of a CloudEvent function (decode the event, call the core, respond).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Protocol

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.v1.event import CloudEvent
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from storeplatform import logs, metrics, tracing
from storeplatform.errors import Kind, PlatformError
from storeplatform.events import event_response, parse_event

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024

# The one table from error kind to HTTP status. For the Broker, 5xx (and 429) mean "retry";
# other 4xx go to the dead-letter sink.
STATUS: dict[Kind, int] = {
    Kind.INVALID: 400,
    Kind.UNAUTHORIZED: 401,
    Kind.FORBIDDEN: 403,
    Kind.UNSUPPORTED_MEDIA: 415,
    Kind.LIMIT_REACHED: 409,  # the Broker retries it for a while: a delete may free a place
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
        if err.code == 429:  # Flask-Limiter's description is the limit that was hit
            return jsonify(_error_body(code, f"too many store changes from this client "
                                             f"(at most {err.description}); retry later")), 429
        return jsonify(_error_body(code, err.description or "")), err.code

    @app.errorhandler(Exception)
    def _unexpected(_err: Exception):
        log.exception("unexpected error")
        return internal_error()


def internal_error():
    """The answer to a failure nobody foresaw (its details go to the log only)."""
    return jsonify(_error_body("internal", "internal error; see the service log")), 500


def bounded_body() -> None:
    """Before every request: a body without Content-Length (chunked) is read whole, up to the
    limit, or refused as too large. Werkzeug would cut it at the limit without a word."""
    environ = request.environ
    if request.content_length is not None or not environ.get("wsgi.input_terminated"):
        return
    limit = request.max_content_length or MAX_EVENT_BYTES
    data = environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise RequestEntityTooLarge()
    # From here on the request reads as one with a Content-Length (request.stream is made
    # from the environ on first use, which is after this hook).
    environ.update({"wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)),
                    "wsgi.input_terminated": False})
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def security_headers(response: Response) -> Response:
    """After every request: browsers must never guess a content type (a JSON error is not
    a script or a page)."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def base_app(name: str, max_body: int = MAX_EVENT_BYTES) -> Flask:
    """A Flask app with JSON errors, a body limit (chunked bodies too), nosniff, GET /health
    and GET /metrics."""
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_body
    register_error_handlers(app)
    app.before_request(bounded_body)
    app.after_request(security_headers)
    app.add_url_rule("/health", view_func=health)
    metrics.register(app)
    return app


def health():
    """Liveness and readiness."""
    return jsonify({"status": "ok"})


def decode(event_types: tuple[str, ...]) -> BaseCloudEvent:
    """Step 1: the request as a CloudEvent of one of the accepted types."""
    return check_type(parse_event(request.headers, request.get_data(cache=False)), event_types)


def check_type(event: BaseCloudEvent, event_types: tuple[str, ...]) -> BaseCloudEvent:
    """The event, if it is of one of the accepted types; INVALID otherwise."""
    if event.get_type() not in event_types:
        raise PlatformError(Kind.INVALID, "unexpected_event_type",
                            f"event type {event.get_type()!r} is not handled here; "
                            f"expected {', '.join(event_types)}")
    return event


def accepted() -> tuple[str, int]:
    """Done: 202 with an empty body, the only 2xx the Broker takes that is not an event."""
    return "", 202


class Authenticator(Protocol):
    """Who may deliver (storeplatform.eventauth.Senders): check raises UNAUTHORIZED or
    FORBIDDEN for a request that must not be handled."""

    def check(self, authorization: str | None) -> str: ...


def authenticate(senders: Authenticator | None) -> None:
    """Step 0: the sender's OIDC token, before anything of the request is read."""
    if senders is not None:
        senders.check(request.headers.get("Authorization"))


def function_app(name: str, event_types: tuple[str, ...], handle: Handler,
                 senders: Authenticator | None = None) -> Flask:
    """A function that answers CloudEvents POSTed to `/` with handle(event), from the senders
    that `senders` lets through (None: anyone); one log line each."""
    app = base_app(name)
    add_function(app, "/", name, event_types, handle, senders)
    return app


def add_function(app: Flask, path: str, name: str, event_types: tuple[str, ...],
                 handle: Handler, senders: Authenticator | None = None) -> None:
    """Answer CloudEvents of event_types POSTed to path with handle(event), from the senders
    that `senders` lets through, as function_app."""

    def receive():
        """Receive one CloudEvent (binary or structured mode)."""
        authenticate(senders)
        return receive_event(name, event_types, handle)

    app.add_url_rule(path, "receive" if path == "/" else f"receive{path}", receive,
                     methods=["POST"])


def _store_of(event: BaseCloudEvent) -> str | None:
    data = event.get_data()
    name = data.get("name") if isinstance(data, dict) else None
    return event.get_subject() or (name if isinstance(name, str) else None)


def receive_event(function: str, event_types: tuple[str, ...], handle: Handler):
    """Decode, call the core, respond; the event's id, store and trace id on every log line,
    and its type and outcome counted (storeplatform_events_received_total)."""
    try:
        event = parse_event(request.headers, request.get_data(cache=False))
    except PlatformError as err:
        metrics.event_received(function, "unparsed", err.code)
        raise
    counted_type = event.get_type() if event.get_type() in event_types else "other"
    trace = tracing.of_event(event)
    where = f"event {event.get_id()} {event.get_type()} subject={event.get_subject()}"
    with logs.bound(event_id=event.get_id(), event_type=event.get_type(),
                    store=_store_of(event), trace_id=trace.trace_id if trace else None):
        try:
            outcome = handle(check_type(event, event_types))
        except PlatformError as err:
            metrics.event_received(function, counted_type, err.code)
            log.info("%s -> %s %s", where, STATUS[err.kind], err.code, extra={"outcome": err.code})
            raise
        except Exception:
            metrics.event_received(function, counted_type, "internal")
            log.exception("%s -> 500 internal", where, extra={"outcome": "internal"})
            return internal_error()
        if isinstance(outcome, CloudEvent):
            metrics.event_received(function, counted_type, "replied")
            log.info("%s -> reply %s", where, outcome.get_type(), extra={"outcome": "replied"})
            return event_response(outcome)
        metrics.event_received(function, counted_type, "accepted")
        log.info("%s -> %s", where, outcome, extra={"outcome": "accepted"})
        return accepted()
