"""Prometheus metrics of every service (`GET /metrics`), with the official client.

gunicorn runs several worker processes per service, and a scrape reaches one of them, so the
client's multiprocess mode is used (its documented way for gunicorn): with
PROMETHEUS_MULTIPROC_DIR set before the client is imported (storeplatform.gunicorn_conf sets
it and clears it at start-up, and tells the client when a worker exits), each worker writes
its samples to files in that directory and `/metrics` merges them on every scrape. Without
the variable (tests, one process) the default registry is served.

What is counted where (docs/operations.md says what to alert on):
  events received, by type and outcome ........ every CloudEvent function (app.function_app)
  events published / HTTP requests ............. the gateway
  provisioning and deletion durations ......... list-stores, from the runner's lifecycle events
  stores by status ............................. list-stores, from the list it derives
  dead letters ................................. list-stores' dead-letter sink
  Kubernetes API errors ........................ every function's Kubernetes verbs (kube.py)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds, from the request to the outcome: a few seconds locally, minutes on a cluster
# (image pulls, WordPress's first boot), up to the Job deadline (20 minutes).
DURATION_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800)
STATUSES = ("provisioning", "ready", "failed", "deleting")

EVENTS_RECEIVED = Counter(
    "storeplatform_events_received", "CloudEvents a function received, by type and outcome "
    "(accepted, replied, or the error code it answered).", ["function", "type", "outcome"])
EVENTS_PUBLISHED = Counter(
    "storeplatform_events_published", "Events the gateway handed to the Broker, by outcome.",
    ["type", "outcome"])
HTTP_REQUESTS = Counter(
    "storeplatform_http_requests", "HTTP requests the gateway answered.",
    ["method", "route", "status"])
PROVISIONING_SECONDS = Histogram(
    "storeplatform_provisioning_duration_seconds", "Create request to the runner's outcome "
    "(ready, or failed for each failed attempt), from its lifecycle events.", ["outcome"],
    buckets=DURATION_BUCKETS)
DELETION_SECONDS = Histogram(
    "storeplatform_deletion_duration_seconds", "Delete request to the runner's outcome "
    "(deleted, or failed per attempt), from its lifecycle events.", ["outcome"],
    buckets=DURATION_BUCKETS)
STORES = Gauge(
    "storeplatform_stores", "Stores by status, from the list list-stores derives.", ["status"],
    multiprocess_mode="livemostrecent")
DEAD_LETTERS = Counter(
    "storeplatform_dead_letters", "Events the Broker gave up delivering, by type.", ["type"])
KUBERNETES_ERRORS = Counter(
    "storeplatform_kubernetes_api_errors", "Failed Kubernetes API calls, by verb, kind and "
    "status code (0: no answer).", ["verb", "kind", "code"])

_REFRESH = "storeplatform.metrics.refresh"


def event_received(function: str, event_type: str, outcome: str) -> None:
    EVENTS_RECEIVED.labels(function, event_type, outcome).inc()


def event_published(event_type: str, outcome: str) -> None:
    EVENTS_PUBLISHED.labels(event_type, outcome).inc()


def http_request(method: str, route: str, status: int) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()


def kubernetes_error(verb: str, kind: str, code: int) -> None:
    KUBERNETES_ERRORS.labels(verb, kind, str(code)).inc()


def dead_letter(event_type: str) -> None:
    DEAD_LETTERS.labels(event_type).inc()


def stores_by_status(stores: Iterable[Mapping[str, Any]]) -> None:
    """Set the gauge from one list: every known status, zero when no store has it."""
    counts = dict.fromkeys(STATUSES, 0)
    for store in stores:
        status = store.get("status")
        if status in counts:
            counts[status] += 1
    for status, count in counts.items():
        STORES.labels(status).set(count)


def lifecycle(action: str, outcome: str, seconds: float) -> None:
    """A runner outcome: its duration into the provisioning or deletion histogram."""
    histogram = PROVISIONING_SECONDS if action == "install" else DELETION_SECONDS
    histogram.labels(outcome).observe(max(0.0, seconds))


def exposition() -> bytes:
    """The text format of every sample: merged over the workers in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def before_scrape(app: Flask, refresh: Callable[[], None]) -> None:
    """Run refresh (e.g. recount the stores) before each scrape of this app."""
    app.extensions.setdefault(_REFRESH, []).append(refresh)


def serve() -> Response:
    """Prometheus metrics of this service (all its workers)."""
    for refresh in current_app.extensions.get(_REFRESH, []):
        refresh()
    return Response(exposition(), mimetype=CONTENT_TYPE_LATEST)


def register(app: Flask) -> None:
    """GET /metrics on the app."""
    app.add_url_rule("/metrics", "metrics", view_func=serve)
