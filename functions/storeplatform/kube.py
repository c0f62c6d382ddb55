"""The Kubernetes API client, built once from configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException


def api_client(kubeconfig: str | None, timeout: float) -> client.ApiClient:
    """A client from an explicit kubeconfig, else the in-cluster ServiceAccount."""
    if kubeconfig:
        api = config.new_client_from_config(config_file=kubeconfig)
    else:
        config.load_incluster_config()
        api = client.ApiClient()
    api.configuration.retries = 1
    api.timeout = timeout  # read by Clients below as _request_timeout
    return api


class Clients:
    """Typed API groups sharing one ApiClient and one request timeout."""

    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.networking = client.NetworkingV1Api(api)
        self.timeout = timeout


def is_status(err: Exception, *codes: int) -> bool:
    """True when err is an API error with one of the given HTTP status codes."""
    return isinstance(err, ApiException) and err.status in codes


def clients_from(settings: Mapping[str, Any]) -> Clients:
    """Clients from the KUBECONFIG and KUBE_TIMEOUT settings of a function."""
    timeout = float(settings["KUBE_TIMEOUT"])
    return Clients(api_client(settings["KUBECONFIG"] or None, timeout), timeout)
