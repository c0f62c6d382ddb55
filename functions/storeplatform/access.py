"""Who may call the gateway: the bearer token on /stores, the browser origins (CORS), the
JSON-only write requests, and the per-client rate limit of store creates and deletes."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter

from storeplatform.config import ConfigError
from storeplatform.errors import Kind, PlatformError

AUTH_TOKEN = "token"  # noqa: S105 (a mode name, not a password)
AUTH_NONE = "none"  # the one documented opt-out: an open gateway, for a trusted network only
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"


def check_auth_settings(settings: Mapping[str, Any]) -> None:
    """Start-up: a gateway with no token refuses to start unless GATEWAY_AUTH=none says so."""
    mode, token = settings["GATEWAY_AUTH"], settings["GATEWAY_TOKEN"]
    if mode not in (AUTH_TOKEN, AUTH_NONE):
        raise ConfigError(f"setting GATEWAY_AUTH must be {AUTH_TOKEN!r} or {AUTH_NONE!r}, "
                          f"got {mode!r}")
    if mode == AUTH_TOKEN and not token:
        raise ConfigError("setting GATEWAY_TOKEN is required: the gateway does not run open. "
                          "Set GATEWAY_TOKEN to a random secret, or GATEWAY_AUTH=none to run "
                          "without one on a network you trust")
    if mode == AUTH_NONE and token:
        raise ConfigError("settings GATEWAY_AUTH=none and GATEWAY_TOKEN contradict each "
                          "other: unset one")


def check_token(expected: str, header: str | None) -> None:
    """With a configured token, require `Authorization: Bearer <token>`."""
    if not expected:
        return
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise PlatformError(Kind.UNAUTHORIZED, "unauthorized", "a valid gateway token is "
                            "required (Authorization: Bearer <token>)")


def authorize() -> None:
    """Before every request: the token check for the store API (not for preflights)."""
    if request.path.startswith("/stores") and request.method != "OPTIONS":
        check_token(current_app.config["GATEWAY_TOKEN"], request.headers.get("Authorization"))


def has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", "").lower()


def require_json() -> None:
    """Before every request: a POST (and any write that carries a body) is application/json,
    so no cross-site form or `text/plain` request can ever change a store."""
    if request.method not in WRITE_METHODS or not (request.method == "POST" or has_body()):
        return
    if request.mimetype != JSON:
        raise PlatformError(Kind.UNSUPPORTED_MEDIA, "unsupported_media_type",
                            f"send the request body as {JSON} (Content-Type: {JSON})")


def allowed_origins(setting: str) -> frozenset[str]:
    """The ALLOWED_ORIGINS setting: comma-separated origins."""
    return frozenset(origin.strip() for origin in setting.split(",") if origin.strip())


def cors(response: Response) -> Response:
    """After every request: let the configured origins (only) read the answer."""
    origin = request.headers.get("Origin")
    if origin and origin in allowed_origins(current_app.config["ALLOWED_ORIGINS"]):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = ("Authorization, Content-Type, "
                                                            "If-None-Match")
        response.headers["Access-Control-Expose-Headers"] = "ETag"  # for If-None-Match polls
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response.headers["Vary"] = "Origin"
    return response


def client_address() -> str:
    """Who a request comes from, for the rate limit: the peer address, or with
    RATE_LIMIT_PROXY_HOPS=N trusted proxies in front, the address the first of them saw
    (X-Forwarded-For's N-th entry from the end; entries before it are the client's own
    claims and are ignored)."""
    hops = int(current_app.config["RATE_LIMIT_PROXY_HOPS"])
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")
                 if part.strip()]
    if hops > 0 and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.remote_addr or "unknown"


def _not_a_store_change() -> bool:
    """Creates, deletes and admin-password resets count; reading a reset's result (POST
    /stores/<name>/admin-password/<id>, which the dashboard polls) does not."""
    parts = request.path.strip("/").split("/")
    reveal = len(parts) == 4 and parts[2] == "admin-password"
    return reveal or not (parts[0] == "stores" and len(parts) >= 2
                          and request.method in ("POST", "DELETE"))


def rate_limit(app: Flask) -> Limiter:
    """RATE_LIMIT (e.g. "10/minute;100/hour") on creates, deletes and resets together, per client
    address, counted in this process's memory: per gunicorn worker, per replica."""
    return Limiter(client_address, app=app, storage_uri="memory://",
                   application_limits=[lambda: current_app.config["RATE_LIMIT"]],
                   application_limits_exempt_when=_not_a_store_change, headers_enabled=True)


def guard(app: Flask) -> None:
    """Check every request of the app, and mark every answer, as above. The rate limit
    comes first, so it also bounds guesses at the token."""
    rate_limit(app)
    app.before_request(authorize)
    app.before_request(require_json)
    app.after_request(cors)
