"""list-stores: every store and its status, read from Kubernetes alone (no database).

The gateway sends it store.list events directly and gets a store.list.result event back,
answered from a watch cache of the objects the view is derived from (no API call in steady
state; the view is derived again once an object changed, and at least every VIEW_MAX_AGE
seconds, since its "stuck" verdicts depend on the time). Each gunicorn worker keeps its own
cache. It also answers admin-password reveals (POST /admin-password), from the one-time
Secret the reset Job left (lifecycle/owner_access.py). It is the Broker's dead-letter sink:
what could not be delivered is kept as an Event; and it hears the runner's lifecycle events
(POST /lifecycle), whose durations become the provisioning and deletion histograms.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from flask import Flask

from storeplatform import config, contract, deadletters, eventauth, metrics
from storeplatform.app import accepted, add_function, authenticate, decode, function_app
from storeplatform.events import new_event
from storeplatform.kube import CONNECTION_SETTINGS, Kube, connect
from storeplatform.lifecycle import cluster, owner_access
from storeplatform.watchcache import Derived, WatchCache

log = logging.getLogger(__name__)

# What the runner reports (Trigger runner-lifecycle: every event of its source).
LIFECYCLE = (contract.READY, contract.FAILED, contract.DELETED, contract.ADMIN_PASSWORD_CHANGED)
# Events a Trigger may give up on (and lists, which never pass the Broker).
DEAD_LETTER_TYPES = (contract.CREATE, contract.DELETE, contract.LIST,
                     contract.RESET_ADMIN_PASSWORD, *LIFECYCLE)
# The Triggers whose dead-letter sink this is (knative/500-triggers.yaml).
DEAD_LETTER_TRIGGERS = ("create-store", "delete-store", "reset-admin-password",
                        "runner-lifecycle")

SETTINGS = CONNECTION_SETTINGS | eventauth.SETTINGS | {
    "PLATFORM_NAMESPACE": contract.PLATFORM_NAMESPACE, "LOG_LEVEL": "INFO",
    # Who may send dead letters (empty: the Triggers that name list-stores as their sink).
    "DEAD_LETTER_SENDERS": "",
    # The watch cache: the first sync's bound, how long it answers after losing track of
    # the API server, how long one watch lasts before it is resumed.
    "CACHE_SYNC_TIMEOUT": 10.0, "CACHE_MAX_STALE": 30.0, "WATCH_SECONDS": 300}
GATEWAY_ACCOUNT = "storeplatform-gateway"

View = Callable[[], bytes]
# The view's "stuck" verdicts (status.STUCK_AFTER_SECONDS) depend on the time, not only on
# the objects: it is derived again at least this often.
VIEW_MAX_AGE = 5.0


def answer(event: BaseCloudEvent, view: View) -> BaseCloudEvent:
    """Decode the list event, read the view (JSON), reply with it."""
    contract.validate_list_data(event.get_data())
    return new_event(contract.LIST_RESULT, contract.LIST_SOURCE, None, view())


def encoded_view(state: cluster.State) -> bytes:
    """The view as the JSON the answer carries (encoded once per change of the cluster), and
    the store gauges, which follow it."""
    view = cluster.view(state)
    metrics.stores_by_status(view["stores"])
    return json.dumps(view).encode()


def watch_cache(kube: Kube, settings: Mapping[str, Any]) -> WatchCache:
    """The cache of every selection the view is derived from."""
    return WatchCache(kube, cluster.selections(settings["PLATFORM_NAMESPACE"]),
                      sync_timeout=float(settings["CACHE_SYNC_TIMEOUT"]),
                      max_stale=float(settings["CACHE_MAX_STALE"]),
                      watch_seconds=int(settings["WATCH_SECONDS"]))


def reveal(event: BaseCloudEvent, kube: Kube, platform_ns: str) -> BaseCloudEvent:
    """Decode the reveal event; reply with the reset's state (the password at most once)."""
    store, reset_id = contract.parse_reveal_event(event.get_data())
    state = owner_access.reveal(kube, store, reset_id, platform_ns, datetime.now(UTC))
    return new_event(contract.REVEAL_RESULT, contract.LIST_SOURCE, store, state)


def observe(event: BaseCloudEvent, seen: deque[str]) -> str:
    """A runner lifecycle event: its duration into the histograms (a redelivery to this
    worker is counted once)."""
    data = event.get_data() if isinstance(event.get_data(), dict) else {}
    action, seconds = data.get("action"), data.get("durationSeconds")
    outcome = event.get_type().removeprefix(contract.EVENT_PREFIX)
    if event.get_id() in seen:
        return "duplicate; already counted"
    seen.append(event.get_id())
    if action in (contract.ACTION_INSTALL, contract.ACTION_DELETE) and isinstance(
            seconds, (int, float)) and not isinstance(seconds, bool):
        metrics.lifecycle(action, outcome, float(seconds))
        return f"{action} {outcome} after {seconds:.1f} s"
    return f"{outcome} noted"


def create_app(overrides: Mapping[str, Any] | None = None, kube: Kube | None = None) -> Flask:
    """The list-stores function (gunicorn 'storeplatform.list_stores:create_app()').

    With its own connection the cache starts listing at once, so the first request finds it
    warm; with verbs handed in (tests), on the first list event.
    """
    settings = config.start(SETTINGS, overrides)
    verbs = kube or connect(settings)
    platform_ns = settings["PLATFORM_NAMESPACE"]
    # Lists and reveals come from the gateway alone; lifecycle events and dead letters from
    # the Broker alone, delivering for the Triggers that name this function.
    keys = eventauth.keys_for(settings, lambda path: verbs.get_json(path))
    gateway = eventauth.endpoint(keys, settings, "list-stores", [
        contract.service_account_subject(platform_ns, GATEWAY_ACCOUNT)],
        settings["EVENT_SENDERS"])
    lifecycle = eventauth.endpoint(keys, settings, "list-stores", [
        contract.trigger_sender(platform_ns, "runner-lifecycle")])
    broker = eventauth.endpoint(keys, settings, "list-stores", [
        contract.trigger_sender(platform_ns, trigger) for trigger in DEAD_LETTER_TRIGGERS],
        settings["DEAD_LETTER_SENDERS"])
    cache = watch_cache(verbs, settings)
    if kube is None:
        cache.start()
    view = Derived(cache, encoded_view, max_age=VIEW_MAX_AGE)
    app = function_app("list-stores", (contract.LIST,), lambda event: answer(event, view),
                       gateway)
    app.extensions["watch_cache"] = cache
    add_function(app, "/admin-password", "list-stores", (contract.REVEAL_ADMIN_PASSWORD,),
                 lambda event: reveal(event, verbs, platform_ns), gateway)
    seen: deque[str] = deque(maxlen=1024)
    add_function(app, "/lifecycle", "list-stores", LIFECYCLE,
                 lambda event: observe(event, seen), lifecycle)

    def refresh_gauges() -> None:  # from the cache: a scrape makes no API call either
        view()

    metrics.before_scrape(app, refresh_gauges)

    @app.post("/dead-letter")
    def dead_letter():
        """Keep an event the Broker gave up delivering; 202, empty."""
        authenticate(broker)
        letter = deadletters.record(decode(DEAD_LETTER_TYPES))
        metrics.dead_letter(letter["type"])
        log.warning("dead letter %s %s subject=%s: %s", letter["id"], letter["type"],
                    letter["subject"], letter["error"])
        verbs.create_or_keep(deadletters.kube_event(letter, platform_ns))
        return accepted()

    return app
