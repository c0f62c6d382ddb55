"""Kubeconfig files: client certificates for the components, a bound token for runner pods."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

CLUSTER_NAME = "localkube"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kubeconfig(server: str, ca_pem: bytes, user_name: str,
               user: dict[str, str]) -> dict[str, Any]:
    """A one-cluster, one-user kubeconfig with everything embedded."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME,
                      "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": CLUSTER_NAME,
                      "context": {"cluster": CLUSTER_NAME, "user": user_name}}],
        "current-context": CLUSTER_NAME,
    }


def cert_kubeconfig(server: str, pki: Path, identity: str) -> dict[str, Any]:
    """Authenticates with the client certificate <identity>.crt/.key from pki."""
    user = {"client-certificate-data": _b64((pki / f"{identity}.crt").read_bytes()),
            "client-key-data": _b64((pki / f"{identity}.key").read_bytes())}
    return kubeconfig(server, (pki / "ca.crt").read_bytes(), identity, user)


def token_kubeconfig(server: str, ca_pem: bytes, user_name: str, token: str) -> dict[str, Any]:
    """Authenticates with a bearer token only (what a pod's ServiceAccount mount gives)."""
    return kubeconfig(server, ca_pem, user_name, {"token": token} if token else {})


def write_private(path: Path, config: dict[str, Any]) -> Path:
    """Writes a kubeconfig readable by its owner only (it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)
    path.chmod(0o600)
    return path
