"""The stand-in for Knative Serving's control plane: what its controller writes into the
status of a `serving.knative.dev/v1` Service.

Knative Serving's data plane (revisions, the activator, queue-proxy, scale to zero) can't run
here: there is no pod runtime. The functions run as gunicorn processes that `make dev`
starts, reachable under the Service's cluster name through localkube's network. This fakes
only the status a Service would have once its first revision is ready: Ready (with
ConfigurationsReady and RoutesReady), the revision names and `status.address.url`, the
cluster-local address by which the real Eventing controllers resolve Trigger subscribers,
dead-letter sinks and SinkBinding subjects.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("localknative.serving")

GROUP, VERSION, PLURAL = "serving.knative.dev", "v1", "services"
CLUSTER_DOMAIN = "cluster.local"
WATCH_SECONDS = 30
API_TIMEOUT = 10


def address(service: dict[str, Any]) -> str:
    meta = service["metadata"]
    return f"http://{meta['name']}.{meta['namespace']}.svc.{CLUSTER_DOMAIN}"


def ready_status(service: dict[str, Any], now: str) -> dict[str, Any]:
    """The status Serving reports for a Service whose latest revision is ready."""
    generation = int(service["metadata"].get("generation") or 1)
    revision = f"{service['metadata']['name']}-{generation:05d}"
    conditions = [{"type": kind, "status": "True", "lastTransitionTime": now}
                  for kind in ("ConfigurationsReady", "Ready", "RoutesReady")]
    url = address(service)
    return {
        "observedGeneration": generation,
        "conditions": conditions,
        "latestCreatedRevisionName": revision,
        "latestReadyRevisionName": revision,
        "url": url,
        "address": {"url": url},
        "traffic": [{"revisionName": revision, "latestRevision": True, "percent": 100}],
    }


def needs_status(service: dict[str, Any]) -> bool:
    status = service.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    return not ready or status.get("observedGeneration") != service["metadata"].get("generation")


class Serving:
    """Marks every Knative Service Ready with its address, as soon as it is created or
    changed (no revision really starts)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    def reconcile(self, service: dict[str, Any]) -> None:
        if not needs_status(service):
            return
        meta = service["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"],
                {"status": ready_status(service, now)}, _request_timeout=API_TIMEOUT)
            log.info("Service %s/%s: Ready at %s", meta["namespace"], meta["name"],
                     address(service))
        except ApiException as err:
            if err.status != 404:
                log.warning("Service %s/%s: status not written: %s", meta["namespace"],
                            meta["name"], err.reason)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                listed = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL,
                                                                _request_timeout=API_TIMEOUT)
                for service in listed["items"]:
                    self.reconcile(service)
                stream = watch.Watch().stream(
                    self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                    resource_version=listed["metadata"]["resourceVersion"],
                    timeout_seconds=WATCH_SECONDS)
                for event in stream:
                    if stop.is_set():
                        break
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.reconcile(event["object"])
            except Exception as err:  # the API server restarting, a watch expiring
                log.warning("watch of Knative Services broke (%s); re-listing", err)
                stop.wait(1.0)
