"""A test tool: a fault-injecting HTTP proxy in front of the local API server.

It listens on 127.0.0.1 (plain HTTP, loopback only) and forwards every request to the
upstream API server over HTTPS, verifying it with the cluster's CA; the Authorization
header (the ServiceAccount token of the function using it) passes through untouched and is
never logged. Rules chosen by a test answer some requests with a fault instead:

- `status` (500, 429 ...): a Kubernetes Status answer, the request never reaches the server;
- `timeout`: the request is held longer than the client waits, then the connection closes;
- `lost_reply`: the request IS forwarded (the write happens), but the answer is dropped, as
  when a connection breaks after the server acted.

A rule matches a method and a path regex, fires a given number of times, and records what
it hit, so a test can prove the fault really happened. Watches (`?watch=true`, list-stores'
cache) are streamed through as the API server sends them.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

log = logging.getLogger(__name__)

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "host", "content-length"}

WATCH = re.compile(r"[?&]watch=(true|1)\b", re.IGNORECASE)


@dataclass
class Rule:
    """Answer `times` requests matching method and path with a fault."""

    method: str
    path: str  # a regex, searched in the request path (query string included)
    fault: str | int  # "timeout", "lost_reply", or an HTTP status
    times: int = 1
    hold_seconds: float = 0.0  # for "timeout": how long to hold the request
    hits: list[str] = field(default_factory=list)

    def matches(self, method: str, path: str) -> bool:
        return (len(self.hits) < self.times and self.method == method
                and re.search(self.path, path) is not None)


class FaultProxy:
    """`with FaultProxy(upstream, ca_pem) as proxy:` serves on proxy.url until the block ends."""

    def __init__(self, upstream: str, ca_pem: bytes, upstream_timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the fault proxy only fronts a loopback API server: {upstream}")
        self._upstream = (parsed.hostname, parsed.port or 443)
        self._context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
        self._timeout = upstream_timeout
        self._lock = threading.Lock()
        self._streams: set[http.client.HTTPSConnection] = set()
        self.rules: list[Rule] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request seen
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    # ---------------------------------------------------------------- control
    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            self.requests.append((method, path))
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits.append(f"{method} {path}")
                    return rule
        return None

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # ---------------------------------------------------------------- forwarding
    def _connect(self, timeout: float | None) -> http.client.HTTPSConnection:
        host, port = self._upstream
        return http.client.HTTPSConnection(host, port, context=self._context, timeout=timeout)

    def forward(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = self._connect(self._timeout)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def stream(self, path: str, headers: dict[str, str],
               answer: Callable[[int, list[tuple[str, str]]], Callable[[bytes], None]]) -> None:
        """Forward a watch: answer(status, headers) starts the reply and gives the writer of
        each piece, called as the API server sends it (the client's timeout bounds it)."""
        connection = self._connect(None)
        with self._lock:
            self._streams.add(connection)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            write = answer(response.status, response.getheaders())
            while piece := response.read1(65536):
                write(piece)
        finally:
            with self._lock:
                self._streams.discard(connection)
            connection.close()

    def break_watches(self) -> int:
        """Cut every watch in flight, as a broken connection would; how many were cut."""
        with self._lock:
            streams, self._streams = set(self._streams), set()
        for connection in streams:
            if connection.sock is not None:
                connection.sock.shutdown(socket.SHUT_RDWR)
        return len(streams)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return  # requests carry tokens in headers; nothing of them is logged

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rule = proxy._take(self.command, self.path)
                if rule is not None and rule.fault == "timeout":
                    time.sleep(rule.hold_seconds)
                    self.close_connection = True
                    return
                if rule is not None and isinstance(rule.fault, int):
                    self._status(rule.fault)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                if self.command == "GET" and WATCH.search(self.path):
                    self._stream(headers)
                    return
                try:
                    status, answer_headers, answer = proxy.forward(self.command, self.path,
                                                                   headers, body)
                except OSError as err:
                    log.warning("fault proxy: upstream failed: %s", err)
                    self._status(502)
                    return
                if rule is not None and rule.fault == "lost_reply":
                    self.close_connection = True  # the server acted; the client never hears
                    return
                self.send_response(status)
                for key, value in answer_headers:
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _stream(self, headers: dict[str, str]) -> None:
                def answer(status: int, answer_headers: list[tuple[str, str]],
                           ) -> Callable[[bytes], None]:
                    self.send_response(status)
                    for key, value in answer_headers:
                        if key.lower() not in HOP_HEADERS:
                            self.send_header(key, value)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()

                    def write(piece: bytes) -> None:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.flush()

                    return write

                try:
                    proxy.stream(self.path, headers, answer)
                    self.wfile.write(b"0\r\n\r\n")  # the API server ended the watch
                except (OSError, http.client.HTTPException):
                    pass  # the watcher went away, or the watch was cut: no clean end
                self.close_connection = True

            def _status(self, code: int) -> None:
                payload = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "message": f"injected by the fault proxy: {code}",
                                      "code": code}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                if code == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
