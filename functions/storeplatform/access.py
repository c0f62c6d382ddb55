"""Who may call the gateway: the bearer token on /stores, and the browser origins (CORS)."""

from __future__ import annotations

import hmac

from flask import Flask, Response, current_app, request

from storeplatform.errors import Kind, PlatformError


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


def guard(app: Flask) -> None:
    """Check every request of the app, and mark every answer, as above."""
    app.before_request(authorize)
    app.after_request(cors)
