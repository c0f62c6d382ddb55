"""Which of Knative Eventing's own manifests (its release `config/`) a local install applies,
and how each of its Deployments becomes a local process: pure functions over YAML data.

The manifests are used as the release ships them. What is left out: the Deployments of
components this platform does not use (job sink, ping source, request-reply), the
HorizontalPodAutoscalers and PodDisruptionBudgets (nothing scales here), and the editor
backup files some release archives carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SYSTEM_NAMESPACE = "knative-eventing"
# The parts of config/ a channel-based broker on the in-memory channel needs.
PARTS = ("core", "channels/in-memory-channel", "brokers/mt-channel-broker")
# Deployment name -> the binary built from knative.dev/eventing/cmd/... (build.sh).
COMPONENTS = {
    "eventing-controller": "controller",
    "eventing-webhook": "webhook",
    "imc-controller": "channel_controller",
    "imc-dispatcher": "channel_dispatcher",
    "mt-broker-controller": "mtchannel_broker",
    "mt-broker-ingress": "ingress",
    "mt-broker-filter": "filter",
}
SKIPPED_KINDS = frozenset({"HorizontalPodAutoscaler", "PodDisruptionBudget"})
SKIPPED_WORKLOADS = frozenset({"job-sink", "pingsource-mt-adapter", "request-reply"})
# Webhooks first among the components: every other write of an eventing object passes them.
START_ORDER = ("eventing-webhook", "imc-controller", "eventing-controller", "imc-dispatcher",
               "mt-broker-controller", "mt-broker-ingress", "mt-broker-filter")

Doc = dict[str, Any]

FEATURES_CONFIG_MAP = "config-features"
# What `make up` turns on too: senders prove who they are with an OIDC token (ServiceAccount
# tokens of the API server), Brokers enforce EventPolicies, Triggers deliver with a token.
FEATURES = {"authentication-oidc": "enabled"}


def release_files(config_dir: Path) -> list[Path]:
    """The release's YAML files of PARTS, in the order its docs apply them (path order)."""
    files: list[Path] = []
    for part in PARTS:
        files += sorted(p for p in (config_dir / part).rglob("*.yaml") if "~" not in p.name)
    return files


def _selected(doc: Doc) -> bool:
    kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
    if kind in SKIPPED_KINDS:
        return False
    return not (kind in ("Deployment", "StatefulSet", "Service", "Secret")
                and any(name == w or str(name).startswith(w) for w in SKIPPED_WORKLOADS))


def documents(config_dir: Path) -> list[Doc]:
    """Every object to apply, CRDs and Namespaces first, then the rest in file order."""
    docs = [doc for path in release_files(config_dir)
            for doc in yaml.safe_load_all(path.read_text()) if doc and _selected(doc)]
    first = [d for d in docs if d["kind"] in ("Namespace", "CustomResourceDefinition")]
    return first + [d for d in docs if d["kind"] not in ("Namespace", "CustomResourceDefinition")]


def with_features(docs: Iterable[Doc], features: Mapping[str, str]) -> list[Doc]:
    """The release's objects with Eventing's feature flags (config-features) set."""
    changed = []
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == FEATURES_CONFIG_MAP:
            doc = {**doc, "data": {**(doc.get("data") or {}), **features}}
        changed.append(doc)
    return changed


def deployments(docs: Iterable[Doc]) -> dict[str, Doc]:
    """The Deployments of the components that run locally, by name."""
    return {d["metadata"]["name"]: d for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"] in COMPONENTS}


def config_maps(docs: Iterable[Doc]) -> dict[str, Mapping[str, str]]:
    return {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}


@dataclass(frozen=True)
class Pod:
    """One component as a local process: what it runs, as whom, with which env and ports."""

    name: str
    binary: str
    service_account: str
    env: dict[str, str]
    ports: tuple[int, ...]
    labels: Mapping[str, str]


def _field(path: str, pod_name: str, namespace: str) -> str:
    values = {"metadata.namespace": namespace, "metadata.name": pod_name}
    if path not in values:
        raise ValueError(f"unsupported fieldRef {path}")
    return values[path]


def container_env(container: Mapping[str, Any], pod_name: str, namespace: str,
                  maps: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The container's env as the kubelet resolves it (downward API and ConfigMap keys).

    A ConfigMap key the release does not ship (the image lists of integrations this
    platform never starts) becomes a named placeholder, since the controller only checks
    that the variable is set.
    """
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = str(var.get("value", ""))
        elif "fieldRef" in source:
            env[var["name"]] = _field(source["fieldRef"]["fieldPath"], pod_name, namespace)
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            value = (maps.get(ref["name"]) or {}).get(ref["key"])
            env[var["name"]] = value if value is not None else (
                f"unavailable.local/{ref['name']}/{ref['key']}")
        elif "resourceFieldRef" in source:
            continue
        else:
            raise ValueError(f"unsupported env source for {var['name']}: {sorted(source)}")
    return env


def pod(deployment: Doc, maps: Mapping[str, Mapping[str, str]]) -> Pod:
    """The local process of one component's Deployment."""
    name = deployment["metadata"]["name"]
    namespace = deployment["metadata"].get("namespace", SYSTEM_NAMESPACE)
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]
    pod_name = f"{name}-local"
    return Pod(
        name=name,
        binary=COMPONENTS[name],
        service_account=template["spec"].get("serviceAccountName", "default"),
        env=container_env(container, pod_name, namespace, maps),
        ports=tuple(int(p["containerPort"]) for p in container.get("ports") or []),
        labels=template["metadata"].get("labels") or {},
    )


def _target_port(port: Mapping[str, Any], container_ports: Mapping[str, int]) -> int:
    target = port.get("targetPort", port["port"])
    return int(target) if str(target).isdigit() else container_ports[str(target)]


def service_routes(docs: Iterable[Doc], pods: Mapping[str, Pod],
                   deployments_by_name: Mapping[str, Doc]) -> dict[tuple[str, str],
                                                                  dict[int, tuple[str, int]]]:
    """(namespace, Service) -> {service port: (pod, pod port)} for the Services whose
    selector picks a local pod: what kube-proxy would send where."""
    routes: dict[tuple[str, str], dict[int, tuple[str, int]]] = {}
    for doc in docs:
        selector = (doc.get("spec") or {}).get("selector") if doc["kind"] == "Service" else None
        if not selector:
            continue
        for name, local in pods.items():
            if all(local.labels.get(k) == v for k, v in selector.items()):
                container = deployments_by_name[name]["spec"]["template"]["spec"]["containers"][0]
                named = {p["name"]: int(p["containerPort"])
                         for p in container.get("ports") or [] if p.get("name")}
                key = (doc["metadata"].get("namespace", SYSTEM_NAMESPACE), doc["metadata"]["name"])
                routes[key] = {int(p["port"]): (name, _target_port(p, named))
                               for p in doc["spec"]["ports"]}
                break
    return routes
