"""create-store: make a store's namespace, credentials and runner access, then start its Helm Job.

Idempotent under at-least-once delivery: every step tolerates "already exists", the Secret is
never regenerated, and the Job has a deterministic name so a duplicate event finds it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask, jsonify

from storeplatform import contract as c
from storeplatform import kube, resources
from storeplatform.app import configure, function_app
from storeplatform.errors import ApiError
from storeplatform.status import job_state
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

SETTINGS = RUNNER_SETTINGS | {
    "RUNNER_CHART_PATH": "/opt/store-chart",
    "STORE_VALUES_PROFILE": "local",
    "STORE_BASE_DOMAIN": "",
}


def ensure_namespace(kc: kube.Clients, store: str, engine: str) -> None:
    """Create the namespace, or accept the one an earlier delivery created."""
    existing = read_namespace(kc, store)
    if existing is not None:
        labels = existing.metadata.labels or {}
        if labels.get(c.LABEL_STORE) != store:
            raise ApiError(422, "namespace_conflict",
                           f"namespace {store} exists and is not managed by the platform")
        deleting = (existing.status.phase == "Terminating"
                    or (existing.metadata.annotations or {}).get(c.ANNOTATION_PHASE) == "deleting")
        if deleting:
            raise ApiError(503, "store_deleting",
                           f"store {store} is being deleted; retry when it is gone",
                           retryable=True)
        return
    body = resources.namespace(store, engine, datetime.now(UTC))
    try:
        kc.core.create_namespace(body, _request_timeout=kc.timeout)
    except Exception as err:
        if not kube.is_status(err, 409):
            raise


def ensure_credentials(kc: kube.Clients, store: str) -> None:
    """Create the credentials Secret once; an existing one is kept as it is."""
    try:
        kc.core.create_namespaced_secret(store, resources.credentials_secret(store),
                                         _request_timeout=kc.timeout)
    except Exception as err:
        if not kube.is_status(err, 409):
            raise


def ensure_values(kc: kube.Clients, store: str, engine: str,
                  settings: Mapping[str, Any]) -> None:
    """Write the Helm values Secret the runner reads by reference."""
    ns = settings["PLATFORM_NAMESPACE"]
    body = resources.values_secret(store, engine, settings["STORE_BASE_DOMAIN"] or None, ns)
    try:
        kc.core.create_namespaced_secret(ns, body, _request_timeout=kc.timeout)
    except Exception as err:
        if not kube.is_status(err, 409):
            raise
        kc.core.replace_namespaced_secret(body["metadata"]["name"], ns, body,
                                          _request_timeout=kc.timeout)


def provision(kc: kube.Clients, store: str, engine: str, event_id: str,
              settings: Mapping[str, Any]) -> dict[str, Any]:
    """Everything create-store does for one event; safe to repeat."""
    ns = settings["PLATFORM_NAMESPACE"]
    delete_job = find_job(kc, ns, resources.job_name(resources.DELETE, store))
    if delete_job is not None and job_state(delete_job) == "running":
        raise ApiError(503, "store_deleting",
                       f"store {store} is being deleted; retry when it is gone", retryable=True)
    ensure_namespace(kc, store, engine)
    if delete_job is not None:
        remove_job(kc, ns, delete_job)  # finished delete of an earlier store of this name
    ensure_credentials(kc, store)
    ensure_role_binding(kc, store, ns)
    install_name = resources.job_name(resources.INSTALL, store)
    if keep_existing_job(kc, ns, install_name, event_id):
        return {"name": store, "job": install_name, "created": False}
    ensure_values(kc, store, engine, settings)
    start_job(kc, resources.runner_job(resources.INSTALL, store, event_id, settings),
              values_secret=resources.values_secret_name(store))
    return {"name": store, "job": install_name, "created": True}


def create_app(overrides: Mapping[str, Any] | None = None,
               clients: kube.Clients | None = None) -> Flask:
    """The create-store function (gunicorn 'storeplatform.create_store:create_app()')."""
    settings, kc = configure(SETTINGS, overrides, clients)

    def handle(event: BaseCloudEvent):
        store, engine = c.parse_store_event(event.get_subject(), event.get_data())
        result = provision(kc, store, engine, event.get_id(), settings)
        return jsonify(result), 202

    return function_app("create-store", (c.CREATE,), handle)
