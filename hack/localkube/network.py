"""The cluster network of a local cluster: what cluster DNS, kube-proxy and the pod network
do on a real cluster, for Services backed by processes on this machine.

A stand-in, and only that: nothing here exists on a real cluster. It fakes three things:

* Service names and ClusterIPs. A request for `http://<svc>.<ns>.svc.cluster.local/...`
  (sent to the HTTP proxy, which processes get as HTTP_PROXY) or a CONNECT to a Service's
  ClusterIP (which the API server sends for webhooks, through its egress selector) is routed
  to the local process that serves that Service. ExternalName Services are followed the way
  cluster DNS follows their CNAME. The routes live in `<network dir>/routes.json`, written by
  whoever starts the processes (`publish`).
* Pod network namespaces. `pod_argv` runs a program in a network namespace of its own
  (`unshare --net`), so programs that all listen on :8080 can run side by side as pods do.
  Inside, `localkube.podnet` makes the API server and this proxy reachable on 127.0.0.1 and
  exposes the pod's ports as Unix sockets, which routes point at.
* `kubectl port-forward`: `PortForward` gives a Service a loopback port on this machine.

Every connection it makes goes to 127.0.0.1 or to a Unix socket. A ClusterIP is only ever
looked up in the API, never dialled.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

log = logging.getLogger("localkube.network")

CLUSTER_DOMAIN = "cluster.local"
PROXY_PORT_IN_POD = 3128
SERVICE_CACHE_SECONDS = 2.0
BACKEND_TIMEOUT = 330.0  # longer than any delivery timeout a Trigger may set
CONNECT_TIMEOUT = 5.0
MAX_UNIX_PATH = 100  # sockaddr_un holds 108 bytes
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding",
                        "upgrade", "content-length"})


class NoRoute(LookupError):
    """No local process serves what was asked for; the message says what is missing."""


def network_dir(state_dir: Path) -> Path:
    """Where a cluster keeps its sockets and routes: `<state>/net`, or a short directory
    under /tmp when that path is too long for Unix socket names."""
    preferred = state_dir.resolve() / "net"
    if len(str(preferred)) + 40 <= MAX_UNIX_PATH:
        return preferred
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return Path("/tmp") / f"localkube-{digest}"  # noqa: S108 (a private socket directory)


class Sockets:
    """The socket and file names of one cluster's network."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = network_dir(state_dir)
        self.routes = self.dir / "routes.json"
        self.proxy = self.dir / "proxy.sock"          # HTTP proxy for pods
        self.egress = self.dir / "egress.sock"        # the API server's CONNECT
        self.apiserver = self.dir / "apiserver.sock"  # pods -> kube-apiserver
        self.egress_config = self.dir / "egress-selector.yaml"

    def pod_port(self, pod: str, port: int) -> Path:
        return self.dir / "pods" / f"{pod}-{port}.sock"


def egress_selector_config(sockets: Sockets) -> str:
    """The API server's EgressSelectorConfiguration: cluster traffic (webhooks, services)
    goes through this network's CONNECT proxy on a Unix socket."""
    return (
        "apiVersion: apiserver.k8s.io/v1beta1\n"
        "kind: EgressSelectorConfiguration\n"
        "egressSelections:\n"
        "  - name: cluster\n"
        "    connection:\n"
        "      proxyProtocol: HTTPConnect\n"
        "      transport:\n"
        "        uds:\n"
        f"          udsName: {sockets.egress}\n"
    )


# ---------------------------------------------------------------- routes


def unix_backend(path: Path) -> str:
    return f"unix:{path}"


def tcp_backend(port: int) -> str:
    return f"tcp:127.0.0.1:{port}"


def _locked_routes(sockets: Sockets, change: Callable[[dict[str, Any]], None]) -> None:
    sockets.dir.mkdir(parents=True, exist_ok=True)
    with (sockets.dir / "routes.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            routes = json.loads(sockets.routes.read_text())
        except (OSError, ValueError):
            routes = {}
        change(routes)
        tmp = sockets.routes.with_suffix(".tmp")
        tmp.write_text(json.dumps(routes, indent=1, sort_keys=True))
        tmp.replace(sockets.routes)


def publish(state_dir: Path, namespace: str, name: str, ports: Mapping[int, str]) -> None:
    """Route Service namespace/name: service port -> backend (unix:PATH or tcp:127.0.0.1:N).
    Port 0 is the fallback for any port."""
    key = f"{namespace}/{name}"

    def change(routes: dict[str, Any]) -> None:
        routes[key] = {str(port): backend for port, backend in ports.items()}

    _locked_routes(Sockets(state_dir), change)


def withdraw(state_dir: Path, namespace: str, name: str) -> None:
    """Remove a Service's routes (its processes are gone)."""
    _locked_routes(Sockets(state_dir), lambda routes: routes.pop(f"{namespace}/{name}", None))


def service_of_host(host: str) -> tuple[str, str] | None:
    """(namespace, name) from `<svc>.<ns>.svc` or `<svc>.<ns>.svc.<cluster domain>`."""
    labels = host.rstrip(".").lower().split(".")
    domain = CLUSTER_DOMAIN.split(".")
    if labels[-len(domain):] == domain:
        labels = labels[:-len(domain)]
    if len(labels) != 3 or labels[2] != "svc" or not all(labels):
        return None
    return labels[1], labels[0]


class Router:
    """Finds the local backend of a host and port, the way a pod's connection would land."""

    def __init__(self, state_dir: Path, services: Callable[[], list[dict[str, Any]]] | None
                 ) -> None:
        self.sockets = Sockets(state_dir)
        self.list_services = services
        self._routes: dict[str, dict[str, str]] = {}
        self._routes_mtime = -1.0
        self._services: list[dict[str, Any]] = []
        self._services_at = 0.0
        self._lock = threading.Lock()

    def routes(self) -> dict[str, dict[str, str]]:
        with self._lock:
            try:
                mtime = self.sockets.routes.stat().st_mtime
            except OSError:
                return {}
            if mtime != self._routes_mtime:
                with contextlib.suppress(OSError, ValueError):
                    self._routes = json.loads(self.sockets.routes.read_text())
                    self._routes_mtime = mtime
            return self._routes

    def services(self) -> list[dict[str, Any]]:
        if self.list_services is None:
            return []
        with self._lock:
            if time.monotonic() - self._services_at > SERVICE_CACHE_SECONDS:
                self._services = self.list_services()
                self._services_at = time.monotonic()
            return self._services

    def _service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((s for s in self.services() if s["metadata"]["namespace"] == namespace
                     and s["metadata"]["name"] == name), None)

    def backend(self, host: str, port: int, depth: int = 0) -> str:
        """The backend for host:port, or NoRoute saying why there is none."""
        if depth > 3:
            raise NoRoute(f"ExternalName chain too long at {host}")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None:
            service = next((s for s in self.services()
                            if (s.get("spec") or {}).get("clusterIP") == str(ip)), None)
            if service is None:
                raise NoRoute(f"no Service has ClusterIP {ip}")
            key = (service["metadata"]["namespace"], service["metadata"]["name"])
        else:
            key = service_of_host(host)
            if key is None:
                raise NoRoute(f"{host} is not a Service name (<svc>.<ns>.svc[.{CLUSTER_DOMAIN}])")
        namespace, name = key
        ports = self.routes().get(f"{namespace}/{name}")
        if ports:
            backend = ports.get(str(port)) or ports.get("0")
            if backend:
                return backend
            raise NoRoute(f"Service {namespace}/{name} has no local backend for port {port}")
        service = self._service(namespace, name)
        spec = (service or {}).get("spec") or {}
        if spec.get("type") == "ExternalName" and spec.get("externalName"):
            return self.backend(spec["externalName"], port, depth + 1)
        if service is None:
            raise NoRoute(f"no Service {namespace}/{name}")
        raise NoRoute(f"no local process serves Service {namespace}/{name}")


def connect(backend: str, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A connected socket to a backend: a Unix socket path or a loopback TCP port."""
    kind, _, address = backend.partition(":")
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
    elif kind == "tcp":
        host, _, port = address.rpartition(":")
        if host != "127.0.0.1":
            raise NoRoute(f"refusing to dial {address}: only loopback backends are allowed")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    else:
        raise NoRoute(f"bad backend {backend!r}")
    sock.settimeout(None)
    return sock


def splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both sides are done, then close both."""

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=pump, args=(b, a), daemon=True)
    other.start()
    pump(a, b)
    other.join()
    for sock in (a, b):
        with contextlib.suppress(OSError):
            sock.close()


# ---------------------------------------------------------------- HTTP proxy


class _BackendConnection(http.client.HTTPConnection):
    """An HTTP connection to a backend string (unix:PATH or tcp:127.0.0.1:PORT)."""

    def __init__(self, backend: str) -> None:
        super().__init__("localhost", timeout=BACKEND_TIMEOUT)
        self.backend = backend

    def connect(self) -> None:
        self.sock = connect(self.backend)
        self.sock.settimeout(BACKEND_TIMEOUT)


class _Pool:
    """Idle keep-alive connections per backend."""

    def __init__(self) -> None:
        self._idle: dict[str, list[_BackendConnection]] = {}
        self._lock = threading.Lock()

    def get(self, backend: str) -> tuple[_BackendConnection, bool]:
        with self._lock:
            idle = self._idle.get(backend)
            if idle:
                return idle.pop(), True
        return _BackendConnection(backend), False

    def put(self, conn: _BackendConnection) -> None:
        with self._lock:
            self._idle.setdefault(conn.backend, []).append(conn)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        parts = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class ProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy: absolute-URI requests and CONNECT, routed by Router."""

    protocol_version = "HTTP/1.1"
    router: Router
    pool: _Pool

    def address_string(self) -> str:  # Unix-socket clients have no address
        return "pod"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _refuse(self, status: int, message: str) -> None:
        log.warning("%s %s: %s", self.command, self.path, message)
        body = f"localkube network: {message}\n".encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        try:
            upstream = connect(self.router.backend(host.strip("[]"), int(port)))
        except (NoRoute, OSError, ValueError) as err:
            self._refuse(503, str(err))
            self.close_connection = True
            return
        self.send_response_only(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        splice(self.connection, upstream)

    def _forward(self) -> None:
        if not self.path.startswith("http://"):
            self._refuse(400, f"not a proxy request: {self.path}")
            return
        target = self.path[len("http://"):]
        hostport, slash, rest = target.partition("/")
        host, _, port = hostport.partition(":")
        body = _read_body(self)
        try:
            backend = self.router.backend(host, int(port or 80))
        except (NoRoute, ValueError) as err:
            self._refuse(502, str(err))
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        try:
            response, data = self._exchange(backend, slash + rest, headers, body)
        except (OSError, http.client.HTTPException, NoRoute) as err:
            self._refuse(502, f"{hostport} ({backend}): {err}")
            return
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _exchange(self, backend: str, path: str, headers: dict[str, str],
                  body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        while True:
            conn, reused = self.pool.get(backend)
            try:
                conn.request(self.command, path or "/", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                conn.close()
                if reused:  # the backend closed this idle connection: try the next one
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if response.will_close:
                conn.close()
            else:
                self.pool.put(conn)
            return response, data

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _unix_server(path: Path, handler: type[socketserver.BaseRequestHandler]) -> _UnixServer:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    server = _UnixServer(str(path), handler)
    os.chmod(path, 0o600)
    return server


def relay_handler(backend: Callable[[], str]) -> type[socketserver.BaseRequestHandler]:
    """A handler that splices each connection to backend()."""

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                upstream = connect(backend())
            except (NoRoute, OSError) as err:
                log.warning("relay: %s", err)
                return
            splice(self.request, upstream)

    return Relay


class Network:
    """The network servers of one cluster (run by the agents process)."""

    def __init__(self, state_dir: Path, apiserver_port: int,
                 services: Callable[[], list[dict[str, Any]]]) -> None:
        self.sockets = Sockets(state_dir)
        handler = type("Proxy", (ProxyHandler,), {"router": Router(state_dir, services),
                                                  "pool": _Pool()})
        self.servers = [
            _unix_server(self.sockets.proxy, handler),
            _unix_server(self.sockets.egress, handler),
            _unix_server(self.sockets.apiserver,
                         relay_handler(lambda: tcp_backend(apiserver_port))),
        ]

    def run(self, stop: threading.Event) -> None:
        threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1},
                                    daemon=True) for s in self.servers]
        for thread in threads:
            thread.start()
        stop.wait()
        for server in self.servers:
            server.shutdown()
            server.server_close()


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class PortForward:
    """A loopback port on this machine that leads to a Service (`kubectl port-forward`)."""

    def __init__(self, state_dir: Path, host: str, port: int, local_port: int = 0) -> None:
        router = Router(state_dir, None)
        self.server = _TCPServer(("127.0.0.1", local_port),
                                 relay_handler(lambda: router.backend(host, port)))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# The names a pod resolves without DNS: the API server's Service (what in-cluster clients
# and Knative's OIDC discovery dial, on port 443) points at the pod's own loopback, where
# localkube.podnet relays it to the API server.
APISERVER_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   f"kubernetes.default.svc.{CLUSTER_DOMAIN}")
APISERVER_SERVICE_PORT = 443


def pod_hosts(pod: str) -> str:
    """The /etc/hosts of a pod, as the kubelet writes one per pod (plus the API server)."""
    return (f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.0.1\t{pod}\n"
            f"127.0.0.1\t{' '.join(APISERVER_NAMES)}\n")


def pod_argv(state_dir: Path, pod: str, apiserver_port: int, expose: tuple[int, ...],
             argv: list[str]) -> list[str]:
    """argv run as a pod: in its own network and mount namespace, with the API server on
    127.0.0.1:<apiserver_port> and on kubernetes.default.svc:443 (its own /etc/hosts) and
    the HTTP proxy on 127.0.0.1:3128 inside it, and each port in expose reachable from
    outside as the Unix socket Sockets.pod_port(pod, port)."""
    sockets = Sockets(state_dir)
    hosts = sockets.dir / "pods" / f"{pod}.hosts"
    hosts.parent.mkdir(parents=True, exist_ok=True)
    hosts.write_text(pod_hosts(pod))
    # The mount namespace only serves the pod's own /etc/hosts (a bind mount that never
    # reaches this machine's /etc/hosts: unshare makes its mounts private).
    unshare = ["unshare", "--net", "--mount"] + ([] if os.geteuid() == 0
                                                 else ["--map-root-user"])
    shim = [sys.executable, "-m", "localkube.podnet", "--hosts", str(hosts),
            "--inward", f"{apiserver_port}={sockets.apiserver}",
            "--inward", f"{APISERVER_SERVICE_PORT}={sockets.apiserver}",
            "--inward", f"{PROXY_PORT_IN_POD}={sockets.proxy}"]
    for port in expose:
        shim += ["--expose", f"{port}={sockets.pod_port(pod, port)}"]
    return [*unshare, *shim, "--", *argv]


def pod_env() -> dict[str, str]:
    """The environment pod_argv needs: the shim's module path and, for the program, the
    cluster's HTTP proxy (loopback itself is never proxied)."""
    proxy = f"http://127.0.0.1:{PROXY_PORT_IN_POD}"
    return {"PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            "HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}
