"""Keep-alive HTTP connections to the few receivers a service posts to (the Broker,
list-stores), and errors that say whether a request left: what the caller may promise.

Standard library only (http.client), so the gateway loads no HTTP library it does not use.
One pool per process, shared by its threads; an idle connection is taken by one thread at a
time and given back when its answer has been read in full.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

Connection = http.client.HTTPConnection
Origin = tuple[str, str, int]


class NotSent(Exception):
    """No connection could be opened, or the request could not be written: the receiver
    cannot have acted on it."""


class NoAnswer(Exception):
    """The request went out, but no answer came back (time out, or the connection closed):
    the receiver may have acted on it, or may still do so."""


class _Stale(Exception):
    """A kept-alive connection the receiver had closed meanwhile; try a fresh one."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def _origin(url: str) -> tuple[Origin, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"receiver URL must be http(s)://host...: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return (parts.scheme, parts.hostname, port), target


def _is_dropped(conn: Connection) -> bool:
    """An idle connection that is readable has been closed by its peer (or is out of step)."""
    if conn.sock is None:
        return True
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Pool:
    """Idle keep-alive connections per origin (scheme, host, port), newest first."""

    def __init__(self, max_idle_per_origin: int = 16) -> None:
        self._idle: dict[Origin, list[Connection]] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle_per_origin
        self._tls = ssl.create_default_context()

    def post(self, url: str, body: bytes, headers: Mapping[str, str],
             timeout: float) -> Answer:
        """POST and read the whole answer; NotSent or NoAnswer when there is none.

        `timeout` bounds opening the connection and each wait for the receiver.
        """
        origin, target = _origin(url)
        reused = self._take(origin)
        if reused is not None:
            try:
                return self._exchange(origin, reused, target, body, headers, timeout, True)
            except _Stale:
                pass  # it was closed while idle: nothing was read, send it on a fresh one
        fresh = self._open(origin, timeout)
        return self._exchange(origin, fresh, target, body, headers, timeout, False)

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(conns) for conns in self._idle.values())

    def _take(self, origin: Origin) -> Connection | None:
        while True:
            with self._lock:
                conns = self._idle.get(origin)
                conn = conns.pop() if conns else None
            if conn is None or not _is_dropped(conn):
                return conn
            conn.close()

    def _give_back(self, origin: Origin, conn: Connection) -> None:
        with self._lock:
            conns = self._idle.setdefault(origin, [])
            if len(conns) < self._max_idle:
                conns.append(conn)
                return
        conn.close()

    def _open(self, origin: Origin, timeout: float) -> Connection:
        scheme, host, port = origin
        conn: Connection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.connect()
        except OSError as err:  # refused, unreachable, no such host, TLS handshake, time out
            conn.close()
            raise NotSent(f"cannot connect to {host}:{port}: {err}") from err
        # http.client writes the head and the body apart: without this, Nagle's algorithm
        # holds the body back until the receiver acknowledges the head.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _exchange(self, origin: Origin, conn: Connection, target: str, body: bytes,
                  headers: Mapping[str, str], timeout: float, reused: bool) -> Answer:
        assert conn.sock is not None
        conn.sock.settimeout(timeout)
        try:
            conn.request("POST", target, body=body, headers=dict(headers))
        except OSError as err:  # the request was not written whole: it cannot be acted on
            conn.close()
            if reused:
                raise _Stale from err
            raise NotSent(f"cannot send to {origin[1]}:{origin[2]}: {err}") from err
        try:
            response = conn.getresponse()
            data = response.read()
        except TimeoutError as err:
            conn.close()
            raise NoAnswer(f"no answer within {timeout:g} s") from err
        except (http.client.RemoteDisconnected, ConnectionResetError) as err:
            conn.close()
            if reused:  # closed while idle, before it read the request (or it would answer)
                raise _Stale from err
            raise NoAnswer(f"connection closed without an answer: {err}") from err
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise NoAnswer(f"no usable answer: {err}") from err
        if response.will_close:
            conn.close()
        else:
            self._give_back(origin, conn)
        return Answer(response.status, data, dict(response.getheaders()))
