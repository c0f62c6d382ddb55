"""Bootstrap the platform's own Kubernetes objects on a cluster without Knative.

`make dev` and the integration tests apply exactly the namespace, ServiceAccounts, RBAC,
admission policies (with their parameter ConfigMap) and NetworkPolicies from knative/ (the
Knative kinds there need a Knative data plane and are skipped), then give each function a
kubeconfig holding only its own ServiceAccount's token, so the RBAC and the policies in
knative/ are what the functions really run with.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from localkube import objects as localkube_objects
from localkube.kubeconfig import token_kubeconfig, write_private

REPO_ROOT = Path(__file__).resolve().parents[2]
KNATIVE_DIR = REPO_ROOT / "knative"
PLATFORM_KINDS = frozenset({"Namespace", "ServiceAccount", "ClusterRole", "Role",
                            "ClusterRoleBinding", "RoleBinding", "ConfigMap",
                            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                            "NetworkPolicy"})
FIELD_MANAGER = "storeplatform-devstack"


def platform_objects(knative_dir: Path = KNATIVE_DIR) -> list[dict[str, Any]]:
    """Namespace, ServiceAccounts and RBAC from the manifests, in apply order."""
    objects = []
    for path in sorted(knative_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in PLATFORM_KINDS:
                objects.append(doc)
    return objects


def apply(api: client.ApiClient, objects: Iterable[dict[str, Any]]) -> None:
    """Server-side apply, so a rerun on a running cluster converges instead of failing."""
    localkube_objects.apply(api, objects, FIELD_MANAGER)


def cluster_endpoint(admin_kubeconfig: Path) -> tuple[str, bytes]:
    """The API server URL and CA certificate from the admin kubeconfig."""
    config = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    return cluster["server"], base64.b64decode(cluster["certificate-authority-data"])


def service_account_token(api: client.ApiClient, namespace: str, name: str,
                          seconds: int) -> str:
    """A TokenRequest token for the ServiceAccount (what a pod would have mounted)."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"expirationSeconds": seconds}}
    answer = client.CoreV1Api(api).create_namespaced_service_account_token(
        name, namespace, request, _request_timeout=10)
    return answer.status.token


def audience_token_file(api: client.ApiClient, namespace: str, name: str, audience: str,
                        path: Path, seconds: int = 24 * 3600) -> Path:
    """Write a token of namespace/name for one audience (what a projected serviceAccountToken
    volume holds), mode 0600."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"audiences": [audience], "expirationSeconds": seconds}}
    answer = client.CoreV1Api(api).create_namespaced_service_account_token(
        name, namespace, request, _request_timeout=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(answer.status.token)
    return path


def service_account_kubeconfig(api: client.ApiClient, admin_kubeconfig: Path, namespace: str,
                               name: str, path: Path, seconds: int = 24 * 3600) -> Path:
    """Write a kubeconfig that authenticates as namespace/name and nothing more."""
    server, ca = cluster_endpoint(admin_kubeconfig)
    token = service_account_token(api, namespace, name, seconds)
    return write_private(path, token_kubeconfig(server, ca, f"{namespace}:{name}", token))
