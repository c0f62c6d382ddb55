"""The Kubernetes API client, built once from configuration."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from storeplatform.errors import ApiError


def api_client(kubeconfig: str | None) -> client.ApiClient:
    """A client from an explicit kubeconfig, else the in-cluster ServiceAccount."""
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    # One retry of a failed connection; read only when the pool is made, so set it first.
    configuration.retries = 1
    return client.ApiClient(configuration)


class Clients:
    """Typed API groups sharing one ApiClient and one request timeout.

    timeout is a (connect, read) pair: the client silently ignores a float _request_timeout
    (it takes an int or a 2-tuple), so a bare 10.0 meant no timeout at all.
    """

    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.networking = client.NetworkingV1Api(api)
        self.timeout = (timeout, timeout)


def is_status(err: Exception, *codes: int) -> bool:
    """True when err is an API error with one of the given HTTP status codes."""
    return isinstance(err, ApiException) and err.status in codes


def clients_from(settings: Mapping[str, Any]) -> Clients:
    """Clients from the KUBECONFIG and KUBE_TIMEOUT settings of a function."""
    timeout = float(settings["KUBE_TIMEOUT"])
    return Clients(api_client(settings["KUBECONFIG"] or None), timeout)


def api_errors(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run call, turning Kubernetes API failures into answers the Broker acts on.

    Unreachable, overloaded or failing API server: 503 (the Broker retries). A refusal by
    RBAC is a deployment error: 500 naming what was refused, so an operator can fix it.
    """
    try:
        return call(*args, **kwargs)
    except ApiException as err:
        if err.status == 403:
            raise ApiError(500, "kubernetes_forbidden",
                           f"the function's ServiceAccount was refused: {_reason(err)}") from err
        if err.status in (429,) or (err.status or 0) >= 500:
            raise ApiError(503, "kubernetes_unavailable",
                           f"Kubernetes API answered {err.status}; retry", retryable=True) from err
        raise
    except TransportError as err:
        raise ApiError(503, "kubernetes_unavailable", "Kubernetes API is unreachable; retry",
                       retryable=True) from err


def _reason(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except ValueError:
        return str(err.reason)
