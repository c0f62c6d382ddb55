"""Install and run Knative Eventing (and the Serving stand-in) on a running localkube."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localknative import manifests
from localkube import Cluster, network, polling, procs
from localkube import objects as objects_module
from localkube.kubeconfig import token_kubeconfig, write_private
from localkube.options import DEFAULT_BIN_DIR, REPO_ROOT

log = logging.getLogger("localknative")

BUILD_COMMAND = "make controlplane knative-crds"
DEFAULT_CRDS_DIR = DEFAULT_BIN_DIR.parent / "knative-crds"
FIELD_MANAGER = "localknative"
TOKEN_SECONDS = 7 * 24 * 3600
API_TIMEOUT = 10
START_TIMEOUT = 180.0
WEBHOOK_CONFIGURATIONS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


class StartError(RuntimeError):
    """Knative did not come up; the message says what is missing or which log to read."""


@dataclass(frozen=True)
class Layout:
    """Where the local Knative of one cluster keeps its files (inside the cluster's)."""

    cluster_dir: Path

    @property
    def root(self) -> Path:
        return self.cluster_dir / "knative"

    def kubeconfig(self, pod: str) -> Path:
        return self.root / "kubeconfigs" / f"{pod}.kubeconfig"

    def log_file(self, name: str) -> Path:
        return self.cluster_dir / "logs" / f"knative-{name}.log"

    def pid_file(self, name: str) -> Path:
        # localkube.stop stops every add-on recorded here.
        return self.cluster_dir / "run" / "addons" / f"knative-{name}.pid"


@dataclass(frozen=True)
class Knative:
    cluster: Cluster
    pods: tuple[str, ...]

    @staticmethod
    def broker_url(namespace: str, name: str) -> str:
        """The cluster address of an MT channel-based Broker (what its status reports)."""
        return (f"http://broker-ingress.{manifests.SYSTEM_NAMESPACE}.svc."
                f"{network.CLUSTER_DOMAIN}/{namespace}/{name}")


def eventing_dir(bin_dir: Path) -> Path:
    return bin_dir / "eventing"


def missing(bin_dir: Path, crds_dir: Path) -> list[str]:
    """What `make controlplane knative-crds` has not built yet."""
    wanted = [eventing_dir(bin_dir) / b for b in manifests.COMPONENTS.values()]
    wanted += [eventing_dir(bin_dir) / "config", crds_dir / "VERSIONS",
               crds_dir / "serving-podspecable-bindings-clusterrole.yaml"]
    return [str(path) for path in wanted if not path.exists()]


def serving_release(crds_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The objects of one kind from Knative Serving's release files of the pinned version
    (the knative-crds cache): its CRDs, and its podspecable-binding ClusterRole, which the
    cluster's aggregation hands to Eventing's SinkBinding reconciler (it patches Services)."""
    return [doc for path in sorted(crds_dir.glob("serving-*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
            if doc and doc.get("kind") == kind]


def apply(api: client.ApiClient, objects: Iterable[dict[str, Any]]) -> None:
    objects_module.apply(api, objects, FIELD_MANAGER)


def wait_for(what: str, check: Callable[[], bool], deadline: float,
             alive: Callable[[], str | None] = lambda: None) -> None:
    polling.until(what, check, deadline, dead=alive, tolerate=(ApiException,),
                  error=StartError)


def _crds_established(api: client.ApiClient, names: list[str]) -> bool:
    ext = client.ApiextensionsV1Api(api)
    for name in names:
        crd = ext.read_custom_resource_definition(name, _request_timeout=API_TIMEOUT)
        if not any(c.type == "Established" and c.status == "True"
                   for c in (crd.status.conditions or [])):
            return False
    return True


def _remove_webhook_configurations(api: client.ApiClient, docs: list[dict[str, Any]]) -> None:
    """A restart begins as a fresh install does: no webhook registered while none runs."""
    admission = client.AdmissionregistrationV1Api(api)
    for doc in docs:
        delete = {"MutatingWebhookConfiguration":
                  admission.delete_mutating_webhook_configuration,
                  "ValidatingWebhookConfiguration":
                  admission.delete_validating_webhook_configuration}.get(doc["kind"])
        if delete is None:
            continue
        try:
            delete(doc["metadata"]["name"], _request_timeout=API_TIMEOUT)
        except ApiException as err:
            if err.status != 404:
                raise


def _token(api: client.ApiClient, namespace: str, account: str) -> str:
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"expirationSeconds": TOKEN_SECONDS}}
    answer = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, request, _request_timeout=API_TIMEOUT)
    return answer.status.token


def _webhooks_serving(api: client.ApiClient) -> bool:
    """The eventing webhook has registered itself (CA bundle set) and answers: a
    server-side dry-run of a Broker passes its defaulting and validation."""
    admission = client.AdmissionregistrationV1Api(api)
    hook = admission.read_mutating_webhook_configuration("webhook.eventing.knative.dev",
                                                         _request_timeout=API_TIMEOUT)
    if not all(w.client_config.ca_bundle for w in hook.webhooks or []):
        return False
    broker = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
              "metadata": {"name": "localknative-probe", "namespace": "default"}}
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "eventing.knative.dev", "v1", "default", "brokers", broker, dry_run="All",
        _request_timeout=API_TIMEOUT)
    return True


def _spawn(cluster: Cluster, layout: Layout, pod: manifests.Pod, bin_dir: Path,
           api: client.ApiClient, apiserver_port: int) -> None:
    kubeconfig = write_private(layout.kubeconfig(pod.name), token_kubeconfig(
        cluster.server, Path(cluster.ca_file).read_bytes(),
        f"{manifests.SYSTEM_NAMESPACE}:{pod.service_account}",
        _token(api, manifests.SYSTEM_NAMESPACE, pod.service_account)))
    env = pod.env | network.pod_env() | {
        "KUBECONFIG": str(kubeconfig),
        "CLUSTER_DOMAIN": network.CLUSTER_DOMAIN,
        "PATH": "/usr/bin:/bin",
        "HOME": str(layout.root),
    }
    argv = network.pod_argv(cluster.state_dir, pod.name, apiserver_port, pod.ports,
                            [str(eventing_dir(bin_dir) / pod.binary)])
    procs.spawn(argv, layout.log_file(pod.name), layout.pid_file(pod.name), env=env,
                cwd=layout.root)


def start(cluster: Cluster, bin_dir: Path = DEFAULT_BIN_DIR,
          crds_dir: Path = DEFAULT_CRDS_DIR, timeout: float = START_TIMEOUT,
          features: Mapping[str, str] = manifests.FEATURES) -> Knative:
    """Install Knative Eventing's release manifests (with the feature flags `features` in
    config-features: OIDC on by default, as `make up` sets it) and run its components, plus
    the Serving stand-in; returns once the webhooks answer. Already running: returned as it
    is."""
    absent = missing(bin_dir, crds_dir)
    if absent:
        raise StartError(f"Knative Eventing is not built ({', '.join(absent)}): "
                         f"run `{BUILD_COMMAND}`")
    deadline = time.monotonic() + timeout
    layout = Layout(cluster.state_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    names = (*manifests.START_ORDER, "serving")
    if all(procs.is_running(layout.pid_file(name)) for name in names):
        log.info("Knative Eventing already runs on this cluster")
        return Knative(cluster, tuple(manifests.START_ORDER))
    stop(cluster.state_dir)  # half running: start again from a clean slate
    docs = manifests.with_features(manifests.documents(eventing_dir(bin_dir) / "config"),
                                   features)
    webhook_configs = [d for d in docs if d["kind"] in WEBHOOK_CONFIGURATIONS]
    rest = [d for d in docs if d["kind"] not in WEBHOOK_CONFIGURATIONS]
    crds = serving_release(crds_dir, "CustomResourceDefinition") + [
        d for d in rest if d["kind"] == "CustomResourceDefinition"]
    api = cluster.api_client()
    try:
        _remove_webhook_configurations(api, webhook_configs)
        apply(api, crds)
        wait_for("the Knative CRDs", lambda: _crds_established(
            api, [d["metadata"]["name"] for d in crds]), deadline)
        apply(api, serving_release(crds_dir, "ClusterRole")
              + [d for d in rest if d["kind"] != "CustomResourceDefinition"])
        apiserver_port = int(cluster.server.rsplit(":", 1)[1])
        deployments = manifests.deployments(docs)
        maps = manifests.config_maps(docs)
        pods = {name: manifests.pod(deployments[name], maps) for name in manifests.START_ORDER}
        for route, ports in manifests.service_routes(rest, pods, deployments).items():
            network.publish(cluster.state_dir, *route, {
                port: network.unix_backend(network.Sockets(cluster.state_dir).pod_port(*target))
                for port, target in ports.items()})
        for name in manifests.START_ORDER:
            _spawn(cluster, layout, pods[name], bin_dir, api, apiserver_port)
        procs.spawn([sys.executable, "-m", "localknative", "serving",
                     "--kubeconfig", cluster.kubeconfig], layout.log_file("serving"),
                    layout.pid_file("serving"), env=_python_env(), cwd=layout.root)

        def dead() -> str | None:
            for name in (*manifests.START_ORDER, "serving"):
                if not procs.is_running(layout.pid_file(name)):
                    return f"{name} (log {layout.log_file(name)})"
            return None

        apply(api, webhook_configs)
        wait_for("the eventing webhook", lambda: _webhooks_serving(api), deadline, dead)
    except BaseException:
        stop(cluster.state_dir)
        raise
    finally:
        api.close()
    log.info("Knative Eventing is running (%s)", ", ".join(manifests.START_ORDER))
    return Knative(cluster, tuple(manifests.START_ORDER))


def _python_env() -> dict[str, str]:
    import os

    hack = str(REPO_ROOT / "hack")
    return dict(os.environ) | {"PYTHONPATH": hack, "PYTHONUNBUFFERED": "1"}


def stop(cluster_dir: Path) -> list[str]:
    """Stop the Knative processes of the cluster in cluster_dir; returns what ran."""
    layout = Layout(cluster_dir)
    directory = layout.pid_file("x").parent
    stopped = []
    for pid_file in sorted(directory.glob("knative-*.pid")) if directory.is_dir() else []:
        if procs.stop(pid_file):
            stopped.append(pid_file.stem)
    return stopped
