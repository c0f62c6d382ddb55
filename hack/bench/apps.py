"""The bare Flask apps the gateway's throughput is compared with, run under the same
gunicorn: "hello", and a forwarder that makes the same outbound POSTs as the gateway's
create (a store.list event, which the store cap reads, then the binary-mode create event,
each of the same size, to the same receiver) and nothing else.

The forwarder opens a new connection per request with urllib, as a bare app does; with
pooled=True it keeps one connection per thread (the best a forwarder can do); with
listing=False it makes the create POST only.
gunicorn 'bench.apps:hello()', 'bench.apps:forwarder()', 'bench.apps:forwarder(pooled=True)'
(SINK_URL in the environment).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime

from flask import Flask, jsonify


def hello() -> Flask:
    app = Flask("hello")

    @app.get("/")
    def index():
        return "hello"

    @app.get("/health")
    def health():
        return "ok"

    return app


def _event(event_type: str, data: dict, subject: str | None) -> tuple[dict[str, str], bytes]:
    """One of the gateway's events, in binary mode."""
    headers = {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()),
               "ce-source": "/storeplatform/gateway", "ce-type": event_type,
               "ce-time": datetime.now(UTC).isoformat(), "Content-Type": "application/json"}
    if subject:
        headers["ce-subject"] = subject
    return headers, json.dumps(data).encode()


def forwarder(pooled: bool = False, listing: bool = True) -> Flask:
    sink = os.environ["SINK_URL"]
    parts = urllib.parse.urlsplit(sink)
    local = threading.local()
    app = Flask("forwarder")

    def post_pooled(headers: dict[str, str], body: bytes) -> bytes:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                                           timeout=5)
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        return response.read()

    def post_new(headers: dict[str, str], body: bytes) -> bytes:
        request = urllib.request.Request(sink, data=body, headers=headers,  # noqa: S310
                                         method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            return response.read()

    post = post_pooled if pooled else post_new

    @app.post("/stores/<name>")
    def create(name: str):
        if listing:
            json.loads(post(*_event("io.storeplatform.store.list", {}, None)))
        headers, body = _event("io.storeplatform.store.create",
                               {"name": name, "engine": "woocommerce"}, name)
        post(headers, body)
        return jsonify({"id": headers["ce-id"], "name": name}), 202

    @app.get("/health")
    def health():
        return "ok"

    return app
