"""The bare Flask apps the gateway's throughput is compared with, run under the same
gunicorn: "hello", and a forwarder that makes the same outbound POST as the gateway's
create (a binary-mode CloudEvent of the same size, to the same sink) and nothing else.

The forwarder opens a new connection per request with urllib, as a bare app does; with
pooled=True it keeps one connection per thread (the best a forwarder can do).
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


def _event(name: str) -> tuple[dict[str, str], bytes]:
    """The gateway's create event, in binary mode."""
    event_id = str(uuid.uuid4())
    headers = {"ce-specversion": "1.0", "ce-id": event_id,
               "ce-source": "/storeplatform/gateway",
               "ce-type": "io.storeplatform.store.create", "ce-subject": name,
               "ce-time": datetime.now(UTC).isoformat(),
               "Content-Type": "application/json"}
    return headers, json.dumps({"name": name, "engine": "woocommerce"}).encode()


def forwarder(pooled: bool = False) -> Flask:
    sink = os.environ["SINK_URL"]
    parts = urllib.parse.urlsplit(sink)
    local = threading.local()
    app = Flask("forwarder")

    def post_pooled(headers: dict[str, str], body: bytes) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                                           timeout=5)
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status

    def post_new(headers: dict[str, str], body: bytes) -> int:
        request = urllib.request.Request(sink, data=body, headers=headers,  # noqa: S310
                                         method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            response.read()
            return response.status

    post = post_pooled if pooled else post_new

    @app.post("/stores/<name>")
    def create(name: str):
        headers, body = _event(name)
        post(headers, body)
        return jsonify({"id": headers["ce-id"], "name": name}), 202

    @app.get("/health")
    def health():
        return "ok"

    return app
