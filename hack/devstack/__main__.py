"""`make dev`: the whole platform on 127.0.0.1, with no Docker and no cluster needed.

Starts the local control plane (with the job executor) and the real Knative Eventing on it
(hack/localknative), applies knative/ as `make up` does (devstack.deploy: Broker, Triggers,
delivery policy and dead-letter sink exactly as in the files), then runs the four functions
under gunicorn, each with a kubeconfig holding only its own ServiceAccount token, where the
Knative Services would run them (the Serving stand-in marks those Services Ready; localkube's
network routes their cluster names to these processes). Prints `name: url` per endpoint
(`broker:` is the real broker ingress, through a port-forward) and `token: <value>`, the
gateway's bearer token (GATEWAY_TOKEN, else a fresh random one), then `ready`. Eventing runs
with OIDC on: the gateway sends its ServiceAccount's tokens, the functions check the
Broker's.
Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

import localknative
import localkube
from devstack import bootstrap, deploy
from localkube import network, polling

log = logging.getLogger("devstack")

REPO_ROOT = Path(__file__).resolve().parents[2]
NS = "storeplatform"
RUNNER_IMAGE = "storeplatform/helm-runner:dev"
FUNCTIONS = ("create-store", "delete-store", "list-stores")
SERVICES = ("gateway", "broker", "create-store", "delete-store", "list-stores")
KNATIVE_SERVICES = ("gateway", *FUNCTIONS)
BROKER_AUDIENCE = f"eventing.knative.dev/broker/{NS}/default"
LIST_AUDIENCE = f"serving.knative.dev/service/{NS}/list-stores"


@dataclass
class Stack:
    state_dir: Path
    port_base: int
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    cluster_started: bool = False
    broker_path: str = ""
    # The gateway's bearer token: GATEWAY_TOKEN from the environment, else a fresh one.
    gateway_token: str = field(default_factory=lambda: os.environ.get("GATEWAY_TOKEN")
                               or secrets.token_urlsafe(24))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


def free_ports(count: int) -> list[int]:
    """Distinct free ports, all held open until every one is chosen."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class PortTaken(RuntimeError):
    """A port make dev needs is in use; the message says which and how to pick others."""


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_ports(ports: dict[str, int], base: int) -> None:
    """PortTaken naming the first port in use, its service, and the two ways to move."""
    taken = [(name, port) for name, port in ports.items() if not port_is_free(port)]
    if taken:
        name, port = taken[0]
        others = f" (and {', '.join(str(p) for _, p in taken[1:])})" if taken[1:] else ""
        suggestion = base + 1000 if base + 1000 + len(SERVICES) < 65536 else 20000
        raise PortTaken(
            f"port {port} ({name}) on 127.0.0.1 is already in use{others}: make dev needs "
            f"{len(SERVICES)} consecutive ports from {base}. Is another make dev running? "
            f"Pick other ports with DEV_PORT_BASE={suggestion} make dev, or "
            f"python -m devstack --port-base {suggestion} (0: any free ports)")


def choose_ports(base: int) -> dict[str, int]:
    """Consecutive ports from base (8080: gateway 8080 ... list-stores 8084); 0: any free."""
    ports = [base + i for i in range(len(SERVICES))] if base else free_ports(len(SERVICES))
    chosen = dict(zip(SERVICES, ports, strict=True))
    if base:
        check_ports(chosen, base)
    return chosen


def python_env(extra: dict[str, str]) -> dict[str, str]:
    pythonpath = os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT / "hack")])
    return os.environ | {"PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"} | extra


# Worker processes as knative/ gives each Service (two: metrics are merged across them).
WORKERS = {"gateway": 2, "create-store": 1, "delete-store": 1, "list-stores": 2}


def gunicorn_argv(app: str, port: int, workers: int = 1, threads: int = 4) -> list[str]:
    """gunicorn as knative/ runs it: JSON logs, metrics merged over the workers."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    return [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--timeout", "60", "--graceful-timeout", "5",
            "--config", "python:storeplatform.gunicorn_conf", app]


# The stand-in for wp-cli that admin-password resets run here (no WordPress runs locally).
WP_CLI_STANDIN = REPO_ROOT / "hack" / "devstack" / "wp-cli-standin"


def service_env(stack: Stack, kubeconfigs: dict[str, Path],
                sender_tokens: dict[str, Path] | None = None) -> dict[str, dict[str, str]]:
    """Each service's configuration, as the Knative Services in knative/ give it."""
    sink = stack.url("broker") + stack.broker_path
    runner = {"RUNNER_IMAGE": RUNNER_IMAGE, "K_SINK": sink, "PLATFORM_NAMESPACE": NS}
    tokens = sender_tokens or {}
    return {
        "gateway": {"K_SINK": sink, "LIST_URL": stack.url("list-stores"),
                    "DASHBOARD_DIR": str(REPO_ROOT / "dashboard"),
                    "GATEWAY_TOKEN": stack.gateway_token,
                    "BROKER_TOKEN_FILE": str(tokens.get("broker", "")),
                    "LIST_TOKEN_FILE": str(tokens.get("list-stores", ""))},
        "create-store": runner | {"KUBECONFIG": str(kubeconfigs["create-store"]),
                                  "RUNNER_CHART_PATH": str(REPO_ROOT / "store-chart"),
                                  "STORE_VALUES_PROFILE": "local",
                                  "RUNNER_WP_CLI": str(WP_CLI_STANDIN)},
        "delete-store": runner | {"KUBECONFIG": str(kubeconfigs["delete-store"])},
        "list-stores": {"KUBECONFIG": str(kubeconfigs["list-stores"]),
                        "PLATFORM_NAMESPACE": NS},
    }


APPS = {
    "gateway": "storeplatform.gateway:create_app()",
    "create-store": "storeplatform.create_store:create_app()",
    "delete-store": "storeplatform.delete_store:create_app()",
    "list-stores": "storeplatform.list_stores:create_app()",
}


def start_services(stack: Stack, kubeconfigs: dict[str, Path],
                   sender_tokens: dict[str, Path]) -> None:
    logs = stack.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name, env in service_env(stack, kubeconfigs, sender_tokens).items():
        out = (logs / f"{name}.log").open("ab")
        samples = stack.state_dir / "metrics" / name  # one directory per gunicorn server
        stack.procs[name] = subprocess.Popen(
            gunicorn_argv(APPS[name], stack.ports[name], WORKERS[name]),
            env=python_env(env | {"PROMETHEUS_MULTIPROC_DIR": str(samples)}), cwd=REPO_ROOT,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(stack: Stack, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for name in KNATIVE_SERVICES:
        url = stack.url(name) + "/health"

        def exited(name: str = name) -> str | None:
            return (f"{name} (see {stack.state_dir}/logs/{name}.log)"
                    if stack.procs[name].poll() is not None else None)

        polling.until(f"{name} at {url}", lambda url=url: _answers(url), deadline,
                      dead=exited, error=RuntimeError)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except OSError:
        return False


def stop_services(stack: Stack) -> None:
    for proc in stack.procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in stack.procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_cluster(stack: Stack) -> localkube.Cluster:
    """The local control plane with its job executor, and Knative on it."""
    stack.cluster_started = True  # stop whatever part of it started, even if start fails
    cluster = localkube.start(localkube.ClusterOptions(state_dir=stack.state_dir / "cluster"))
    localknative.start(cluster)
    return cluster


def injected_sink(api: client.ApiClient, service: str) -> str:
    """The K_SINK the SinkBinding webhook wrote into a Knative Service's container."""
    ksvc = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "serving.knative.dev", "v1", NS, "services", service, _request_timeout=10)
    env = ksvc["spec"]["template"]["spec"]["containers"][0].get("env") or []
    sink = next((e.get("value") for e in env if e["name"] == "K_SINK"), None)
    if not sink:
        raise RuntimeError(f"Knative Service {service} has no K_SINK: its SinkBinding did not "
                           "bind it (see the eventing-webhook log)")
    return sink


def forward_broker(stack: Stack, cluster: localkube.Cluster, sink: str) -> network.PortForward:
    """A loopback port for the broker ingress the SinkBindings point at (its real address)."""
    parsed = urllib.parse.urlsplit(sink)
    stack.broker_path = parsed.path
    return network.PortForward(cluster.state_dir, parsed.hostname or "", parsed.port or 80,
                               stack.ports["broker"])


def stop_cluster(stack: Stack) -> None:
    if stack.cluster_started:
        localkube.stop(stack.state_dir / "cluster")


def run(stack: Stack) -> network.PortForward:
    cluster = start_cluster(stack)
    kubeconfig = Path(cluster.kubeconfig)
    stack.ports = choose_ports(stack.port_base)  # after the cluster took its own free ports
    for name in KNATIVE_SERVICES:  # where Knative Serving would route them
        network.publish(cluster.state_dir, NS, name,
                        {0: network.tcp_backend(stack.ports[name])})
    api = config.new_client_from_config(config_file=str(kubeconfig))
    deploy.deploy(api)
    forward = forward_broker(stack, cluster, injected_sink(api, "gateway"))
    kubeconfigs = {fn: bootstrap.service_account_kubeconfig(
        api, kubeconfig, NS, f"storeplatform-{fn}", stack.state_dir / f"{fn}.kubeconfig")
        for fn in FUNCTIONS}
    # What the gateway's pod projects (knative/430-gateway.yaml): its own ServiceAccount's
    # tokens for the Broker and for list-stores, and nothing valid at the Kubernetes API.
    sender_tokens = {target: bootstrap.audience_token_file(
        api, NS, "storeplatform-gateway", audience,
        stack.state_dir / "tokens" / f"gateway-{target}")
        for target, audience in (("broker", BROKER_AUDIENCE), ("list-stores", LIST_AUDIENCE))}
    start_services(stack, kubeconfigs, sender_tokens)
    wait_healthy(stack)
    for name in SERVICES:
        suffix = stack.broker_path if name == "broker" else ""
        print(f"{name}: {stack.url(name)}{suffix}", flush=True)
    print(f"dashboard: {stack.url('gateway')}/", flush=True)
    for name in KNATIVE_SERVICES:  # Prometheus scrape targets, one per function
        print(f"metrics: {name} {stack.url(name)}/metrics", flush=True)
    print(f"kubeconfig: {kubeconfig}", flush=True)
    # A loopback-only development stack: its gateway token is printed for the developer
    # (and the tests) to use; `make up` never prints one, it says how to read it.
    print(f"token: {stack.gateway_token}", flush=True)
    print("ready", flush=True)
    return forward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".state" / "dev")
    parser.add_argument("--port-base", type=int,
                        default=int(os.environ.get("DEV_PORT_BASE", "8080")),
                        help="first of five consecutive ports (0: any free ports)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devstack: %(message)s", stream=sys.stderr)
    stack = Stack(args.state_dir.resolve(), args.port_base)
    if args.port_base:  # say so before the control plane starts, not after
        try:
            check_ports({n: args.port_base + i for i, n in enumerate(SERVICES)}, args.port_base)
        except PortTaken as err:
            log.error("%s", err)
            return 1
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        forward = run(stack)
        while not stopping:
            dead = [n for n, p in stack.procs.items() if p.poll() is not None]
            if dead:
                log.error("%s exited; stopping (logs in %s/logs)", ", ".join(dead),
                          stack.state_dir)
                return 1
            time.sleep(0.5)
        forward.close()
        return 0
    except Exception as err:
        log.error("%s", err)
        return 1
    finally:
        log.info("stopping")
        stop_services(stack)
        stop_cluster(stack)
        log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
