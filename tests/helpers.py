"""Test helpers shared by the unit and integration suites."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import (
    HTTPMessage,
    from_http_event,
    to_binary_event,
    to_structured_event,
)
from cloudevents.core.v1.event import CloudEvent
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

MODES = ("binary", "structured")


def encode(event_type: str, data: Any, mode: str, subject: str | None = None,
           event_id: str | None = None) -> tuple[dict[str, str], bytes]:
    """Headers and body of a CloudEvent in the given HTTP content mode."""
    attributes = {"type": event_type, "source": "/tests", "datacontenttype": "application/json"}
    if subject:
        attributes["subject"] = subject
    if event_id:
        attributes["id"] = event_id
    event = CloudEvent(attributes=attributes, data=data)
    message = to_binary_event(event) if mode == "binary" else to_structured_event(event)
    return dict(message.headers), message.body


def error_of(response) -> dict[str, str]:
    """The {"code", "message"} of a JSON error answer."""
    body = json.loads(response.data if hasattr(response, "data") else response.read())
    return body["error"]


def received_event(recorder: Recorder) -> BaseCloudEvent:
    """The CloudEvent of the last request a Recorder got."""
    req = recorder.requests[-1]
    return from_http_event(HTTPMessage(headers=req["headers"], body=req["body"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """A real HTTP receiver on 127.0.0.1 that records requests and answers with `reply`."""

    def __init__(self, reply: Callable[[Request], Response] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply = reply or (lambda _req: Response(status=202))

    def __call__(self, environ, start_response):
        req = Request(environ)
        self.requests.append({"method": req.method, "path": req.path,
                              "query": req.query_string.decode(),
                              "headers": dict(req.headers), "body": req.get_data()})
        return self.reply(req)(environ, start_response)


@contextmanager
def serve(app, port: int | None = None) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1 in a thread; yield its base URL."""
    server = make_server("127.0.0.1", port or 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def receiving(recorder: Recorder) -> Iterator[Recorder]:
    """Serve a Recorder on 127.0.0.1; yield it with its base URL as .url."""
    with serve(recorder) as url:
        recorder.url = url
        yield recorder


def standin_accepts(devstack: dict[str, str], store: str, user: str, password: str) -> bool:
    """Whether the wp-cli stand-in's record (a PBKDF2 hash in the store's namespace) matches."""
    import base64
    import hashlib

    from kubernetes import client, config

    api = config.new_client_from_config(config_file=devstack["kubeconfig"])
    secret = client.CoreV1Api(api).read_namespaced_secret("wordpress-standin", store)
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    _, iterations, salt, digest = data["user_pass"].split("$")
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                   int(iterations))
    return data["user_login"] == user and base64.b64encode(computed).decode() == digest
