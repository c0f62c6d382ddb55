"""Start, stop and describe one local cluster living in a state directory."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from localkube import components as comp
from localkube import network, pki, polling, procs
from localkube.bootstrap import bootstrap, node_name
from localkube.kubeconfig import cert_kubeconfig, write_private
from localkube.options import (
    BUILD_COMMAND,
    REPO_ROOT,
    ClusterOptions,
    missing_binaries,
    resolved_executor,
)

log = logging.getLogger("localkube")

# Start order; stop goes the other way.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
              "agents")
CHECK_TIMEOUT = 2.0
API_TIMEOUT = 5
LOG_TAIL_BYTES = 3000


class StartError(RuntimeError):
    """The cluster did not come up; the message names the component and its log."""


@dataclass(frozen=True)
class Cluster:
    """A running cluster: where its admin kubeconfig is and how to reach it."""

    state_dir: Path
    kubeconfig: str
    server: str
    nodes: tuple[str, ...]

    @property
    def ca_file(self) -> str:
        """The CA that signed the API server's certificate."""
        return str(comp.Layout(self.state_dir).pki / "ca.crt")

    def api_client(self) -> client.ApiClient:
        """A fresh client with the admin credentials."""
        return config.new_client_from_config(config_file=self.kubeconfig)

    def token_client(self, token: str) -> client.ApiClient:
        """A fresh client that authenticates with a bearer token only (e.g. TokenRequest)."""
        configuration = client.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = self.ca_file
        configuration.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(configuration)

    def stop(self) -> None:
        stop(self.state_dir)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the Go servers: connections of a just-stopped cluster in TIME_WAIT don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((comp.HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((comp.HOST, 0))
        return sock.getsockname()[1]


def choose_ports(previous: dict[str, int] | None, apiserver_port: int) -> comp.Ports:
    """The previous ports when all are free again (a restart keeps its etcd data and
    kubeconfig), else fresh free ones; a fixed apiserver port always wins."""
    if previous and all(_port_is_free(p) for p in previous.values()):
        ports = comp.Ports(**previous)
    else:
        chosen: set[int] = {apiserver_port}
        picks = []
        while len(picks) < 5:
            port = _free_port()
            if port not in chosen:
                chosen.add(port)
                picks.append(port)
        ports = comp.Ports(*picks)
    if apiserver_port:
        ports = comp.Ports(**(asdict(ports) | {"apiserver": apiserver_port}))
    return ports


def _read_cluster_file(layout: comp.Layout) -> dict[str, Any] | None:
    try:
        return json.loads(layout.cluster_file.read_text())
    except (OSError, ValueError):
        return None


def _log_tail(layout: comp.Layout, name: str) -> str:
    try:
        with layout.log_file(name).open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _wait_until(what: str, check: Callable[[], bool], layout: comp.Layout,
                watched: tuple[str, ...], deadline: float) -> None:
    """Polls check until it is true; fails fast when a watched process has died."""
    def dead() -> str | None:
        for name in watched:
            if not procs.is_running(layout.pid_file(name)):
                return f"{name} (log {layout.log_file(name)}:\n{_log_tail(layout, name)}\n)"
        return None

    polling.until(what, check, deadline, dead=dead, error=StartError,
                  tolerate=(OSError, ApiException, ValueError, ssl.SSLError),
                  hint=f"; logs in {layout.logs}")


def _http_ok(url: str, ca_file: Path | None = None) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT, context=context) as resp:  # noqa: S310
            return resp.status == 200
    except urllib.error.URLError:
        return False


def _node_ready(core: client.CoreV1Api, name: str) -> bool:
    node = core.read_node(name, _request_timeout=API_TIMEOUT)
    ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
    return ready and not node.spec.taints


def _default_service_account(core: client.CoreV1Api) -> bool:
    core.read_namespaced_service_account("default", "default", _request_timeout=API_TIMEOUT)
    return True


def _write_kubeconfigs(layout: comp.Layout, server: str) -> None:
    write_private(layout.admin_kubeconfig, cert_kubeconfig(server, layout.pki, "admin"))
    for name in ("controller-manager", "scheduler", "kwok", "agents"):
        write_private(layout.component_kubeconfig(name),
                      cert_kubeconfig(server, layout.pki, name))


def _agents_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT / "hack"), env.get("PYTHONPATH", "")) if p)
    return env


def component_status(state_dir: Path) -> dict[str, bool]:
    """Component name -> whether its process is alive."""
    layout = comp.Layout(state_dir.resolve())
    return {name: procs.is_running(layout.pid_file(name)) for name in COMPONENTS}


def is_running(state_dir: Path) -> bool:
    """True when every component of the cluster in state_dir is alive."""
    return all(component_status(state_dir).values())


def describe(state_dir: Path) -> Cluster:
    """The Cluster recorded in state_dir (whether or not it is running)."""
    layout = comp.Layout(state_dir.resolve())
    data = _read_cluster_file(layout)
    if data is None:
        raise StartError(f"no cluster in {state_dir}")
    return Cluster(layout.state_dir, str(layout.admin_kubeconfig), data["server"],
                   tuple(data["nodes"]))


def start(options: ClusterOptions) -> Cluster:
    """Starts the cluster in options.state_dir and waits until it is usable.

    Already running: returns it as it is. Half running: stops the rest and starts again.
    On failure every process started is stopped again and StartError says why.
    """
    missing = missing_binaries(options.bin_dir)
    if missing:
        raise StartError(f"control-plane binaries missing in {options.bin_dir}: "
                         f"{', '.join(missing)}; run `{BUILD_COMMAND}`")
    layout = comp.Layout(options.state_dir.resolve())
    if is_running(layout.state_dir):
        log.info("cluster in %s is already running", layout.state_dir)
        return describe(layout.state_dir)
    stop(layout.state_dir)
    started = time.monotonic()
    try:
        cluster = _start(options, layout)
    except BaseException:
        stop(layout.state_dir)
        raise
    log.info("cluster ready in %.1f s: KUBECONFIG=%s", time.monotonic() - started,
             cluster.kubeconfig)
    return cluster


def _start(options: ClusterOptions, layout: comp.Layout) -> Cluster:
    deadline = time.monotonic() + options.ready_timeout
    previous = _read_cluster_file(layout)
    previous_ports = previous["ports"] if previous else None
    ports = choose_ports(previous_ports, options.apiserver_port)
    if previous_ports and asdict(ports) != previous_ports:
        log.info("ports changed since the last start: starting with empty etcd data")
        shutil.rmtree(layout.etcd_data, ignore_errors=True)
    server = comp.server_url(ports)
    for directory in (layout.state_dir, layout.logs, layout.run, layout.pods, layout.volumes):
        directory.mkdir(parents=True, exist_ok=True)
    pki.ensure_pki(layout.pki)
    _write_kubeconfigs(layout, server)
    nodes = [node_name(i) for i in range(options.nodes)]
    layout.cluster_file.write_text(json.dumps({
        "server": server, "ports": asdict(ports), "nodes": nodes,
        "options": options.to_dict() | {"executor": asdict(resolved_executor(options))},
    }, indent=2))
    bin_dir = options.bin_dir

    def spawn(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        procs.spawn(argv, layout.log_file(name), layout.pid_file(name), env=env,
                    cwd=layout.state_dir)

    spawn("etcd", comp.etcd_argv(bin_dir, layout, ports))
    _wait_until("etcd health", lambda: _http_ok(f"http://{comp.HOST}:{ports.etcd_client}/health"),
                layout, ("etcd",), deadline)
    sockets = network.Sockets(layout.state_dir)
    sockets.dir.mkdir(parents=True, exist_ok=True)
    sockets.egress_config.write_text(network.egress_selector_config(sockets))
    spawn("kube-apiserver", comp.apiserver_argv(bin_dir, layout, ports, sockets.egress_config))
    _wait_until("kube-apiserver /readyz",
                lambda: _http_ok(f"{server}/readyz", layout.pki / "ca.crt"),
                layout, ("etcd", "kube-apiserver"), deadline)
    api = config.new_client_from_config(config_file=str(layout.admin_kubeconfig))
    with api:
        bootstrap(api, options.nodes)
        spawn("kube-controller-manager", comp.controller_manager_argv(bin_dir, layout, ports))
        spawn("kube-scheduler", comp.scheduler_argv(bin_dir, layout, ports))
        spawn("kwok", comp.kwok_argv(bin_dir, layout))
        spawn("agents", comp.agents_argv(sys.executable, layout), env=_agents_env())
        core = client.CoreV1Api(api)
        ca = layout.pki / "ca.crt"
        checks: list[tuple[str, Callable[[], bool]]] = [
            ("kube-controller-manager /healthz",
             lambda: _http_ok(f"https://{comp.HOST}:{ports.controller_manager}/healthz", ca)),
            ("kube-scheduler /healthz",
             lambda: _http_ok(f"https://{comp.HOST}:{ports.scheduler}/healthz", ca)),
            ("the default ServiceAccount", lambda: _default_service_account(core)),
            *((f"node {n} Ready without taints", lambda n=n: _node_ready(core, n)) for n in nodes),
        ]
        for what, check in checks:
            _wait_until(what, check, layout, COMPONENTS, deadline)
    return Cluster(layout.state_dir, str(layout.admin_kubeconfig), server, tuple(nodes))


def stop(state_dir: Path) -> list[str]:
    """Stops every component (agents first, etcd last) and any runner process left over.

    Returns the names of what was running.
    """
    layout = comp.Layout(state_dir.resolve())
    # Add-ons (localknative's processes) first: they talk to the API server to the end.
    addons = sorted((layout.run / "addons").glob("*.pid"))
    stopped = [pid_file.stem for pid_file in addons if procs.stop(pid_file)]
    stopped += [name for name in reversed(COMPONENTS) if procs.stop(layout.pid_file(name))]
    # The executor kills its runner processes on SIGTERM; these are only the ones a
    # SIGKILLed executor could not.
    if layout.pods.is_dir():
        for pid_file in layout.pods.glob("**/process.pid"):
            if procs.stop(pid_file, grace=2.0):
                stopped.append(f"runner {pid_file.parent.name}")
    for name in stopped:
        log.info("stopped %s", name)
    return stopped
