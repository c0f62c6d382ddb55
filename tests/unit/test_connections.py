"""Kept-alive connections over real sockets on 127.0.0.1: reuse, replacement of a connection
the receiver closed, and which failures mean "not sent" and which "sent, no answer"."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from werkzeug.wrappers import Response

from storeplatform.connections import NoAnswer, NotSent, Pool
from tests.helpers import Recorder, free_port, serve

ANSWER = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (the Werkzeug test server closes every connection): answers
    200 with the request's body and records the client port of each request."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.client_address[1], self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@contextlib.contextmanager
def keep_alive_server() -> Iterator[tuple[str, list]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    server.daemon_threads = True
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pool() -> Iterator[Pool]:
    made = Pool()
    yield made
    made.close()


def test_one_connection_serves_request_after_request(pool):
    with keep_alive_server() as (url, seen):
        answers = [pool.post(url + "/in", b"{}", {"Content-Type": "application/json"}, 5.0)
                   for _ in range(20)]
    assert {(a.status, a.body) for a in answers} == {(200, b"{}")}
    assert len(seen) == 20 and len({port for port, _, _ in seen}) == 1
    assert seen[0][1] == "/in"


def test_threads_share_the_pool_without_sharing_a_connection(pool):
    results: list[bool] = []

    def worker(n: int) -> None:
        for i in range(10):
            body = f"{n}-{i}".encode()
            results.append(pool.post(url, body, {}, 5.0).body == body)

    with keep_alive_server() as (url, seen):
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == [True] * 80
    assert len({port for port, _, _ in seen}) <= 8
    assert pool.idle_count() <= 8


def test_an_answer_that_closes_is_not_kept(pool):
    with serve(Recorder(lambda _r: Response(status=202, headers={"Connection": "close"}))) \
            as url:
        pool.post(url, b"", {}, 5.0)
    assert pool.idle_count() == 0


@contextlib.contextmanager
def scripted(*scripts: Callable[[socket.socket], None]) -> Iterator[tuple[str, list]]:
    """A server that runs one script per accepted connection, in order; it records what it
    read (each request's first line)."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def run():
        for script in scripts:
            conn, _ = listener.accept()
            with conn:
                script(_Reader(conn, seen))

    threading.Thread(target=run, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/", seen
    finally:
        listener.close()


class _Reader:
    def __init__(self, conn: socket.socket, seen: list[bytes]) -> None:
        self.conn, self.seen = conn, seen

    def read_request(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += self.conn.recv(65536)
        self.seen.append(head.split(b"\r\n")[0] + b" " + body)

    def answer(self) -> None:
        self.conn.sendall(ANSWER)


def test_an_idle_connection_the_receiver_closed_is_replaced(pool):
    def answer_then_close(server):
        server.read_request()
        server.answer()

    def answer(server):
        server.read_request()
        server.answer()

    with scripted(answer_then_close, answer) as (url, seen):
        assert pool.post(url, b"1", {}, 5.0).status == 202
        time.sleep(0.2)  # the receiver's close reaches us while the connection is idle
        assert pool.post(url, b"2", {}, 5.0).status == 202
    assert seen == [b"POST / HTTP/1.1 1", b"POST / HTTP/1.1 2"]


def test_a_kept_connection_closed_under_the_request_is_sent_again_once(pool):
    """It went out on a connection the receiver closed before answering: sent again on a
    fresh one (at least once, as Knative delivers; every receiver here is idempotent)."""
    def answer_then_drop_the_next(server):
        server.read_request()
        server.answer()
        server.read_request()  # ... and closes without a word

    def answer(server):
        server.read_request()
        server.answer()

    with scripted(answer_then_drop_the_next, answer) as (url, seen):
        pool.post(url, b"1", {}, 5.0)
        assert pool.post(url, b"2", {}, 5.0).status == 202
    assert seen == [b"POST / HTTP/1.1 1", b"POST / HTTP/1.1 2", b"POST / HTTP/1.1 2"]


def test_a_closed_port_is_not_sent(pool):
    with pytest.raises(NotSent, match="cannot connect"):
        pool.post(f"http://127.0.0.1:{free_port()}/", b"", {}, 1.0)


def test_a_receiver_that_never_answers_is_no_answer_after_the_timeout(pool, silent_server):
    started = time.monotonic()
    with pytest.raises(NoAnswer, match=r"no answer within 0\.3 s"):
        pool.post(silent_server, b"", {}, 0.3)
    assert 0.25 < time.monotonic() - started < 5


def test_a_fresh_connection_closed_without_an_answer_is_no_answer(pool):
    with scripted(lambda server: server.read_request()) as (url, _), \
            pytest.raises(NoAnswer, match="closed without an answer"):
        pool.post(url, b"", {}, 5.0)


def test_only_http_urls(pool):
    with pytest.raises(ValueError, match="http"):
        pool.post("file:///etc/passwd", b"", {}, 1.0)
