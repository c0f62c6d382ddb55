"""list-stores: every store and its status, read from Kubernetes alone (no database).

The gateway sends it store.list events directly and gets a store.list.result event back,
answered from a watch cache of the objects the view is derived from (no API call in steady
state; the view is derived again only once an object changed). Each gunicorn worker keeps
its own cache. It is also the Broker's dead-letter sink: what could not be delivered is
kept as an Event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask

from storeplatform import config, contract, deadletters, eventauth
from storeplatform.app import accepted, authenticate, decode, function_app
from storeplatform.events import new_event
from storeplatform.kube import CONNECTION_SETTINGS, Kube, connect
from storeplatform.lifecycle import cluster
from storeplatform.watchcache import Derived, WatchCache

log = logging.getLogger(__name__)

SETTINGS = CONNECTION_SETTINGS | eventauth.SETTINGS | {
    "PLATFORM_NAMESPACE": contract.PLATFORM_NAMESPACE, "LOG_LEVEL": "INFO",
    # Who may send dead letters (empty: the Triggers that name list-stores as their sink).
    "DEAD_LETTER_SENDERS": "",
    # The watch cache: the first sync's bound, how long it answers after losing track of
    # the API server, how long one watch lasts before it is resumed.
    "CACHE_SYNC_TIMEOUT": 10.0, "CACHE_MAX_STALE": 30.0, "WATCH_SECONDS": 300}
GATEWAY_ACCOUNT = "storeplatform-gateway"

View = Callable[[], bytes]


def answer(event: BaseCloudEvent, view: View) -> BaseCloudEvent:
    """Decode the list event, read the view (JSON), reply with it."""
    contract.validate_list_data(event.get_data())
    return new_event(contract.LIST_RESULT, contract.LIST_SOURCE, None, view())


def encoded_view(state: cluster.State) -> bytes:
    """The view as the JSON the answer carries: encoded once per change of the cluster."""
    return json.dumps(cluster.view(state)).encode()


def watch_cache(kube: Kube, settings: Mapping[str, Any]) -> WatchCache:
    """The cache of every selection the view is derived from."""
    return WatchCache(kube, cluster.selections(settings["PLATFORM_NAMESPACE"]),
                      sync_timeout=float(settings["CACHE_SYNC_TIMEOUT"]),
                      max_stale=float(settings["CACHE_MAX_STALE"]),
                      watch_seconds=int(settings["WATCH_SECONDS"]))


def create_app(overrides: Mapping[str, Any] | None = None, kube: Kube | None = None) -> Flask:
    """The list-stores function (gunicorn 'storeplatform.list_stores:create_app()').

    With its own connection the cache starts listing at once, so the first request finds it
    warm; with verbs handed in (tests), on the first list event.
    """
    settings = config.start(SETTINGS, overrides)
    verbs = kube or connect(settings)
    platform_ns = settings["PLATFORM_NAMESPACE"]
    # List requests come from the gateway alone; dead letters from the Broker alone,
    # delivering for the Triggers whose dead-letter sink this is.
    keys = eventauth.keys_for(settings, lambda path: verbs.get_json(path))
    gateway = eventauth.endpoint(keys, settings, "list-stores", [
        contract.service_account_subject(platform_ns, GATEWAY_ACCOUNT)],
        settings["EVENT_SENDERS"])
    broker = eventauth.endpoint(keys, settings, "list-stores", [
        contract.trigger_sender(platform_ns, trigger)
        for trigger in ("create-store", "delete-store")], settings["DEAD_LETTER_SENDERS"])
    cache = watch_cache(verbs, settings)
    if kube is None:
        cache.start()
    view = Derived(cache, encoded_view)
    app = function_app("list-stores", (contract.LIST,), lambda event: answer(event, view),
                       gateway)
    app.extensions["watch_cache"] = cache

    @app.post("/dead-letter")
    def dead_letter():
        """Keep an event the Broker gave up delivering; 202, empty."""
        authenticate(broker)
        letter = deadletters.record(decode((contract.CREATE, contract.DELETE, contract.LIST)))
        log.warning("dead letter %s %s subject=%s: %s", letter["id"], letter["type"],
                    letter["subject"], letter["error"])
        verbs.create_or_keep(deadletters.kube_event(letter, platform_ns))
        return accepted()

    return app
