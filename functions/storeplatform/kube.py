"""The Kubernetes API as the few idempotent verbs the platform uses.

One ApiClient, one request timeout bound here for every call, raw JSON in and out, and the
one place where API statuses become outcomes (404 on a read: None; 409 on a create: kept)
or a PlatformError the HTTP layer maps to an answer the Broker acts on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError as TransportError

from storeplatform import metrics
from storeplatform.errors import Kind, PlatformError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Settings of every function that talks to Kubernetes (read by connect).
CONNECTION_SETTINGS: dict[str, Any] = {"KUBECONFIG": "", "KUBE_TIMEOUT": 10.0}

# kind -> (API group, noun of the client's methods, namespaced?)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("core", "namespace", False),
    "Secret": ("core", "secret", True),
    "Pod": ("core", "pod", True),
    "Event": ("core", "event", True),
    "Job": ("batch", "job", True),
    "RoleBinding": ("rbac", "role_binding", True),
    "Deployment": ("apps", "deployment", True),
    "Ingress": ("networking", "ingress", True),
    "ServiceAccount": ("core", "service_account", True),
    "ConfigMap": ("core", "config_map", True),
}


# Objects per page of a list call (client-go's informers use the same).
LIST_PAGE = 500


# The code of a call refused because the object changed (or went) since it was read.
CONFLICT = "kubernetes_conflict"


class Expired(Exception):
    """410 Gone: the resource version a watch or a paged list continued from is compacted
    away; only a new list can say what stands now."""


@dataclass(frozen=True)
class Selection:
    """Which objects of one kind a list or a watch covers (namespace None: all of them)."""

    kind: str
    namespace: str | None = None
    labels: str | None = None
    fields: str | None = None

    def options(self) -> dict[str, str]:
        return {key: value for key, value in
                (("label_selector", self.labels), ("field_selector", self.fields)) if value}


class Watch:
    """One open watch: its events as (type, object), ADDED, MODIFIED, DELETED or BOOKMARK;
    close() from another thread ends it."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[tuple[str, Obj]]:
        try:
            for line in iter_resp_lines(self._response):
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired(obj.get("message") or "resource version too old")
                    raise _unavailable(f"watch ended with an error: {obj.get('message')}")
                yield kind, obj
        except (TransportError, OSError, ValueError) as err:
            self._response.close()
            raise _unavailable(f"watch connection broke ({err})") from err
        except BaseException:
            self._response.close()
            raise
        self._response.release_conn()  # read to its end: the connection can serve again

    def close(self) -> None:
        """Wake the reader: its socket is shut for reading, so it sees the stream end."""
        try:
            self._response.shutdown()
        except (ValueError, OSError):  # not connected (yet, or any more)
            self._response.close()


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


def connect(settings: Mapping[str, Any]) -> Kube:
    """The verbs for a function's KUBECONFIG and KUBE_TIMEOUT settings."""
    return Kube(api_client(settings["KUBECONFIG"] or None), float(settings["KUBE_TIMEOUT"]))


class Kube:
    """Idempotent verbs over one ApiClient; every call carries the same timeout."""

    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self._apis = {"core": client.CoreV1Api(api), "batch": client.BatchV1Api(api),
                      "apps": client.AppsV1Api(api), "rbac": client.RbacAuthorizationV1Api(api),
                      "networking": client.NetworkingV1Api(api)}
        # (connect, read) seconds: the client silently ignores a float (it takes int or tuple).
        self._timeout = (timeout, timeout)

    def create_or_keep(self, obj: Mapping[str, Any]) -> Obj | None:
        """Create obj; None when one of its name stands already (an earlier delivery made it)."""
        return self._call("create", obj["kind"], obj["metadata"].get("namespace"), obj=obj,
                          tolerate=(409,))

    def create_or_replace(self, obj: Mapping[str, Any]) -> None:
        """Make obj stand exactly as given: create it, or replace the one of its name."""
        if self.create_or_keep(obj) is None:
            meta = obj["metadata"]
            self._call("replace", obj["kind"], meta.get("namespace"), meta["name"], obj=obj)

    def replace(self, obj: Mapping[str, Any]) -> Obj:
        """Replace obj; with metadata.resourceVersion set, only if it is still that version
        (a concurrent change: RETRY_LATER, the next delivery reads it anew)."""
        meta = obj["metadata"]
        return self._call("replace", obj["kind"], meta.get("namespace"), meta["name"], obj=obj)

    def get_json(self, path: str) -> Any:
        """GET a non-resource path of the API server (OIDC discovery, its key set)."""
        api = self._apis["core"].api_client
        try:
            response = api.call_api(path, "GET", auth_settings=["BearerToken"],
                                    _preload_content=False, _request_timeout=self._timeout)
        except ApiException as err:
            raise _api_error(err, f"GET {path}") from err
        except TransportError as err:
            raise _unavailable("Kubernetes API is unreachable; retry") from err
        return json.loads(response[0].data)

    def read_or_none(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None when there is none of that name."""
        return self._call("read", kind, namespace, name, tolerate=(404,))

    def delete_if_present(self, kind: str, name: str, namespace: str | None = None,
                          uid: str | None = None, resource_version: str | None = None) -> bool:
        """Delete the object and, in the background, what it owns; gone already is fine.
        True when this call deleted it.

        With uid, only that very object: a newer one of the same name (409) is left alone.
        With resource_version, only if unchanged since read: a changed one (409) is left alone.
        """
        options: Obj = {"propagationPolicy": "Background"}
        preconditions = {key: value for key, value in
                         (("uid", uid), ("resourceVersion", resource_version)) if value}
        if preconditions:
            options["preconditions"] = preconditions
        return self._call("delete", kind, namespace, name, body=options,
                          tolerate=(404, 409) if preconditions else (404,)) is not None

    def delete_exactly(self, kind: str, name: str, namespace: str, uid: str) -> bool:
        """Delete that very object (uid); True only for the one call that deleted it, so
        of two concurrent callers exactly one wins (a read-once hand-over)."""
        options: Obj = {"preconditions": {"uid": uid}}
        return self._call("delete", kind, namespace, name, body=options,
                          tolerate=(404, 409)) is not None

    def patch(self, kind: str, name: str, patch: Mapping[str, Any] | list[Obj],
              namespace: str | None = None) -> None:
        """A strategic merge patch of the object (maps merge; a null value removes a key);
        a list is a JSON patch (RFC 6902), whose failed `test` is refused (422)."""
        self._call("patch", kind, namespace, name, obj=patch)

    def list_items(self, kind: str, namespace: str | None = None, *, labels: str | None = None,
                   fields: str | None = None) -> list[Obj]:
        """The raw JSON items of one list call (one namespace, or all of them)."""
        selectors = {key: value for key, value in
                     (("label_selector", labels), ("field_selector", fields)) if value}
        return self._call("list", kind, namespace, **selectors)["items"]

    def list_versioned(self, selection: Selection) -> tuple[list[Obj], str]:
        """Every object of the selection (read in pages) and the resource version to watch
        from. Expired when the list changed too much between two pages."""
        items: list[Obj] = []
        token = None
        while True:
            paging = {"limit": LIST_PAGE} | ({"_continue": token} if token else {})
            page = self._call("list", selection.kind, selection.namespace, tolerate=(410,),
                              **selection.options(), **paging)
            if page is None:
                raise Expired(f"list of {selection.kind} expired between pages")
            items += page.get("items") or []
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    def watch(self, selection: Selection, resource_version: str, seconds: int) -> Watch:
        """Changes of the selection after resource_version, for about `seconds` (the server
        then ends the watch), with bookmarks; Expired when that version is compacted away."""
        response = self._call(
            "list", selection.kind, selection.namespace, tolerate=(410,), stream=True,
            read_timeout=seconds + self._timeout[1], watch=True,
            resource_version=resource_version, allow_watch_bookmarks=True,
            timeout_seconds=seconds, **selection.options())
        if response is None:
            raise Expired(f"watch of {selection.kind} from {resource_version}: gone")
        return Watch(response)

    def _call(self, verb: str, kind: str, namespace: str | None, name: str | None = None, *,
              obj: Mapping[str, Any] | None = None, tolerate: tuple[int, ...] = (),
              stream: bool = False, read_timeout: float | None = None,
              **options: Any) -> Any:
        """One API call with the timeout: its JSON, or None for a tolerated status (stream:
        the open response, to read as it comes; read_timeout: a longer wait for each read)."""
        group, noun, namespaced = _KINDS[kind]
        if not namespaced:
            method, scope = f"{verb}_{noun}", ()
        elif namespace is None:  # only lists span namespaces
            method, scope = f"{verb}_{noun}_for_all_namespaces", ()
        else:
            method, scope = f"{verb}_namespaced_{noun}", (namespace,)
        # The client's methods take ([name,] [namespace,] [body]) in that order.
        positional = [*([name] if name else []), *scope, *([obj] if obj is not None else [])]
        timeout = self._timeout if read_timeout is None else (self._timeout[0], read_timeout)
        try:
            response = getattr(self._apis[group], method)(
                *positional, _request_timeout=timeout, _preload_content=False, **options)
        except ApiException as err:
            if err.status in tolerate:
                return None
            metrics.kubernetes_error(verb, kind, err.status or 0)
            raise _api_error(err, f"{verb} {kind}") from err
        except TransportError as err:
            metrics.kubernetes_error(verb, kind, 0)
            raise _unavailable("Kubernetes API is unreachable; retry") from err
        if stream:
            return response
        return json.loads(response.data or b"null")


def _api_error(err: ApiException, what: str) -> PlatformError:
    """The PlatformError for a failed API call (the Broker retries RETRY_LATER and 5xx)."""
    status = err.status or 0
    if status == 0:  # TLS and other failures before any HTTP answer
        return _unavailable("Kubernetes API is unreachable; retry")
    if status == 403:
        # RBAC's or an admission policy's text (who, what, which namespace) is for the
        # operator's log; the answer goes as far as the dashboard's dead letters.
        log.warning("%s: Kubernetes API refused: %s", what, _reason(err))
        return PlatformError(Kind.MISCONFIGURED, "kubernetes_forbidden",
                             f"{what}: the function's ServiceAccount was refused by the "
                             "Kubernetes API; see the function's log")
    if status == 429 or status >= 500:
        return _unavailable(f"Kubernetes API answered {status}; retry")
    if status in (404, 409):  # the object changed under us; the next delivery sees it anew
        return PlatformError(Kind.RETRY_LATER, CONFLICT,
                             f"{what} answered {status} (changed meanwhile); retry")
    log.warning("%s: Kubernetes API answered %s %s", what, status, err.reason)
    return PlatformError(Kind.MISCONFIGURED, "kubernetes_rejected",
                         f"{what}: Kubernetes API answered {status}; see the function's log")


def _unavailable(message: str) -> PlatformError:
    return PlatformError(Kind.UPSTREAM_UNAVAILABLE, "kubernetes_unavailable", message)


def _reason(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except (ValueError, AttributeError):
        return str(err.reason)
