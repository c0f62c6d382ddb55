"""The dashboard, served by the gateway: its static files and what it needs to know."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, jsonify, send_from_directory

settings = Blueprint("dashboard_settings", __name__)
files = Blueprint("dashboard_files", __name__)

# index.html's own <meta> policy, plus what only a header can say: no page of another
# origin may frame the dashboard (clickjacking a Delete button).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' http: https:; base-uri 'none'; form-action 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'; frame-ancestors 'none'")


@files.after_request
def page_headers(response: Response) -> Response:
    """The dashboard's files: the CSP with frame-ancestors, no framing, no referrer."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@settings.get("/config.json")
def dashboard_config():
    """Where the API is, and whether it needs a token."""
    return jsonify({"gatewayUrl": "", "authRequired": bool(current_app.config["GATEWAY_TOKEN"])})


@files.get("/")
def index():
    """The dashboard."""
    return send_from_directory(current_app.config["DASHBOARD_DIR"], "index.html")


@files.get("/<path:asset>")
def asset(asset: str):
    """Dashboard assets (scripts, styles)."""
    return send_from_directory(current_app.config["DASHBOARD_DIR"], asset)


def register(app: Flask, directory: str) -> None:
    """/config.json always; the dashboard's files when it has a directory."""
    app.register_blueprint(settings)
    if directory:
        app.config["DASHBOARD_DIR"] = str(Path(directory).resolve())
        app.register_blueprint(files)
