"""delete-store: stop a running create, then start the Job that uninstalls and removes a store.

Deleting a store that does not exist is a successful no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask, jsonify

from storeplatform import contract as c
from storeplatform import kube, resources
from storeplatform.app import configure, function_app
from storeplatform.errors import ApiError
from storeplatform.storeops import (
    RUNNER_SETTINGS,
    ensure_role_binding,
    find_job,
    keep_existing_job,
    read_namespace,
    remove_job,
    start_job,
)

log = logging.getLogger(__name__)

SETTINGS = RUNNER_SETTINGS


def deprovision(kc: kube.Clients, store: str, event_id: str,
                settings: Mapping[str, Any]) -> dict[str, Any]:
    """Everything delete-store does for one event; safe to repeat."""
    ns = settings["PLATFORM_NAMESPACE"]
    install = find_job(kc, ns, resources.job_name(resources.INSTALL, store))
    if install is not None:
        remove_job(kc, ns, install)  # stops a running create; its pod is killed
    namespace = read_namespace(kc, store)
    if namespace is None:
        return {"name": store, "deleted": False, "message": "store does not exist"}
    if (namespace.metadata.labels or {}).get(c.LABEL_STORE) != store:
        raise ApiError(422, "namespace_conflict",
                       f"namespace {store} exists and is not managed by the platform")
    kc.core.patch_namespace(store, {"metadata": {"annotations": {c.ANNOTATION_PHASE: "deleting"}}},
                            _request_timeout=kc.timeout)
    delete_name = resources.job_name(resources.DELETE, store)
    if keep_existing_job(kc, ns, delete_name, event_id):
        return {"name": store, "job": delete_name, "created": False}
    if namespace.status.phase != "Terminating":
        ensure_role_binding(kc, store, ns)
    start_job(kc, resources.runner_job(resources.DELETE, store, event_id, settings))
    return {"name": store, "job": delete_name, "created": True}


def create_app(overrides: Mapping[str, Any] | None = None,
               clients: kube.Clients | None = None) -> Flask:
    """The delete-store function (gunicorn 'storeplatform.delete_store:create_app()')."""
    settings, kc = configure(SETTINGS, overrides, clients)

    def handle(event: BaseCloudEvent):
        store, _ = c.parse_store_event(event.get_subject(), event.get_data(), check_engine=False)
        return jsonify(deprovision(kc, store, event.get_id(), settings)), 202

    return function_app("delete-store", (c.DELETE,), handle)
