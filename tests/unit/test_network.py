"""localkube.network: Service names and ClusterIPs routed to local backends, over real
sockets on 127.0.0.1 and Unix sockets (no cluster needed)."""

from __future__ import annotations

import http.client
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from localkube import network

SERVICES = [
    {"metadata": {"namespace": "knative-eventing", "name": "eventing-webhook"},
     "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10"}},
    {"metadata": {"namespace": "shop", "name": "chan-kn-channel"},
     "spec": {"type": "ExternalName",
              "externalName": "dispatcher.knative-eventing.svc.cluster.local"}},
    {"metadata": {"namespace": "shop", "name": "nobody"},
     "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.11"}},
]


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = f"{self.path} {self.headers.get('Host')} {body.decode()}".encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Backend", "echo")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def backend(tmp_path) -> Iterator[Path]:
    path = tmp_path / "b.sock"
    server = UnixHTTP(str(path), type("E", (Echo,), {"address_string": lambda self: "x"}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path
    server.shutdown()
    server.server_close()


@pytest.fixture
def net(tmp_path, backend) -> Iterator[network.Network]:
    state = tmp_path / "state"
    network.publish(state, "knative-eventing", "dispatcher", {80: network.unix_backend(backend)})
    network.publish(state, "knative-eventing", "eventing-webhook",
                    {443: network.unix_backend(backend)})
    stop = threading.Event()
    net = network.Network(state, 1, lambda: SERVICES)
    thread = threading.Thread(target=net.run, args=(stop,), daemon=True)
    thread.start()
    net.state_dir = state
    yield net
    stop.set()
    thread.join(5)


def proxy_connection(net: network.Network) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(str(net.sockets.proxy))
    return sock


@pytest.mark.parametrize(("host", "expected"), [
    ("broker-ingress.knative-eventing.svc.cluster.local", ("knative-eventing", "broker-ingress")),
    ("broker-ingress.knative-eventing.svc", ("knative-eventing", "broker-ingress")),
    ("broker-ingress.knative-eventing", None),
    ("Create-Store.StorePlatform.svc.cluster.local.", ("storeplatform", "create-store")),
    ("example.com", None),
    ("a.b.c.svc.cluster.local", None),
    ("localhost", None),
])
def test_service_names_as_cluster_dns_reads_them(host, expected):
    assert network.service_of_host(host) == expected


def test_routes_externalname_and_clusterip_resolve_to_local_backends(tmp_path):
    state = tmp_path / "s"
    network.publish(state, "knative-eventing", "dispatcher", {80: "unix:/d.sock"})
    network.publish(state, "knative-eventing", "eventing-webhook", {443: "unix:/w.sock"})
    network.publish(state, "storeplatform", "gateway", {0: network.tcp_backend(8080)})
    router = network.Router(state, lambda: SERVICES)
    assert router.backend("dispatcher.knative-eventing.svc.cluster.local", 80) == "unix:/d.sock"
    assert router.backend("chan-kn-channel.shop.svc.cluster.local", 80) == "unix:/d.sock"
    assert router.backend("10.96.0.10", 443) == "unix:/w.sock"
    assert router.backend("gateway.storeplatform.svc", 1234) == "tcp:127.0.0.1:8080"
    with pytest.raises(network.NoRoute, match="no local process serves Service shop/nobody"):
        router.backend("10.96.0.11", 80)
    with pytest.raises(network.NoRoute, match="no Service has ClusterIP"):
        router.backend("10.96.9.9", 443)
    with pytest.raises(network.NoRoute, match="no local backend for port 81"):
        router.backend("dispatcher.knative-eventing.svc", 81)
    network.withdraw(state, "storeplatform", "gateway")
    with pytest.raises(network.NoRoute, match="no Service storeplatform/gateway"):
        router.backend("gateway.storeplatform.svc", 80)


def test_only_loopback_tcp_backends_are_ever_dialled():
    with pytest.raises(network.NoRoute, match="only loopback"):
        network.connect("tcp:10.0.0.1:80")


def test_proxy_forwards_absolute_uri_requests_on_one_kept_alive_connection(net):
    sock = proxy_connection(net)
    for n in range(3):
        body = f"event-{n}".encode()
        sock.sendall(b"POST http://dispatcher.knative-eventing.svc.cluster.local/ns/ch HTTP/1.1\r\n"
                     b"Host: dispatcher.knative-eventing.svc.cluster.local\r\n"
                     b"Proxy-Connection: keep-alive\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 201
        assert response.getheader("X-Backend") == "echo"
        assert response.read() == (b"/ns/ch dispatcher.knative-eventing.svc.cluster.local "
                                   + body)
    sock.close()


def test_proxy_takes_chunked_bodies(net):
    sock = proxy_connection(net)
    sock.sendall(b"POST http://dispatcher.knative-eventing.svc.cluster.local/x HTTP/1.1\r\n"
                 b"Host: dispatcher.knative-eventing.svc.cluster.local\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.read().endswith(b"hello world")


def test_proxy_answers_502_naming_what_has_no_route(net):
    sock = proxy_connection(net)
    sock.sendall(b"POST http://missing.shop.svc.cluster.local/ HTTP/1.1\r\n"
                 b"Host: missing.shop.svc.cluster.local\r\nContent-Length: 0\r\n\r\n")
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 502
    assert b"no Service shop/missing" in response.read()


def egress_connect(net, target: bytes) -> socket.socket:
    """A CONNECT to target on the egress socket, as the API server's egress selector sends."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(str(net.sockets.egress))
    sock.sendall(b"CONNECT " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def test_connect_to_a_cluster_ip_tunnels_to_the_service_backend(net):
    """What the API server does for a webhook (egress selector, HTTP CONNECT over UDS)."""
    sock = egress_connect(net, b"10.96.0.10:443")
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    sock.sendall(b"POST /validate HTTP/1.1\r\nHost: eventing-webhook.knative-eventing.svc\r\n"
                 b"Content-Length: 2\r\n\r\nok")
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.read() == b"/validate eventing-webhook.knative-eventing.svc ok"


def test_connect_without_a_route_is_refused(net):
    sock = egress_connect(net, b"10.96.0.11:443")
    assert sock.recv(1024).startswith(b"HTTP/1.1 503")


def test_port_forward_gives_a_service_a_loopback_port(net):
    forward = network.PortForward(net.state_dir, "dispatcher.knative-eventing.svc", 80)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", forward.port, timeout=5)
        conn.request("POST", "/ns/broker", body=b"hi")
        response = conn.getresponse()
        assert (response.status, response.read()) == (201, b"/ns/broker 127.0.0.1:%d hi"
                                                      % forward.port)
    finally:
        forward.close()


def test_the_egress_selector_config_names_the_unix_socket(tmp_path):
    sockets = network.Sockets(tmp_path)
    text = network.egress_selector_config(sockets)
    assert "proxyProtocol: HTTPConnect" in text
    assert f"udsName: {sockets.egress}" in text
    assert "name: cluster" in text


def test_long_state_dirs_get_a_short_socket_directory(tmp_path):
    deep = tmp_path / ("d" * 90)
    sockets = network.Sockets(deep)
    assert len(str(sockets.pod_port("mt-broker-controller", 8080))) < 108
    assert network.Sockets(deep).dir == sockets.dir  # stable for the same state dir


def test_pod_argv_runs_the_program_in_its_own_network_namespace(tmp_path):
    argv = network.pod_argv(tmp_path, "filter", 6443, (8080, 9092), ["/bin/filter"])
    assert argv[:2] == ["unshare", "--net"]
    assert argv[argv.index("--") + 1:] == ["/bin/filter"]
    assert f"8080={network.Sockets(tmp_path).pod_port('filter', 8080)}" in argv
    assert f"6443={network.Sockets(tmp_path).apiserver}" in argv
    assert network.pod_env()["HTTP_PROXY"] == "http://127.0.0.1:3128"


POD_PROGRAM = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "4"); self.end_headers()
        self.wfile.write(b"pong")
http.server.HTTPServer(("127.0.0.1", 8080), H).serve_forever()
"""


def test_a_pod_listens_on_8080_in_its_own_namespace_and_is_reached_by_its_socket(tmp_path):
    """Two pods on :8080 side by side, each reached through its exposed Unix socket."""
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import unavailable

    if os.geteuid() != 0 and not Path("/proc/sys/kernel/unprivileged_userns_clone").exists():
        unavailable("unshare --net needs root or user namespaces")
    pods = []
    try:
        for name in ("one", "two"):
            argv = network.pod_argv(tmp_path, name, 1, (8080,), [sys.executable, "-c",
                                                                POD_PROGRAM])
            pods.append(subprocess.Popen(argv, env=os.environ | network.pod_env()))
        for name in ("one", "two"):
            path = network.Sockets(tmp_path).pod_port(name, 8080)
            deadline = time.monotonic() + 10
            while True:
                try:
                    sock = network.connect(network.unix_backend(path))
                    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    reply = b""
                    while chunk := sock.recv(1024):
                        reply += chunk
                    if reply.endswith(b"pong"):
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"pod {name} never answered"
                time.sleep(0.1)
    finally:
        for pod in pods:
            pod.terminate()
            pod.wait(10)


def test_idle_connections_the_backend_closed_are_never_an_error(tmp_path):
    """Go servers close idle keep-alive connections: every stale pooled one is skipped."""
    import concurrent.futures

    path = tmp_path / "closing.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)

    def answer_once_then_close():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_serve_once, args=(conn,), daemon=True).start()

    threading.Thread(target=answer_once_then_close, daemon=True).start()
    state = tmp_path / "s"
    network.publish(state, "ns", "closing", {80: network.unix_backend(path)})
    stop = threading.Event()
    net = network.Network(state, 1, list)
    threading.Thread(target=net.run, args=(stop,), daemon=True).start()

    def request(_n: int) -> int:
        sock = proxy_connection(net)
        sock.sendall(b"POST http://closing.ns.svc.cluster.local/ HTTP/1.1\r\n"
                     b"Host: closing.ns.svc.cluster.local\r\nContent-Length: 2\r\n\r\nhi")
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        sock.close()
        return response.status

    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert list(pool.map(request, range(4))) == [200] * 4  # 4 pooled, now stale
        assert [request(n) for n in range(3)] == [200] * 3
    finally:
        stop.set()
        server.close()


def _serve_once(conn: socket.socket) -> None:
    """Answer one request as HTTP/1.1 (no `Connection: close`), then close."""
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(1024)
        time.sleep(0.05)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_a_pod_resolves_the_api_server_to_its_own_loopback_with_its_own_hosts_file(tmp_path):
    """Each pod gets the /etc/hosts a kubelet writes, in its own mount namespace: this
    machine's /etc/hosts is never touched."""
    import os
    import subprocess
    import sys

    from tests.conftest import unavailable

    if os.geteuid() != 0 and not Path("/proc/sys/kernel/unprivileged_userns_clone").exists():
        unavailable("unshare --net --mount needs root or user namespaces")
    before = Path("/etc/hosts").read_text()
    probe = ("import socket; print(socket.gethostbyname('kubernetes.default.svc'), "
             "socket.gethostbyname('kubernetes.default.svc.cluster.local'))")
    argv = network.pod_argv(tmp_path, "resolver", 1, (), [sys.executable, "-c", probe])
    assert argv[:3] == ["unshare", "--net", "--mount"]
    out = subprocess.run(argv, env=os.environ | network.pod_env(), capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert out.split() == ["127.0.0.1", "127.0.0.1"]
    assert Path("/etc/hosts").read_text() == before
    assert f"443={network.Sockets(tmp_path).apiserver}" in argv
