"""The gateway: the seed's HTTP API in front, CloudEvents behind, and the dashboard.

Create and delete become events posted to the Broker (K_SINK); list is a store.list event
sent straight to list-stores (LIST_URL). It loads no Kubernetes client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from storeplatform import access, config, contract, dashboard, logs, metrics, tracing, upstream
from storeplatform.app import base_app
from storeplatform.errors import Kind, PlatformError

log = logging.getLogger(__name__)

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
    """All stores with their status, from the list-stores function (its JSON as it came);
    an ETag of the body, and 304 Not Modified when the caller's If-None-Match still matches
    (cheap polling)."""
    response = Response(_list_view(), mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"  # may be stored, must be revalidated
    response.add_etag()
    return response.make_conditional(request)


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


@stores.post("/stores/<name>/admin-password")
def reset_admin_password(name: str):
    """Ask for a new admin password for the store; 202 with the reset id to reveal it with."""
    contract.validate_store_name(name)
    if request.get_data().strip() not in (b"", b"{}"):
        raise PlatformError(Kind.INVALID, "unknown_field", "this request takes no body (or {})")
    event_id = _publish(contract.RESET_ADMIN_PASSWORD, name, {"name": name})
    return jsonify({"id": event_id, "name": name, "status": "resetting"}), 202


# The reveal's states as answers: shown once (200), not yet (202), and the two ends.
REVEAL_STATUS = {"shown": 200, "pending": 202, "failed": 409, "gone": 410}


@stores.post("/stores/<name>/admin-password/<reset_id>")
def reveal_admin_password(name: str, reset_id: str):
    """The new admin password of that reset, once: 200 with it, 202 while the Job works,
    409 when it failed (with the reason), 410 once shown, expired or replaced."""
    contract.validate_store_name(name)
    contract.validate_reset_id(reset_id)
    settings = current_app.config
    answer = upstream.reveal_admin_password(settings["LIST_URL"], name, reset_id,
                                            settings["LIST_TIMEOUT"], settings["LIST_TOKEN_FILE"],
                                            g.trace.header())
    state = answer.get("state")
    if state not in REVEAL_STATUS:
        raise PlatformError(Kind.UPSTREAM_UNAVAILABLE, "list_unavailable",
                            "list-stores answered an unknown reveal state")
    if state in ("failed", "gone"):
        body: dict[str, Any] = {"error": {"code": str(answer.get("code") or state),
                                          "message": str(answer.get("message") or state)}}
    else:
        body = {key: answer[key] for key in ("name", "id", "user", "password", "loginUrl",
                                             "status", "progress") if key in answer}
    response = jsonify(body)
    response.status_code = REVEAL_STATUS[state]
    response.headers["Cache-Control"] = "no-store"  # a password: never kept by any cache
    if state == "shown":
        log.info("admin password of %s handed over (reset %s)", name, reset_id)
    return response


def _publish(event_type: str, store: str, data: dict[str, Any]) -> str:
    settings = current_app.config
    with logs.bound(store=store):
        return upstream.publish(settings["K_SINK"], event_type, store, data,
                                settings["EVENT_TIMEOUT"], settings["BROKER_TOKEN_FILE"],
                                g.trace.header())


def begin_trace() -> None:
    """Before every request: its trace (the caller's traceparent continued, or a new one),
    on every log line of the request."""
    g.trace = tracing.continued(request.headers.get("traceparent"))
    g.log_fields = logs.bound(trace_id=g.trace.trace_id)
    g.log_fields.__enter__()


def end_trace(_error: BaseException | None) -> None:
    fields = g.pop("log_fields", None)
    if fields is not None:
        fields.__exit__(None, None, None)


def count_request(response: Response) -> Response:
    """After every request: storeplatform_http_requests_total by route and status."""
    route = request.url_rule.rule if request.url_rule else "unmatched"
    metrics.http_request(request.method, route, response.status_code)
    return response


def metrics_need_the_token() -> None:
    """/metrics tells how many stores there are: with a token set, it wants it too."""
    if request.path == "/metrics":
        access.check_token(current_app.config["GATEWAY_TOKEN"],
                           request.headers.get("Authorization"))


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """The gateway (gunicorn 'storeplatform.gateway:create_app()')."""
    settings = config.start(SETTINGS, overrides)
    access.check_auth_settings(settings)
    app = base_app("gateway", MAX_BODY_BYTES)
    app.config.update(settings)
    access.guard(app)
    app.before_request(metrics_need_the_token)
    app.before_request(begin_trace)
    app.teardown_request(end_trace)
    app.after_request(count_request)
    app.register_blueprint(stores)
    dashboard.register(app, settings["DASHBOARD_DIR"])
    return app
